// int8 quantization over HTTP with the unmodified Qdrant JS client (issue
// 11): create with `quantization_config` (top level, or the vector's own),
// collection info echoes it (null when none); query and search, single and
// batch, take `params.quantization` (rescore false answers code scores, the
// default and ignore exact ones); product, binary and turbo quantization,
// another scalar type, always_ram false on a server without a data dir and malformed values are Qdrant's
// 400 (422 out of range) naming the field, and create nothing; PATCH with
// the quantization a collection has is a no-op, any other is a 400.
import t from 'tap';
import { QdrantClient } from '@qdrant/js-client-rest';
import { call, startServer } from './helpers/server.js';
import { bruteForce, clustered } from './helpers/data.js';

const DIM = 16;
const N = 1500;
const K = 10;
const Q = 12;
const DATA = clustered(N, DIM, 8, 21);
const QUERIES = clustered(Q, DIM, 8, 22);
const row = (data: Float32Array, i: number): number[] => Array.from(data.subarray(i * DIM, (i + 1) * DIM));
const SCALAR = { scalar: { type: 'int8' as const, quantile: 0.98, always_ram: true } };

const server = await startServer(['--threads', '2']);
t.teardown(() => server.stop());
const client = new QdrantClient({ url: server.url, checkCompatibility: false });

/** Exact Euclid score of stored point id to query q. */
function exactScore(id: number, q: number): number {
  let d = 0;
  for (let j = 0; j < DIM; j++) d += (DATA[id * DIM + j]! - QUERIES[q * DIM + j]!) ** 2;
  return Math.sqrt(d);
}

const configOf = async (name: string): Promise<unknown> => (await client.getCollection(name)).config.quantization_config;

t.before(async () => {
  await client.createCollection('q', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 2, quantization_config: SCALAR });
  await client.createCollection('f', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 2 });
  for (const name of ['q', 'f']) {
    await client.upsert(name, { wait: true, points: Array.from({ length: N }, (_, i) => ({ id: i, vector: row(DATA, i) })) });
  }
});

t.test('collection info echoes quantization_config; null without; a vector-level config counts too', async (t) => {
  t.same(await configOf('q'), SCALAR, 'as created');
  t.equal(await configOf('f'), null, 'none: null');
  await client.createCollection('v', { vectors: { size: DIM, distance: 'Cosine', quantization_config: { scalar: { type: 'int8' } } } });
  t.teardown(() => client.deleteCollection('v'));
  t.same(await configOf('v'), { scalar: { type: 'int8', quantile: 0.99, always_ram: true } }, "the vector's own, defaults filled in");
  await client.createCollection('w', {
    vectors: { size: DIM, distance: 'Dot', quantization_config: { scalar: { type: 'int8', quantile: 0.9 } } },
    quantization_config: { scalar: { type: 'int8', quantile: 0.6 }, },
  });
  t.teardown(() => client.deleteCollection('w'));
  t.same(await configOf('w'), { scalar: { type: 'int8', quantile: 0.9, always_ram: true } }, "the vector's config overrides the collection's, as in Qdrant");
  await client.createCollection('m', { vectors: { size: DIM, distance: 'Dot' }, quantization_config: { scalar: { type: 'int8', quantile: null, always_ram: null, memory: 'pinned' } } });
  t.teardown(() => client.deleteCollection('m'));
  t.same(await configOf('m'), { scalar: { type: 'int8', quantile: 0.99, always_ram: true } }, 'nulls are defaults; memory "pinned" is what quiver does');
  const raw = await call(`${server.url}/collections/q`, 'GET');
  t.ok(typeof raw.body.result.quiver === 'object', 'quiver figures still there');
});

t.test('params.quantization on query, query/batch, search and search/batch', async (t) => {
  const queries = Array.from({ length: Q }, (_, q) => row(QUERIES, q));
  const truth = queries.map((_, q) => bruteForce(DATA, DIM, QUERIES, q * DIM, K));
  let codeOff = 0;
  let exactHits = 0;
  for (const [q, query] of queries.entries()) {
    const plain = await client.query('q', { query, limit: K });
    const codes = await client.query('q', { query, limit: K, params: { quantization: { rescore: false } } });
    const ignored = await client.query('q', { query, limit: K, params: { quantization: { ignore: true } } });
    const wide = await client.query('q', { query, limit: K, params: { quantization: { rescore: true, oversampling: 3 }, hnsw_ef: 64 } });
    for (const [what, r] of [['default', plain], ['ignore', ignored], ['oversampling 3', wide]] as const) {
      t.equal(r.points.length, K);
      for (const p of r.points) {
        if (Math.abs(p.score - exactScore(p.id as number, q)) > 1e-4 * Math.max(1, p.score)) t.fail(`${what}: query ${q}, point ${p.id}: score ${p.score} is not the exact ${exactScore(p.id as number, q)}`);
      }
    }
    for (const p of codes.points) if (Math.abs(p.score - exactScore(p.id as number, q)) > 1e-4 * Math.max(1, p.score)) codeOff++;
    exactHits += plain.points.filter((p) => truth[q]!.includes(p.id as number)).length;
  }
  t.ok(codeOff > (Q * K) / 2, `rescore false: ${codeOff} of ${Q * K} scores are code scores`);
  t.ok(exactHits / (Q * K) >= 0.9, `recall@${K} with re-ranking: ${(exactHits / (Q * K)).toFixed(3)}`);

  const batch = await client.queryBatch('q', { searches: queries.map((query) => ({ query, limit: K, params: { quantization: { rescore: false } } })) });
  const one = await client.query('q', { query: queries[0]!, limit: K, params: { quantization: { rescore: false } } });
  t.same(batch[0]!.points.map((p) => [p.id, p.score]), one.points.map((p) => [p.id, p.score]), 'query/batch passes the params as query does');
  // the client no longer has the legacy search calls: the routes straight
  type Scored = { id: number; score: number };
  const legacy = (await call(`${server.url}/collections/q/points/search`, 'POST', { vector: queries[0]!, limit: K, params: { quantization: { rescore: false } } })).body.result as Scored[];
  t.same(legacy.map((p) => [p.id, p.score]), one.points.map((p) => [p.id, p.score]), 'so does search');
  const legacyBatch = (await call(`${server.url}/collections/q/points/search/batch`, 'POST', {
    searches: [{ vector: queries[0]!, limit: K, params: { quantization: { ignore: true } } }],
  })).body.result as Scored[][];
  const ignored = await client.query('q', { query: queries[0]!, limit: K, params: { quantization: { ignore: true } } });
  t.same(legacyBatch[0]!.map((p) => [p.id, p.score]), ignored.points.map((p) => [p.id, p.score]), 'and search/batch');
  const exact = await client.query('q', { query: queries[0]!, limit: K, params: { exact: true, quantization: { rescore: false } } });
  t.same(exact.points.map((p) => p.id), truth[0], 'exact: true walks the originals whatever the quantization params');
  const f = await client.query('f', { query: queries[0]!, limit: K, params: { quantization: { rescore: false, oversampling: 2 } } });
  t.equal(f.points.length, K, 'an unquantized collection takes the params and ignores them');
});

t.test('bad quantization configs: 400 (422 out of range) in Qdrant\'s envelope, nothing created', async (t) => {
  const vectors = { size: DIM, distance: 'Euclid' };
  const bad: [string, unknown, number, RegExp][] = [
    ['product', { quantization_config: { product: { compression: 'x16' } } }, 400, /product quantization \(quantization_config\.product\) is not supported/],
    ['binary', { quantization_config: { binary: { always_ram: true } } }, 400, /binary quantization .* is not supported/],
    ['turbo', { quantization_config: { turbo: {} } }, 400, /turbo quantization .* is not supported/],
    ['a product vector config', { vectors: { ...vectors, quantization_config: { product: { compression: 'x4' } } } }, 400, /product quantization \(vectors\.quantization_config\.product\)/],
    ['type int4', { quantization_config: { scalar: { type: 'int4' } } }, 400, /quantization_config\.scalar\.type: unknown variant "int4", expected `int8`/],
    ['no type', { quantization_config: { scalar: { quantile: 0.9 } } }, 400, /scalar\.type: unknown variant/],
    ['scalar and product', { quantization_config: { scalar: { type: 'int8' }, product: { compression: 'x4' } } }, 400, /product quantization/],
    ['an unknown kind', { quantization_config: { lattice: {} } }, 400, /expected exactly one of scalar, product, binary, turbo/],
    ['a string', { quantization_config: 'int8' }, 400, /quantization_config: expected \{"scalar"/],
    ['scalar not an object', { quantization_config: { scalar: 'int8' } }, 400, /quantization_config\.scalar: expected/],
    ['quantile a string', { quantization_config: { scalar: { type: 'int8', quantile: '0.9' } } }, 400, /scalar\.quantile: expected a number/],
    ['quantile 0.3', { quantization_config: { scalar: { type: 'int8', quantile: 0.3 } } }, 422, /Validation error in JSON body: \[quantization_config\.scalar\.quantile: value 0\.3 invalid, must be from 0\.5 to 1\]/],
    ['quantile 1.5 in vectors', { vectors: { ...vectors, quantization_config: { scalar: { type: 'int8', quantile: 1.5 } } } }, 422, /vectors\.quantization_config\.scalar\.quantile: value 1\.5 invalid/],
    // this server runs --in-memory: always_ram false needs a data dir (test/server-disk.test.ts has one)
    ['always_ram false without a data dir', { quantization_config: { scalar: { type: 'int8', always_ram: false } } }, 400, /always_ram: false keeps the f32 originals in files of the data directory, and this server has none/],
    ['always_ram a string', { quantization_config: { scalar: { type: 'int8', always_ram: 'yes' } } }, 400, /always_ram: expected a boolean/],
    ['memory cold', { quantization_config: { scalar: { type: 'int8', memory: 'cold' } } }, 400, /memory: "cold" .* is not supported/],
    ['memory unknown', { quantization_config: { scalar: { type: 'int8', memory: 'fast' } } }, 400, /memory: unknown variant "fast"/],
  ];
  for (const [what, body, status, error] of bad) {
    const r = await call(`${server.url}/collections/bad`, 'PUT', { vectors, ...(body as object) });
    t.equal(r.status, status, `${what}: ${status}`);
    t.match(r.body, { status: { error }, time: Number }, `${what}: in Qdrant's envelope, naming what is wrong`);
  }
  t.equal((await call(`${server.url}/collections/bad`, 'GET')).status, 404, 'no collection was created');
  t.same((await client.getCollections()).collections.map((c) => c.name).sort(), ['f', 'q']);
});

t.test('bad params.quantization: 400 (422 out of range) naming the field', async (t) => {
  const query = row(QUERIES, 0);
  const bad: [string, string, unknown, number, RegExp][] = [
    ['query', 'points/query', { query, params: { quantization: { rescore: 'yes' } } }, 400, /params\.quantization\.rescore: expected a boolean/],
    ['query', 'points/query', { query, params: { quantization: { ignore: 1 } } }, 400, /params\.quantization\.ignore: expected a boolean/],
    ['query', 'points/query', { query, params: { quantization: 'fast' } }, 400, /params\.quantization: expected/],
    ['query', 'points/query', { query, params: { quantization: { oversampling: '2' } } }, 400, /params\.quantization\.oversampling: expected a number/],
    ['query', 'points/query', { query, params: { quantization: { oversampling: 0.5 } } }, 422, /\[params\.quantization\.oversampling: value 0\.5 invalid, must be from 1 to 1000\]/],
    ['query batch', 'points/query/batch', { searches: [{ query }, { query, params: { quantization: { oversampling: 5000 } } }] }, 422, /searches\[1\]\.params\.quantization\.oversampling: value 5000 invalid/],
    ['search', 'points/search', { vector: query, limit: 3, params: { quantization: { rescore: 0 } } }, 400, /params\.quantization\.rescore: expected a boolean/],
    ['search batch', 'points/search/batch', { searches: [{ vector: query, limit: 3, params: { quantization: { ignore: 'no' } } }] }, 400, /searches\[0\]\.params\.quantization\.ignore/],
  ];
  for (const [what, path, body, status, error] of bad) {
    const r = await call(`${server.url}/collections/q/${path}`, 'POST', body);
    t.equal(r.status, status, `${what}: ${status}`);
    t.match(r.body, { status: { error } }, `${what}: ${String(error)}`);
  }
});

t.test('PATCH: the quantization a collection has is a no-op; a change, other parameters or another kind are a 400', async (t) => {
  t.equal(await client.updateCollection('q', { quantization_config: SCALAR }), true, 'the same config: accepted');
  t.equal(await client.updateCollection('q', { vectors: { '': { quantization_config: SCALAR } } }), true, "the same, as the default vector's");
  t.equal(await client.updateCollection('f', { quantization_config: 'Disabled' }), true, '"Disabled" on an unquantized collection: nothing to change');
  t.equal(await client.updateCollection('f', {}), true, 'an empty update');
  const bad: [string, string, unknown, RegExp][] = [
    ['another quantile', 'q', { quantization_config: { scalar: { type: 'int8', quantile: 0.9 } } }, /changing the quantization of an existing collection .* is not supported/],
    ['the default quantile', 'q', { quantization_config: { scalar: { type: 'int8' } } }, /changing the quantization/],
    ['Disabled', 'q', { quantization_config: 'Disabled' }, /changing the quantization/],
    ['quantizing an unquantized one', 'f', { quantization_config: SCALAR }, /changing the quantization/],
    ['through the vector', 'f', { vectors: { '': { quantization_config: SCALAR } } }, /changing the quantization/],
    ['product', 'q', { quantization_config: { product: { compression: 'x4' } } }, /product quantization .* is not supported/],
    ['hnsw_config', 'q', { hnsw_config: { m: 4 } }, /updating collection parameters \(`hnsw_config`\) is not supported/],
    ['a vector hnsw_config', 'q', { vectors: { '': { hnsw_config: { m: 4 } } } }, /updating collection parameters \(`vectors\[""\]\.hnsw_config`\)/],
    ['a named vector', 'q', { vectors: { text: { quantization_config: SCALAR } } }, /named vectors \("text"\) is not supported/],
    ['a bad config', 'q', { quantization_config: { scalar: { type: 'int4' } } }, /unknown variant "int4"/],
  ];
  for (const [what, name, body, error] of bad) {
    const r = await call(`${server.url}/collections/${name}`, 'PATCH', body);
    t.equal(r.status, 400, `${what}: 400`);
    t.match(r.body, { status: { error } }, `${what}: ${String(error)}`);
  }
  t.same(await configOf('q'), SCALAR, 'q unchanged');
  t.equal(await configOf('f'), null, 'f unchanged');
  const missing = await call(`${server.url}/collections/nope`, 'PATCH', { quantization_config: SCALAR });
  t.equal(missing.status, 404, 'an unknown collection: 404');
  t.match(missing.body, { status: { error: /Collection `nope` doesn't exist!/ } });
});
