// Trimming a shard's log (host/store/cluster-trim.ts, host/cluster/applied.ts),
// two cluster nodes in this process on a real 3-node nats-server cluster,
// one shard with two copies: after each image the leader purges the records
// the oldest image kept and every copy no longer need, so the stream holds
// the records since the oldest image and its bytes go down; a rebuild from
// the trimmed log answers as the leader does; a copy that has applied less
// holds the trim at what it has applied, and a copy that has not reported
// holds it all; a rebuild that finds no image covering the trimmed log
// refuses rather than missing records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { clustered } from './helpers/data.js';
import { AppliedTable } from '../host/cluster/applied.js';
import { ImageStore } from '../host/cluster/images.js';
import { ShardLog } from '../host/cluster/shard-stream.js';
import { ClusterNode } from '../host/store/cluster-node.js';
import { rebuildShard } from '../host/store/cluster-rebuild.js';
import { ErrorCode } from '../host/errors.js';

const DIM = 8;
const { cluster, client } = await clusterAndClient(t, 'cluster-trim');
const images = await ImageStore.open(client);
const applied = await AppliedTable.open(client);
const dir = mkdtempSync(join(tmpdir(), 'quiver-ctrim-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const nodes: ClusterNode[] = [];
for (const id of ['t1', 't2']) nodes.push(await ClusterNode.open({ servers: cluster.servers, nodeId: id, dir: join(dir, id), ttlMs: 1500, imageEvery: 0 }));
t.teardown(() => Promise.all(nodes.map((n) => n.close())));
const [a] = nodes as [ClusterNode];

await a.createDataset('t', { shards: 1, replicas: 2, dim: DIM, M: 8, efConstruction: 16 });
await until('led and followed', () => nodes.some((n) => n.replica('t', 0)?.role === 'leader') && nodes.every((n) => n.replica('t', 0) !== null), 20_000);
const { id, params } = await a.dataset('t');
const log = new ShardLog(client, id, 0);
const leader = (): ClusterNode => nodes.find((n) => n.replica('t', 0)?.role === 'leader')!;
const follower = (): ClusterNode => nodes.find((n) => n.replica('t', 0)?.role === 'follower')!;
let next = 0;

/** `n` single-point upserts (a record each), then every copy's report caught up with the log. */
async function write(n: number): Promise<void> {
  for (let i = 0; i < n; i++, next++) await nodes[next % 2]!.upsert('t', [next], clustered(1, DIM, 1, next));
  const last = await log.lastSeq();
  await until('every copy reported the tail', async () => ((await applied.least(id, 0, ['t1', 't2'])) ?? 0) >= last, 20_000);
}

const seqs = async (): Promise<number[]> => {
  const out: number[] = [];
  for await (const e of log.read(1)) out.push(e.seq);
  return out;
};
const bytes = async (): Promise<number> => (await client.jsm.streams.info(log.stream)).state.bytes;

t.test('after each image the log keeps the records since the oldest image kept; its bytes go down; a rebuild from it answers as the leader', async (t) => {
  await write(30);
  const full = await bytes();
  t.same(await leader().checkpoint('t'), [0], 'imaged');
  t.same((await seqs()).length, 1, 'one image, no write since: only the last record is kept (claims and in-doubt retries read it)');
  t.ok((await bytes()) < full / 5, `the stream's bytes went down (${full} -> ${await bytes()})`);
  const covered: number[] = [];
  for (let round = 0; round < 3; round++) {
    await write(30);
    await leader().checkpoint('t');
    const kept = await images.list(id, 0);
    covered.push(Math.min(...kept.map((i) => i.seq)));
    const left = await seqs();
    t.ok(left.length === 30 && left[0]! > covered[round]!, `round ${round + 1}: ${left.length} records kept, all after the oldest image kept (seq ${covered[round]})`);
  }
  const r = await rebuildShard({ client, images, dataset: id, shard: 0, params });
  t.equal(r.shard.stats().live, 120, 'a rebuild from the newest image and the trimmed log holds all 120 points');
  r.shard.dispose();
  for (const n of nodes) t.equal(await n.count('t', { consistency: 'any' }), 120, `${n.nodeId}'s copy holds them too`);
});

t.test('a rebuild that finds no image covering the trimmed log refuses, rather than missing records', async (t) => {
  const below = await applied.trimmedBelow(id, 0);
  t.ok(below > 1, `the trim point is recorded (${below})`);
  for (const i of await images.list(id, 0)) await images.delete(id, 0, i.lsn);
  await t.rejects(rebuildShard({ client, images, applied, dataset: id, shard: 0, params }), { code: ErrorCode.UNAVAILABLE }, 'with the trim point: UNAVAILABLE (tried again by the node)');
  const blind = await rebuildShard({ client, images, dataset: id, shard: 0, params });
  t.ok(blind.shard.stats().live < 120, `without it, the rebuild would have held ${blind.shard.stats().live} of 120 points`);
  blind.shard.dispose();
});

t.test('a copy that has applied less holds the trim at what it applied; one that has not reported holds it all', async (t) => {
  await write(30);
  const before = await seqs();
  const held = before[10]!;
  // the follower has reported the tail and applies nothing new now, so it does not report again
  await applied.report(id, 0, follower().nodeId, held);
  await leader().checkpoint('t');
  t.same(await seqs(), before.filter((s) => s > held), `nothing past the ${held} the follower reported was purged`);
  await applied.remove(id, 0);
  const kept = await seqs();
  await leader().checkpoint('t');
  t.same(await seqs(), kept, 'no copy reported: nothing purged');
  await write(5);
  await leader().checkpoint('t');
  const now = await seqs();
  t.ok(now.length < kept.length + 5, `once both reported again the trim goes on (${kept.length} + 5 -> ${now.length})`);
  for (const n of nodes) t.equal(await n.count('t', { consistency: 'any' }), next, `${n.nodeId}: every point`);
});
