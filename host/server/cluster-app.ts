/**
 * `quiver serve --cluster`: the Qdrant REST API served from a cluster node
 * (a ClusterStore, host/store/cluster-store.ts), so any node answers any
 * request. The point, payload, index and search routes are the single
 * process's own (routes/points.ts, payload.ts, indexes.ts, search.ts) over
 * the ClusterStore: upsert, delete by ids or filter, retrieve, count,
 * scroll, payload updates and batches, payload indexes, query and search
 * (one or batched, filters, payloads, vectors, offsets, thresholds, exact).
 * Collections are created in the cluster's catalog with Qdrant's
 * `shard_number` and `replication_factor`; `GET /cluster` and `GET
 * /collections/{name}/cluster` answer in Qdrant's shapes (docs/cluster.md).
 *
 * `DELETE /collections/{name}` drops it from every node. The snapshot
 * routes are the single process's (routes/snapshots.ts): the files are
 * kept on the node that made them and hold every shard; a recovery
 * replaces the collection in the whole cluster (cluster-snapshots.ts).

 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Registry } from 'prom-client';
import { collectGarbage } from '../core/gc.js';
import type { ClusterStore } from '../store/cluster-store.js';
import { baseServer, quiverVersion, type ServerOptions } from './app.js';
import { collectionName, ok, type PointContext } from './context.js';
import { QDRANT_COMPAT_VERSION, distanceOf, formatError, metricOf } from './qdrant.js';
import { quantizationConfig, quantizationInfo } from './quantization.js';
import { payloadSchema, registerIndexRoutes } from './routes/indexes.js';
import { registerPayloadRoutes } from './routes/payload.js';
import { registerPointRoutes } from './routes/points.js';
import { registerSearchRoutes } from './routes/search.js';
import { registerSnapshotRoutes } from './routes/snapshots.js';

type Req = FastifyRequest<{ Params: { name: string }; Body: unknown }>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function positiveInt(value: unknown, where: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw formatError(`${where}: expected a positive integer (got ${JSON.stringify(value)})`);
  return value;
}

/**
 * Qdrant numbers its peers (u64); a node's number here is a hash of its id
 * (FNV-1a, 48 bits, never 0), so every node shows the same number for it.
 */
export function peerNumber(nodeId: string): number {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(nodeId)) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return Number(h & 0xffffffffffffn) || 1;
}

export function buildClusterServer(store: ClusterStore, options: ServerOptions = {}): FastifyInstance {
  const { app } = baseServer(options, new Registry());
  const node = store.node;
  const self = peerNumber(node.nodeId);
  let operationId = 0;
  const ctx: PointContext = {
    store,
    collections: {
      meta: async (name) => {
        const d = await store.datasetInfo(name);
        return { name, dim: d.dim, metric: d.metric, originalsOnDisk: d.quantization?.scalar.alwaysRam === false };
      },
    },
    nextOperationId: () => operationId++,
  };

  app.get('/', async () => ({ title: 'quiver - vector search engine (cluster node)', version: options.compatVersion ?? QDRANT_COMPAT_VERSION, quiver_version: quiverVersion() }));
  for (const p of ['/healthz', '/livez', '/readyz']) app.get(p, async (_q, reply) => reply.type('text/plain').send('ok'));

  // Qdrant's ClusterStatus; the Raft state is JetStream's (not this node's), so raft_info is zeros, and
  // what quiver knows of the node (its id, copies and roles, fenced appends, moves) is under `quiver`
  // the members last read: with NATS out of reach the status still answers (this node's own view), saying so
  let peers: { nodeId: string; address: string }[] = [];
  let peersRead = new Date();
  app.get('/cluster', async (_request, reply) => {
    let unreadable: string | undefined;
    try {
      peers = await node.peers();
      peersRead = new Date();
    } catch (err) {
      unreadable = `the members could not be read: ${(err as Error).message}`;
    }
    const roles = node.roles();
    return ok(reply, {
      status: 'enabled', peer_id: self,
      peers: Object.fromEntries(peers.map((p) => [String(peerNumber(p.nodeId)), { uri: p.address }])),
      raft_info: { term: 0, commit: 0, pending_operations: 0, leader: null, role: null, is_voter: false },
      consensus_thread_status: unreadable === undefined
        ? { consensus_thread_status: 'working', last_update: peersRead.toISOString() }
        : { consensus_thread_status: 'stopped_with_err', err: unreadable },
      message_send_failures: {},
      quiver: {
        node_id: node.nodeId, consensus: 'NATS JetStream (leases, placement and shard logs)',
        peers: peers.map((p) => ({ node_id: p.nodeId, peer_id: peerNumber(p.nodeId), address: p.address })),
        shards: roles.copies.map((c) => {
          const shard = node.replica(c.dataset, c.shard)?.shard;
          const live = shard !== undefined && !shard.disposed;
          return {
            collection: c.dataset, shard_id: c.shard,
            role: roles.leading.some((l) => l.dataset === c.dataset && l.shard === c.shard) ? 'leader' : 'follower',
            // null while the copy is being rebuilt
            points_count: live ? shard.stats().live : null, committed_bytes: live ? shard.committedBytes : null,
          };
        }),
        fenced_appends: node.fencedAppends, moves: node.moves,
      },
    });
  });

  // Qdrant's CollectionClusterInfo: this node's copies are local shards, the other copies remote
  app.get('/collections/:name/cluster', async (request: Req, reply) => {
    const name = collectionName(request);
    const info = await store.datasetInfo(name);
    const placement = await node.placement(name);
    const local: unknown[] = [];
    const remote: unknown[] = [];
    for (const [shard, p] of [...placement].sort((a, b) => a[0] - b[0])) {
      for (const holder of [p.leader, ...p.followers]) {
        if (holder !== node.nodeId) {
          remote.push({ shard_id: shard, peer_id: peerNumber(holder), state: 'Active' });
          continue;
        }
        const r = node.replica(name, shard);
        const live = r !== null && !r.shard.disposed && (r.role === 'leader' || r.role === 'follower');
        local.push({ shard_id: shard, points_count: live ? r.shard.stats().live : 0, state: live ? 'Active' : 'Initializing' });
      }
    }
    return ok(reply, { peer_id: self, shard_count: info.shards, local_shards: local, remote_shards: remote, shard_transfers: [] });
  });

  // as a single process's: a GC in the node's thread (its copies' memories live there)
  app.post('/release-memory', async (_request, reply) => {
    const before = process.memoryUsage.rss();
    collectGarbage();
    const after = process.memoryUsage.rss();
    return ok(reply, { reclaimed_bytes: Math.max(0, before - after), rss_before: before, rss_after: after });
  });

  app.get('/collections', async (_request, reply) => ok(reply, { collections: (await store.listDatasets()).map((name) => ({ name })) }));

  app.put('/collections/:name', async (request: Req, reply) => {
    const b = isObject(request.body) ? request.body : {};
    const vectors = b.vectors;
    if (!isObject(vectors)) throw formatError('vectors: expected {"size": N, "distance": "Cosine" | "Euclid" | "Dot"} (named vectors are not served by a cluster node)');
    const quantization = quantizationConfig(b.quantization_config, 'quantization_config');
    const hnsw = isObject(b.hnsw_config) ? b.hnsw_config : {};
    await store.createDataset(collectionName(request), {
      dim: positiveInt(vectors.size, 'vectors.size', 0), metric: metricOf(vectors.distance),
      shards: positiveInt(b.shard_number, 'shard_number', 1), replicas: positiveInt(b.replication_factor, 'replication_factor', 1),
      M: positiveInt(hnsw.m, 'hnsw_config.m', 16), efConstruction: positiveInt(hnsw.ef_construct, 'hnsw_config.ef_construct', 100),
      ...(quantization === undefined ? {} : { quantization }),
    });
    return ok(reply, true);
  });

  app.get('/collections/:name', async (request: Req, reply) => {
    const d = await store.datasetInfo(collectionName(request));
    const points = await store.count(d.name);
    return ok(reply, {
      status: 'green', optimizer_status: 'ok', segments_count: d.shards, points_count: points, indexed_vectors_count: points,
      config: {
        params: { vectors: { size: d.dim, distance: distanceOf(d.metric) }, shard_number: d.shards, replication_factor: d.replicas },
        hnsw_config: { m: d.M, ef_construct: d.efConstruction },
        quantization_config: quantizationInfo(d),
      },
      payload_schema: payloadSchema(await store.payloadIndexes(d.name)),
    });
  });

  app.get('/collections/:name/exists', async (request: Req, reply) => ok(reply, { exists: (await store.listDatasets()).includes(collectionName(request)) }));

  registerPointRoutes(app, ctx);
  registerPayloadRoutes(app, ctx);
  registerIndexRoutes(app, ctx);
  registerSearchRoutes(app, ctx);

  // Qdrant answers `false` for a collection that is not there; true once every node let it go (cluster-datasets.ts)
  app.delete('/collections/:name', async (request: Req, reply) => ok(reply, await store.dropDataset(collectionName(request))));
  // this node's snapshot files, each of every shard; a recovery replaces the collection in the whole cluster
  registerSnapshotRoutes(app, { store, exists: async (name) => (await store.listDatasets()).includes(name), recovered: () => {} });
  return app;
}
