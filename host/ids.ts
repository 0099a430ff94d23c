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
const UUID_RE = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/i;

/** An id packed as the core stores it: four little-endian u32 words + kind. */
export interface PackedId {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
  uuid: boolean;
}

function invalid(message: string): QuiverError {
  return new QuiverError(ErrorCode.INVALID_ARGUMENT, message);
}

/** Validates one id and packs it; throws a coded error for a bad one. */
export function packId(id: unknown, where = 'id'): PackedId {
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw invalid(`${where} must be a non-negative safe integer, a bigint below 2^64 or a UUID string (got ${String(id)})`);
    }
    return { w0: id % TWO_32, w1: Math.floor(id / TWO_32), w2: 0, w3: 0, uuid: false };
  }
  if (typeof id === 'bigint') {
    if (id < 0n || id > MAX_U64) throw invalid(`${where} must be an unsigned 64-bit integer (got ${id})`);
    return { w0: Number(id & 0xffffffffn), w1: Number(id >> 32n), w2: 0, w3: 0, uuid: false };
  }
  if (typeof id === 'string') {
    if (!UUID_RE.test(id)) throw invalid(`${where} must be a UUID when it is a string (got ${JSON.stringify(id)})`);
    const hex = id.replace(/-/g, '');
    // the 16 bytes in text order, stored as little-endian words
    const word = (i: number): number =>
      (parseInt(hex.slice(i * 8, i * 8 + 2), 16)
        | (parseInt(hex.slice(i * 8 + 2, i * 8 + 4), 16) << 8)
        | (parseInt(hex.slice(i * 8 + 4, i * 8 + 6), 16) << 16)
        | (parseInt(hex.slice(i * 8 + 6, i * 8 + 8), 16) << 24)) >>> 0;
    return { w0: word(0), w1: word(1), w2: word(2), w3: word(3), uuid: true };
  }
  throw invalid(`${where} must be a number, bigint or UUID string (got ${id === null ? 'null' : typeof id})`);
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

/** A key under which two spellings of one id compare equal (1 and 1n). */
export function idKey(p: PackedId): string {
  return `${p.uuid ? 'u' : 'i'}${p.w0}.${p.w1}.${p.w2}.${p.w3}`;
}

/** Packs a whole list, rejecting bad ids and (optionally) duplicates. */
export function packIds(ids: IdList, rejectDuplicates: boolean): PackedId[] {
  if (ids === null || typeof ids !== 'object' || typeof (ids as { length?: unknown }).length !== 'number') {
    throw invalid('ids must be an array or typed array of ids');
  }
  const out: PackedId[] = new Array(ids.length);
  const seen = rejectDuplicates ? new Set<string>() : undefined;
  for (let i = 0; i < ids.length; i++) {
    const p = packId(ids[i], `ids[${i}]`);
    if (seen !== undefined) {
      const key = idKey(p);
      if (seen.has(key)) throw invalid(`ids[${i}] repeats an id earlier in the same batch (${String(ids[i])})`);
      seen.add(key);
    }
    out[i] = p;
  }
  return out;
}
