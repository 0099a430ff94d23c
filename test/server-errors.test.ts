// Bad requests over raw HTTP against a real `quiver serve` child: each gets
// Qdrant's status and error body, and none of them changes the store.
import t from 'tap';
import { call, startServer } from './helpers/server.js';

const KEY = 'sesame-0123456789';
const RO_KEY = 'read-only-key';
const LIMIT = 64 * 1024;

const server = await startServer(['--threads', '1', '--api-key', KEY, '--read-only-api-key', RO_KEY, '--body-limit', String(LIMIT)]);
t.teardown(() => server.stop());

const auth = { 'api-key': KEY };
const api = (path: string, method: string, body?: unknown, headers: Record<string, string> = auth) => call(`${server.url}${path}`, method, body, headers);

const DIM = 4;
const points = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, vector: [i, i % 3, (i * 7) % 5, 1], payload: { i } }));
const probe = { query: [1, 1, 1, 1], limit: 5, with_payload: true };

async function snapshot(): Promise<unknown> {
  const count = await api('/collections/e/points/count', 'POST', {});
  const query = await api('/collections/e/points/query', 'POST', probe);
  return { count: count.body.result, points: query.body.result };
}

t.before(async () => {
  const created = await api('/collections/e', 'PUT', { vectors: { size: DIM, distance: 'Euclid' } });
  if (created.status !== 200) throw new Error(`setup: ${created.text}`);
  const up = await api('/collections/e/points?wait=true', 'PUT', { points });
  if (up.status !== 200) throw new Error(`setup: ${up.text}`);
});

interface Case {
  name: string;
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  error: RegExp;
}

const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';
const cases: Case[] = [
  // dimensions and values
  { name: 'upsert of the wrong dimension', method: 'PUT', path: '/collections/e/points', body: { points: [{ id: 100, vector: [1, 2, 3] }] }, status: 400, error: /Vector dimension error: expected dim: 4, got 3/ },
  { name: 'batch upsert with one vector of the wrong dimension', method: 'PUT', path: '/collections/e/points', body: { batch: { ids: [100, 101], vectors: [[1, 2, 3, 4], [1, 2, 3, 4, 5]] } }, status: 400, error: /expected dim: 4, got 5/ },
  { name: 'query of the wrong dimension', method: 'POST', path: '/collections/e/points/query', body: { query: [1, 2] }, status: 400, error: /expected dim: 4, got 2/ },
  { name: 'NaN as a string in a vector', method: 'PUT', path: '/collections/e/points', body: { points: [{ id: 100, vector: [1, 'NaN', 3, 4] }] }, status: 400, error: /points\[0\]\.vector\[1\]: expected a number \(got "NaN"\)/ },
  { name: 'NaN as a string in a query', method: 'POST', path: '/collections/e/points/query', body: { query: ['NaN', 1, 1, 1] }, status: 400, error: /query\[0\]: expected a number/ },
  { name: 'a number beyond float32 (1e39) in a vector', method: 'PUT', path: '/collections/e/points', body: '{"points":[{"id":100,"vector":[1,2,1e39,4]}]}', status: 400, error: /vector\[2\]: 1e\+39 is outside the float32 range/ },
  { name: 'a number beyond float32 in a query', method: 'POST', path: '/collections/e/points/query', body: '{"query":[1,-1e39,1,1]}', status: 400, error: /outside the float32 range/ },
  { name: 'a bare NaN token (not JSON)', method: 'POST', path: '/collections/e/points/query', body: '{"query":[NaN,1,1,1]}', status: 400, error: /Format error in JSON body/ },
  // collections
  { name: 'query of an unknown collection', method: 'POST', path: '/collections/nope/points/query', body: probe, status: 404, error: /Not found: Collection `nope` doesn't exist!/ },
  { name: 'upsert into an unknown collection', method: 'PUT', path: '/collections/nope/points', body: { points: [{ id: 1, vector: [1, 2, 3, 4] }] }, status: 404, error: /Collection `nope` doesn't exist/ },
  { name: 'info of an unknown collection', method: 'GET', path: '/collections/nope', status: 404, error: /Collection `nope` doesn't exist/ },
  { name: 'creating an existing collection', method: 'PUT', path: '/collections/e', body: { vectors: { size: DIM, distance: 'Euclid' } }, status: 409, error: /Collection `e` already exists!/ },
  { name: 'a collection name with a path character', method: 'PUT', path: '/collections/a%2Fb', body: { vectors: { size: DIM, distance: 'Dot' } }, status: 400, error: /dataset name must be/ },
  { name: 'an unknown distance', method: 'PUT', path: '/collections/x', body: { vectors: { size: DIM, distance: 'Hamming' } }, status: 400, error: /unknown distance "Hamming"/ },
  { name: 'the Manhattan distance', method: 'PUT', path: '/collections/x', body: { vectors: { size: DIM, distance: 'Manhattan' } }, status: 400, error: /Manhattan distance is not supported/ },
  { name: 'named vectors', method: 'PUT', path: '/collections/x', body: { vectors: { text: { size: DIM, distance: 'Dot' } } }, status: 400, error: /named vectors \("text"\) is not supported/ },
  // malformed bodies
  { name: 'malformed JSON', method: 'POST', path: '/collections/e/points/query', body: '{"query": [1, 2,', status: 400, error: /Format error in JSON body/ },
  { name: 'a body over the limit', method: 'PUT', path: '/collections/e/points', body: JSON.stringify({ points: [{ id: 1, vector: [1, 2, 3, 4], payload: { pad: 'x'.repeat(LIMIT) } }] }), status: 413, error: /too large/ },
  { name: 'a body that is not JSON', method: 'POST', path: '/collections/e/points/query', body: 'query', headers: { ...auth, 'content-type': 'text/plain' }, status: 415, error: /Unsupported media type/ },
  { name: 'limit of the wrong type', method: 'POST', path: '/collections/e/points/query', body: { query: [1, 1, 1, 1], limit: '5' }, status: 400, error: /limit: must be integer/ },
  // out of range is Qdrant's 422 validation error (test/server-validation.test.ts has one per field)
  { name: 'limit 0', method: 'POST', path: '/collections/e/points/query', body: { query: [1, 1, 1, 1], limit: 0 }, status: 422, error: /^Validation error in JSON body: \[limit: value 0 invalid, must be from 1 to 100000\]$/ },
  { name: 'a payload that is not an object', method: 'PUT', path: '/collections/e/points', body: { points: [{ id: 1, vector: [1, 2, 3, 4], payload: [1, 2] }] }, status: 400, error: /payload: must be object,null/ },
  { name: 'neither points nor batch', method: 'PUT', path: '/collections/e/points', body: {}, status: 400, error: /expected either `points`/ },
  // unsupported features
  { name: 'a geo filter in a query', method: 'POST', path: '/collections/e/points/query', body: { ...probe, filter: { must: [{ key: 'at', geo_radius: { center: { lon: 0, lat: 0 }, radius: 1 } }] } }, status: 400, error: /filter\.must\[0\]: geo_radius is not supported/ },
  { name: 'delete by a nested filter', method: 'POST', path: '/collections/e/points/delete', body: { filter: { must: [{ nested: { key: 'a', filter: {} } }] } }, status: 400, error: /filter\.must\[0\]: nested is not supported/ },
  { name: 'delete with both points and a filter', method: 'POST', path: '/collections/e/points/delete', body: { points: [1], filter: { must: [] } }, status: 400, error: /either `points`.*or `filter`/ },
  { name: 'count with a malformed filter', method: 'POST', path: '/collections/e/points/count', body: { filter: { must: [{ key: 'i', match: { value: 1.5 } }] } }, status: 400, error: /filter\.must\[0\]/ },
  { name: 'scroll with an unknown filter clause', method: 'POST', path: '/collections/e/points/scroll', body: { filter: { must: [], whatever: [] } }, status: 400, error: /whatever/ },
  { name: 'prefetch', method: 'POST', path: '/collections/e/points/query', body: { prefetch: [{ query: [1, 1, 1, 1] }], query: { fusion: 'rrf' } }, status: 400, error: /prefetch.*is not supported/ },
  { name: 'a recommend query', method: 'POST', path: '/collections/e/points/query', body: { query: { recommend: { positive: [1] } } }, status: 400, error: /`recommend` queries .* not supported/ },
  { name: 'a named vector in a query', method: 'POST', path: '/collections/e/points/query', body: { query: [1, 1, 1, 1], using: 'text' }, status: 400, error: /named vectors .* not supported/ },
  { name: 'a sparse vector', method: 'POST', path: '/collections/e/points/query', body: { query: { indices: [1], values: [0.5] } }, status: 400, error: /sparse vectors .* not supported/ },
  { name: 'group_by', method: 'POST', path: '/collections/e/points/query/groups', body: { query: [1, 1, 1, 1], group_by: 'i' }, status: 400, error: /grouped queries .* not supported/ },
  { name: 'order_by in a scroll', method: 'POST', path: '/collections/e/points/scroll', body: { order_by: 'i' }, status: 400, error: /order_by.*not supported/ },
  { name: 'a shard key', method: 'POST', path: '/collections/e/points/query', body: { ...probe, shard_key: 'a' }, status: 400, error: /shard_key.*not supported/ },
  { name: 'a vector update', method: 'PUT', path: '/collections/e/points/vectors', body: { points: [{ id: 1, vector: [1, 2, 3, 4] }] }, status: 400, error: /vector updates .* not supported/ },
  // ids
  { name: 'a negative id', method: 'PUT', path: '/collections/e/points', body: { points: [{ id: -1, vector: [1, 2, 3, 4] }] }, status: 400, error: /points\[0\]\.id: -1 is not a valid point id/ },
  { name: 'a float id', method: 'PUT', path: '/collections/e/points', body: { points: [{ id: 1.5, vector: [1, 2, 3, 4] }] }, status: 400, error: /1\.5 is not a valid point id/ },
  { name: 'a string id that is not a UUID', method: 'PUT', path: '/collections/e/points', body: { points: [{ id: 'abc', vector: [1, 2, 3, 4] }] }, status: 400, error: /"abc" is not a valid point id/ },
  { name: 'an id above 2^53 in JSON', method: 'PUT', path: '/collections/e/points', body: '{"points":[{"id":18446744073709551615,"vector":[1,2,3,4]}]}', status: 400, error: /above 2\^53 - 1/ },
  { name: 'a null id', method: 'PUT', path: '/collections/e/points', body: { points: [{ id: null, vector: [1, 2, 3, 4] }] }, status: 400, error: /expected an unsigned integer or a UUID as point id \(got null\)/ },
  { name: 'bad ids in a delete', method: 'POST', path: '/collections/e/points/delete', body: { points: [3, -2] }, status: 400, error: /points\[1\]: -2 is not a valid point id/ },
  { name: 'bad ids in a retrieve', method: 'POST', path: '/collections/e/points', body: { ids: [1, 'nope'] }, status: 400, error: /ids\[1\]: "nope" is not a valid point id/ },
  { name: 'a bad id in a path', method: 'GET', path: '/collections/e/points/xyz', status: 400, error: /Format error in path parameters: id: "xyz" is not a valid point id/ },
  { name: 'a point that is not there', method: 'GET', path: `/collections/e/points/${uuid}`, status: 404, error: new RegExp(`No point with id ${uuid} found`) },
  { name: 'a query by an id that is not there', method: 'POST', path: '/collections/e/points/query', body: { query: 999 }, status: 404, error: /No point with id 999 found/ },
  // query strings
  { name: 'wait that is not a boolean', method: 'PUT', path: '/collections/e/points?wait=yes', body: { points: [] }, status: 400, error: /Format error in query parameters: wait: must be equal to one of the allowed values/ },
  // routes
  { name: 'an unknown route', method: 'GET', path: '/collections/e/nothing', status: 404, error: /no route GET \/collections\/e\/nothing/ },
  // keys
  { name: 'no API key', method: 'POST', path: '/collections/e/points/query', body: probe, headers: {}, status: 401, error: /Must provide an API key or an Authorization bearer token/ },
  { name: 'a wrong API key', method: 'POST', path: '/collections/e/points/query', body: probe, headers: { 'api-key': 'sesame-0123456788' }, status: 401, error: /Invalid API key/ },
  { name: 'a wrong bearer token', method: 'GET', path: '/collections', headers: { authorization: 'Bearer nope' }, status: 401, error: /Invalid API key/ },
  { name: 'a key of another length', method: 'GET', path: '/collections', headers: { 'api-key': 'x' }, status: 401, error: /Invalid API key/ },
  { name: 'no key for /metrics', method: 'GET', path: '/metrics', headers: {}, status: 401, error: /Must provide an API key/ },
  { name: 'a read-only key writing', method: 'PUT', path: '/collections/e/points', body: { points: [{ id: 100, vector: [1, 2, 3, 4] }] }, headers: { 'api-key': RO_KEY }, status: 403, error: /Write access is required/ },
  { name: 'a read-only key dropping', method: 'DELETE', path: '/collections/e', headers: { 'api-key': RO_KEY }, status: 403, error: /Write access is required/ },
];

t.test('bad requests get Qdrant\'s status and error body, and change nothing', async (t) => {
  const before = await snapshot();
  t.match(before, { count: { count: 20 } });
  for (const c of cases) {
    const res = await api(c.path, c.method, c.body, c.headers ?? auth);
    t.equal(res.status, c.status, `${c.name}: HTTP ${c.status}`);
    t.match(res.body, { status: { error: c.error } }, `${c.name}: ${res.body?.status?.error ?? res.text}`);
    t.type(res.body.time, 'number', `${c.name}: has time`);
  }
  t.same(await snapshot(), before, 'the count and a query result are unchanged');
  t.same((await api('/collections', 'GET')).body.result, { collections: [{ name: 'e' }] }, 'no collection was created');
});

t.test('keys: header, bearer, read-only; probes are open', async (t) => {
  t.equal((await api('/collections', 'GET', undefined, { authorization: `Bearer ${KEY}` })).status, 200, 'Authorization: Bearer works');
  const ro = await api('/collections/e/points/query', 'POST', probe, { 'api-key': RO_KEY });
  t.equal(ro.status, 200, 'a read-only key may search');
  t.equal((await api('/collections/e', 'GET', undefined, { 'api-key': RO_KEY })).status, 200, 'and read info');
  for (const probePath of ['/healthz', '/livez', '/readyz']) {
    const res = await call(`${server.url}${probePath}`, 'GET');
    t.equal(res.status, 200, `${probePath} needs no key`);
  }
  t.equal((await call(`${server.url}/`, 'GET')).status, 401, 'the version route needs a key, as in Qdrant');
});

t.test('a duplicate id in one upsert keeps the last one, as Qdrant does', async (t) => {
  const res = await api('/collections/e/points?wait=true', 'PUT', { points: [{ id: 500, vector: [1, 1, 1, 1], payload: { v: 1 } }, { id: 500, vector: [2, 2, 2, 2], payload: { v: 2 } }] });
  t.equal(res.status, 200);
  const got = await api('/collections/e/points/500', 'GET');
  t.same(got.body.result, { id: 500, payload: { v: 2 }, vector: [2, 2, 2, 2] });
  t.equal((await api('/collections/e/points/delete?wait=true', 'POST', { points: [500] })).status, 200);
});
