// Filter programs: the host compiles a filter (host/filter/compile.ts) into
// these bytes once; the core checks them once per call (filterCheck) and
// then evaluates them against a slot's payload and id (filterSlot), with no
// allocation and no call out of WASM. Every number is little endian and
// unaligned (wasm loads do not care).
//
//   NODE      0 op u8 | 1 flags u8 | 2 (pad) u16 | 4 size u32 (the whole node)
//             8 body
//   AND, OR   body: child nodes, back to back, up to `size`
//   NOT       body: one child node
//   ATLEAST   body: min u32 | child nodes
//   HAS_ID    body: count u32 | count x ID ENTRY, sorted by (kind, hi, lo)
//   ID ENTRY  0 lo u64 | 8 hi u64 | 16 kind u32 (1: UUID) | 20 (pad) u32
//   LEAF      body: matcher offset u32 (from the node start) | steps u32
//             | steps | matcher
//   STEP      0 kind u8: KEY  | 1 len u32 | 5 key UTF-8 bytes[len]
//                        EACH (nothing more)
//                        INDEX | 1 index u32
//   matchers  KEYWORD, EXCEPT_KEYWORD  count u32 | count x (len u32, UTF-8 bytes)
//             INTEGER, EXCEPT_INTEGER  count u32 | i64[count], ascending
//             BOOL                     value u8 (0 / 1)
//             TEXT                     len u32 | UTF-8 bytes[len]
//             RANGE, VALUES_COUNT      mask u8 (GT 1, GTE 2, LT 4, LTE 8)
//                                      | gt f64 | gte f64 | lt f64 | lte f64
//             IS_EMPTY, IS_NULL        (nothing)
//
//   flags     F_MISSING  a leaf whose path resolves to no value matches
//             F_NULL     (except) a null value matches
//             F_OTHER    (except) a value of another type matches
//
// The host chooses the flags from Qdrant's rules (docs/filtering.md), so
// the core holds no policy about missing fields, only the mechanism.
//
// A payload (payload.ts) is one QPB value (host/payload.ts):
//
//   VALUE     0 tag u8 | body: NULL FALSE TRUE none, INT i64, FLOAT f64,
//             STRING len u32 + bytes, ARRAY count u32 + bodyBytes u32 + values,
//             OBJECT count u32 + bodyBytes u32 + (keyLen u32, key, value)*
//
// Path resolution yields values: KEY steps into an object, EACH replaces an
// array by its elements, INDEX takes one element. A leaf folds the values:
// match-like leaves match when any value matches, a value that is an array
// through its elements (one level; an element that is itself an array or an
// object is "another type"); IS_NULL when a value is null; IS_EMPTY when no
// value is anything but null or []; VALUES_COUNT when some value's count
// (null 0, an array its length, any other value 1) is in the bounds, or,
// with no value at all, when 0 is.
//
// Malformed bytes: the program is checked before use (ERR_INVALID); every
// payload read is bounds-checked against its blob (ERR_CORRUPT). Recursion
// is bounded by MAX_FILTER_DEPTH nodes and by the path length; a payload's
// own nesting never recurses (values are skipped by their bodyBytes).

import { ERR_CORRUPT, ERR_INVALID, FLAG_UUID, ID_HI, ID_LO, NODE_PAYLOAD } from "./layout";
import { idOf, isDeleted, metaOf, nodePtr } from "./node";
import { payloadBytesPtr, payloadLen } from "./payload";
import { pxVisit } from "./pindex";

// ------------------------------------------------------------- program --

// @ts-ignore: decorator
@inline export const OP_AND: u32 = 1;
// @ts-ignore: decorator
@inline export const OP_OR: u32 = 2;
// @ts-ignore: decorator
@inline export const OP_NOT: u32 = 3;
// @ts-ignore: decorator
@inline export const OP_ATLEAST: u32 = 4;
// @ts-ignore: decorator
@inline export const OP_HAS_ID: u32 = 5;
// leaves: OP_KEYWORD and up
// @ts-ignore: decorator
@inline export const OP_KEYWORD: u32 = 16;
// @ts-ignore: decorator
@inline export const OP_EXCEPT_KEYWORD: u32 = 17;
// @ts-ignore: decorator
@inline export const OP_INTEGER: u32 = 18;
// @ts-ignore: decorator
@inline export const OP_EXCEPT_INTEGER: u32 = 19;
// @ts-ignore: decorator
@inline export const OP_BOOL: u32 = 20;
// @ts-ignore: decorator
@inline export const OP_TEXT: u32 = 21;
// @ts-ignore: decorator
@inline export const OP_RANGE: u32 = 22;
// @ts-ignore: decorator
@inline export const OP_VALUES_COUNT: u32 = 23;
// @ts-ignore: decorator
@inline export const OP_IS_EMPTY: u32 = 24;
// @ts-ignore: decorator
@inline export const OP_IS_NULL: u32 = 25;

// not a program op: walk() hands every value it reaches to pindex.ts
// @ts-ignore: decorator
@inline const OP_COLLECT: u32 = 255;

// @ts-ignore: decorator
@inline export const F_MISSING: u32 = 1;
// @ts-ignore: decorator
@inline export const F_NULL: u32 = 2;
// @ts-ignore: decorator
@inline export const F_OTHER: u32 = 4;

// @ts-ignore: decorator
@inline export const STEP_KEY: u32 = 0;
// @ts-ignore: decorator
@inline export const STEP_EACH: u32 = 1;
// @ts-ignore: decorator
@inline export const STEP_INDEX: u32 = 2;

// @ts-ignore: decorator
@inline export const B_GT: u32 = 1;
// @ts-ignore: decorator
@inline export const B_GTE: u32 = 2;
// @ts-ignore: decorator
@inline export const B_LT: u32 = 4;
// @ts-ignore: decorator
@inline export const B_LTE: u32 = 8;

// @ts-ignore: decorator
@inline export const NODE_OP: u32 = 0;
// @ts-ignore: decorator
@inline export const NODE_FLAGS: u32 = NODE_OP + 1;
// @ts-ignore: decorator
@inline export const NODE_SIZE: u32 = NODE_FLAGS + 3;
// @ts-ignore: decorator
@inline export const NODE_BODY: u32 = NODE_SIZE + 4;
// @ts-ignore: decorator
@inline export const LEAF_MATCHER: u32 = NODE_BODY; // matcher offset u32
// @ts-ignore: decorator
@inline export const LEAF_STEPS: u32 = LEAF_MATCHER + 4;
// @ts-ignore: decorator
@inline export const LEAF_PATH: u32 = LEAF_STEPS + 4;
// @ts-ignore: decorator
@inline export const IDE_LO: u32 = 0;
// @ts-ignore: decorator
@inline export const IDE_HI: u32 = IDE_LO + 8;
// @ts-ignore: decorator
@inline export const IDE_KIND: u32 = IDE_HI + 8;
// @ts-ignore: decorator
@inline export const IDE_BYTES: u32 = IDE_KIND + 8;
// @ts-ignore: decorator
@inline export const BOUNDS_BYTES: u32 = 1 + 4 * 8;
// @ts-ignore: decorator
@inline export const MAX_FILTER_DEPTH: u32 = 32;
// @ts-ignore: decorator
@inline export const MAX_PATH_STEPS: u32 = 64;

// ------------------------------------------------------------- payload --

// @ts-ignore: decorator
@inline export const T_NULL: u32 = 0;
// @ts-ignore: decorator
@inline export const T_FALSE: u32 = 1;
// @ts-ignore: decorator
@inline export const T_TRUE: u32 = 2;
// @ts-ignore: decorator
@inline export const T_INT: u32 = 3;
// @ts-ignore: decorator
@inline export const T_FLOAT: u32 = 4;
// @ts-ignore: decorator
@inline export const T_STRING: u32 = 5;
// @ts-ignore: decorator
@inline export const T_ARRAY: u32 = 6;
// @ts-ignore: decorator
@inline export const T_OBJECT: u32 = 7;
// @ts-ignore: decorator
@inline const V_COUNT: u32 = 1; // array / object: count u32
// @ts-ignore: decorator
@inline const V_BODY_BYTES: u32 = V_COUNT + 4; // array / object: bodyBytes u32
// @ts-ignore: decorator
@inline const V_ITEMS: u32 = V_BODY_BYTES + 4; // array elements / object entries
// @ts-ignore: decorator
@inline const V_NUM: u32 = 1; // int i64 / float f64
// @ts-ignore: decorator
@inline const V_STR_LEN: u32 = 1;
// @ts-ignore: decorator
@inline const V_STR: u32 = V_STR_LEN + 4;

// @ts-ignore: decorator
@inline const NONE32: u32 = 0xffffffff;

// A leaf's fold over the values of its path (match-like leaves, IS_NULL and
// IS_EMPTY; VALUES_COUNT folds a sum instead).
// @ts-ignore: decorator
@inline const R_SEEN: i32 = 0; // values, none matched
// @ts-ignore: decorator
@inline const R_MATCH: i32 = 1;
// @ts-ignore: decorator
@inline const R_NONE: i32 = 2; // no value at all

// @ts-ignore: decorator
@inline function fold(a: i32, b: i32): i32 {
  if (a < 0) return a;
  if (b < 0) return b;
  if (a == R_MATCH || b == R_MATCH) return R_MATCH;
  return a == R_SEEN || b == R_SEEN ? R_SEEN : R_NONE;
}

// @ts-ignore: decorator
@inline function fits(p: usize, n: u64, end: usize): bool {
  return <u64>p + n <= <u64>end;
}

// The end of the value at `v`, or 0 when it runs past `end` or is not QPB.
function valueEnd(v: usize, end: usize): usize {
  return valueEndAt(v, end);
}

// valueEnd, inlined where a member list is scanned.
// @ts-ignore: decorator
@inline function valueEndAt(v: usize, end: usize): usize {
  if (!fits(v, 1, end)) return 0;
  const tag = <u32>load<u8>(v);
  if (tag <= T_TRUE) return v + 1;
  if (tag <= T_FLOAT) return fits(v, 9, end) ? v + 9 : 0;
  if (tag == T_STRING) {
    if (!fits(v, V_STR, end)) return 0;
    const n = <u64>load<u32>(v, V_STR_LEN);
    return fits(v, V_STR + n, end) ? v + V_STR + <usize>n : 0;
  }
  if (tag <= T_OBJECT) {
    if (!fits(v, V_ITEMS, end)) return 0;
    const n = <u64>load<u32>(v, V_BODY_BYTES);
    return fits(v, V_ITEMS + n, end) ? v + V_ITEMS + <usize>n : 0;
  }
  return 0;
}

// @ts-ignore: decorator
@inline function bytesEqual(a: usize, b: usize, n: u32): bool {
  return memory.compare(a, b, n) == 0;
}

// bytesEqual for short runs (keys): words, then bytes, no call.
// @ts-ignore: decorator
@inline function shortEqual(a: usize, b: usize, n: u32): bool {
  let i: usize = 0;
  const n4 = <usize>(n & ~3);
  for (; i < n4; i += 4) {
    if (load<u32>(a + i) != load<u32>(b + i)) return false;
  }
  for (; i < <usize>n; i++) {
    if (load<u8>(a + i) != load<u8>(b + i)) return false;
  }
  return true;
}

// True when the n bytes at `needle` occur in the m bytes at `hay`.
function contains(hay: usize, m: u32, needle: usize, n: u32): bool {
  if (n == 0) return true;
  if (n > m) return false;
  const first = load<u8>(needle);
  for (let i: u32 = 0; i + n <= m; i++) {
    if (load<u8>(hay + i) == first && bytesEqual(hay + i, needle, n)) return true;
  }
  return false;
}

// @ts-ignore: decorator
@inline function inBounds(x: f64, m: usize): bool {
  const mask = <u32>load<u8>(m);
  const b = m + 1;
  if ((mask & B_GT) != 0 && !(x > load<f64>(b))) return false;
  if ((mask & B_GTE) != 0 && !(x >= load<f64>(b, 8))) return false;
  if ((mask & B_LT) != 0 && !(x < load<f64>(b, 16))) return false;
  if ((mask & B_LTE) != 0 && !(x <= load<f64>(b, 24))) return false;
  return true;
}

function stringIn(list: usize, s: usize, n: u32): bool {
  const count = load<u32>(list);
  let p = list + 4;
  for (let i: u32 = 0; i < count; i++) {
    const len = load<u32>(p);
    if (len == n && shortEqual(p + 4, s, n)) return true;
    p += 4 + <usize>len;
  }
  return false;
}

function intIn(list: usize, x: i64): bool {
  let lo: i32 = 0;
  let hi = <i32>load<u32>(list) - 1;
  const base = list + 4;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const y = load<i64>(base + (<usize>mid << 3));
    if (y == x) return true;
    if (y < x) lo = mid + 1; else hi = mid - 1;
  }
  return false;
}

// One scalar value (not an array) against a match-like leaf: 1 or 0.
function scalarMatch(op: u32, flags: u32, m: usize, v: usize): i32 {
  const tag = <u32>load<u8>(v);
  switch (op) {
    case OP_KEYWORD:
      return tag == T_STRING && stringIn(m, v + V_STR, load<u32>(v, V_STR_LEN)) ? 1 : 0;
    case OP_EXCEPT_KEYWORD:
      if (tag == T_STRING) return stringIn(m, v + V_STR, load<u32>(v, V_STR_LEN)) ? 0 : 1;
      return (flags & (tag == T_NULL ? F_NULL : F_OTHER)) != 0 ? 1 : 0;
    case OP_INTEGER:
      return tag == T_INT && intIn(m, load<i64>(v, V_NUM)) ? 1 : 0;
    case OP_EXCEPT_INTEGER:
      if (tag == T_INT) return intIn(m, load<i64>(v, V_NUM)) ? 0 : 1;
      return (flags & (tag == T_NULL ? F_NULL : F_OTHER)) != 0 ? 1 : 0;
    case OP_BOOL:
      return (tag == T_TRUE || tag == T_FALSE) && (tag == T_TRUE) == (load<u8>(m) != 0) ? 1 : 0;
    case OP_TEXT:
      return tag == T_STRING && contains(v + V_STR, load<u32>(v, V_STR_LEN), m + 4, load<u32>(m)) ? 1 : 0;
    case OP_RANGE:
      if (tag == T_INT) return inBounds(<f64>load<i64>(v, V_NUM), m) ? 1 : 0;
      if (tag == T_FLOAT) return inBounds(load<f64>(v, V_NUM), m) ? 1 : 0;
      return 0;
  }
  return 0;
}

// What one resolved value contributes to its leaf: R_MATCH or R_SEEN (or a
// negative status). The value is known to fit before `end`.
function leafValue(op: u32, flags: u32, m: usize, v: usize, end: usize): i32 {
  const tag = <u32>load<u8>(v);
  if (op == OP_IS_NULL) return tag == T_NULL ? R_MATCH : R_SEEN;
  const emptyArray = tag == T_ARRAY && load<u32>(v, V_COUNT) == 0;
  // IS_EMPTY folds "some value is not empty" and inverts it at the end
  if (op == OP_IS_EMPTY) return tag == T_NULL || emptyArray ? R_SEEN : R_MATCH;
  if (op == OP_VALUES_COUNT) {
    const count: u32 = tag == T_NULL ? 0 : tag == T_ARRAY ? load<u32>(v, V_COUNT) : 1;
    return inBounds(<f64>count, m) ? R_MATCH : R_SEEN;
  }
  if (tag != T_ARRAY) return scalarMatch(op, flags, m, v);
  const count = load<u32>(v, V_COUNT);
  let e = v + V_ITEMS;
  for (let i: u32 = 0; i < count; i++) {
    const next = valueEnd(e, end);
    if (next == 0) return ERR_CORRUPT;
    // an element that is an array or an object is "another type" (F_OTHER)
    if (scalarMatch(op, flags, m, e) == 1) return R_MATCH;
    e = next;
  }
  return R_SEEN;
}

// Resolves `n` path steps from `s` on the value at `v` (ending by `end`)
// and folds the leaf over what they reach.
function walk(op: u32, flags: u32, s: usize, n: u32, m: usize, v: usize, end: usize): i32 {
  const absent: i32 = R_NONE;
  if (n == 0) return op == OP_COLLECT ? collectValue(m, v, end) : leafValue(op, flags, m, v, end);
  const kind = <u32>load<u8>(s);
  const tag = <u32>load<u8>(v);
  if (kind == STEP_KEY) {
    if (tag != T_OBJECT) return absent;
    const klen = load<u32>(s, 1);
    const key = s + 5;
    const next = key + klen;
    const count = load<u32>(v, V_COUNT);
    const bodyEnd = valueEnd(v, end);
    let p = v + V_ITEMS;
    for (let i: u32 = 0; i < count; i++) {
      if (!fits(p, 4, bodyEnd)) return ERR_CORRUPT;
      const kl = load<u32>(p);
      if (!fits(p + 4, <u64>kl, bodyEnd)) return ERR_CORRUPT;
      const val = p + 4 + kl;
      const ve = valueEnd(val, bodyEnd);
      if (ve == 0) return ERR_CORRUPT;
      if (kl == klen && bytesEqual(p + 4, key, kl)) return walk(op, flags, next, n - 1, m, val, ve);
      p = ve;
    }
    return absent;
  }
  if (tag != T_ARRAY) return absent;
  const count = load<u32>(v, V_COUNT);
  const bodyEnd = valueEnd(v, end);
  const want = kind == STEP_INDEX ? load<u32>(s, 1) : NONE32;
  const next = kind == STEP_INDEX ? s + 5 : s + 1;
  let acc = absent;
  let e = v + V_ITEMS;
  for (let i: u32 = 0; i < count; i++) {
    const ee = valueEnd(e, bodyEnd);
    if (ee == 0) return ERR_CORRUPT;
    if (kind == STEP_INDEX) {
      if (i == want) return walk(op, flags, next, n - 1, m, e, ee);
    } else {
      const r = walk(op, flags, next, n - 1, m, e, ee);
      acc = fold(acc, r);
      if (acc < 0 || acc == R_MATCH) return acc;
    }
    e = ee;
  }
  return acc;
}

// What a match-like leaf would test of one resolved value, handed to the
// payload index (pxVisit): the value, or an array's elements, one level.
function collectValue(ctx: usize, v: usize, end: usize): i32 {
  if (<u32>load<u8>(v) != T_ARRAY) {
    pxVisit(ctx, v);
    return R_SEEN;
  }
  const count = load<u32>(v, V_COUNT);
  let e = v + V_ITEMS;
  for (let i: u32 = 0; i < count; i++) {
    const next = valueEnd(e, end);
    if (next == 0) return ERR_CORRUPT;
    pxVisit(ctx, e);
    e = next;
  }
  return R_SEEN;
}

// Hands pxVisit(ctx, value) every value the `n` steps at `s` reach in the
// payload [v, end) (v == 0: none), as a leaf on that path sees them: the
// one definition of a path's values that filters and indexes share.
// 0, or ERR_CORRUPT for bytes that are not QPB.
export function collectPath(s: usize, n: u32, ctx: usize, v: usize, end: usize): i32 {
  if (v == 0) return 0;
  if (valueEndAt(v, end) != end) return ERR_CORRUPT;
  const r = walk(OP_COLLECT, 0, s, n, ctx, v, end);
  return r < 0 ? r : 0;
}

// The tag of the QPB value at `v`, and its scalar bodies (pindex.ts keys).
// @ts-ignore: decorator
@inline export function qpbTag(v: usize): u32 {
  return <u32>load<u8>(v);
}
// @ts-ignore: decorator
@inline export function qpbNumber(v: usize): f64 {
  return <u32>load<u8>(v) == T_INT ? <f64>load<i64>(v, V_NUM) : load<f64>(v, V_NUM);
}
// @ts-ignore: decorator
@inline export function qpbStringPtr(v: usize): usize {
  return v + V_STR;
}
// @ts-ignore: decorator
@inline export function qpbStringLen(v: usize): u32 {
  return load<u32>(v, V_STR_LEN);
}

// walk() for the commonest path, one KEY step (a top-level member): no
// recursion, no call per member. `v` is a whole payload [v, end).
// @ts-ignore: decorator
@inline function memberLeaf(op: u32, flags: u32, s: usize, m: usize, v: usize, end: usize): i32 {
  if (<u32>load<u8>(v) != T_OBJECT) return R_NONE;
  const klen = load<u32>(s, 1);
  const key = s + 5;
  const count = load<u32>(v, V_COUNT);
  let p = v + V_ITEMS;
  for (let i: u32 = 0; i < count; i++) {
    if (!fits(p, 4, end)) return ERR_CORRUPT;
    const kl = load<u32>(p);
    if (!fits(p + 4, <u64>kl, end)) return ERR_CORRUPT;
    const val = p + 4 + kl;
    const ve = valueEndAt(val, end);
    if (ve == 0) return ERR_CORRUPT;
    if (kl == klen && shortEqual(p + 4, key, kl)) return leafValue(op, flags, m, val, ve);
    p = ve;
  }
  return R_NONE;
}

// @ts-ignore: decorator
@inline function leaf(op: u32, flags: u32, node: usize, v: usize, end: usize): i32 {
  const m = node + <usize>load<u32>(node, LEAF_MATCHER);
  let r: i32;
  if (v == 0) r = R_NONE; // no payload: no value anywhere
  else {
    if (valueEndAt(v, end) != end) return ERR_CORRUPT;
    const steps = load<u32>(node, LEAF_STEPS);
    const path = node + LEAF_PATH;
    r = steps == 1 && <u32>load<u8>(path) == STEP_KEY
      ? memberLeaf(op, flags, path, m, v, end)
      : walk(op, flags, path, steps, m, v, end);
  }
  if (r < 0) return r;
  if (op == OP_VALUES_COUNT && r == R_NONE) return inBounds(0, m) ? 1 : 0;
  if (op == OP_IS_EMPTY) return r == R_MATCH ? 0 : 1;
  if (op == OP_IS_NULL) return r == R_MATCH ? 1 : 0;
  if (r == R_NONE) return (flags & F_MISSING) != 0 ? 1 : 0;
  return r == R_MATCH ? 1 : 0;
}

// @ts-ignore: decorator
@inline function idCompare(e: usize, kind: u64, hi: u64, lo: u64): i32 {
  const ek = <u64>load<u32>(e, IDE_KIND);
  if (ek != kind) return ek < kind ? -1 : 1;
  const eh = load<u64>(e, IDE_HI);
  if (eh != hi) return eh < hi ? -1 : 1;
  const el = load<u64>(e, IDE_LO);
  return el == lo ? 0 : el < lo ? -1 : 1;
}

function hasId(body: usize, nPtr: usize): i32 {
  const id = idOf(nPtr);
  const kind: u64 = (metaOf(nPtr) & FLAG_UUID) != 0 ? 1 : 0;
  const hi = load<u64>(id, ID_HI);
  const lo = load<u64>(id, ID_LO);
  let a: i32 = 0;
  let b = <i32>load<u32>(body) - 1;
  const base = body + 4;
  while (a <= b) {
    const mid = (a + b) >>> 1;
    const c = idCompare(base + <usize>mid * IDE_BYTES, kind, hi, lo);
    if (c == 0) return 1;
    if (c < 0) a = mid + 1; else b = mid - 1;
  }
  return 0;
}

// The program node at `p` on the node at `nPtr` with payload value [v, end)
// (v == 0: none): 1, 0, or a negative status. The program has been checked.
function evalNode(p: usize, nPtr: usize, v: usize, end: usize): i32 {
  const op = <u32>load<u8>(p, NODE_OP);
  const flags = <u32>load<u8>(p, NODE_FLAGS);
  const stop = p + <usize>load<u32>(p, NODE_SIZE);
  if (op >= OP_KEYWORD) return leaf(op, flags, p, v, end);
  if (op == OP_HAS_ID) return hasId(p + NODE_BODY, nPtr);
  if (op == OP_NOT) {
    const r = evalNode(p + NODE_BODY, nPtr, v, end);
    return r < 0 ? r : 1 - r;
  }
  let need: u32 = 1;
  let q = p + NODE_BODY;
  if (op == OP_ATLEAST) {
    need = load<u32>(q);
    q += 4;
    if (need == 0) return 1;
  }
  let hits: u32 = 0;
  while (q < stop) {
    const r = evalNode(q, nPtr, v, end);
    if (r < 0) return r;
    if (op == OP_AND) {
      if (r == 0) return 0;
    } else if (r == 1 && ++hits >= need) {
      return 1;
    }
    q += <usize>load<u32>(q, NODE_SIZE);
  }
  return op == OP_AND ? 1 : 0;
}

// 1 when the live node in `slot` satisfies the checked program at `prog`,
// 0 when it does not (a tombstone never does), ERR_CORRUPT for a payload
// that is not QPB.
export function filterSlot(prog: usize, slot: u32): i32 {
  return filterAt(prog, nodePtr(slot));
}

// filterSlot on the node record at `p` (the scan has it already).
// @ts-ignore: decorator
@inline export function filterAt(prog: usize, p: usize): i32 {
  if (isDeleted(metaOf(p))) return 0;
  const blob = <usize>load<u32>(p, NODE_PAYLOAD);
  const v: usize = blob == 0 ? 0 : payloadBytesPtr(blob);
  const end: usize = blob == 0 ? 0 : v + payloadLen(blob);
  // a leaf root (the common one-condition filter, see filterRoot) skips evalNode
  const op = <u32>load<u8>(prog, NODE_OP);
  if (op >= OP_KEYWORD) return leaf(op, <u32>load<u8>(prog, NODE_FLAGS), prog, v, end);
  return evalNode(prog, p, v, end);
}

// The node a checked program reduces to: an AND, OR or ATLEAST 1 of one
// child is that child (the host wraps every filter in one; `must: [c]` is
// c), so a one-condition filter is evaluated as its leaf.
export function filterRoot(prog: usize): usize {
  let p = prog;
  for (let depth: u32 = 0; depth <= MAX_FILTER_DEPTH; depth++) {
    const op = <u32>load<u8>(p, NODE_OP);
    if (op != OP_AND && op != OP_OR && op != OP_ATLEAST) return p;
    let child = p + NODE_BODY;
    if (op == OP_ATLEAST) {
      if (load<u32>(child) != 1) return p;
      child += 4;
    }
    const stop = p + <usize>load<u32>(p, NODE_SIZE);
    // exactly one child
    if (child >= stop || child + <usize>load<u32>(child, NODE_SIZE) != stop) return p;
    p = child;
  }
  return p;
}

// ---------------------------------------------------------------- check --

export function checkPath(s: usize, n: u32, end: usize): usize {
  if (n > MAX_PATH_STEPS) return 0;
  let p = s;
  for (let i: u32 = 0; i < n; i++) {
    if (!fits(p, 1, end)) return 0;
    const kind = <u32>load<u8>(p);
    if (kind == STEP_EACH) p += 1;
    else if (kind == STEP_INDEX) {
      if (!fits(p, 5, end)) return 0;
      p += 5;
    } else if (kind == STEP_KEY) {
      if (!fits(p, 5, end)) return 0;
      const len = <u64>load<u32>(p, 1);
      if (!fits(p, 5 + len, end)) return 0;
      p += 5 + <usize>len;
    } else return 0;
  }
  return p;
}

// The end of a well-formed matcher for `op` at `m`, or 0.
function checkMatcher(op: u32, m: usize, end: usize): usize {
  if (op == OP_IS_EMPTY || op == OP_IS_NULL) return m;
  if (op == OP_BOOL) return fits(m, 1, end) ? m + 1 : 0;
  if (op == OP_RANGE || op == OP_VALUES_COUNT) {
    return fits(m, BOUNDS_BYTES, end) && <u32>load<u8>(m) <= 15 ? m + BOUNDS_BYTES : 0;
  }
  if (!fits(m, 4, end)) return 0;
  const count = <u64>load<u32>(m);
  if (op == OP_TEXT) return fits(m, 4 + count, end) ? m + 4 + <usize>count : 0;
  if (op == OP_INTEGER || op == OP_EXCEPT_INTEGER) {
    if (!fits(m, 4 + (count << 3), end)) return 0;
    for (let i: u32 = 1; i < <u32>count; i++) {
      if (load<i64>(m + 4 + (<usize>i << 3)) <= load<i64>(m + 4 + (<usize>(i - 1) << 3))) return 0;
    }
    return m + 4 + (<usize>count << 3);
  }
  if (op == OP_KEYWORD || op == OP_EXCEPT_KEYWORD) {
    let p = m + 4;
    for (let i: u64 = 0; i < count; i++) {
      if (!fits(p, 4, end)) return 0;
      const len = <u64>load<u32>(p);
      if (!fits(p, 4 + len, end)) return 0;
      p += 4 + <usize>len;
    }
    return p;
  }
  return 0;
}

// True when the node at `p` is well formed and ends exactly at `end`.
function checkNode(p: usize, end: usize, depth: u32): bool {
  if (depth > MAX_FILTER_DEPTH || !fits(p, NODE_BODY, end)) return false;
  const size = <u64>load<u32>(p, NODE_SIZE);
  if (<u64>p + size != <u64>end || size < NODE_BODY) return false;
  const op = <u32>load<u8>(p, NODE_OP);
  const flags = <u32>load<u8>(p, NODE_FLAGS);
  if (flags > (F_MISSING | F_NULL | F_OTHER)) return false;
  const body = p + NODE_BODY;
  if (op >= OP_KEYWORD) {
    if (op > OP_IS_NULL || !fits(p, LEAF_PATH, end)) return false;
    const m = p + <usize>load<u32>(p, LEAF_MATCHER);
    const pathEnd = checkPath(p + LEAF_PATH, load<u32>(p, LEAF_STEPS), end);
    return pathEnd != 0 && pathEnd == m && checkMatcher(op, m, end) == end;
  }
  if (op == OP_HAS_ID) {
    if (!fits(body, 4, end)) return false;
    const count = <u64>load<u32>(body);
    if (<u64>body + 4 + count * IDE_BYTES != <u64>end) return false;
    for (let i: u32 = 1; i < <u32>count; i++) {
      const e = body + 4 + <usize>i * IDE_BYTES;
      const prev = e - IDE_BYTES;
      if (idCompare(prev, <u64>load<u32>(e, IDE_KIND), load<u64>(e, IDE_HI), load<u64>(e, IDE_LO)) >= 0) return false;
    }
    return true;
  }
  if (op < OP_AND || op > OP_ATLEAST) return false;
  let q = body;
  if (op == OP_ATLEAST) {
    if (!fits(q, 4, end)) return false;
    q += 4;
  }
  let children: u32 = 0;
  while (q < end) {
    if (!fits(q, NODE_BODY, end)) return false;
    const s = <u64>load<u32>(q, NODE_SIZE);
    if (s < NODE_BODY || !fits(q, s, end)) return false;
    if (!checkNode(q, q + <usize>s, depth + 1)) return false;
    q += <usize>s;
    children++;
  }
  return op != OP_NOT || children == 1;
}

// OK when the `len` bytes at `prog` are a well-formed program, else ERR_INVALID.
export function filterCheck(prog: usize, len: u32): i32 {
  return checkNode(prog, prog + len, 0) ? 0 : ERR_INVALID;
}
