import t from 'tap';
import { QuiverError, Store, type DatasetOptions, type Id, type IdList } from '../host/index.js';
import { clustered } from './helpers/data.js';

const DIM = 8;
const N = 300;
const NOT_FOUND = 'QUIVER_ERR_NOT_FOUND';
const DIMENSION = 'QUIVER_ERR_DIMENSION';
const INVALID = 'QUIVER_ERR_INVALID_ARGUMENT';
const EXISTS = 'QUIVER_ERR_EXISTS';

const data = clustered(N, DIM, 8, 21);
const probe = Array.from(clustered(1, DIM, 8, 99));

const store = await Store.open({ threads: 2 });
t.teardown(() => store.close());
await store.createDataset('d', { dim: DIM, shards: 2, M: 8, efConstruction: 32 });
await store.insert('d', Array.from({ length: N }, (_, i) => i), data);

type TestLike = Pick<typeof t, 'ok' | 'equal' | 'same' | 'fail'>;

/** What a bad call must not change: the datasets, the count, a search, a stored vector. */
async function snapshot(): Promise<unknown> {
  const hits = await store.search('d', probe, 10);
  const [v7] = await store.get('d', [7]);
  return {
    datasets: store.listDatasets().sort(),
    count: await store.count('d'),
    deleted: (await store.datasetInfo('d')).deleted,
    ids: hits.ids,
    distances: Array.from(hits.distances),
    v7: Array.from(v7!),
  };
}

/** Awaits a call that must fail with `code`, then checks nothing changed. */
async function fails(t: TestLike, label: string, code: string, call: () => Promise<unknown>): Promise<void> {
  const before = await snapshot();
  let caught: unknown;
  let settled = false;
  try {
    await call();
    settled = true;
  } catch (err) {
    caught = err;
  }
  if (settled) {
    t.fail(`${label}: resolved; expected ${code}`);
  } else {
    t.ok(caught instanceof QuiverError, `${label}: rejects with a QuiverError (${String(caught)})`);
    t.equal((caught as { code?: unknown }).code, code, `${label}: ${code}`);
  }
  t.same(await snapshot(), before, `${label}: nothing changed`);
}

t.test('an unknown dataset: QUIVER_ERR_NOT_FOUND from every call', async (t) => {
  await fails(t, 'insert', NOT_FOUND, () => store.insert('nope', [1], [probe]));
  await fails(t, 'search', NOT_FOUND, () => store.search('nope', probe, 3));
  await fails(t, 'get', NOT_FOUND, () => store.get('nope', [1]));
  await fails(t, 'delete', NOT_FOUND, () => store.delete('nope', [1]));
  await fails(t, 'count', NOT_FOUND, () => store.count('nope'));
  await fails(t, 'compact', NOT_FOUND, () => store.compact('nope'));
  await fails(t, 'datasetInfo', NOT_FOUND, () => store.datasetInfo('nope'));
  await fails(t, 'dropDataset', NOT_FOUND, () => store.dropDataset('nope'));
  await fails(t, "a name that differs only in case ('D')", NOT_FOUND, () => store.count('D'));
});

t.test('wrong dimension: QUIVER_ERR_DIMENSION', async (t) => {
  await fails(t, 'insert a short vector', DIMENSION, () => store.insert('d', [1000], [[1, 2, 3]]));
  await fails(t, 'insert a long vector among good ones', DIMENSION, () =>
    store.insert('d', [1000, 1001], [probe, [...probe, 1]]));
  await fails(t, 'insert a flat batch of the wrong length', DIMENSION, () =>
    store.insert('d', [1000, 1001], new Float32Array(DIM * 2 - 1)));
  await fails(t, 'insert fewer vectors than ids', DIMENSION, () => store.insert('d', [1000, 1001], [probe]));
  await fails(t, 'search with a short query', DIMENSION, () => store.search('d', probe.slice(1), 3));
  await fails(t, 'search with a flat batch that is not a multiple of dim', DIMENSION, () =>
    store.search('d', new Float32Array(DIM + 3), 3));
  await fails(t, 'search with an empty query', DIMENSION, () => store.search('d', new Float32Array(0), 3));
  await fails(t, 'search with a batch holding one short query', DIMENSION, () =>
    store.search('d', [probe, probe.slice(2)], 3));
});

t.test('non-finite values: QUIVER_ERR_INVALID_ARGUMENT', async (t) => {
  const withNaN = [...probe];
  withNaN[3] = NaN;
  const withInf = [...probe];
  withInf[0] = Infinity;
  await fails(t, 'insert NaN', INVALID, () => store.insert('d', [1000], [withNaN]));
  await fails(t, 'insert NaN after a good vector', INVALID, () => store.insert('d', [1000, 1001], [probe, withNaN]));
  await fails(t, 'insert -Infinity in a flat batch', INVALID, () => {
    const flat = new Float32Array(DIM * 3).fill(0.5);
    flat[DIM * 2 + 1] = -Infinity;
    return store.insert('d', [1000, 1001, 1002], flat);
  });
  await fails(t, 'insert Infinity over an existing id', INVALID, () => store.insert('d', [7], [withInf]));
  await fails(t, 'insert a non-number component', INVALID, () =>
    store.insert('d', [1000], [['1', 2, 3, 4, 5, 6, 7, 8]] as unknown as number[][]));
  await fails(t, 'search for NaN', INVALID, () => store.search('d', withNaN, 3));
  await fails(t, 'search for Infinity in a batch', INVALID, () => store.search('d', [probe, withInf], 3));
});

t.test('k and ef out of range: QUIVER_ERR_INVALID_ARGUMENT', async (t) => {
  for (const k of [0, -1, 1.5, NaN, Infinity, 100_001]) {
    await fails(t, `k = ${k}`, INVALID, () => store.search('d', probe, k));
  }
  await fails(t, "k = '3'", INVALID, () => store.search('d', probe, '3' as unknown as number));
  for (const ef of [0, -5, 2.5]) {
    await fails(t, `ef = ${ef}`, INVALID, () => store.search('d', probe, 3, { ef }));
  }
});

t.test('bad ids: QUIVER_ERR_INVALID_ARGUMENT, and a batch with one bad id inserts nothing', async (t) => {
  const two = [probe, probe.map((x) => x + 1)];
  await fails(t, 'duplicate ids in one batch', INVALID, () => store.insert('d', [1000, 1001, 1000], [...two, probe]));
  await fails(t, '5 and 5n are one id', INVALID, () => store.insert('d', [1005, 1005n], two));
  await fails(t, 'one UUID in two spellings', INVALID, () =>
    store.insert('d', ['f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 'F81D4FAE7DEC11D0A76500A0C91E6BF6'], two));
  const badIds: [string, unknown][] = [
    ['negative', -1],
    ['fractional', 1.5],
    ['NaN', NaN],
    ['unsafe integer', 2 ** 53],
    ['bigint >= 2^64', 2n ** 64n],
    ['negative bigint', -1n],
    ['a string that is not a UUID', 'not-a-uuid'],
    ['a path', '../x'],
    ['null', null],
    ['undefined', undefined],
    ['an object', {}],
    ['a boolean', true],
  ];
  for (const [label, bad] of badIds) {
    await fails(t, `insert: ${label} id after a good one`, INVALID, () => store.insert('d', [1000, bad as Id], two));
    await fails(t, `get: ${label} id`, INVALID, () => store.get('d', [1, bad as Id]));
    await fails(t, `delete: ${label} id after a good one`, INVALID, () => store.delete('d', [1, bad as Id]));
  }
  await fails(t, 'ids not a list', INVALID, () => store.insert('d', 'abc' as unknown as IdList, [probe]));
  await fails(t, 'ids null', INVALID, () => store.delete('d', null as unknown as IdList));
  t.same(await store.get('d', [1000, 1001, 1005]), [undefined, undefined, undefined], 'no id of a failed batch went in');
});

t.test('bad dataset names: QUIVER_ERR_INVALID_ARGUMENT, nothing created', async (t) => {
  for (const name of ['../x', 'a/b', 'a\\b', '', '.', '..', '.hidden', '/abs', 'a b', 'a\0b', 'x'.repeat(129), 'é']) {
    await fails(t, `createDataset(${JSON.stringify(name)})`, INVALID, () => store.createDataset(name, { dim: 4 }));
  }
  await fails(t, 'createDataset(42)', INVALID, () => store.createDataset(42 as unknown as string, { dim: 4 }));
  await fails(t, 'count(42)', INVALID, () => store.count(42 as unknown as string));
  await fails(t, 'dropDataset(null)', INVALID, () => store.dropDataset(null as unknown as string));
  t.same(store.listDatasets(), ['d']);
});

t.test('an existing dataset: QUIVER_ERR_EXISTS, the old one untouched', async (t) => {
  await fails(t, 'createDataset of an existing name', EXISTS, () => store.createDataset('d', { dim: DIM }));
  await fails(t, 'createDataset of an existing name with other options', EXISTS, () => store.createDataset('d', { dim: 3, shards: 1 }));
  // two racing creates of one name: one wins, the other gets EXISTS
  const race = await Promise.allSettled([store.createDataset('twin', { dim: 4 }), store.createDataset('twin', { dim: 4 })]);
  t.same(race.map((r) => r.status).sort(), ['fulfilled', 'rejected'], 'one of two racing creates wins');
  const lost = race.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  t.equal((lost?.reason as { code?: unknown } | undefined)?.code, EXISTS);
  await store.dropDataset('twin');
  t.same(store.listDatasets(), ['d']);
});

t.test('bad dataset options: QUIVER_ERR_INVALID_ARGUMENT, the name stays free', async (t) => {
  const bad: [string, unknown][] = [
    ['dim 0', { dim: 0 }],
    ['dim -1', { dim: -1 }],
    ['dim 1.5', { dim: 1.5 }],
    ["dim '8'", { dim: '8' }],
    ['dim missing', {}],
    ['dim above the limit', { dim: 65537 }],
    ['metric hamming', { dim: 4, metric: 'hamming' }],
    ['M 1', { dim: 4, M: 1 }],
    ['M 128', { dim: 4, M: 128 }],
    ['efConstruction 0', { dim: 4, efConstruction: 0 }],
    ['ef 0', { dim: 4, ef: 0 }],
    ['shards 0', { dim: 4, shards: 0 }],
    ['shards 2.5', { dim: 4, shards: 2.5 }],
    ['options null', null],
    ['options a number', 8],
  ];
  for (const [label, options] of bad) {
    await fails(t, label, INVALID, () => store.createDataset('fresh', options as DatasetOptions));
  }
  t.same(store.listDatasets(), ['d'], 'no dataset was left behind');
  const info = await store.createDataset('fresh', { dim: 4 });
  t.match(info, { name: 'fresh', dim: 4, count: 0 }, 'the name was never taken');
  await store.dropDataset('fresh');
});

t.test('an already aborted signal: QUIVER_ERR_ABORTED, nothing inserted', async (t) => {
  const signal = AbortSignal.abort();
  await fails(t, 'insert with an aborted signal', 'QUIVER_ERR_ABORTED', () => store.insert('d', [1000], [probe], { signal }));
  await fails(t, 'compact with an aborted signal', 'QUIVER_ERR_ABORTED', () => store.compact('d', { signal }));
  await fails(t, 'search with an aborted signal', 'QUIVER_ERR_ABORTED', () => store.search('d', probe, 3, { signal }));
});
