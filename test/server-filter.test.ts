// Filters over HTTP with the unmodified Qdrant JS client (issue 10): query,
// query batch, legacy search, count, scroll and delete by filter against a
// `quiver serve` child, checked against the plain-JS model of Qdrant's
// semantics; the planner's paths in a header and in /metrics.
import t from 'tap';
import { QdrantClient } from '@qdrant/js-client-rest';
import { matches } from '../host/filter/model.js';
import { parseFilter } from '../host/filter/parse.js';
import { call, rng, startServer } from './helpers/server.js';

const DIM = 8;
const N = 1500;
const server = await startServer(['--threads', '2']);
t.teardown(() => server.stop());

const random = rng(3);
const vectors = Array.from({ length: N }, () => Array.from({ length: DIM }, () => random() * 2 - 1));
const payloads = Array.from({ length: N }, (_, i) => ({
  city: ['Berlin', 'Paris', 'Rome', 'Oslo'][i % 4]!,
  year: 1990 + (i % 35),
  tags: i % 3 === 0 ? ['new', 'hot'] : ['old'],
  shop: { open: i % 2 === 0, rating: (i % 50) / 10 },
  ...(i % 7 === 0 ? { note: null } : {}),
}));

const FILTERS: Record<string, unknown>[] = [
  { must: [{ key: 'city', match: { value: 'Paris' } }] },
  { must: [{ key: 'year', range: { gte: 2000, lt: 2005 } }], must_not: [{ key: 'tags', match: { any: ['hot'] } }] },
  { should: [{ key: 'shop.open', match: { value: true } }, { is_null: { key: 'note' } }], min_should: { conditions: [{ key: 'shop.rating', range: { gt: 4.5 } }, { key: 'city', match: { except: ['Rome'] } }], min_count: 1 } },
  { must: [{ key: 'tags[]', match: { value: 'new' } }, { key: 'year', match: { any: [1991, 1999] } }] },
  { must: [{ has_id: [5, 10, 15, 1400] }] },
  { must: [{ is_empty: { key: 'note' } }, { key: 'tags', values_count: { gte: 2 } }] },
];

const want = (filter: unknown): number[] => {
  const ast = parseFilter(filter);
  return payloads.map((p, id) => (matches(ast, id, p) ? id : -1)).filter((id) => id >= 0);
};

t.test('filters on every read route agree with the model; delete by filter deletes exactly those', async (t) => {
  const client = new QdrantClient({ url: server.url, checkCompatibility: false });
  await client.createCollection('f', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 3 });
  await client.upsert('f', { wait: true, points: vectors.map((vector, id) => ({ id, vector, payload: payloads[id]! })) });

  for (const filter of FILTERS) {
    const expected = want(filter);
    const label = JSON.stringify(filter);
    t.equal((await client.count('f', { filter, exact: true })).count, expected.length, `count: ${label}`);
    const scrolled: number[] = [];
    let offset: number | undefined;
    for (;;) {
      const page = await client.scroll('f', { filter, limit: 200, with_payload: false, ...(offset === undefined ? {} : { offset }) });
      scrolled.push(...page.points.map((p) => p.id as number));
      if (page.next_page_offset === null || page.next_page_offset === undefined) break;
      offset = page.next_page_offset as number;
    }
    t.same(scrolled, expected, `scroll pages: ${label}`);
    const set = new Set(expected);
    const res = await client.query('f', { query: vectors[7]!, limit: 10, filter, with_payload: true });
    t.equal(res.points.length, Math.min(10, expected.length), `query: as many hits as match, up to the limit: ${label}`);
    t.ok(res.points.every((p) => set.has(p.id as number)), `query: every hit matches: ${label}`);
    // the 1.19 client no longer calls the legacy route: plain HTTP
    const legacy = await call(`${server.url}/collections/f/points/search`, 'POST', { vector: vectors[7]!, limit: 10, filter });
    t.same((legacy.body.result as { id: number }[]).map((p) => p.id), res.points.map((p) => p.id), `legacy search gives the same hits: ${label}`);
  }
  const batch = await client.queryBatch('f', { searches: FILTERS.map((filter) => ({ query: vectors[3]!, limit: 5, filter })) });
  t.equal(batch.length, FILTERS.length, 'a query batch with a filter per search answers each');
  batch.forEach((r, i) => t.ok(r.points.every((p) => want(FILTERS[i]).includes(p.id as number)), `batch search ${i}: every hit matches its own filter`));

  // the planner's paths: one per shard, in a header
  const raw = await call(`${server.url}/collections/f/points/query`, 'POST', { query: vectors[1], limit: 3, filter: FILTERS[4] });
  t.equal(raw.status, 200);
  t.equal(raw.headers.get('quiver-filter-paths'), 'exact,exact,exact', 'four matching points: every shard scored them exactly');
  const metrics = await call(`${server.url}/metrics`, 'GET');
  t.match(metrics.text, /quiver_filtered_search_shards_total\{dataset="f",path="exact"\} \d+/, 'the paths are counted in /metrics');

  const del = FILTERS[1]!;
  const gone = want(del).length;
  await client.delete('f', { wait: true, filter: del });
  t.equal((await client.count('f', { filter: del, exact: true })).count, 0, 'delete by filter: nothing matches after');
  t.equal((await client.count('f', { exact: true })).count, N - gone, 'and exactly those went');
});

t.test('unsupported or malformed filters are 400s in Qdrant\'s envelope, naming the condition', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['geo', { must: [{ key: 'at', geo_bounding_box: { top_left: { lat: 1, lon: 0 }, bottom_right: { lat: 0, lon: 1 } } }] }, /geo_bounding_box is not supported/],
    ['datetime range', { must: [{ key: 'at', range: { gte: '2024-01-01T00:00:00Z' } }] }, /filter\.must\[0\]/],
    ['has_vector', { must: [{ has_vector: '' }] }, /has_vector/],
  ];
  for (const [name, filter, error] of cases) {
    for (const route of ['points/query', 'points/count', 'points/scroll', 'points/delete']) {
      const body = route === 'points/query' ? { query: Array(DIM).fill(0.1), filter } : { filter };
      const r = await call(`${server.url}/collections/f/${route}`, 'POST', body);
      t.equal(r.status, 400, `${name} on ${route}: 400`);
      t.match(r.body?.status?.error, error, `${name} on ${route}: the error names it`);
    }
  }
});
