// HNSW (Malkov & Yashunin), over slot-addressed node records (node.ts).
// Insert with the neighbour-selection heuristic, search, tombstone delete.
//
// Scratch, allocated once per shard and reused by every call (no allocation
// per query), one run:
//
//   SCRATCH  RES   max-heap of (dist f32, slot u32), H_RES_CAP entries
//            CAND  min-heap of (dist f32, slot u32), H_CAND_CAP entries
//            SEL   selection buffer, H_SEL_CAP entries, then M0 + 2 for pruning
//   VISITED  u16 tag per slot; a slot is visited when its tag == H_VISIT_GEN
//
// Searches walk tombstoned nodes (the graph stays connected) but return
// only live ones. Inserts link to tombstoned nodes too, as hnswlib does;
// the repair pass (repair.ts) replaces those links before compaction.

import {
  CLASS_SCRATCH, ENTRY_BYTES, ERR_INVALID, ERR_NOT_FOUND, ERR_OUT_OF_MEMORY,
  FLAG_DELETED, FLAG_UUID, H_CAND, H_CAND_CAP, H_DELETED, H_DIM, H_EFC, H_ENTRY,
  H_LEVEL_MULT, H_LIVE, H_LIVE_LINK_BYTES, H_M, H_M0, H_MAX_LEVEL, H_METRIC, H_RES, H_RES_CAP,
  H_RNG, H_SEL, H_SEL_CAP, H_SLOTS, H_NODE_DIR, H_DIV_MAGIC, H_PER_SLAB, H_STRIDE, H_VEC_OFF, H_VISITED, H_VISITED_CAP, H_VISIT_GEN, H_IO,
  H_BIAS_OFF, H_QPARAMS,
  IO_ID_HI, IO_ID_LO, IO_KIND, IO_PAYLOAD, IO_PAYLOAD_LEN, IO_VECTOR, MAX_PAYLOAD_BYTES, NODE_PAYLOAD,
  RESULT_PAYLOAD_LEN, RESULT_PAYLOAD_PTR, MAX_LEVEL, METRIC_COSINE, METRIC_L2, METRIC_IP,
  META_LEVEL_SHIFT, NODE_LINKS, NODE_META, NODE_UPPER, NONE, OK, RESULT_BYTES, RESULT_DIST,
  RESULT_FLAGS, RESULT_ID_HI, RESULT_ID_LO, DEBUG, ID_HI, ID_LO, SLAB_SHIFT, TAG_SHIFT, f32At, headerPtr, hget, hset,
  setU32At, u32At,
} from "./layout";
import { runAlloc, runFree, slabsFor, smallAlloc, smallFree } from "./arena";
import { distance, normalize } from "./distance";
import { codeDistance, codeKernel } from "./quant";
import {
  codePairDistance, encodeInto, encodeSlot, quantLearned, quantMaybeLearn, queryBias, searchCodes, stageSlotCodes, walkCodes,
  writeCandidates,
} from "./qshard";
import { payloadBytesPtr, payloadFree, payloadLen, payloadStore } from "./payload";
import { pxAdd, pxMaintain, pxRemove, pxReserve } from "./pindex";
import {
  countAt, ensureSlots, idOf, isDeleted, isUuid, levelOf, linksAt, pinLink, pinnedOf,
  maxLinks, metaOf, nodePtr, setCountAt, slotPtr, upperBlockBytes, vectorOf, coldPtr, vecOf, isQuantized, isSpilled, onCodes,
} from "./node";
import { idmapFind, idmapInsert, idmapRemove, idmapReplace, idmapReserve } from "./idmap";
import {
  copyEntry, drainAscending, entryDist, entrySlot, heapPop, heapPush, setEntry, sortShort,
} from "./heap";

// -------------------------------------------------------------- scratch --

export function ensureVisited(slots: u32): bool {
  const cap = hget(H_VISITED_CAP);
  if (slots <= cap) return true;
  let next = cap < 1024 ? <u32>1024 : cap;
  while (next < slots) next *= 2;
  const p = runAlloc(slabsFor(next << TAG_SHIFT), CLASS_SCRATCH);
  if (p == 0) return false;
  memory.fill(p, 0, <usize>next << TAG_SHIFT);
  runFree(<usize>hget(H_VISITED), slabsFor(cap << TAG_SHIFT), CLASS_SCRATCH);
  hset(H_VISITED, <u32>p);
  hset(H_VISITED_CAP, next);
  hset(H_VISIT_GEN, 0);
  return true;
}

// A fresh visited generation; clears the tags when the u16 wraps.
export function nextGen(): u32 {
  let gen = (hget(H_VISIT_GEN) + 1) & 0xffff;
  if (gen == 0) {
    memory.fill(<usize>hget(H_VISITED), 0, <usize>hget(H_VISITED_CAP) << TAG_SHIFT);
    gen = 1;
  }
  hset(H_VISIT_GEN, gen);
  return gen;
}

// True when `slot` is tagged with `gen`.
// @ts-ignore: decorator
@inline export function seen(visited: usize, slot: u32, gen: u32): bool {
  return <u32>load<u16>(visited + (<usize>slot << TAG_SHIFT)) == gen;
}

// Tags `slot` with `gen`; false when it already was.
// @ts-ignore: decorator
@inline export function visit(visited: usize, slot: u32, gen: u32): bool {
  const p = visited + (<usize>slot << TAG_SHIFT);
  if (<u32>load<u16>(p) == gen) return false;
  store<u16>(p, <u16>gen);
  return true;
}

function scratchBytes(resCap: u32, candCap: u32, selCap: u32, m0: u32): u32 {
  return (resCap + candCap + selCap + m0 + 2) * ENTRY_BYTES;
}

// Makes the heaps big enough for a search of `ef` and for the repair pass.
export function ensureScratch(ef: u32): bool {
  const m0 = hget(H_M0);
  const efc = hget(H_EFC);
  const want = max<u32>(ef, efc);
  const resCap = hget(H_RES_CAP);
  if (resCap >= want + 2) return true;
  const newRes = want + 2;
  const newCand = 4 * want + 4 * m0;
  const newSel = max<u32>(want + 2, m0 * (m0 + 1) + 2);
  const bytes = scratchBytes(newRes, newCand, newSel, m0);
  const p = runAlloc(slabsFor(bytes), CLASS_SCRATCH);
  if (p == 0) return false;
  if (resCap != 0) {
    const oldBytes = scratchBytes(resCap, hget(H_CAND_CAP), hget(H_SEL_CAP), m0);
    runFree(<usize>hget(H_RES), slabsFor(oldBytes), CLASS_SCRATCH);
  }
  hset(H_RES, <u32>p);
  hset(H_RES_CAP, newRes);
  hset(H_CAND, <u32>(p + <usize>newRes * ENTRY_BYTES));
  hset(H_CAND_CAP, newCand);
  hset(H_SEL, <u32>(p + <usize>(newRes + newCand) * ENTRY_BYTES));
  hset(H_SEL_CAP, newSel);
  return true;
}

// Bytes of the heaps run in use (0 before the first ensureScratch).
export function scratchHeapBytes(): usize {
  const resCap = hget(H_RES_CAP);
  return resCap == 0 ? 0 : <usize>scratchBytes(resCap, hget(H_CAND_CAP), hget(H_SEL_CAP), hget(H_M0));
}

export function scratchCommittedBytes(): u64 {
  const resCap = hget(H_RES_CAP);
  const heaps: u64 = resCap == 0 ? 0
    : <u64>slabsFor(scratchBytes(resCap, hget(H_CAND_CAP), hget(H_SEL_CAP), hget(H_M0))) << SLAB_SHIFT;
  return heaps + (<u64>slabsFor(hget(H_VISITED_CAP) << TAG_SHIFT) << SLAB_SHIFT);
}

// The prune buffer: past SEL, M0 + 2 entries (repair uses it as u32 slots).
// @ts-ignore: decorator
@inline export function pruneBuf(): usize {
  return <usize>hget(H_SEL) + <usize>hget(H_SEL_CAP) * ENTRY_BYTES;
}

// ---------------------------------------------------------------- search --

// How a walk scores a node (the two record kinds, layout.ts / node.ts):
//   WALK_F32    the f32 vector in the node record (an f32 shard);
//   WALK_CODES  the codes in the node record against the query's codes
//               (a quantized shard's search: only hot records are touched);
//   WALK_COLD   the f32 original in the cold slabs (a quantized shard's
//               inserts, repairs and searches that ignore the codes).
// @ts-ignore: decorator
@inline export const WALK_F32: u32 = 0;
// @ts-ignore: decorator
@inline export const WALK_CODES: u32 = 1;
// @ts-ignore: decorator
@inline export const WALK_COLD: u32 = 2;

// The distance from q (an f32 vector, or the query's codes under
// WALK_CODES) to `slot`, whose record is at nPtr.
// @ts-ignore: decorator
@inline function score(walk: u32, metric: u32, q: usize, slot: u32, nPtr: usize, vecOff: usize, dim: u32, qp: usize, qbias: f32, biasOff: usize): f32 {
  if (walk == WALK_F32) return distance(metric, q, nPtr + vecOff, dim);
  if (walk == WALK_CODES) {
    return codeDistance(metric, qp, codeKernel(metric, q, nPtr + vecOff, dim), qbias, load<f32>(nPtr + biasOff));
  }
  return distance(metric, q, coldPtr(slot), dim);
}

// Greedy walk on one upper level (ef = 1). Tombstones are walked too.
// @ts-ignore: decorator
@inline function greedy(walk: u32, metric: u32, q: usize, ep: u32, epDist: f32, level: u32): u32 {
  const dim = hget(H_DIM);
  const vecOff = <usize>hget(H_VEC_OFF);
  const qp = <usize>hget(H_QPARAMS);
  const qbias = walk == WALK_CODES ? queryBias() : 0;
  const biasOff = <usize>hget(H_BIAS_OFF);
  let cur = ep;
  let curDist = epDist;
  let changed = true;
  while (changed) {
    changed = false;
    const p = nodePtr(cur);
    const count = countAt(p, level);
    const links = linksAt(p, level);
    for (let j: u32 = 0; j < count; j++) {
      const n = u32At(links, j);
      const d = score(walk, metric, q, n, nodePtr(n), vecOff, dim, qp, qbias, biasOff);
      if (d < curDist) {
        curDist = d;
        cur = n;
        changed = true;
      }
    }
  }
  return cur;
}

// The beam search of one level: fills RES (a max-heap) with up to ef
// nearest nodes to q and returns how many. With liveOnly, tombstoned
// nodes guide the walk but never enter RES.
// @ts-ignore: decorator
@inline function searchLayer(
  walk: u32, metric: u32, q: usize, ep: u32, ef: u32, level: u32, liveOnly: bool,
): u32 {
  const dim = hget(H_DIM);
  const visited = <usize>hget(H_VISITED);
  const res = <usize>hget(H_RES);
  const cand = <usize>hget(H_CAND);
  const candCap = hget(H_CAND_CAP);
  const qp = <usize>hget(H_QPARAMS);
  const qbias = walk == WALK_CODES ? queryBias() : 0;
  const biasOff = <usize>hget(H_BIAS_OFF);
  const gen = nextGen();
  let nc: u32 = 0;
  let nr: u32 = 0;
  const h = headerPtr();
  const dir = <usize>load<u32>(h + H_NODE_DIR);
  const magic = load<u64>(h + H_DIV_MAGIC);
  const perSlab = load<u32>(h + H_PER_SLAB);
  const stride = <usize>load<u32>(h + H_STRIDE);
  const vecOff = <usize>load<u32>(h + H_VEC_OFF);
  // A query also starts from the entry point, the root of the pinned tree:
  // everything is reachable from it, so with ef >= size a search is exact.
  const root = hget(H_ENTRY);
  for (let i = 0; i < 2; i++) {
    const s = i == 0 ? ep : root;
    if (i == 1 && (!liveOnly || level != 0)) break;
    if (!visit(visited, s, gen)) continue;
    const sPtr = nodePtr(s);
    const d = score(walk, metric, q, s, sPtr, vecOff, dim, qp, qbias, biasOff);
    nc = heapPush(cand, nc, d, s, false);
    if (!liveOnly || !isDeleted(metaOf(sPtr))) nr = heapPush(res, nr, d, s, true);
  }
  while (nc > 0) {
    const cd = entryDist(cand, 0);
    if (nr >= ef && cd > entryDist(res, 0)) break;
    const cs = entrySlot(cand, 0);
    nc = heapPop(cand, nc, false);
    const cPtr = slotPtr(cs, dir, magic, perSlab, stride);
    const count = countAt(cPtr, level);
    const links = linksAt(cPtr, level);
    // WASM has no prefetch: touching each unvisited neighbour's vector
    // first lets the loads overlap before the distances need them.
    // (A load may trap, so neither Binaryen nor V8 drops it.)
    for (let j: u32 = 0; j < count; j++) {
      const n = u32At(links, j);
      if (!seen(visited, n, gen)) {
        if (walk == WALK_COLD) load<u32>(coldPtr(n));
        else load<u32>(slotPtr(n, dir, magic, perSlab, stride) + vecOff);
      }
    }
    for (let j: u32 = 0; j < count; j++) {
      const n = u32At(links, j);
      if (!visit(visited, n, gen)) continue;
      const nPtr = slotPtr(n, dir, magic, perSlab, stride);
      const d = score(walk, metric, q, n, nPtr, vecOff, dim, qp, qbias, biasOff);
      if (nr < ef || d < entryDist(res, 0)) {
        if (nc < candCap) nc = heapPush(cand, nc, d, n, false);
        if (!liveOnly || !isDeleted(metaOf(nPtr))) {
          nr = heapPush(res, nr, d, n, true);
          if (nr > ef) nr = heapPop(res, nr, true);
        }
      }
    }
  }
  return nr;
}

// One instantiation per walk and metric family (l2, dot): the branches
// inside score() fold away.
function greedyL2(q: usize, ep: u32, d: f32, level: u32): u32 { return greedy(WALK_F32, METRIC_L2, q, ep, d, level); }
function greedyDot(q: usize, ep: u32, d: f32, level: u32): u32 { return greedy(WALK_F32, METRIC_IP, q, ep, d, level); }
function greedyCodesL2(q: usize, ep: u32, d: f32, level: u32): u32 { return greedy(WALK_CODES, METRIC_L2, q, ep, d, level); }
function greedyCodesDot(q: usize, ep: u32, d: f32, level: u32): u32 { return greedy(WALK_CODES, METRIC_IP, q, ep, d, level); }
function greedyColdL2(q: usize, ep: u32, d: f32, level: u32): u32 { return greedy(WALK_COLD, METRIC_L2, q, ep, d, level); }
function greedyColdDot(q: usize, ep: u32, d: f32, level: u32): u32 { return greedy(WALK_COLD, METRIC_IP, q, ep, d, level); }
function layerL2(q: usize, ep: u32, ef: u32, level: u32, liveOnly: bool): u32 {
  return searchLayer(WALK_F32, METRIC_L2, q, ep, ef, level, liveOnly);
}
function layerDot(q: usize, ep: u32, ef: u32, level: u32, liveOnly: bool): u32 {
  return searchLayer(WALK_F32, METRIC_IP, q, ep, ef, level, liveOnly);
}
function layerCodesL2(q: usize, ep: u32, ef: u32, level: u32, liveOnly: bool): u32 {
  return searchLayer(WALK_CODES, METRIC_L2, q, ep, ef, level, liveOnly);
}
function layerCodesDot(q: usize, ep: u32, ef: u32, level: u32, liveOnly: bool): u32 {
  return searchLayer(WALK_CODES, METRIC_IP, q, ep, ef, level, liveOnly);
}
function layerColdL2(q: usize, ep: u32, ef: u32, level: u32, liveOnly: bool): u32 {
  return searchLayer(WALK_COLD, METRIC_L2, q, ep, ef, level, liveOnly);
}
function layerColdDot(q: usize, ep: u32, ef: u32, level: u32, liveOnly: bool): u32 {
  return searchLayer(WALK_COLD, METRIC_IP, q, ep, ef, level, liveOnly);
}

// The f32 walk of this shard's record kind: WALK_F32, or WALK_COLD when quantized.
// @ts-ignore: decorator
@inline export function f32Walk(): u32 {
  return isQuantized() ? WALK_COLD : WALK_F32;
}

// Dispatch once per call to the instantiation for `walk` and the metric.
export function walkLayer(walk: u32, q: usize, ep: u32, ef: u32, level: u32, liveOnly: bool): u32 {
  const l2 = hget(H_METRIC) == METRIC_L2;
  if (walk == WALK_CODES) return l2 ? layerCodesL2(q, ep, ef, level, liveOnly) : layerCodesDot(q, ep, ef, level, liveOnly);
  if (walk == WALK_COLD) return l2 ? layerColdL2(q, ep, ef, level, liveOnly) : layerColdDot(q, ep, ef, level, liveOnly);
  return l2 ? layerL2(q, ep, ef, level, liveOnly) : layerDot(q, ep, ef, level, liveOnly);
}

// The beam search with f32 distances (inserts, filtered walks' entry).
export function layerSearch(q: usize, ep: u32, ef: u32, level: u32, liveOnly: bool): u32 {
  return walkLayer(f32Walk(), q, ep, ef, level, liveOnly);
}

// The distance from q to the entry point under `walk`.
function entryScore(walk: u32, q: usize, slot: u32): f32 {
  const metric = hget(H_METRIC);
  const p = nodePtr(slot);
  if (walk == WALK_CODES) {
    const qp = <usize>hget(H_QPARAMS);
    const raw = codeKernel(metric, q, vectorOf(p), hget(H_DIM));
    return codeDistance(metric, qp, raw, queryBias(), load<f32>(p + <usize>hget(H_BIAS_OFF)));
  }
  return distance(metric, q, walk == WALK_COLD ? coldPtr(slot) : vectorOf(p), hget(H_DIM));
}

// Walks from the entry point down to `toLevel + 1` under `walk`; returns
// the entry for `toLevel`.
export function descendWith(walk: u32, q: usize, toLevel: i32): u32 {
  const l2 = hget(H_METRIC) == METRIC_L2;
  let ep = hget(H_ENTRY);
  const top = <i32>hget(H_MAX_LEVEL);
  if (top <= toLevel) return ep;
  let d = entryScore(walk, q, ep);
  for (let l = top; l > toLevel; l--) {
    const lv = <u32>l;
    if (walk == WALK_CODES) ep = l2 ? greedyCodesL2(q, ep, d, lv) : greedyCodesDot(q, ep, d, lv);
    else if (walk == WALK_COLD) ep = l2 ? greedyColdL2(q, ep, d, lv) : greedyColdDot(q, ep, d, lv);
    else ep = l2 ? greedyL2(q, ep, d, lv) : greedyDot(q, ep, d, lv);
    d = entryScore(walk, q, ep);
  }
  return ep;
}

// descendWith on f32 distances.
export function descend(q: usize, toLevel: i32): u32 {
  return descendWith(f32Walk(), q, toLevel);
}

// The distance between two slots: their f32 vectors, or their codes once
// the shard is frozen (qshard.ts "FREEZING": its build is on codes).
export function slotDistance(a: u32, b: u32): f32 {
  if (onCodes()) return codePairDistance(a, b);
  return distance(hget(H_METRIC), vecOf(a), vecOf(b), hget(H_DIM));
}

// The neighbour-selection heuristic (the paper's Algorithm 4, hnswlib's
// getNeighborsByHeuristic2): walk candidates nearest first, keep one only
// if it is closer to the base than to every neighbour already kept. Entries
// at `base` are sorted ascending by distance to the base point; the kept
// ones are moved to the front. Returns how many were kept.
export function selectNeighbors(base: usize, n: u32, maxSel: u32): u32 {
  const metric = hget(H_METRIC);
  const dim = hget(H_DIM);
  // a frozen shard compares codes to codes
  const codes = onCodes();
  let m: u32 = 0;
  for (let i: u32 = 0; i < n && m < maxSel; i++) {
    const e = entrySlot(base, i);
    const de = entryDist(base, i);
    const ev: usize = codes ? 0 : vecOf(e);
    let good = true;
    for (let j: u32 = 0; j < m; j++) {
      const f = entrySlot(base, j);
      if ((codes ? codePairDistance(e, f) : distance(metric, ev, vecOf(f), dim)) < de) {
        good = false;
        break;
      }
    }
    if (good) {
      copyEntry(base, m, base, i);
      m++;
    }
  }
  return m;
}

// ---------------------------------------------------------------- insert --

function randomLevel(): u32 {
  const p = headerPtr() + H_RNG;
  let x = load<u64>(p);
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  store<u64>(p, x);
  const r = x * 0x2545f4914f6cdd1d;
  const u = (<f64>(r >> 11) + 1.0) * (1.0 / 9007199254740992.0); // (0, 1]
  const level = <u32>Math.floor(-Math.log(u) * load<f64>(headerPtr() + H_LEVEL_MULT));
  return min<u32>(level, MAX_LEVEL);
}

// Adds `from -> to` at `level`; when `from` is full, re-selects its list
// with the heuristic. At level 0 the pinned links stay and only the rest
// competes for the remaining room.
function addLink(from: u32, to: u32, level: u32): void {
  const fPtr = nodePtr(from);
  const count = countAt(fPtr, level);
  const links = linksAt(fPtr, level);
  const cap = maxLinks(level);
  if (count < cap) {
    setU32At(links, count, to);
    setCountAt(fPtr, level, count + 1);
    return;
  }
  const pinned = level == 0 ? pinnedOf(fPtr) : 0;
  const buf = pruneBuf();
  let n: u32 = 0;
  for (let j = pinned; j < count; j++) {
    const x = u32At(links, j);
    setEntry(buf, n++, slotDistance(from, x), x);
  }
  setEntry(buf, n++, slotDistance(from, to), to);
  sortShort(buf, n);
  const kept = selectNeighbors(buf, n, cap - pinned);
  for (let j: u32 = 0; j < kept; j++) setU32At(links, pinned + j, entrySlot(buf, j));
  setCountAt(fPtr, level, pinned + kept);
}

// The node that takes a new node as a pinned child: the nearest of the
// selected neighbours with room for one more pin, else any node with room.
function pinParent(sel: usize, n: u32, slot: u32): u32 {
  const m0 = hget(H_M0);
  for (let j: u32 = 0; j < n; j++) {
    const c = entrySlot(sel, j);
    if (c != slot && pinnedOf(nodePtr(c)) < m0) return c;
  }
  const slots = hget(H_SLOTS);
  for (let s: u32 = 0; s < slots; s++) {
    if (s != slot && pinnedOf(nodePtr(s)) < m0) return s;
  }
  return NONE;
}

// Links a freshly written node into the graph (the paper's Algorithm 1).
export function connect(slot: u32, level: u32): void {
  const entry = hget(H_ENTRY);
  if (entry == NONE) {
    hset(H_ENTRY, slot);
    hset(H_MAX_LEVEL, level);
    return;
  }
  // a frozen shard links on codes: the new node's own are the query
  const walk = onCodes() ? WALK_CODES : f32Walk();
  const q = walk == WALK_CODES ? stageSlotCodes(slot) : vecOf(slot);
  const top = <i32>hget(H_MAX_LEVEL);
  let ep = descendWith(walk, q, <i32>level);
  const efc = hget(H_EFC);
  const m = hget(H_M);
  const sel = <usize>hget(H_SEL);
  for (let l = min<i32>(<i32>level, top); l >= 0; l--) {
    const nr = walkLayer(walk, q, ep, efc, <u32>l, false);
    drainAscending(<usize>hget(H_RES), nr, sel);
    ep = entrySlot(sel, 0);
    const kept = selectNeighbors(sel, nr, m);
    const nPtr = nodePtr(slot);
    const links = linksAt(nPtr, <u32>l);
    for (let j: u32 = 0; j < kept; j++) setU32At(links, j, entrySlot(sel, j));
    setCountAt(nPtr, <u32>l, kept);
    // the spanning tree: a new entry point adopts the old one; any other
    // new node is adopted by its nearest neighbour with room
    let parent = NONE;
    if (l == 0) {
      if (<i32>level > top) pinLink(nPtr, entry);
      else parent = pinParent(sel, nr, slot);
      if (parent != NONE) pinLink(nodePtr(parent), slot);
    }
    // addLink reuses the prune buffer, not SEL, so `sel` stays intact
    for (let j: u32 = 0; j < kept; j++) {
      const c = entrySlot(sel, j);
      if (c != parent) addLink(c, slot, <u32>l);
    }
  }
  if (<i32>level > top) {
    hset(H_ENTRY, slot);
    hset(H_MAX_LEVEL, level);
  }
}

export function markDeleted(slot: u32): void {
  const p = nodePtr(slot);
  const meta = metaOf(p);
  if (DEBUG) assert(!isDeleted(meta));
  store<u32>(p, meta | FLAG_DELETED, NODE_META);
  hset(H_LIVE, hget(H_LIVE) - 1);
  hset(H_DELETED, hget(H_DELETED) + 1);
  const level = levelOf(meta);
  if (level > 0) hset(H_LIVE_LINK_BYTES, hget(H_LIVE_LINK_BYTES) - upperBlockBytes(level));
  // search never reads a tombstone's payload: give it back now
  pxRemove(slot);
  payloadFree(<usize>load<u32>(p, NODE_PAYLOAD));
  store<u32>(p, 0, NODE_PAYLOAD);
}

// Checks the vector staged at io + IO_VECTOR (finite; non-zero under cosine,
// and normalised in place there). Insert and search take the same vectors.
export function stagedVectorOk(vec: usize, dim: u32): bool {
  for (let i: u32 = 0; i < dim; i++) {
    if (!isFinite(f32At(vec, i))) return false;
  }
  return hget(H_METRIC) != METRIC_COSINE || normalize(vec, dim);
}

// Writes a new node record for the staged id and vector and links it.
// Every allocation happens before the first write, so out of memory
// changes nothing. An existing id is replaced (upsert): the old node is
// tombstoned and the id map points at the new one.
export function insertStaged(): i32 {
  const io = <usize>hget(H_IO);
  const dim = hget(H_DIM);
  const vec = io + IO_VECTOR;
  if (!stagedVectorOk(vec, dim)) return ERR_INVALID;
  const lo = load<u64>(io, IO_ID_LO);
  const hi = load<u64>(io, IO_ID_HI);
  const kind = load<u32>(io, IO_KIND) & FLAG_UUID;
  const payloadLen = load<u32>(io, IO_PAYLOAD_LEN);
  if (payloadLen > MAX_PAYLOAD_BYTES) return ERR_INVALID;
  const old = idmapFind(lo, hi, kind);
  const slot = hget(H_SLOTS);
  if (slot == NONE - 1) return ERR_OUT_OF_MEMORY;
  if (!ensureSlots(slot + 1)) return ERR_OUT_OF_MEMORY;
  if (!ensureVisited(slot + 1)) return ERR_OUT_OF_MEMORY;
  if (!ensureScratch(0)) return ERR_OUT_OF_MEMORY;
  if (old == NONE && !idmapReserve()) return ERR_OUT_OF_MEMORY;
  const reserved = pxReserve(vec + (<usize>dim << 2), payloadLen);
  if (reserved != OK) return reserved;
  let blob: usize = 0;
  if (payloadLen > 0) {
    blob = payloadStore(vec + (<usize>dim << 2), payloadLen);
    if (blob == 0) return ERR_OUT_OF_MEMORY;
  }
  const level = randomLevel();
  let upper: usize = 0;
  if (level > 0) {
    upper = smallAlloc(level);
    if (upper == 0) {
      payloadFree(blob);
      return ERR_OUT_OF_MEMORY;
    }
    memory.fill(upper, 0, upperBlockBytes(level));
    hset(H_LIVE_LINK_BYTES, hget(H_LIVE_LINK_BYTES) + upperBlockBytes(level));
  }
  const p = nodePtr(slot);
  store<u32>(p, (level << META_LEVEL_SHIFT) | kind, NODE_META);
  store<u32>(p, <u32>upper, NODE_UPPER);
  store<u32>(p, <u32>blob, NODE_PAYLOAD);
  if (isSpilled()) {
    // the original goes to the host's file (the host writes it after this call)
    encodeInto(slot, vec);
  } else {
    memory.copy(vecOf(slot), vec, <usize>dim << 2);
    if (quantLearned()) encodeSlot(slot);
  }
  const id = idOf(p);
  store<u64>(id, lo, ID_LO);
  store<u64>(id, hi, ID_HI);
  hset(H_SLOTS, slot + 1);
  hset(H_LIVE, hget(H_LIVE) + 1);
  pxAdd(slot);
  if (old != NONE) {
    markDeleted(old);
    idmapReplace(lo, hi, kind, slot);
  } else {
    idmapInsert(lo, hi, kind, slot);
  }
  connect(slot, level);
  pxMaintain();
  if (isQuantized()) quantMaybeLearn();
  return OK;
}

export function removeStaged(): i32 {
  const io = <usize>hget(H_IO);
  const slot = idmapRemove(load<u64>(io, IO_ID_LO), load<u64>(io, IO_ID_HI), load<u32>(io, IO_KIND) & FLAG_UUID);
  if (slot == NONE) return ERR_NOT_FOUND;
  markDeleted(slot);
  pxMaintain();
  return OK;
}

// Copies the stored vector of the staged id to the io vector area.
export function getStaged(): i32 {
  const io = <usize>hget(H_IO);
  const slot = idmapFind(load<u64>(io, IO_ID_LO), load<u64>(io, IO_ID_HI), load<u32>(io, IO_KIND) & FLAG_UUID);
  if (slot == NONE) return ERR_NOT_FOUND;
  const p = nodePtr(slot);
  // spilled: the host reads the original from its file, at this slot
  if (isSpilled()) store<u32>(io + IO_VECTOR, slot);
  else memory.copy(io + IO_VECTOR, vecOf(slot), <usize>hget(H_DIM) << 2);
  const blob = <usize>load<u32>(p, NODE_PAYLOAD);
  // out: the payload's bytes pointer at IO_PAYLOAD, its length at IO_PAYLOAD_LEN
  store<u32>(io, blob == 0 ? 0 : <u32>payloadBytesPtr(blob), IO_PAYLOAD);
  store<u32>(io, blob == 0 ? 0 : payloadLen(blob), IO_PAYLOAD_LEN);
  return OK;
}

// k nearest live nodes to the query staged at io + IO_VECTOR, nearest
// first, written to `out` as RESULT_BYTES records. Returns the count.
// `rescore` matters to a quantized shard only: -1 walks the f32 originals
// (as an f32 shard), 0 walks the codes and returns code distances, n > 0
// walks the codes and re-ranks the best n with exact distances (qshard.ts).
// A spilled shard (qshard.ts "DISK MODE") takes rescore >= 0 only; with
// n > 0 it writes the slots of its best max(n, k) candidates to `out` as
// u32s and returns how many: the host reads their originals and calls
// rerank.
export function searchStaged(k: u32, ef: u32, rescore: i32, out: usize): i32 {
  const io = <usize>hget(H_IO);
  const dim = hget(H_DIM);
  const q = io + IO_VECTOR;
  if (!stagedVectorOk(q, dim)) return ERR_INVALID;
  if (k == 0 || rescore < -1 || (rescore == -1 && isSpilled())) return ERR_INVALID;
  if (hget(H_LIVE) == 0) return 0;
  const codes = rescore >= 0 && quantLearned();
  // the beam holds ef, at least k, and under codes at least the candidates to re-rank
  const width = max<u32>(max<u32>(ef, k), codes ? <u32>rescore : 0);
  if (!ensureScratch(width)) return ERR_OUT_OF_MEMORY;
  const sel = <usize>hget(H_SEL);
  if (codes && rescore > 0 && isSpilled()) {
    return writeCandidates(min<u32>(walkCodes(q, k, ef, <u32>rescore), max<u32>(<u32>rescore, k)), out);
  }
  if (codes) return writeResults(sel, searchCodes(q, k, ef, <u32>rescore), out);
  const ep = descend(q, 0);
  const nr = layerSearch(q, ep, width, 0, true);
  drainAscending(<usize>hget(H_RES), nr, sel);
  return writeResults(sel, min<u32>(k, nr), out);
}

// Writes the first n entries of `sel` (ascending) to `out` as RESULT_BYTES
// records; returns n.
export function writeResults(sel: usize, n: u32, out: usize): i32 {
  for (let i: u32 = 0; i < n; i++) {
    const r = out + <usize>i * RESULT_BYTES;
    const p = nodePtr(entrySlot(sel, i));
    const id = idOf(p);
    store<f32>(r, entryDist(sel, i), RESULT_DIST);
    store<u32>(r, metaOf(p) & FLAG_UUID, RESULT_FLAGS);
    store<u64>(r, load<u64>(id, ID_LO), RESULT_ID_LO);
    store<u64>(r, load<u64>(id, ID_HI), RESULT_ID_HI);
    const blob = <usize>load<u32>(p, NODE_PAYLOAD);
    store<u32>(r, blob == 0 ? 0 : <u32>payloadBytesPtr(blob), RESULT_PAYLOAD_PTR);
    store<u32>(r, blob == 0 ? 0 : payloadLen(blob), RESULT_PAYLOAD_LEN);
  }
  return <i32>n;
}
