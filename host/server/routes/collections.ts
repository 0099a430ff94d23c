/**
 * Collections: list, create, info, exists, delete; and quiver's compaction.
 */
import type { FastifyInstance } from 'fastify';
import { MAX_DIM, MAX_M } from '../../core/abi.js';
import type { DatasetInfo, DatasetOptions, PayloadIndexInfo } from '../../store/store.js';
import { collectionName, ok, type ServerContext } from '../context.js';
import { distanceOf, formatError, metricOf, notSupported, rejectUnsupported, wrongInput } from '../qdrant.js';
import * as schema from '../schemas.js';
import { payloadSchema } from './indexes.js';
import { quantizationConfig, quantizationInfo, sameQuantization } from '../quantization.js';
import { checkRange } from '../validation.js';

type Body = Record<string, unknown>;

interface Hnsw {
  m?: number;
  ef_construct?: number;
  ef?: number;
}

/**
 * The HNSW fields quiver honours and their ranges: Qdrant's (ef_construct
 * at least 4) within the Store's (m at most MAX_M; m 0, "no graph", is
 * refused as unsupported). `ef` is quiver's own: the default search beam.
 */
const HNSW_RANGES: Record<keyof Hnsw, [min: number, max: number]> = {
  m: [2, MAX_M],
  ef_construct: [4, 100_000],
  ef: [1, schema.MAX_RESULTS],
};

/** An `hnsw_config` (top level or inside `vectors`), checked field by field. */
function hnswConfig(value: unknown, where: string): Hnsw {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw formatError(`${where}: expected an object`);
  const out: Hnsw = {};
  for (const key of Object.keys(HNSW_RANGES) as (keyof Hnsw)[]) {
    const v = (value as Body)[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw formatError(`${where}.${key}: expected an unsigned integer (got ${JSON.stringify(v)})`);
    }
    if (key === 'm' && v === 0) throw notSupported('m = 0 (a collection without an HNSW graph)');
    const [min, max] = HNSW_RANGES[key];
    checkRange('JSON body', `${where}.${key}`, v, min, max);
    out[key] = v;
  }
  return out;
}

/** Qdrant's CreateCollection body as the Store's DatasetOptions. */
export function datasetOptions(body: Body): DatasetOptions {
  rejectUnsupported(body, {
    init_from: '`init_from`',
    strict_mode_config: '`strict_mode_config`',
  });
  if (body.sharding_method !== undefined && body.sharding_method !== null && body.sharding_method !== 'auto') {
    throw notSupported('custom sharding (sharding_method)');
  }
  const sparse = body.sparse_vectors;
  if (sparse !== undefined && sparse !== null && Object.keys(sparse).length > 0) throw notSupported('sparse vectors');
  let vectors = body.vectors as Body | undefined;
  if (vectors === undefined || vectors === null) throw formatError('`vectors` is required: {"size": <dimension>, "distance": "Cosine" | "Euclid" | "Dot"}');
  if (!('size' in vectors) && !('distance' in vectors)) {
    // named vectors: {name: params}; only the default (unnamed) vector exists
    const names = Object.keys(vectors);
    if (names.length === 1 && names[0] === '') vectors = vectors[''] as Body;
    else throw notSupported(`named vectors (${names.map((n) => JSON.stringify(n)).join(', ')})`);
    if (vectors === null || typeof vectors !== 'object' || Array.isArray(vectors)) {
      throw formatError('vectors[""]: expected {"size": <dimension>, "distance": "Cosine" | "Euclid" | "Dot"}');
    }
  }
  const size = vectors.size;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) throw formatError('vectors.size: expected a positive integer');
  checkRange('JSON body', 'vectors.size', size, 1, MAX_DIM);
  rejectUnsupported(vectors, { multivector_config: 'multi-vectors (multivector_config)' });
  if (vectors.datatype !== undefined && vectors.datatype !== null && vectors.datatype !== 'float32') {
    throw notSupported(`datatype ${JSON.stringify(vectors.datatype)} (vectors are float32)`);
  }
  const hnsw: Hnsw = { ...hnswConfig(body.hnsw_config, 'hnsw_config'), ...hnswConfig(vectors.hnsw_config, 'vectors.hnsw_config') };
  // the vector's own quantization_config overrides the collection's, as in Qdrant (one vector: it is the collection's)
  const quantization = quantizationConfig(vectors.quantization_config, 'vectors.quantization_config')
    ?? quantizationConfig(body.quantization_config, 'quantization_config');
  const options: DatasetOptions = { dim: size, metric: metricOf(vectors.distance) };
  if (quantization !== undefined) options.quantization = quantization;
  if (hnsw.m !== undefined) options.M = hnsw.m;
  if (hnsw.ef_construct !== undefined) options.efConstruction = hnsw.ef_construct;
  if (hnsw.ef !== undefined) options.ef = hnsw.ef;
  if (typeof body.shard_number === 'number') options.shards = body.shard_number;
  // copies on other nodes need a cluster: accepting 2 and keeping 1 would be a silent wrong answer
  if (typeof body.replication_factor === 'number' && body.replication_factor > 1) {
    throw notSupported(`replication_factor ${body.replication_factor} on a single node (it keeps one copy of each shard; replication needs a cluster)`);
  }
  return options;
}

/** Qdrant's CollectionInfo for a dataset (and its payload indexes), with quiver's own figures under `quiver`. */
export function collectionInfo(info: DatasetInfo, indexes: readonly PayloadIndexInfo[] = []): Record<string, unknown> {
  return {
    status: 'green',
    optimizer_status: 'ok',
    indexed_vectors_count: info.count,
    points_count: info.count,
    segments_count: info.shards,
    config: {
      params: {
        vectors: { size: info.dim, distance: distanceOf(info.metric) },
        shard_number: info.shards,
        replication_factor: 1,
        write_consistency_factor: 1,
        on_disk_payload: false,
      },
      hnsw_config: { m: info.M, ef_construct: info.efConstruction, full_scan_threshold: 10_000, max_indexing_threads: 0, on_disk: false },
      optimizer_config: {
        deleted_threshold: 0.2,
        vacuum_min_vector_number: 1000,
        default_segment_number: 0,
        max_segment_size: null,
        memmap_threshold: null,
        indexing_threshold: 10_000,
        flush_interval_sec: 5,
        max_optimization_threads: null,
      },
      wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
      quantization_config: quantizationInfo(info),
    },
    payload_schema: payloadSchema(indexes),
    quiver: {
      metric: info.metric,
      ef: info.ef,
      shards: info.shards,
      deleted_points: info.deleted,
      committed_bytes: info.committedBytes,
      live_bytes: info.liveBytes,
    },
  };
}

/** UpdateCollection fields quiver cannot change (any non-null value is a 400 naming it). */
const FIXED_FIELDS = ['optimizers_config', 'params', 'hnsw_config', 'sparse_vectors', 'strict_mode_config', 'metadata'];
const FIXED_VECTOR_FIELDS = ['hnsw_config', 'on_disk', 'memory'];

/**
 * Qdrant's UpdateCollection against a collection's info: quiver changes
 * nothing after create, so a request that asks for what the collection
 * already has is accepted (a no-op), anything else is a 400 naming it.
 * Quantization (top level, or the default vector's) must be what it is.
 */
export function checkUpdate(body: Body, info: DatasetInfo): void {
  for (const key of FIXED_FIELDS) {
    if (body[key] !== undefined && body[key] !== null) throw notSupported(`updating collection parameters (\`${key}\`)`);
  }
  const asked = [quantizationConfig(body.quantization_config, 'quantization_config', true)];
  const vectors = body.vectors;
  if (vectors !== undefined && vectors !== null) {
    if (typeof vectors !== 'object' || Array.isArray(vectors)) throw formatError('vectors: expected {"": {"quantization_config": ...}}');
    for (const [name, diff] of Object.entries(vectors as Body)) {
      if (name !== '') throw notSupported(`named vectors (${JSON.stringify(name)})`);
      if (diff === null || diff === undefined) continue;
      if (typeof diff !== 'object' || Array.isArray(diff)) throw formatError('vectors[""]: expected an object');
      for (const key of FIXED_VECTOR_FIELDS) {
        if ((diff as Body)[key] !== undefined && (diff as Body)[key] !== null) throw notSupported(`updating collection parameters (\`vectors[""].${key}\`)`);
      }
      asked.push(quantizationConfig((diff as Body).quantization_config, 'vectors[""].quantization_config', true));
    }
  }
  for (const q of asked) {
    if (q !== undefined && !sameQuantization(q, info.quantization)) {
      throw notSupported('changing the quantization of an existing collection (create a new collection and upsert its points)');
    }
  }
}

export function registerCollectionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const params = schema.collectionParams;

  app.get('/collections', async (_request, reply) =>
    ok(reply, { collections: ctx.store.listDatasets().map((name) => ({ name })) }));

  app.put('/collections/:name', { schema: { params, querystring: schema.writeQuery, body: schema.createCollection }, config: { write: true } }, async (request, reply) => {
    const name = collectionName(request);
    const options = datasetOptions(request.body as Body);
    if (options.quantization?.scalar.alwaysRam === false && ctx.store.path === undefined) {
      throw wrongInput('quantization_config.scalar.always_ram: false keeps the f32 originals in files of the data directory, and this server has none (it runs --in-memory): start it with --data-dir, or leave always_ram out');
    }
    const info = await ctx.store.createDataset(name, options);
    ctx.collections.remember(info);
    return ok(reply, true);
  });

  app.get('/collections/:name', { schema: { params } }, async (request, reply) => {
    const name = collectionName(request);
    const [info, indexes] = await Promise.all([ctx.store.datasetInfo(name), ctx.store.payloadIndexes(name)]);
    ctx.collections.remember(info);
    return ok(reply, collectionInfo(info, indexes));
  });

  app.patch('/collections/:name', { schema: { params, querystring: schema.writeQuery, body: schema.updateCollection }, config: { write: true } }, async (request, reply) => {
    const info = await ctx.store.datasetInfo(collectionName(request));
    checkUpdate((request.body ?? {}) as Body, info);
    return ok(reply, true);
  });

  app.get('/collections/:name/exists', { schema: { params } }, async (request, reply) =>
    ok(reply, { exists: ctx.store.listDatasets().includes(collectionName(request)) }));

  app.delete('/collections/:name', { schema: { params, querystring: schema.writeQuery }, config: { write: true } }, async (request, reply) => {
    const name = collectionName(request);
    ctx.collections.forget(name);
    // Qdrant answers `false` for a collection that is not there
    if (!ctx.store.listDatasets().includes(name)) return ok(reply, false);
    await ctx.store.dropDataset(name);
    return ok(reply, true);
  });

  app.post('/collections/:name/compact', { schema: { params }, config: { write: true } }, async (request, reply) => {
    const r = await ctx.store.compact(collectionName(request));
    return ok(reply, {
      committed_bytes_before: r.committedBefore,
      committed_bytes_after: r.committedAfter,
      reclaimed_bytes: r.reclaimedBytes,
      removed_tombstones: r.removedTombstones,
    });
  });
}
