// Filters through the Store (issue 10): for random Qdrant filters over random
// payloads (nested objects, arrays, missing keys, nulls, mixed types), on a
// dataset of 3 shards over 2 threads, count, scroll and search agree with
// the plain-JS model of Qdrant's semantics (host/filter/model.ts) — before
// and after a compaction, and across a restart, where a delete by filter is
// replayed from the log of a process killed with SIGKILL.
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QuiverError, Store, type Filter } from '../host/index.js';
import { matches } from '../host/filter/model.js';
import { parseFilter } from '../host/filter/parse.js';
import { rng } from './helpers/data.js';
import { buildDist, DurableChild } from './fixtures/durable-driver.js';

const DIM = 8;
const N = 2000;
const SHARDS = 3;

function payloadOf(id: number): unknown {
  const r = rng(id * 7919 + 11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  if (r() < 0.08) return undefined;
  const p: Record<string, unknown> = {};
  if (r() < 0.9) p.kind = pick(['a', 'b', 'c', 'a', 1, null, ['a', 'b'], []]);
  if (r() < 0.8) p.n = r() < 0.8 ? Math.floor(r() * 10) : pick([2.5, -1.5, 'x', null]);
  if (r() < 0.7) p.tags = Array.from({ length: Math.floor(r() * 4) }, () => pick(['x', 'y', 'z', 1]));
  if (r() < 0.6) p.obj = r() < 0.9 ? { k: pick(['a', 'b', 1, true, null]) } : pick([[{ k: 'a' }, { k: 'b' }], 'flat']);
  if (r() < 0.5) p.flag = r() < 0.5;
  return p;
}

function vectorOf(id: number): number[] {
  const r = rng(id * 104729 + 5);
  return Array.from(Float32Array.from({ length: DIM }, () => r() * 2 - 1));
}

const IDS = Array.from({ length: N }, (_, i) => i);
const VECTORS = IDS.map(vectorOf);
const PAYLOADS = IDS.map(payloadOf);

const keyArb = fc.constantFrom('kind', 'n', 'tags', 'tags[]', 'obj.k', 'obj[].k', 'flag', 'missing');
const leafArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ key: keyArb, match: fc.record({ value: fc.constantFrom<string | number | boolean>('a', 'b', 'x', 1, 3, true, false) }) }),
  fc.record({ key: keyArb, match: fc.record({ any: fc.oneof(fc.subarray(['a', 'b', 'x', 'z']), fc.subarray([1, 2, 3])) }) }),
  fc.record({ key: keyArb, match: fc.record({ except: fc.oneof(fc.subarray(['a', 'b', 'x']), fc.subarray([1, 2])) }) }),
  fc.record({ key: keyArb, range: fc.record({ gte: fc.integer({ min: -2, max: 9 }), lt: fc.double({ min: -1, max: 11, noNaN: true }) }, { requiredKeys: [] }) }),
  fc.record({ key: keyArb, values_count: fc.record({ gte: fc.nat(3), lt: fc.nat(4) }, { requiredKeys: [] }) }),
  fc.record({ is_empty: fc.record({ key: keyArb }) }),
  fc.record({ is_null: fc.record({ key: keyArb }) }),
  fc.record({ has_id: fc.array(fc.nat(N + 5), { maxLength: 40 }) }),
);
const { filter: filterArb } = fc.letrec<{ filter: Filter; cond: unknown }>((tie) => ({
  cond: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leafArb, tie('filter')),
  filter: fc.record({
    must: fc.array(tie('cond'), { maxLength: 3 }),
    should: fc.array(tie('cond'), { maxLength: 3 }),
    must_not: fc.array(tie('cond'), { maxLength: 2 }),
    min_should: fc.record({ conditions: fc.array(tie('cond'), { minLength: 1, maxLength: 3 }), min_count: fc.integer({ min: 1, max: 2 }) }),
  }, { requiredKeys: [] }) as fc.Arbitrary<Filter>,
}));

/** The ids among `live` the model says `filter` matches, ascending. */
function expected(filter: Filter, live: Iterable<number>): number[] {
  const ast = parseFilter(filter);
  return [...live].filter((id) => matches(ast, id, PAYLOADS[id])).sort((a, b) => a - b);
}

function l2(a: readonly number[], b: readonly number[]): number {
  return a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0);
}

async function scrollAll(store: Store, name: string, filter: Filter): Promise<number[]> {
  const out: number[] = [];
  let offset: number | undefined;
  for (let page = 0; page < N; page++) {
    const p = await store.scroll(name, { filter, limit: 150, withVector: false, withPayload: false, ...(offset === undefined ? {} : { offset }) });
    out.push(...p.points.map((r) => r.id as number));
    if (p.nextOffset === undefined) return out;
    offset = p.nextOffset as number;
  }
  throw new Error('scroll did not end');
}

/** count, scroll and search under `filter` agree with the model over `live`. */
async function agrees(t: Tap, store: Store, name: string, filter: Filter, live: Set<number>, q: number): Promise<boolean> {
  const want = expected(filter, live);
  const count = await store.count(name, { filter });
  if (count !== want.length) return fail(t, `count ${count}, model ${want.length}`, filter);
  const scrolled = await scrollAll(store, name, filter);
  if (JSON.stringify(scrolled) !== JSON.stringify(want)) return fail(t, `scroll gave ${scrolled.length} ids, model ${want.length}`, filter);
  const k = 10;
  const hits = await store.search(name, VECTORS[q]!, k, { filter, ef: 64 });
  const wanted = new Set(want);
  if (hits.ids.length !== Math.min(k, want.length)) return fail(t, `search gave ${hits.ids.length} hits, ${want.length} match`, filter);
  if (!hits.ids.every((id) => wanted.has(id as number))) return fail(t, 'a hit does not match the filter', filter);
  if (hits.paths?.length !== SHARDS) return fail(t, `paths ${JSON.stringify(hits.paths)}`, filter);
  if (hits.paths.every((p) => p !== 'graph')) {
    // every shard scored its matching points exactly: the hits are the exact filtered top k
    const exact = want.map((id) => l2(VECTORS[id]!, VECTORS[q]!)).sort((a, b) => a - b).slice(0, k);
    if (!exact.every((d, i) => Math.abs(d - hits.distances[i]!) < 1e-4)) return fail(t, 'exact-path hits are not the exact filtered top k', filter);
  }
  return true;
}

type Tap = Pick<typeof t, 'fail'>;
function fail(t: Tap, why: string, filter: Filter): false {
  t.fail(`${why}: ${JSON.stringify(filter)}`);
  return false;
}

t.test('random filters: count, scroll and search agree with the model, before and after a compaction', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  await store.createDataset('f', { dim: DIM, M: 8, efConstruction: 64, shards: SHARDS });
  await store.insert('f', IDS, VECTORS, { payloads: PAYLOADS });
  const live = new Set(IDS);
  const property = fc.asyncProperty(filterArb, fc.nat(N - 1), async (filter, q) => agrees(t, store, 'f', filter, live, q));
  await fc.assert(property, { numRuns: 60, seed: 10 });

  // delete a third, by filter and by ids, then compact: the same answers from the renumbered shards
  const byFilter: Filter = { must: [{ key: 'kind', match: { value: 'c' } }] };
  const gone = expected(byFilter, live);
  t.equal((await store.deleteWhere('f', byFilter)).deleted, gone.length, 'deleteWhere deletes exactly what the filter matches');
  for (const id of gone) live.delete(id);
  t.equal(await store.count('f', { filter: byFilter }), 0, 'nothing matches any more');
  const more = IDS.filter((id) => id % 5 === 0 && live.has(id));
  await store.delete('f', more);
  for (const id of more) live.delete(id);
  await store.compact('f');
  t.equal(await store.count('f'), live.size, 'the live count is the model\'s');
  await fc.assert(fc.asyncProperty(filterArb, fc.nat(N - 1), async (filter, q) => agrees(t, store, 'f', filter, live, q)), { numRuns: 30, seed: 11 });
});

t.test('a filtered search is exact when few points match, and returns every one when fewer than k do', async (t) => {
  const store = await Store.open({ threads: 2 });
  t.teardown(() => store.close());
  await store.createDataset('f', { dim: DIM, shards: SHARDS });
  await store.insert('f', IDS, VECTORS, { payloads: PAYLOADS });
  const few: Filter = { must: [{ has_id: [3, 17, 400, 1999] }] };
  const hits = await store.search('f', VECTORS[0]!, 10, { filter: few });
  t.same([...hits.ids].sort((a, b) => (a as number) - (b as number)), [3, 17, 400, 1999], 'the four matching points, no others');
  t.ok(hits.paths?.every((p) => p === 'exact'), `each shard scored its few matches exactly (${JSON.stringify(hits.paths)})`);
  const none = await store.search('f', VECTORS[0]!, 10, { filter: { must: [{ key: 'missing', match: { value: 'a' } }] } });
  t.same(none.ids, [], 'no match, no hits');
  const batch = await store.searchBatch('f', [VECTORS[1]!, VECTORS[2]!], 5, { filter: few });
  t.equal(batch.length, 2, 'a filtered batch answers every query');
  t.ok(batch.every((h) => h.ids.every((id) => [3, 17, 400, 1999].includes(id as number))), 'and every hit matches');
});

t.test('bad filters are coded errors that change nothing', async (t) => {
  const store = await Store.open({ threads: 1 });
  t.teardown(() => store.close());
  await store.createDataset('f', { dim: DIM });
  await store.insert('f', IDS.slice(0, 100), VECTORS.slice(0, 100), { payloads: PAYLOADS.slice(0, 100) });
  const bad: unknown[] = [
    { must: [{ key: 'at', geo_radius: { center: { lat: 0, lon: 0 }, radius: 1 } }] },
    { must: [{ nested: { key: 'a', filter: {} } }] },
    { must: [{ key: 'n', match: { value: 1.5 } }] },
    { must: 'a' },
    { oops: [] },
  ];
  for (const filter of bad) {
    for (const call of [
      () => store.search('f', VECTORS[0]!, 5, { filter: filter as Filter }),
      () => store.count('f', { filter: filter as Filter }),
      () => store.scroll('f', { filter: filter as Filter }),
      () => store.deleteWhere('f', filter as Filter),
    ]) {
      const err = await call().then(() => undefined, (e: unknown) => e);
      t.ok(err instanceof QuiverError && err.code === 'QUIVER_ERR_INVALID_ARGUMENT', `${JSON.stringify(filter)}: INVALID_ARGUMENT (${(err as Error)?.message})`);
    }
  }
  t.equal(await store.count('f'), 100, 'nothing was deleted');
});

const INDEXES = [['kind', 'keyword'], ['n', 'integer'], ['tags', 'keyword'], ['obj.k', 'keyword'], ['flag', 'bool']] as const;

t.test('a delete by filter survives SIGKILL: replay decides its points where it stands in the log; random filters agree after the restart, with payload indexes and without', async (t) => {
  buildDist();
  const dir = mkdtempSync(join(tmpdir(), 'quiver-filter-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const opened = await DurableChild.open(dir, 2, 'always');
  if (!('recovery' in opened)) throw new Error(opened.message);
  const child = opened.child;
  await child.call('createDataset', 'f', { dim: DIM, M: 8, efConstruction: 32, shards: SHARDS });
  // two indexes before the points, the others after: replay builds both ways
  for (const [field, type] of INDEXES.slice(0, 2)) await child.call('createPayloadIndex', 'f', field, type);
  const live = new Set(IDS.slice(0, 600));
  await child.call('insert', 'f', IDS.slice(0, 600), VECTORS.slice(0, 600), { payloads: PAYLOADS.slice(0, 600) });
  for (const [field, type] of INDEXES.slice(2)) await child.call('createPayloadIndex', 'f', field, type);
  const byFilter: Filter = { should: [{ key: 'tags', match: { any: ['x'] } }, { is_empty: { key: 'kind' } }] };
  const first = expected(byFilter, live);
  t.equal((await child.call<{ deleted: number }>('deleteWhere', 'f', byFilter)).deleted, first.length, 'the child deleted what the model says');
  for (const id of first) live.delete(id);
  // a later upsert brings back points the filter matches: replay must not delete them again
  const back = first.slice(0, 20);
  await child.call('insert', 'f', back, back.map((id) => VECTORS[id]!), { payloads: back.map((id) => PAYLOADS[id]) });
  for (const id of back) live.add(id);
  await child.kill();

  const store = await Store.open({ path: dir, threads: 2 });
  t.teardown(() => store.close());
  t.equal(await store.count('f'), live.size, 'after the kill: the live count is the model\'s');
  t.same((await scrollAll(store, 'f', {})).sort((a, b) => a - b), [...live].sort((a, b) => a - b), 'and the same points');
  const filter: Filter = { must: [{ key: 'n', range: { gte: 3 } }], must_not: [{ key: 'flag', match: { value: true } }] };
  t.equal(await store.count('f', { filter }), expected(filter, live).length, 'a filter after the restart agrees with the model');
  t.same((await store.payloadIndexes('f')).map((x) => [x.field, x.type]), [...INDEXES].sort((a, b) => (a[0] < b[0] ? -1 : 1)), 'the indexes came back from the log');
  await fc.assert(fc.asyncProperty(filterArb, fc.nat(599), async (f, q) => agrees(t, store, 'f', f, live, q)), { numRuns: 40, seed: 12 });
  for (const [field] of INDEXES) await store.dropPayloadIndex('f', field);
  await fc.assert(fc.asyncProperty(filterArb, fc.nat(599), async (f, q) => agrees(t, store, 'f', f, live, q)), { numRuns: 20, seed: 13 });
});
