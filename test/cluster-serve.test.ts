// `quiver serve --cluster` (host/server/cluster-app.ts): three quiver
// processes on a real 3-node nats-server cluster, driven with Qdrant's own
// JS client: a collection of 6 shards and replication 2 created through one
// node, points upserted through it, queries through the other two equal a
// single-process store on the same data; then the leader of some shards is
// SIGKILLed while a writer records its acknowledged ids: the others serve
// those shards again, and every acknowledged write is found through both.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

async function leaders(via: ServerChild): Promise<Map<number, string>> {
  const r = await call(`${via.url}/cluster`, 'GET');
  return new Map<number, string>((r.body.result.shards as { shard_id: number; role: string }[]).filter((s) => s.role === 'leader').map((s) => [s.shard_id, r.body.result.peer_id as string]));
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
  await single.insert('c', Array.from({ length: N }, (_, i) => i), base);
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
  const scroll = await call(`${servers[1]!.url}/collections/c/points/scroll`, 'POST', {});
  t.equal(scroll.status, 400, 'what a cluster node does not serve yet says so');
  t.match(scroll.body.status.error, /not served by a cluster node/);
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
  t.comment(`s2 after SIGCONT: leads ${JSON.stringify(status.shards.filter((s: { role: string }) => s.role === 'leader').map((s: { shard_id: number }) => s.shard_id))}, ${status.fenced_appends} append(s) refused by a shard log (FENCED)`);
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
