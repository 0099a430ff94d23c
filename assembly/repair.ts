// Delete consolidation and the compaction pass.
//
// 1. repairRange: for each live node with a tombstoned neighbour, the
//    candidates are its live neighbours plus the live neighbours of its
//    tombstoned ones (FreshDiskANN's consolidation); the heuristic re-selects
//    down to M (M0 at level 0). Runs in slot ranges so the host can bound
//    each step.
// 2. repairFinish: a tombstoned entry point is replaced by the live node of
//    highest level; then every live node is made reachable at level 0 over
//    live nodes only (the heuristic can strand a node; a breadth-first walk
//    finds it and links it from its nearest reachable node with room).
// 3. compactPlan: numbers the live nodes densely, in slot order.
// 4. exportNodes / importNodes: the host streams the live nodes, links
//    renumbered, from this shard into a fresh, right-sized one, which
//    rebuilds its id map. The old shard stays valid (and searchable) until
//    the host swaps, so a cancelled compaction loses nothing.
//
// EXPORT record, in the io buffer, one per node, back to back (cold is
// dim * 4 in a quantized shard, 0 otherwise and once spilled: a spilled
// source and its target are both spilled, and the host copies the file):
//
//   0                     node record, stride bytes: level-0 links
//                         renumbered, NODE_UPPER = 0, NODE_PAYLOAD = the
//                         blob bytes that follow (0 for none)
//   stride                the f32 original, cold bytes
//   stride + cold         upper link block, upperBlockBytes(level), lists
//                         renumbered (absent at level 0)
//   ... + upper           the payload blob as stored (len u32, bytes)

import {
  CLASS_SCRATCH, DEBUG, ERR_INVALID, ERR_OUT_OF_MEMORY, FLAG_DELETED, FLAG_UUID, H_DIM, H_ENTRY, H_EXACT_GROWTH,
  H_IO, H_IO_BYTES, H_IO_USED, H_LIVE, H_LIVE_LINK_BYTES, H_M, H_M0, H_MAX_LEVEL, H_ORDER, H_PLAN_LIVE,
  H_PLAN_SLOTS, H_REMAP, H_SEL, H_SEL_CAP, H_SLOTS, H_STRIDE, H_VISITED, ID_HI, ID_LO, LINK_BYTES,
  META_COUNT_MASK, NODE_META, NODE_PAYLOAD, NODE_UPPER, NONE, OK, UPPER_COUNT, UPPER_LINKS, hget, hset,
  setU32At, u32At,
} from "./layout";
import { runAlloc, runFree, slabsFor, smallAlloc } from "./arena";
import {
  countAt, ensureSlots, idOf, isDeleted, levelOf, pinnedOf, setPinned, linksAt, maxLinks, metaOf,
  nodePtr, setCountAt, upperBlockBytes,
} from "./node";
import { ensureScratch, ensureVisited, nextGen, pruneBuf, seen, slotDistance, visit } from "./hnsw";
import { entryDist, entrySlot, setEntry, sortLong } from "./heap";
import { idmapInsert, idmapReserve } from "./idmap";
import { payloadBytesPtr, payloadFree, payloadLen, payloadStore, payloadTotal } from "./payload";
import { pxAdd, pxMaintain, pxReserve } from "./pindex";
import { quantAfterImport } from "./qshard";
import { coldPtr, isQuantized, isSpilled } from "./node";
import { WALK_LIVE, WALK_REPIN, walkLevel0 } from "./walk";

// @ts-ignore: decorator
@inline function slotTableSlabs(n: u32): u32 {
  // (an empty shard still gets one slab, so 0 always means failure)
  return slabsFor(max<u32>(n, 1) * LINK_BYTES);
}

function repairList(slot: u32, p: usize, level: u32): void {
  const count = countAt(p, level);
  const links = linksAt(p, level);
  let hasDead = false;
  for (let j: u32 = 0; j < count; j++) {
    if (isDeleted(metaOf(nodePtr(u32At(links, j))))) { hasDead = true; break; }
  }
  if (!hasDead) return;
  const visited = <usize>hget(H_VISITED);
  const gen = nextGen();
  visit(visited, slot, gen);
  // Level 0: live pinned links stay, at the front; a pin to a tombstone is
  // dropped (repairFinish re-pins the whole tree).
  const hadPinned = level == 0 ? pinnedOf(p) : 0;
  for (let j: u32 = 0; j < hadPinned; j++) {
    const x = u32At(links, j);
    if (!isDeleted(metaOf(nodePtr(x)))) visit(visited, x, gen);
  }
  const sel = <usize>hget(H_SEL);
  const selCap = hget(H_SEL_CAP);
  let n: u32 = 0;
  // Lost a good share of its neighbours: look two hops out through the live
  // ones as well, not only through the dead (the pool is otherwise too thin
  // for the heuristic at low efConstruction).
  let dead: u32 = 0;
  for (let j: u32 = 0; j < count; j++) {
    if (isDeleted(metaOf(nodePtr(u32At(links, j))))) dead++;
  }
  const wide = dead * 4 >= count;
  for (let j: u32 = 0; j < count && n < selCap; j++) {
    const x = u32At(links, j);
    const xPtr = nodePtr(x);
    if (!isDeleted(metaOf(xPtr))) {
      if (j >= hadPinned && visit(visited, x, gen)) {
        setEntry(sel, n++, slotDistance(slot, x), x);
      }
      if (!wide) continue;
    }
    const xc = countAt(xPtr, level);
    const xl = linksAt(xPtr, level);
    for (let i: u32 = 0; i < xc && n < selCap; i++) {
      const y = u32At(xl, i);
      if (isDeleted(metaOf(nodePtr(y)))) continue;
      if (!visit(visited, y, gen)) continue;
      setEntry(sel, n++, slotDistance(slot, y), y);
    }
  }
  let pinned: u32 = 0;
  for (let j: u32 = 0; j < hadPinned; j++) {
    const x = u32At(links, j);
    if (isDeleted(metaOf(nodePtr(x)))) continue;
    setU32At(links, pinned, x);
    pinned++;
  }
  sortLong(sel, n);
  // The heuristic alone would leave a repaired list short (insertion makes up
  // for that with backlinks; repair has none): keep what it selects, then
  // fill up to M with the nearest of the rest, and link back from each new
  // neighbour that has room.
  const cap = maxLinks(level) - pinned;
  const floor = min<u32>(cap, hget(H_M));
  const chosen = pruneBuf(); // as u32 slots
  let kept: u32 = 0;
  for (let i: u32 = 0; i < n && kept < cap; i++) {
    const e = entrySlot(sel, i);
    const de = entryDist(sel, i);
    let good = true;
    for (let j: u32 = 0; j < kept; j++) {
      if (slotDistance(e, u32At(chosen, j)) < de) { good = false; break; }
    }
    if (good) setU32At(chosen, kept++, e);
  }
  for (let i: u32 = 0; i < n && kept < floor; i++) {
    const e = entrySlot(sel, i);
    let have = false;
    for (let j: u32 = 0; j < kept; j++) if (u32At(chosen, j) == e) { have = true; break; }
    if (!have) setU32At(chosen, kept++, e);
  }
  for (let j: u32 = 0; j < kept; j++) {
    setU32At(links, pinned + j, u32At(chosen, j));
  }
  setCountAt(p, level, pinned + kept);
  if (level == 0) setPinned(p, pinned);
  for (let j: u32 = 0; j < kept; j++) linkBack(u32At(chosen, j), slot, level);
}

// Appends `from -> to` at `level` if there is room and it is not there yet.
function linkBack(from: u32, to: u32, level: u32): void {
  const p = nodePtr(from);
  const count = countAt(p, level);
  if (count >= maxLinks(level)) return;
  const links = linksAt(p, level);
  for (let i: u32 = 0; i < count; i++) if (u32At(links, i) == to) return;
  setU32At(links, count, to);
  setCountAt(p, level, count + 1);
}

export function repairRange(from: u32, to: u32): i32 {
  const slots = hget(H_SLOTS);
  if (!ensureScratch(0) || !ensureVisited(slots)) return ERR_OUT_OF_MEMORY;
  const end = min<u32>(to, slots);
  for (let s = from; s < end; s++) {
    const p = nodePtr(s);
    const meta = metaOf(p);
    if (isDeleted(meta)) continue;
    const level = levelOf(meta);
    for (let l: u32 = 0; l <= level; l++) repairList(s, p, l);
  }
  return OK;
}

function chooseEntry(): void {
  const entry = hget(H_ENTRY);
  if (entry != NONE && !isDeleted(metaOf(nodePtr(entry)))) return;
  const slots = hget(H_SLOTS);
  let best = NONE;
  let bestLevel: i32 = -1;
  for (let s: u32 = 0; s < slots; s++) {
    const meta = metaOf(nodePtr(s));
    if (isDeleted(meta)) continue;
    if (<i32>levelOf(meta) > bestLevel) {
      bestLevel = <i32>levelOf(meta);
      best = s;
    }
  }
  hset(H_ENTRY, best);
  hset(H_MAX_LEVEL, <u32>bestLevel);
}

// Links every live node that level 0 cannot reach from the entry point.
export function repairFinish(): i32 {
  chooseEntry();
  const entry = hget(H_ENTRY);
  if (entry == NONE) return OK;
  const slots = hget(H_SLOTS);
  if (!ensureVisited(slots)) return ERR_OUT_OF_MEMORY;
  const queue = runAlloc(slotTableSlabs(slots), CLASS_SCRATCH);
  if (queue == 0) return ERR_OUT_OF_MEMORY;
  const visited = <usize>hget(H_VISITED);
  const m0 = hget(H_M0);
  for (let round = 0; round < 4; round++) {
    const gen = nextGen();
    walkLevel0(entry, gen, queue, WALK_LIVE);
    let replaced = false;
    for (let s: u32 = 0; s < slots; s++) {
      if (isDeleted(metaOf(nodePtr(s)))) continue;
      if (seen(visited, s, gen)) continue;
      // nearest reachable node, preferring one with room for a link
      let best = NONE;
      let bestDist = Infinity;
      let anyBest = NONE;
      let anyDist = Infinity;
      for (let r: u32 = 0; r < slots; r++) {
        if (!seen(visited, r, gen)) continue;
        const d = slotDistance(s, r);
        if (d < anyDist) { anyDist = d; anyBest = r; }
        if (countAt(nodePtr(r), 0) < m0 && d < bestDist) { bestDist = d; best = r; }
      }
      let from = best;
      if (from == NONE) {
        // every reachable list is full: replace the last link of the nearest;
        // what that strands is found by the next round
        from = anyBest;
        const fp = nodePtr(from);
        setCountAt(fp, 0, countAt(fp, 0) - 1);
        replaced = true;
      }
      const fp = nodePtr(from);
      const c = countAt(fp, 0);
      setU32At(linksAt(fp, 0), c, s);
      setCountAt(fp, 0, c + 1);
      walkLevel0(s, gen, queue, WALK_LIVE);
    }
    if (!replaced) break;
  }
  repin(entry, queue);
  runFree(queue, slotTableSlabs(slots), CLASS_SCRATCH);
  return OK;
}

// Rebuilds the pinned spanning tree over live nodes as the breadth-first
// tree from the entry point. Tombstoned nodes lose their pins (they leave
// at compaction).
function repin(entry: u32, queue: usize): void {
  const slots = hget(H_SLOTS);
  for (let s: u32 = 0; s < slots; s++) setPinned(nodePtr(s), 0);
  walkLevel0(entry, nextGen(), queue, WALK_REPIN);
}

// Numbers live nodes densely in slot order. Returns the live count.
export function compactPlan(): i32 {
  compactDone();
  const slots = hget(H_SLOTS);
  const live = hget(H_LIVE);
  const remap = runAlloc(slotTableSlabs(slots), CLASS_SCRATCH);
  if (remap == 0) return ERR_OUT_OF_MEMORY;
  const order = runAlloc(slotTableSlabs(live), CLASS_SCRATCH);
  if (order == 0) {
    runFree(remap, slotTableSlabs(slots), CLASS_SCRATCH);
    return ERR_OUT_OF_MEMORY;
  }
  let next: u32 = 0;
  for (let s: u32 = 0; s < slots; s++) {
    if (isDeleted(metaOf(nodePtr(s)))) {
      setU32At(remap, s, NONE);
    } else {
      setU32At(remap, s, next);
      setU32At(order, next, s);
      next++;
    }
  }
  hset(H_REMAP, <u32>remap);
  hset(H_ORDER, <u32>order);
  hset(H_PLAN_SLOTS, slots);
  hset(H_PLAN_LIVE, live);
  return <i32>live;
}

export function compactDone(): void {
  const remap = <usize>hget(H_REMAP);
  if (remap == 0) return;
  runFree(remap, slotTableSlabs(hget(H_PLAN_SLOTS)), CLASS_SCRATCH);
  runFree(<usize>hget(H_ORDER), slotTableSlabs(hget(H_PLAN_LIVE)), CLASS_SCRATCH);
  hset(H_REMAP, 0);
  hset(H_ORDER, 0);
}

// Renumbers a list in place through `remap`, dropping links to nodes that
// are not carried over. Returns the new count.
function remapList(links: usize, count: u32, remap: usize): u32 {
  let m: u32 = 0;
  for (let j: u32 = 0; j < count; j++) {
    const to = u32At(remap, u32At(links, j));
    if (to == NONE) continue;
    setU32At(links, m, to);
    m++;
  }
  return m;
}

// The remapped slot of the entry point (after repairFinish), or NONE.
export function planEntry(): u32 {
  const entry = hget(H_ENTRY);
  if (entry == NONE) return NONE;
  return u32At(<usize>hget(H_REMAP), entry);
}

// Writes export records of new slots from `from` on into io, as many as
// fit in `maxBytes` (the importer's io size) and at most `maxNodes`.
// Returns how many; H_IO_USED holds the bytes.
export function exportNodes(from: u32, maxNodes: u32, maxBytes: u32): i32 {
  const remap = <usize>hget(H_REMAP);
  if (remap == 0) return ERR_INVALID;
  const order = <usize>hget(H_ORDER);
  const live = hget(H_PLAN_LIVE);
  const io = <usize>hget(H_IO);
  const ioBytes = <usize>min<u32>(hget(H_IO_BYTES), maxBytes);
  const stride = <usize>hget(H_STRIDE);
  // a quantized shard's record carries its f32 original after the node
  // (a spilled one's are in the host's file: the host copies them)
  const cold = isQuantized() && !isSpilled() ? <usize>hget(H_DIM) << 2 : 0;
  let used: usize = 0;
  let n: u32 = 0;
  for (let i = from; i < live && n < maxNodes; i++) {
    const old = u32At(order, i);
    const p = nodePtr(old);
    const meta = metaOf(p);
    const level = levelOf(meta);
    const upperBytes = <usize>upperBlockBytes(level);
    const blob = <usize>load<u32>(p, NODE_PAYLOAD);
    const blobBytes = <usize>payloadTotal(blob);
    if (used + stride + cold + upperBytes + blobBytes > ioBytes) break;
    const rec = io + used;
    memory.copy(rec, p, stride);
    if (cold > 0) memory.copy(rec + stride, coldPtr(old), cold);
    // in the record, the payload field says how many blob bytes follow
    store<u32>(rec, <u32>blobBytes, NODE_PAYLOAD);
    if (blobBytes > 0) memory.copy(rec + stride + cold + upperBytes, blob, blobBytes);
    const c0 = remapList(linksAt(rec, 0), countAt(rec, 0), remap);
    store<u32>(rec, (meta & ~META_COUNT_MASK) | c0, NODE_META);
    store<u32>(rec, 0, NODE_UPPER);
    if (level > 0) {
      const blk = rec + stride + cold;
      memory.copy(blk, <usize>load<u32>(p, NODE_UPPER), upperBytes);
      const per = upperBytes / level;
      for (let l: u32 = 0; l < level; l++) {
        const list = blk + <usize>l * per;
        store<u32>(list, remapList(list + UPPER_LINKS, load<u32>(list, UPPER_COUNT), remap), UPPER_COUNT);
      }
    }
    used += stride + cold + upperBytes + blobBytes;
    n++;
  }
  hset(H_IO_USED, <u32>used);
  return <i32>n;
}

// Appends `count` export records from io as new slots. The importing
// shard was made with room for them (init's capacity), so this only
// allocates link blocks, payload blobs and, rarely, id map room, growing
// memory without headroom. Out of memory leaves the target consistent:
// the records before the failing one are in (H_SLOTS counts them), the
// failing one leaves nothing behind, and growth is back to normal.
export function importNodes(count: u32): i32 {
  const io = <usize>hget(H_IO);
  const stride = <usize>hget(H_STRIDE);
  const cold = isQuantized() && !isSpilled() ? <usize>hget(H_DIM) << 2 : 0;
  hset(H_EXACT_GROWTH, 1);
  let off: usize = 0;
  for (let i: u32 = 0; i < count; i++) {
    const rec = io + off;
    const meta = metaOf(rec);
    const level = levelOf(meta);
    const upperBytes = upperBlockBytes(level);
    const slot = hget(H_SLOTS);
    if (!ensureSlots(slot + 1) || !idmapReserve()) return importFailed();
    const blobBytes = load<u32>(rec, NODE_PAYLOAD);
    let blob: usize = 0;
    if (blobBytes > 0) {
      const src = rec + stride + cold + upperBytes;
      if (pxReserve(payloadBytesPtr(src), payloadLen(src)) != OK) return importFailed();
      blob = payloadStore(payloadBytesPtr(src), payloadLen(src));
      if (blob == 0) return importFailed();
      if (DEBUG) assert(payloadTotal(blob) == blobBytes);
    }
    let upper: usize = 0;
    if (level > 0) {
      upper = smallAlloc(level);
      if (upper == 0) {
        payloadFree(blob);
        return importFailed();
      }
      memory.copy(upper, rec + stride + cold, upperBytes);
      hset(H_LIVE_LINK_BYTES, hget(H_LIVE_LINK_BYTES) + upperBytes);
    }
    const p = nodePtr(slot);
    memory.copy(p, rec, stride);
    if (cold > 0) memory.copy(coldPtr(slot), rec + stride, cold);
    store<u32>(p, <u32>upper, NODE_UPPER);
    store<u32>(p, <u32>blob, NODE_PAYLOAD);
    store<u32>(p, meta & ~FLAG_DELETED, NODE_META);
    const id = idOf(p);
    idmapInsert(load<u64>(id, ID_LO), load<u64>(id, ID_HI), meta & FLAG_UUID, slot);
    hset(H_SLOTS, slot + 1);
    hset(H_LIVE, hget(H_LIVE) + 1);
    pxAdd(slot);
    off += stride + cold + upperBytes + blobBytes;
  }
  pxMaintain();
  hset(H_EXACT_GROWTH, 0);
  return <i32>count;
}

function importFailed(): i32 {
  hset(H_EXACT_GROWTH, 0);
  return ERR_OUT_OF_MEMORY;
}

// Sets the entry point once every node is in, after checking the links.
export function importFinish(entry: u32, maxLevel: i32): i32 {
  const slots = hget(H_SLOTS);
  if (entry != NONE && entry >= slots) return ERR_INVALID;
  for (let s: u32 = 0; s < slots; s++) {
    const p = nodePtr(s);
    const count = countAt(p, 0);
    const links = linksAt(p, 0);
    for (let j: u32 = 0; j < count; j++) {
      if (u32At(links, j) >= slots) return ERR_INVALID;
    }
  }
  hset(H_ENTRY, entry);
  hset(H_MAX_LEVEL, <u32>(entry == NONE ? -1 : maxLevel));
  if (!ensureVisited(slots)) return ERR_OUT_OF_MEMORY;
  // a compaction learns the quantizer again, from the survivors
  quantAfterImport();
  return OK;
}
