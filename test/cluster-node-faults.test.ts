// Cluster nodes (host/store/cluster-node.ts) through NATS faults, on a real
// 3-node nats-server cluster: with one nats-server killed, writes and
// searches go on; with two killed (no JetStream quorum), a write fails
// UNAVAILABLE and is not acknowledged; with both back, the cluster heals by
// itself: writes are acknowledged again and every acknowledged write is
// found through every node.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { clustered } from './helpers/data.js';
import { ErrorCode } from '../host/errors.js';
import { ClusterNode } from '../host/store/cluster-node.js';

const DIM = 16;
const SHARDS = 3;
const TTL = 1500;
const { cluster } = await clusterAndClient(t, 'cluster-node-faults');
const dir = mkdtempSync(join(tmpdir(), 'quiver-cfault-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const vecs = clustered(4000, DIM, 6, 3);
const row = (id: number) => vecs.subarray((id % 4000) * DIM, (id % 4000 + 1) * DIM);

const nodes: ClusterNode[] = [];
for (const id of ['f1', 'f2', 'f3']) {
  nodes.push(await ClusterNode.open({ servers: cluster.servers, nodeId: id, dir: join(dir, id), ttlMs: TTL, writeTimeoutMs: 4000 }));
}
t.teardown(() => Promise.all(nodes.map((n) => n.close())));
const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
const led = (): boolean => {
  const shards = nodes.flatMap((n) => n.roles().leading.filter((l) => n.replica('d', l.shard)?.role === 'leader').map((l) => l.shard));
  return new Set(shards).size === SHARDS;
};

const acked: number[] = [];
let next = 0;
/** Upserts the next `n` ids one call each through `via`; the ids acknowledged, the errors' codes. */
async function write(via: ClusterNode, n: number): Promise<{ ok: number[]; codes: string[] }> {
  const ok: number[] = [];
  const codes: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = next++;
    try {
      await via.upsert('d', [id], row(id));
      ok.push(id);
      acked.push(id);
    } catch (err) {
      codes.push((err as { code?: string }).code ?? String(err));
    }
  }
  return { ok, codes };
}

/** How many of the acknowledged ids `via` does not find (each searched with its own vector). */
async function missing(via: ClusterNode): Promise<number> {
  let gone = 0;
  for (const id of acked) {
    const hits = await via.search('d', row(id), 20, { ef: 200 });
    if (!hits.ids.includes(id)) gone++;
  }
  return gone;
}

t.test('one nats-server down: writes and searches go on; two down: UNAVAILABLE, not acknowledged; back: healed', async (t) => {
  await a.createDataset('d', { shards: SHARDS, replicas: 2, dim: DIM, M: 8, efConstruction: 40, ef: 64 });
  await until('every shard led', led, 20_000);
  const first = await write(a, 30);
  t.equal(first.ok.length, 30, '30 writes acknowledged with every server up');

  await cluster.kill(0);
  const one = await write(b, 30);
  t.comment(`one server down: ${one.ok.length} of 30 acknowledged, errors ${JSON.stringify(one.codes)}`);
  t.ok(one.ok.length >= 27, 'writes go on with one nats-server down');
  t.equal(await missing(c), 0, 'and every acknowledged write is found through f3');

  await cluster.kill(1);
  const two = await write(c, 5);
  t.equal(two.ok.length, 0, 'with two of three down no write is acknowledged');
  t.ok(two.codes.every((code) => code === ErrorCode.UNAVAILABLE), `each fails UNAVAILABLE (retryable): ${JSON.stringify(two.codes)}`);

  await Promise.all([cluster.restart(0), cluster.restart(1)]);
  const healed = await until('writes acknowledged again', async () => (await write(a, 1)).ok.length === 1, 60_000);
  t.comment(`writes acknowledged again ${healed.toFixed(0)} ms after both servers were back`);
  await until('every shard led again', led, 30_000);
  const after = await write(b, 20);
  t.equal(after.ok.length, 20, '20 more writes acknowledged after the heal, without a manual step');
  for (const n of nodes) t.equal(await missing(n), 0, `every one of the ${acked.length} acknowledged writes is found through ${n.nodeId}`);
});
