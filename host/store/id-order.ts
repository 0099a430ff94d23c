import { ID_WORDS } from '../ids.js';

/**
 * Id order, as scroll pages through a dataset: integer ids ascending, then
 * UUIDs by their bytes (which is their text order). Ids are packed as
 * ids.ts packs them; `a`/`b` are row numbers in `aIds`/`bIds`.
 */
export function compareIds(aIds: Uint32Array, a: number, bIds: Uint32Array, b: number): number {
  const x = a * ID_WORDS;
  const y = b * ID_WORDS;
  const kind = aIds[x + 4]! - bIds[y + 4]!;
  if (kind !== 0) return kind;
  if (aIds[x + 4] === 0) return aIds[x + 1]! - bIds[y + 1]! || aIds[x]! - bIds[y]!;
  for (let w = 0; w < 4; w++) {
    const u = aIds[x + w]!;
    const v = bIds[y + w]!;
    if (u === v) continue;
    // a word holds four bytes of text order, lowest byte first
    for (let byte = 0; byte < 32; byte += 8) {
      const d = ((u >>> byte) & 0xff) - ((v >>> byte) & 0xff);
      if (d !== 0) return d;
    }
  }
  return 0;
}

const TWO_32 = 4294967296;
/** Integer ids below 2^53 sort as exact doubles. */
const SMALL_HI = 0x200000;

/** A sorted copy of packed ids (duplicates kept). */
export function sortIds(packed: Uint32Array): Uint32Array {
  const n = packed.length / ID_WORDS;
  // the common case, integer ids below 2^53, sorts natively as doubles;
  // every other id sorts after them (compareIds puts UUIDs last)
  let small = 0;
  const rest: number[] = [];
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const at = i * ID_WORDS;
    if (packed[at + 4] === 0 && packed[at + 1]! < SMALL_HI && packed[at + 2] === 0 && packed[at + 3] === 0) {
      keys[small++] = packed[at + 1]! * TWO_32 + packed[at]!;
    } else {
      rest.push(i);
    }
  }
  const sortedKeys = keys.subarray(0, small).sort();
  rest.sort((a, b) => compareIds(packed, a, packed, b));
  const out = new Uint32Array(packed.length);
  for (let j = 0; j < small; j++) {
    const k = sortedKeys[j]!;
    out[j * ID_WORDS] = k % TWO_32;
    out[j * ID_WORDS + 1] = Math.floor(k / TWO_32);
  }
  rest.forEach((row, j) => out.set(packed.subarray(row * ID_WORDS, (row + 1) * ID_WORDS), (small + j) * ID_WORDS));
  return out;
}

/** First row of sorted `ids` not below row `at` of `key`. */
function lowerBound(ids: Uint32Array, key: Uint32Array, at: number): number {
  let lo = 0;
  let hi = ids.length / ID_WORDS;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareIds(ids, mid, key, at) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Merges two sorted packed lists, dropping an id present in both. */
function mergeIds(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  const na = a.length / ID_WORDS;
  const nb = b.length / ID_WORDS;
  while (i < na || j < nb) {
    const c = i >= na ? 1 : j >= nb ? -1 : compareIds(a, i, b, j);
    const [src, row] = c <= 0 ? [a, i++] : [b, j++];
    if (c === 0) j++;
    out.set(src.subarray(row * ID_WORDS, (row + 1) * ID_WORDS), n++ * ID_WORDS);
  }
  return out.slice(0, n * ID_WORDS);
}

/** Delta rows past which the delta is folded into the base list. */
const MIN_FOLD = 4096;

/**
 * A shard's ids in id order, kept next to the shard in its worker so a
 * scroll page costs a seek plus the page, not a sort of every id. Built from
 * the shard once; ids inserted since go to a small delta (sorted when read,
 * folded into the base when it grows); deleted ids stay listed and the
 * reader skips them with a liveness check. After a compaction, or once the
 * skipped ids outnumber half the list, the owner throws it away and it is
 * built again on the next read.
 */
export class IdOrder {
  #base: Uint32Array;
  #delta: Uint32Array = new Uint32Array(0);
  #pending: Uint32Array[] = [];
  #pendingRows = 0;
  #deleted = 0;

  /** `ids`: every live id of the shard, packed, in any order. */
  constructor(ids: Uint32Array) {
    this.#base = sortIds(ids);
  }

  /** Rows [from, to) of packed `ids` were inserted (or replaced). */
  inserted(ids: Uint32Array, from: number, to: number): void {
    if (to <= from) return;
    this.#pending.push(ids.slice(from * ID_WORDS, to * ID_WORDS));
    this.#pendingRows += to - from;
  }

  /** `n` listed ids were deleted. */
  deleted(n: number): void {
    this.#deleted += n;
  }

  /** Ids listed: at least the shard's live ones (deleted and repeated ones may be counted too). */
  get size(): number {
    return (this.#base.length + this.#delta.length) / ID_WORDS + this.#pendingRows;
  }

  /** Deleted ids still listed outnumber the live ones: time to rebuild. */
  get stale(): boolean {
    return this.#deleted > 1024 && this.#deleted * 2 > this.#base.length / ID_WORDS;
  }

  #settle(): void {
    if (this.#pendingRows === 0) return;
    const fresh = new Uint32Array(this.#pendingRows * ID_WORDS);
    let at = 0;
    for (const part of this.#pending) {
      fresh.set(part, at);
      at += part.length;
    }
    this.#pending = [];
    this.#pendingRows = 0;
    this.#delta = mergeIds(this.#delta, dedupe(sortIds(fresh)));
    const deltaRows = this.#delta.length / ID_WORDS;
    if (deltaRows > Math.max(MIN_FOLD, this.#base.length / ID_WORDS / 8)) {
      this.#base = mergeIds(this.#base, this.#delta);
      this.#delta = new Uint32Array(0);
    }
  }

  /**
   * Visits ids from row `at` of `start` on (from the first without), in id
   * order, each once, until `visit` returns false.
   */
  walk(start: Uint32Array | undefined, at: number, visit: (ids: Uint32Array, row: number) => boolean): void {
    this.#settle();
    const base = this.#base;
    const delta = this.#delta;
    let i = start === undefined ? 0 : lowerBound(base, start, at);
    let j = start === undefined ? 0 : lowerBound(delta, start, at);
    const nb = base.length / ID_WORDS;
    const nd = delta.length / ID_WORDS;
    while (i < nb || j < nd) {
      const c = i >= nb ? 1 : j >= nd ? -1 : compareIds(base, i, delta, j);
      let more: boolean;
      if (c <= 0) {
        more = visit(base, i++);
        if (c === 0) j++;
      } else {
        more = visit(delta, j++);
      }
      if (!more) return;
    }
  }
}

/** Sorted ids with repeats removed. */
function dedupe(sorted: Uint32Array): Uint32Array {
  const n = sorted.length / ID_WORDS;
  if (n < 2) return sorted;
  const out = new Uint32Array(sorted.length);
  let m = 0;
  for (let i = 0; i < n; i++) {
    if (m > 0 && compareIds(out, m - 1, sorted, i) === 0) continue;
    out.set(sorted.subarray(i * ID_WORDS, (i + 1) * ID_WORDS), m++ * ID_WORDS);
  }
  return out.slice(0, m * ID_WORDS);
}
