import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../store/store.js';
import type { Collections } from './collections.js';
import { HttpError } from './qdrant.js';

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

/** Qdrant's UpdateResult for a write that has been applied. */
export function updated(ctx: ServerContext, reply: FastifyReply, extra: Record<string, unknown> = {}): FastifyReply {
  return ok(reply, { operation_id: ctx.nextOperationId(), status: 'completed', ...extra });
}

export interface NameParams {
  name: string;
}

/** The collection a request names. */
export function collectionName(request: FastifyRequest): string {
  return (request.params as NameParams).name;
}

/**
 * An AbortSignal for Qdrant's `timeout` query parameter (seconds), or
 * undefined without one.
 */
export function timeoutSignal(request: FastifyRequest): AbortSignal | undefined {
  const t = (request.query as { timeout?: string } | undefined)?.timeout;
  if (t === undefined) return undefined;
  const seconds = Number(t);
  if (!(seconds > 0)) throw new HttpError(400, 'Format error in query parameters: timeout must be a positive number of seconds');
  return AbortSignal.timeout(seconds * 1000);
}
