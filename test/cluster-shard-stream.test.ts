// The replicated shard log (host/cluster/shard-stream.ts) against a real
// 3-node nats-server cluster on loopback: R=3 streams, one per dataset.
import t from 'tap';
import { NatsCluster } from './helpers/nats-cluster.js';
import { ClusterClient } from '../host/cluster/connect.js';
import { ensureDatasetLog, deleteDatasetLog, ShardLog, type LogEntry } from '../host/cluster/shard-stream.js';
import { streamName } from '../host/cluster/names.js';
import { QuiverError } from '../host/errors.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function all(it: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

const cluster = await NatsCluster.start();
t.teardown(() => cluster.stop());
const client = await ClusterClient.connect({ servers: cluster.servers, name: 'test' });
t.teardown(() => client.close());

t.test('appends come back in order, per shard, from any sequence', async (t) => {
  await ensureDatasetLog(client, 'orders', { replicas: 3 });
  t.equal((await client.jsm.streams.info(streamName('orders'))).config.num_replicas, 3, 'the stream has 3 replicas');
  const logs = [new ShardLog(client, 'orders', 0), new ShardLog(client, 'orders', 1)];
  const writers = logs.map((l) => l.writer(0));
  const seqs: number[][] = [[], []];
  for (let i = 0; i < 60; i++) {
    const s = i % 2;
    seqs[s]!.push(await writers[s]!.append(enc(`r${s}-${i}`), `orders-${s}-${i}`));
  }
  for (const s of [0, 1]) {
    const got = await all(logs[s]!.read());
    t.same(got.map((e) => dec(e.data)), Array.from({ length: 30 }, (_, j) => `r${s}-${2 * j + s}`), `shard ${s}: its records, in order`);
    t.same(got.map((e) => e.seq), seqs[s], `shard ${s}: the sequences the appends returned`);
    t.same(got.map((e) => e.msgId), Array.from({ length: 30 }, (_, j) => `orders-${s}-${2 * j + s}`), `shard ${s}: msgIds kept`);
    t.equal(await logs[s]!.lastSeq(), seqs[s]!.at(-1), `shard ${s}: lastSeq is its last append`);
    t.ok(seqs[s]!.every((q, j) => j === 0 || q > seqs[s]![j - 1]!), `shard ${s}: sequences increase`);
  }
  const mid = seqs[0]![10]!;
  t.same((await all(logs[0]!.read(mid))).map((e) => e.seq), seqs[0]!.slice(10), 'read from a middle sequence');
  t.same((await all(logs[0]!.read(mid, seqs[0]![14]))).map((e) => e.seq), seqs[0]!.slice(10, 15), 'read a bounded range');
  t.same((await all(logs[0]!.read(mid, 10 ** 9))).map((e) => e.seq), seqs[0]!.slice(10), 'an end past the tail is cut to the tail');
  t.same(await all(new ShardLog(client, 'orders', 7).read()), [], 'an empty shard reads nothing');
  t.equal(await new ShardLog(client, 'orders', 7).lastSeq(), 0, 'an empty shard is at 0');
});

t.test('a tail follows live appends in order until closed', async (t) => {
  await ensureDatasetLog(client, 'live');
  const log = new ShardLog(client, 'live', 3);
  const w = log.writer(0);
  await w.append(enc('before'), 'live-0');
  const tail = await log.tail(1);
  const seen: string[] = [];
  const done = (async () => {
    for await (const e of tail) {
      seen.push(dec(e.data));
      if (seen.length === 21) break;
    }
  })();
  for (let i = 1; i <= 20; i++) await w.append(enc(`live-${i}`), `live-${i}`);
  await done;
  await tail.close();
  t.same(seen, ['before', ...Array.from({ length: 20 }, (_, i) => `live-${i + 1}`)], 'the old record, then every new one, in order');
});

t.test('a tail closed before its consumer is made ends at once (close waited for an iteration that never started)', async (t) => {
  await ensureDatasetLog(client, 'early');
  const tails = Array.from({ length: 4 }, (_, s) => new ShardLog(client, 'early', s).tail(1));
  // iteration begins (the consumer is being made), and the tail is closed before it is there
  const loops = tails.map(async (tail) => {
    for await (const e of tail) void e;
  });
  const started = performance.now();
  await Promise.all(tails.map((x) => x.close()));
  const ended = await Promise.race([Promise.all(loops).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
  t.ok(ended, `all 4 loops ended (${(performance.now() - started).toFixed(0)} ms)`);
});

t.test('a retried msgId is stored once', async (t) => {
  await ensureDatasetLog(client, 'dedup');
  const log = new ShardLog(client, 'dedup', 0);
  const w = log.writer(0);
  const s1 = await w.append(enc('one'), 'dedup-1');
  t.equal(await w.append(enc('one'), 'dedup-1'), s1, 'the same writer retrying gets the first sequence');
  t.equal(await log.writer(0).append(enc('one'), 'dedup-1'), s1, 'a retry from a writer that never saw the ack (stale lastSeq) gets it too');
  const s2 = await w.append(enc('two'), 'dedup-2');
  t.same((await all(log.read())).map((e) => [e.seq, dec(e.data)]), [[s1, 'one'], [s2, 'two']], 'each record once');
});

t.test('a msgId another shard of the dataset already used is refused, not taken as this shard\'s record', async (t) => {
  await ensureDatasetLog(client, 'cross');
  const [zero, one] = [new ShardLog(client, 'cross', 0), new ShardLog(client, 'cross', 1)];
  const s0 = await zero.writer(0).append(enc('zero'), 'node.1.1');
  // one stream per dataset, one deduplication window: JetStream answers "duplicate" with shard 0's sequence
  await t.rejects(one.writer(0).append(enc('one'), 'node.1.1'), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /already record/ }, 'refused, naming the collision');
  t.same(await all(one.read()), [], 'nothing on shard 1');
  t.same((await all(zero.read())).map((e) => [e.seq, dec(e.data)]), [[s0, 'zero']], 'shard 0 as it was');
});

t.test('fencing: after another writer claims the shard the stale one is refused, nothing is written twice', async (t) => {
  await ensureDatasetLog(client, 'fence');
  const log = new ShardLog(client, 'fence', 0);
  const old = log.writer(0);
  await old.append(enc('a1'), 'old-1');
  await old.append(enc('a2'), 'old-2');
  const { writer: fresh, markerSeq } = await log.claim(enc('claim-b'), 'b-claim');
  t.equal(fresh.lastSeq, markerSeq, 'the claim is the new writer\'s position');
  await t.rejects(old.append(enc('a3'), 'old-3'), { code: 'QUIVER_ERR_FENCED' }, 'the stale writer is fenced');
  t.equal(old.state, 'fenced', 'and knows it');
  await t.rejects(old.append(enc('a4'), 'old-4'), { code: 'QUIVER_ERR_FENCED' }, 'it refuses every later append');
  await fresh.append(enc('b1'), 'b-1');
  t.same((await all(log.read())).map((e) => dec(e.data)), ['a1', 'a2', 'claim-b', 'b1'], 'the log holds each accepted record once, none of the stale ones');
  const again = await log.claim(enc('claim-b'), 'b-claim');
  t.equal(again.markerSeq, markerSeq, 'a repeated claim is recognised, not appended again');

  // Two writers racing from the same position: exactly one wins.
  const race = new ShardLog(client, 'fence', 1);
  const at = await race.lastSeq();
  const results = await Promise.allSettled([race.writer(at).append(enc('x'), 'race-x'), race.writer(at).append(enc('y'), 'race-y')]);
  t.same(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'], 'one append wins, one loses');
  const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.equal((loser.reason as QuiverError).code, 'QUIVER_ERR_FENCED', 'the loser is fenced');
  t.equal((await all(race.read())).length, 1, 'one record stored');
});

t.test('an earlier attempt that landed after the dedup window is recognised, not written twice', async (t) => {
  await ensureDatasetLog(client, 'window', { duplicateWindowMs: 1000 });
  const log = new ShardLog(client, 'window', 0);
  const w = log.writer(0);
  await w.append(enc('r1'), 'w-1');
  // What a timed-out attempt that committed later looks like: the record is in the log, the writer never heard.
  const landed = await client.js.publish(log.subject, enc('r2'), { msgID: 'w-2', expect: { lastSubjectSequence: w.lastSeq } });
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(await w.append(enc('r2'), 'w-2'), landed.seq, 'the retry returns the landed record\'s sequence');
  t.equal(w.state, 'ready', 'the writer carries on');
  await w.append(enc('r3'), 'w-3');
  t.same((await all(log.read())).map((e) => dec(e.data)), ['r1', 'r2', 'r3'], 'r2 once');
});

t.test('two nodes claiming at once: both claims land once, and only the later claimer can write', async (t) => {
  await ensureDatasetLog(client, 'claims');
  const log = new ShardLog(client, 'claims', 0);
  await log.writer(0).append(enc('before'), 'c-0');
  const [a, b] = await Promise.all([log.claim(enc('claim a'), 'claim-a'), log.claim(enc('claim b'), 'claim-b')]);
  const [first, second] = a.markerSeq < b.markerSeq ? [a, b] : [b, a];
  const records = (await all(log.read())).map((e) => dec(e.data));
  t.same(records.slice(0, 1), ['before'], 'the old record stays first');
  t.same(records.slice(1).sort(), ['claim a', 'claim b'], 'each claim is in the log once');
  await t.rejects(first.writer.append(enc('x'), 'first-1'), { code: 'QUIVER_ERR_FENCED' }, 'the earlier claimer is fenced by the later claim');
  t.ok(await second.writer.append(enc('y'), 'second-1') > second.markerSeq, 'the later claimer writes');
});

t.test('two writers that know the same last record append at once: one resolves, first in the log; the other is FENCED even when the server stored both', async (t) => {
  // nats-server 2.9 checks the expected last subject sequence before the Raft proposal (nats-io/nats-server#4320)
  await ensureDatasetLog(client, 'race', { replicas: 3 });
  const other = await ClusterClient.connect({ servers: [...cluster.servers].reverse(), name: 'test-other' });
  t.teardown(() => other.close());
  const mine = new ShardLog(client, 'race', 0);
  const theirs = new ShardLog(other, 'race', 0);
  const TRIALS = 40;
  let bothStored = 0;
  const wrong: string[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const last = await mine.lastSeq();
    const r = await Promise.allSettled([mine.writer(last).append(enc(`a${i}`), `a${i}`), theirs.writer(last).append(enc(`b${i}`), `b${i}`)]);
    const stored = await all(mine.read(last + 1));
    if (stored.length === 2) bothStored++;
    const resolved = r.flatMap((x) => (x.status === 'fulfilled' ? [x.value] : []));
    const fenced = r.filter((x) => x.status === 'rejected' && (x.reason as QuiverError).code === 'QUIVER_ERR_FENCED').length;
    if (resolved.length !== 1 || fenced !== 1 || resolved[0] !== stored[0]?.seq) wrong.push(`trial ${i}: ${JSON.stringify(r.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message)))}, stored ${stored.map((e) => e.seq).join(',')}`);
  }
  t.comment(`the server stored both records in ${bothStored} of ${TRIALS} trials`);
  t.same(wrong, [], 'every trial: exactly one append resolved, it is the first record after the one both knew, the other FENCED');
});

t.test('bad input is refused with a coded error and writes nothing', async (t) => {
  await ensureDatasetLog(client, 'bad');
  const log = new ShardLog(client, 'bad', 0);
  const w = log.writer(0);
  const I = { code: 'QUIVER_ERR_INVALID_ARGUMENT' };
  await t.rejects(w.append('text' as unknown as Uint8Array, 'm'), I, 'data not bytes');
  await t.rejects(w.append(enc('x'), ''), I, 'empty msgId');
  await t.rejects(w.append(enc('x'), 'has space'), I, 'msgId with a space');
  await t.rejects(w.append(new Uint8Array(client.maxPayload), 'big'), I, 'a record over the server\'s max payload');
  await t.rejects(w.append(enc('x'), 'm', { timeoutMs: 0 }), I, 'timeoutMs 0');
  t.equal(await log.lastSeq(), 0, 'nothing was written');
  t.equal(w.state, 'ready', 'the writer is still usable');
  t.throws(() => log.writer(-1), I, 'negative lastSeq');
  await t.rejects(all(log.read(0)), I, 'read from 0');
  await t.rejects(all(log.read(1, -1)), I, 'read until -1');
  t.throws(() => log.tail(1, { stallMs: 10 }), I, 'a tail checking every 10 ms');
  t.throws(() => log.tail(1.5), I, 'a tail from 1.5');
  t.throws(() => new ShardLog(client, 'bad', 70000), I, 'shard out of range');
  t.throws(() => new ShardLog(client, '.hidden', 0), I, 'a dataset name quiver refuses');
  t.throws(() => new ShardLog(client, 'a'.repeat(128).replace(/a/g, '.').replace(/^./, 'a'), 0), I, 'a name too long once escaped');
  await t.rejects(ensureDatasetLog(client, 'bad', { replicas: 6 }), I, '6 replicas');
  await t.rejects(ensureDatasetLog(client, 'bad', { duplicateWindowMs: 10 }), I, 'a 10 ms dedup window');
  await t.rejects(ensureDatasetLog(client, 'bad', { replicas: 1 }), { code: 'QUIVER_ERR_EXISTS' }, 'the stream exists with 3 replicas');
  await t.rejects(ClusterClient.connect({ servers: ['http://x'] }), I, 'a server that is not a nats:// URL');
});

t.test('dataset names map to distinct streams and subjects; delete removes every shard log', async (t) => {
  const a = new ShardLog(client, 'a.b', 0);
  const b = new ShardLog(client, 'a_b', 0);
  t.not(a.stream, b.stream, '"a.b" and "a_b" get different streams');
  await ensureDatasetLog(client, 'a.b', { replicas: 1 });
  await ensureDatasetLog(client, 'a_b', { replicas: 1 });
  await a.writer(0).append(enc('dot'), 'dot');
  await b.writer(0).append(enc('underscore'), 'underscore');
  t.same((await all(a.read())).map((e) => dec(e.data)), ['dot'], 'each reads its own');
  t.equal(await deleteDatasetLog(client, 'a.b'), true, 'deleted');
  t.equal(await deleteDatasetLog(client, 'a.b'), false, 'a second delete finds nothing');
  await t.rejects(a.lastSeq(), { code: 'QUIVER_ERR_IO' }, 'reading a deleted log is a coded error');
  t.same((await all(b.read())).map((e) => dec(e.data)), ['underscore'], 'the other dataset is untouched');
});
