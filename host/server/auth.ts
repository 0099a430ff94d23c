/**
 * API keys, as Qdrant takes them: the `api-key` header or
 * `Authorization: Bearer <key>`. Keys are compared in constant time: both
 * sides are hashed to 32 bytes first, so neither the length nor the content
 * of the key leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './qdrant.js';

export interface AuthOptions {
  /** Full access. */
  apiKey?: string | undefined;
  /** Read-only access: searches and reads, no writes (403 on a write). */
  readOnlyApiKey?: string | undefined;
}

/** Paths that never need a key (probes). */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/livez', '/readyz']);

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Constant-time equality of a presented key and a stored key's digest. */
export function keyMatches(presented: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(presented), expected);
}

/** The key a request presents, if any. */
export function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['api-key'];
  if (typeof header === 'string' && header.length > 0) return header;
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth);
    if (m !== null) return m[1]!.trim();
  }
  return undefined;
}

/**
 * An onRequest hook enforcing the keys, or undefined when no key is set.
 * Routes mark themselves as writes with `config: { write: true }`.
 */
export function authHook(options: AuthOptions): ((request: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined {
  if (options.apiKey === undefined && options.readOnlyApiKey === undefined) return undefined;
  const full = options.apiKey === undefined ? undefined : digest(options.apiKey);
  const readOnly = options.readOnlyApiKey === undefined ? undefined : digest(options.readOnlyApiKey);
  return async (request) => {
    const path = request.url.split('?', 1)[0]!;
    if (OPEN_PATHS.has(path)) return;
    const key = presentedKey(request);
    if (key === undefined) throw new HttpError(401, 'Unauthorized: Must provide an API key or an Authorization bearer token');
    // check both keys whatever the first result, so timing does not tell which matched
    const isFull = full !== undefined && keyMatches(key, full);
    const isReadOnly = readOnly !== undefined && keyMatches(key, readOnly);
    if (isFull) return;
    if (isReadOnly) {
      if (request.routeOptions.config?.write === true || request.method === 'PUT' || request.method === 'DELETE' || request.method === 'PATCH') {
        throw new HttpError(403, 'Forbidden: Write access is required; this API key is read-only');
      }
      return;
    }
    throw new HttpError(401, 'Unauthorized: Invalid API key or JWT');
  };
}
