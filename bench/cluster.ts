/**
 * The cluster's cost, on loopback (docs/cluster.md, "Benchmark"):
 *
 *   npm run bench:cluster -- [--json FILE] [--n 20000] [--rebuild 100000]
 *
 * A 3-node nats-server cluster (scripts/nats-cluster.ts) and quiver nodes
 * (host/store/cluster-node.ts) in this one process, each with its own NATS
 * connection and directory. For each configuration, N x 128 clustered
 * vectors in 6 shards, M 16, efConstruction 200:
 *
 *   1 node, no NATS       a durable Store (its own fsynced log), one thread
 *   1 node, NATS, r1      one ClusterNode, replication 1
 *   3 nodes, r1 / r2      three ClusterNodes, replication 1 and 2
 *
 * ingest: vectors/s upserted in batches of 1,000 through the first node
 * (acknowledged: in the stream and fsynced); search: QPS of 200 queries one
 * at a time through the second node (k 10, ef 64, consistency leader), and
 * recall@10 against brute force; failover (3 nodes, r2): the first node
 * stops without leaving, time to the first acknowledged write on a shard it
 * led. Rebuild: one shard of `--rebuild` x 128 from the stream alone, and
 * from an image plus 10% more records in the stream. Loop: the event
 * loop's delay (p99 and max) while a configuration ran: a cluster node's
 * shards run on that thread, beside its lease renewals (a Store's run in
 * its worker).
 *
 * On a 2-core machine three nodes share two cores and one event loop: they
 * cannot be faster than one; the table says what replication costs here.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NatsCluster } from '../scripts/nats-cluster.js';
import { ClusterClient } from '../host/cluster/connect.js';
import { ImageStore } from '../host/cluster/images.js';
import { ClusterNode } from '../host/store/cluster-node.js';
import { rebuildShard } from '../host/store/cluster-rebuild.js';
import { Store } from '../host/store/store.js';
import { packIds } from '../host/ids.js';
import { shardOf } from '../host/store/routing.js';
import { bruteForce, K } from './datasets.js';
import { clustered } from './lib/random.js';
import { table } from './lib/table.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const { values } = parseArgs({ options: { json: { type: 'string' }, n: { type: 'string' }, rebuild: { type: 'string' } } });
const N = Number(values.n ?? 20_000);
const REBUILD_N = Number(values.rebuild ?? 100_000);
const DIM = 128;
const SHARDS = 6;
const Q = 200;
const BATCH = 1000;
const GRAPH = { M: 16, efConstruction: 200 };
const TTL = 1500;

const base = clustered(N, DIM, 40, 1);
const queries = clustered(Q, DIM, 40, 2);
const ids = Array.from({ length: N }, (_, i) => i);

const gt = bruteForce(base, queries, DIM, 'l2');
const truths = Array.from({ length: Q }, (_, q) => new Set(gt.subarray(q * K, (q + 1) * K)));

/** `loopMaxMs`, `loopP99Ms`: the event loop's delay while it ran (the thread a cluster node renews its leases on). */
interface Row { config: string; ingest: number; qps: number; recall: number; loopMaxMs: number; loopP99Ms: number }
const rows: Row[] = [];
const work = mkdtempSync(join(tmpdir(), 'quiver-bench-cluster-'));
const cluster = await NatsCluster.start();
let failoverMs = NaN;
const rebuild: Record<string, number> = {};

async function measure(config: string, upsert: (at: number) => Promise<void>, search: (q: Float32Array) => Promise<readonly unknown[]>): Promise<void> {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  for (let at = 0; at < N; at += BATCH) await upsert(at);
  const ingest = N / ((performance.now() - t0) / 1000);
  let hit = 0;
  const t1 = performance.now();
  for (let q = 0; q < Q; q++) {
    const got = await search(queries.subarray(q * DIM, (q + 1) * DIM));
    hit += got.filter((id) => truths[q]!.has(id as number)).length;
  }
  const qps = Q / ((performance.now() - t1) / 1000);
  loop.disable();
  rows.push({ config, ingest, qps, recall: hit / (Q * 10), loopMaxMs: loop.max / 1e6, loopP99Ms: loop.percentile(99) / 1e6 });
  console.log(`[cluster] ${config}: ${ingest.toFixed(0)} vectors/s, ${qps.toFixed(0)} QPS`);
}

async function nodes(count: number, tag: string): Promise<ClusterNode[]> {
  const out: ClusterNode[] = [];
  for (let i = 0; i < count; i++) out.push(await ClusterNode.open({ servers: cluster.servers, nodeId: `${tag}-${i}`, dir: join(work, tag, String(i)), ttlMs: TTL, prefix: tag }));
  return out;
}

async function settled(ns: ClusterNode[], dataset: string, shards: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const led = ns.flatMap((n) => n.roles().leading.filter((l) => l.dataset === dataset && n.replica(dataset, l.shard)?.role === 'leader').map((l) => l.shard));
    if (new Set(led).size === shards) return;
    if (Date.now() > deadline) throw new Error(`${dataset}: not every shard led within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

try {
  {
    const store = await Store.open({ path: join(work, 'store'), threads: 1 });
    await store.createDataset('d', { dim: DIM, shards: SHARDS, ...GRAPH });
    await measure('1 node, no NATS (durable Store)', (at) => store.insert('d', ids.slice(at, at + BATCH), base.subarray(at * DIM, (at + BATCH) * DIM)).then(() => {}),
      async (q) => (await store.search('d', q, 10, { ef: 64 })).ids);
    await store.close();
  }
  for (const [count, replicas] of [[1, 1], [3, 1], [3, 2]] as const) {
    const tag = `n${count}r${replicas}`;
    const ns = await nodes(count, tag);
    await ns[0]!.createDataset('d', { shards: SHARDS, replicas, dim: DIM, ...GRAPH, ef: 64 });
    await settled(ns, 'd', SHARDS);
    const via = ns[Math.min(1, count - 1)]!;
    await measure(`${count} node${count > 1 ? 's' : ''}, NATS, replication ${replicas}`,
      (at) => ns[0]!.upsert('d', ids.slice(at, at + BATCH), base.subarray(at * DIM, (at + BATCH) * DIM)),
      async (q) => (await via.search('d', q, 10, { ef: 64 })).ids);
    if (count === 3 && replicas === 2) {
      const led = ns[0]!.roles().leading.map((l) => l.shard);
      // an id that lives in a shard the first node leads
      let id = N;
      while (!led.includes(shardOf(packIds([id], false), 0, SHARDS))) id++;
      const killed = performance.now();
      await ns[0]!.close(false);
      await ns[1]!.upsert('d', [id], base.subarray(0, DIM));
      failoverMs = performance.now() - killed;
      console.log(`[cluster] failover: ${failoverMs.toFixed(0)} ms to the first acknowledged write on shard ${shardOf(packIds([id], false), 0, SHARDS)}`);
    }
    await Promise.all(ns.map((n) => n.close()));
  }
  {
    // one shard of REBUILD_N from the stream alone, then from an image plus 10% more
    const [n] = await nodes(1, 'rebuild');
    const vecs = clustered(REBUILD_N, DIM, 40, 3);
    for (const name of ['log', 'image']) {
      await n!.createDataset(name, { shards: 1, replicas: 1, dim: DIM, ...GRAPH });
      await settled([n!], name, 1);
      const upto = name === 'image' ? Math.floor(REBUILD_N / 1.1) : REBUILD_N;
      for (let at = 0; at < upto; at += BATCH) {
        const m = Math.min(BATCH, upto - at);
        await n!.upsert(name, Array.from({ length: m }, (_, i) => at + i), vecs.subarray(at * DIM, (at + m) * DIM));
      }
      if (name === 'image') {
        // a main-thread apply of a 1,000-point batch can outlast the lease on a loaded machine: the
        // shard then has no leader for a moment and checkpoint() images nothing; wait for it to lead again
        for (let tries = 0; !(await n!.checkpoint(name)).includes(0); tries++) {
          if (tries >= 20) throw new Error('checkpoint: the node never led the shard long enough to put an image');
          await settled([n!], name, 1);
        }
        for (let at = upto; at < REBUILD_N; at += BATCH) {
          const m = Math.min(BATCH, REBUILD_N - at);
          await n!.upsert(name, Array.from({ length: m }, (_, i) => at + i), vecs.subarray(at * DIM, (at + m) * DIM));
        }
      }
    }
    const client = await ClusterClient.connect({ servers: cluster.servers, name: 'rebuilder' });
    const images = await ImageStore.open(client);
    const params = { dim: DIM, metric: 'l2' as const, ...GRAPH, ef: 64 };
    for (const name of ['log', 'image']) {
      const t0 = performance.now();
      // the dataset's incarnation (names.ts): what its stream and images are keyed by
      const r = await rebuildShard({ client, images, dataset: (await n!.dataset(name)).id, shard: 0, params });
      rebuild[name] = performance.now() - t0;
      console.log(`[cluster] rebuild of ${REBUILD_N} x ${DIM} from ${name === 'log' ? 'the stream alone' : 'an image + the stream'}: ${(rebuild[name]! / 1000).toFixed(1)} s (image ${r.imageMs.toFixed(0)} ms, ${r.replayed} records replayed in ${r.replayMs.toFixed(0)} ms)`);
      r.shard.dispose();
    }
    await client.close();
    await n!.close();
  }
  const first = rows[0]!;
  console.log(`\n== ${N} x ${DIM}, ${SHARDS} shards, M 16, efConstruction 200; nats-server ${cluster.nodes.length} nodes on loopback; quiver nodes in one process ==`);
  console.log(table(['configuration', 'ingest vectors/s', 'x', 'search QPS', 'x', 'recall@10', 'loop p99 ms', 'loop max ms'],
    rows.map((r) => [r.config, r.ingest.toFixed(0), (r.ingest / first.ingest).toFixed(2), r.qps.toFixed(0), (r.qps / first.qps).toFixed(2), r.recall.toFixed(3), r.loopP99Ms.toFixed(0), r.loopMaxMs.toFixed(0)])));
  console.log(`\nfailover (3 nodes, replication 2, ttl ${TTL} ms): ${failoverMs.toFixed(0)} ms from the stop to the first acknowledged write on a shard it led`);
  console.log(`rebuild of one ${REBUILD_N} x ${DIM} shard: stream alone ${(rebuild.log! / 1000).toFixed(1)} s, image + 10% in the stream ${(rebuild.image! / 1000).toFixed(1)} s`);
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ n: N, dim: DIM, shards: SHARDS, rows, failoverMs, rebuildMs: rebuild, rebuildN: REBUILD_N }, null, 2));
} finally {
  await cluster.stop();
  rmSync(work, { recursive: true, force: true });
}
