/**
 * Filter AST (ast.ts) -> the program the core evaluates
 * (assembly/filter.ts documents its bytes). Compiled once per filter; the
 * result is plain data (it crosses worker threads by structured clone).
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { ID_WORDS, packId } from '../ids.js';
import { payloadStringBytes } from '../payload.js';
import type { Bounds, Cond, Path } from './ast.js';

/** What `compile` returns: opaque to the store, read by Shard. */
export interface CompiledFilter {
  readonly kind: 'quiver-filter';
  /** The program's bytes (assembly/filter.ts). */
  readonly bytes: Uint8Array;
}

/** Deepest nesting of and / or / not / atLeast the core evaluates (assembly/filter.ts MAX_FILTER_DEPTH). */
export const MAX_FILTER_DEPTH = 32;
/** Longest path (assembly/filter.ts MAX_PATH_STEPS). */
export const MAX_PATH_STEPS = 64;

// Op codes and flags: assembly/filter.ts.
const OP = {
  and: 1, or: 2, not: 3, atLeast: 4, hasId: 5,
  keyword: 16, exceptKeyword: 17, integer: 18, exceptInteger: 19, bool: 20, text: 21,
  range: 22, valuesCount: 23, isEmpty: 24, isNull: 25,
} as const;
const F_MISSING = 1;
const F_NULL = 2;
const F_OTHER = 4;
const STEP_KEY = 0;
const STEP_EACH = 1;
const STEP_INDEX = 2;
const NODE_HEADER = 8;
const ID_ENTRY_BYTES = 24;

/**
 * The Qdrant rules the core leaves to the host (docs/filtering.md, read
 * from Qdrant's condition_checker.rs): for each match-like leaf, whether a
 * field with no value, a null element, or an element of another type
 * (a float under exceptInteger, a nested array, an object) matches. Only
 * `except` matches a mismatched type; nothing matches a missing field or
 * null. F_MISSING and F_NULL stay in the format for rules that need them.
 */
const LEAF_FLAGS: Partial<Record<Cond['kind'], number>> = {
  exceptKeyword: F_OTHER,
  exceptInteger: F_OTHER,
};

function invalid(message: string): QuiverError {
  return new QuiverError(ErrorCode.INVALID_ARGUMENT, `filter: ${message}`);
}

/** A growable little-endian byte writer. */
class Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  length = 0;

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.#room(1);
    this.#view.setUint8(this.length, v);
    this.length += 1;
  }
  u32(v: number): void {
    this.#room(4);
    this.#view.setUint32(this.length, v, true);
    this.length += 4;
  }
  setU32(at: number, v: number): void {
    this.#view.setUint32(at, v, true);
  }
  i64(v: number): void {
    this.#room(8);
    this.#view.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  f64(v: number): void {
    this.#room(8);
    this.#view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.#room(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
  }
  /** A string as QPB stores it (WTF-8 for lone surrogates), so bytes compare equal. */
  str(s: string): void {
    const b = payloadStringBytes(s);
    this.u32(b.length);
    this.bytes(b);
  }
  done(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

/** Opens a node; the returned function closes it (writes its size). */
function open(w: Writer, op: number, flags = 0): () => void {
  const at = w.length;
  w.u8(op);
  w.u8(flags);
  w.u8(0);
  w.u8(0);
  w.u32(0);
  return () => w.setU32(at + 4, w.length - at);
}

function path(w: Writer, p: Path, where: string): void {
  if (!Array.isArray(p) || p.length === 0) throw invalid(`${where}: a condition needs a key`);
  if (p.length > MAX_PATH_STEPS) throw invalid(`${where}: a key has more than ${MAX_PATH_STEPS} parts`);
  for (const step of p) {
    if ('key' in step && typeof step.key === 'string') {
      w.u8(STEP_KEY);
      w.str(step.key);
    } else if ('each' in step && step.each === true) {
      w.u8(STEP_EACH);
    } else if ('index' in step && Number.isInteger(step.index) && step.index >= 0 && step.index <= 0xfffffffe) {
      w.u8(STEP_INDEX);
      w.u32(step.index);
    } else {
      throw invalid(`${where}: a bad key part ${JSON.stringify(step)}`);
    }
  }
}

function bounds(w: Writer, b: Bounds, where: string): void {
  const names = ['gt', 'gte', 'lt', 'lte'] as const;
  let mask = 0;
  names.forEach((name, i) => {
    const v = b[name];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${where}: ${name} must be a finite number`);
    mask |= 1 << i;
  });
  w.u8(mask);
  for (const name of names) w.f64(b[name] ?? 0);
}

function idEntries(ids: readonly (number | string)[], where: string): Uint8Array {
  const entries = ids.map((id, i) => packId(id, `${where}.ids[${i}]`));
  // ascending by (kind, hi, lo), as the core's binary search expects
  const key = (e: Uint32Array): bigint => (BigInt(e[4]!) << 128n) | (BigInt(e[3]!) << 96n) | (BigInt(e[2]!) << 64n) | (BigInt(e[1]!) << 32n) | BigInt(e[0]!);
  const sorted = entries.map((e) => ({ e, k: key(e) })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const unique = sorted.filter((x, i) => i === 0 || x.k !== sorted[i - 1]!.k);
  const out = new Uint8Array(unique.length * ID_ENTRY_BYTES);
  const view = new DataView(out.buffer);
  unique.forEach(({ e }, i) => {
    for (let w = 0; w < ID_WORDS - 1; w++) view.setUint32(i * ID_ENTRY_BYTES + w * 4, e[w]!, true);
    view.setUint32(i * ID_ENTRY_BYTES + 16, e[4]!, true);
  });
  return out;
}

function integers(values: readonly number[], where: string): number[] {
  for (const v of values) if (!Number.isSafeInteger(v)) throw invalid(`${where}: ${String(v)} is not a safe integer`);
  return [...new Set(values)].sort((a, b) => a - b);
}

function cond(w: Writer, c: Cond, depth: number, where: string): void {
  if (depth >= MAX_FILTER_DEPTH) throw invalid(`nesting deeper than ${MAX_FILTER_DEPTH} levels`);
  switch (c.kind) {
    case 'and':
    case 'or': {
      const close = open(w, OP[c.kind]);
      c.of.forEach((x, i) => cond(w, x, depth + 1, `${where}.of[${i}]`));
      close();
      return;
    }
    case 'not': {
      const close = open(w, OP.not);
      cond(w, c.of, depth + 1, `${where}.of`);
      close();
      return;
    }
    case 'atLeast': {
      if (!Number.isInteger(c.min) || c.min < 0) throw invalid(`${where}: min must be a non-negative integer`);
      const close = open(w, OP.atLeast);
      w.u32(Math.min(c.min, 0xffffffff));
      c.of.forEach((x, i) => cond(w, x, depth + 1, `${where}.of[${i}]`));
      close();
      return;
    }
    case 'hasId': {
      const close = open(w, OP.hasId);
      const entries = idEntries(c.ids, where);
      w.u32(entries.length / ID_ENTRY_BYTES);
      w.bytes(entries);
      close();
      return;
    }
    default:
      leaf(w, c, where);
  }
}

function leaf(w: Writer, c: Exclude<Cond, { kind: 'and' | 'or' | 'not' | 'atLeast' | 'hasId' }>, where: string): void {
  const op = OP[c.kind];
  if (op === undefined) throw invalid(`${where}: unknown condition ${JSON.stringify((c as { kind: unknown }).kind)}`);
  const start = w.length;
  const close = open(w, op, LEAF_FLAGS[c.kind] ?? 0);
  const matcherAt = w.length;
  w.u32(0);
  w.u32(c.path.length);
  path(w, c.path, where);
  w.setU32(matcherAt, w.length - start);
  switch (c.kind) {
    case 'keyword':
      w.u32(c.any.length);
      for (const s of c.any) w.str(s);
      break;
    case 'exceptKeyword':
      w.u32(c.none.length);
      for (const s of c.none) w.str(s);
      break;
    case 'integer':
    case 'exceptInteger': {
      const list = integers(c.kind === 'integer' ? c.any : c.none, where);
      w.u32(list.length);
      for (const v of list) w.i64(v);
      break;
    }
    case 'bool':
      w.u8(c.value ? 1 : 0);
      break;
    case 'text':
      w.str(c.text);
      break;
    case 'range':
    case 'valuesCount':
      bounds(w, c.bounds, where);
      break;
    case 'isEmpty':
    case 'isNull':
      break;
  }
  close();
}

/** A key path as the core's STEP bytes (what a leaf holds; assembly/pindex.ts compares them). */
export function compilePath(p: Path, where: string): { bytes: Uint8Array; steps: number } {
  const w = new Writer();
  path(w, p, where);
  return { bytes: w.done(), steps: p.length };
}

/** Compiles a filter AST into the core's program; bad ASTs get INVALID_ARGUMENT. */
export function compile(filter: Cond): CompiledFilter {
  if (filter === null || typeof filter !== 'object') throw invalid('a filter must be an object');
  const w = new Writer();
  cond(w, filter, 0, 'filter');
  return { kind: 'quiver-filter', bytes: w.done() };
}

/** True when `value` is what `compile` returned (after a structured clone too). */
export function isCompiledFilter(value: unknown): value is CompiledFilter {
  return typeof value === 'object' && value !== null && (value as CompiledFilter).kind === 'quiver-filter'
    && (value as CompiledFilter).bytes instanceof Uint8Array;
}
