// The crash test (test/crash.test.ts, scripts/crasher) on a collection with
// always_ram: false: `quiver serve --data-dir` in a child, concurrent
// writers upserting and deleting with wait=true, compactions, checkpoints
// every 128 KiB of log, SIGKILL at a random moment, restart, and the check
// of every acknowledged write: the vector read back (scroll with vectors,
// bit for bit: after the spill the shard files are the only place it
// lives), found by a self-query, and no deleted id back. 6,000 ids over two
// shards, so each shard passes the spill (1,024 live) in the first rounds
// and later compactions write new generations; the test checks that from
// the files the run left. The seed is printed; rerun with QUIVER_CRASH_SEED=N.
import t from 'tap';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDist } from './helpers/plain-node.js';
import { MARKER, runCrasher } from './helpers/crasher.js';

const ROUNDS = 8;
const DIM = 24;
const SEED = process.env.QUIVER_CRASH_SEED === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(process.env.QUIVER_CRASH_SEED);


t.test(`${ROUNDS} SIGKILL rounds on an always_ram: false collection: nothing acknowledged is lost (seed ${SEED})`, async (t) => {
  buildDist();
  const dir = mkdtempSync(join(tmpdir(), 'quiver-disk-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  const run = await runCrasher([
    '--rounds', String(ROUNDS), '--seed', String(SEED), '--ids', '6000', '--shards', '2', '--dim', String(DIM), '--writers', '4',
    '--kill-min-ms', '600', '--kill-max-ms', '2500', '--data-dir', data, '--quantization', JSON.stringify({ scalar: { type: 'int8', always_ram: false } }),
  ], 900_000);
  t.comment(run.stdout.split('\n').filter((l) => !l.startsWith(MARKER)).join('\n').trim());
  t.not(run.result, undefined, `the harness ran to its verdict\n${run.stderr.slice(-3000)}`);
  const r = run.result!;
  t.same(r.failures, [], `no round failed (rerun: QUIVER_CRASH_SEED=${SEED})`);
  t.equal(run.code, 0, 'exit 0');
  t.equal(r.rounds.length, ROUNDS + 1, 'every kill round and the graceful restart ran');
  t.ok(r.rounds.every((x) => x.upserts > 0 && x.selfQueries > 0), 'every round acknowledged upserts and checked self-queries');
  t.ok(r.rounds.reduce((n, x) => n + x.deletes, 0) > 0, 'deletes were acknowledged');
  t.ok(r.rounds.reduce((n, x) => n + x.compactions, 0) > 0, 'compactions ran during the writes');
  t.ok(r.rounds.reduce((n, x) => n + x.checkpoints, 0) > 0, 'shards checkpointed during the writes');
  t.ok(r.rounds.reduce((n, x) => n + x.unknown, 0) > 0, 'kills landed with writes in flight');
  t.ok(r.rounds.at(-1)!.live > 2 * 2 * 1024, `the collection ended with ${r.rounds.at(-1)!.live} points, past the spill in both shards`);
  // what the run left: each shard spilled, and compactions of spilled shards wrote later generations
  const datasets = readdirSync(join(data, 'datasets'));
  t.equal(datasets.length, 1);
  for (const shard of ['shard-0', 'shard-1']) {
    const sdir = join(data, 'datasets', datasets[0]!, shard);
    const files = readdirSync(sdir).filter((n) => /^originals-\d+\.f32$/.test(n));
    const gens = files.map((n) => Number(/\d+/.exec(n)![0]));
    t.ok(files.length >= 1 && files.length <= 2, `${shard}: ${files.join(', ')} (the current image's file, and the previous one's)`);
    t.ok(Math.max(...gens) > 1, `${shard}: a compaction of the spilled shard wrote generation ${Math.max(...gens)}`);
    const size = Math.max(...files.map((n) => statSync(join(sdir, n)).size));
    t.ok(size >= 1024 * DIM * 4 && size % (DIM * 4) === 0, `${shard}: ${size / (DIM * 4)} slots of originals on disk`);
  }
});
