// Rebalancing across `quiver serve --cluster` processes: three nodes hold a
// collection of 6 shards (one copy each, about 7 MiB a shard); a fourth node
// joins, copies move to it, and each old owner's RSS falls by the shards it
// let go (the moved shard's memory is returned to the OS), measured from
// /proc with a deadline, after a GC on every node before and after.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { clustered } from './helpers/data.js';
import { call, startServer, type ServerChild } from './helpers/server.js';

const DIM = 128;
const N = 60_000;
const { cluster } = await clusterAndClient(t, 'cluster-rebalance');
const dir = mkdtempSync(join(tmpdir(), 'quiver-crebal-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const base = clustered(N, DIM, 20, 21);

const start = (id: string) => startServer(['--cluster', cluster.servers.join(','), '--node-id', id, '--cluster-ttl', '1500', '--data-dir', join(dir, id)]);
const servers: ServerChild[] = [];
for (const id of ['r1', 'r2', 'r3']) servers.push(await start(id));
t.teardown(() => Promise.all(servers.map((s) => s.kill())));

interface Held { shard_id: number; role: string; committed_bytes: number | null }
const held = async (s: ServerChild): Promise<Held[]> => (await call(`${s.url}/cluster`, 'GET')).body.result.quiver.shards as Held[];
const rss = (s: ServerChild): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${s.proc.pid}/status`, 'utf8'))![1]) * 1024;
const gcAll = () => Promise.all(servers.map((s) => call(`${s.url}/release-memory`, 'POST')));
const MiB = 1024 * 1024;

t.test('a fourth node joins: copies move to it, and each old owner\'s RSS falls by the shards it let go', async (t) => {
  const made = await call(`${servers[0]!.url}/collections/m`, 'PUT', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 6, replication_factor: 1, hnsw_config: { m: 16, ef_construct: 32 } });
  t.equal(made.status, 200);
  await until('every shard led', async () => (await Promise.all(servers.map(held))).flat().filter((h) => h.role === 'leader').length === 6, 30_000);
  for (let at = 0; at < N; at += 2000) {
    const points = Array.from({ length: 2000 }, (_, i) => ({ id: at + i, vector: Array.from(base.subarray((at + i) * DIM, (at + i + 1) * DIM)) }));
    const r = await call(`${servers[(at / 2000) % 3]!.url}/collections/m/points?wait=true`, 'PUT', { points });
    if (r.status !== 200) throw new Error(`upsert at ${at}: ${r.status} ${r.text}`);
  }
  const before = await Promise.all(servers.map(held));
  await gcAll();
  const rssBefore = servers.map(rss);
  t.comment(`before: copies ${before.map((h) => h.map((x) => x.shard_id).join('+')).join(' | ')}; RSS ${rssBefore.map((b) => (b / MiB).toFixed(0)).join(', ')} MiB`);

  servers.push(await start('r4'));
  await until('r4 holds copies, the others let theirs go', async () => {
    const now = await Promise.all(servers.map(held));
    return now[3]!.length > 0 && now[3]!.every((h) => h.committed_bytes !== null) && now.reduce((a, h) => a + h.length, 0) === 6;
  }, 60_000);
  const after = await Promise.all(servers.map(held));
  t.comment(`after: copies ${after.map((h) => h.map((x) => x.shard_id).join('+')).join(' | ')}`);
  t.ok(after[3]!.length >= 1, `r4 holds ${after[3]!.length} shard(s)`);
  let released = 0;
  for (let i = 0; i < 3; i++) {
    const gone = before[i]!.filter((h) => !after[i]!.some((a) => a.shard_id === h.shard_id));
    if (gone.length === 0) continue;
    const bytes = gone.reduce((a, h) => a + h.committed_bytes!, 0);
    const s = servers[i]!;
    let fell = 0;
    await until(`r${i + 1}'s RSS falls`, async () => {
      await call(`${s.url}/release-memory`, 'POST');
      fell = rssBefore[i]! - rss(s);
      return fell >= 0.7 * bytes;
    }, 20_000).catch(() => {});
    t.comment(`r${i + 1} let go of shard(s) ${gone.map((h) => h.shard_id).join(', ')}: ${(bytes / MiB).toFixed(1)} MiB committed; its RSS fell ${(fell / MiB).toFixed(1)} MiB`);
    t.ok(fell >= 0.7 * bytes, `r${i + 1}: RSS fell by at least 70% of the shards it let go`);
    released++;
  }
  t.ok(released >= 1, `${released} old owner(s) let shards go`);
  const mine = after[3]!.reduce((a, h) => a + h.committed_bytes!, 0);
  t.ok(mine > 0.5 * (N / 6) * DIM * 4, `r4's copies hold their shards (${(mine / MiB).toFixed(1)} MiB committed)`);
});
