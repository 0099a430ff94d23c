// always_ram: false over HTTP with the unmodified Qdrant JS client (issue
// 11): a server with a data dir creates the collection (its info says
// always_ram false), upserts 4,000 points over two shards (past the spill
// in each), answers query and search with exact scores, retrieves every
// vector exactly, answers an `exact: true` self-query (over the codes and
// the widest re-rank: the originals are not walked once on disk), refuses
// `ignore: true` with a 400, and after a SIGKILL and a restart answers the
// same. A server without a data dir refuses the collection with a 400.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QdrantClient } from '@qdrant/js-client-rest';
import { call, startServer } from './helpers/server.js';
import { bruteForce, clustered } from './helpers/data.js';

const DIM = 32;
const N = 4000;
const K = 10;
const Q = 20;
const DATA = clustered(N, DIM, 16, 31);
const QUERIES = clustered(Q, DIM, 16, 32);
const row = (data: Float32Array, i: number): number[] => Array.from(data.subarray(i * DIM, (i + 1) * DIM));
const DISK = { scalar: { type: 'int8' as const, always_ram: false } };
const TRUTH = Array.from({ length: Q }, (_, q) => bruteForce(DATA, DIM, QUERIES, q * DIM, K));

function exactScore(id: number, q: number): number {
  let d = 0;
  for (let j = 0; j < DIM; j++) d += (DATA[id * DIM + j]! - QUERIES[q * DIM + j]!) ** 2;
  return Math.sqrt(d);
}

const dir = mkdtempSync(join(tmpdir(), 'quiver-server-disk-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let server = await startServer(['--threads', '2', '--data-dir', dir]);
t.teardown(() => server.stop());
let client = new QdrantClient({ url: server.url, checkCompatibility: false });

type Answers = [unknown, number][][];
async function answers(): Promise<Answers> {
  const out: Answers = [];
  for (let q = 0; q < Q; q++) out.push((await client.query('d', { query: row(QUERIES, q), limit: K })).points.map((p) => [p.id, p.score]));
  return out;
}
let before: Answers = [];

t.test('create with always_ram false, upsert past the spill; the info shows it', async (t) => {
  t.equal(await client.createCollection('d', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 2, quantization_config: DISK }), true);
  for (let at = 0; at < N; at += 1000) {
    await client.upsert('d', { wait: true, points: Array.from({ length: 1000 }, (_, i) => ({ id: at + i, vector: row(DATA, at + i), payload: { n: at + i } })) });
  }
  const info = await client.getCollection('d');
  t.same(info.config.quantization_config, { scalar: { type: 'int8', quantile: 0.99, always_ram: false } }, 'collection info: always_ram false');
  t.equal(info.points_count, N);
});

t.test('query and search: exact scores, recall; every vector retrieved exactly', async (t) => {
  before = await answers();
  let hits = 0;
  for (const [q, points] of before.entries()) {
    t.equal(points.length, K);
    for (const [id, score] of points) if (Math.abs(score - exactScore(id as number, q)) > 1e-4 * Math.max(1, score)) t.fail(`query ${q}, point ${String(id)}: score ${score} is not exact`);
    hits += points.filter(([id]) => TRUTH[q]!.includes(id as number)).length;
  }
  t.ok(hits / (Q * K) >= 0.9, `recall@${K}: ${(hits / (Q * K)).toFixed(3)}`);
  const legacy = await call(`${server.url}/collections/d/points/search`, 'POST', { vector: row(QUERIES, 0), limit: K });
  t.same((legacy.body.result as { id: number; score: number }[]).map((p) => [p.id, p.score]), before[0], 'search answers as query does');
  const got = await client.retrieve('d', { ids: Array.from({ length: N }, (_, i) => i), with_vector: true, with_payload: true });
  t.equal(got.length, N);
  const wrong = got.filter((p) => {
    const v = Float32Array.from(p.vector as number[]);
    const want = DATA.subarray((p.id as number) * DIM, (p.id as number + 1) * DIM);
    return v.some((x, j) => !Object.is(x, want[j])) || (p.payload as { n: number }).n !== p.id;
  });
  t.equal(wrong.length, 0, 'every vector and payload as upserted');
});

t.test('exact: true finds each point itself; ignore: true is a 400 once the originals are on disk', async (t) => {
  for (const id of [0, 1234, 3999]) {
    const r = await client.query('d', { query: row(DATA, id), limit: 1, params: { exact: true } });
    t.same(r.points.map((p) => [p.id, p.score]), [[id, 0]], `point ${id}`);
  }
  const r = await call(`${server.url}/collections/d/points/query`, 'POST', { query: row(QUERIES, 0), limit: K, params: { quantization: { ignore: true } } });
  t.equal(r.status, 400);
  t.match(r.body, { status: { error: /ignore/ } });
});

t.test('after a SIGKILL and a restart: the same answers, the same vectors', async (t) => {
  await server.kill();
  server = await startServer(['--threads', '2', '--data-dir', dir]);
  client = new QdrantClient({ url: server.url, checkCompatibility: false });
  t.same(await answers(), before, 'the same ids and scores');
  const got = await client.retrieve('d', { ids: [0, 1, 2, 3999], with_vector: true });
  t.same(got.map((p) => p.vector), [0, 1, 2, 3999].map((i) => row(DATA, i)), 'vectors read back from the files');
  t.same((await client.getCollection('d')).config.quantization_config, { scalar: { type: 'int8', quantile: 0.99, always_ram: false } });
});

t.test('a server without a data dir refuses always_ram false with a 400 and creates nothing', async (t) => {
  const mem = await startServer(['--threads', '1']);
  t.teardown(() => mem.stop());
  const r = await call(`${mem.url}/collections/d`, 'PUT', { vectors: { size: DIM, distance: 'Euclid' }, quantization_config: DISK });
  t.equal(r.status, 400);
  t.match(r.body, { status: { error: /always_ram: false .* this server has none \(it runs --in-memory\)/ } });
  t.equal((await call(`${mem.url}/collections/d`, 'GET')).status, 404);
});
