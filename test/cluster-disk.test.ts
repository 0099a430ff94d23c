// `alwaysRam: false` on a cluster (host/store/cluster-rebuild.ts,
// cluster-replica.ts): an int8-quantized dataset whose f32 originals leave
// RAM for a file. Three library nodes in this process on a real 3-node
// nats-server cluster, against a durable single-process Store with the same
// options as the model. Every copy spills its originals to its own file
// (past 1,024 points a shard), searches and vectors read back answer as the
// model does; each leader's image carries its originals (a snapshot part),
// so a fourth node that joins rebuilds its copy from the image and answers
// the same, with its own spilled file, while the node that let the copy go
// deletes its file; a dropped dataset leaves no originals file on any node.
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { rng } from './helpers/data.js';
import { ImageStore } from '../host/cluster/images.js';
import { datasetToken } from '../host/cluster/names.js';
import type { ClusterStore } from '../host/store/cluster-store.js';
import { Store } from '../host/store/store.js';

const DIM = 16;
const N = 2600;
const { cluster, client } = await clusterAndClient(t, 'cluster-disk');
const images = await ImageStore.open(client);
const dir = mkdtempSync(join(tmpdir(), 'quiver-cdisk-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const open = (id: string): Promise<ClusterStore> => Store.open({ path: join(dir, id), cluster: { servers: cluster.servers, nodeId: id, ttlMs: 1500, imageEvery: 0 } });
const nodes: ClusterStore[] = [];
for (const id of ['n1', 'n2', 'n3']) nodes.push(await open(id));
t.teardown(() => Promise.all(nodes.map((n) => n.close())));
const model = await Store.open({ path: join(dir, 'model'), threads: 1 });
t.teardown(() => model.close());

function vectors(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * DIM }, () => r() * 2 - 1);
}

const opts = { dim: DIM, shards: 2, M: 8, efConstruction: 32, quantization: { scalar: { type: 'int8' as const, quantile: 0.98, alwaysRam: false } } };
const v = vectors(N, 5);

/** The originals files of a node's copies of dataset `id`: shard -> file names. */
function originalsOf(node: string, id: string): Map<number, string[]> {
  const out = new Map<number, string[]>();
  const base = join(dir, node, datasetToken(id));
  if (!existsSync(base)) return out;
  for (const shard of readdirSync(base)) {
    const o = join(base, shard, 'originals');
    if (!existsSync(o)) continue;
    out.set(Number(shard), readdirSync(o).flatMap((g) => readdirSync(join(o, g)).map((f) => join(o, g, f))));
  }
  return out;
}

/** Whether `via` answers 20 exhaustive searches and a retrieve of every 13th point exactly as the model. */
async function answersAsModel(via: ClusterStore, consistency: 'leader' | 'any'): Promise<{ searches: number; vectors: boolean }> {
  let searches = 0;
  for (let q = 0; q < 20; q++) {
    const query = vectors(1, 1000 + q);
    const want = await model.search('d', query, 10, { ef: N });
    const got = await via.search('d', query, 10, { ef: N, consistency });
    if (JSON.stringify(got.ids) === JSON.stringify(want.ids) && got.distances.every((d, i) => d === want.distances[i])) searches++;
  }
  const ids = Array.from({ length: Math.floor(N / 13) }, (_, i) => i * 13);
  const want = await model.get('d', ids);
  const got = await via.get('d', ids, { consistency });
  return { searches, vectors: got.every((g, i) => g !== undefined && g.every((x, j) => x === want[i]![j])) };
}

t.test('every copy spills its originals to its own file and answers as a durable Store with alwaysRam false', async (t) => {
  const [n1, n2] = nodes as [ClusterStore, ClusterStore];
  await n1.createDataset('d', { ...opts, replicas: 2 });
  await model.createDataset('d', opts);
  t.same((await n2.datasetInfo('d')).quantization, (await model.datasetInfo('d')).quantization, 'datasetInfo: alwaysRam false, as the Store reports it');
  for (let at = 0; at < N; at += 500) {
    const ids = Array.from({ length: Math.min(500, N - at) }, (_, i) => at + i);
    await n1.insert('d', ids, v.subarray(at * DIM, (at + ids.length) * DIM));
    await model.insert('d', ids, v.subarray(at * DIM, (at + ids.length) * DIM));
  }
  await until('every copy caught up', async () => (await Promise.all(nodes.map((n) => n.count('d', { consistency: 'any' })))).every((c) => c === N), 20_000);
  const { id } = await n1.node.dataset('d');
  let copies = 0;
  for (const n of nodes) {
    const files = originalsOf(n.nodeId, id);
    for (const c of n.node.roles().copies) {
      const shard = n.node.replica('d', c.shard)!.shard;
      t.ok(shard.spilled, `${n.nodeId}'s copy of shard ${c.shard} has spilled its originals`);
      const f = files.get(c.shard) ?? [];
      t.equal(f.length, 1, `${n.nodeId}: one originals file for shard ${c.shard}`);
      t.ok(statSync(f[0]!).size >= shard.stats().live * DIM * 4, `a slot of dim x 4 bytes for each of its ${shard.stats().live} points`);
      copies++;
    }
    t.same([...files.keys()].sort(), n.node.roles().copies.map((c) => c.shard).sort(), `${n.nodeId} has files only for the copies it holds`);
  }
  t.equal(copies, 4, '2 shards x 2 copies');
  for (const n of nodes) {
    t.same(await answersAsModel(n, 'leader'), { searches: 20, vectors: true }, `through ${n.nodeId}, from the leaders: the model's ids, distances and f32 vectors`);
    t.same(await answersAsModel(n, 'any'), { searches: 20, vectors: true }, `through ${n.nodeId}, its own copies first`);
  }
});

t.test('an image carries the originals: a node that joins rebuilds its copy from it and answers the same; the one that let it go deletes its file', async (t) => {
  const [n1] = nodes as [ClusterStore];
  const { id } = await n1.node.dataset('d');
  const imaged = (await Promise.all(nodes.map((n) => n.node.checkpoint('d')))).flat().sort();
  t.same(imaged, [0, 1], 'each shard imaged by its leader');
  for (const s of [0, 1]) {
    const newest = (await images.newest(id, s))!;
    t.ok(newest.size > (N / 2) * DIM * 4 * 0.9, `shard ${s}'s image (${newest.size} bytes) holds its originals after the codes`);
  }
  const had = new Map(nodes.map((n) => [n.nodeId, n.node.roles().copies.map((c) => c.shard)]));
  const n4 = await open('n4');
  nodes.push(n4);
  await until('the fourth node holds a copy, rebuilt', () => n4.node.roles().copies.some((c) => n4.node.replica('d', c.shard) !== null), 60_000);
  await until('copies settled: 4 in all, one each', () => nodes.every((n) => n.node.roles().copies.length === 1), 60_000);
  const [mine] = n4.node.roles().copies;
  const r = n4.node.replica('d', mine!.shard)!;
  t.not(r.rebuiltFrom.imageLsn, null, `n4's copy of shard ${mine!.shard} was rebuilt from an image`);
  t.ok(r.shard.spilled, 'and its originals are in its own file');
  t.same([...originalsOf('n4', id).keys()], [mine!.shard]);
  t.same(await answersAsModel(n4, 'any'), { searches: 20, vectors: true }, 'n4, from its own copy first: the model\'s answers and vectors');
  for (const n of nodes.slice(0, 3)) {
    const now = n.node.roles().copies.map((c) => c.shard);
    const left = had.get(n.nodeId)!.filter((s) => !now.includes(s));
    await until(`${n.nodeId}'s files follow its copies`, () => JSON.stringify([...originalsOf(n.nodeId, id).keys()].sort()) === JSON.stringify([...now].sort()), 20_000);
    if (left.length > 0) t.pass(`${n.nodeId} let go of shard ${left.join(', ')} and deleted its originals file`);
  }
  await n4.insert('d', [N + 1], vectors(1, 77));
  await model.insert('d', [N + 1], vectors(1, 77));
  t.same(await answersAsModel(nodes[1]!, 'leader'), { searches: 20, vectors: true }, 'writes go on');
});

t.test('a dropped dataset leaves no originals file on any node', async (t) => {
  const { id } = await nodes[0]!.node.dataset('d');
  t.ok(await nodes[2]!.dropDataset('d'));
  for (const n of nodes) t.equal(originalsOf(n.nodeId, id).size, 0, `none on ${n.nodeId}`);
});
