// Qdrant's two kinds of bad request: a value of the wrong kind is a 400
// "Format error in ...", a value of the right kind out of its range a 422
// "Validation error in ...: [field: value V invalid, must be ...]"; and every
// bad request changes nothing. Also: collection names up to Qdrant's 255
// characters reach the routes, `timeout` past Node's timer range, ids that are
// almost UUIDs, and the probes' texts.
import t from 'tap';
import { Store } from '../host/index.js';
import { canonicalUuid, packId } from '../host/ids.js';
import { buildServer } from '../host/server/app.js';
import { fieldName, rangeMessage } from '../host/server/validation.js';

const store = await Store.open({ threads: 1 });
t.teardown(() => store.close());
const app = buildServer(store);
t.teardown(() => app.close());

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
const api = async (method: Method, url: string, payload?: unknown): Promise<{ status: number; body: any; text: string }> => {
  const res = await app.inject({
    method,
    url,
    ...(payload === undefined ? {} : { payload: payload as object }),
    // a string is JSON text sent as it is (for bodies JSON.stringify cannot make)
    ...(typeof payload === 'string' ? { headers: { 'content-type': 'application/json' } } : {}),
  });
  let body: unknown = res.body;
  try {
    body = res.json();
  } catch {
    // plain text
  }
  return { status: res.statusCode, body, text: res.body };
};

const DIM = 4;
const UUID = '5c56c793-69f3-4fbf-87e6-c4bf54c28c26';
const vec = (i: number): number[] => [i, (i * 3) % 7, (i * 5) % 11, 1];

t.before(async () => {
  const created = await api('PUT', '/collections/e', { vectors: { size: DIM, distance: 'Euclid' } });
  if (created.status !== 200) throw new Error(`setup: ${created.text}`);
  const points = Array.from({ length: 50 }, (_, i) => ({ id: i + 1, vector: vec(i), payload: { i } }));
  points.push({ id: UUID as unknown as number, vector: vec(99), payload: { i: 99 } });
  const up = await api('PUT', '/collections/e/points', { points });
  if (up.status !== 200) throw new Error(`setup: ${up.text}`);
});

async function snapshot(): Promise<unknown> {
  const names = (await api('GET', '/collections')).body.result;
  const count = (await api('POST', '/collections/e/points/count')).body.result;
  const query = (await api('POST', '/collections/e/points/query', { query: [1, 1, 1, 1], limit: 60 })).body.result;
  return { names, count, query };
}

interface Case {
  name: string;
  method: Method;
  url: string;
  body?: unknown;
  status: number;
  /** The whole error message (a string), or a pattern. */
  error: string | RegExp;
}

const create = (extra: Record<string, unknown>, vectors: Record<string, unknown> = {}) => ({ vectors: { size: DIM, distance: 'Dot', ...vectors }, ...extra });
const long = (n: number): string => `c${'x'.repeat(n - 1)}`;

const cases: Case[] = [
  // out of range: 422, Qdrant's message
  { name: 'shard_number 0', method: 'PUT', url: '/collections/x', body: create({ shard_number: 0 }), status: 422, error: 'Validation error in JSON body: [shard_number: value 0 invalid, must be from 1 to 1024]' },
  { name: 'shard_number over quiver\'s 1024', method: 'PUT', url: '/collections/x', body: create({ shard_number: 1025 }), status: 422, error: 'Validation error in JSON body: [shard_number: value 1025 invalid, must be from 1 to 1024]' },
  { name: 'replication_factor 0', method: 'PUT', url: '/collections/x', body: create({ replication_factor: 0 }), status: 422, error: 'Validation error in JSON body: [replication_factor: value 0 invalid, must be 1 or larger]' },
  { name: 'write_consistency_factor 0', method: 'PUT', url: '/collections/x', body: create({ write_consistency_factor: 0 }), status: 422, error: 'Validation error in JSON body: [write_consistency_factor: value 0 invalid, must be 1 or larger]' },
  { name: 'hnsw_config.ef_construct 0', method: 'PUT', url: '/collections/x', body: create({ hnsw_config: { ef_construct: 0 } }), status: 422, error: 'Validation error in JSON body: [hnsw_config.ef_construct: value 0 invalid, must be from 4 to 100000]' },
  { name: 'vectors.hnsw_config.ef_construct 2', method: 'PUT', url: '/collections/x', body: create({}, { hnsw_config: { ef_construct: 2 } }), status: 422, error: 'Validation error in JSON body: [vectors.hnsw_config.ef_construct: value 2 invalid, must be from 4 to 100000]' },
  { name: 'hnsw_config.m 1', method: 'PUT', url: '/collections/x', body: create({ hnsw_config: { m: 1 } }), status: 422, error: 'Validation error in JSON body: [hnsw_config.m: value 1 invalid, must be from 2 to 127]' },
  { name: 'hnsw_config.m 128', method: 'PUT', url: '/collections/x', body: create({ hnsw_config: { m: 128 } }), status: 422, error: 'Validation error in JSON body: [hnsw_config.m: value 128 invalid, must be from 2 to 127]' },
  { name: 'hnsw_config.ef 0 (quiver\'s own)', method: 'PUT', url: '/collections/x', body: create({ hnsw_config: { ef: 0 } }), status: 422, error: 'Validation error in JSON body: [hnsw_config.ef: value 0 invalid, must be from 1 to 100000]' },
  { name: 'vectors.size 65537', method: 'PUT', url: '/collections/x', body: create({}, { size: 65537 }), status: 422, error: 'Validation error in JSON body: [vectors.size: value 65537 invalid, must be from 1 to 65536]' },
  { name: 'vectors.size 65537 in the named form', method: 'PUT', url: '/collections/x', body: { vectors: { '': { size: 65537, distance: 'Dot' } } }, status: 422, error: 'Validation error in JSON body: [vectors.size: value 65537 invalid, must be from 1 to 65536]' },
  { name: 'params.hnsw_ef 0 in a query', method: 'POST', url: '/collections/e/points/query', body: { query: [1, 1, 1, 1], params: { hnsw_ef: 0 } }, status: 422, error: 'Validation error in JSON body: [params.hnsw_ef: value 0 invalid, must be from 1 to 100000]' },
  { name: 'params.hnsw_ef 0 in a search', method: 'POST', url: '/collections/e/points/search', body: { vector: [1, 1, 1, 1], limit: 3, params: { hnsw_ef: 0 } }, status: 422, error: 'Validation error in JSON body: [params.hnsw_ef: value 0 invalid, must be from 1 to 100000]' },
  { name: 'params.hnsw_ef 0 in a batch', method: 'POST', url: '/collections/e/points/search/batch', body: { searches: [{ vector: [1, 1, 1, 1], limit: 3 }, { vector: [1, 1, 1, 1], limit: 3, params: { hnsw_ef: 0 } }] }, status: 422, error: 'Validation error in JSON body: [searches[1].params.hnsw_ef: value 0 invalid, must be from 1 to 100000]' },
  { name: 'limit 0 in a query', method: 'POST', url: '/collections/e/points/query', body: { query: [1, 1, 1, 1], limit: 0 }, status: 422, error: 'Validation error in JSON body: [limit: value 0 invalid, must be from 1 to 100000]' },
  { name: 'limit 0 in a scroll', method: 'POST', url: '/collections/e/points/scroll', body: { limit: 0 }, status: 422, error: 'Validation error in JSON body: [limit: value 0 invalid, must be from 1 to 100000]' },
  { name: '?timeout=0 on a query', method: 'POST', url: '/collections/e/points/query?timeout=0', body: { query: [1, 1, 1, 1] }, status: 422, error: 'Validation error in query parameters: [timeout: value 0 invalid, must be 1 or larger]' },
  { name: '?timeout=0 on an upsert', method: 'PUT', url: '/collections/e/points?timeout=0', body: { points: [{ id: 1000, vector: vec(1) }] }, status: 422, error: 'Validation error in query parameters: [timeout: value 0 invalid, must be 1 or larger]' },
  { name: '?timeout=0 on a drop', method: 'DELETE', url: '/collections/e?timeout=0', status: 422, error: 'Validation error in query parameters: [timeout: value 0 invalid, must be 1 or larger]' },
  { name: 'a collection name of 256 characters', method: 'PUT', url: `/collections/${long(256)}`, body: create({}), status: 422, error: `Validation error in path parameters: [collection_name: value "${long(256)}" invalid, must be from 1 to 255 characters]` },
  // the wrong kind of value: 400
  { name: 'shard_number -1', method: 'PUT', url: '/collections/x', body: create({ shard_number: -1 }), status: 400, error: 'Format error in JSON body: shard_number: invalid value -1, expected an unsigned integer' },
  { name: 'shard_number as a string', method: 'PUT', url: '/collections/x', body: create({ shard_number: '2' }), status: 400, error: 'Format error in JSON body: shard_number: must be integer,null' },
  { name: 'hnsw_config.m -3', method: 'PUT', url: '/collections/x', body: create({ hnsw_config: { m: -3 } }), status: 400, error: /^Format error in JSON body: hnsw_config\.m: expected an unsigned integer/ },
  { name: 'hnsw_config.ef_construct 1.5', method: 'PUT', url: '/collections/x', body: create({}, { hnsw_config: { ef_construct: 1.5 } }), status: 400, error: /^Format error in JSON body: vectors\.hnsw_config\.ef_construct: expected an unsigned integer/ },
  { name: 'offset -1', method: 'POST', url: '/collections/e/points/query', body: { query: [1, 1, 1, 1], offset: -1 }, status: 400, error: 'Format error in JSON body: offset: invalid value -1, expected an unsigned integer' },
  { name: '?timeout=abc', method: 'POST', url: '/collections/e/points/query?timeout=abc', body: { query: [1, 1, 1, 1] }, status: 400, error: /^Format error in query parameters: timeout: / },
  { name: '?timeout beyond u64', method: 'POST', url: '/collections/e/points/query?timeout=99999999999999999999', body: { query: [1, 1, 1, 1] }, status: 400, error: 'Format error in query parameters: timeout: 99999999999999999999 is larger than an unsigned 64-bit integer' },
  { name: '?timeout beyond u64 on an upsert', method: 'PUT', url: '/collections/e/points?timeout=18446744073709551616', body: { points: [{ id: 1000, vector: vec(1) }] }, status: 400, error: /^Format error in query parameters: timeout: 18446744073709551616 is larger/ },
  // names quiver does not take
  { name: 'a collection name of 129 characters', method: 'PUT', url: `/collections/${long(129)}`, body: create({}), status: 400, error: /^Wrong input: dataset name must be 1-128 letters/ },
  { name: 'info of a collection name of 200 characters', method: 'GET', url: `/collections/${long(200)}`, status: 404, error: `Not found: Collection \`${long(200)}\` doesn't exist!` },
  { name: 'a path parameter past the router\'s limit', method: 'GET', url: `/collections/${long(20_000)}`, status: 414, error: 'URI too long: a path parameter is longer than 16384 characters' },
  // paths that are not percent-encoded UTF-8
  { name: 'bad percent-encoding in a collection name', method: 'POST', url: '/collections/%FF/compact', status: 400, error: 'Format error in path parameters: the path is not valid percent-encoded UTF-8' },
  { name: 'a truncated percent escape', method: 'GET', url: '/collections/e/points/%E0%A4%A', status: 400, error: 'Format error in path parameters: the path is not valid percent-encoded UTF-8' },
  // ids that are almost UUIDs
  { name: 'an upsert with a leading space before a UUID', method: 'PUT', url: '/collections/e/points', body: { points: [{ id: 2000, vector: vec(1) }, { id: ` ${UUID}`, vector: vec(2) }] }, status: 400, error: `Format error in JSON body: points[1].id: " ${UUID}" is not a valid point id; expected an unsigned integer or a UUID` },
  { name: 'a batch upsert with a trailing newline after a UUID', method: 'PUT', url: '/collections/e/points', body: { batch: { ids: [2000, `${UUID}\n`], vectors: [vec(1), vec(2)] } }, status: 400, error: /batch\.ids\[1\]: ".*\\n" is not a valid point id/ },
  { name: 'a delete with a leading space before a UUID', method: 'POST', url: '/collections/e/points/delete', body: { points: [1, 2, ` ${UUID}`] }, status: 400, error: `Format error in JSON body: points[2]: " ${UUID}" is not a valid point id; expected an unsigned integer or a UUID` },
  { name: 'a delete with a tab after a UUID', method: 'POST', url: '/collections/e/points/delete', body: { points: [3, `${UUID}\t`] }, status: 400, error: /points\[1\]: ".*\\t" is not a valid point id/ },
  { name: 'a delete with a braced urn', method: 'POST', url: '/collections/e/points/delete', body: { points: [4, `{urn:uuid:${UUID}}`] }, status: 400, error: /points\[1\]: "\{urn:uuid:.*\}" is not a valid point id/ },
  { name: 'a retrieve with a non-breaking space', method: 'POST', url: '/collections/e/points', body: { ids: [`\u00a0${UUID}`] }, status: 400, error: /ids\[0\]: ".*" is not a valid point id/ },
  { name: 'a path id with a leading space', method: 'GET', url: `/collections/e/points/%20${UUID}`, status: 400, error: `Format error in path parameters: id: " ${UUID}" is not a valid point id; expected an unsigned integer or a UUID` },
  // shapes that reached a recursion or a null (500 before)
  { name: 'nearest inside nearest, 100,000 deep', method: 'POST', url: '/collections/e/points/query', body: `{"query":${'{"nearest":'.repeat(100_000)}[1,1,1,1]${'}'.repeat(100_000)}}`, status: 400, error: 'Format error in JSON body: query.nearest: expected a vector or a point id' },
  { name: 'a default vector named twice', method: 'PUT', url: '/collections/e/points', body: { points: [{ id: 2000, vector: { '': { '': vec(1) } } }] }, status: 400, error: 'Bad request: named vectors (points[0].vector[""]) is not supported by quiver' },
  { name: 'a default vector named 100,000 deep', method: 'PUT', url: '/collections/e/points', body: `{"points":[{"id":2000,"vector":${'{"":'.repeat(100_000)}[1,1,1,1]${'}'.repeat(100_000)}}]}`, status: 400, error: /^Bad request: named vectors/ },
  { name: 'vectors {"": null}', method: 'PUT', url: '/collections/x', body: { vectors: { '': null } }, status: 400, error: /^Format error in JSON body: vectors\[""\]: expected \{"size"/ },
];

t.test('bad requests: Qdrant\'s status and message, and nothing changes', async (t) => {
  const before = await snapshot();
  t.match(before, { count: { count: 51 } });
  for (const c of cases) {
    const res = await api(c.method, c.url, c.body);
    t.equal(res.status, c.status, `${c.name}: HTTP ${c.status} (${res.text.slice(0, 300)})`);
    if (typeof c.error === 'string') t.equal(res.body?.status?.error, c.error, `${c.name}: message`);
    else t.match(res.body?.status?.error, c.error, `${c.name}: message`);
    t.type(res.body?.time, 'number', `${c.name}: Qdrant's envelope`);
  }
  t.same(await snapshot(), before, 'no collection, point or deletion came of them');
  t.same(app.quiver.inflight(), [], 'and none of them is left counted as in flight');
});

t.test('collection names of 101 to 128 characters work on every route', async (t) => {
  for (const length of [101, 128]) {
    const name = long(length);
    const base = `/collections/${name}`;
    t.equal((await api('PUT', base, { vectors: { size: DIM, distance: 'Dot' } })).status, 200, `${length}: create`);
    t.match((await api('GET', base)).body, { result: { points_count: 0 } }, `${length}: info`);
    t.same((await api('GET', `${base}/exists`)).body.result, { exists: true }, `${length}: exists`);
    t.equal((await api('PUT', `${base}/points?wait=true`, { points: [{ id: 1, vector: [1, 0, 0, 0] }, { id: UUID, vector: [0, 1, 0, 0] }] })).status, 200, `${length}: upsert`);
    t.same((await api('GET', `${base}/points/1`)).body.result, { id: 1, payload: {}, vector: [1, 0, 0, 0] }, `${length}: a point by path`);
    t.same((await api('POST', `${base}/points/query`, { query: [0, 1, 0, 0], limit: 1 })).body.result.points.map((p: { id: unknown }) => p.id), [UUID], `${length}: query`);
    t.same((await api('POST', `${base}/points/count`)).body.result, { count: 2 }, `${length}: count`);
    t.equal((await api('POST', `${base}/points/delete`, { points: [1] })).status, 200, `${length}: delete`);
    t.equal((await api('POST', `${base}/compact`)).status, 200, `${length}: compact`);
    t.same((await api('DELETE', base)).body.result, true, `${length}: drop`);
  }
});

t.test('a timeout past Node\'s timer range waits as long as a timer can', async (t) => {
  for (const timeout of ['4294968', '2147484', '18446744073709551615']) {
    const res = await api('POST', `/collections/e/points/query?timeout=${timeout}`, { query: [1, 1, 1, 1], limit: 2 });
    t.equal(res.status, 200, `?timeout=${timeout}: ${res.text.slice(0, 200)}`);
    t.equal(res.body.result.points.length, 2);
  }
  const up = await api('PUT', '/collections/e/points?timeout=99999999', { points: [{ id: 3000, vector: vec(3) }] });
  t.equal(up.status, 200, 'an upsert with a long timeout');
  t.equal((await api('POST', '/collections/e/points/delete?timeout=4294968', { points: [3000] })).status, 200);
});

t.test('the probes answer Qdrant\'s texts', async (t) => {
  for (const probe of ['/healthz', '/livez']) {
    const res = await app.inject({ method: 'GET', url: probe });
    t.equal(res.statusCode, 200);
    t.equal(res.body, 'healthz check passed', `${probe}: Qdrant's text`);
    t.match(res.headers['content-type'], /^text\/plain/);
  }
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).body, 'all shards are ready');
});

t.test('ids: only a UUID\'s own text forms, nothing around them', async (t) => {
  const canonical = UUID;
  for (const form of [UUID, UUID.toUpperCase(), UUID.replace(/-/g, ''), `{${UUID}}`, `urn:uuid:${UUID}`, `URN:UUID:${UUID.toUpperCase()}`]) {
    t.equal(canonicalUuid(form), canonical, `${form} is a UUID`);
  }
  for (const bad of [` ${UUID}`, `${UUID} `, `${UUID}\n`, `\t${UUID}`, `{urn:uuid:${UUID}}`, `urn:uuid:{${UUID}}`, `{${UUID}`, `${UUID}}`, `${UUID.slice(0, 35)}`, `${UUID}0`, `${UUID.slice(0, 8)}${UUID.slice(9)}`, `g${UUID.slice(1)}`, '']) {
    t.equal(canonicalUuid(bad), undefined, `${JSON.stringify(bad)} is not`);
  }
  t.throws(() => packId(` ${UUID}`), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'the library refuses it with a code');
  await t.rejects(store.insert('e', [` ${UUID}`], new Float32Array(vec(1))), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  await t.rejects(store.delete('e', [1, ` ${UUID}`]), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  t.same(await store.count('e'), 51, 'and changes nothing');
});

t.test('the message pieces', async (t) => {
  t.equal(fieldName('/searches/0/params/hnsw_ef'), 'searches[0].params.hnsw_ef');
  t.equal(fieldName('/points/12/payload'), 'points[12].payload');
  t.equal(fieldName('/a~1b/c~0d'), 'a/b.c~d');
  t.equal(fieldName(''), '');
  t.equal(rangeMessage(0, 1, undefined), 'value 0 invalid, must be 1 or larger');
  t.equal(rangeMessage(9, undefined, 8), 'value 9 invalid, must be 8 or smaller');
  t.equal(rangeMessage('ab', 3, undefined, 'characters'), 'value "ab" invalid, must be at least 3 characters');
  t.equal(rangeMessage('abc', undefined, 2, 'characters'), 'value "abc" invalid, must be at most 2 characters');
});
