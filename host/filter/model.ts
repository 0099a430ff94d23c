import { canonicalUuid, type Id } from '../ids.js';
import { payloadStringBytes } from '../payload.js';
import type { Bounds, Cond, Path } from './ast.js';

/**
 * The reference evaluator: Qdrant's filter semantics (docs/filtering.md,
 * verified against Qdrant's source) over a JSON payload, in plain JS. It is
 * the model the core's compiled filters are tested against, so it favours
 * being obviously right over being fast.
 *
 * `payload` is the point's JSON value as decodePayload returns it
 * (undefined: no payload); `id` its external id.
 */
export function matches(filter: Cond, id: Id, payload: unknown): boolean {
  return evaluate(filter, normaliseId(id), payload);
}

/** The values a path resolves to; an array at the end stays one value. */
export function resolvePath(payload: unknown, path: Path): unknown[] {
  const out: unknown[] = [];
  walk(payload, path, 0, out);
  return out;
}

function walk(v: unknown, path: Path, i: number, out: unknown[]): void {
  if (i === path.length) {
    if (v !== undefined) out.push(v);
    return;
  }
  const step = path[i]!;
  if ('key' in step) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.prototype.hasOwnProperty.call(v, step.key)) {
      walk((v as Record<string, unknown>)[step.key], path, i + 1, out);
    }
  } else if ('each' in step) {
    if (Array.isArray(v)) for (const e of v) walk(e, path, i + 1, out);
  } else if (Array.isArray(v) && step.index < v.length) {
    walk(v[step.index], path, i + 1, out);
  }
}

/** A leaf test on the values: any value, an array value through its elements (one level). */
function anyElement(values: unknown[], test: (e: unknown) => boolean): boolean {
  return values.some((v) => (Array.isArray(v) ? v.some(test) : test(v)));
}

function inBounds(x: number, b: Bounds): boolean {
  return (b.gt === undefined || x > b.gt)
    && (b.gte === undefined || x >= b.gte)
    && (b.lt === undefined || x < b.lt)
    && (b.lte === undefined || x <= b.lte);
}

/** An integer payload value (QPB tag 3): what Qdrant's as_i64 accepts. */
const isInt = (e: unknown): e is number => typeof e === 'number' && Number.isSafeInteger(e);

const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** Substring on the stored bytes (the core compares UTF-8/WTF-8 bytes; JS includes differs only for lone surrogates). */
function contains(s: string, text: string): boolean {
  if (isWellFormed(s) && isWellFormed(text)) return s.includes(text);
  const hay = payloadStringBytes(s);
  const needle = payloadStringBytes(text);
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function normaliseId(id: Id): number | string {
  if (typeof id === 'bigint') return id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : `#${id}`;
  if (typeof id === 'string') return canonicalUuid(id) ?? id;
  return id;
}

function evaluate(c: Cond, id: number | string, payload: unknown): boolean {
  switch (c.kind) {
    case 'and':
      return c.of.every((x) => evaluate(x, id, payload));
    case 'or':
      return c.of.some((x) => evaluate(x, id, payload));
    case 'not':
      return !evaluate(c.of, id, payload);
    case 'atLeast': {
      let n = 0;
      for (const x of c.of) if (evaluate(x, id, payload) && ++n >= c.min) return true;
      return n >= c.min;
    }
    case 'hasId':
      return c.ids.includes(id);
    default:
      break;
  }
  const values = resolvePath(payload, c.path);
  switch (c.kind) {
    case 'keyword':
      return anyElement(values, (e) => typeof e === 'string' && c.any.includes(e));
    case 'integer':
      return anyElement(values, (e) => isInt(e) && c.any.includes(e));
    case 'bool':
      return anyElement(values, (e) => e === c.value);
    case 'exceptKeyword':
      // null never passes; a value of another type always does (Qdrant's type-mismatch arms)
      return anyElement(values, (e) => (e === null ? false : typeof e === 'string' ? !c.none.includes(e) : true));
    case 'exceptInteger':
      return anyElement(values, (e) => (e === null ? false : isInt(e) ? !c.none.includes(e) : true));
    case 'text':
      return anyElement(values, (e) => typeof e === 'string' && contains(e, c.text));
    case 'range':
      return anyElement(values, (e) => typeof e === 'number' && inBounds(e, c.bounds));
    case 'valuesCount':
      // per value, not summed: an array counts its length, null 0, anything else 1; nothing counts 0
      if (values.length === 0) return inBounds(0, c.bounds);
      return values.some((v) => inBounds(Array.isArray(v) ? v.length : v === null ? 0 : 1, c.bounds));
    case 'isEmpty':
      return values.every((v) => v === null || (Array.isArray(v) && v.length === 0));
    case 'isNull':
      return values.some((v) => v === null);
  }
}
