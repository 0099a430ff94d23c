// The crash test (issue 9), in the style of qdrant/crasher: scripts/crasher
// runs `quiver serve --data-dir` as a child, writes to it with concurrent
// writers (wait=true) and compactions, SIGKILLs it at a random moment,
// restarts it on the same directory and checks that every acknowledged
// write is there, exactly; 20 rounds, then a graceful restart. Negative
// controls prove the check can fail: the same harness against an in-memory
// server (a restart loses everything), and against a data directory whose
// log tails are cut after each kill (a restart loses acknowledged writes).
// The seeds are printed; rerun a failure with QUIVER_CRASH_SEED=N.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDist } from './helpers/plain-node.js';
import { MARKER, runCrasher, type CrasherRun } from './helpers/crasher.js';
import { Failures, Model, keyOf, type Version } from '../scripts/crasher/model.js';

const ROUNDS = 20;
const SEED = process.env.QUIVER_CRASH_SEED === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(process.env.QUIVER_CRASH_SEED);

/** The harness's log without its result line (the test reads that). */
const shown = (run: CrasherRun): string => run.stdout.split('\n').filter((l) => !l.startsWith(MARKER)).join('\n').trim();

const version = (values: number[], payload?: Record<string, unknown>): Version => ({ vector: Float32Array.from(values), payload });

t.test('the model accepts exactly what was acknowledged, or an unanswered write', async (t) => {
  const a = version([1, 2, 3], { x: 1, y: { z: [1, 2] } });
  const b = version([4, 5, 6]);
  const c = version([7, 8, 9], { x: 2 });

  const fresh = (): Model => {
    const m = new Model();
    for (const [k, s] of [['#1', a], ['#2', b], ['#3', null], ['#4', a]] as const) {
      m.sent(k, s);
      m.acknowledged(k, s);
    }
    m.sent('#4', c); // no answer: #4 is a or c
    m.sent('#5', b); // no answer: #5 is absent or b
    return m;
  };
  const good = new Map<string, Version>([['#1', version([1, 2, 3], { y: { z: [1, 2] }, x: 1 })], ['#2', version([4, 5, 6], {})], ['#4', c]]);
  const m = fresh();
  t.same(m.sizeBounds(), [3, 4], '#1 #2 #4 surely present, #5 maybe');
  const f = new Failures();
  t.same(m.check(good, f), { unknownApplied: 1 }, 'the unanswered write to #4 happened');
  t.same(f.list(), [], 'key order of a payload and {} for none do not matter');
  t.equal(m.unknownCount, 0, 'the unknowns are resolved');
  t.equal(m.liveCount, 3);
  t.equal(m.expected('#4'), c, 'the model adopts what the server has');

  const cases: [string, (o: Map<string, Version>) => void, string][] = [
    ['an acknowledged upsert is missing', (o) => o.delete('#1'), 'missing'],
    ['an acknowledged delete is back', (o) => o.set('#3', a), 'resurrected'],
    ['a vector is one ulp off', (o) => {
      const v = Float32Array.from(a.vector);
      new Uint32Array(v.buffer)[2]! += 1;
      o.set('#1', { vector: v, payload: a.payload });
    }, 'wrong-vector'],
    ['a payload differs', (o) => o.set('#2', version([4, 5, 6], { x: 1 })), 'wrong-payload'],
    ['an unanswered write left a third version', (o) => o.set('#4', version([7, 8, 9.5])), 'wrong-vector'],
    ['an id never written is there', (o) => o.set('#99', b), 'unexpected-id'],
  ];
  for (const [what, damage, kind] of cases) {
    const observed = new Map(good);
    damage(observed);
    const failures = new Failures();
    fresh().check(observed, failures);
    t.same(failures.list().map((x) => [x.kind, x.count]), [[kind, 1]], what);
  }
  t.equal(keyOf(7), '#7');
  t.equal(keyOf('5c6a7b1e-0000-4000-8000-000000000007'), '5c6a7b1e-0000-4000-8000-000000000007');
});

t.test('the crash test', async (t) => {
  // the harness and the server it runs are the compiled ones: what is in the
  // tree now (built once per change, never rebuilt under a running child)
  buildDist();

  t.test(`${ROUNDS} SIGKILL rounds on a data directory: nothing acknowledged is lost (seed ${SEED})`, async (t) => {
    const run = await runCrasher(['--rounds', String(ROUNDS), '--seed', String(SEED)], 600_000);
    t.comment(shown(run));
    t.not(run.result, undefined, `the harness ran to its verdict\n${run.stderr.slice(-3000)}`);
    const r = run.result!;
    t.equal(r.seed, SEED);
    t.same(r.failures, [], `no round failed (rerun: QUIVER_CRASH_SEED=${SEED})`);
    t.equal(run.code, 0, 'exit 0');
    t.equal(r.rounds.length, ROUNDS + 1, 'every kill round and the graceful restart ran');
    t.ok(r.rounds.every((x) => x.upserts > 0 && x.selfQueries > 0), 'every round acknowledged upserts and checked self-queries');
    t.ok(r.rounds.reduce((n, x) => n + x.deletes, 0) > 0, 'deletes were acknowledged');
    t.ok(r.rounds.reduce((n, x) => n + x.compactions, 0) > 0, 'compactions ran during the writes');
    t.ok(r.rounds.reduce((n, x) => n + x.checkpoints, 0) > 0, 'shards checkpointed during the writes');
    t.ok(r.rounds.reduce((n, x) => n + x.unknown, 0) > 0, 'kills landed with writes in flight');
  });

  t.test('negative control: an in-memory server fails the check at the first restart', async (t) => {
    const run = await runCrasher(['--rounds', '3', '--seed', String(SEED), '--in-memory'], 600_000);
    t.comment(shown(run));
    t.not(run.result, undefined, `the harness ran to its verdict\n${run.stderr.slice(-3000)}`);
    const r = run.result!;
    t.equal(run.code, 1, 'exit 1');
    t.equal(r.ok, false);
    t.equal(r.rounds.length, 1, 'it stops at the failing round');
    t.equal(r.failures.some((f) => f.kind === 'restart-failed'), false, 'the server restarted');
    const kinds = new Map(r.failures.map((f) => [f.kind, f.count]));
    t.equal(kinds.get('collection-lost'), 1, 'the collection is reported lost');
    t.ok((kinds.get('missing') ?? 0) > 0, `the acknowledged points are reported missing (${kinds.get('missing')})`);
  });

  t.test('negative control: cutting every shard\'s log tail after a kill fails the check', async (t) => {
    // the harness keeps a failed run's data directory: give it one this test removes
    const dir = mkdtempSync(join(tmpdir(), 'quiver-crash-test-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const run = await runCrasher(['--rounds', '6', '--seed', String(SEED), '--sabotage-logs', '--data-dir', join(dir, 'data')], 600_000);
    t.comment(shown(run));
    t.not(run.result, undefined, `the harness ran to its verdict\n${run.stderr.slice(-3000)}`);
    const r = run.result!;
    t.equal(run.code, 1, 'exit 1');
    t.equal(r.ok, false);
    const failed = r.rounds.at(-1)!;
    t.ok(failed.sabotagedBytes > 0, `the failing round had its logs cut (${failed.sabotagedBytes} bytes)`);
    // usually missing and wrong points; a store that refused the damaged files would be reported too
    const found = r.failures.filter((f) => f.kind !== 'write-error');
    t.ok(found.length > 0, `the loss is reported after the restart (${r.failures.map((f) => `${f.kind} x${f.count}`).join(', ')})`);
  });
});
