// Payload indexes over HTTP with the unmodified Qdrant JS client (issue 10):
// createPayloadIndex with a type name and with Qdrant's params (accepted and
// ignored), payload_schema with data_type and points in collection info,
// deletePayloadIndex; the types quiver has no index for (text, geo,
// datetime) and malformed bodies are a 400 in Qdrant's envelope that
// changes nothing; an unknown collection is a 404.
import t from 'tap';
import { QdrantClient } from '@qdrant/js-client-rest';
import { call, startServer } from './helpers/server.js';

const DIM = 4;
const N = 90;
const server = await startServer(['--threads', '2']);
t.teardown(() => server.stop());

const vector = (i: number): number[] => [Math.sin(i + 1), Math.cos(i + 2), (i % 5) + 1, 1];
/** city: a string on every point but multiples of 10; n: an integer on even points, a float on odd ones; ok: a bool on multiples of 3. */
const payload = (i: number): Record<string, unknown> => ({
  ...(i % 10 === 0 ? {} : { city: ['Berlin', 'Paris', 'Rome'][i % 3]! }),
  n: i % 2 === 0 ? i : i + 0.5,
  ...(i % 3 === 0 ? { ok: i % 2 === 0 } : {}),
});
const count = (pred: (i: number) => boolean): number => Array.from({ length: N }, (_, i) => i).filter(pred).length;

async function schemaOf(client: QdrantClient, name: string): Promise<unknown> {
  return (await client.getCollection(name)).payload_schema;
}

t.test('create with a type name and with params, listed in payload_schema, deleted', async (t) => {
  const client = new QdrantClient({ url: server.url, checkCompatibility: false });
  await client.createCollection('c', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 3 });
  await client.upsert('c', { wait: true, points: Array.from({ length: N }, (_, i) => ({ id: i, vector: vector(i), payload: payload(i) })) });
  t.same(await schemaOf(client, 'c'), {}, 'no payload_schema entries at first');

  const r = await client.createPayloadIndex('c', { field_name: 'city', field_schema: 'keyword', wait: true });
  t.same(r, { operation_id: r.operation_id, status: 'completed' }, 'an UpdateResult, completed');
  t.type(r.operation_id, 'number');
  await client.createPayloadIndex('c', { field_name: 'n', field_schema: { type: 'integer', lookup: true, range: true }, wait: true });
  await client.createPayloadIndex('c', { field_name: 'ok', field_schema: { type: 'bool', on_disk: false } });
  await client.createPayloadIndex('c', { field_name: 'city', field_schema: { type: 'keyword', is_tenant: true }, wait: true });
  t.same(await schemaOf(client, 'c'), {
    city: { data_type: 'keyword', points: count((i) => i % 10 !== 0) },
    n: { data_type: 'integer', points: count((i) => i % 2 === 0) },
    ok: { data_type: 'bool', points: count((i) => i % 3 === 0) },
  }, 'payload_schema: data_type and points per field (n counts the integers only)');

  await client.createPayloadIndex('c', { field_name: 'n', field_schema: 'float', wait: true });
  t.same((await schemaOf(client, 'c') as Record<string, unknown>).n, { data_type: 'float', points: N }, 'retyped to float: every number counts');

  await client.upsert('c', { wait: true, points: [{ id: 1000, vector: vector(1000), payload: { city: 'Oslo', n: 1 } }] });
  await client.delete('c', { wait: true, points: [0, 1] });
  await client.setPayload('c', { payload: { city: null }, points: [2], wait: true });
  const live = (i: number): boolean => i > 1;
  t.same(await schemaOf(client, 'c'), {
    city: { data_type: 'keyword', points: count((i) => live(i) && i !== 2 && i % 10 !== 0) + 1 },
    n: { data_type: 'float', points: N - 2 + 1 },
    ok: { data_type: 'bool', points: count((i) => live(i) && i % 3 === 0) },
  }, 'points follow upserts, deletes and payload updates');

  const filter = { must: [{ key: 'city', match: { value: 'Rome' } }] };
  const rome = (await client.count('c', { filter, exact: true })).count;
  t.equal(rome, count((i) => live(i) && i !== 2 && i % 10 !== 0 && i % 3 === 2), 'a filter on an indexed field');

  const d = await client.deletePayloadIndex('c', 'city', { wait: true });
  t.equal(d.status, 'completed', 'delete: an UpdateResult, completed');
  t.same(Object.keys(await schemaOf(client, 'c') as object), ['n', 'ok'], 'gone from payload_schema');
  t.equal((await client.count('c', { filter, exact: true })).count, rome, 'the same filter answers the same without it');
  const again = await call(`${server.url}/collections/c/index/city`, 'DELETE');
  t.equal(again.status, 200, 'deleting it again is no error');

  const ack = await call(`${server.url}/collections/c/index?wait=false`, 'PUT', { field_name: 'tags[]', field_schema: 'keyword' });
  t.equal(ack.status, 200);
  t.equal(ack.body.result.status, 'acknowledged', 'wait=false is acknowledged');
  const nested = await call(`${server.url}/collections/c/index/${encodeURIComponent('tags[]')}?wait=true`, 'DELETE');
  t.equal(nested.status, 200, 'a field with [] in the path, URL-encoded');
  t.same(Object.keys(await schemaOf(client, 'c') as object), ['n', 'ok'], 'created and deleted in order');
});

t.test('unsupported types and malformed bodies are a 400 that changes nothing; an unknown collection a 404', async (t) => {
  const client = new QdrantClient({ url: server.url, checkCompatibility: false });
  await client.createCollection('e', { vectors: { size: DIM, distance: 'Dot' }, shard_number: 2 });
  await client.upsert('e', { wait: true, points: [{ id: 1, vector: vector(1), payload: { a: 'x', t: 'some text' } }] });
  await client.createPayloadIndex('e', { field_name: 'a', field_schema: 'keyword', wait: true });
  const before = await schemaOf(client, 'e');

  for (const type of ['text', 'geo', 'datetime']) {
    for (const fieldSchema of [type, { type }]) {
      const r = await call(`${server.url}/collections/e/index`, 'PUT', { field_name: 't', field_schema: fieldSchema });
      t.equal(r.status, 400, `${JSON.stringify(fieldSchema)}: 400`);
      t.match(r.body, { status: { error: new RegExp(`\\b${type}\\b.*not supported`) } }, `in Qdrant's envelope, naming ${type}`);
      t.type(r.body?.time, 'number');
    }
  }
  const bad: unknown[] = [
    { field_schema: 'keyword' },
    { field_name: 't' },
    { field_name: 't', field_schema: null },
    { field_name: 't', field_schema: 'nope' },
    { field_name: 't', field_schema: 7 },
    { field_name: 't', field_schema: { lookup: true } },
    { field_name: 't', field_schema: { type: 'integer', lookup: 'yes' } },
    { field_name: 't', field_schema: { type: 'keyword', range: true } },
    { field_name: 7, field_schema: 'keyword' },
    { field_name: 'a..b', field_schema: 'keyword' },
    { field_name: '', field_schema: 'keyword' },
  ];
  for (const body of bad) {
    const r = await call(`${server.url}/collections/e/index`, 'PUT', body);
    t.equal(r.status, 400, `${JSON.stringify(body)}: 400 (${r.body?.status?.error})`);
    t.match(r.body, { status: { error: /./ }, time: Number }, 'in Qdrant\'s envelope');
  }
  const badDelete = await call(`${server.url}/collections/e/index/${encodeURIComponent('a[')}`, 'DELETE');
  t.equal(badDelete.status, 400, 'deleting a malformed field: 400');
  t.same(await schemaOf(client, 'e'), before, 'nothing changed');

  for (const [method, path, body] of [
    ['PUT', '/collections/nope/index', { field_name: 'a', field_schema: 'keyword' }],
    ['DELETE', '/collections/nope/index/a', undefined],
    ['GET', '/collections/nope', undefined],
  ] as const) {
    const r = await call(`${server.url}${path}`, method, body);
    t.equal(r.status, 404, `${method} ${path}: 404`);
    t.match(r.body, { status: { error: /Collection `nope` doesn't exist/ } }, 'Qdrant\'s not-found message');
  }
  const err = await client.createPayloadIndex('nope', { field_name: 'a', field_schema: 'keyword' }).then(() => undefined, (e: unknown) => e);
  t.match(err, { status: 404 }, 'the client sees the 404');
});
