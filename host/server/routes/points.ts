/**
 * Points: upsert, delete, retrieve (many, or one by path), count, scroll.
 */
import type { FastifyInstance } from 'fastify';
import type { Id } from '../../ids.js';
import type { PointRecord } from '../../store/store.js';
import { collectionName, ok, timeoutSignal, updated, waitParam, type PointContext } from '../context.js';
import {
  HttpError, formatError, idKey, notSupported, parseId, parseIds, payloadSelector, plainVector, rejectUnsupported, rejectZeroVectors,
  showId, vectorWanted, writeVector, requestFilter, UNSUPPORTED_READ_FIELDS, type QdrantPayload, type PayloadSelector,
} from '../qdrant.js';
import * as schema from '../schemas.js';

type Body = Record<string, unknown>;

interface PointsIn {
  ids: Id[];
  vectors: Float32Array;
  payloads: (QdrantPayload | undefined)[];
}

/** A stored payload: an object, or nothing (null and {} are both no payload). */
function payloadIn(value: unknown): QdrantPayload | undefined {
  if (value === undefined || value === null) return undefined;
  const p = value as QdrantPayload;
  return Object.keys(p).length === 0 ? undefined : p;
}

/**
 * Qdrant upserts a batch in order, so an id given twice ends with its last
 * vector and payload; the Store wants each id once per batch.
 */
export function keepLast(points: PointsIn, dim: number): PointsIn {
  const last = new Map<string, number>();
  points.ids.forEach((id, i) => last.set(idKey(id), i));
  if (last.size === points.ids.length) return points;
  const rows = [...last.values()].sort((a, b) => a - b);
  const vectors = new Float32Array(rows.length * dim);
  rows.forEach((row, j) => vectors.set(points.vectors.subarray(row * dim, (row + 1) * dim), j * dim));
  return { ids: rows.map((r) => points.ids[r]!), vectors, payloads: rows.map((r) => points.payloads[r]) };
}

/** The points of an upsert body (list or batch form), checked against the collection's dimension. */
export function parseUpsert(body: Body, dim: number): PointsIn {
  rejectUnsupported(body, { shard_key: '`shard_key` (custom sharding)', update_filter: '`update_filter` (conditional updates)' });
  if (body.update_mode !== undefined && body.update_mode !== null && body.update_mode !== 'upsert') {
    throw notSupported(`update_mode ${JSON.stringify(body.update_mode)} (only "upsert")`);
  }
  const list = body.points as { id: unknown; vector: unknown; payload?: unknown }[] | undefined;
  const batch = body.batch as { ids: unknown[]; vectors: unknown; payloads?: unknown[] | null } | undefined;
  if ((list === undefined) === (batch === undefined)) throw formatError('expected either `points` (a list of points) or `batch`');
  if (list !== undefined) {
    const vectors = new Float32Array(list.length * dim);
    const ids = list.map((p, i) => {
      const id = parseId(p.id, `points[${i}].id`);
      writeVector(plainVector(p.vector, `points[${i}].vector`), dim, vectors, i * dim, `points[${i}].vector`);
      return id;
    });
    return { ids, vectors, payloads: list.map((p) => payloadIn(p.payload)) };
  }
  const b = batch!;
  const ids = parseIds(b.ids, 'batch.ids');
  if (!Array.isArray(b.vectors)) throw notSupported('named vectors (batch.vectors)');
  if (b.vectors.length !== ids.length) throw formatError(`batch.vectors has ${b.vectors.length} vectors for ${ids.length} ids`);
  const vectors = new Float32Array(ids.length * dim);
  (b.vectors as unknown[]).forEach((v, i) => writeVector(plainVector(v, `batch.vectors[${i}]`), dim, vectors, i * dim, `batch.vectors[${i}]`));
  if (b.payloads !== undefined && b.payloads !== null && b.payloads.length !== ids.length) {
    throw formatError(`batch.payloads has ${b.payloads.length} entries for ${ids.length} ids`);
  }
  return { ids, vectors, payloads: ids.map((_, i) => payloadIn(b.payloads?.[i])) };
}

/** Qdrant's Record for a stored point. */
export function recordOut(r: PointRecord, payload: PayloadSelector, withVector: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { id: r.id };
  if (payload.fetch) out.payload = payload.select(r.payload);
  if (withVector && r.vector !== undefined) out.vector = Array.from(r.vector);
  return out;
}

/** An id from a URL path: digits (any u64, exactly) or a UUID. */
export function pathId(text: string): Id {
  if (/^[0-9]+$/.test(text)) {
    const big = BigInt(text);
    if (big >= 1n << 64n) throw new HttpError(400, `Format error in path parameters: id: ${text} is above 2^64 - 1`);
    return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }
  try {
    return parseId(text, 'id');
  } catch (err) {
    throw new HttpError(400, (err as Error).message.replace('in JSON body', 'in path parameters'));
  }
}

export function registerPointRoutes(app: FastifyInstance, ctx: PointContext): void {
  const write = { querystring: schema.writeQuery, params: schema.collectionParams };
  const read = { querystring: schema.readQuery, params: schema.collectionParams };

  app.put('/collections/:name/points', { schema: { ...write, body: schema.upsert }, config: { write: true } }, async (request, reply) => {
    const name = collectionName(request);
    const meta = await ctx.collections.meta(name);
    const points = keepLast(parseUpsert(request.body as Body, meta.dim), meta.dim);
    if (meta.metric === 'cosine') rejectZeroVectors(points.ids, points.vectors, meta.dim);
    const signal = timeoutSignal(request);
    const wait = waitParam(request);
    if (points.ids.length > 0) {
      const anyPayload = points.payloads.some((p) => p !== undefined);
      await ctx.store.insert(name, points.ids, points.vectors, {
        ...(anyPayload ? { payloads: points.payloads } : {}),
        ...(signal === undefined ? {} : { signal }),
        wait,
      });
    }
    return updated(ctx, reply, !wait);
  });

  app.post('/collections/:name/points/delete', { schema: { ...write, body: schema.deletePoints }, config: { write: true } }, async (request, reply) => {
    const body = request.body as Body;
    rejectUnsupported(body, { shard_key: '`shard_key` (custom sharding)' });
    const hasPoints = body.points !== undefined && body.points !== null;
    const filter = requestFilter(body);
    if (hasPoints === (filter !== undefined)) throw formatError('expected either `points` (a list of point ids) or `filter`');
    const wait = waitParam(request);
    if (filter !== undefined) await ctx.store.deleteWhere(collectionName(request), filter, { wait });
    else await ctx.store.delete(collectionName(request), parseIds(body.points as unknown[], 'points'), { wait });
    return updated(ctx, reply, !wait);
  });

  app.post('/collections/:name/points', { schema: { ...read, body: schema.retrieve } }, async (request, reply) => {
    const body = request.body as Body;
    rejectUnsupported(body, { shard_key: '`shard_key` (custom sharding)' });
    const ids = parseIds(body.ids as unknown[], 'ids');
    const payload = payloadSelector(body.with_payload, true);
    const withVector = vectorWanted(body.with_vector, false);
    const records = await ctx.store.retrieve(collectionName(request), ids, { withVector, withPayload: payload.fetch });
    return ok(reply, records.map((r) => recordOut(r, payload, withVector)));
  });

  app.get('/collections/:name/points/:id', { schema: { querystring: schema.readQuery, params: schema.pointParams } }, async (request, reply) => {
    const id = pathId((request.params as { id: string }).id);
    const [record] = await ctx.store.retrieve(collectionName(request), [id], { withVector: true, withPayload: true });
    if (record === undefined) throw new HttpError(404, `Not found: No point with id ${showId(id)} found`);
    return ok(reply, recordOut(record, payloadSelector(true, true), true));
  });

  app.post('/collections/:name/points/count', { schema: { ...read, body: schema.count } }, async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    rejectUnsupported(body, UNSUPPORTED_READ_FIELDS);
    // always exact, with or without `exact`
    const filter = requestFilter(body);
    return ok(reply, { count: await ctx.store.count(collectionName(request), filter === undefined ? {} : { filter }) });
  });

  app.post('/collections/:name/points/scroll', { schema: { ...read, body: schema.scroll } }, async (request, reply) => {
    const body = request.body as Body;
    rejectUnsupported(body, { ...UNSUPPORTED_READ_FIELDS, order_by: '`order_by` (ordering by a payload field)' });
    const payload = payloadSelector(body.with_payload, true);
    const withVector = vectorWanted(body.with_vector, false);
    const offset = body.offset === undefined || body.offset === null ? undefined : parseId(body.offset, 'offset');
    const filter = requestFilter(body);
    const page = await ctx.store.scroll(collectionName(request), {
      ...(filter === undefined ? {} : { filter }),
      limit: (body.limit as number | null | undefined) ?? 10,
      withVector,
      withPayload: payload.fetch,
      ...(offset === undefined ? {} : { offset }),
    });
    return ok(reply, {
      points: page.points.map((r) => recordOut(r, payload, withVector)),
      next_page_offset: page.nextOffset ?? null,
    });
  });
}
