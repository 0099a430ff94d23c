import { ErrorCode, QuiverError } from './errors.js';

/**
 * An id is an unsigned 64-bit integer (a non-negative safe-integer number,
 * or a bigint for larger values) or a UUID string: Qdrant's two id kinds.
 * Integer ids come back as numbers when they fit 2^53, else as bigints;
 * UUIDs come back lowercase and hyphenated.
 */
export type Id = number | bigint | string;

/** A flat collection of ids the API accepts. */
export type IdList = readonly Id[] | Uint32Array | Int32Array | Float64Array | BigUint64Array | BigInt64Array;

const TWO_32 = 4294967296;
const MAX_U64 = (1n << 64n) - 1n;

const HYPHENATED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SIMPLE = /^[0-9a-f]{32}$/i;

/**
 * A UUID in one of its standard text forms (the ones Rust's `uuid` crate,
 * and so Qdrant, reads): hyphenated, 32 hex digits, braced `{...}` or
 * `urn:uuid:...`, hex digits in either case. Returns it lowercase and
 * hyphenated, or undefined for anything else: no surrounding whitespace, no
 * mixed forms (`{urn:uuid:...}`), nothing before or after.
 */
export function canonicalUuid(text: string): string | undefined {
  let s = text;
  if (s.length === 45 && s.slice(0, 9).toLowerCase() === 'urn:uuid:') s = s.slice(9);
  else if (s.length === 38 && s[0] === '{' && s[37] === '}') s = s.slice(1, 37);
  if (s.length === 32 && SIMPLE.test(s)) s = `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  else if (s.length !== 36 || !HYPHENATED.test(s)) return undefined;
  return s.toLowerCase();
}

/**
 * Ids packed as the core stores them: ID_WORDS u32 per id, the id's 16 bytes
 * as four little-endian words, then its kind (1 = UUID). The same packing
 * crosses threads, so a batch of ids is one transferable buffer.
 */
export const ID_WORDS = 5;

function invalid(message: string): QuiverError {
  return new QuiverError(ErrorCode.INVALID_ARGUMENT, message);
}

/** Validates one id and writes its words at `out[at..at+4]`. */
function packInto(id: unknown, out: Uint32Array, at: number, where: string): void {
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw invalid(`${where} must be a non-negative safe integer, a bigint below 2^64 or a UUID string (got ${String(id)})`);
    }
    out[at] = id % TWO_32;
    out[at + 1] = Math.floor(id / TWO_32);
    return;
  }
  if (typeof id === 'bigint') {
    if (id < 0n || id > MAX_U64) throw invalid(`${where} must be an unsigned 64-bit integer (got ${id})`);
    out[at] = Number(id & 0xffffffffn);
    out[at + 1] = Number(id >> 32n);
    return;
  }
  if (typeof id === 'string') {
    if (!HYPHENATED.test(id) && !SIMPLE.test(id)) throw invalid(`${where} must be a UUID when it is a string (got ${JSON.stringify(id)})`);
    const hex = id.replace(/-/g, '');
    // the 16 bytes in text order, stored as little-endian words
    for (let w = 0; w < 4; w++) {
      let v = 0;
      for (let b = 3; b >= 0; b--) v = (v << 8) | parseInt(hex.slice(w * 8 + b * 2, w * 8 + b * 2 + 2), 16);
      out[at + w] = v >>> 0;
    }
    out[at + 4] = 1;
    return;
  }
  throw invalid(`${where} must be a number, bigint or UUID string (got ${id === null ? 'null' : typeof id})`);
}

/** One id, packed. */
export function packId(id: unknown, where = 'id'): Uint32Array {
  const out = new Uint32Array(ID_WORDS);
  packInto(id, out, 0, where);
  return out;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The id the words at `u32[at..at+3]` hold. */
export function unpackId(u32: Uint32Array, at: number, uuid: boolean): Id {
  if (!uuid) {
    const lo = u32[at]!;
    const hi = u32[at + 1]!;
    if (hi < 0x200000) return hi * TWO_32 + lo;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
  let s = '';
  for (let w = 0; w < 4; w++) {
    const v = u32[at + w]!;
    s += HEX[v & 0xff]! + HEX[(v >>> 8) & 0xff]! + HEX[(v >>> 16) & 0xff]! + HEX[v >>> 24]!;
  }
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/**
 * Packs a whole list, rejecting bad ids and (optionally) duplicates. 1 and 1n
 * are the same id. Allocates one buffer, and keys only for the duplicate
 * check: integers below 2^53 as numbers, other ids as strings.
 */
export function packIds(ids: IdList, rejectDuplicates: boolean): Uint32Array {
  if (ids === null || typeof ids !== 'object' || typeof (ids as { length?: unknown }).length !== 'number') {
    throw invalid('ids must be an array or typed array of ids');
  }
  const n = ids.length;
  const out = new Uint32Array(n * ID_WORDS);
  for (let i = 0; i < n; i++) packInto(ids[i], out, i * ID_WORDS, `ids[${i}]`);
  if (rejectDuplicates && n > 1) {
    const seen = new Set<number | string>();
    for (let i = 0; i < n; i++) {
      const at = i * ID_WORDS;
      const hi = out[at + 1]!;
      const key = out[at + 4] === 0 && hi < 0x200000
        ? hi * TWO_32 + out[at]!
        : `${out[at]}.${hi}.${out[at + 2]}.${out[at + 3]}.${out[at + 4]}`;
      if (seen.has(key)) throw invalid(`ids[${i}] repeats an id earlier in the same batch (${String(ids[i])})`);
      seen.add(key);
    }
  }
  return out;
}
