// Payload indexes: for one field (a filter key path, in the program's STEP
// bytes) and one type, which slots have a value of that type there. They
// live in the shard's arena, so images and checkpoints carry them; the
// host creates, drops and lists them (host/core/payload-index.ts) and a
// compaction re-creates them in the new memory before the import fills it.
//
//   DIRECTORY  one slab (H_PINDEX), H_PINDEX_N entries of PX_BYTES, packed
//   ENTRY      0 type u32 | 4 name bytes u32 | 8 steps bytes u32 | 12 steps u32
//              16 records u32 (a run) | 20 capacity u32 (records)
//              24 sorted u32 | 28 total u32 | 32 live u32 | 36 points u32
//              PX_NAME name bytes[PX_NAME_MAX] | PX_STEPS steps bytes[PX_STEPS_MAX]
//   RECORD     0 key u64 | 8 slot u32 | 12 (pad) u32
//
// Records [0, sorted) ascend by (key, slot); [sorted, total) is a tail in
// write order, merged in (sorted, then merged from the back) once it
// outgrows PX_TAIL plus a sixteenth of the sorted part, and before a query
// reads an index whose tail is over PX_QUERY_TAIL. A key is a 64-bit hash
// of a string's bytes (keyword, uuid), an order-preserving u64 of a
// number's f64 (integer, float: ints and floats both, so a range finds
// every number it could match), 0 or 1 (bool). `points` counts values of
// the index's type only: integers for an integer index, UUID text for a
// uuid index (isUuidText).
//
// A record says "this slot had a value with this key when it was written".
// A delete or a payload replace leaves its records behind (stale), and a
// slot can hold one key twice; so an index yields a superset of the slots
// a condition matches (candidates), which search and count deduplicate and
// check against the whole filter. It never decides an answer by itself.
// `live` counts the records of live payloads exactly and `points` the live
// points with a value of the index's type (what Qdrant reports); when
// total passes 2 live + PX_SLACK, pxMaintain rebuilds the index from the
// live payloads inside its own records (no allocation), so stale records
// stay a bounded share.
//
// Every write that attaches a payload reserves record room first
// (pxReserve, before its first change), so adding its records cannot fail.
// The index's values of a payload are exactly what a leaf on its path
// tests (filter.ts collectPath): the same resolution, arrays one level.

import {
  CLASS_IDMAP, CLASS_SCRATCH, DEBUG, ERR_INVALID, ERR_OUT_OF_MEMORY, H_IO, H_PINDEX, H_PINDEX_N, H_PX_CAND, H_PX_CAND_CAP,
  H_PX_CTX, H_SLOTS, H_VISITED, NODE_PAYLOAD, OK, SLAB_SHIFT, headerPtr, hget, hset, u32At, setU32At,
} from "./layout";
import { runAlloc, runFree, slabsFor } from "./arena";
import { isDeleted, metaOf, nodePtr } from "./node";
import { payloadBytesPtr, payloadLen } from "./payload";
import {
  B_GT, B_GTE, B_LT, B_LTE, F_MISSING, LEAF_MATCHER, LEAF_PATH, LEAF_STEPS, MAX_PATH_STEPS, NODE_BODY, NODE_FLAGS,
  NODE_OP, NODE_SIZE, OP_AND, OP_BOOL, OP_INTEGER, OP_KEYWORD, OP_RANGE, T_FALSE, T_FLOAT, T_INT, T_STRING, T_TRUE,
  checkPath, collectPath, qpbNumber, qpbStringLen, qpbStringPtr, qpbTag,
} from "./filter";
import { ensureVisited, nextGen, visit } from "./hnsw";

// @ts-ignore: decorator
@inline export const PX_KEYWORD: u32 = 1;
// @ts-ignore: decorator
@inline export const PX_INTEGER: u32 = 2;
// @ts-ignore: decorator
@inline export const PX_FLOAT: u32 = 3;
// @ts-ignore: decorator
@inline export const PX_BOOL: u32 = 4;
// @ts-ignore: decorator
@inline export const PX_UUID: u32 = 5;

// @ts-ignore: decorator
@inline export const PX_TYPE: u32 = 0;
// @ts-ignore: decorator
@inline export const PX_NAME_LEN: u32 = 4;
// @ts-ignore: decorator
@inline export const PX_STEPS_LEN: u32 = 8;
// @ts-ignore: decorator
@inline export const PX_STEP_COUNT: u32 = 12;
// @ts-ignore: decorator
@inline const PX_RECORDS: u32 = 16;
// @ts-ignore: decorator
@inline const PX_CAP: u32 = 20;
// @ts-ignore: decorator
@inline const PX_SORTED: u32 = 24;
// @ts-ignore: decorator
@inline const PX_TOTAL: u32 = 28;
// @ts-ignore: decorator
@inline const PX_LIVE: u32 = 32;
// @ts-ignore: decorator
@inline export const PX_POINTS: u32 = 36;
// @ts-ignore: decorator
@inline export const PX_NAME: u32 = 64;
// @ts-ignore: decorator
@inline export const PX_NAME_MAX: u32 = 256;
// @ts-ignore: decorator
@inline const PX_STEPS: u32 = PX_NAME + PX_NAME_MAX;
// @ts-ignore: decorator
@inline const PX_STEPS_MAX: u32 = 704;
// @ts-ignore: decorator
@inline export const PX_BYTES: u32 = PX_STEPS + PX_STEPS_MAX; // 1024
// @ts-ignore: decorator
@inline export const PX_MAX: u32 = 32; // a directory is one slab
// @ts-ignore: decorator
@inline const REC_BYTES: u32 = 16;
// @ts-ignore: decorator
@inline const REC_SHIFT: u32 = 4;
// @ts-ignore: decorator
@inline const PX_TAIL: u32 = 1024;
// @ts-ignore: decorator
@inline const PX_QUERY_TAIL: u32 = 64;
// @ts-ignore: decorator
@inline const PX_SLACK: u32 = 4096;

// the visit context at H_PX_CTX (the host never reads it)
// @ts-ignore: decorator
@inline const CTX_ENTRY: u32 = 0;
// @ts-ignore: decorator
@inline const CTX_SLOT: u32 = 4;
// @ts-ignore: decorator
@inline const CTX_APPEND: u32 = 8;
// @ts-ignore: decorator
@inline const CTX_KEYED: u32 = 12;
// @ts-ignore: decorator
@inline const CTX_TYPED: u32 = 16;
// @ts-ignore: decorator
@inline const CTX_FULL: u32 = 20;

if (PX_MAX * PX_BYTES > (1 << SLAB_SHIFT)) ERROR("pindex: the directory must fit one slab");

// ---------------------------------------------------------------- keys --

// A 64-bit hash of n bytes (one multiply-xorshift round per word).
function hashBytes(p: usize, n: u32): u64 {
  let h: u64 = 0x9e3779b97f4a7c15 ^ (<u64>n * 0xff51afd7ed558ccd);
  let i: u32 = 0;
  for (; i + 8 <= n; i += 8) {
    h = (h ^ load<u64>(p + i)) * 0xc4ceb9fe1a85ec53;
    h ^= h >> 29;
  }
  let w: u64 = 0;
  for (let j: u32 = 0; i < n; i++, j += 8) w |= <u64>load<u8>(p + i) << j;
  h = (h ^ w) * 0xc4ceb9fe1a85ec53;
  h ^= h >> 32;
  return h;
}

// @ts-ignore: decorator
@inline function isHex(c: u32): bool {
  return (c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 102);
}

// True when the n bytes at p are a UUID in one of the text forms ids take
// (host/ids.ts): 32 hex digits, hyphenated 8-4-4-4-12, that in braces, or
// that after "urn:uuid:"; hex digits in either case. What a uuid index
// counts as a value of its type (its records take every string, as a
// keyword index's do, so a match on any string still finds its points).
function isUuidText(p: usize, n: u32): bool {
  if (n == 32) {
    for (let i: u32 = 0; i < 32; i++) if (!isHex(load<u8>(p + i))) return false;
    return true;
  }
  if (n == 38) {
    if (load<u8>(p) != 123 || load<u8>(p + 37) != 125) return false;
    p += 1;
  } else if (n == 45) {
    // "urn:uuid:", any case
    const prefix: u64 = 0x3a646975753a6e72; // "rn:uuid:", little endian, after the "u"
    if ((load<u8>(p) | 32) != 117 || (load<u64>(p + 1) | 0x2020202020202020) != prefix) return false;
    p += 9;
  } else if (n != 36) return false;
  for (let i: u32 = 0; i < 36; i++) {
    const c = <u32>load<u8>(p + i);
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != 45) return false;
    } else if (!isHex(c)) return false;
  }
  return true;
}

// An order-preserving u64 of a finite f64 (-0 and 0 are one key).
// @ts-ignore: decorator
@inline function numKey(x: f64): u64 {
  const bits = reinterpret<u64>(x == 0 ? 0.0 : x);
  return (bits >> 63) != 0 ? ~bits : bits | (<u64>1 << 63);
}

// ------------------------------------------------------------- records --

// @ts-ignore: decorator
@inline function recPtr(entry: usize, i: u32): usize {
  return <usize>load<u32>(entry, PX_RECORDS) + (<usize>i << REC_SHIFT);
}

// @ts-ignore: decorator
@inline function recLess(a: usize, b: usize): bool {
  const ka = load<u64>(a);
  const kb = load<u64>(b);
  return ka < kb || (ka == kb && load<u32>(a, 8) < load<u32>(b, 8));
}

// @ts-ignore: decorator
@inline function recSwap(a: usize, b: usize): void {
  const k = load<u64>(a);
  const s = load<u64>(a, 8);
  store<u64>(a, load<u64>(b));
  store<u64>(a, load<u64>(b, 8), 8);
  store<u64>(b, k);
  store<u64>(b, s, 8);
}

function siftDown(base: usize, i: u32, n: u32): void {
  for (;;) {
    let c: u32 = 2 * i + 1;
    if (c >= n) return;
    const cp = base + (<usize>c << REC_SHIFT);
    if (c + 1 < n && recLess(cp, cp + REC_BYTES)) c++;
    const ip = base + (<usize>i << REC_SHIFT);
    const bp = base + (<usize>c << REC_SHIFT);
    if (!recLess(ip, bp)) return;
    recSwap(ip, bp);
    i = c;
  }
}

// Sorts n records at `base` by (key, slot): heapsort, in place, no recursion.
function sortRecords(base: usize, n: u32): void {
  if (n < 2) return;
  for (let i = <i32>(n >> 1) - 1; i >= 0; i--) siftDown(base, <u32>i, n);
  for (let end = n - 1; end > 0; end--) {
    recSwap(base, base + (<usize>end << REC_SHIFT));
    siftDown(base, 0, end);
  }
}

// Room for `need` records; false (nothing changed) when memory is out.
function ensureRoom(entry: usize, need: u32): bool {
  const cap = load<u32>(entry, PX_CAP);
  if (need <= cap) return true;
  let want = max<u32>(need, cap * 2);
  const slabs = slabsFor(want << REC_SHIFT);
  const run = runAlloc(slabs, CLASS_IDMAP);
  if (run == 0) return false;
  const old = <usize>load<u32>(entry, PX_RECORDS);
  if (old != 0) {
    memory.copy(run, old, <usize>load<u32>(entry, PX_TOTAL) << REC_SHIFT);
    runFree(old, slabsFor(cap << REC_SHIFT), CLASS_IDMAP);
  }
  store<u32>(entry, <u32>run, PX_RECORDS);
  store<u32>(entry, (slabs << SLAB_SHIFT) >> REC_SHIFT, PX_CAP);
  return true;
}

// Merges the tail into the sorted part; false when the scratch for it is
// out (the tail stays a tail: still correct, only slower to read).
function mergeTail(entry: usize): bool {
  const sorted = load<u32>(entry, PX_SORTED);
  const total = load<u32>(entry, PX_TOTAL);
  const tail = total - sorted;
  if (tail == 0) return true;
  const base = <usize>load<u32>(entry, PX_RECORDS);
  if (sorted == 0) {
    sortRecords(base, total);
    store<u32>(entry, total, PX_SORTED);
    return true;
  }
  const slabs = slabsFor(tail << REC_SHIFT);
  const tmp = runAlloc(slabs, CLASS_SCRATCH);
  if (tmp == 0) return false;
  const t0 = base + (<usize>sorted << REC_SHIFT);
  sortRecords(t0, tail);
  memory.copy(tmp, t0, <usize>tail << REC_SHIFT);
  // from the back: the sorted part's records move up, the tail's fill in
  let i = <i32>sorted - 1;
  let j = <i32>tail - 1;
  let k = <i32>total - 1;
  while (j >= 0) {
    const tj = tmp + (<usize>j << REC_SHIFT);
    const dst = base + (<usize>k << REC_SHIFT);
    if (i >= 0 && recLess(tj, base + (<usize>i << REC_SHIFT))) {
      memory.copy(dst, base + (<usize>i << REC_SHIFT), REC_BYTES);
      i--;
    } else {
      memory.copy(dst, tj, REC_BYTES);
      j--;
    }
    k--;
  }
  runFree(tmp, slabs, CLASS_SCRATCH);
  store<u32>(entry, total, PX_SORTED);
  return true;
}

// --------------------------------------------------------------- visits --

// @ts-ignore: decorator
@inline function ctxPtr(): usize {
  return headerPtr() + H_PX_CTX;
}

// One value a path reached (filter.ts collectValue calls it): counted, and
// appended as a record when the context says so.
export function pxVisit(ctx: usize, v: usize): void {
  const entry = <usize>load<u32>(ctx, CTX_ENTRY);
  const type = load<u32>(entry, PX_TYPE);
  const tag = qpbTag(v);
  let key: u64 = 0;
  let typed = false;
  if (type == PX_KEYWORD || type == PX_UUID) {
    if (tag != T_STRING) return;
    key = hashBytes(qpbStringPtr(v), qpbStringLen(v));
    typed = type == PX_KEYWORD || isUuidText(qpbStringPtr(v), qpbStringLen(v));
  } else if (type == PX_BOOL) {
    if (tag != T_TRUE && tag != T_FALSE) return;
    key = tag == T_TRUE ? 1 : 0;
    typed = true;
  } else {
    if (tag != T_INT && tag != T_FLOAT) return;
    key = numKey(qpbNumber(v));
    typed = type == PX_FLOAT || tag == T_INT;
  }
  store<u32>(ctx, load<u32>(ctx, CTX_KEYED) + 1, CTX_KEYED);
  if (typed) store<u32>(ctx, load<u32>(ctx, CTX_TYPED) + 1, CTX_TYPED);
  if (load<u32>(ctx, CTX_APPEND) == 0) return;
  const total = load<u32>(entry, PX_TOTAL);
  if (total >= load<u32>(entry, PX_CAP)) {
    store<u32>(ctx, 1, CTX_FULL);
    return;
  }
  const r = recPtr(entry, total);
  store<u64>(r, key);
  store<u32>(r, load<u32>(ctx, CTX_SLOT), 8);
  store<u32>(r, 0, 12);
  store<u32>(entry, total + 1, PX_TOTAL);
}

// Visits the values of the payload [v, end) for `entry`; the status (the
// context then holds the counts).
function visitBytes(entry: usize, slot: u32, append: bool, v: usize, end: usize): i32 {
  const ctx = ctxPtr();
  store<u32>(ctx, <u32>entry, CTX_ENTRY);
  store<u32>(ctx, slot, CTX_SLOT);
  store<u32>(ctx, append ? 1 : 0, CTX_APPEND);
  store<u32>(ctx, 0, CTX_KEYED);
  store<u32>(ctx, 0, CTX_TYPED);
  store<u32>(ctx, 0, CTX_FULL);
  return collectPath(entry + PX_STEPS, load<u32>(entry, PX_STEP_COUNT), ctx, v, end);
}

function visitSlot(entry: usize, slot: u32, append: bool): i32 {
  const blob = <usize>load<u32>(nodePtr(slot), NODE_PAYLOAD);
  if (blob == 0) return visitBytes(entry, slot, append, 0, 0);
  const v = payloadBytesPtr(blob);
  return visitBytes(entry, slot, append, v, v + payloadLen(blob));
}

// @ts-ignore: decorator
@inline function entryAt(i: u32): usize {
  return <usize>hget(H_PINDEX) + <usize>i * PX_BYTES;
}

// Adds the context's counts (after a visit) to the entry's, or takes them off.
// @ts-ignore: decorator
@inline function account(entry: usize, sign: i32): void {
  const ctx = ctxPtr();
  store<u32>(entry, <u32>(<i32>load<u32>(entry, PX_LIVE) + sign * <i32>load<u32>(ctx, CTX_KEYED)), PX_LIVE);
  if (load<u32>(ctx, CTX_TYPED) != 0) store<u32>(entry, <u32>(<i32>load<u32>(entry, PX_POINTS) + sign), PX_POINTS);
}

// Refills `entry` from the live payloads, in its own records (the caller
// made room for them). The status of the first payload that is not QPB.
function rebuild(entry: usize): i32 {
  store<u32>(entry, 0, PX_TOTAL);
  store<u32>(entry, 0, PX_SORTED);
  store<u32>(entry, 0, PX_LIVE);
  store<u32>(entry, 0, PX_POINTS);
  const slots = hget(H_SLOTS);
  for (let s: u32 = 0; s < slots; s++) {
    if (isDeleted(metaOf(nodePtr(s)))) continue;
    const r = visitSlot(entry, s, true);
    if (r < 0) return r;
    if (DEBUG) assert(load<u32>(ctxPtr(), CTX_FULL) == 0);
    account(entry, 1);
  }
  sortRecords(<usize>load<u32>(entry, PX_RECORDS), load<u32>(entry, PX_TOTAL));
  store<u32>(entry, load<u32>(entry, PX_TOTAL), PX_SORTED);
  return OK;
}

// ------------------------------------------------------- write hooks --

// Makes room in every index for the records of the payload [v, v + len)
// (len 0: none) about to be attached. OK, ERR_OUT_OF_MEMORY (no index
// changed but in capacity) or ERR_CORRUPT.
export function pxReserve(v: usize, len: u32): i32 {
  const n = hget(H_PINDEX_N);
  if (n == 0 || len == 0) return OK;
  for (let i: u32 = 0; i < n; i++) {
    const entry = entryAt(i);
    const r = visitBytes(entry, 0, false, v, v + len);
    if (r < 0) return r;
    if (!ensureRoom(entry, load<u32>(entry, PX_TOTAL) + load<u32>(ctxPtr(), CTX_KEYED))) return ERR_OUT_OF_MEMORY;
  }
  return OK;
}

// The payload of `slot` was attached (after pxReserve for it).
export function pxAdd(slot: u32): void {
  const n = hget(H_PINDEX_N);
  for (let i: u32 = 0; i < n; i++) {
    const entry = entryAt(i);
    visitSlot(entry, slot, true);
    if (DEBUG) assert(load<u32>(ctxPtr(), CTX_FULL) == 0);
    account(entry, 1);
  }
}

// The payload of `slot` is about to go (a delete, or a replace): its
// records turn stale.
export function pxRemove(slot: u32): void {
  const n = hget(H_PINDEX_N);
  for (let i: u32 = 0; i < n; i++) {
    const entry = entryAt(i);
    visitSlot(entry, slot, false);
    account(entry, -1);
  }
}

// After a write: rebuilds an index gone mostly stale, merges a long tail.
export function pxMaintain(): void {
  const n = hget(H_PINDEX_N);
  for (let i: u32 = 0; i < n; i++) {
    const entry = entryAt(i);
    const total = load<u32>(entry, PX_TOTAL);
    const sorted = load<u32>(entry, PX_SORTED);
    if (<u64>total > 2 * <u64>load<u32>(entry, PX_LIVE) + PX_SLACK) rebuild(entry);
    else if (total - sorted > PX_TAIL + (sorted >> 4)) mergeTail(entry);
  }
}

// --------------------------------------------------------------- exports --

function findByName(name: usize, len: u32): i32 {
  const n = hget(H_PINDEX_N);
  for (let i: u32 = 0; i < n; i++) {
    const e = entryAt(i);
    if (load<u32>(e, PX_NAME_LEN) == len && memory.compare(e + PX_NAME, name, len) == 0) return <i32>i;
  }
  return -1;
}

function freeEntry(i: u32): void {
  const e = entryAt(i);
  const rec = <usize>load<u32>(e, PX_RECORDS);
  if (rec != 0) runFree(rec, slabsFor(load<u32>(e, PX_CAP) << REC_SHIFT), CLASS_IDMAP);
  const n = hget(H_PINDEX_N) - 1;
  if (i != n) memory.copy(e, entryAt(n), PX_BYTES);
  hset(H_PINDEX_N, n);
  if (n == 0) {
    runFree(<usize>hget(H_PINDEX), 1, CLASS_IDMAP);
    hset(H_PINDEX, 0);
  }
}

// The name staged at io: 0 name bytes u32 | 4 steps bytes u32 | 8 steps u32
// | 12 name | steps.
// @ts-ignore: decorator
@inline function stagedName(): usize {
  return <usize>hget(H_IO) + 12;
}

// Creates the index staged at io (see stagedName) of `type` and fills it
// from the live payloads. The same name and type again: OK, nothing done;
// another type: the old index is replaced. ERR_INVALID (bad staging, a
// type out of range, PX_MAX indexes), ERR_OUT_OF_MEMORY or ERR_CORRUPT
// leave the indexes as they were (but an index replaced by another type).
export function pxCreate(type: u32): i32 {
  const io = <usize>hget(H_IO);
  const nameLen = load<u32>(io);
  const stepsLen = load<u32>(io, 4);
  const steps = load<u32>(io, 8);
  const name = stagedName();
  if (type < PX_KEYWORD || type > PX_UUID) return ERR_INVALID;
  if (nameLen == 0 || nameLen > PX_NAME_MAX || stepsLen > PX_STEPS_MAX || steps == 0 || steps > MAX_PATH_STEPS) return ERR_INVALID;
  const stepsPtr = name + nameLen;
  if (checkPath(stepsPtr, steps, stepsPtr + stepsLen) != stepsPtr + stepsLen) return ERR_INVALID;
  const had = findByName(name, nameLen);
  if (had >= 0) {
    if (load<u32>(entryAt(<u32>had), PX_TYPE) == type) return OK;
    freeEntry(<u32>had);
  }
  const n = hget(H_PINDEX_N);
  if (n >= PX_MAX) return ERR_INVALID;
  if (hget(H_PINDEX) == 0) {
    const dir = runAlloc(1, CLASS_IDMAP);
    if (dir == 0) return ERR_OUT_OF_MEMORY;
    memory.fill(dir, 0, 1 << SLAB_SHIFT);
    hset(H_PINDEX, <u32>dir);
  }
  const e = entryAt(n);
  memory.fill(e, 0, PX_BYTES);
  store<u32>(e, type, PX_TYPE);
  store<u32>(e, nameLen, PX_NAME_LEN);
  store<u32>(e, stepsLen, PX_STEPS_LEN);
  store<u32>(e, steps, PX_STEP_COUNT);
  memory.copy(e + PX_NAME, name, nameLen);
  memory.copy(e + PX_STEPS, stepsPtr, stepsLen);
  // count, make room, fill: the entry counts only once it is complete
  const slots = hget(H_SLOTS);
  let need: u64 = 0;
  let status = OK;
  for (let s: u32 = 0; s < slots && status == OK; s++) {
    if (isDeleted(metaOf(nodePtr(s)))) continue;
    status = visitSlot(e, s, false);
    need += load<u32>(ctxPtr(), CTX_KEYED);
  }
  if (status == OK && (need > 0xfffffff || !ensureRoom(e, max<u32>(<u32>need, 1)))) status = ERR_OUT_OF_MEMORY;
  if (status == OK) status = rebuild(e);
  hset(H_PINDEX_N, n + 1);
  if (status != OK) freeEntry(n);
  return status;
}

// Drops the index named at io (see stagedName): 1, or 0 when there is none.
export function pxDrop(): i32 {
  const i = findByName(stagedName(), load<u32>(<usize>hget(H_IO)));
  if (i < 0) return 0;
  freeEntry(<u32>i);
  return 1;
}

// The entry of index `i` (for the host to read its type, name and
// points), or 0 past the last.
export function pxEntry(i: u32): usize {
  return i < hget(H_PINDEX_N) ? entryAt(i) : 0;
}

// Arena bytes the indexes hold: the directory and the record runs.
export function pxBytes(): u64 {
  const n = hget(H_PINDEX_N);
  if (n == 0) return 0;
  let bytes: u64 = 1 << SLAB_SHIFT;
  for (let i: u32 = 0; i < n; i++) bytes += <u64>slabsFor(load<u32>(entryAt(i), PX_CAP) << REC_SHIFT) << SLAB_SHIFT;
  return bytes;
}

// ------------------------------------------------------------- queries --

// First record at or after `from` with key >= k (or > k when `after`).
function bound(entry: usize, n: u32, k: u64, after: bool): u32 {
  let lo: u32 = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const mk = load<u64>(recPtr(entry, mid));
    if (mk < k || (after && mk == k)) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// The record's slot into `out` at `at` when it is live and new this `gen`.
// @ts-ignore: decorator
@inline function gather(r: usize, visited: usize, out: usize, at: u32, gen: u32): u32 {
  const s = load<u32>(r, 8);
  if (isDeleted(metaOf(nodePtr(s))) || !visit(visited, s, gen)) return at;
  setU32At(out, at, s);
  return at + 1;
}

// Records with a key in [lo, hi]: counted, or their slots gathered (live,
// each once per `gen`) into the candidate buffer at `out` from `at`; the
// new count either way.
function scanRange(entry: usize, lo: u64, hi: u64, out: usize, at: u32, gen: u32): u32 {
  if (lo > hi) return at;
  const sorted = load<u32>(entry, PX_SORTED);
  const total = load<u32>(entry, PX_TOTAL);
  const a = bound(entry, sorted, lo, false);
  const b = bound(entry, sorted, hi, true);
  if (out == 0) {
    at += b - a;
    for (let i = sorted; i < total; i++) {
      const k = load<u64>(recPtr(entry, i));
      if (k >= lo && k <= hi) at++;
    }
    return at;
  }
  const visited = <usize>hget(H_VISITED);
  for (let i = a; i < b; i++) at = gather(recPtr(entry, i), visited, out, at, gen);
  for (let i = sorted; i < total; i++) {
    const r = recPtr(entry, i);
    const k = load<u64>(r);
    if (k >= lo && k <= hi) at = gather(r, visited, out, at, gen);
  }
  return at;
}

// The leaf's key ranges in `entry`: counted (out == 0) or gathered.
function scanLeaf(leaf: usize, entry: usize, out: usize, gen: u32): u32 {
  const op = <u32>load<u8>(leaf, NODE_OP);
  const m = leaf + <usize>load<u32>(leaf, LEAF_MATCHER);
  let n: u32 = 0;
  if (op == OP_KEYWORD) {
    const count = load<u32>(m);
    let p = m + 4;
    for (let i: u32 = 0; i < count; i++) {
      const len = load<u32>(p);
      const k = hashBytes(p + 4, len);
      n = scanRange(entry, k, k, out, n, gen);
      p += 4 + <usize>len;
    }
  } else if (op == OP_INTEGER) {
    const count = load<u32>(m);
    for (let i: u32 = 0; i < count; i++) {
      const k = numKey(<f64>load<i64>(m + 4 + (<usize>i << 3)));
      n = scanRange(entry, k, k, out, n, gen);
    }
  } else if (op == OP_BOOL) {
    const k: u64 = load<u8>(m) != 0 ? 1 : 0;
    n = scanRange(entry, k, k, out, n, gen);
  } else {
    // RANGE: bounds widened to inclusive ones (a superset)
    const mask = <u32>load<u8>(m);
    let lo: u64 = 0;
    let hi: u64 = 0xffffffffffffffff;
    if ((mask & B_GT) != 0) lo = max<u64>(lo, numKey(load<f64>(m + 1)));
    if ((mask & B_GTE) != 0) lo = max<u64>(lo, numKey(load<f64>(m + 9)));
    if ((mask & B_LT) != 0) hi = min<u64>(hi, numKey(load<f64>(m + 17)));
    if ((mask & B_LTE) != 0) hi = min<u64>(hi, numKey(load<f64>(m + 25)));
    n = scanRange(entry, lo, hi, out, n, gen);
  }
  return n;
}

// The index that can answer the leaf at `leaf` (same path, a type whose
// records cover the condition), or 0.
function indexFor(leaf: usize): usize {
  const op = <u32>load<u8>(leaf, NODE_OP);
  if ((<u32>load<u8>(leaf, NODE_FLAGS) & F_MISSING) != 0) return 0;
  if (op != OP_KEYWORD && op != OP_INTEGER && op != OP_BOOL && op != OP_RANGE) return 0;
  const steps = load<u32>(leaf, LEAF_STEPS);
  const pathBytes = load<u32>(leaf, LEAF_MATCHER) - LEAF_PATH;
  const n = hget(H_PINDEX_N);
  for (let i: u32 = 0; i < n; i++) {
    const e = entryAt(i);
    if (load<u32>(e, PX_STEP_COUNT) != steps || load<u32>(e, PX_STEPS_LEN) != pathBytes) continue;
    if (memory.compare(e + PX_STEPS, leaf + LEAF_PATH, pathBytes) != 0) continue;
    const t = load<u32>(e, PX_TYPE);
    const fits = op == OP_KEYWORD ? t == PX_KEYWORD || t == PX_UUID
      : op == OP_BOOL ? t == PX_BOOL
      : t == PX_INTEGER || t == PX_FLOAT;
    if (fits) return e;
  }
  return 0;
}

// The root's conjuncts an index can answer: the root itself, or the
// children of an AND. Picks the one with the fewest records in its key
// ranges (merging a long tail first) and leaves it and its index in the
// context for pxGather. The count (an upper bound on the matching live
// points), or -1 when no index applies.
export function pxPlan(root: usize): i32 {
  if (hget(H_PINDEX_N) == 0) return -1;
  const op = <u32>load<u8>(root, NODE_OP);
  let p = op == OP_AND ? root + NODE_BODY : root;
  const stop = op == OP_AND ? root + <usize>load<u32>(root, NODE_SIZE) : root + 1;
  let best: i64 = -1;
  const ctx = ctxPtr();
  while (p < stop) {
    const e = indexFor(p);
    if (e != 0) {
      if (load<u32>(e, PX_TOTAL) - load<u32>(e, PX_SORTED) > PX_QUERY_TAIL) mergeTail(e);
      const c = <i64>scanLeaf(p, e, 0, 0);
      if (best < 0 || c < best) {
        best = c;
        store<u32>(ctx, <u32>e, CTX_ENTRY);
        store<u32>(ctx, <u32>p, CTX_SLOT);
      }
    }
    if (op != OP_AND) break;
    p += <usize>load<u32>(p, NODE_SIZE);
  }
  return <i32>best;
}

// The share of pxPlan's chosen index's records that are live (stale ones
// inflate its count): what the planner scales that count by.
export function pxLiveShare(): f64 {
  const e = <usize>load<u32>(ctxPtr(), CTX_ENTRY);
  const total = load<u32>(e, PX_TOTAL);
  return total == 0 ? 1 : min<f64>(1, <f64>load<u32>(e, PX_LIVE) / <f64>total);
}

// The live slots pxPlan's choice yields, each once, into the candidate
// buffer (H_PX_CAND); `count` is what pxPlan returned. Their number, or
// ERR_OUT_OF_MEMORY.
export function pxGather(count: u32): i32 {
  const ctx = ctxPtr();
  const e = <usize>load<u32>(ctx, CTX_ENTRY);
  const leaf = <usize>load<u32>(ctx, CTX_SLOT);
  const cap = hget(H_PX_CAND_CAP);
  if (count > cap || hget(H_PX_CAND) == 0) {
    const want = max<u32>(count, 1024);
    const run = runAlloc(slabsFor(want << 2), CLASS_SCRATCH);
    if (run == 0) return ERR_OUT_OF_MEMORY;
    if (hget(H_PX_CAND) != 0) runFree(<usize>hget(H_PX_CAND), slabsFor(cap << 2), CLASS_SCRATCH);
    hset(H_PX_CAND, <u32>run);
    hset(H_PX_CAND_CAP, (slabsFor(want << 2) << SLAB_SHIFT) >> 2);
  }
  if (!ensureVisited(max<u32>(hget(H_SLOTS), 1))) return ERR_OUT_OF_MEMORY;
  return <i32>scanLeaf(leaf, e, <usize>hget(H_PX_CAND), nextGen());
}

// Candidate i of the last pxGather.
// @ts-ignore: decorator
@inline export function pxCandidate(i: u32): u32 {
  return u32At(<usize>hget(H_PX_CAND), i);
}

// Bytes of the candidate buffer (scratch).
export function pxCandBytes(): u64 {
  return hget(H_PX_CAND) == 0 ? 0 : <u64>slabsFor(hget(H_PX_CAND_CAP) << 2) << SLAB_SHIFT;
}
