import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SearchHits } from '../core/shard.js';
import type { CompiledFilter, Filter } from '../filter/filter.js';
import type { IdList } from '../ids.js';
import type { Payload } from '../payload.js';
import type { Store } from '../store/store.js';
import type { CountOptions, PayloadUpdate, PointRecord, PointSelection, ReadOptions, ScrollOptions, ScrollPage, SearchOptions, WriteOptions } from '../store/types.js';
import type { PayloadIndexInfo, PayloadIndexType } from '../core/payload-index.js';
import type { Collections } from './collections.js';
import { HttpError } from './qdrant.js';
import { rangeMessage, validationError } from './validation.js';

/**
 * What the point, payload, index and search routes ask of a store: a Store answers it, and
 * so does a cluster node's (ClusterStore, cluster-store.ts), so both serve
 * the same routes.
 */
export interface PointStore {
  search(name: string, query: Float32Array, k: number, options?: SearchOptions): Promise<SearchHits>;
  count(name: string, options?: CountOptions): Promise<number>;
  get(name: string, ids: IdList): Promise<(Float32Array | undefined)[]>;
  retrieve(name: string, ids: IdList, options?: ReadOptions): Promise<PointRecord[]>;
  scroll(name: string, options?: ScrollOptions): Promise<ScrollPage>;
  insert(name: string, ids: IdList, vectors: Float32Array, options?: WriteOptions & { signal?: AbortSignal; payloads?: readonly Payload[] }): Promise<unknown>;
  delete(name: string, ids: IdList, options?: WriteOptions): Promise<unknown>;
  deleteWhere(name: string, filter: Filter | CompiledFilter, options?: WriteOptions): Promise<unknown>;
  updatePayload(name: string, select: PointSelection, update: PayloadUpdate, options?: WriteOptions): Promise<unknown>;
  createPayloadIndex(name: string, field: string, type: PayloadIndexType, options?: WriteOptions): Promise<{ acknowledged?: true }>;
  dropPayloadIndex(name: string, field: string, options?: WriteOptions): Promise<{ acknowledged?: true }>;
  payloadIndexes(name: string): Promise<PayloadIndexInfo[]>;
}

/** What the point, payload, index and search routes get. */
export interface PointContext {
  store: PointStore;
  collections: Pick<Collections, 'meta'>;
  nextOperationId(): number;
}

/** What every route module gets. */
export interface ServerContext {
  store: Store;
  collections: Collections;
  /** Qdrant's operation_id: one counter for every write this server applied. */
  nextOperationId(): number;
  /** Whether /readyz says ready. */
  isReady(): boolean;
  testHooks: boolean;
  compatVersion: string;
  quiverVersion: string;
}

/** Qdrant's `time`: seconds spent on the request so far (to the nanosecond). */
export function elapsed(reply: FastifyReply): number {
  return Math.round(reply.elapsedTime * 1e6) / 1e9;
}

/** Qdrant's success body. */
export function ok(reply: FastifyReply, result: unknown): FastifyReply {
  return reply.send({ result, status: 'ok', time: elapsed(reply) });
}

/**
 * Qdrant's UpdateResult: `completed` for a write that is durable and
 * applied (wait=true, and an absent wait), `acknowledged` for one that is
 * in the log and applied shortly after (wait=false).
 */
export function updated(ctx: Pick<ServerContext, 'nextOperationId'>, reply: FastifyReply, acknowledged = false, extra: Record<string, unknown> = {}): FastifyReply {
  return ok(reply, { operation_id: ctx.nextOperationId(), status: acknowledged ? 'acknowledged' : 'completed', ...extra });
}

/** The `wait` query parameter: false only when it says so (quiver's default is true, stricter than Qdrant's). */
export function waitParam(request: FastifyRequest): boolean {
  return (request.query as { wait?: string } | undefined)?.wait !== 'false';
}

export interface NameParams {
  name: string;
}

/** The collection a request names. */
export function collectionName(request: FastifyRequest): string {
  return (request.params as NameParams).name;
}

/** Longest delay a Node timer takes (ms); AbortSignal.timeout throws past it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const MAX_U64 = (1n << 64n) - 1n;

/**
 * Qdrant's `timeout` query parameter (whole seconds, an unsigned 64-bit
 * integer, at least 1) in milliseconds. A timeout longer than a Node timer
 * can wait (about 24.8 days) waits that long: no request runs that long.
 */
export function parseTimeout(text: string): number {
  if (!/^[0-9]+$/.test(text)) throw new HttpError(400, `Format error in query parameters: timeout: ${JSON.stringify(text)} is not a whole number of seconds`);
  const seconds = BigInt(text);
  if (seconds > MAX_U64) throw new HttpError(400, `Format error in query parameters: timeout: ${text} is larger than an unsigned 64-bit integer`);
  if (seconds === 0n) throw validationError('query parameters', [{ field: 'timeout', message: rangeMessage(0, 1, undefined) }]);
  return seconds >= BigInt(Math.ceil(MAX_TIMER_MS / 1000)) ? MAX_TIMER_MS : Number(seconds) * 1000;
}

function timeoutText(request: FastifyRequest): string | undefined {
  const t = (request.query as { timeout?: unknown } | undefined)?.timeout;
  return typeof t === 'string' ? t : undefined;
}

/**
 * Checks `timeout` on every route whose query schema takes one, before the
 * handler runs, so a bad one is refused whether or not the route uses it.
 */
export async function checkTimeoutHook(request: FastifyRequest): Promise<void> {
  const schema = request.routeOptions.schema?.querystring as { properties?: Record<string, unknown> } | undefined;
  const text = timeoutText(request);
  if (text !== undefined && schema?.properties?.timeout !== undefined) parseTimeout(text);
}

/**
 * An AbortSignal for Qdrant's `timeout` query parameter, or undefined
 * without one.
 */
export function timeoutSignal(request: FastifyRequest): AbortSignal | undefined {
  const text = timeoutText(request);
  return text === undefined ? undefined : AbortSignal.timeout(parseTimeout(text));
}
