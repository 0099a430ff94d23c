// Cluster nodes (host/store/cluster-node.ts) on a real 3-node nats-server
// cluster, three in this process, each with its own NATS connection and
// directory: a dataset of 6 shards with 2 copies each is placed over them;
// writes through one node reach every shard's leader, searches through
// another scatter and merge, and equal a single-process Store and brute
// force; a follower answers 'any' reads once caught up; a node that stops
// without leaving (its leases run out, as a crashed one's) loses its shards
// to the others, and every acknowledged write stays readable.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { bruteForce, clustered } from './helpers/data.js';
import { ImageStore } from '../host/cluster/images.js';
import { ErrorCode } from '../host/errors.js';
import { Store } from '../host/store/store.js';
import { ClusterNode } from '../host/store/cluster-node.js';

const DIM = 24;
const N = 3000;
const SHARDS = 6;
const TTL = 1500;
const { cluster, client } = await clusterAndClient(t, 'cluster-node');
const images = await ImageStore.open(client);
const dir = mkdtempSync(join(tmpdir(), 'quiver-cnode-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const base = clustered(N, DIM, 8, 5);
const queries = clustered(30, DIM, 8, 99);
const ids = Array.from({ length: N }, (_, i) => i);

// an image every 4 records a leader writes (the failover's single-point writes make many)
const open = (id: string) => ClusterNode.open({ servers: cluster.servers, nodeId: id, dir: join(dir, id), ttlMs: TTL, imageEvery: 4 });
// one after the other: the first makes the buckets
const nodes: ClusterNode[] = [];
for (const id of ['n1', 'n2', 'n3']) nodes.push(await open(id));
t.teardown(() => Promise.all(nodes.map((n) => n.close())));
const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];

/** Every shard led by a node whose copy leads, and copies everywhere placed. */
function settled(d: string, want: readonly ClusterNode[]): boolean {
  const leading = want.flatMap((n) => n.roles().leading.filter((l) => l.dataset === d).map((l) => ({ n, shard: l.shard })));
  if (new Set(leading.map((l) => l.shard)).size !== SHARDS) return false;
  return leading.every(({ n, shard }) => n.replica(d, shard)?.role === 'leader');
}

t.test('bad requests are coded errors and change nothing', async (t) => {
  await t.rejects(a.createDataset('bad', { shards: 2, replicas: 2, dim: 0 }), { code: ErrorCode.INVALID_ARGUMENT });
  await t.rejects(a.createDataset('bad', { shards: 0, replicas: 2, dim: 8 }), { code: ErrorCode.INVALID_ARGUMENT });
  await t.rejects(a.upsert('nope', [1], new Float32Array(8)), { code: ErrorCode.NOT_FOUND });
});

t.test('6 shards x 2 copies on 3 nodes: writes through one node, searches through the others equal a single-process store', async (t) => {
  await a.createDataset('d', { shards: SHARDS, replicas: 2, dim: DIM, M: 12, efConstruction: 64, ef: 64 });
  await t.rejects(b.createDataset('d', { shards: 4, replicas: 2, dim: DIM }), { code: ErrorCode.EXISTS }, 'the name is taken with other parameters');
  const ms = await until('every shard led', () => settled('d', nodes), 20_000);
  t.comment(`placed and led in ${ms.toFixed(0)} ms`);
  const copies = nodes.map((n) => n.roles().copies.filter((x) => x.dataset === 'd').length);
  t.same(copies.reduce((x, y) => x + y, 0), SHARDS * 2, `12 copies in all (${copies.join(', ')})`);
  t.ok(copies.every((x) => x === 4), 'each node holds 4');

  await a.upsert('d', ids, base);
  await t.rejects(a.upsert('d', [1], new Float32Array(DIM - 1)), { code: ErrorCode.DIMENSION });
  const single = await Store.open({ threads: 1 });
  t.teardown(() => single.close());
  await single.createDataset('d', { dim: DIM, shards: SHARDS, M: 12, efConstruction: 64 });
  await single.insert('d', ids, base);
  let same = 0;
  let exact = 0;
  for (let q = 0; q < 30; q++) {
    const v = queries.subarray(q * DIM, (q + 1) * DIM);
    // a beam as wide as a shard: every reachable point is scored, so both are exact
    const want = await single.search('d', v, 10, { ef: N });
    for (const via of [b, c]) {
      const got = await via.search('d', v, 10, { ef: N });
      if (JSON.stringify(got.ids) === JSON.stringify(want.ids) && got.distances.every((d, i) => d === want.distances[i])) same++;
    }
    if (JSON.stringify(want.ids) === JSON.stringify(bruteForce(base, DIM, queries, q * DIM, 10))) exact++;
  }
  t.equal(same, 60, 'through n2 and n3: the same ids and distances as the single-process store, on all 30 queries');
  t.equal(exact, 30, 'which is brute force\'s answer');

  // a follower answers once it has the leader's last record
  for (let s = 0; s < SHARDS; s++) {
    const leader = nodes.find((n) => n.replica('d', s)?.role === 'leader')!;
    const seq = leader.replica('d', s)!.lastSeq;
    for (const n of nodes) await n.replica('d', s)?.caughtUp(seq);
  }
  let anySame = 0;
  for (let q = 0; q < 30; q++) {
    const v = queries.subarray(q * DIM, (q + 1) * DIM);
    const lead = await c.search('d', v, 10, { ef: N });
    const any = await c.search('d', v, 10, { ef: N, consistency: 'any' });
    if (JSON.stringify(any.ids) === JSON.stringify(lead.ids)) anySame++;
  }
  t.equal(anySame, 30, 'consistency any (n3\'s own copies first) answers as the leaders once caught up');
  await t.rejects(c.search('d', queries.subarray(0, DIM), 10, { consistency: 'all' as never }), { code: ErrorCode.INVALID_ARGUMENT });

  await b.delete('d', ids.filter((i) => i % 2 === 0));
  const after = await c.search('d', queries.subarray(0, DIM), 20, { ef: N });
  t.ok(after.ids.length === 20 && after.ids.every((id) => (id as number) % 2 === 1), 'deletes through n2: no deleted id in n3\'s answer');
});

t.test('a node that stops without leaving: its shards move to the others, every acknowledged write stays readable', async (t) => {
  const led = a.roles().leading.filter((l) => l.dataset === 'd').map((l) => l.shard);
  t.ok(led.length > 0, `n1 leads shards ${led.join(', ')}`);
  const acked: number[] = [];
  let failed = 0;
  let stop = false;
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const id = 10_000 + i;
      try {
        await b.upsert('d', [id], base.subarray((i % N) * DIM, (i % N + 1) * DIM));
        acked.push(id);
      } catch (err) {
        if ((err as { code?: string }).code !== ErrorCode.UNAVAILABLE) throw err;
        failed++;
      }
    }
  })();
  await until('some writes', () => acked.length >= 20, 10_000);
  const killed = performance.now();
  await a.close(false);
  const ms = await until('n2 and n3 lead every shard', () => settled('d', [b, c]), 30_000);
  t.comment(`every shard led again ${(performance.now() - killed).toFixed(0)} ms after n1 stopped (ttl ${TTL} ms; bound: 2 x ttl + rounds + catch-up)`);
  t.ok(ms < 8 * TTL, 'within 8 x ttl');
  const before = acked.length;
  await until('writes go on', () => acked.length >= before + 20, 15_000);
  stop = true;
  await writer;
  t.comment(`${acked.length} writes acknowledged, ${failed} refused as UNAVAILABLE while shards moved`);
  // every acknowledged id, read through each remaining node, at distance 0 from its own vector
  let missing = 0;
  for (const via of [b, c]) {
    for (const id of acked.filter((_, j) => j % 5 === 0)) {
      const i = id - 10_000;
      const v = base.subarray((i % N) * DIM, (i % N + 1) * DIM);
      const hits = await via.search('d', v, 50, { ef: 400 });
      if (!hits.ids.includes(id)) missing++;
    }
  }
  t.equal(missing, 0, 'every 5th acknowledged write is found through n2 and through n3');
  // the leaders put images on their own as they wrote (imageEvery 4), at most 2 kept a shard
  const { id } = await b.dataset('d');
  const kept = await Promise.all(Array.from({ length: SHARDS }, (_, s) => images.list(id, s)));
  t.comment(`images kept per shard: ${kept.map((k) => k.length).join(', ')}`);
  t.ok(kept.some((k) => k.length > 0), 'some shard has an image its leader put without a checkpoint() call');
  t.ok(kept.every((k) => k.length <= 2), 'pruned to the newest 2');
  await t.rejects(ClusterNode.open({ servers: cluster.servers, nodeId: 'bad', dir: join(dir, 'bad'), imageEvery: -1 }), { code: ErrorCode.INVALID_ARGUMENT });
  await t.rejects(ClusterNode.open({ servers: cluster.servers, nodeId: 'bad', dir: join(dir, 'bad'), maxMoves: 0 }), { code: ErrorCode.INVALID_ARGUMENT });
});

t.test('images, then a fourth node: shards move to it, rebuilt from the newest image plus the stream after it', async (t) => {
  const imaged = [...await b.checkpoint('d'), ...await c.checkpoint('d')].sort((x, y) => x - y);
  t.same(imaged, [0, 1, 2, 3, 4, 5], 'n2 and n3 put an image of each shard they lead');
  // writes after the images: a rebuild must take them from the stream
  await b.upsert('d', [50_000, 50_001], base.subarray(0, 2 * DIM));
  const d4 = await open('n4');
  t.teardown(() => d4.close());
  const copiesOf = () => [b, c, d4].map((n) => n.roles().copies.filter((x) => x.dataset === 'd').length);
  // each node applies a new placement in its own round: until all three have, a copy can be counted
  // nowhere (4, 4, 3 was seen); a copy lost for good would keep the sum under 12 past the deadline
  await until('n4 holds copies and leads some shards, and every copy is held', () => {
    const mine = d4.roles().copies.filter((x) => x.dataset === 'd').length;
    return mine > 0 && d4.roles().leading.length > 0 && settled('d', [b, c, d4]) && copiesOf().reduce((x, y) => x + y, 0) === SHARDS * 2;
  }, 30_000);
  const per = copiesOf();
  const leads = [b, c, d4].map((n) => n.roles().leading.filter((x) => x.dataset === 'd').length);
  t.comment(`copies per node ${per.join(', ')}; leaderships ${leads.join(', ')}`);
  t.equal(per.reduce((x, y) => x + y, 0), SHARDS * 2, 'still 12 copies once every node has applied the placement');
  t.ok(Math.max(...leads) - Math.min(...leads) <= 1, 'leaderships balanced to one');
  // n4's copies came from an image: they hold every write, the ones after the image too
  const mine = d4.roles().copies.filter((x) => x.dataset === 'd').map((x) => x.shard);
  const from = mine.map((s) => d4.replica('d', s)!.rebuiltFrom);
  t.ok(from.every((f) => f.imageLsn !== null && f.replayed <= 3), `each from an image, replaying at most the writes after it: ${JSON.stringify(from)}`);
  const moves = d4.moves;
  t.ok(moves.maxRunning === 1 && moves.done >= mine.length && moves.running === 0, `its moves ran one at a time (maxMoves 1): ${JSON.stringify(moves)}`);
  let same = 0;
  for (let q = 0; q < 30; q++) {
    const v = queries.subarray(q * DIM, (q + 1) * DIM);
    const want = await b.search('d', v, 10, { ef: N });
    for (const s of mine) {
      const holder = [b, c].find((n) => n.replica('d', s) !== null && n.replica('d', s)!.role !== 'closed');
      if (holder !== undefined) await d4.replica('d', s)!.caughtUp(holder.replica('d', s)!.lastSeq);
    }
    const got = await d4.search('d', v, 10, { ef: N, consistency: 'any' });
    if (JSON.stringify(got.ids) === JSON.stringify(want.ids) && got.distances.every((x, i) => x === want.distances[i])) same++;
  }
  t.equal(same, 30, `n4 answers from its own copies (shards ${mine.join(', ')}) as the leaders do`);
  const found = await d4.search('d', base.subarray(0, DIM), 40, { ef: N });
  t.ok(found.ids.includes(50_000), 'a write made after the images is there');
  // the old owners let go of the copies that moved
  const held = [b, c].flatMap((n) => n.roles().copies.filter((x) => x.dataset === 'd').map((x) => `${n.nodeId}/${x.shard}`));
  t.equal(held.length, SHARDS * 2 - mine.length, 'n2 and n3 hold only the rest');
  let stale = 0;
  for (const n of [b, c]) for (let s = 0; s < SHARDS; s++) if (!n.roles().copies.some((x) => x.shard === s) && n.replica('d', s) !== null) stale++;
  t.equal(stale, 0, 'a copy placed elsewhere is closed and gone from the node');
});
