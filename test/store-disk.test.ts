// alwaysRam: false on a durable Store (issue 11, docs/durability.md "The
// originals files"): refused in memory; on SIFT10K (two shards of ~5,000,
// far past the spill at 1,024) the originals live only in each shard's
// originals-<generation>.f32, and the store answers like an alwaysRam: true
// twin of the same seeds (recall@10 within 0.01 at the same ef, the same
// exact distance for every id both return), `get` returns every vector bit
// for bit, a restart restores the same answers, a compaction writes the
// next generation's file (the older one kept until no image pairs with
// it), a damaged image falls back to the previous one and its file, a
// snapshot carries the files, and a drop removes them.
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store, type SearchHits } from '../host/index.js';
import { bruteForce, recallAt, sift } from './helpers/data.js';

const { base, query, truth } = sift();
const DIM = base.dim;
const N = base.n;
const K = 10;
const EF = 64;
const Q = query.n;
const GRAPH = { dim: DIM, M: 16, efConstruction: 100, ef: EF, shards: 2 };
const DISK = { scalar: { type: 'int8' as const, alwaysRam: false } };
const RAM = { scalar: { type: 'int8' as const } };
const IDS = Array.from({ length: N }, (_, i) => i);
const OPEN = { threads: 2, compaction: { intervalMs: 0 } };

const dir = mkdtempSync(join(tmpdir(), 'quiver-disk-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const shardDir = (ds: number, i: number): string => join(dir, 'datasets', String(ds), `shard-${i}`);
const originals = (ds: number, i: number): string[] => readdirSync(shardDir(ds, i)).filter((n) => n.startsWith('originals-')).sort();

/** Same bits: NaN-safe and -0-safe, unlike a float compare. */
function sameBits(a: Float32Array | undefined, b: Float32Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

const row = (i: number): Float32Array => base.data.subarray(i * DIM, (i + 1) * DIM);
const hitsOf = (h: SearchHits[]): [unknown[], number[]][] => h.map((x) => [Array.from(x.ids), Array.from(x.distances)]);

/** Every id's stored vector against the base rows: how many differ in any bit, and how many of `absent` are found. */
async function checkGets(s: Store, name: string, live: number[], absent: number[] = []): Promise<{ wrong: number; back: number }> {
  const got = await s.get(name, live);
  const wrong = live.filter((id, j) => !sameBits(got[j], row(id))).length;
  const back = absent.length === 0 ? 0 : (await s.get(name, absent)).filter((v) => v !== undefined).length;
  return { wrong, back };
}

const meanRecall = (hits: SearchHits[], truthOf: (q: number) => ArrayLike<number>): number =>
  hits.reduce((a, h, q) => a + recallAt(h.ids, truthOf(q), K), 0) / hits.length;

// the twin: alwaysRam true, in memory, dataset id 1 as well (the shards' seeds)
const twin = await Store.open(OPEN);
t.teardown(() => twin.close());
await twin.createDataset('d', { ...GRAPH, quantization: RAM });
await twin.insert('d', IDS, base.data);
const twinHits = await twin.searchBatch('d', query.data, K, { ef: EF });
const siftTruth = (q: number): Uint32Array | Int32Array => truth.data.subarray(q * truth.k, q * truth.k + K);
// small beams too: at ef 64 both are at recall 1 on SIFT10K in two shards
const SMALL_EFS = [10, 12, 16];
const twinSmall = await Promise.all(SMALL_EFS.map((ef) => twin.searchBatch('d', query.data, K, { ef })));

let store = await Store.open({ ...OPEN, path: dir });
t.teardown(() => store.close());
await store.createDataset('d', { ...GRAPH, quantization: DISK });
await store.insert('d', IDS, base.data);
let before: SearchHits[] = [];

t.test('an in-memory store refuses alwaysRam: false with INVALID_ARGUMENT and creates nothing', async (t) => {
  const s = await Store.open({ threads: 1 });
  t.teardown(() => s.close());
  await t.rejects(s.createDataset('d', { dim: 8, quantization: DISK }), {
    code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /alwaysRam: false keeps the f32 originals in files of the data directory, and this store has none: open it with a path/,
  });
  t.same(s.listDatasets(), []);
});

t.test('the dataset says alwaysRam false; the originals are in one file per shard, the codes in memory', async (t) => {
  const want = { scalar: { type: 'int8', quantile: 0.99, alwaysRam: false } };
  t.same((await store.datasetInfo('d')).quantization, want, 'datasetInfo');
  const stats = (await store.stats()).datasets[0]!;
  t.same(stats.quantization, want, 'stats()');
  const catalog = JSON.parse(readFileSync(join(dir, 'CATALOG'), 'utf8')) as { datasets: { quantization?: unknown }[] };
  t.same(catalog.datasets[0]!.quantization, want, 'the catalog file');
  for (let i = 0; i < 2; i++) {
    const s = stats.shardStats[i]!;
    t.ok(s.liveNodes > 4 * 1024, `shard ${i} holds ${s.liveNodes} vectors, far past the spill`);
    t.same(originals(1, i), ['originals-1.f32'], `shard ${i}: one originals file, generation 1`);
    t.equal(statSync(join(shardDir(1, i), 'originals-1.f32')).size, s.liveNodes * DIM * 4, `shard ${i}: dim x 4 bytes for each of its slots`);
  }
  const twinStats = (await twin.stats()).datasets[0]!;
  const committed = stats.shardStats.reduce((a, s) => a + s.committedBytes, 0);
  const twinCommitted = twinStats.shardStats.reduce((a, s) => a + s.committedBytes, 0);
  t.comment(`committed bytes: alwaysRam false ${committed}, true ${twinCommitted} (${(committed / N).toFixed(0)} vs ${(twinCommitted / N).toFixed(0)} a vector)`);
  t.ok(committed < 0.6 * twinCommitted, 'the shards hold far less without the originals');
});

t.test('get returns every vector bit for bit (from the files); ignore: true is refused once spilled', async (t) => {
  t.same(await checkGets(store, 'd', IDS), { wrong: 0, back: 0 }, `all ${N} vectors exact`);
  const scrolled = await store.scroll('d', { limit: 50, withVector: true });
  t.ok(scrolled.points.every((p) => sameBits(p.vector, row(p.id as number))), 'scroll with vectors too');
  await t.rejects(store.search('d', row(0), K, { quantization: { ignore: true } }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
});

t.test('searches: the same answers as alwaysRam true at every ef, recall@10 within 0.01', async (t) => {
  before = await store.searchBatch('d', query.data, K, { ef: EF });
  const runs = [...SMALL_EFS.map((ef, i) => ({ ef, twin: twinSmall[i]! })), { ef: EF, twin: twinHits }];
  for (const { ef, twin: want } of runs) {
    const got = ef === EF ? before : await store.searchBatch('d', query.data, K, { ef });
    const recall = meanRecall(got, siftTruth);
    const twinRecall = meanRecall(want, siftTruth);
    t.ok(Math.abs(recall - twinRecall) <= 0.01, `SIFT10K recall@${K} at ef ${ef}: alwaysRam false ${recall.toFixed(4)}, true ${twinRecall.toFixed(4)}: within 0.01`);
    t.same(hitsOf(got), hitsOf(want), `ef ${ef}: the same ids and distances as alwaysRam true, to the bit`);
  }
  t.ok(before.every((h) => h.ids.length === K), `${K} hits for every query`);
  const self = await store.searchBatch('d', base.data.subarray(0, 20 * DIM), 1, { ef: EF });
  t.ok(self.every((h, i) => h.distances[0] === 0 && sameBits(row(h.ids[0] as number), row(i))), 'each stored vector finds itself (or its duplicate) at distance 0');
});

t.test('a restart restores the same answers and vectors', async (t) => {
  await store.close();
  store = await Store.open({ ...OPEN, path: dir });
  t.ok(store.recovery.every((r) => r.error === undefined && r.replayed === 0), 'from the images the close wrote');
  t.same(hitsOf(await store.searchBatch('d', query.data, K, { ef: EF })), hitsOf(before), 'the same ids and distances');
  t.same(await checkGets(store, 'd', IDS), { wrong: 0, back: 0 });
});

const gone = IDS.filter((i) => i % 3 === 0);
const live = IDS.filter((i) => i % 3 !== 0);
const liveTruth = Array.from({ length: Q }, (_, q) => bruteForce(base.data, DIM, query.data, q * DIM, K, live));

t.test('a compaction writes generation 2; generation 1 stays while an image pairs with it; deleted ids never come back', async (t) => {
  for (const s of [store, twin]) {
    await s.delete('d', gone);
    await s.compact('d');
  }
  for (let i = 0; i < 2; i++) t.same(originals(1, i), ['originals-1.f32', 'originals-2.f32'], `shard ${i}: the new file, and the one the previous image pairs with`);
  t.same(await checkGets(store, 'd', live, gone), { wrong: 0, back: 0 }, 'live vectors exact, deleted ids absent');
  const after = await store.searchBatch('d', query.data, K, { ef: EF });
  const twinAfter = await twin.searchBatch('d', query.data, K, { ef: EF });
  const recall = meanRecall(after, (q) => liveTruth[q]!);
  const recallTwin = meanRecall(twinAfter, (q) => liveTruth[q]!);
  t.comment(`after deleting a third and compacting: recall@${K} ${recall.toFixed(4)}, twin ${recallTwin.toFixed(4)}`);
  t.ok(recall >= 0.9 && recall >= recallTwin - 0.02, 'the compacted graph keeps its recall');
  t.same(hitsOf(after), hitsOf(twinAfter), 'the same ids and distances as the twin after both compacted');
  t.ok(after.every((h) => h.ids.every((id) => (id as number) % 3 !== 0)), 'no deleted id is returned');
});

t.test('a damaged current image: recovery falls back to the previous image and the file it pairs with', async (t) => {
  await store.close();
  const images = readdirSync(shardDir(1, 0)).filter((n) => n.endsWith('.qvi')).sort();
  t.equal(images.length, 2, 'two images kept');
  const current = join(shardDir(1, 0), images.at(-1)!);
  const bytes = readFileSync(current);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(current, bytes);
  store = await Store.open({ ...OPEN, path: dir });
  t.ok(store.recovery[0]!.error === undefined && store.recovery[0]!.replayed > 0, `shard 0 replayed the deletes after the older image (${store.recovery[0]!.replayed} records)`);
  t.same(await checkGets(store, 'd', live, gone), { wrong: 0, back: 0 }, 'every live vector exact from generation 1, deleted ids absent');
  const hits = await store.searchBatch('d', query.data, K, { ef: EF });
  t.ok(meanRecall(hits, (q) => liveTruth[q]!) >= 0.9, 'and searchable');
  // a compaction and a checkpoint later, only the newest generation is paired
  await store.compact('d');
  await store.checkpoint('d');
  for (let i = 0; i < 2; i++) {
    const files = originals(1, i);
    t.equal(files.length, 1, `shard ${i}: one file left (${files.join(', ')})`);
  }
  t.same(await checkGets(store, 'd', live, gone), { wrong: 0, back: 0 });
});

t.test('a snapshot carries the originals; recovered, it answers the same; an in-memory store refuses it', async (t) => {
  const snap = await store.createSnapshot('d');
  const file = join(store.snapshotsPath, 'd', snap.name);
  const info = await store.recoverSnapshot('copy', file);
  t.same(info.quantization, { scalar: { type: 'int8', quantile: 0.99, alwaysRam: false } });
  const want = hitsOf(await store.searchBatch('d', query.data, K, { ef: EF }));
  t.same(hitsOf(await store.searchBatch('copy', query.data, K, { ef: EF })), want, 'the same hits and distances');
  t.same(await checkGets(store, 'copy', live, gone), { wrong: 0, back: 0 }, 'the vectors, exact, from the restored files');
  const mem = await Store.open({ threads: 1 });
  t.teardown(() => mem.close());
  await t.rejects(mem.recoverSnapshot('copy', file), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /durable store/ });
  t.same(mem.listDatasets(), [], 'nothing was created');
  await store.close();
  store = await Store.open({ ...OPEN, path: dir });
  t.same(hitsOf(await store.searchBatch('copy', query.data, K, { ef: EF })), want, 'and after a restart');
});

t.test('a drop removes the dataset\'s files, originals too', async (t) => {
  const id = JSON.parse(readFileSync(join(dir, 'CATALOG'), 'utf8')).datasets.find((d: { name: string }) => d.name === 'copy').id as number;
  t.ok(existsSync(join(dir, 'datasets', String(id))));
  await store.dropDataset('copy');
  t.notOk(existsSync(join(dir, 'datasets', String(id))), 'its directory is gone');
  t.same(await checkGets(store, 'd', live.slice(0, 500)), { wrong: 0, back: 0 }, 'the other dataset is untouched');
});

t.test('negative control: the files are where the vectors live (zeroed bytes come back as zeros, and the check sees it)', async (t) => {
  await store.close();
  const file = join(shardDir(1, 0), originals(1, 0).at(-1)!);
  const bytes = readFileSync(file);
  bytes.fill(0, 0, bytes.length >> 1);
  writeFileSync(file, bytes);
  store = await Store.open({ ...OPEN, path: dir });
  const { wrong } = await checkGets(store, 'd', live);
  t.ok(wrong > 0, `${wrong} vectors read back wrong after the file was damaged: nothing else holds them`);
});
