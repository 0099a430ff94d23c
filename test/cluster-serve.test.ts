// `quiver serve --cluster` (host/server/cluster-app.ts): three quiver
// processes on a real 3-node nats-server cluster, driven with Qdrant's own
// JS client: a collection of 6 shards and replication 2 created through one
// node, points upserted through it, queries through the other two equal a
// single-process store on the same data; a snapshot made through one node,
// uploaded through another and recovered over the original answers as the
// original did; a collection deleted through one
// node is gone through all; then the leader of some shards is
// SIGKILLed while a writer records its acknowledged ids: the others serve
// those shards again, and every acknowledged write is found through both.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { QdrantClient } from '@qdrant/js-client-rest';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { clustered } from './helpers/data.js';
import { call, startServer, type ServerChild } from './helpers/server.js';
import { Store } from '../host/store/store.js';

const DIM = 16;
const N = 1200;
const { cluster } = await clusterAndClient(t, 'cluster-serve');
const dir = mkdtempSync(join(tmpdir(), 'quiver-cserve-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const base = clustered(N, DIM, 6, 11);
const queries = clustered(20, DIM, 6, 12);
const vec = (i: number) => Array.from(base.subarray(i * DIM, (i + 1) * DIM));

const servers: ServerChild[] = [];
for (const id of ['s1', 's2', 's3']) {
  servers.push(await startServer(['--cluster', cluster.servers.join(','), '--node-id', id, '--cluster-ttl', '1500', '--data-dir', join(dir, id)]));
}
t.teardown(() => Promise.all(servers.map((s) => s.kill())));
const clients = servers.map((s) => new QdrantClient({ url: s.url, checkCompatibility: false }));

/** The shards of collection c this node leads now, by shard id. */
async function leaders(via: ServerChild): Promise<Map<number, string>> {
  const r = await call(`${via.url}/cluster`, 'GET');
  const shards = r.body.result.quiver.shards as { collection: string; shard_id: number; role: string }[];
  return new Map<number, string>(shards.filter((s) => s.collection === 'c' && s.role === 'leader').map((s) => [s.shard_id, r.body.result.quiver.node_id as string]));
}
async function allLeaders(live: ServerChild[]): Promise<Map<number, string>> {
  const all = new Map<number, string>();
  for (const s of live) for (const [k, v] of await leaders(s)) all.set(k, v);
  return all;
}

t.test('6 shards x 2 copies: upsert through s1 with the Qdrant client, queries through s2 and s3 equal a single-process store', async (t) => {
  await clients[0]!.createCollection('c', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 6, replication_factor: 2, hnsw_config: { m: 12, ef_construct: 64 } });
  const info = await clients[1]!.getCollection('c');
  t.equal(info.config.params.shard_number, 6, 'shard_number as created, read through another node');
  t.equal(info.config.params.replication_factor, 2, 'replication_factor too');
  await until('every shard led', async () => (await allLeaders(servers)).size === 6, 30_000);
  for (let at = 0; at < N; at += 300) {
    await clients[0]!.upsert('c', { wait: true, points: Array.from({ length: 300 }, (_, i) => ({ id: at + i, vector: vec(at + i), payload: { i: at + i } })) });
  }
  const single = await Store.open({ threads: 1 });
  t.teardown(() => single.close());
  await single.createDataset('c', { dim: DIM, shards: 6, M: 12, efConstruction: 64 });
  await single.insert('c', Array.from({ length: N }, (_, i) => i), base, { payloads: Array.from({ length: N }, (_, i) => ({ i })) });
  let same = 0;
  for (let q = 0; q < 20; q++) {
    const v = Array.from(queries.subarray(q * DIM, (q + 1) * DIM));
    const want = await single.search('c', v, 10, { ef: N });
    for (const c of clients.slice(1)) {
      const got = await c.query('c', { query: v, limit: 10, params: { hnsw_ef: N } });
      if (JSON.stringify(got.points.map((p) => p.id)) === JSON.stringify(want.ids)
        && got.points.every((p, i) => Math.abs(p.score - Math.sqrt(want.distances[i]!)) <= 1e-6 * Math.max(1, p.score))) same++;
    }
  }
  t.equal(same, 40, 'through s2 and s3: the same ids and scores as the single-process store, on all 20 queries');
  const bad = await call(`${servers[1]!.url}/collections/c/points/query`, 'POST', { query: [1, 2], limit: 3 });
  t.equal(bad.status, 400, 'a wrong dimension is a 400 in Qdrant\'s envelope');
  t.match(bad.body, { status: { error: /dimension/ } });
});

t.test('snapshots over HTTP: made through s2 with every shard, downloaded, uploaded through s3 under a new name, recovered over the original from its file on s2', async (t) => {
  const answers = async (c: QdrantClient, name: string): Promise<unknown> => {
    const out = [];
    for (let q = 0; q < 10; q++) out.push((await c.query(name, { query: Array.from(queries.subarray(q * DIM, (q + 1) * DIM)), limit: 10, params: { hnsw_ef: N } })).points.map((p) => [p.id, p.score]));
    return out;
  };
  const original = await answers(clients[0]!, 'c');
  const snap = await clients[1]!.createSnapshot('c');
  t.match(snap, { name: /^c-.*\.snapshot$/, size: Number, checksum: /^[0-9a-f]{64}$/ });
  t.same(await clients[1]!.listSnapshots('c'), [snap], 'listed on the node that made it');
  t.same(await clients[2]!.listSnapshots('c'), [], 'and only there');
  const download = await fetch(`${servers[1]!.url}/collections/c/snapshots/${snap!.name}`);
  t.equal(download.status, 200);
  const bytes = new Uint8Array(await download.arrayBuffer());
  t.equal(createHash('sha256').update(bytes).digest('hex'), snap!.checksum, 'the download is the file listed');

  const form = new FormData();
  form.append('snapshot', new Blob([bytes]), snap!.name);
  const up = await fetch(`${servers[2]!.url}/collections/c2/snapshots/upload?checksum=${snap!.checksum}`, { method: 'POST', body: form });
  t.same({ status: up.status, result: ((await up.json()) as { result: unknown }).result }, { status: 200, result: true }, 'uploaded through s3');
  t.same(await answers(clients[0]!, 'c2'), original, 'the uploaded collection answers as the original, through s1');
  t.match((await clients[0]!.getCollection('c2')).config.params, { shard_number: 6, replication_factor: 1 });

  await clients[0]!.upsert('c', { wait: true, points: [{ id: 999_999, vector: vec(0) }] });
  t.equal((await clients[1]!.count('c', {})).count, N + 1);
  const location = pathToFileURL(join(dir, 's2', 'snapshots', 'c', snap!.name)).href;
  const badLocation = await call(`${servers[0]!.url}/collections/c/snapshots/recover`, 'PUT', { location });
  t.equal(badLocation.status, 400, 'a location outside this node\'s snapshots directory is refused');
  t.equal(await clients[1]!.recoverSnapshot('c', { location }), true, 'recovered over c through s2, from its own file');
  t.equal((await clients[2]!.count('c', {})).count, N, 'the point written after the snapshot is gone, through s3');
  t.same(await answers(clients[2]!, 'c'), original);
  t.match((await clients[2]!.getCollection('c')).config.params, { shard_number: 6, replication_factor: 2 }, 'the replaced collection\'s replication');

  const damaged = Uint8Array.from(bytes);
  damaged[damaged.length >> 1]! ^= 1;
  const bad = await fetch(`${servers[0]!.url}/collections/c/snapshots/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: damaged });
  t.equal(bad.status, 400, 'a damaged upload is a 400');
  t.equal((await clients[0]!.count('c', {})).count, N, 'and changes nothing');
  t.equal(await clients[1]!.deleteSnapshot('c', snap!.name), true);
  t.equal(await clients[0]!.deleteCollection('c2'), true);
});

t.test('the single process\'s point, payload, index and search routes on a cluster node: filters, payloads, vectors, retrieve, count, scroll, delete by filter, payload updates, indexes', async (t) => {
  const single = await Store.open({ threads: 1 });
  t.teardown(() => single.close());
  await single.createDataset('c', { dim: DIM, shards: 6, M: 12, efConstruction: 64 });
  await single.insert('c', Array.from({ length: N }, (_, i) => i), base, { payloads: Array.from({ length: N }, (_, i) => ({ i })) });
  const filter = { must: [{ key: 'i', range: { lt: N / 3 } }], must_not: [{ key: 'i', match: { any: [3, 5, 8] } }] };
  let same = 0;
  for (let q = 0; q < 10; q++) {
    const v = Array.from(queries.subarray(q * DIM, (q + 1) * DIM));
    const want = await single.search('c', v, 10, { ef: N, filter, withPayload: true });
    const got = await clients[2]!.query('c', { query: v, limit: 10, filter, with_payload: true, params: { hnsw_ef: N } });
    if (JSON.stringify(got.points.map((p) => [p.id, p.payload])) === JSON.stringify(want.ids.map((id, i) => [id, want.payloads![i]]))) same++;
  }
  t.equal(same, 10, 'filtered queries with payloads through s3: the same points and payloads as the single-process store');
  const batch = await clients[1]!.queryBatch('c', { searches: [0, 1].map((q) => ({ query: Array.from(queries.subarray(q * DIM, (q + 1) * DIM)), limit: 3, filter, with_vector: true, params: { hnsw_ef: N } })) });
  t.equal(batch.length, 2, 'query/batch answers each search');
  t.ok(batch.every((r) => r.points.length === 3 && r.points.every((p) => Array.isArray(p.vector) && (p.vector as number[]).length === DIM)), 'with_vector: every hit carries its vector');
  t.equal((await clients[1]!.count('c', { filter, exact: true })).count, await single.count('c', { filter }), 'count with a filter, as the single process counts');
  t.equal((await clients[2]!.count('c', {})).count, N, 'count without one: every point');
  const got = await clients[1]!.retrieve('c', { ids: [7, 2, N + 5], with_payload: true, with_vector: true });
  t.same(got.map((p) => p.id), [7, 2], 'retrieve: the ids that exist, in the order asked');
  t.same(got.map((p) => p.vector), [7, 2].map((i) => Array.from(base.subarray(i * DIM, (i + 1) * DIM))), 'their vectors, exactly');
  t.same(got.map((p) => p.payload), [{ i: 7 }, { i: 2 }], 'and payloads');
  const ids: unknown[] = [];
  let offset: unknown = undefined;
  for (let page = 0; page < 20; page++) {
    const r = await clients[2]!.scroll('c', { filter, limit: 100, with_payload: false, ...(offset === undefined ? {} : { offset: offset as number }) });
    ids.push(...r.points.map((p) => p.id));
    offset = r.next_page_offset ?? undefined;
    if (offset === undefined) break;
  }
  const want = (await single.scroll('c', { filter, limit: N, withVector: false, withPayload: false })).points.map((p) => p.id);
  t.same(ids, want, `scroll in pages of 100 through s3: the ${want.length} matching ids in id order, as the single process pages them`);
  await clients[0]!.delete('c', { filter: { must: [{ key: 'i', range: { gte: N - 50 } }] }, wait: true });
  t.equal((await clients[2]!.count('c', {})).count, N - 50, 'a delete by filter through s1 is seen through s3');
  t.equal((await call(`${servers[1]!.url}/collections/c/points/${N - 1}`, 'GET')).status, 404, 'a deleted point is a 404');
  await clients[0]!.upsert('c', { wait: true, points: Array.from({ length: 50 }, (_, i) => ({ id: N - 50 + i, vector: vec(N - 50 + i), payload: { i: N - 50 + i } })) });
  t.equal((await clients[1]!.count('c', {})).count, N, 'upserted again: every point');
  await clients[0]!.setPayload('c', { points: [3, 4], payload: { tag: 'x' }, wait: true });
  await clients[1]!.setPayload('c', { filter: { must: [{ key: 'i', match: { value: 5 } }] }, payload: { tag: 'y' }, wait: true });
  t.same((await clients[2]!.retrieve('c', { ids: [3, 4, 5] })).map((p) => p.payload), [{ i: 3, tag: 'x' }, { i: 4, tag: 'x' }, { i: 5, tag: 'y' }], 'payload updates by ids through s1 and by filter through s2 are read through s3');
  const absent = await call(`${servers[1]!.url}/collections/c/points/payload?wait=true`, 'POST', { payload: { tag: 'z' }, points: [N + 7] });
  t.equal(absent.status, 404, 'a payload update of an absent point is a 404');
  await clients[0]!.createPayloadIndex('c', { field_name: 'i', field_schema: 'integer', wait: true });
  const schema = (await clients[2]!.getCollection('c')).payload_schema;
  t.match(schema, { i: { data_type: 'integer', points: N } }, 'a payload index created through s1 is in the payload_schema read through s3');
  await clients[0]!.createCollection('qz', { vectors: { size: DIM, distance: 'Cosine' }, shard_number: 2, quantization_config: { scalar: { type: 'int8', quantile: 0.97 } } });
  t.match((await clients[1]!.getCollection('qz')).config.quantization_config, { scalar: { type: 'int8', quantile: 0.97, always_ram: true } }, 'a quantized collection, created through s1, read through s2');
  // always_ram false: every copy's originals in a file of its node (1,200 points in one shard: past 1,024, so it spills)
  await clients[2]!.createCollection('qz2', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 1, replication_factor: 2, quantization_config: { scalar: { type: 'int8', always_ram: false } } });
  t.match((await clients[0]!.getCollection('qz2')).config.quantization_config, { scalar: { type: 'int8', always_ram: false } }, 'always_ram false, created through s3, read through s1');
  await clients[2]!.upsert('qz2', { wait: true, points: Array.from({ length: N }, (_, i) => ({ id: i, vector: vec(i) })) });
  const stored = await clients[1]!.retrieve('qz2', { ids: [0, 17, N - 1], with_vector: true });
  t.same(stored.map((p) => p.vector), [0, 17, N - 1].map((i) => Array.from(Float32Array.from(vec(i)))), 'the f32 originals read back from the file, through s2');
  const exact = await clients[0]!.query('qz2', { query: vec(33), limit: 1, params: { exact: true } });
  t.same(exact.points.map((p) => [p.id, p.score]), [[33, 0]], 'an exact search rescored on the originals finds the point itself at distance 0');
  t.equal(await clients[0]!.deleteCollection('qz2'), true);
  const ci = (await call(`${servers[0]!.url}/collections/c/cluster`, 'GET')).body.result;
  t.equal(ci.shard_count, 6, 'GET /collections/c/cluster: Qdrant\'s shape, 6 shards');
  t.equal(ci.local_shards.length + ci.remote_shards.length, 12, 'each shard\'s 2 copies listed once, local or remote');
  const status = (await call(`${servers[0]!.url}/cluster`, 'GET')).body.result;
  t.match(status, { status: 'enabled', peer_id: Number, raft_info: { pending_operations: 0 } }, 'GET /cluster: Qdrant\'s ClusterStatus');
  t.equal(Object.keys(status.peers).length, 3, 'its peers: the three nodes');
});

t.test('DELETE a collection through one node: gone through every node, its shards off every node; created again it is empty', async (t) => {
  await clients[0]!.createCollection('tmp', { vectors: { size: 4, distance: 'Dot' }, shard_number: 2, replication_factor: 2 });
  const shardsOf = async (s: ServerChild): Promise<number> => ((await call(`${s.url}/cluster`, 'GET')).body.result.quiver.shards as { collection: string }[]).filter((x) => x.collection === 'tmp').length;
  await until('every copy placed', async () => (await Promise.all(servers.map(shardsOf))).reduce((a, b) => a + b, 0) === 4, 30_000);
  await clients[0]!.upsert('tmp', { wait: true, points: Array.from({ length: 100 }, (_, i) => ({ id: i, vector: [1, i, 0, 0] })) });
  t.equal((await clients[2]!.count('tmp', {})).count, 100);
  t.equal(await clients[1]!.deleteCollection('tmp'), true, 'DELETE through s2 answers true');
  t.same(await Promise.all(servers.map(shardsOf)), [0, 0, 0], 'no node holds a copy of it any more');
  for (const c of clients) t.equal((await c.collectionExists('tmp')).exists, false);
  const missing = await call(`${servers[2]!.url}/collections/tmp/points/count`, 'POST', {});
  t.equal(missing.status, 404, 'a point request for it is a 404 in Qdrant\'s envelope');
  t.equal(await clients[2]!.deleteCollection('tmp'), false, 'DELETE again answers false');
  await clients[2]!.createCollection('tmp', { vectors: { size: 4, distance: 'Dot' }, shard_number: 2, replication_factor: 2 });
  t.equal((await clients[0]!.count('tmp', {})).count, 0, 'created again through s3: empty');
  t.equal(await clients[0]!.deleteCollection('tmp'), true);
});

t.test('SIGKILL the leader of some shards: they are served again, every acknowledged write is found through the others', async (t) => {
  const before = await allLeaders(servers);
  const victim = servers[0]!;
  const led = [...before].filter(([, node]) => node === 's1').map(([s]) => s);
  t.ok(led.length > 0, `s1 leads shards ${led.join(', ')}`);
  const acked: number[] = [];
  let stop = false;
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const id = 100_000 + i;
      try {
        await clients[1]!.upsert('c', { wait: true, points: [{ id, vector: vec(i % N) }] });
        acked.push(id);
      } catch {
        // refused while the shard moves (503): not acknowledged
      }
    }
  })();
  await until('some writes', () => acked.length >= 10, 15_000);
  const killed = performance.now();
  await victim.kill();
  await until('s2 and s3 lead every shard', async () => (await allLeaders(servers.slice(1))).size === 6, 30_000);
  t.comment(`every shard led again ${(performance.now() - killed).toFixed(0)} ms after the SIGKILL (ttl 1.5 s)`);
  const n = acked.length;
  await until('writes go on', () => acked.length >= n + 10, 20_000);
  stop = true;
  await writer;
  let missing = 0;
  for (const c of clients.slice(1)) {
    for (const id of acked) {
      const got = await c.query('c', { query: vec((id - 100_000) % N), limit: 20, params: { hnsw_ef: 400 } });
      if (!got.points.some((p) => p.id === id)) missing++;
    }
  }
  t.equal(missing, 0, `every one of the ${acked.length} acknowledged writes is found through s2 and through s3`);
});

t.test('SIGSTOP a leader past its lease: the others take over; SIGCONT: it writes no more as leader, nothing acknowledged is lost', async (t) => {
  servers.push(await startServer(['--cluster', cluster.servers.join(','), '--node-id', 's4', '--cluster-ttl', '1500', '--data-dir', join(dir, 's4')]));
  clients.push(new QdrantClient({ url: servers[3]!.url, checkCompatibility: false }));
  const live = servers.slice(1);
  await until('s2, s3 and s4 each lead', async () => {
    const l = await allLeaders(live);
    return l.size === 6 && new Set(l.values()).size === 3;
  }, 30_000);
  const victim = servers[1]!;
  const led = [...await leaders(victim)].map(([s]) => s);
  t.ok(led.length > 0, `s2 leads shards ${led.join(', ')}`);
  const acked = { via: [] as number[], other: [] as number[] };
  let stop = false;
  const writer = (c: QdrantClient, first: number, into: number[]) => (async () => {
    for (let i = 0; !stop; i++) {
      try {
        await c.upsert('c', { wait: true, points: [{ id: first + i, vector: vec(i % N) }] });
        into.push(first + i);
      } catch {
        // refused while a shard moves: not acknowledged
      }
    }
  })();
  const writers = [writer(clients[1]!, 200_000, acked.via), writer(clients[2]!, 300_000, acked.other)];
  await until('writes through s2 and s3', () => acked.via.length >= 10 && acked.other.length >= 10, 15_000);
  process.kill(victim.proc.pid!, 'SIGSTOP');
  const paused = performance.now();
  const others = [servers[2]!, servers[3]!];
  await until('s3 and s4 lead every shard', async () => (await allLeaders(others)).size === 6, 30_000);
  t.comment(`s3 and s4 lead every shard ${(performance.now() - paused).toFixed(0)} ms after s2 was paused`);
  const n = acked.other.length;
  await until('writes through s3 go on', () => acked.other.length >= n + 10, 20_000);
  const viaBefore = acked.via.length;
  process.kill(victim.proc.pid!, 'SIGCONT');
  await until('writes through s2 go on once it is resumed', () => acked.via.length >= viaBefore + 10, 30_000);
  stop = true;
  await Promise.all(writers);
  const status = (await call(`${victim.url}/cluster`, 'GET')).body.result;
  t.comment(`s2 after SIGCONT: leads ${JSON.stringify(status.quiver.shards.filter((s: { collection: string; role: string }) => s.collection === 'c' && s.role === 'leader').map((s: { shard_id: number }) => s.shard_id))}, ${status.quiver.fenced_appends} append(s) refused by a shard log (FENCED)`);
  const final = await Promise.all([victim, ...others].map((s) => leaders(s)));
  const owners = final.flatMap((m) => [...m.keys()]);
  t.equal(owners.length, new Set(owners).size, 'no shard has two leaders');
  let missing = 0;
  const all = [...acked.via, ...acked.other];
  for (const via of [clients[1]!, clients[2]!, clients[3]!]) {
    for (const id of all.filter((_, j) => j % 3 === 0)) {
      const got = await via.query('c', { query: vec((id % 100_000) % N), limit: 30, params: { hnsw_ef: 400 } });
      const hits = got.points.filter((p) => p.id === id).length;
      if (hits !== 1) missing++;
    }
  }
  t.equal(missing, 0, `every 3rd of the ${all.length} acknowledged writes is found exactly once through s2, s3 and s4`);
});
