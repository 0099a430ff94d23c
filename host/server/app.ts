/**
 * buildServer(store, options): a Fastify instance speaking the part of
 * Qdrant's REST API that clients use most, over any open Store. It does not
 * listen and does not own the store: the caller listens, and closes the
 * store after closing the server (see cli.ts).
 */
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Store } from '../store/store.js';
import type { DatasetInfo } from '../store/types.js';
import { ARROW_FILE, ARROW_STREAM } from './arrow.js';
import { authHook } from './auth.js';
import { Collections } from './collections.js';
import { checkTimeoutHook, elapsed, type ServerContext } from './context.js';
import { MAX_PARAM_LENGTH, toHttpError } from './http-errors.js';
import { HttpError, QDRANT_COMPAT_VERSION, stringify } from './qdrant.js';
import { registerCollectionRoutes } from './routes/collections.js';
import { registerIndexRoutes } from './routes/indexes.js';
import { registerPayloadRoutes } from './routes/payload.js';
import { registerPointRoutes } from './routes/points.js';
import { registerSearchRoutes } from './routes/search.js';
import { registerServiceRoutes } from './routes/service.js';
import { registerClusterRoutes } from './routes/cluster.js';
import { registerSnapshotRoutes } from './routes/snapshots.js';

/** Default largest request body: 32 MiB. */
export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

export interface ServerOptions {
  /** Require this key (header `api-key` or `Authorization: Bearer`) on every route but the probes. */
  apiKey?: string | undefined;
  /** A second key that may only read (searches, retrieval, info); writes with it get 403. */
  readOnlyApiKey?: string | undefined;
  /** Largest request body in bytes, JSON or Arrow (default 32 MiB); larger gets 413. */
  bodyLimit?: number | undefined;
  /** Fastify's logger option (default: off). */
  logger?: FastifyServerOptions['logger'];
  /** Log a line per request received and answered (default: no). */
  requestLogging?: boolean | undefined;
  /** Mount the test-only routes (POST /_test/hang). */
  testHooks?: boolean | undefined;
  /** The Qdrant version GET / reports (clients check major.minor within one). */
  compatVersion?: string | undefined;
}

export interface InflightRequest {
  method: string;
  url: string;
  runningMs: number;
}

/** What the server adds to the Fastify instance (as `app.quiver`). */
export interface QuiverServerState {
  /** /readyz answers 503 once this is false (set it when shutting down). */
  ready: boolean;
  /** Requests received and not yet answered. */
  inflight(): InflightRequest[];
}

declare module 'fastify' {
  interface FastifyInstance {
    quiver: QuiverServerState;
  }
  interface FastifyContextConfig {
    /** The route changes data (a read-only API key may not call it). */
    write?: boolean;
  }
}

let cachedVersion: string | undefined;

/** quiver's own version, from the package.json above this file (in host/ or dist/host/). */
export function quiverVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  cachedVersion = 'unknown';
  for (let url = new URL('.', import.meta.url); url.pathname !== '/'; url = new URL('..', url)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'quiver' && typeof pkg.version === 'string') {
        cachedVersion = pkg.version;
        break;
      }
    } catch {
      // not here; look further up
    }
  }
  return cachedVersion;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function httpMetrics(registry: Registry): { requests: Counter<'method' | 'route' | 'status'>; duration: Histogram<'method' | 'route'> } {
  return {
    requests: metric(registry, 'quiver_http_requests_total', () => new Counter({
      name: 'quiver_http_requests_total',
      help: 'HTTP requests answered, by method, route and status code',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    })),
    duration: metric(registry, 'quiver_http_request_duration_seconds', () => new Histogram({
      name: 'quiver_http_request_duration_seconds',
      help: 'Time from receiving an HTTP request to sending its response',
      labelNames: ['method', 'route'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    })),
  };
}

function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

/** Any failure of a request as Qdrant's error body. */
function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const name = (request.params as { name?: string } | null | undefined)?.name;
  const http = toHttpError(err, name);
  if (http.statusCode >= 500) request.log.error({ err }, 'request failed');
  void reply.code(http.statusCode).headers(http.headers).send({ status: { error: http.message }, time: elapsed(reply) });
}

/**
 * Node's 'clientError': the bytes on a connection are not an HTTP request
 * (or its headers are over the limit). The answer is Qdrant's error body,
 * written straight to the socket, which is then closed, as Node does.
 */
function clientError(this: FastifyInstance, err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request header fields too large: the request line and headers are over the server\'s limit']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Timeout error: the request was not received in time']
      : [400, `Bad request: malformed HTTP request${err.code === undefined ? '' : ` (${err.code})`}`];
  const body = JSON.stringify({ status: { error: message }, time: 0 });
  this.log.trace({ err }, 'client error');
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

/**
 * A Fastify instance set up as every quiver server is (body limits, strict
 * validation, Qdrant's error bodies, auth, timeouts, in-flight requests and
 * HTTP metrics in `registry`), with no routes yet: buildServer's, and a
 * cluster node's (cluster-app.ts).
 */
export function baseServer(options: ServerOptions, registry: Registry): { app: FastifyInstance; state: QuiverServerState } {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1) throw new RangeError(`bodyLimit must be a positive integer (got ${String(bodyLimit)})`);
  const app = Fastify({
    logger: options.logger ?? false,
    // per-request lines only at debug and trace
    logController: new LogController({ disableRequestLogging: options.requestLogging !== true }),
    bodyLimit,
    return503OnClosing: true,
    // Qdrant takes collection names up to 255 characters; the schemas say so (422), not the router
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
    // bodies are checked as sent: no coercion ("1.5" is not a number, null is not 0), no silent
    // removal; verbose: errors carry the value and its schema, for Qdrant's "value V invalid, must be ..."
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, strict: false, verbose: true } },
    // a path the router cannot decode (bad percent-encoding, a parameter past maxParamLength)
    frameworkErrors: (err, request, reply) => sendError(err, request, reply),
    // what Node's HTTP parser refuses before there is a request (bad syntax, headers too large)
    clientErrorHandler: clientError,
  });

  const state: QuiverServerState = {
    ready: true,
    inflight: () => {
      const now = performance.now();
      return [...inflight.values()].map((r) => ({ method: r.method, url: r.url, runningMs: Math.round(now - r.started) }));
    },
  };
  app.decorate('quiver', state);

  // bigints (ids above 2^53) go out as exact integer literals
  app.setReplySerializer((payload) => stringify(payload));

  // JSON and Arrow only: a text/plain body is a mistake, not a string to validate
  app.removeContentTypeParser('text/plain');
  for (const type of [ARROW_STREAM, ARROW_FILE]) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));
  }

  // in-flight requests (for the shutdown report) and HTTP metrics
  const inflight = new Map<string, { method: string; url: string; started: number }>();
  const metrics = httpMetrics(registry);
  app.addHook('onRequest', async (request) => {
    inflight.set(request.id, { method: request.method, url: request.url, started: performance.now() });
  });
  app.addHook('onResponse', async (request, reply) => {
    inflight.delete(request.id);
    const route = routeOf(request);
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
  app.addHook('onRequestAbort', async (request) => {
    inflight.delete(request.id);
  });

  const auth = authHook({ apiKey: options.apiKey, readOnlyApiKey: options.readOnlyApiKey });
  if (auth !== undefined) app.addHook('onRequest', auth);

  app.addHook('preHandler', checkTimeoutHook);

  // a POST without a body is an empty request object (count, scroll, ...)
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) request.body = {};
  });

  app.setErrorHandler(sendError);

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0];
    void reply.code(404).send({
      status: { error: `Not found: no route ${request.method} ${path} (quiver serves a subset of Qdrant's REST API; see docs/api.md)` },
      time: elapsed(reply),
    });
  });

  // once closing, every response closes its connection: a keep-alive
  // socket that was busy when close() began must not linger afterwards
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    state.ready = false;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });
  return { app, state };
}

/** A Fastify instance serving `store` (not listening yet). */
export function buildServer(store: Store, options: ServerOptions = {}): FastifyInstance {
  const { app, state } = baseServer(options, store.registry);
  const collections = new Collections(store);
  let operationId = 0;
  const ctx: ServerContext = {
    store,
    collections,
    nextOperationId: () => operationId++,
    isReady: () => state.ready,
    testHooks: options.testHooks === true,
    compatVersion: options.compatVersion ?? QDRANT_COMPAT_VERSION,
    quiverVersion: quiverVersion(),
  };

  registerServiceRoutes(app, ctx);
  registerCollectionRoutes(app, ctx);
  registerPointRoutes(app, ctx);
  registerPayloadRoutes(app, ctx);
  registerIndexRoutes(app, ctx);
  registerSearchRoutes(app, ctx);
  registerSnapshotRoutes(app, { store, exists: (name) => store.listDatasets().includes(name), recovered: (info) => ctx.collections.remember(info as DatasetInfo) });
  registerClusterRoutes(app, ctx);

  app.addHook('onClose', async () => {
    state.ready = false;
    collections.dispose();
  });
  return app;
}

export { HttpError };
