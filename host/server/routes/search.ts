/**
 * Searching: POST /collections/:name/points/query (and /query/batch), the
 * Query API current clients use, and the older /points/search (and
 * /search/batch).
 */
import type { FastifyInstance } from 'fastify';
import type { Id } from '../../ids.js';
import type { SearchHits } from '../../core/shard.js';
import type { CollectionMeta } from '../collections.js';
import { collectionName, ok, timeoutSignal, type PointContext } from '../context.js';
import {
  HttpError, checkUsing, formatError, idKey, notSupported, parseId, passesThreshold, payloadSelector, plainVector,
  rejectUnsupported, requestFilter, filterPathsHeader, scoreOf, showId, toVector, vectorWanted, UNSUPPORTED_READ_FIELDS, type PayloadSelector,
} from '../qdrant.js';
import type { CompiledFilter } from '../../filter/filter.js';
import type { FilterPath } from '../../core/shard.js';
import * as schema from '../schemas.js';
import { MAX_OVERSAMPLING, type QuantSearch } from '../../core/quantization.js';
import { quantizationParams } from '../quantization.js';

/** One search, in quiver's terms. */
export interface SearchSpec {
  /** The query vector (JSON numbers, checked against the collection), or a point whose vector to use. */
  query: { values: unknown[] } | { id: Id };
  limit: number;
  offset: number;
  ef: number | undefined;
  exact: boolean;
  payload: PayloadSelector;
  withVector: boolean;
  threshold: number | null | undefined;
  /** Only points this (already checked) filter matches. */
  filter: CompiledFilter | undefined;
  /** `params.quantization` (checked): how a quantized collection's search uses its codes. */
  quantization: QuantSearch | undefined;
}

/** What runSearches answers: each search's points, and with a filter the path each shard's planner took. */
export interface SearchResults {
  results: ScoredPoint[][];
  paths: (FilterPath[] | undefined)[];
}

export interface ScoredPoint {
  id: Id;
  version: number;
  score: number;
  payload?: Record<string, unknown>;
  vector?: number[];
}

type Body = Record<string, unknown>;

/** Query kinds of Qdrant's Query API other than `nearest`. */
const OTHER_QUERIES = ['recommend', 'discover', 'context', 'order_by', 'fusion', 'rrf', 'formula', 'sample', 'relevance_feedback'];

/** `query`: a vector, a point id, or `{nearest: <vector or id>}` (whose value is not another query). */
function queryTarget(q: unknown, where: string, nested = false): SearchSpec['query'] {
  if (typeof q === 'number' || typeof q === 'string') return { id: parseId(q, where) };
  if (Array.isArray(q)) return { values: plainVector(q, where) };
  if (q !== null && typeof q === 'object') {
    const obj = q as Body;
    if ('nearest' in obj && !nested) {
      rejectUnsupported(obj, { mmr: '`mmr` (maximal marginal relevance)' });
      return queryTarget(obj.nearest, `${where}.nearest`, true);
    }
    if (nested && 'nearest' in obj) throw formatError(`${where}: expected a vector or a point id`);
    for (const kind of OTHER_QUERIES) if (kind in obj) throw notSupported(`\`${kind}\` queries (${where})`);
    return { values: plainVector(q, where) };
  }
  throw formatError(`${where}: expected a vector, a point id or {"nearest": ...}`);
}

/** `params`: the beam, exact, and the quantization params (`where`: the params' field name, for messages). */
function params(body: Body, where: string): { ef: number | undefined; exact: boolean; quantization: QuantSearch | undefined } {
  const p = (body.params ?? {}) as { hnsw_ef?: number | null; exact?: boolean | null; quantization?: unknown };
  return { ef: p.hnsw_ef ?? undefined, exact: p.exact === true, quantization: quantizationParams(p.quantization, `${where}.quantization`) };
}

function limits(body: Body): { limit: number; offset: number } {
  const limit = (body.limit as number | null | undefined) ?? 10;
  const offset = (body.offset as number | null | undefined) ?? 0;
  if (limit + offset > schema.MAX_RESULTS) throw formatError(`limit + offset must be at most ${schema.MAX_RESULTS}`);
  return { limit, offset };
}

/** A Query API request (QueryRequest) as a SearchSpec. */
export function parseQueryRequest(body: Body, where = 'query'): SearchSpec {
  rejectUnsupported(body, {
    ...UNSUPPORTED_READ_FIELDS,
    prefetch: '`prefetch` (multi-stage and hybrid queries)',
    lookup_from: '`lookup_from`',
  });
  checkUsing(body.using);
  if (body.query === undefined || body.query === null) {
    throw notSupported('a query without `query` (listing points by id); use POST /collections/{name}/points/scroll');
  }
  return {
    query: queryTarget(body.query, where),
    ...limits(body),
    ...params(body, where === 'query' ? 'params' : where.replace(/\.query$/, '.params')),
    payload: payloadSelector(body.with_payload, false),
    withVector: vectorWanted(body.with_vector, false),
    threshold: body.score_threshold as number | null | undefined,
    filter: requestFilter(body, where === 'query' ? 'filter' : where.replace(/\.query$/, '.filter')),
  };
}

/** A legacy search request (SearchRequest) as a SearchSpec. */
export function parseSearchRequest(body: Body, where = 'vector'): SearchSpec {
  rejectUnsupported(body, UNSUPPORTED_READ_FIELDS);
  let vector = body.vector;
  // NamedVectorStruct: {name, vector}; only the default (unnamed) vector exists
  if (vector !== null && typeof vector === 'object' && !Array.isArray(vector) && 'name' in vector && 'vector' in vector) {
    const named = vector as { name: unknown; vector: unknown };
    checkUsing(named.name);
    vector = named.vector;
  }
  return {
    query: { values: plainVector(vector, where) },
    ...limits(body),
    ...params(body, where === 'vector' ? 'params' : where.replace(/\.vector$/, '.params')),
    payload: payloadSelector(body.with_payload, false),
    withVector: vectorWanted(body.with_vector, false),
    threshold: body.score_threshold as number | null | undefined,
    filter: requestFilter(body, where === 'vector' ? 'filter' : where.replace(/\.vector$/, '.filter')),
  };
}

/**
 * Runs searches against one collection: every query is checked (dimension,
 * float32 range, ids that exist) before any runs, then all run at once
 * (the Store batches concurrent searches into one task per shard).
 */
export async function runSearches(ctx: PointContext, name: string, specs: SearchSpec[], signal?: AbortSignal): Promise<SearchResults> {
  const meta = await ctx.collections.meta(name);
  const vectors = await queryVectors(ctx, meta, specs);
  const needCount = specs.some((s) => s.exact);
  const count = needCount ? await ctx.store.count(name) : 0;
  const paths: (FilterPath[] | undefined)[] = specs.map(() => undefined);
  const results = await Promise.all(specs.map(async (spec, i) => {
    const self = 'id' in spec.query ? idKey(spec.query.id) : undefined;
    const k = Math.min(schema.MAX_RESULTS, spec.limit + spec.offset + (self === undefined ? 0 : 1));
    // exact: a beam as wide as the collection visits every reachable node, over the f32 originals of a quantized one;
    // with the originals on disk (always_ram false) over the codes, the widest re-rank then exact f32 distances
    const ef = spec.exact ? Math.min(schema.MAX_RESULTS, Math.max(count, k)) : spec.ef;
    const quantization = spec.exact ? (meta.originalsOnDisk ? { oversampling: MAX_OVERSAMPLING } : { ignore: true }) : spec.quantization;
    const hits: SearchHits = await ctx.store.search(name, vectors[i]!, k, {
      ...(ef === undefined ? {} : { ef }),
      withPayload: spec.payload.fetch,
      ...(signal === undefined ? {} : { signal }),
      ...(spec.filter === undefined ? {} : { filter: spec.filter }),
      ...(quantization === undefined ? {} : { quantization }),
    });
    paths[i] = hits.paths;
    const points: ScoredPoint[] = [];
    for (let h = 0; h < hits.ids.length; h++) {
      const id = hits.ids[h]!;
      if (self !== undefined && idKey(id) === self) continue;
      const score = scoreOf(meta.metric, hits.distances[h]!);
      if (!passesThreshold(meta.metric, score, spec.threshold)) break;
      const point: ScoredPoint = { id, version: 0, score };
      if (spec.payload.fetch) point.payload = spec.payload.select(hits.payloads?.[h]);
      points.push(point);
    }
    const page = points.slice(spec.offset, spec.offset + spec.limit);
    if (spec.withVector && page.length > 0) await attachVectors(ctx, name, page);
    return page;
  }));
  return { results, paths };
}

/** The query vectors, in order: checked JSON vectors, or the stored vectors of the ids asked by. */
async function queryVectors(ctx: PointContext, meta: CollectionMeta, specs: SearchSpec[]): Promise<Float32Array[]> {
  const out: (Float32Array | undefined)[] = specs.map((s, i) => ('values' in s.query ? toVector(s.query.values, meta.dim, specs.length === 1 ? 'query' : `searches[${i}].query`) : undefined));
  const byId = specs.map((s, i) => ({ s, i })).filter(({ s }) => 'id' in s.query);
  if (byId.length > 0) {
    const ids = byId.map(({ s }) => (s.query as { id: Id }).id);
    const stored = await ctx.store.get(meta.name, ids);
    byId.forEach(({ i }, j) => {
      const v = stored[j];
      if (v === undefined) throw new HttpError(404, `Not found: No point with id ${showId(ids[j]!)} found`);
      out[i] = v;
    });
  }
  return out as Float32Array[];
}

async function attachVectors(ctx: PointContext, name: string, points: ScoredPoint[]): Promise<void> {
  const records = await ctx.store.retrieve(name, points.map((p) => p.id), { withVector: true, withPayload: false });
  const byKey = new Map(records.map((r) => [idKey(r.id), r.vector]));
  for (const p of points) {
    const v = byKey.get(idKey(p.id));
    if (v !== undefined) p.vector = Array.from(v);
  }
}

export function registerSearchRoutes(app: FastifyInstance, ctx: PointContext): void {
  const base = { querystring: schema.readQuery, params: schema.collectionParams };

  app.post('/collections/:name/points/query', { schema: { ...base, body: schema.queryRequest } }, async (request, reply) => {
    const spec = parseQueryRequest(request.body as Body);
    const { results: [points], paths } = await runSearches(ctx, collectionName(request), [spec], timeoutSignal(request));
    filterPathsHeader(reply, paths);
    return ok(reply, { points });
  });

  app.post('/collections/:name/points/query/batch', { schema: { ...base, body: schema.queryBatch } }, async (request, reply) => {
    const searches = (request.body as { searches: Body[] }).searches;
    const specs = searches.map((s, i) => parseQueryRequest(s, `searches[${i}].query`));
    const { results, paths } = await runSearches(ctx, collectionName(request), specs, timeoutSignal(request));
    filterPathsHeader(reply, paths);
    return ok(reply, results.map((points) => ({ points })));
  });

  app.post('/collections/:name/points/search', { schema: { ...base, body: schema.searchRequest } }, async (request, reply) => {
    const spec = parseSearchRequest(request.body as Body);
    const { results: [points], paths } = await runSearches(ctx, collectionName(request), [spec], timeoutSignal(request));
    filterPathsHeader(reply, paths);
    return ok(reply, points);
  });

  app.post('/collections/:name/points/search/batch', { schema: { ...base, body: schema.searchBatch } }, async (request, reply) => {
    const searches = (request.body as { searches: Body[] }).searches;
    const specs = searches.map((s, i) => parseSearchRequest(s, `searches[${i}].vector`));
    const { results, paths } = await runSearches(ctx, collectionName(request), specs, timeoutSignal(request));
    filterPathsHeader(reply, paths);
    return ok(reply, results);
  });
}
