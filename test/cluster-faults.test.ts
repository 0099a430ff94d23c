// NATS faults under the shard log (host/cluster/shard-stream.ts): a real
// 3-node nats-server cluster, R=3 stream, nodes SIGKILLed and restarted.
//   one node down   appends (retried inside append) and reads go on;
//   two nodes down  an append fails with QUIVER_ERR_UNAVAILABLE, bounded by
//                   its timeoutMs (3 s here), and is not acknowledged;
//   both back       the in-doubt record's retry lands exactly once and new
//                   appends work, with no manual step; a lease renewal that
//                   was UNAVAILABLE meanwhile succeeds again.
import t from 'tap';
import { NatsCluster } from './helpers/nats-cluster.js';
import { ClusterClient } from '../host/cluster/connect.js';
import { ensureDatasetLog, ShardLog, type LogEntry } from '../host/cluster/shard-stream.js';
import { LeaseTable } from '../host/cluster/leases.js';
import { QuiverError } from '../host/errors.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const TIMEOUT_MS = 3000;

async function all(it: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

const cluster = await NatsCluster.start();
t.teardown(() => cluster.stop());
const client = await ClusterClient.connect({ servers: cluster.servers, name: 'faults', timeoutMs: TIMEOUT_MS });
t.teardown(() => client.close());

async function leaderIndex(dataset: string): Promise<number> {
  const info = await client.jsm.streams.info(`QUIVER_${dataset}`);
  return cluster.nodes.findIndex((n) => n.name === info.cluster?.leader);
}

t.test('kill one nats-server (the stream leader): appends, reads and a tail go on', async (t) => {
  await ensureDatasetLog(client, 'one', { replicas: 3 });
  const log = new ShardLog(client, 'one', 0);
  const w = log.writer(0);
  for (let i = 0; i < 10; i++) await w.append(enc(`r${i}`), `one-${i}`);
  const leader = await leaderIndex('one');
  t.ok(leader >= 0, `the stream leader is node ${leader}`);
  // The follower's connection is on the leader's server (it learns the others from it), like its consumer
  // usually is: the case where the client library's own recovery was seen to stall for good.
  const follower = await ClusterClient.connect({ servers: [cluster.servers[leader]!], name: 'follower', timeoutMs: TIMEOUT_MS });
  t.teardown(() => follower.close());
  const tail = new ShardLog(follower, 'one', 0).tail(1);
  const followed: string[] = [];
  const following = (async () => {
    for await (const e of tail) {
      followed.push(dec(e.data));
      if (followed.length === 30) break;
    }
  })();
  while (followed.length < 10) await new Promise((r) => setTimeout(r, 20));
  await cluster.kill(leader);
  t.teardown(() => cluster.restart(leader));
  for (let i = 10; i < 30; i++) await w.append(enc(`r${i}`), `one-${i}`, { timeoutMs: 15_000 });
  const want = Array.from({ length: 30 }, (_, i) => `r${i}`);
  t.same((await all(log.read())).map((e) => dec(e.data)), want, 'every append is read back once, in order, with a node down');
  await following;
  await tail.close();
  t.same(followed, want, 'the tail saw every record once, in order, across the leader change');
  t.comment(`the tail replaced its consumer ${tail.restarts} time(s)`);
  t.not(await leaderIndex('one'), leader, 'another node leads the stream');
});

t.test('kill two: an append fails with a retryable error, bounded, unacknowledged; restart: it heals by itself', async (t) => {
  await ensureDatasetLog(client, 'two', { replicas: 3 });
  const log = new ShardLog(client, 'two', 0);
  const w = log.writer(0);
  for (let i = 0; i < 5; i++) await w.append(enc(`r${i}`), `two-${i}`);
  const leases = await LeaseTable.open(client, { nodeId: 'faults', ttlMs: 60_000 });
  const acq = await leases.tryAcquire('two', 0);
  if (!acq.acquired) throw new Error('no lease');
  const lease = acq.lease;
  const down = [0, 1];
  for (const i of down) await cluster.kill(i);
  t.teardown(async () => { for (const i of down) if (!cluster.running(i)) await cluster.restart(i); });

  let acked = false;
  const t0 = Date.now();
  const err = await w.append(enc('r5'), 'two-5', { timeoutMs: TIMEOUT_MS }).then(() => { acked = true; }, (e: unknown) => e);
  const took = Date.now() - t0;
  t.equal(acked, false, 'the append is not acknowledged');
  t.ok(err instanceof QuiverError, 'it rejects with a QuiverError');
  t.equal((err as QuiverError).code, 'QUIVER_ERR_UNAVAILABLE', 'coded UNAVAILABLE (retryable)');
  // A liveness bound, not a speed check: the call gives up near its timeoutMs instead of hanging.
  t.ok(took < TIMEOUT_MS + 3000, `it gave up after ${took} ms (timeoutMs ${TIMEOUT_MS})`);
  t.equal(w.state, 'in-doubt', 'the writer knows the record is in doubt');
  await t.rejects(w.append(enc('r6'), 'two-6'), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'another record is refused until the in-doubt one is retried');
  await t.rejects(w.append(enc('other bytes'), 'two-5'), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'so is the same msgId with other bytes');
  await t.rejects(leases.renew(lease), { code: 'QUIVER_ERR_UNAVAILABLE' }, 'a lease renewal is UNAVAILABLE, not FENCED');
  t.equal(lease.lost, false, 'and the lease is not lost');

  for (const i of down) await cluster.restart(i);
  const seq = await w.append(enc('r5'), 'two-5', { timeoutMs: 20_000 });
  t.equal(w.state, 'ready', 'the retry settles the record');
  await w.append(enc('r6'), 'two-6', { timeoutMs: 20_000 });
  const got = await all(log.read());
  t.same(got.map((e) => dec(e.data)), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6'], 'the in-doubt record is stored exactly once, then the next one');
  t.equal(got.find((e) => e.msgId === 'two-5')?.seq, seq, 'at the sequence its retry returned');
  let renewed = false;
  for (let i = 0; i < 40 && !renewed; i++) {
    renewed = await leases.renew(lease).then(() => true, (e: QuiverError) => {
      if (e.code !== 'QUIVER_ERR_UNAVAILABLE') throw e;
      return new Promise<boolean>((r) => setTimeout(() => r(false), 250));
    });
  }
  t.ok(renewed && lease.valid, 'the lease renews again once the cluster is back');
});
