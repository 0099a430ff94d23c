import { ErrorCode, QuiverError } from '../errors.js';
import { canonicalUuid } from '../ids.js';
import type { Bounds, Cond, Path, PathStep } from './ast.js';

/**
 * Qdrant's JSON filter -> the AST (host/filter/ast.ts). Everything quiver
 * evaluates is accepted with Qdrant's meaning (docs/filtering.md); anything
 * else (geo, nested, datetime ranges, full-text variants, unknown keys, bad
 * shapes) is an INVALID_ARGUMENT naming the member and where it is
 * ("filter.must[1]: geo_radius is not supported"). Never a clause dropped.
 */

/** How big a filter may be. Past any of these the filter is refused (INVALID_ARGUMENT), not truncated. */
export const FILTER_LIMITS = {
  /** Filters inside filters: the top level is 1. */
  depth: 32,
  /** Conditions and nested filters, counted over the whole filter. */
  conditions: 1024,
  /** Entries of every `any`, `except` and `has_id` list together. */
  values: 10_000,
} as const;

/** `[n]` beyond this is refused: no array in a payload is that long. */
const MAX_INDEX = 4294967295;

const CLAUSES = ['must', 'should', 'must_not', 'min_should'] as const;
const FIELD_MEMBERS = ['key', 'match', 'range', 'values_count'] as const;
const FIELD_TESTS = ['match', 'range', 'values_count'] as const;
const MATCH_MEMBERS = ['value', 'any', 'except', 'text'] as const;
const BOUND_MEMBERS = ['gt', 'gte', 'lt', 'lte'] as const;
/** Qdrant conditions and members quiver does not evaluate. */
const UNSUPPORTED_CONDITIONS = ['nested', 'has_vector', 'slice', 'geo_bounding_box', 'geo_radius', 'geo_polygon'] as const;
const UNSUPPORTED_FIELD_MEMBERS = ['geo_bounding_box', 'geo_radius', 'geo_polygon'] as const;
const UNSUPPORTED_MATCH = ['phrase', 'text_any', 'prefix'] as const;

function invalid(message: string): QuiverError {
  return new QuiverError(ErrorCode.INVALID_ARGUMENT, message);
}

function notSupported(where: string, what: string): QuiverError {
  return invalid(`${where}: ${what} is not supported`);
}

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'bigint') return `${v}n`;
  return `${typeof v} ${String(v)}`;
}

class Budget {
  conditions = 0;
  values = 0;

  condition(where: string): void {
    if (++this.conditions > FILTER_LIMITS.conditions) {
      throw invalid(`${where}: the filter has more than ${FILTER_LIMITS.conditions} conditions`);
    }
  }

  entries(n: number, where: string): void {
    this.values += n;
    if (this.values > FILTER_LIMITS.values) {
      throw invalid(`${where}: the filter's any, except and has_id lists hold more than ${FILTER_LIMITS.values} values together`);
    }
  }
}

// ------------------------------------------------------------------ paths

const RAW = /[\p{Alphabetic}\p{N}_-]+/uy;
const QUOTED = /"([^"\\]*)"/y;
const INDEX = /\[(\d+)\]/y;

/**
 * A payload key path in Qdrant's syntax: `a.b`, `a[]`, `a[0]`, `a."b.c"`.
 * A bare key is letters, digits (any script), `_` and `-`; a key holding
 * anything else is quoted (no escapes, so a key with `"` or `\` cannot be
 * named, as in Qdrant).
 */
export function parsePath(text: unknown, where: string): Path {
  if (typeof text !== 'string') throw invalid(`${where} must be a string (got ${describe(text)})`);
  const steps: PathStep[] = [];
  let at = 0;
  const bad = (why: string): QuiverError =>
    invalid(`${where}: ${JSON.stringify(text)} is not a valid key path (${why} at character ${at}); quote a key holding other characters: a."b.c"`);
  const key = (): boolean => {
    RAW.lastIndex = at;
    const raw = RAW.exec(text);
    if (raw !== null) {
      steps.push({ key: raw[0] });
      at = RAW.lastIndex;
      return true;
    }
    QUOTED.lastIndex = at;
    const quoted = QUOTED.exec(text);
    if (quoted !== null) {
      steps.push({ key: quoted[1]! });
      at = QUOTED.lastIndex;
      return true;
    }
    return false;
  };
  if (text.length === 0) throw invalid(`${where} must not be empty`);
  if (!key()) throw bad('expected a key');
  while (at < text.length) {
    const c = text[at];
    if (c === '.') {
      at++;
      if (!key()) throw bad('expected a key after "."');
    } else if (c === '[') {
      if (text[at + 1] === ']') {
        steps.push({ each: true });
        at += 2;
        continue;
      }
      INDEX.lastIndex = at;
      const m = INDEX.exec(text);
      if (m === null) throw bad('expected [] or [n]');
      const n = Number(m[1]);
      if (n > MAX_INDEX) throw bad(`array index above ${MAX_INDEX}`);
      steps.push({ index: n });
      at = INDEX.lastIndex;
    } else throw bad(`unexpected ${JSON.stringify(c)}`);
  }
  return steps;
}

// ------------------------------------------------------------------ values

function safeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** A list of all strings or all integers (Qdrant's AnyVariants; an empty list is strings). De-duplicated, in order. */
function keywordsOrIntegers(v: unknown, where: string, budget: Budget): { strings: string[] } | { ints: number[] } {
  if (!Array.isArray(v)) throw invalid(`${where} must be an array of strings or of integers (got ${describe(v)})`);
  budget.entries(v.length, where);
  if (v.length === 0 || typeof v[0] === 'string') {
    v.forEach((e, i) => {
      if (typeof e !== 'string') throw invalid(`${where}[${i}] must be a string like the list's first entry (got ${describe(e)})`);
    });
    return { strings: [...new Set(v as string[])] };
  }
  v.forEach((e, i) => {
    if (!safeInteger(e)) {
      throw invalid(typeof e === 'number' && Number.isInteger(e)
        ? `${where}[${i}]: ${e} is beyond ±(2^53 - 1), which a JSON number cannot hold exactly`
        : `${where}[${i}] must be an integer like the list's first entry (got ${describe(e)}); lists are all strings or all integers`);
    }
  });
  // -0 and 0 are one integer
  return { ints: [...new Set((v as number[]).map((n) => n + 0))] };
}

function bounds(v: unknown, where: string, counts: boolean): Bounds {
  if (!isObject(v)) throw invalid(`${where} must be an object with gt, gte, lt or lte (got ${describe(v)})`);
  for (const k of Object.keys(v)) {
    if (!(BOUND_MEMBERS as readonly string[]).includes(k)) throw invalid(`${where}: unknown member "${k}" (expected gt, gte, lt, lte)`);
  }
  if (!counts && BOUND_MEMBERS.some((k) => typeof v[k] === 'string')) {
    throw notSupported(where, 'a datetime range (a range with string bounds)');
  }
  const out: Bounds = {};
  for (const k of BOUND_MEMBERS) {
    const b = v[k];
    if (b === undefined || b === null) continue;
    if (counts) {
      if (!safeInteger(b) || b < 0) throw invalid(`${where}.${k} must be a non-negative integer (got ${describe(b)})`);
    } else if (typeof b !== 'number' || !Number.isFinite(b)) {
      throw invalid(`${where}.${k} must be a finite number (got ${describe(b)})`);
    }
    out[k] = b + 0;
  }
  return out;
}

/** A has_id entry as the store takes it: an unsigned integer or a UUID (any of Qdrant's text forms), normalised. */
function pointId(v: unknown, where: string): number | string {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0) {
      if (!Number.isSafeInteger(v)) throw invalid(`${where}: integer id ${v} is above 2^53 - 1 and cannot be read exactly from JSON`);
      return v + 0;
    }
    throw invalid(`${where}: ${v} is not a valid point id; expected an unsigned integer or a UUID`);
  }
  if (typeof v === 'bigint') {
    if (v < 0n) throw invalid(`${where}: ${v} is not a valid point id; expected an unsigned integer or a UUID`);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${where}: has_id does not support integer ids above 2^53 - 1 (got ${v})`);
    return Number(v);
  }
  if (typeof v === 'string') {
    const uuid = canonicalUuid(v);
    if (uuid !== undefined) return uuid;
    throw invalid(`${where}: ${describe(v)} is not a valid point id; expected an unsigned integer or a UUID`);
  }
  throw invalid(`${where}: expected an unsigned integer or a UUID as point id (got ${describe(v)})`);
}

// ------------------------------------------------------------------ conditions

function only(o: Record<string, unknown>, allowed: readonly string[], where: string, what: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw invalid(`${where}: unknown member "${k}" in ${what} (expected ${allowed.join(', ')})`);
  }
}

function fieldCondition(c: Record<string, unknown>, where: string, budget: Budget): Cond {
  for (const k of UNSUPPORTED_FIELD_MEMBERS) if (has(c, k)) throw notSupported(where, k);
  for (const k of ['is_empty', 'is_null']) {
    if (has(c, k)) throw notSupported(where, `"${k}" inside a key condition (its meaning differs from Qdrant's {"${k}": {"key": ...}}, which is supported)`);
  }
  only(c, FIELD_MEMBERS, where, 'a key condition');
  const path = parsePath(c.key, `${where}.key`);
  const tests = FIELD_TESTS.filter((k) => has(c, k) && c[k] !== null && c[k] !== undefined);
  if (tests.length === 0) throw invalid(`${where}: a key condition needs one of match, range, values_count`);
  if (tests.length > 1) throw invalid(`${where}: give one of match, range, values_count per condition (got ${tests.join(' and ')}); combine conditions with must`);
  const test = tests[0]!;
  if (test === 'range') return { kind: 'range', path, bounds: bounds(c.range, `${where}.range`, false) };
  if (test === 'values_count') return { kind: 'valuesCount', path, bounds: bounds(c.values_count, `${where}.values_count`, true) };
  const m = c.match;
  const mw = `${where}.match`;
  if (!isObject(m)) throw invalid(`${mw} must be an object with value, any, except or text (got ${describe(m)})`);
  for (const k of UNSUPPORTED_MATCH) if (has(m, k)) throw notSupported(mw, k);
  only(m, MATCH_MEMBERS, mw, 'match');
  const kinds = MATCH_MEMBERS.filter((k) => has(m, k));
  if (kinds.length !== 1) {
    throw invalid(kinds.length === 0 ? `${mw} needs one of value, any, except, text` : `${mw}: give one of value, any, except, text (got ${kinds.join(' and ')})`);
  }
  switch (kinds[0]!) {
    case 'value': {
      const v = m.value;
      if (typeof v === 'string') return { kind: 'keyword', path, any: [v] };
      if (typeof v === 'boolean') return { kind: 'bool', path, value: v };
      if (safeInteger(v)) return { kind: 'integer', path, any: [v + 0] };
      if (typeof v === 'number' && Number.isInteger(v)) throw invalid(`${mw}.value: ${v} is beyond ±(2^53 - 1), which a JSON number cannot hold exactly`);
      throw invalid(`${mw}.value must be a string, an integer or a boolean (got ${describe(v)}); for numbers in an interval use range`);
    }
    case 'any': {
      const l = keywordsOrIntegers(m.any, `${mw}.any`, budget);
      return 'strings' in l ? { kind: 'keyword', path, any: l.strings } : { kind: 'integer', path, any: l.ints };
    }
    case 'except': {
      const l = keywordsOrIntegers(m.except, `${mw}.except`, budget);
      return 'strings' in l ? { kind: 'exceptKeyword', path, none: l.strings } : { kind: 'exceptInteger', path, none: l.ints };
    }
    default: {
      if (typeof m.text !== 'string') throw invalid(`${mw}.text must be a string (got ${describe(m.text)})`);
      return { kind: 'text', path, text: m.text };
    }
  }
}

/** `{"is_empty": {"key": "a"}}` */
function payloadField(c: Record<string, unknown>, name: string, where: string): Path {
  only(c, [name], where, `an ${name} condition`);
  const f = c[name];
  if (!isObject(f)) throw invalid(`${where}.${name} must be an object {"key": ...} (got ${describe(f)})`);
  only(f, ['key'], `${where}.${name}`, name);
  return parsePath(f.key, `${where}.${name}.key`);
}

function condition(c: unknown, where: string, depth: number, budget: Budget): Cond {
  budget.condition(where);
  if (!isObject(c)) throw invalid(`${where} must be a condition object (got ${describe(c)})`);
  if (has(c, 'key')) {
    if (typeof c.key !== 'string') throw invalid(`${where}.key must be a string (got ${describe(c.key)})`);
    return fieldCondition(c, where, budget);
  }
  for (const k of UNSUPPORTED_CONDITIONS) if (has(c, k)) throw notSupported(where, k);
  if (has(c, 'is_empty')) return { kind: 'isEmpty', path: payloadField(c, 'is_empty', where) };
  if (has(c, 'is_null')) return { kind: 'isNull', path: payloadField(c, 'is_null', where) };
  if (has(c, 'has_id')) {
    only(c, ['has_id'], where, 'a has_id condition');
    const ids = c.has_id;
    if (!Array.isArray(ids)) throw invalid(`${where}.has_id must be an array of point ids (got ${describe(ids)})`);
    budget.entries(ids.length, `${where}.has_id`);
    const seen = new Set<number | string>();
    ids.forEach((id, i) => seen.add(pointId(id, `${where}.has_id[${i}]`)));
    return { kind: 'hasId', ids: [...seen] };
  }
  for (const k of Object.keys(c)) {
    if (!(CLAUSES as readonly string[]).includes(k)) {
      throw invalid(`${where}: unknown condition "${k}" (expected a key condition, is_empty, is_null, has_id or a filter with must, should, must_not, min_should)`);
    }
  }
  return filter(c, where, depth + 1, budget);
}

/** must / should / must_not: one condition or an array of them; null is none. */
function conditions(v: unknown, where: string, depth: number, budget: Budget): Cond[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.map((c, i) => condition(c, `${where}[${i}]`, depth, budget));
  if (isObject(v)) return [condition(v, where, depth, budget)];
  throw invalid(`${where} must be a condition or an array of conditions (got ${describe(v)})`);
}

function filter(f: Record<string, unknown>, where: string, depth: number, budget: Budget): Cond {
  if (depth > FILTER_LIMITS.depth) throw invalid(`${where}: filters are nested deeper than ${FILTER_LIMITS.depth} levels`);
  for (const k of Object.keys(f)) {
    if (!(CLAUSES as readonly string[]).includes(k)) throw invalid(`${where}: unknown member "${k}" (a filter has must, should, must_not, min_should)`);
  }
  const parts: Cond[] = [];
  // an empty should is no constraint (Qdrant's optimised filter), not an empty disjunction
  const should = conditions(f.should, `${where}.should`, depth, budget);
  if (should.length === 1) parts.push(should[0]!);
  else if (should.length > 1) parts.push({ kind: 'or', of: should });
  if (f.min_should !== undefined && f.min_should !== null) {
    const mw = `${where}.min_should`;
    const ms = f.min_should;
    if (!isObject(ms)) throw invalid(`${mw} must be an object {"conditions": [...], "min_count": n} (got ${describe(ms)})`);
    only(ms, ['conditions', 'min_count'], mw, 'min_should');
    if (!Array.isArray(ms.conditions)) throw invalid(`${mw}.conditions must be an array of conditions (got ${describe(ms.conditions)})`);
    if (!safeInteger(ms.min_count) || ms.min_count < 1) throw invalid(`${mw}.min_count must be an integer of at least 1 (got ${describe(ms.min_count)})`);
    const of = (ms.conditions as unknown[]).map((c, i) => condition(c, `${mw}.conditions[${i}]`, depth, budget));
    parts.push({ kind: 'atLeast', min: ms.min_count, of });
  }
  parts.push(...conditions(f.must, `${where}.must`, depth, budget));
  for (const c of conditions(f.must_not, `${where}.must_not`, depth, budget)) parts.push({ kind: 'not', of: c });
  return parts.length === 1 ? parts[0]! : { kind: 'and', of: parts };
}

/**
 * A Qdrant filter object -> its AST. `where` names it in messages
 * ("filter", "body.filter", "options.filter").
 */
export function parseFilter(value: unknown, where = 'filter'): Cond {
  if (!isObject(value)) throw invalid(`${where} must be an object with must, should, must_not or min_should (got ${describe(value)})`);
  return filter(value, where, 1, new Budget());
}

/** As parseFilter; undefined and null (Qdrant's "no filter") give undefined. */
export function parseOptionalFilter(value: unknown, where = 'filter'): Cond | undefined {
  return value === undefined || value === null ? undefined : parseFilter(value, where);
}
