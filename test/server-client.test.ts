// The unmodified Qdrant JS client against a real `quiver serve` child: the
// results must be what the library API gives for the same data.
import t from 'tap';
import { QdrantClient } from '@qdrant/js-client-rest';
import { Field, FixedSizeList, Float32, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { Store, type Id } from '../host/index.js';
import { call, rng, startServer, uuidOf } from './helpers/server.js';

const DIM = 16;
const N = 600;
const EF = 64;

const server = await startServer(['--threads', '2']);
t.teardown(() => server.stop());
// the same layout in-process: 2 threads, 2 shards, created first (same seed)
const library = await Store.open({ threads: 2 });
t.teardown(() => library.close());

const random = rng(7);
const ids: Id[] = Array.from({ length: N }, (_, i) => (i % 2 === 0 ? i * 10 : uuidOf(i)));
const vectors = Array.from({ length: N }, () => Array.from({ length: DIM }, random));
const payloads = Array.from({ length: N }, (_, i) => ({ i, tag: i % 3 === 0 ? 'red' : 'blue', nested: { x: i * 2, y: 'why' } }));
const queries = Array.from({ length: 20 }, () => Array.from({ length: DIM }, random));

/** An Arrow IPC stream as a fetch body. */
const ipc = (table: Table): Uint8Array<ArrayBuffer> => new Uint8Array(tableToIPC(table, 'stream'));
const key = (id: Id): string => (typeof id === 'string' ? id : `#${String(id)}`);
const close = (a: number, b: number, eps = 1e-5): boolean => Math.abs(a - b) <= eps * Math.max(1, Math.abs(a), Math.abs(b));

t.test('the Qdrant client works against quiver serve; results match the library API', async (t) => {
  const warnings: unknown[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args);
  };
  t.teardown(() => {
    console.warn = warn;
  });
  const client = new QdrantClient({ url: server.url, checkCompatibility: true });
  const version = await client.versionInfo();
  t.equal(version.title, 'quiver');
  t.match(version.version, /^1\.19\./, 'a version the 1.19 client accepts');

  // ---- collection
  t.equal(await client.createCollection('docs', { vectors: { size: DIM, distance: 'Cosine' }, hnsw_config: { m: 16, ef_construct: 100 }, shard_number: 2 }), true);
  t.same(await client.collectionExists('docs'), { exists: true });
  t.same(await client.collectionExists('nope'), { exists: false });
  t.ok((await client.getCollections()).collections.some((c) => c.name === 'docs'));
  await library.createDataset('docs', { dim: DIM, metric: 'cosine', M: 16, efConstruction: 100, shards: 2 });

  // ---- upsert: the list form for the first half, the batch form for the rest
  const half = N / 2;
  t.match(await client.upsert('docs', {
    wait: true,
    points: ids.slice(0, half).map((id, i) => ({ id: id as number | string, vector: vectors[i]!, payload: payloads[i]! })),
  }), { status: 'completed' });
  t.match(await client.upsert('docs', {
    wait: true,
    batch: { ids: ids.slice(half) as (number | string)[], vectors: vectors.slice(half), payloads: payloads.slice(half) },
  }), { status: 'completed' });
  await library.insert('docs', ids.slice(0, half), vectors.slice(0, half), { payloads: payloads.slice(0, half) });
  await library.insert('docs', ids.slice(half), vectors.slice(half), { payloads: payloads.slice(half) });

  t.same(await client.count('docs', { exact: true }), { count: N });
  const info = await client.getCollection('docs');
  t.equal(info.status, 'green');
  t.equal(info.points_count, N);
  t.same(info.config.params.vectors, { size: DIM, distance: 'Cosine' });
  t.equal(info.config.hnsw_config.m, 16);
  t.equal(info.config.hnsw_config.ef_construct, 100);
  // ---- cluster info, as a Qdrant without a cluster answers it: every shard local and active, with its points
  const shards = await client.collectionClusterInfo('docs');
  t.equal(shards.shard_count, 2, 'two shards');
  t.same(shards.local_shards.map((s) => [s.shard_id, s.state]), [[0, 'Active'], [1, 'Active']], 'both local and active');
  t.equal(shards.local_shards.reduce((a, s) => a + s.points_count, 0), N, 'their points add up to the collection\'s');
  t.ok(shards.local_shards.every((s) => s.points_count > 0), 'ids spread over both');
  t.same([shards.remote_shards, shards.shard_transfers], [[], []], 'nothing remote, nothing moving');
  t.ok(Number.isSafeInteger(shards.peer_id) && shards.peer_id > 0, 'a peer id');
  t.same((await call(`${server.url}/cluster`, 'GET')).body.result, { status: 'disabled' }, 'GET /cluster: disabled, as Qdrant without a cluster');
  t.equal((await call(`${server.url}/collections/nope/cluster`, 'GET')).status, 404, 'the cluster info of a missing collection is a 404');
  const replicated = await call(`${server.url}/collections/copies`, 'PUT', { vectors: { size: DIM, distance: 'Cosine' }, replication_factor: 2 });
  t.equal(replicated.status, 400, 'replication_factor 2 on a single node is refused, not silently kept at 1');
  t.match(replicated.body.status.error, /replication_factor 2 on a single node/);
  t.same(await client.collectionExists('copies'), { exists: false }, 'and nothing was created');
  t.equal(await client.createCollection('one-copy', { vectors: { size: DIM, distance: 'Cosine' }, replication_factor: 1 }), true, 'replication_factor 1 is what a single node has');
  t.equal(await client.deleteCollection('one-copy'), true);

  // ---- query: same ids in the same order, score = 1 - distance, payloads
  const compareQueries = async (label: string): Promise<void> => {
    let mismatches = 0;
    for (const q of queries) {
      const got = await client.query('docs', { query: q, limit: 10, with_payload: true, params: { hnsw_ef: EF } });
      const want = await library.search('docs', q, 10, { ef: EF, withPayload: true });
      const same = got.points.length === want.ids.length && got.points.every((p, i) =>
        key(p.id) === key(want.ids[i]!) && close(p.score, 1 - want.distances[i]!) && JSON.stringify(p.payload) === JSON.stringify(want.payloads![i]));
      if (!same) mismatches++;
    }
    t.equal(mismatches, 0, `${label}: every query returns the library's ids, scores and payloads`);
  };
  await compareQueries('after upsert');

  const q0 = queries[0]!;
  const ref = await library.search('docs', q0, 5, { ef: EF });
  const nearest = await client.query('docs', { query: { nearest: q0 }, limit: 5, params: { hnsw_ef: EF } });
  t.same(nearest.points.map((p) => key(p.id)), ref.ids.map(key), '{nearest: vector} form');
  t.notOk('payload' in nearest.points[0]!, 'no payload unless asked (Query API default)');
  for (let i = 1; i < nearest.points.length; i++) t.ok(nearest.points[i - 1]!.score >= nearest.points[i]!.score, 'Cosine: higher score first');

  const picked = await client.query('docs', { query: q0, limit: 5, with_payload: ['tag', 'nested.x'], params: { hnsw_ef: EF } });
  for (const p of picked.points) {
    const i = ids.findIndex((id) => key(id) === key(p.id));
    t.same(p.payload, { tag: payloads[i]!.tag, nested: { x: payloads[i]!.nested.x } }, 'with_payload as a list of keys: only those keys');
  }
  const excluded = await client.query('docs', { query: q0, limit: 1, with_payload: { exclude: ['nested'] }, params: { hnsw_ef: EF } });
  t.same(Object.keys(excluded.points[0]!.payload!).sort(), ['i', 'tag'], 'with_payload {exclude}');

  const paged = await client.query('docs', { query: q0, limit: 2, offset: 3, params: { hnsw_ef: EF } });
  const ten = await library.search('docs', q0, 10, { ef: EF });
  t.same(paged.points.map((p) => key(p.id)), ten.ids.slice(3, 5).map(key), 'offset skips the first hits');

  const threshold = 1 - ten.distances[4]!;
  const above = await client.query('docs', { query: q0, limit: 10, score_threshold: threshold - 1e-6, params: { hnsw_ef: EF } });
  t.same(above.points.map((p) => key(p.id)), ten.ids.slice(0, 5).map(key), 'score_threshold keeps scores at or above it');

  const batch = await client.queryBatch('docs', { searches: queries.slice(0, 3).map((q) => ({ query: q, limit: 3, params: { hnsw_ef: EF } })) });
  t.equal(batch.length, 3);
  for (let i = 0; i < 3; i++) {
    const want = await library.search('docs', queries[i]!, 3, { ef: EF });
    t.same(batch[i]!.points.map((p) => key(p.id)), want.ids.map(key), `query batch ${i}`);
  }

  // by id: that point's vector; the point itself is left out
  const byId = await client.query('docs', { query: ids[1] as string, limit: 3, params: { hnsw_ef: EF } });
  const own = await library.search('docs', (await library.get('docs', [ids[1]!]))[0]!, 4, { ef: EF });
  t.same(byId.points.map((p) => key(p.id)), own.ids.filter((id) => key(id) !== key(ids[1]!)).slice(0, 3).map(key), 'query by point id');

  // with_vector returns the stored (normalised) vector
  const withVec = await client.query('docs', { query: q0, limit: 1, with_vector: true, params: { hnsw_ef: EF } });
  const stored = (await library.get('docs', [withVec.points[0]!.id]))[0]!;
  t.same(withVec.points[0]!.vector, Array.from(stored), 'with_vector');

  // ---- retrieve
  const wanted: Id[] = [ids[0]!, ids[1]!, 999_999, ids[5]!, ids[0]!];
  const got = await client.retrieve('docs', { ids: wanted as (number | string)[], with_payload: true, with_vector: true });
  const lib = await library.retrieve('docs', wanted);
  t.same(got.map((r) => key(r.id)), lib.map((r) => key(r.id)), 'retrieve: found points in the order asked, once each');
  got.forEach((r, i) => {
    t.same(r.vector, Array.from(lib[i]!.vector!), `retrieve vector ${String(r.id)}`);
    t.same(r.payload, lib[i]!.payload, `retrieve payload ${String(r.id)}`);
  });
  const bare = await client.retrieve('docs', { ids: [ids[0] as number] , with_payload: false });
  t.same(bare, [{ id: ids[0] }], 'retrieve without payload or vector');
  const one = await call(`${server.url}/collections/docs/points/${ids[1]}`, 'GET');
  t.equal(one.status, 200);
  t.same(one.body.result.payload, payloads[1]);
  t.equal(one.body.result.vector.length, DIM);

  // ---- scroll: every point once, in the library's id order
  const scrolled: string[] = [];
  let offset: Id | null | undefined;
  let pages = 0;
  do {
    const page = await client.scroll('docs', { limit: 128, with_payload: pages === 0, ...(offset === undefined || offset === null ? {} : { offset: offset as number | string }) });
    if (pages === 0) t.same(page.points[0]!.payload, payloads[0], 'scroll returns payloads');
    scrolled.push(...page.points.map((p) => key(p.id)));
    offset = page.next_page_offset as Id | null | undefined;
    pages++;
  } while (offset !== null && offset !== undefined && pages < 20);
  const all = await library.scroll('docs', { limit: N + 1, withVector: false, withPayload: false });
  t.same(scrolled, all.points.map((p) => key(p.id)), 'scroll pages through every point in id order');
  t.equal(pages, Math.ceil(N / 128));

  // ---- delete, then the same results as the library after the same delete
  const gone = ids.filter((_, i) => i % 12 === 0);
  t.match(await client.delete('docs', { wait: true, points: gone as (number | string)[] }), { status: 'completed' });
  await library.delete('docs', gone);
  t.same(await client.count('docs'), { count: N - gone.length });
  await compareQueries('after delete');

  t.equal(await client.deleteCollection('docs'), true);
  t.same(await client.collectionExists('docs'), { exists: false });
  t.equal(await client.deleteCollection('docs'), false, 'deleting a missing collection answers false, as Qdrant does');

  await new Promise((r) => setTimeout(r, 100));
  t.same(warnings.filter((w) => /incompatible|Failed to obtain server version/.test(String(w))), [], 'the client found the server version compatible');
});

t.test('score conventions: Euclid is the distance (lower first), Dot the dot product', async (t) => {
  const client = new QdrantClient({ url: server.url, checkCompatibility: false });
  await client.createCollection('l2', { vectors: { size: 3, distance: 'Euclid' } });
  await client.createCollection('dot', { vectors: { size: 3, distance: 'Dot' } });
  const points = [
    { id: 1, vector: [0, 0, 0] },
    { id: 2, vector: [3, 4, 0] },
    { id: 3, vector: [1, 0, 0] },
  ];
  await client.upsert('l2', { points });
  await client.upsert('dot', { points });
  const l2 = await client.query('l2', { query: [0, 0, 0], limit: 3 });
  t.same(l2.points.map((p) => p.id), [1, 3, 2]);
  t.same(l2.points.map((p) => p.score), [0, 1, 5], 'Euclid score is the Euclidean distance, ascending');
  const below = await client.query('l2', { query: [0, 0, 0], limit: 3, score_threshold: 1 });
  t.same(below.points.map((p) => p.id), [1, 3], 'Euclid score_threshold keeps distances at or below it');
  const dot = await client.query('dot', { query: [1, 1, 0], limit: 3 });
  t.same(dot.points.map((p) => p.id), [2, 3, 1]);
  t.same(dot.points.map((p) => p.score), [7, 1, 0], 'Dot score is the dot product, descending');
  const legacy = await call(`${server.url}/collections/dot/points/search`, 'POST', { vector: [1, 1, 0], limit: 2, with_payload: true });
  t.same(legacy.body.result.map((p: { id: number; score: number }) => [p.id, p.score]), [[2, 7], [3, 1]], 'legacy /points/search');
  const legacyBatch = await call(`${server.url}/collections/l2/points/search/batch`, 'POST', { searches: [{ vector: [3, 4, 0], limit: 1 }, { vector: [1, 0, 0], limit: 1 }] });
  t.same(legacyBatch.body.result.map((r: { id: number }[]) => r[0]!.id), [2, 3], 'legacy /points/search/batch');
  await client.deleteCollection('l2');
  await client.deleteCollection('dot');
});

t.test('Arrow ingest: vectors go in as FixedSizeList<Float32> and come back the same', async (t) => {
  const client = new QdrantClient({ url: server.url, checkCompatibility: false });
  const dim = 8;
  await client.createCollection('arrow', { vectors: { size: dim, distance: 'Euclid' } });
  const n = 300;
  const r = rng(11);
  const vecs = Array.from({ length: n }, () => Array.from({ length: dim }, () => Math.fround(r() * 10)));
  const big = (1n << 63n) + 5n;
  const idValues = BigUint64Array.from({ length: n }, (_, i) => (i === n - 1 ? big : BigInt(i + 1)));
  const vectorType = new FixedSizeList(dim, new Field('item', new Float32(), false));
  const table = new Table({
    id: vectorFromArray(idValues),
    vector: vectorFromArray(vecs, vectorType),
    payload: vectorFromArray(vecs.map((_, i) => (i % 2 === 0 ? JSON.stringify({ row: i }) : null)), new Utf8()),
  });
  const res = await fetch(`${server.url}/collections/arrow/arrow?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.apache.arrow.stream' },
    body: ipc(table),
  });
  const body = (await res.json()) as { result: { status: string; inserted: number } };
  t.equal(res.status, 200);
  t.match(body.result, { status: 'completed', inserted: n });
  t.same(await client.count('arrow'), { count: n });

  const back = await client.retrieve('arrow', { ids: [1, 2, 150], with_vector: true, with_payload: true });
  t.same(back.map((p) => p.vector), [vecs[0], vecs[1], vecs[149]], 'retrieve gives the same float32 vectors');
  t.same(back.map((p) => p.payload), [{ row: 0 }, {}, {}], 'payload column (null: no payload)');
  for (const row of [0, 42, 299]) {
    const hit = await client.query('arrow', { query: vecs[row]!, limit: 1, with_vector: true });
    t.equal(hit.points[0]!.score, 0, `query by row ${row}'s vector finds it at distance 0`);
    t.same(hit.points[0]!.vector, vecs[row]);
  }
  // an id above 2^53 comes back exactly, as digits
  const exact = await fetch(`${server.url}/collections/arrow/points/${big}`);
  t.match(await exact.text(), new RegExp(`"id":${big}[,}]`), 'a u64 id above 2^53 round-trips exactly');

  // UUID ids as UTF-8 (dictionary-encoded, as vectorFromArray makes strings)
  const uuids = Array.from({ length: 5 }, (_, i) => uuidOf(1000 + i));
  const uuidTable = new Table({ id: vectorFromArray(uuids), vector: vectorFromArray(vecs.slice(0, 5), vectorType) });
  const res2 = await fetch(`${server.url}/collections/arrow/arrow`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.apache.arrow.stream' },
    body: ipc(uuidTable),
  });
  t.equal(res2.status, 200);
  const uuidBack = await client.retrieve('arrow', { ids: uuids, with_vector: true });
  t.same(uuidBack.map((p) => p.id), uuids);
  t.same(uuidBack.map((p) => p.vector), vecs.slice(0, 5));

  // a wrong dimension is refused whole
  const wrong = new Table({
    id: vectorFromArray(BigUint64Array.from([9000n])),
    vector: vectorFromArray([[1, 2, 3]], new FixedSizeList(3, new Field('item', new Float32(), false))),
  });
  const res3 = await fetch(`${server.url}/collections/arrow/arrow`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.apache.arrow.stream' },
    body: ipc(wrong),
  });
  t.equal(res3.status, 400);
  t.match(((await res3.json()) as { status: { error: string } }).status.error, /expected dim: 8, got 3/);
  t.same(await client.count('arrow'), { count: n + 5 });
  await client.deleteCollection('arrow');
});

t.test('/metrics has quiver\'s metric families after traffic', async (t) => {
  const res = await fetch(`${server.url}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (const family of ['quiver_search_duration_seconds', 'quiver_insert_vectors_total', 'quiver_arena_memory_bytes', 'quiver_worker_threads', 'quiver_http_requests_total', 'quiver_http_request_duration_seconds']) {
    t.match(text, new RegExp(`^# TYPE ${family} `, 'm'), family);
  }
  t.match(text, /quiver_search_duration_seconds_count\{dataset="docs"\} [1-9]/, 'searches were counted');
  t.match(text, /quiver_http_requests_total\{method="POST",route="\/collections\/:name\/points\/query",status="200"\} [1-9]/);
});
