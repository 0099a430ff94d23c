// The lease keeper (host/cluster/lease-keeper.ts) on a real 3-node
// nats-server cluster, lease ttl TTL_MS = 600 ms (short to keep the run
// short), rounds every 150 ms: a leader that keeps running keeps its shard;
// one that stops is replaced within ttl + 2 rounds (+ slack for the NATS
// round trips on a loaded 2-core machine); one that is paused past its
// lease and resumes is told `lost` (FENCED) at its first renewal and never
// holds the shard again meanwhile; a planned move (unwant) hands over at
// once, without waiting out the ttl.
import t from 'tap';
import { clusterAndClient, sleep, until } from './helpers/cluster-setup.js';
import { LeaseTable, type Lease } from '../host/cluster/leases.js';
import { LeaseKeeper } from '../host/cluster/lease-keeper.js';
import { ErrorCode, type QuiverError } from '../host/errors.js';

const TTL_MS = 600;
const ROUND_MS = 150;
const SLACK_MS = 1500;

const { client } = await clusterAndClient(t, 'lease-keeper');

interface Probe {
  keeper: LeaseKeeper;
  acquired: Lease[];
  /** performance.now() of each acquisition */
  at: number[];
  lost: { shard: number; term: number; why: QuiverError }[];
}

async function node(nodeId: string): Promise<Probe> {
  const table = await LeaseTable.open(client, { nodeId, ttlMs: TTL_MS });
  const p: Probe = { keeper: undefined as never, acquired: [], at: [], lost: [] };
  p.keeper = new LeaseKeeper(table, {
    acquired: (l) => {
      p.acquired.push(l);
      p.at.push(performance.now());
    },
    lost: (_ds, shard, term, why) => {
      p.lost.push({ shard, term, why });
    },
  }, { intervalMs: ROUND_MS });
  return p;
}


t.test('a running leader keeps its shard for many ttls; a second node wanting it never gets it', async (t) => {
  const [a, b] = [await node('keep-a'), await node('keep-b')];
  a.keeper.want('ds', 0);
  await a.keeper.round();
  t.equal(a.acquired.length, 1, 'node a acquired the free shard');
  b.keeper.want('ds', 0);
  a.keeper.start();
  b.keeper.start();
  await sleep(4 * TTL_MS);
  t.equal(b.acquired.length, 0, 'node b never acquired it');
  t.same(a.lost, [], 'node a never lost it');
  t.equal(a.keeper.leaseOf('ds', 0)?.term, 1, 'still term 1, valid');
  await b.keeper.stop();
  await a.keeper.stop();
  t.equal(a.keeper.held().length, 0, 'a stop with release gives it up');
});

t.test('a leader that stops is replaced within ttl + 2 rounds; the new term is one more', async (t) => {
  const [a, b] = [await node('die-a'), await node('die-b')];
  a.keeper.want('ds', 1);
  await a.keeper.round();
  const first = a.acquired[0]!;
  b.keeper.want('ds', 1);
  a.keeper.start();
  b.keeper.start();
  await sleep(2 * TTL_MS);
  t.equal(b.acquired.length, 0, 'not while a renews');
  // node a "dies": no more rounds, nothing released
  await a.keeper.stop(false);
  const died = performance.now();
  // the end of a's lease by its own clock: the moment before which nobody may take the shard
  const aValidUntil = died + first.remainingMs;
  const took = await until('takeover', () => b.acquired.length === 1, TTL_MS + 2 * ROUND_MS + SLACK_MS);
  t.comment(`takeover ${Math.round(performance.now() - died)} ms after the leader stopped (ttl ${TTL_MS}, rounds ${ROUND_MS})`);
  t.ok(took > 0, 'node b took the shard over');
  t.ok(b.at[0]! >= aValidUntil, `not before a's lease ran out by a's clock (${Math.round(b.at[0]! - aValidUntil)} ms after)`);
  t.equal(b.acquired[0]!.term, first.term + 1, 'with the next term');
  await b.keeper.stop();
});

t.test('a leader paused past its lease is told it lost the shard at its first renewal (FENCED)', async (t) => {
  const [a, b] = [await node('pause-a'), await node('pause-b')];
  a.keeper.want('ds', 2);
  await a.keeper.round();
  const old = a.acquired[0]!;
  b.keeper.want('ds', 2);
  b.keeper.start();
  // node a is paused (SIGSTOP-like: no rounds) until b has the shard
  await until('takeover while a is paused', () => b.acquired.length === 1, 2 * TTL_MS + SLACK_MS);
  t.equal(old.valid, false, 'the paused leader\'s lease is no longer valid by its own clock');
  t.equal(a.keeper.leaseOf('ds', 2), undefined, 'so it is not offered for writes');
  await a.keeper.round(); // resumed: renewal refused
  t.equal(a.lost.length, 1, 'node a is told it lost the shard');
  t.equal(a.lost[0]?.why.code, ErrorCode.FENCED, 'as FENCED');
  t.equal(a.lost[0]?.term, old.term, 'naming the term it held');
  await a.keeper.round();
  t.equal(a.acquired.length, 1, 'it does not take the shard back while b renews');
  t.equal(b.keeper.leaseOf('ds', 2)?.term, old.term + 1, 'node b leads with the next term');
  await a.keeper.stop();
  await b.keeper.stop();
});

t.test('a planned move: unwant releases at once and the new leader takes it well within the ttl', async (t) => {
  const [a, b] = [await node('move-a'), await node('move-b')];
  a.keeper.want('ds', 3);
  await a.keeper.round();
  b.keeper.want('ds', 3);
  await b.keeper.round();
  t.equal(b.acquired.length, 0, 'held by a: b waits');
  const moved = performance.now();
  t.equal(await a.keeper.unwant('ds', 3), true, 'node a released it');
  await b.keeper.round();
  t.equal(b.acquired.length, 1, 'node b has it at its next round');
  t.ok(performance.now() - moved < TTL_MS, 'without waiting out the ttl');
  t.equal(await a.keeper.unwant('ds', 3), false, 'a second unwant has nothing to release');
  t.same(a.lost, [], 'a planned release is not a loss');
  await b.keeper.stop();
});

t.test('an acquired handler that fails gives the lease back; bad options are refused', async (t) => {
  const table = await LeaseTable.open(client, { nodeId: 'fail-a', ttlMs: TTL_MS });
  const errors: unknown[] = [];
  const k = new LeaseKeeper(table, { acquired: () => Promise.reject(new Error('rebuild failed')), error: (_d, _s, e) => errors.push(e) }, { intervalMs: ROUND_MS });
  k.want('ds', 4);
  await k.round();
  t.equal(k.held().length, 0, 'not held after its rebuild failed');
  t.match(String(errors[0]), /rebuild failed/, 'the failure is reported');
  t.equal(await table.holderOf('ds', 4), null, 'and the lease is free for another node');
  t.throws(() => new LeaseKeeper(table, {}, { intervalMs: TTL_MS }), { code: ErrorCode.INVALID_ARGUMENT }, 'a round as long as half the ttl is refused');
});
