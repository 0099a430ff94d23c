/**
 * Qdrant's two kinds of bad request, told apart as Qdrant tells them:
 *
 * - a value of the wrong kind (a string for a number, a negative number for
 *   an unsigned field, a missing field, an unknown enum value) fails
 *   deserialization: 400 `Format error in JSON body: …`;
 * - a value of the right kind outside its range (`shard_number: 0`,
 *   `vectors.size: 65537`, `?timeout=0`) fails validation: 422
 *   `Validation error in JSON body: [field: value V invalid, must be from
 *   MIN to MAX]`, several fields joined with "; ".
 *
 * Both name the part of the request (`JSON body`, `query parameters`,
 * `path parameters`) and the field as a dotted path with `[i]` for array
 * indexes (`searches[0].params.hnsw_ef`).
 */
import { HttpError } from './qdrant.js';

export type RequestPart = 'JSON body' | 'query parameters' | 'path parameters';

export interface Violation {
  /** The field, e.g. `hnsw_config.ef_construct`. */
  field: string;
  /** What is wrong, e.g. `value 0 invalid, must be 4 or larger`. */
  message: string;
}

/** 422 with Qdrant's validation message for one or more fields. */
export function validationError(part: RequestPart, violations: readonly Violation[]): HttpError {
  return new HttpError(422, `Validation error in ${part}: [${violations.map((v) => `${v.field}: ${v.message}`).join('; ')}]`);
}

/** A value as Qdrant prints it in a validation message (strings quoted). */
function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Qdrant's wording of a range: "must be from 1 to 10", "must be 1 or larger", "must be 10 or smaller". */
export function rangeMessage(value: unknown, min: number | undefined, max: number | undefined, unit = ''): string {
  const u = unit === '' ? '' : ` ${unit}`;
  const rule = min !== undefined && max !== undefined ? `must be from ${min} to ${max}${u}`
    : min !== undefined ? (unit === '' ? `must be ${min} or larger` : `must be at least ${min}${u}`)
      : (unit === '' ? `must be ${max} or smaller` : `must be at most ${max}${u}`);
  return `value ${show(value)} invalid, ${rule}`;
}

/** 422 when `value` is outside [min, max]; nothing otherwise. */
export function checkRange(part: RequestPart, field: string, value: number, min: number, max: number | undefined): void {
  if (value < min || (max !== undefined && value > max)) throw validationError(part, [{ field, message: rangeMessage(value, min, max) }]);
}

/** Ajv's instance path (`/searches/0/params/hnsw_ef`) as Qdrant's field name (`searches[0].params.hnsw_ef`). */
export function fieldName(instancePath: string): string {
  let out = '';
  for (const raw of instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^[0-9]+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

/** The parts of an Ajv error this module reads (with Ajv's `verbose` option on). */
export interface SchemaIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
  data?: unknown;
  parentSchema?: Record<string, unknown>;
}

const RANGE_KEYWORDS = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']);
const LENGTH_KEYWORDS = new Set(['minLength', 'maxLength']);

/**
 * Qdrant names the collection in a path `collection_name`; quiver's routes
 * call the parameter `name`.
 */
const PATH_FIELDS: Record<string, string> = { name: 'collection_name' };

function partOf(context: string | undefined): RequestPart {
  return context === 'querystring' ? 'query parameters' : context === 'params' ? 'path parameters' : 'JSON body';
}

/** A Fastify schema failure (Ajv errors and the part they are about) as Qdrant's 400 or 422. */
export function fromSchemaIssues(issues: readonly SchemaIssue[], context: string | undefined): HttpError {
  const part = partOf(context);
  const first = issues[0];
  let field = fieldName(first?.instancePath ?? '');
  if (part === 'path parameters') field = PATH_FIELDS[field] ?? field;
  if (first !== undefined) {
    const schema = first.parentSchema ?? {};
    const num = (key: string): number | undefined => (typeof schema[key] === 'number' ? schema[key] as number : undefined);
    // every ranged number of Qdrant's API is unsigned: below zero is a deserialization failure
    const negative = typeof first.data === 'number' && first.data < 0 && first.keyword === 'minimum' && (num('minimum') ?? -1) >= 0;
    if (RANGE_KEYWORDS.has(first.keyword) && !negative) {
      return validationError(part, [{ field, message: rangeMessage(first.data, num('minimum'), num('maximum')) }]);
    }
    if (LENGTH_KEYWORDS.has(first.keyword)) {
      return validationError(part, [{ field, message: rangeMessage(first.data, num('minLength'), num('maxLength'), 'characters') }]);
    }
    if (negative) {
      return new HttpError(400, `Format error in ${part}: ${field}: invalid value ${show(first.data)}, expected an unsigned integer`);
    }
  }
  const what = first?.message ?? 'invalid';
  return new HttpError(400, `Format error in ${part}: ${field === '' ? '' : `${field}: `}${what}`);
}
