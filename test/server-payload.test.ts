// Payload updates over HTTP with the unmodified Qdrant JS client (issue 10):
// setPayload (with key), overwritePayload, deletePayload, clearPayload and
// batchUpdate against a `quiver serve` child; Qdrant's response shapes; an
// absent id is Qdrant's 404; bad input is a 400 that changes nothing.
import t from 'tap';
import { QdrantClient } from '@qdrant/js-client-rest';
import { call, startServer } from './helpers/server.js';

const DIM = 4;
const N = 60;
const server = await startServer(['--threads', '2']);
t.teardown(() => server.stop());

const vector = (i: number): number[] => [Math.sin(i + 1), Math.cos(i + 2), (i % 5) + 1, 1];
const base = (i: number): Record<string, unknown> => ({ city: ['Berlin', 'Paris', 'Rome'][i % 3]!, n: i, shop: { open: i % 2 === 0 } });

async function payloads(client: QdrantClient, name: string, ids: number[]): Promise<Map<number, unknown>> {
  const recs = await client.retrieve(name, { ids, with_payload: true });
  return new Map(recs.map((r) => [r.id as number, r.payload]));
}

t.test('set, overwrite, delete and clear by ids and by filter, as the Qdrant client sends them', async (t) => {
  const client = new QdrantClient({ url: server.url, checkCompatibility: false });
  await client.createCollection('p', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 3 });
  const ids = Array.from({ length: N }, (_, i) => i);
  await client.upsert('p', { wait: true, points: ids.map((id) => ({ id, vector: vector(id), payload: base(id) })) });

  const set = await client.setPayload('p', { payload: { tag: 'x', n: null }, points: [1, 2, 3], wait: true });
  t.same(set, { operation_id: set.operation_id, status: 'completed' }, 'an UpdateResult, completed');
  let got = await payloads(client, 'p', [1, 2, 3, 4]);
  t.same(got.get(1), { city: 'Paris', shop: { open: false }, tag: 'x' }, 'merged; the null removed n');
  t.same(got.get(4), base(4), 'a point not named is untouched');

  await client.setPayload('p', { payload: { rating: 5 }, key: 'shop', filter: { must: [{ key: 'city', match: { value: 'Rome' } }] }, wait: true });
  const romes = ids.filter((i) => i % 3 === 2 && i > 3);
  got = await payloads(client, 'p', ids);
  t.ok(romes.every((i) => JSON.stringify(got.get(i)) === JSON.stringify({ ...base(i), shop: { open: i % 2 === 0, rating: 5 } })), 'key: merged into shop of every Rome point');
  t.equal((await client.count('p', { filter: { must: [{ key: 'shop.rating', match: { value: 5 } }] }, exact: true })).count, romes.length + 1, 'a filter sees the update at once');

  await client.overwritePayload('p', { payload: { only: true }, points: [10], wait: true });
  t.same((await payloads(client, 'p', [10])).get(10), { only: true }, 'overwrite replaces the whole payload');

  await client.deletePayload('p', { keys: ['shop.open', 'city'], filter: { must: [{ key: 'n', range: { lt: 6 } }] }, wait: true });
  got = await payloads(client, 'p', [4, 5, 6]);
  t.same(got.get(4), { n: 4, shop: {} }, 'delete: nested and top-level keys, by filter');
  t.same(got.get(6), base(6), 'a point the filter does not match keeps them');

  await client.clearPayload('p', { points: [20, 21], wait: true });
  await client.clearPayload('p', { filter: { must: [{ has_id: [22] }] }, wait: true });
  got = await payloads(client, 'p', [20, 21, 22, 24]);
  t.same([got.get(20), got.get(21), got.get(22)], [{}, {}, {}], 'clear by ids and by filter');
  t.same(got.get(24), base(24), 'others keep theirs');

  const ack = await client.setPayload('p', { payload: { late: 1 }, points: [30], wait: false });
  t.equal(ack.status, 'acknowledged', 'wait=false is acknowledged');
  await client.setPayload('p', { payload: { later: 2 }, points: [30], wait: true });
  t.same((await payloads(client, 'p', [30])).get(30), { ...base(30), late: 1, later: 2 }, 'and applied in order before the next wait=true write');
});

t.test('batchUpdate runs its operations in order; each gets an UpdateResult', async (t) => {
  const client = new QdrantClient({ url: server.url, checkCompatibility: false });
  await client.createCollection('b', { vectors: { size: DIM, distance: 'Cosine' }, shard_number: 2 });
  const results = await client.batchUpdate('b', {
    wait: true,
    operations: [
      { upsert: { points: [{ id: 1, vector: vector(1), payload: { a: 1 } }, { id: 2, vector: vector(2), payload: { a: 2 } }, { id: 3, vector: vector(3) }] } },
      { set_payload: { payload: { b: true }, points: [1, 2] } },
      { overwrite_payload: { payload: { c: 'x' }, points: [3] } },
      { delete_payload: { keys: ['a'], points: [2] } },
      { clear_payload: { filter: { must: [{ has_id: [1] }] } } },
      { delete: { points: [3] } },
    ],
  });
  t.equal(results.length, 6, 'one result per operation');
  t.ok(results.every((r) => r.status === 'completed'), 'each completed');
  const recs = await client.retrieve('b', { ids: [1, 2, 3], with_payload: true });
  t.same(recs.map((r) => [r.id, r.payload]), [[1, {}], [2, { b: true }]], 'the operations took effect in order');
});

t.test('an absent id is a 404; bad input is a 400 that changes nothing', async (t) => {
  const client = new QdrantClient({ url: server.url, checkCompatibility: false });
  await client.createCollection('e', { vectors: { size: DIM, distance: 'Dot' }, shard_number: 1 });
  await client.upsert('e', { wait: true, points: [{ id: 1, vector: vector(1), payload: { a: 1 } }] });
  const missing = await call(`${server.url}/collections/e/points/payload`, 'POST', { payload: { b: 1 }, points: [1, 77] });
  t.equal(missing.status, 404);
  t.match(missing.body.status.error, /No point with id 77 found/);
  const bad: [string, string, unknown][] = [
    ['POST', '/collections/e/points/payload', { payload: { b: 1 } }],
    ['POST', '/collections/e/points/payload', { payload: { b: 1 }, points: [1], filter: { must: [] } }],
    ['POST', '/collections/e/points/payload', { payload: [1], points: [1] }],
    ['POST', '/collections/e/points/payload', { payload: { b: 1 }, points: [1], key: 'a..b' }],
    ['POST', '/collections/e/points/payload', { payload: { b: 1 }, filter: { must: [{ key: 'a', geo_radius: {} }] } }],
    ['PUT', '/collections/e/points/payload', { payload: { b: 1 }, points: ['nope'] }],
    ['POST', '/collections/e/points/payload/delete', { keys: 'a', points: [1] }],
    ['POST', '/collections/e/points/payload/delete', { keys: ['[0]'], points: [1] }],
    ['POST', '/collections/e/points/payload/clear', {}],
    ['POST', '/collections/e/points/batch', { operations: [{ set_payload: { payload: { z: 1 }, points: [1] } }, { update_vectors: { points: [] } }] }],
    ['POST', '/collections/e/points/batch', { operations: [{ set_payload: { payload: { z: 1 }, points: [1] } }, { frobnicate: {} }] }],
    ['POST', '/collections/e/points/batch', { operations: [{ set_payload: { payload: { z: 1 }, points: [1] } }, { delete_payload: { keys: [1], points: [1] } }] }],
  ];
  for (const [method, path, body] of bad) {
    const r = await call(`${server.url}${path}`, method, body);
    t.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: 400 (${r.body?.status?.error})`);
    t.match(r.body, { status: { error: /./ } }, 'in Qdrant\'s envelope');
    t.type(r.body?.time, 'number');
  }
  const unsupported = await call(`${server.url}/collections/e/points/batch`, 'POST', { operations: [{ update_vectors: { points: [] } }] });
  t.match(unsupported.body.status.error, /update_vectors/, 'an unsupported batch operation is named');
  t.same((await client.retrieve('e', { ids: [1], with_payload: true }))[0]!.payload, { a: 1 }, 'nothing changed');
});
