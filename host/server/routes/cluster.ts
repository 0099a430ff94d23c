/**
 * Qdrant's cluster routes for a single node, answered as Qdrant answers
 * them when it runs without a cluster: GET /cluster is `{ status:
 * "disabled" }`, and GET /collections/{name}/cluster lists every shard as a
 * local, active one with its point count (no remote shards, no transfers).
 * Changing the cluster (POST /collections/{name}/cluster) stays "not
 * supported" (service.ts): there is nothing to move a shard to.
 */
import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { collectionName, ok, type ServerContext } from '../context.js';
import * as schema from '../schemas.js';

export function registerClusterRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // Qdrant gives each peer a random u64; this one is fixed for the server's life (a safe integer)
  const peerId = randomInt(1, 2 ** 48);

  app.get('/cluster', async (_request, reply) => ok(reply, { status: 'disabled' }));

  app.get('/collections/:name/cluster', { schema: { params: schema.collectionParams } }, async (request, reply) => {
    const name = collectionName(request);
    const info = await ctx.store.datasetInfo(name);
    const stats = (await ctx.store.stats()).datasets.find((d) => d.name === name);
    const counts = stats?.shardStats.map((s) => s.liveNodes) ?? [];
    return ok(reply, {
      peer_id: peerId,
      shard_count: info.shards,
      local_shards: Array.from({ length: info.shards }, (_, i) => ({ shard_id: i, points_count: counts[i] ?? 0, state: 'Active' })),
      remote_shards: [],
      shard_transfers: [],
    });
  });
}
