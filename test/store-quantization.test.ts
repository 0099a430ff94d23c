// int8 quantization through the Store (issue 11): createDataset's
// `quantization` option checked field by field (a bad one is
// INVALID_ARGUMENT and creates nothing); search's `quantization` params
// reach every shard through the worker protocol (ignore walks the
// originals: the same hits as an unquantized twin, since inserts build the
// graph from the originals; rescore false answers code distances; the
// default re-ranks with exact ones); datasetInfo and stats() report it; the
// config survives a snapshot, a compaction, a graceful close and a SIGKILL
// before any image (the shards rebuilt from their logs quantized).
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Index, QuiverError, Store, type SearchHits } from '../host/index.js';
import { bruteForce, clustered, recallAt } from './helpers/data.js';
import { buildDist, DurableChild } from './fixtures/durable-driver.js';

const DIM = 32;
const N = 3000;
const Q = 40;
const K = 10;
const GRAPH = { dim: DIM, M: 12, efConstruction: 64, ef: 48 };
const QUANT = { scalar: { type: 'int8' as const } };
const INFO = { scalar: { type: 'int8', quantile: 0.99, alwaysRam: true } };
const IDS = Array.from({ length: N }, (_, i) => i);
const DATA = clustered(N, DIM, 16, 11);
const QUERIES = clustered(Q, DIM, 16, 12);
const TRUTH = Array.from({ length: Q }, (_, q) => bruteForce(DATA, DIM, QUERIES, q * DIM, K));

const tmp = (t: Pick<typeof import('tap').default, 'teardown'>): string => {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-quant-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

/** Exact squared L2 of stored row `id` to query q, in float64. */
function exact(id: number, q: number): number {
  let d = 0;
  for (let j = 0; j < DIM; j++) {
    const x = DATA[id * DIM + j]! - QUERIES[q * DIM + j]!;
    d += x * x;
  }
  return d;
}

function meanRecall(hits: SearchHits[]): number {
  return hits.reduce((a, h, q) => a + recallAt(h.ids, TRUTH[q]!, K), 0) / hits.length;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof QuiverError)) throw err;
    return err.code;
  }
  return 'resolved';
}

// the first dataset of each store gets id 1, the shards' seed: the two twins build the same graphs
const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
t.teardown(() => store.close());
await store.createDataset('q', { ...GRAPH, shards: 2, quantization: QUANT });
await store.insert('q', IDS, DATA);
const twin = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
t.teardown(() => twin.close());
await twin.createDataset('f', { ...GRAPH, shards: 2 });
await twin.insert('f', IDS, DATA);

t.test('bad quantization options: INVALID_ARGUMENT naming the field, nothing created', async (t) => {
  const bad: [unknown, RegExp][] = [
    ['int8', /options\.quantization must be an object/],
    [[QUANT], /options\.quantization must be an object/],
    [{}, /options\.quantization\.scalar must be an object/],
    [{ scalar: null }, /options\.quantization\.scalar must be an object/],
    [{ product: { compression: 'x4' } }, /options\.quantization\.product is not an option/],
    [{ scalar: { type: 'int8' }, binary: {} }, /options\.quantization\.binary is not an option/],
    [{ scalar: {} }, /options\.quantization\.scalar\.type must be 'int8'/],
    [{ scalar: { type: 'uint8' } }, /options\.quantization\.scalar\.type must be 'int8'/],
    [{ scalar: { type: 'int8', quantile: 0.49 } }, /quantile must be a number from 0\.5 to 1/],
    [{ scalar: { type: 'int8', quantile: 1.01 } }, /quantile must be a number from 0\.5 to 1/],
    [{ scalar: { type: 'int8', quantile: Number.NaN } }, /quantile must be a number from 0\.5 to 1/],
    [{ scalar: { type: 'int8', quantile: '0.9' } }, /quantile must be a number from 0\.5 to 1/],
    [{ scalar: { type: 'int8', alwaysRam: 'yes' } }, /alwaysRam must be a boolean/],
    [{ scalar: { type: 'int8', always_ram: true } }, /options\.quantization\.scalar\.always_ram is not an option/],
    // this store is in memory: alwaysRam false needs a data directory (test/store-disk.test.ts has one)
    [{ scalar: { type: 'int8', alwaysRam: false } }, /alwaysRam: false keeps the f32 originals in files of the data directory, and this store has none/],
  ];
  const before = store.listDatasets();
  for (const [quantization, message] of bad) {
    const p = store.createDataset('bad', { ...GRAPH, quantization: quantization as never });
    await t.rejects(p, { code: 'QUIVER_ERR_INVALID_ARGUMENT', message }, JSON.stringify(quantization));
  }
  t.same(store.listDatasets(), before, 'no dataset was created');
  t.equal(await code(store.datasetInfo('bad')), 'QUIVER_ERR_NOT_FOUND');
});

t.test('property: a quantile is taken iff it is a number from 0.5 to 1; the info echoes it', async (t) => {
  let made = 0;
  let refused = 0;
  await fc.assert(fc.asyncProperty(
    fc.oneof(fc.double({ min: 0.3, max: 1.2, noNaN: true }), fc.constantFrom(0.5, 1, 0.4999999, 1.0000001, -0, Infinity)),
    fc.option(fc.boolean(), { nil: undefined }),
    async (quantile, alwaysRam) => {
      const scalar = { type: 'int8' as const, quantile, ...(alwaysRam === undefined ? {} : { alwaysRam }) };
      const ok = quantile >= 0.5 && quantile <= 1 && alwaysRam !== false;
      const p = store.createDataset('prop', { dim: 4, shards: 1, quantization: { scalar } });
      if (!ok) {
        t.equal(await code(p), 'QUIVER_ERR_INVALID_ARGUMENT');
        refused++;
        return store.listDatasets().includes('prop') === false;
      }
      const info = await p;
      made++;
      await store.dropDataset('prop');
      return info.quantization?.scalar.quantile === quantile && info.quantization.scalar.alwaysRam === true && info.quantization.scalar.type === 'int8';
    },
  ), { numRuns: 40, seed: 1101 });
  t.ok(made >= 3 && refused >= 3, `${made} datasets were made and dropped, ${refused} refused`);
});

t.test('bad search params: INVALID_ARGUMENT, on a quantized dataset and on one that is not', async (t) => {
  const bad: [unknown, RegExp][] = [
    ['rescore', /options\.quantization must be an object/],
    [{ rescore: 1 }, /options\.quantization\.rescore must be a boolean/],
    [{ ignore: 'true' }, /options\.quantization\.ignore must be a boolean/],
    [{ oversampling: 0.5 }, /oversampling must be a number from 1 to 1000/],
    [{ oversampling: 1001 }, /oversampling must be a number from 1 to 1000/],
    [{ oversampling: '2' }, /oversampling must be a number from 1 to 1000/],
    [{ oversample: 2 }, /options\.quantization\.oversample is not an option/],
  ];
  const q = QUERIES.subarray(0, DIM);
  for (const [s, name] of [[store, 'q'], [twin, 'f']] as const) {
    for (const [quantization, message] of bad) {
      await t.rejects(s.search(name, q, K, { quantization: quantization as never }), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message }, `${name}: ${JSON.stringify(quantization)}`);
      await t.rejects(s.searchBatch(name, [q, q], K, { quantization: quantization as never }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, `${name} batch: ${JSON.stringify(quantization)}`);
    }
  }
  t.equal((await store.search('q', q, K, { quantization: null })).ids.length, K, 'null is none');
  t.equal((await twin.search('f', q, K, { quantization: { rescore: false } })).ids.length, K, 'an unquantized dataset takes (and ignores) valid params');
});

t.test('datasetInfo and stats() report the quantization; an unquantized dataset has none', async (t) => {
  const info = await store.datasetInfo('q');
  t.same(info.quantization, INFO, 'datasetInfo: every field filled in');
  t.match(info, { ...GRAPH, shards: 2, count: N });
  t.equal((await twin.datasetInfo('f')).quantization, undefined, 'no quantization field on an unquantized dataset');
  const stats = await store.stats();
  const ds = stats.datasets.find((d) => d.name === 'q')!;
  t.same(ds.quantization, INFO, 'stats(): the dataset config');
  t.equal(ds.shardStats.length, 2);
  for (const s of ds.shardStats) {
    t.equal(s.quantization?.type, 'int8', 'each shard is quantized');
    t.ok(Math.abs(s.quantization!.quantile - 0.99) < 1e-6, 'with the quantile asked for');
    t.ok(s.quantization!.learnedFrom >= N / 4, `its quantizer learned from ${s.quantization!.learnedFrom} of its ${s.liveNodes} vectors`);
  }
  for (const s of (await twin.stats()).datasets[0]!.shardStats) t.equal(s.quantization, undefined, 'the twin shards are not quantized');
});

t.test('searches: ignore equals the unquantized twin, the default re-ranks with exact distances, rescore false gives code distances', async (t) => {
  const plain = await twin.searchBatch('f', QUERIES, K);
  const ignored = await store.searchBatch('q', QUERIES, K, { quantization: { ignore: true } });
  t.same(ignored.map((h) => h.ids), plain.map((h) => h.ids), 'ignore: the same ids as the unquantized twin (the graphs are the same)');
  t.same(ignored.map((h) => Array.from(h.distances)), plain.map((h) => Array.from(h.distances)), 'and the same distances');

  const recallF = meanRecall(plain);
  const rescored = await store.searchBatch('q', QUERIES, K);
  const recallQ = meanRecall(rescored);
  t.comment(`recall@${K}: f32 ${recallF.toFixed(3)}, int8 + re-rank ${recallQ.toFixed(3)}`);
  t.ok(recallQ >= 0.9, `quantized recall@${K} ${recallQ.toFixed(3)} >= 0.9`);
  t.ok(recallQ >= recallF - 0.03, 'within 0.03 of the f32 twin');
  let worst = 0;
  for (const [q, h] of rescored.entries()) {
    t.equal(h.ids.length, K);
    for (const [i, id] of h.ids.entries()) worst = Math.max(worst, Math.abs(h.distances[i]! - exact(id as number, q)) / Math.max(1e-6, exact(id as number, q)));
  }
  t.ok(worst < 1e-5, `re-ranked distances are exact (worst relative error ${worst.toExponential(2)})`);

  const codes = await store.searchBatch('q', QUERIES, K, { quantization: { rescore: false } });
  let off = 0;
  let pairs = 0;
  for (const [q, h] of codes.entries()) {
    t.equal(h.ids.length, K);
    for (let i = 1; i < K; i++) if (!(h.distances[i - 1]! <= h.distances[i]!)) t.fail(`query ${q}: code distances not sorted`);
    for (const [i, id] of h.ids.entries()) {
      const e = exact(id as number, q);
      pairs++;
      if (Math.abs(h.distances[i]! - e) > 1e-4 * Math.max(1, e)) off++;
      // an int8 code is within a small error of the original
      if (Math.abs(h.distances[i]! - e) > 0.1 * e + 0.05) t.fail(`query ${q}, id ${String(id)}: code distance ${h.distances[i]} far from exact ${e}`);
    }
  }
  t.ok(off > pairs / 2, `rescore false: ${off} of ${pairs} distances are code distances, not exact ones`);
  t.ok(meanRecall(codes) >= 0.7, `codes alone still find most neighbours (recall ${meanRecall(codes).toFixed(3)})`);

  const wide = await store.searchBatch('q', QUERIES, K, { quantization: { oversampling: 4 } });
  t.ok(meanRecall(wide) >= 0.9, `oversampling 4: recall ${meanRecall(wide).toFixed(3)}`);
  const single = await store.search('q', QUERIES.subarray(0, DIM), K, { quantization: { rescore: false } });
  t.same(single.ids, codes[0]!.ids, 'search and searchBatch pass the params alike');
});

t.test('one shard against a quantized Index of the same seed: the same hits for every params', async (t) => {
  // the twin store's second dataset: id 2, its shard's seed
  const quantization = { scalar: { type: 'int8' as const, quantile: 0.95 } };
  const info = await twin.createDataset('one', { ...GRAPH, shards: 1, quantization });
  t.teardown(() => twin.dropDataset('one'));
  t.same(info.quantization, { scalar: { type: 'int8', quantile: 0.95, alwaysRam: true } });
  await twin.insert('one', IDS, DATA);
  const index = new Index({ ...GRAPH, seed: 2, quantization });
  t.teardown(() => index.dispose());
  index.add(IDS, DATA);
  for (const params of [undefined, { rescore: false }, { oversampling: 1 }, { oversampling: 3.5 }, { ignore: true }, { ignore: false, rescore: true }]) {
    const want = index.searchBatch(QUERIES, K, { quantization: params ?? null });
    const got = await twin.searchBatch('one', QUERIES, K, params === undefined ? {} : { quantization: params });
    t.same(got.map((h) => [h.ids, Array.from(h.distances)]), want.map((h) => [h.ids, Array.from(h.distances)]), `params ${JSON.stringify(params)}`);
  }
});

t.test('a compaction keeps the quantization and the recall', async (t) => {
  await store.createDataset('c', { ...GRAPH, shards: 2, quantization: QUANT });
  t.teardown(() => store.dropDataset('c'));
  await store.insert('c', IDS, DATA);
  const gone = IDS.filter((i) => i % 3 === 0);
  await store.delete('c', gone);
  const r = await store.compact('c');
  t.ok(r.removedTombstones >= gone.length, 'the deleted points were removed');
  const ds = (await store.stats()).datasets.find((d) => d.name === 'c')!;
  t.same(ds.quantization, INFO);
  for (const s of ds.shardStats) t.ok(s.quantization !== undefined && s.quantization.learnedFrom > 0, 'each compacted shard is quantized and learned');
  const live = IDS.filter((i) => i % 3 !== 0);
  const hits = await store.searchBatch('c', QUERIES, K);
  const recall = hits.reduce((a, h, q) => a + recallAt(h.ids, bruteForce(DATA, DIM, QUERIES, q * DIM, K, live), K), 0) / Q;
  t.ok(recall >= 0.9, `recall@${K} after the compaction: ${recall.toFixed(3)}`);
});

t.test('a snapshot carries the quantization: the recovered dataset is quantized and answers the same', async (t) => {
  const snap = await store.createSnapshot('q');
  const info = await store.recoverSnapshot('q-copy', join(store.snapshotsPath, 'q', snap.name));
  t.teardown(() => store.dropDataset('q-copy'));
  t.same(info.quantization, INFO, 'the restored dataset says it is quantized');
  for (const params of [undefined, { rescore: false }]) {
    const want = await store.searchBatch('q', QUERIES, K, params === undefined ? {} : { quantization: params });
    const got = await store.searchBatch('q-copy', QUERIES, K, params === undefined ? {} : { quantization: params });
    t.same(got.map((h) => [h.ids, Array.from(h.distances)]), want.map((h) => [h.ids, Array.from(h.distances)]), `the same hits (${JSON.stringify(params)})`);
  }
});

type Hits = { ids: number[]; distances: number[] };
const PARAMS = [undefined, { rescore: false }, { ignore: true }] as const;

async function answers(s: { searchBatch: (...a: never[]) => Promise<unknown> } | DurableChild, name: string): Promise<Hits[][]> {
  const out: Hits[][] = [];
  for (const p of PARAMS) {
    const options = p === undefined ? {} : { quantization: p };
    const hits = s instanceof DurableChild
      ? await s.call<Hits[]>('searchBatch', name, Array.from({ length: Q }, (_, q) => Array.from(QUERIES.subarray(q * DIM, (q + 1) * DIM))), K, options)
      : await (s as Store).searchBatch(name, QUERIES, K, options);
    out.push(hits.map((h) => ({ ids: Array.from(h.ids as ArrayLike<number>), distances: Array.from(h.distances as ArrayLike<number>) })));
  }
  return out;
}

t.test('durable: the catalog keeps the quantization; after a SIGKILL before any image the shards are rebuilt quantized; then a close and a checkpoint', async (t) => {
  buildDist();
  const dir = tmp(t);
  const opened = await DurableChild.open(dir, 2, 'always');
  if (!('recovery' in opened)) throw new Error(opened.message);
  const child = opened.child;
  await child.call('createDataset', 'dq', { ...GRAPH, shards: 2, quantization: { scalar: { type: 'int8', quantile: 0.97 } } });
  await child.call('createDataset', 'df', { ...GRAPH, shards: 2 });
  const rows = Array.from({ length: N }, (_, i) => Array.from(DATA.subarray(i * DIM, (i + 1) * DIM)));
  for (const name of ['dq', 'df']) await child.call('insert', name, IDS, rows);
  const before = await answers(child, 'dq');
  const catalog = JSON.parse(readFileSync(join(dir, 'CATALOG'), 'utf8')) as { datasets: { name: string; quantization?: unknown }[] };
  const want = { scalar: { type: 'int8', quantile: 0.97, alwaysRam: true } };
  t.same(catalog.datasets.find((d) => d.name === 'dq')?.quantization, want, 'the catalog file holds the quantization');
  t.notOk('quantization' in catalog.datasets.find((d) => d.name === 'df')!, 'and nothing for the unquantized dataset');
  await child.kill();

  let s = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 } });
  t.ok(s.recovery.length === 2 && s.recovery.every((r) => r.replayed >= 2 && r.error === undefined), 'no image: every shard replayed its insert from its log');
  const check = async (how: string): Promise<void> => {
    const stats = (await s.stats()).datasets;
    const dq = stats.find((d) => d.name === 'dq')!;
    const df = stats.find((d) => d.name === 'df')!;
    t.same(dq.quantization, want, `${how}: the dataset is quantized`);
    t.ok(dq.shardStats.every((x) => x.quantization !== undefined && Math.abs(x.quantization.quantile - 0.97) < 1e-6 && x.quantization.learnedFrom > 0), `${how}: so is every shard`);
    t.equal(df.quantization, undefined, `${how}: the other dataset is not`);
    t.ok(df.shardStats.every((x) => x.quantization === undefined), `${how}: nor its shards`);
    t.same(await answers(s, 'dq'), before, `${how}: the same hits and distances for default, rescore false and ignore`);
  };
  await check('after the SIGKILL');
  await s.close();

  s = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 } });
  t.ok(s.recovery.every((r) => r.replayed === 0), 'a graceful close left nothing to replay');
  await check('after a close (from the images)');
  await s.checkpoint('dq');
  await s.insert('dq', [N], [Array.from(DATA.subarray(0, DIM))]);
  await s.delete('dq', [N]);
  await s.close();

  s = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => s.close());
  await check('after a checkpoint, more writes and a close');
});
