// Three `quiver serve --cluster` processes through NATS faults, on a real
// 3-node nats-server cluster: with one nats-server killed, writes and
// searches go on; with two killed (no JetStream quorum), a write fails with
// a retryable 503 and is not acknowledged; with both back, the cluster
// heals by itself: writes are acknowledged again and every acknowledged
// write is found through every node.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { clustered } from './helpers/data.js';
import { call, startServer, type ServerChild } from './helpers/server.js';

const DIM = 16;
const SHARDS = 3;
const { cluster } = await clusterAndClient(t, 'cluster-node-faults');
const dir = mkdtempSync(join(tmpdir(), 'quiver-cfault-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const vecs = clustered(4000, DIM, 6, 3);
const row = (id: number) => Array.from(vecs.subarray((id % 4000) * DIM, (id % 4000 + 1) * DIM));

const servers: ServerChild[] = [];
for (const id of ['f1', 'f2', 'f3']) {
  servers.push(await startServer(['--cluster', cluster.servers.join(','), '--node-id', id, '--cluster-ttl', '1500', '--data-dir', join(dir, id)]));
}
t.teardown(() => Promise.all(servers.map((s) => s.kill())));
const [a, b, c] = servers as [ServerChild, ServerChild, ServerChild];

async function led(): Promise<boolean> {
  const shards = new Set<number>();
  for (const s of servers) {
    for (const h of (await call(`${s.url}/cluster`, 'GET')).body.result.quiver.shards as { shard_id: number; role: string }[]) if (h.role === 'leader') shards.add(h.shard_id);
  }
  return shards.size === SHARDS;
}

const acked: number[] = [];
/** Why writes were refused with a 503 and tried again. */
const reasons = new Set<string>();
let next = 0;
/**
 * Upserts the next `n` ids one request each through `via`, as a client
 * does: a 503 (retryable, not applied) is tried again up to `retries`
 * times. The ids acknowledged, the refusals that were final, the retries.
 */
async function write(via: ServerChild, n: number, retries = 0): Promise<{ ok: number[]; refused: { status: number; retryAfter: string | null; error: string }[]; retried: number }> {
  const ok: number[] = [];
  const refused: { status: number; retryAfter: string | null; error: string }[] = [];
  let retried = 0;
  for (let i = 0; i < n; i++) {
    const id = next++;
    for (let attempt = 0; ; attempt++) {
      const r = await call(`${via.url}/collections/d/points?wait=true`, 'PUT', { points: [{ id, vector: row(id) }] });
      if (r.status === 200) {
        ok.push(id);
        acked.push(id);
        break;
      }
      if (r.status === 503 && attempt < retries) {
        retried++;
        reasons.add(String(r.body?.status?.error).replace(/\d+/g, '#'));
        continue;
      }
      refused.push({ status: r.status, retryAfter: r.headers.get('retry-after'), error: String(r.body?.status?.error) });
      break;
    }
  }
  return { ok, refused, retried };
}

/** How many of the acknowledged ids `via` does not find (each searched with its own vector). */
async function missing(via: ServerChild): Promise<number> {
  let gone = 0;
  for (const id of acked) {
    const r = await call(`${via.url}/collections/d/points/query`, 'POST', { query: row(id), limit: 20, params: { hnsw_ef: 200 } });
    if (r.status !== 200 || !(r.body.result.points as { id: number }[]).some((p) => p.id === id)) gone++;
  }
  return gone;
}

t.test('one nats-server down: writes and searches go on; two down: 503, not acknowledged; back: healed', async (t) => {
  const made = await call(`${a.url}/collections/d`, 'PUT', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: SHARDS, replication_factor: 2, hnsw_config: { m: 8, ef_construct: 40 } });
  t.equal(made.status, 200);
  await until('every shard led', led, 30_000);
  const first = await write(a, 30);
  t.equal(first.ok.length, 30, '30 writes acknowledged with every server up');

  await cluster.kill(0);
  const one = await write(b, 30, 3);
  t.comment(`one server down: ${one.ok.length} of 30 acknowledged, ${one.retried} retried after a 503 (${[...reasons].join('; ')}), refused ${JSON.stringify(one.refused)}`);
  t.equal(one.ok.length, 30, 'writes go on with one nats-server down: all 30 acknowledged (a 503 tried again at most 3 times)');
  t.equal(await missing(c), 0, 'and every acknowledged write is found through f3');

  await cluster.kill(1);
  const two = await write(c, 2);
  t.equal(two.ok.length, 0, 'with two of three down no write is acknowledged');
  t.ok(two.refused.every((r) => r.status === 503 && r.retryAfter !== null), `each is a 503 with retry-after: ${JSON.stringify(two.refused)}`);

  await Promise.all([cluster.restart(0), cluster.restart(1)]);
  const healed = await until('writes acknowledged again', async () => (await write(a, 1)).ok.length === 1, 60_000);
  t.comment(`writes acknowledged again ${healed.toFixed(0)} ms after both servers were back`);
  await until('every shard led again', led, 30_000);
  const after = await write(b, 20);
  t.equal(after.ok.length, 20, '20 more writes acknowledged after the heal, without a manual step');
  for (const [i, s] of servers.entries()) t.equal(await missing(s), 0, `every one of the ${acked.length} acknowledged writes is found through f${i + 1}`);
});
