/**
 * `quiver serve --cluster`: the core of the Qdrant REST API served from a
 * cluster node (host/store/cluster-node.ts), so any node answers any
 * request: collections are created in the cluster's catalog with Qdrant's
 * `shard_number` and `replication_factor`; upserts and deletes go to each
 * shard's leader; queries and searches scatter to one copy of every shard
 * and merge. `GET /cluster` reports this node and its roles.
 *
 * What a cluster node does not serve yet (payload updates and filters,
 * scroll, count, retrieve, indexes, snapshots, dropping a collection)
 * answers 400 in Qdrant's error envelope, saying so (docs/cluster.md).
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { collectGarbage } from '../core/gc.js';
import { ErrorCode } from '../errors.js';
import type { ClusterNode } from '../store/cluster-node.js';
import { MAX_PARAM_LENGTH, toHttpError } from './http-errors.js';
import { HttpError, QDRANT_COMPAT_VERSION, collectionNotFound, distanceOf, formatError, metricOf, parseId, plainVector, scoreOf, stringify, toVector, wrongInput } from './qdrant.js';
import { quiverVersion } from './app.js';
import { elapsed, ok } from './context.js';

type Req = FastifyRequest<{ Params: { name: string }; Body: unknown }>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);


function positiveInt(value: unknown, where: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw formatError(`${where}: expected a positive integer (got ${JSON.stringify(value)})`);
  return value;
}

function body(request: Req): Record<string, unknown> {
  if (!isObject(request.body)) throw formatError('expected a JSON object');
  return request.body;
}

export function buildClusterServer(node: ClusterNode, options: { bodyLimit?: number } = {}): FastifyInstance {
  const app = Fastify({ bodyLimit: options.bodyLimit ?? 32 * 1024 * 1024, maxParamLength: MAX_PARAM_LENGTH });
  app.setReplySerializer((payload) => stringify(payload));
  app.setErrorHandler((err, request, reply) => {
    const e = toHttpError(err, (request.params as { name?: string } | undefined)?.name);
    void reply.code(e.statusCode).headers(e.headers).send({ status: { error: e.message }, time: elapsed(reply) });
  });
  const unsupported = (what: string) => async () => {
    throw new HttpError(400, `Bad request: ${what} is not served by a cluster node yet (docs/cluster.md)`);
  };

  app.get('/', async () => ({ title: 'quiver - vector search engine (cluster node)', version: QDRANT_COMPAT_VERSION, quiver: quiverVersion() }));
  for (const p of ['/healthz', '/livez', '/readyz']) app.get(p, async (_q, reply) => reply.type('text/plain').send('ok'));

  app.get('/cluster', async (_request, reply) => {
    const roles = node.roles();
    return ok(reply, {
      status: 'enabled', peer_id: node.nodeId,
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
      consensus: 'NATS JetStream (leases, placement and shard logs)', fenced_appends: node.fencedAppends, moves: node.moves,
    });
  });

  // as a single process's: a GC in the node's thread (its copies' memories live there)
  app.post('/release-memory', async (_request, reply) => {
    const before = process.memoryUsage.rss();
    collectGarbage();
    const after = process.memoryUsage.rss();
    return ok(reply, { reclaimed_bytes: Math.max(0, before - after), rss_before: before, rss_after: after });
  });

  app.get('/collections', async (_request, reply) => ok(reply, { collections: (await node.datasets()).map((d) => ({ name: d.name })) }));

  app.put('/collections/:name', async (request: Req, reply) => {
    const b = body(request);
    const vectors = b.vectors;
    if (!isObject(vectors)) throw formatError('vectors: expected {"size": N, "distance": "Cosine" | "Euclid" | "Dot"} (named vectors are not served by a cluster node)');
    const hnsw = isObject(b.hnsw_config) ? b.hnsw_config : {};
    const dim = positiveInt(vectors.size, 'vectors.size', 0);
    await node.createDataset(request.params.name, {
      dim, metric: metricOf(vectors.distance),
      shards: positiveInt(b.shard_number, 'shard_number', 1), replicas: positiveInt(b.replication_factor, 'replication_factor', 1),
      M: positiveInt(hnsw.m, 'hnsw_config.m', 16), efConstruction: positiveInt(hnsw.ef_construct, 'hnsw_config.ef_construct', 100),
    });
    return ok(reply, true);
  });

  app.get('/collections/:name', async (request: Req, reply) => {
    const d = (await node.datasets()).find((x) => x.name === request.params.name);
    if (d === undefined) throw collectionNotFound(request.params.name);
    return ok(reply, {
      status: 'green', optimizer_status: 'ok', segments_count: d.shards,
      config: {
        params: { vectors: { size: d.params.dim, distance: distanceOf(d.params.metric) }, shard_number: d.shards, replication_factor: d.replicas },
        hnsw_config: { m: d.params.M, ef_construct: d.params.efConstruction },
      },
    });
  });

  app.get('/collections/:name/exists', async (request: Req, reply) => ok(reply, { exists: (await node.datasets()).some((x) => x.name === request.params.name) }));

  app.put('/collections/:name/points', async (request: Req, reply) => {
    const name = request.params.name;
    const d = await dataset(node, name);
    const points = body(request).points;
    if (!Array.isArray(points)) throw formatError('points: expected a list of {"id", "vector", "payload"} (batches are not served by a cluster node)');
    const ids = points.map((p, i) => parseId(isObject(p) ? p.id : undefined, `points[${i}].id`));
    const flat = new Float32Array(points.length * d.params.dim);
    points.forEach((p, i) => flat.set(toVector(plainVector((p as { vector?: unknown }).vector, `points[${i}].vector`), d.params.dim, `points[${i}].vector`), i * d.params.dim));
    const payloads = points.map((p) => (p as { payload?: unknown }).payload ?? undefined);
    await node.upsert(name, ids, flat, payloads);
    return ok(reply, { operation_id: 0, status: 'completed' });
  });

  app.post('/collections/:name/points/delete', async (request: Req, reply) => {
    const ids = body(request).points;
    if (!Array.isArray(ids)) throw formatError('points: expected a list of ids (a filter is not served by a cluster node)');
    await node.delete(request.params.name, ids.map((x, i) => parseId(x, `points[${i}]`)));
    return ok(reply, { operation_id: 0, status: 'completed' });
  });

  const search = async (request: Req, vector: unknown, b: Record<string, unknown>) => {
    const name = request.params.name;
    const d = await dataset(node, name);
    if (b.filter !== undefined && b.filter !== null) throw new HttpError(400, 'Bad request: a filter is not served by a cluster node yet (docs/cluster.md)');
    const limit = positiveInt(b.limit, 'limit', 10);
    const params = isObject(b.params) ? b.params : {};
    const consistency = b.consistency === undefined || b.consistency === null || b.consistency === 'all' || b.consistency === 'majority' ? 'leader' : b.consistency === 'any' ? 'any' : undefined;
    if (consistency === undefined) throw wrongInput(`consistency: expected "any", "majority" or "all" (got ${JSON.stringify(b.consistency)})`);
    const hits = await node.search(name, toVector(plainVector(vector, 'query'), d.params.dim, 'query'), limit, { ef: positiveInt(params.hnsw_ef, 'params.hnsw_ef', 64), consistency });
    return hits.ids.map((id, i) => ({ id, version: 0, score: scoreOf(d.params.metric, hits.distances[i]!) }));
  };
  app.post('/collections/:name/points/query', async (request: Req, reply) => {
    const b = body(request);
    return ok(reply, { points: await search(request, b.query, b) });
  });
  app.post('/collections/:name/points/search', async (request: Req, reply) => {
    const b = body(request);
    return ok(reply, await search(request, b.vector, b));
  });

  app.delete('/collections/:name', unsupported('dropping a collection'));
  for (const route of ['scroll', 'count', 'payload', 'search/batch', 'query/batch']) app.post(`/collections/:name/points/${route}`, unsupported(`points/${route}`));
  app.post('/collections/:name/points', unsupported('retrieving points'));
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ status: { error: `Not found: no route ${request.method} ${request.url.split('?', 1)[0]} (a cluster node serves a subset of the API; docs/cluster.md)` }, time: elapsed(reply) });
  });
  return app;
}

async function dataset(node: ClusterNode, name: string) {
  try {
    return await node.dataset(name);
  } catch (err) {
    throw (err as { code?: string }).code === ErrorCode.NOT_FOUND ? collectionNotFound(name) : err;
  }
}
