/**
 * Service routes: version, probes, metrics, memory release, Arrow ingest,
 * the test hook, and clear answers for Qdrant routes quiver does not have.
 */
import type { FastifyInstance } from 'fastify';
import { QuiverError } from '../../errors.js';
import { decodeArrow, readTable } from '../arrow.js';
import { collectionName, elapsed, ok, timeoutSignal, updated, type ServerContext } from '../context.js';
import { HttpError, notSupported, rejectZeroVectors } from '../qdrant.js';
import { keepLast } from './points.js';
import * as schema from '../schemas.js';

/** Rows per Store.insert call during Arrow ingest. */
export const ARROW_CHUNK_ROWS = 16_384;

/** Qdrant routes quiver answers with 400 "not supported" rather than 404. */
const UNSUPPORTED: [method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, what: string][] = [
  ['POST', '/collections/:name/points/recommend', 'the recommend API'],
  ['POST', '/collections/:name/points/recommend/batch', 'the recommend API'],
  ['POST', '/collections/:name/points/recommend/groups', 'the recommend API'],
  ['POST', '/collections/:name/points/discover', 'the discover API'],
  ['POST', '/collections/:name/points/discover/batch', 'the discover API'],
  ['POST', '/collections/:name/points/search/groups', 'grouped search (group_by)'],
  ['POST', '/collections/:name/points/query/groups', 'grouped queries (group_by)'],
  ['POST', '/collections/:name/points/search/matrix/pairs', 'the distance matrix API'],
  ['POST', '/collections/:name/points/search/matrix/offsets', 'the distance matrix API'],
  ['POST', '/collections/:name/facet', 'faceting'],
  ['PUT', '/collections/:name/points/vectors', 'vector updates (upsert the point instead)'],
  ['POST', '/collections/:name/points/vectors/delete', 'vector deletion'],
  ['GET', '/snapshots', 'storage-wide snapshots (collection snapshots are supported)'],
  ['POST', '/snapshots', 'storage-wide snapshots (collection snapshots are supported)'],
  ['GET', '/aliases', 'aliases'],
  ['GET', '/collections/:name/aliases', 'aliases'],
  ['POST', '/collections/aliases', 'aliases'],
  ['POST', '/collections/:name/cluster', 'cluster operations (a single node has no shard to move)'],
  ['GET', '/collections/:name/shards', 'custom shard keys'],
  ['PUT', '/collections/:name/shards', 'custom shard keys'],
  ['GET', '/telemetry', 'telemetry (see GET /metrics)'],
];

export function registerServiceRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // not wrapped in {result}: Qdrant's root answers the VersionInfo itself
  app.get('/', async () => ({ title: 'quiver', version: ctx.compatVersion, commit: null, quiver_version: ctx.quiverVersion }));

  // Qdrant answers both with the same text
  app.get('/healthz', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('healthz check passed'));
  app.get('/livez', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('healthz check passed'));
  app.get('/readyz', async (_request, reply) => {
    reply.type('text/plain; charset=utf-8');
    if (!ctx.isReady()) return reply.code(503).send('not ready: quiver is shutting down');
    return reply.send('all shards are ready');
  });

  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(await ctx.store.metrics()));

  app.post('/release-memory', { config: { write: true } }, async (_request, reply) => {
    const r = await ctx.store.releaseMemory();
    return ok(reply, { reclaimed_bytes: r.reclaimedBytes, rss_before: r.rssBefore, rss_after: r.rssAfter });
  });

  app.post('/collections/:name/arrow', {
    schema: { params: schema.collectionParams, querystring: schema.writeQuery },
    config: { write: true },
  }, async (request, reply) => {
    const name = collectionName(request);
    if (!(request.body instanceof Uint8Array)) {
      throw new HttpError(415, 'Unsupported media type: send an Arrow IPC stream as application/vnd.apache.arrow.stream');
    }
    const meta = await ctx.collections.meta(name);
    const table = readTable(request.body);
    const decoded = decodeArrow(table, meta.dim);
    const points = keepLast({ ids: decoded.ids, vectors: decoded.vectors, payloads: decoded.payloads ?? [] }, meta.dim);
    if (meta.metric === 'cosine') rejectZeroVectors(points.ids, points.vectors, meta.dim);
    const payloads = decoded.payloads === undefined ? undefined : points.payloads;
    const signal = timeoutSignal(request);
    const dim = meta.dim;
    let inserted = 0;
    for (let from = 0; from < points.ids.length; from += ARROW_CHUNK_ROWS) {
      const to = Math.min(points.ids.length, from + ARROW_CHUNK_ROWS);
      const chunkPayloads = payloads?.slice(from, to);
      try {
        await ctx.store.insert(name, points.ids.slice(from, to), points.vectors.subarray(from * dim, to * dim), {
          ...(chunkPayloads !== undefined && chunkPayloads.some((p) => p !== undefined) ? { payloads: chunkPayloads } : {}),
          ...(signal === undefined ? {} : { signal }),
        });
      } catch (err) {
        // say how far the whole table got, not just this chunk
        if (err instanceof QuiverError && inserted > 0) {
          throw new QuiverError(err.code, err.message, { applied: inserted + (err.applied ?? 0), cause: err.cause });
        }
        throw err;
      }
      inserted += to - from;
    }
    return updated(ctx, reply, false, { inserted });
  });

  if (ctx.testHooks) {
    // test only (QUIVER_TEST_HOOKS=1): the first worker thread spins forever
    app.post('/_test/hang', { config: { write: true } }, async (_request, reply) => {
      ctx.store._testHook('hang').catch(() => {});
      return reply.code(202).send({ result: { hung: true }, status: 'ok', time: elapsed(reply) });
    });
  }

  for (const [method, url, what] of UNSUPPORTED) {
    app.route({
      method,
      url,
      config: { write: method !== 'GET' },
      handler: async () => {
        throw notSupported(what);
      },
    });
  }
}
