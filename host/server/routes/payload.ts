/**
 * Payload updates (set, overwrite, delete keys, clear; by ids or by filter)
 * and POST .../points/batch, with Qdrant's request and response shapes.
 * Every operation of a batch is checked before the first runs, so a bad
 * one changes nothing; they then run in order, each durable before the next
 * (as Qdrant runs them: a failure stops the batch, the ones before stay).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, QuiverError } from '../../errors.js';
import type { Id } from '../../ids.js';
import { checkUpdate } from '../../store/payload-updates.js';
import type { PayloadUpdate, PointSelection } from '../../store/store.js';
import { collectionName, ok, waitParam, type PointContext } from '../context.js';
import { formatError, HttpError, notSupported, parseIds, rejectUnsupported, rejectZeroVectors, requestFilter } from '../qdrant.js';
import * as schema from '../schemas.js';
import { keepLast, parseUpsert } from './points.js';

type Body = Record<string, unknown>;

/** One checked operation of a request: runs against the store. */
type Operation = (ctx: PointContext, name: string, wait: boolean) => Promise<unknown>;

const SHARD_KEY = { shard_key: '`shard_key` (custom sharding)' };

/** `points` or `filter` (exactly one) as a Store selection; `where` prefixes field names. */
function selection(body: Body, where: string): PointSelection {
  const hasPoints = body.points !== undefined && body.points !== null;
  const filter = requestFilter(body, `${where}filter`);
  if (hasPoints === (filter !== undefined)) throw formatError(`${where === '' ? '' : `${where.slice(0, -1)}: `}expected either \`points\` (a list of point ids) or \`filter\``);
  if (filter !== undefined) return { filter };
  if (!Array.isArray(body.points)) throw formatError(`${where}points must be a list of point ids`);
  return { ids: parseIds(body.points, `${where}points`) };
}

const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A payload update body as a checked operation (INVALID_ARGUMENT from checkUpdate is a 400, before anything runs). */
function payloadOperation(kind: 'set' | 'overwrite' | 'delete' | 'clear', body: unknown, where: string): Operation {
  if (!isObject(body)) throw formatError(`${where === '' ? 'the body' : where.slice(0, -1)} must be an object`);
  rejectUnsupported(body, SHARD_KEY);
  const select = selection(body, where);
  let update: PayloadUpdate;
  if (kind === 'set' || kind === 'overwrite') {
    if (!isObject(body.payload)) throw formatError(`${where}payload must be an object`);
    if (kind === 'overwrite' && body.key !== undefined && body.key !== null) throw notSupported('`key` in overwrite_payload');
    update = kind === 'set'
      ? { set: body.payload, ...(body.key === undefined || body.key === null ? {} : { key: body.key as string }) }
      : { overwrite: body.payload };
  } else if (kind === 'delete') {
    if (!Array.isArray(body.keys)) throw formatError(`${where}keys must be a list of keys`);
    update = { deleteKeys: body.keys as string[] };
  } else {
    update = { clear: true };
  }
  wrongInput(() => checkUpdate(update));
  return (ctx, name, wait) => ctx.store.updatePayload(name, select, update, { wait });
}

/** A coded INVALID_ARGUMENT from a check as Qdrant's 400. */
function wrongInput(check: () => unknown): void {
  try {
    check();
  } catch (err) {
    if (err instanceof QuiverError && err.code === ErrorCode.INVALID_ARGUMENT) throw formatError(err.message);
    throw err;
  }
}

/** Runs operations in order; an absent point is Qdrant's 404 "No point with id ... found". */
async function runAll(ctx: PointContext, request: FastifyRequest, ops: Operation[]): Promise<{ operation_id: number; status: string }[]> {
  const name = collectionName(request);
  const wait = waitParam(request);
  const out: { operation_id: number; status: string }[] = [];
  for (const op of ops) {
    try {
      await op(ctx, name, wait);
    } catch (err) {
      if (err instanceof QuiverError && err.code === ErrorCode.NOT_FOUND && err.message.startsWith('No point with id')) {
        throw new HttpError(404, `Not found: ${err.message}`);
      }
      throw err;
    }
    out.push({ operation_id: ctx.nextOperationId(), status: wait ? 'completed' : 'acknowledged' });
  }
  return out;
}

/** One operation of POST .../points/batch. */
async function batchOperation(ctx: PointContext, name: string, raw: unknown, i: number): Promise<Operation> {
  const where = `operations[${i}].`;
  if (!isObject(raw) || Object.keys(raw).length !== 1) throw formatError(`operations[${i}] must be an object with one operation`);
  const [kind, body] = Object.entries(raw)[0]!;
  switch (kind) {
    case 'set_payload':
      return payloadOperation('set', body, where);
    case 'overwrite_payload':
      return payloadOperation('overwrite', body, where);
    case 'delete_payload':
      return payloadOperation('delete', body, where);
    case 'clear_payload':
      return payloadOperation('clear', body, where);
    case 'delete': {
      if (!isObject(body)) throw formatError(`${where}delete must be an object`);
      rejectUnsupported(body, SHARD_KEY);
      const select = selection(body, `${where}delete.`);
      return (c, n, wait) => ('filter' in select ? c.store.deleteWhere(n, select.filter, { wait }) : c.store.delete(n, select.ids, { wait }));
    }
    case 'upsert': {
      if (!isObject(body)) throw formatError(`${where}upsert must be an object`);
      const meta = await ctx.collections.meta(name);
      const points = keepLast(parseUpsert(body, meta.dim), meta.dim);
      if (meta.metric === 'cosine') rejectZeroVectors(points.ids, points.vectors, meta.dim);
      const anyPayload = points.payloads.some((p) => p !== undefined);
      return (c, n, wait) => (points.ids.length === 0 ? Promise.resolve() : c.store.insert(n, points.ids as Id[], points.vectors, { ...(anyPayload ? { payloads: points.payloads } : {}), wait }));
    }
    case 'update_vectors':
    case 'delete_vectors':
      throw notSupported(`${where.slice(0, -1)}: ${kind} (named vectors)`);
    default:
      throw formatError(`${where.slice(0, -1)}: unknown operation ${JSON.stringify(kind)}; expected upsert, delete, set_payload, overwrite_payload, delete_payload or clear_payload`);
  }
}

export function registerPayloadRoutes(app: FastifyInstance, ctx: PointContext): void {
  const write = { querystring: schema.writeQuery, params: schema.collectionParams };
  const one = (kind: 'set' | 'overwrite' | 'delete' | 'clear') => async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const op = payloadOperation(kind, request.body, '');
    const [result] = await runAll(ctx, request, [op]);
    return ok(reply, result);
  };
  const config = { write: true };
  app.post('/collections/:name/points/payload', { schema: { ...write, body: schema.setPayload }, config }, one('set'));
  app.put('/collections/:name/points/payload', { schema: { ...write, body: schema.setPayload }, config }, one('overwrite'));
  app.post('/collections/:name/points/payload/delete', { schema: { ...write, body: schema.deletePayload }, config }, one('delete'));
  app.post('/collections/:name/points/payload/clear', { schema: { ...write, body: schema.clearPayload }, config }, one('clear'));
  app.post('/collections/:name/points/batch', { schema: { ...write, body: schema.batchUpdate }, config }, async (request, reply) => {
    const name = collectionName(request);
    const raw = (request.body as Body).operations as unknown[];
    const ops: Operation[] = [];
    for (const [i, op] of raw.entries()) ops.push(await batchOperation(ctx, name, op, i));
    return ok(reply, await runAll(ctx, request, ops));
  });
}
