/**
 * Qdrant's REST shapes, and the translation between them and the Store's:
 * ids, vectors, payload selection, distances to scores, error bodies.
 */
import type { MetricName } from '../core/abi.js';
import type { FastifyReply } from 'fastify';
import { compileFilter, type CompiledFilter } from '../filter/filter.js';
import { canonicalUuid, type Id } from '../ids.js';

/** The Qdrant version GET / reports: clients check major and minor (within one). */
export const QDRANT_COMPAT_VERSION = '1.19.0';

/** Largest finite float32. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** An error with the HTTP status and message Qdrant would answer with. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly headers: Record<string, string>;

  constructor(statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.headers = headers;
  }
}

/** 400 with Qdrant's "Wrong input" prefix: the request is well formed but its values are not. */
export function wrongInput(message: string): HttpError {
  return new HttpError(400, `Wrong input: ${message}`);
}

/** 400 with Qdrant's "Format error in JSON body" prefix: a value of the wrong kind. */
export function formatError(message: string): HttpError {
  return new HttpError(400, `Format error in JSON body: ${message}`);
}

/** 400 for a Qdrant feature quiver does not have. */
export function notSupported(feature: string): HttpError {
  return new HttpError(400, `Bad request: ${feature} is not supported by quiver`);
}

export function collectionNotFound(name: string): HttpError {
  return new HttpError(404, `Not found: Collection \`${name}\` doesn't exist!`);
}

/** Qdrant distance names and quiver metrics. */
const DISTANCE_TO_METRIC: Record<string, MetricName> = { Cosine: 'cosine', Euclid: 'l2', Dot: 'ip' };
const METRIC_TO_DISTANCE: Record<MetricName, string> = { cosine: 'Cosine', l2: 'Euclid', ip: 'Dot' };

export function metricOf(distance: unknown): MetricName {
  if (typeof distance === 'string') {
    const metric = DISTANCE_TO_METRIC[distance];
    if (metric !== undefined) return metric;
    if (distance === 'Manhattan') throw notSupported('the Manhattan distance');
  }
  throw formatError(`unknown distance ${JSON.stringify(distance)}: expected one of Cosine, Euclid, Dot`);
}

export function distanceOf(metric: MetricName): string {
  return METRIC_TO_DISTANCE[metric];
}

/**
 * Qdrant's score for a quiver distance. Cosine and Dot are similarities
 * (higher is better): quiver's distance there is 1 - dot, so score = 1 - d.
 * Euclid is the Euclidean distance (lower is better): quiver keeps the
 * squared distance, so score = sqrt(d).
 */
export function scoreOf(metric: MetricName, distance: number): number {
  if (metric === 'l2') return Math.sqrt(Math.max(0, distance));
  return 1 - distance;
}

/** Does a score pass Qdrant's score_threshold ("better than or equal")? */
export function passesThreshold(metric: MetricName, score: number, threshold: number | null | undefined): boolean {
  if (threshold === undefined || threshold === null) return true;
  return metric === 'l2' ? score <= threshold : score >= threshold;
}

// ------------------------------------------------------------------ ids

/**
 * A Qdrant point id from JSON: an unsigned integer (exact only up to
 * 2^53 - 1, as JSON numbers are doubles) or a UUID in any of Qdrant's text
 * forms (hyphenated, simple, braced, urn:uuid:), returned hyphenated and
 * lowercase. Nothing else: no whitespace around it, no other text.
 */
export function parseId(value: unknown, where: string): Id {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) {
      if (!Number.isSafeInteger(value)) {
        throw formatError(`${where}: integer id ${value} is above 2^53 - 1 and cannot be read exactly from JSON (send it through POST /collections/{name}/arrow as uint64)`);
      }
      return value;
    }
    throw formatError(`${where}: ${value} is not a valid point id; expected an unsigned integer or a UUID`);
  }
  if (typeof value === 'string') {
    // exactly a UUID: " <uuid>" is not one (Qdrant refuses it too)
    const uuid = canonicalUuid(value);
    if (uuid !== undefined) return uuid;
    throw formatError(`${where}: ${JSON.stringify(value)} is not a valid point id; expected an unsigned integer or a UUID`);
  }
  throw formatError(`${where}: expected an unsigned integer or a UUID as point id (got ${value === null ? 'null' : typeof value})`);
}

export function parseIds(values: readonly unknown[], where: string): Id[] {
  return values.map((v, i) => parseId(v, `${where}[${i}]`));
}

/** A key equal for equal ids (1 and 1n; UUIDs in one text form). */
export function idKey(id: Id): string {
  return typeof id === 'string' ? id : `#${String(id)}`;
}

/** An id for a message. */
export function showId(id: Id): string {
  return typeof id === 'string' ? id : String(id);
}

// ------------------------------------------------------------------ vectors

/**
 * A plain vector (Qdrant's unnamed dense vector) from a JSON value: an
 * array of numbers, or `{"": [...]}` (the default vector named explicitly, once).
 * Named, sparse and multi vectors are not supported.
 */
export function plainVector(value: unknown, where: string, named = true): unknown[] {
  if (Array.isArray(value)) {
    if (value.length > 0 && Array.isArray(value[0])) throw notSupported(`multi-vectors (${where})`);
    return value;
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    // one level only: {"": {"": [...]}} is not a vector (and deep nesting must not recurse)
    if (keys.length === 1 && keys[0] === '' && named) return plainVector((value as Record<string, unknown>)[''], `${where}[""]`, false);
    if ('indices' in value && 'values' in value) throw notSupported(`sparse vectors (${where})`);
    if ('text' in value || 'image' in value || 'object' in value) throw notSupported(`inference objects (${where})`);
    throw notSupported(`named vectors (${where})`);
  }
  throw formatError(`${where}: expected a vector (an array of numbers)`);
}

/** Writes a JSON vector into `out` at `at`, checking dimension, type and float32 range. */
export function writeVector(values: unknown[], dim: number, out: Float32Array, at: number, where: string): void {
  if (values.length !== dim) throw wrongInput(`Vector dimension error: expected dim: ${dim}, got ${values.length}`);
  for (let j = 0; j < dim; j++) {
    const x = values[j];
    if (typeof x !== 'number') {
      throw formatError(`${where}[${j}]: expected a number (got ${JSON.stringify(x) ?? typeof x}); JSON has no NaN or Infinity`);
    }
    // JSON numbers are finite doubles; those beyond float32 would become Infinity
    if (x > FLOAT32_MAX || x < -FLOAT32_MAX) {
      throw formatError(`${where}[${j}]: ${x} is outside the float32 range`);
    }
    out[at + j] = x;
  }
}

/**
 * Under Cosine a zero vector has no direction and the Store refuses it part
 * way through a batch; refusing it up front keeps the batch all-or-nothing.
 */
export function rejectZeroVectors(ids: readonly Id[], flat: Float32Array, dim: number): void {
  for (let i = 0; i < ids.length; i++) {
    let zero = true;
    for (let j = i * dim; j < (i + 1) * dim && zero; j++) zero = flat[j] === 0;
    if (zero) throw wrongInput(`the vector of point ${showId(ids[i]!)} is all zeros; the Cosine distance needs a non-zero vector`);
  }
}

export function toVector(values: unknown[], dim: number, where: string): Float32Array {
  const out = new Float32Array(dim);
  writeVector(values, dim, out, 0, where);
  return out;
}

// ------------------------------------------------------------------ payloads

export type QdrantPayload = Record<string, unknown>;

/** What to return of each payload: nothing, everything, or some keys. */
export interface PayloadSelector {
  /** Whether payloads are needed at all. */
  fetch: boolean;
  select(payload: unknown): QdrantPayload;
}

const NO_PAYLOAD: PayloadSelector = { fetch: false, select: () => ({}) };
const ALL_PAYLOAD: PayloadSelector = { fetch: true, select: (p) => (isObject(p) ? p : {}) };

function isObject(value: unknown): value is QdrantPayload {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function getPath(obj: QdrantPayload, path: string[]): { found: boolean; value?: unknown } {
  let cur: unknown = obj;
  for (const key of path) {
    if (!isObject(cur) || !Object.hasOwn(cur, key)) return { found: false };
    cur = cur[key];
  }
  return { found: true, value: cur };
}

function setPath(obj: QdrantPayload, path: string[], value: unknown): void {
  let cur = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const next = cur[key];
    if (!isObject(next)) cur[key] = {};
    cur = cur[key] as QdrantPayload;
  }
  cur[path[path.length - 1]!] = value;
}

function include(keys: string[]): PayloadSelector {
  const paths = keys.map((k) => k.split('.'));
  return {
    fetch: keys.length > 0,
    select(p) {
      const out: QdrantPayload = {};
      if (!isObject(p)) return out;
      for (const path of paths) {
        const got = getPath(p, path);
        if (got.found) setPath(out, path, got.value);
      }
      return out;
    },
  };
}

function exclude(keys: string[]): PayloadSelector {
  const paths = keys.map((k) => k.split('.'));
  return {
    fetch: true,
    select(p) {
      if (!isObject(p)) return {};
      const out = structuredClone(p);
      for (const path of paths) {
        const parent = path.length === 1 ? out : getPath(out, path.slice(0, -1)).value;
        if (isObject(parent)) delete parent[path[path.length - 1]!];
      }
      return out;
    },
  };
}

/**
 * Qdrant's `with_payload`: true / false, a list of keys to include, or
 * `{include: [...]}` / `{exclude: [...]}`. Keys may be dotted paths into
 * nested objects.
 */
export function payloadSelector(value: unknown, byDefault: boolean): PayloadSelector {
  if (value === undefined || value === null) return byDefault ? ALL_PAYLOAD : NO_PAYLOAD;
  if (value === true) return ALL_PAYLOAD;
  if (value === false) return NO_PAYLOAD;
  if (Array.isArray(value)) return include(value as string[]);
  if (isObject(value)) {
    if (Array.isArray(value.include)) return include(value.include as string[]);
    if (Array.isArray(value.exclude)) return exclude(value.exclude as string[]);
  }
  throw formatError('with_payload: expected a boolean, a list of keys, {include: [...]} or {exclude: [...]}');
}

/** Qdrant's `with_vector`: true / false; a list names vectors, and there are none by name. */
export function vectorWanted(value: unknown, byDefault: boolean): boolean {
  if (value === undefined || value === null) return byDefault;
  if (typeof value === 'boolean') return value;
  if (Array.isArray(value)) {
    if (value.length === 0) return false;
    if (value.every((v) => v === '')) return true;
    throw notSupported('named vectors (with_vector)');
  }
  throw formatError('with_vector: expected a boolean or a list of vector names');
}

/** Rejects fields Qdrant has and quiver does not, unless they are absent or null. */
export function rejectUnsupported(body: Record<string, unknown>, fields: Record<string, string>): void {
  for (const [field, what] of Object.entries(fields)) {
    const v = body[field];
    if (v !== undefined && v !== null) throw notSupported(what);
  }
}

/** Fields of Qdrant's read requests quiver has no use for on one node, and those it cannot do. */
export const UNSUPPORTED_READ_FIELDS: Record<string, string> = {
  shard_key: '`shard_key` (custom sharding)',
};

/**
 * A request's `filter`, checked and compiled before anything runs (a bad
 * or unsupported condition is a 400 naming it); undefined when absent or
 * null. The Store takes the compiled filter as it is.
 */
export function requestFilter(body: Record<string, unknown>, where = 'filter'): CompiledFilter | undefined {
  const f = body.filter;
  if (f === undefined || f === null) return undefined;
  return compileFilter(f, where);
}

/** The planner's paths of filtered searches, one list per search (each shard's path), as a response header. */
export function filterPathsHeader(reply: FastifyReply, paths: readonly (readonly string[] | undefined)[]): void {
  if (paths.some((p) => p !== undefined)) reply.header('quiver-filter-paths', paths.map((p) => (p ?? []).join(',')).join(';'));
}

/** `using`: the vector name; only the default (unnamed) one exists. */
export function checkUsing(using: unknown): void {
  if (using !== undefined && using !== null && using !== '') throw notSupported(`named vectors (using: ${JSON.stringify(using)})`);
}

/** Qdrant's JSON for an id: numbers and strings as they are, bigints as exact digits (see stringify). */
export type JsonId = Id;

/**
 * JSON.stringify that also writes bigints (ids above 2^53) as plain
 * integer literals, so they reach the client exactly.
 */
export function stringify(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (!(err instanceof TypeError) || !/BigInt/i.test(err.message)) throw err;
  }
  const marker = `\u0000bigint:${Math.random().toString(36).slice(2)}:`;
  const text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${marker}${v}` : v));
  // the marker's NUL is escaped by JSON.stringify as \u0000
  const escaped = JSON.stringify(marker).slice(1, -1);
  return text.split(`"${escaped}`).map((part, i) => (i === 0 ? part : part.replace(/^(\d+)"/, '$1'))).join('');
}
