// Node storage: slot number -> record pointer, and record accessors.
//
// Node records live in node slabs (runs of one or more SLAB_BYTES, sized so
// a slab holds at least 32 records: the tail waste stays under 3%). The node
// directory is a run holding one u32 slab pointer per node slab:
//
//   NODE DIR   slabPtr[0] slabPtr[1] ...        (H_NODE_DIR_CAP entries)
//   slot s  -> dir[s / perSlab] + (s % perSlab) * stride
//
// The division by perSlab is a multiply by a precomputed reciprocal
// (H_DIV_MAGIC): an integer divide in the search loop costs more than the
// rest of the address arithmetic. Exact for every slot a 4 GiB memory can
// hold (see slotDivMagic).

import {
  CLASS_NODE, CLASS_SCRATCH, DIR_CAP, DIR_PER_SLAB, DIR_PTR, DIR_SLAB_BYTES, DIR_SLABS, FLAG_DELETED, FLAG_UUID,
  H_BIAS_OFF, H_COLD_DIR, H_COLD_MAGIC, H_COLD_STRIDE, H_DIV_MAGIC, H_ID_OFF, H_M, H_M0,
  H_NODE_DIR, H_NODE_DIR_CAP, H_NODE_SLAB_BYTES, H_NODE_SLABS, H_PER_SLAB, H_QUANT, H_SLOTS, H_STRIDE,
  H_VEC_OFF, H_ORIG_GEN, H_QFROZEN, H_QLEARNED, META_COUNT_MASK, META_PINNED_MASK, META_PINNED_SHIFT, META_LEVEL_MASK, META_LEVEL_SHIFT,
  ID_BYTES, LINK_BYTES, MIN_PER_SLAB, NODE_ALIGN, NODE_LINKS, NODE_META, NODE_UPPER, QUANT_NONE, SLAB_BYTES, SLAB_SHIFT,
  UPPER_COUNT, UPPER_LINKS, DEBUG, headerPtr, hget, hset, setU32At, u32At,
} from "./layout";
import { runAlloc, runFree, slabsFor } from "./arena";

// @ts-ignore: decorator
@inline const DIV_SHIFT: u64 = 40;

export function slotDivMagic(perSlab: u32): u64 {
  // ceil(2^40 / perSlab): exact for slot < 2^29 with perSlab < 2^11
  return ((<u64>1 << DIV_SHIFT) + <u64>perSlab - 1) / <u64>perSlab;
}

// Sets stride, offsets and slab geometry for a shard of `dim` and `M0`.
// An f32 shard's record holds the vector; a quantized one's holds the
// codes (dim u8) and their dot bias (f32), and the f32 originals go to cold
// slabs of dim f32 per slot (one layout, two record kinds: layout.ts).
export function nodeLayoutInit(dim: u32, m0: u32, quant: u32): void {
  const vecOff = NODE_LINKS + m0 * LINK_BYTES;
  let idOff: u32;
  if (quant == QUANT_NONE) {
    idOff = vecOff + dim * sizeof<f32>();
    hset(H_BIAS_OFF, 0);
  } else {
    const biasOff = (vecOff + dim + 3) & ~3;
    hset(H_BIAS_OFF, biasOff);
    idOff = (biasOff + sizeof<f32>() + 7) & ~7;
  }
  const stride = (idOff + ID_BYTES + NODE_ALIGN - 1) & ~(NODE_ALIGN - 1);
  hset(H_VEC_OFF, vecOff);
  hset(H_ID_OFF, idOff);
  hset(H_STRIDE, stride);
  dirInit(H_NODE_DIR, stride);
  store<u64>(headerPtr() + H_DIV_MAGIC, slotDivMagic(hget(H_PER_SLAB)));
  if (quant == QUANT_NONE) return;
  const coldStride = dim * sizeof<f32>();
  hset(H_COLD_STRIDE, coldStride);
  dirInit(H_COLD_DIR, coldStride);
  store<u64>(headerPtr() + H_COLD_MAGIC, slotDivMagic(hget(H_COLD_DIR + DIR_PER_SLAB)));
}

// The slab geometry of the slot directory at header offset `dir` (node
// records or cold vectors): slabs of at least MIN_PER_SLAB records.
function dirInit(dir: u32, stride: u32): void {
  const slabs = slabsFor(stride * MIN_PER_SLAB);
  const slabBytes = slabs << SLAB_SHIFT;
  const perSlab = slabBytes / stride;
  if (DEBUG) assert(perSlab >= MIN_PER_SLAB);
  hset(dir + DIR_SLAB_BYTES, slabBytes);
  hset(dir + DIR_PER_SLAB, perSlab);
  hset(dir + DIR_PTR, 0);
  hset(dir + DIR_CAP, 0);
  hset(dir + DIR_SLABS, 0);
}

// The f32 original of `slot` in a quantized shard (cold slabs; a spilled
// shard has none: its originals are in the host's file).
// @ts-ignore: decorator
@inline export function coldPtr(slot: u32): usize {
  const h = headerPtr();
  if (DEBUG) assert(load<u32>(h + H_ORIG_GEN) == 0);
  const slab = <u32>((<u64>slot * load<u64>(h + H_COLD_MAGIC)) >> DIV_SHIFT);
  const within = slot - slab * load<u32>(h + H_COLD_DIR + DIR_PER_SLAB);
  return <usize>u32At(<usize>load<u32>(h + H_COLD_DIR), slab) + <usize>within * <usize>load<u32>(h + H_COLD_STRIDE);
}

// The f32 vector of `slot`, in either record kind.
// @ts-ignore: decorator
@inline export function vecOf(slot: u32): usize {
  if (hget(H_QUANT) != QUANT_NONE) return coldPtr(slot);
  return nodePtr(slot) + <usize>hget(H_VEC_OFF);
}

// @ts-ignore: decorator
@inline export function isQuantized(): bool {
  return hget(H_QUANT) != QUANT_NONE;
}

// A disk-mode shard whose originals left memory (qshard.ts "DISK MODE").
// @ts-ignore: decorator
@inline export function isSpilled(): bool {
  return hget(H_ORIG_GEN) != 0;
}

// A quantized shard past FREEZE_AT (qshard.ts "FREEZING"): built on codes,
// its quantizer learned again only by a compaction. Spilled implies frozen.
// @ts-ignore: decorator
@inline export function isFrozen(): bool {
  return hget(H_QFROZEN) != 0 || hget(H_ORIG_GEN) != 0;
}

// Frozen with a quantizer: inserts and repairs compare codes (a frozen
// shard whose compaction could not learn uses its originals until it does).
// @ts-ignore: decorator
@inline export function onCodes(): bool {
  return isFrozen() && hget(H_QLEARNED) != 0;
}

// nodePtr with the geometry already in locals: hot loops read the header
// once, not per neighbour (stores to the heaps stop the compiler from
// hoisting those loads itself).
// @ts-ignore: decorator
@inline export function slotPtr(slot: u32, dir: usize, magic: u64, perSlab: u32, stride: usize): usize {
  const slab = <u32>((<u64>slot * magic) >> DIV_SHIFT);
  return <usize>u32At(dir, slab) + <usize>(slot - slab * perSlab) * stride;
}

// @ts-ignore: decorator
@inline export function nodePtr(slot: u32): usize {
  const h = headerPtr();
  const slab = <u32>((<u64>slot * load<u64>(h + H_DIV_MAGIC)) >> DIV_SHIFT);
  const within = slot - slab * load<u32>(h + H_PER_SLAB);
  const slabPtr = <usize>u32At(<usize>load<u32>(h + H_NODE_DIR), slab);
  return slabPtr + <usize>within * <usize>load<u32>(h + H_STRIDE);
}

// @ts-ignore: decorator
@inline export function metaOf(nPtr: usize): u32 {
  return load<u32>(nPtr, NODE_META);
}

// @ts-ignore: decorator
@inline export function linkCount(meta: u32): u32 {
  return meta & META_COUNT_MASK;
}

// @ts-ignore: decorator
@inline export function levelOf(meta: u32): u32 {
  return (meta >> META_LEVEL_SHIFT) & META_LEVEL_MASK;
}

// @ts-ignore: decorator
@inline export function isDeleted(meta: u32): bool {
  return (meta & FLAG_DELETED) != 0;
}

// @ts-ignore: decorator
@inline export function isUuid(meta: u32): bool {
  return (meta & FLAG_UUID) != 0;
}

// The vector field of a node record: the f32 vector of an f32 shard, the
// codes of a quantized one (vecOf gives the f32 vector of either).
// @ts-ignore: decorator
@inline export function vectorOf(nPtr: usize): usize {
  return nPtr + <usize>hget(H_VEC_OFF);
}

// @ts-ignore: decorator
@inline export function idOf(nPtr: usize): usize {
  return nPtr + <usize>hget(H_ID_OFF);
}

// Bytes of one upper list (layout.ts UPPER LIST) and of a level-L block.
// @ts-ignore: decorator
@inline export function upperListBytes(): u32 {
  return UPPER_LINKS + hget(H_M) * LINK_BYTES;
}

// @ts-ignore: decorator
@inline export function upperBlockBytes(level: u32): u32 {
  return level * upperListBytes();
}

// Pointer to `level`'s upper list. Level 0's count is the low byte of the
// meta word; upper levels have a u32 count of their own.
// @ts-ignore: decorator
@inline export function upperListPtr(nPtr: usize, level: u32): usize {
  if (DEBUG) assert(level > 0);
  return <usize>load<u32>(nPtr, NODE_UPPER) + <usize>((level - 1) * upperListBytes());
}

export function countAt(nPtr: usize, level: u32): u32 {
  if (level == 0) return linkCount(metaOf(nPtr));
  return load<u32>(upperListPtr(nPtr, level), UPPER_COUNT);
}

export function linksAt(nPtr: usize, level: u32): usize {
  if (level == 0) return nPtr + NODE_LINKS;
  return upperListPtr(nPtr, level) + UPPER_LINKS;
}

export function setCountAt(nPtr: usize, level: u32, count: u32): void {
  if (DEBUG) assert(count <= maxLinks(level));
  if (level == 0) {
    store<u32>(nPtr, (metaOf(nPtr) & ~META_COUNT_MASK) | count, NODE_META);
  } else {
    store<u32>(upperListPtr(nPtr, level), count, UPPER_COUNT);
  }
}

export function maxLinks(level: u32): u32 {
  return level == 0 ? hget(H_M0) : hget(H_M);
}

export function pinnedOf(nPtr: usize): u32 {
  return (metaOf(nPtr) >> META_PINNED_SHIFT) & META_PINNED_MASK;
}

export function setPinned(nPtr: usize, pinned: u32): void {
  if (DEBUG) assert(pinned <= linkCount(metaOf(nPtr)));
  const meta = metaOf(nPtr) & ~(META_PINNED_MASK << META_PINNED_SHIFT);
  store<u32>(nPtr, meta | (pinned << META_PINNED_SHIFT), NODE_META);
}

// Adds `to` as a pinned level-0 link of the node at `p`: it goes right after
// the pinned ones; the unpinned link it displaces moves to the end, or is
// dropped when the list is full (its target has a pinned in-link of its own).
// The caller has checked pinned < M0.
export function pinLink(p: usize, to: u32): void {
  const count = countAt(p, 0);
  const pinned = pinnedOf(p);
  const links = linksAt(p, 0);
  if (DEBUG) assert(pinned < hget(H_M0));
  for (let j = pinned; j < count; j++) {
    if (u32At(links, j) == to) {
      // already linked: swap it into the pinned run
      setU32At(links, j, u32At(links, pinned));
      setU32At(links, pinned, to);
      setPinned(p, pinned + 1);
      return;
    }
  }
  if (count < hget(H_M0)) {
    if (pinned < count) setU32At(links, count, u32At(links, pinned));
    setCountAt(p, 0, count + 1);
  }
  setU32At(links, pinned, to);
  setPinned(p, pinned + 1);
}

// Makes room for `slots` node slots: node slabs and the directory, and the
// cold slabs of a quantized shard. Returns false (and changes nothing a
// reader can see) when memory cannot grow.
export function ensureSlots(slots: u32): bool {
  if (!dirSlots(H_NODE_DIR, slots)) return false;
  return hget(H_QUANT) == QUANT_NONE || isSpilled() || dirSlots(H_COLD_DIR, slots);
}

// Frees every cold slab and the cold directory (the spill: the host has
// the originals in its file). The directory fields read as empty after.
export function freeColdSlabs(): void {
  const d = H_COLD_DIR;
  const dir = <usize>hget(d + DIR_PTR);
  const slabs = hget(d + DIR_SLABS);
  const slabSlabs = hget(d + DIR_SLAB_BYTES) >> SLAB_SHIFT;
  for (let i: u32 = 0; i < slabs; i++) runFree(<usize>u32At(dir, i), slabSlabs, CLASS_NODE);
  if (dir != 0) runFree(dir, slabsFor(hget(d + DIR_CAP) * sizeof<u32>()), CLASS_SCRATCH);
  hset(d + DIR_PTR, 0);
  hset(d + DIR_CAP, 0);
  hset(d + DIR_SLABS, 0);
}

function dirSlots(d: u32, slots: u32): bool {
  const perSlab = hget(d + DIR_PER_SLAB);
  const needSlabs = (slots + perSlab - 1) / perSlab;
  let have = hget(d + DIR_SLABS);
  if (needSlabs <= have) return true;
  let dirCap = hget(d + DIR_CAP);
  if (needSlabs > dirCap) {
    let cap = dirCap == 0 ? SLAB_BYTES / sizeof<u32>() : dirCap * 2;
    while (cap < needSlabs) cap *= 2;
    const dir = runAlloc(slabsFor(cap * sizeof<u32>()), CLASS_SCRATCH);
    if (dir == 0) return false;
    const old = <usize>hget(d + DIR_PTR);
    if (old != 0) {
      memory.copy(dir, old, <usize>have * sizeof<u32>());
      runFree(old, slabsFor(dirCap * sizeof<u32>()), CLASS_SCRATCH);
    }
    hset(d + DIR_PTR, <u32>dir);
    hset(d + DIR_CAP, cap);
  }
  const slabSlabs = hget(d + DIR_SLAB_BYTES) >> SLAB_SHIFT;
  const dir = <usize>hget(d + DIR_PTR);
  while (have < needSlabs) {
    const slab = runAlloc(slabSlabs, CLASS_NODE);
    if (slab == 0) return false;
    setU32At(dir, have, <u32>slab);
    have++;
    hset(d + DIR_SLABS, have);
  }
  return true;
}
