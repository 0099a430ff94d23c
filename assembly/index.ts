// The flat ABI the host sees: numbers and pointers only. Every function
// returns 0 / a count on success or a negative ERR_* (layout.ts); results
// go to caller-given pointers or to the io buffer.

import {
  ACCT_CLASSES, ACCT_COMMITTED, ACCT_USED, ERR_CORRUPT, ERR_INVALID, ERR_OUT_OF_MEMORY,
  CLASS_PAYLOAD, H_MAX_PAYLOAD, FLAG_DELETED, FLAG_UUID, H_ID_OFF, H_CHECKSUM, H_DELETED, H_EF, H_VISITED, H_VISITED_CAP, H_VISIT_GEN, H_RES, H_SEL, H_SEL_CAP, H_DIM, H_EFC, H_ENTRY, H_IDMAP_CAP, H_IMAGE_BYTES, H_IO, H_IO_BYTES,
  H_IO_USED, H_LEVEL_MULT, H_LIVE, H_LIVE_LINK_BYTES, H_M, H_M0, H_MAGIC, H_MAX_LEVEL, H_METRIC,
  H_NODE_DIR_CAP, H_RNG, H_SLOTS, H_STRIDE, H_VERSION, H_ARENA_TOP, H_ARENA_BASE, HEADER_BYTES,
  CLASS_SCRATCH, LAYOUT_VERSION, MAGIC, MAX_DIM, MAX_M, METRIC_COSINE, NONE, OK, SLAB_BYTES,
  SMALL_CLASSES, MAX_LEVEL, headerPtr, hget, hset,
} from "./layout";
import {
  acctGet, arenaInit, freeRunBytes, scrubFreeRuns, runAlloc, runFree, slabsFor, smallAlloc, smallBlockBytes,
  smallFree, smallInit,
} from "./arena";
import { dotScalar, dotSimd, l2Scalar, l2Simd } from "./distance";
import { ensureSlots, nodeLayoutInit, nodePtr } from "./node";
import { idmapBytes, idmapInit } from "./idmap";
import {
  ensureScratch, ensureVisited, getStaged, insertStaged, removeStaged, scratchCommittedBytes,
  searchStaged,
} from "./hnsw";
import {
  compactDone, compactPlan, exportNodes, importFinish, importNodes, planEntry, repairFinish,
  repairRange,
} from "./repair";
import { checkIntegrity } from "./integrity";
import { livePayloadBytes, payloadInit } from "./payload";

export {
  insertStaged as insert, removeStaged as remove, getStaged as get, searchStaged as search,
  repairRange, repairFinish, compactPlan, compactDone, exportNodes, importNodes, importFinish,
  planEntry, checkIntegrity,
};

// @ts-ignore: decorator
@inline const IO_MIN: u32 = SLAB_BYTES;

// Lays out an empty shard in this memory. `capacity` pre-sizes node slabs,
// the id map and the visited tags (compaction passes the live count).
export function init(
  dim: u32, metric: u32, m: u32, efConstruction: u32, seed: u64, capacity: u32,
): i32 {
  if (dim == 0 || dim > MAX_DIM || metric > METRIC_COSINE) return ERR_INVALID;
  if (m < 2 || m > MAX_M || efConstruction == 0) return ERR_INVALID;
  if (<usize>__heap_base > headerPtr()) return ERR_CORRUPT;
  const h = headerPtr();
  if (<u64>memory.size() << 16 < <u64>(h + HEADER_BYTES)) {
    if (memory.grow(<i32>(((h + HEADER_BYTES) >> 16) + 1 - memory.size())) < 0) return ERR_OUT_OF_MEMORY;
  }
  memory.fill(h, 0, HEADER_BYTES);
  hset(H_MAGIC, MAGIC);
  hset(H_VERSION, LAYOUT_VERSION);
  hset(H_DIM, dim);
  hset(H_METRIC, metric);
  hset(H_M, m);
  hset(H_M0, 2 * m);
  hset(H_EFC, efConstruction);
  hset(H_EF, 64);
  hset(H_SLOTS, 0);
  hset(H_LIVE, 0);
  hset(H_DELETED, 0);
  hset(H_ENTRY, NONE);
  hset(H_MAX_LEVEL, <u32>-1);
  store<u64>(h + H_RNG, seed == 0 ? 0x9e3779b97f4a7c15 : seed);
  store<f64>(h + H_LEVEL_MULT, 1.0 / Math.log(<f64>m));
  nodeLayoutInit(dim, 2 * m);
  for (let sc: u32 = 1; sc < SMALL_CLASSES; sc++) smallInit(sc, sc * (4 + 4 * m));
  payloadInit();
  // the arena starts at the first slab boundary after the header
  arenaInit((h + HEADER_BYTES + SLAB_BYTES - 1) & ~(<usize>SLAB_BYTES - 1));
  if (ioReserve(IO_MIN) == 0) return ERR_OUT_OF_MEMORY;
  if (!idmapInit(capacity)) return ERR_OUT_OF_MEMORY;
  if (capacity > 0 && !ensureSlots(capacity)) return ERR_OUT_OF_MEMORY;
  if (!ensureVisited(max<u32>(capacity, 1))) return ERR_OUT_OF_MEMORY;
  if (!ensureScratch(0)) return ERR_OUT_OF_MEMORY;
  return OK;
}

// Validates the header of a memory that holds an image (or a copy).
export function attach(): i32 {
  const h = headerPtr();
  if (<u64>memory.size() << 16 < <u64>(h + HEADER_BYTES)) return ERR_CORRUPT;
  if (hget(H_MAGIC) != MAGIC || hget(H_VERSION) != LAYOUT_VERSION) return ERR_CORRUPT;
  const top = <u64>hget(H_ARENA_TOP);
  if (top > <u64>memory.size() << 16 || hget(H_ARENA_BASE) < <u32>(h + HEADER_BYTES)) return ERR_CORRUPT;
  if (hget(H_DIM) == 0 || hget(H_DIM) > MAX_DIM || hget(H_M0) != 2 * hget(H_M)) return ERR_CORRUPT;
  if (hget(H_LIVE) + hget(H_DELETED) != hget(H_SLOTS)) return ERR_CORRUPT;
  return OK;
}

// The io buffer, at least `bytes` long; 0 when out of memory.
export function ioReserve(bytes: u32): usize {
  const have = hget(H_IO_BYTES);
  if (have >= bytes && hget(H_IO) != 0) return <usize>hget(H_IO);
  const size = slabsFor(max<u32>(bytes, IO_MIN)) << 16;
  const p = runAlloc(size >> 16, CLASS_SCRATCH);
  if (p == 0) return 0;
  if (have != 0) runFree(<usize>hget(H_IO), have >> 16, CLASS_SCRATCH);
  hset(H_IO, <u32>p);
  hset(H_IO_BYTES, size);
  return p;
}

// Gives a grown io buffer back (after a compaction streamed through it).
export function ioTrim(): void {
  const have = hget(H_IO_BYTES);
  if (have <= IO_MIN) return;
  runFree(<usize>hget(H_IO), have >> 16, CLASS_SCRATCH);
  hset(H_IO, 0);
  hset(H_IO_BYTES, 0);
  ioReserve(IO_MIN);
}

export function ioPtr(): usize {
  return <usize>hget(H_IO);
}

export function ioUsed(): u32 {
  return hget(H_IO_USED);
}

export function header(): usize {
  return headerPtr();
}

export function usedBytes(): u32 {
  return hget(H_ARENA_TOP);
}

// 64-bit multiply-xor hash over [headerPtr, top), with the checksum field
// read as zero: cheap enough to run on every image.
function imageHash(top: usize): u32 {
  const h = headerPtr();
  let acc: u64 = 0xcbf29ce484222325;
  for (let p = h; p + 8 <= top; p += 8) {
    let w = load<u64>(p);
    if (p == h + H_CHECKSUM - 4) w &= 0x00000000ffffffff; // H_CHECKSUM is the high half
    acc = (acc ^ w) * 0x100000001b3;
    acc ^= acc >> 29;
  }
  return <u32>(acc ^ (acc >> 32));
}

// Stamps the image length and checksum; returns the image length. Scratch
// (visited tags, heaps, io, free runs) is zeroed first: it carries nothing
// between calls, and zeroed it makes the image a function of the contents.
export function sealImage(): u32 {
  memory.fill(<usize>hget(H_VISITED), 0, <usize>hget(H_VISITED_CAP) << 1);
  hset(H_VISIT_GEN, 0);
  const heaps = <usize>hget(H_RES);
  memory.fill(heaps, 0, <usize>(hget(H_SEL) - hget(H_RES)) + <usize>(hget(H_SEL_CAP) + hget(H_M0) + 2) * 8);
  memory.fill(<usize>hget(H_IO), 0, <usize>hget(H_IO_BYTES));
  hset(H_IO_USED, 0);
  scrubFreeRuns();
  const top = hget(H_ARENA_TOP);
  hset(H_IMAGE_BYTES, top);
  hset(H_CHECKSUM, imageHash(top));
  return top;
}

export function verifyImage(bytes: u32): i32 {
  if (attach() != OK) return ERR_CORRUPT;
  const top = hget(H_ARENA_TOP);
  if (hget(H_IMAGE_BYTES) != top || bytes != top) return ERR_CORRUPT;
  if (hget(H_CHECKSUM) != imageHash(top)) return ERR_CORRUPT;
  return OK;
}

// @ts-ignore: decorator
@inline function put(out: usize, i: u32, v: f64): u32 {
  store<f64>(out + (<usize>i << 3), v);
  return i + 1;
}

// Shard statistics as f64s at `out` (see host/core/abi.ts for the order).
export function stats(out: usize): void {
  const h = headerPtr();
  let i: u32 = 0;
  i = put(out, i, <f64>hget(H_DIM));
  i = put(out, i, <f64>hget(H_METRIC));
  i = put(out, i, <f64>hget(H_M));
  i = put(out, i, <f64>hget(H_EFC));
  i = put(out, i, <f64>hget(H_SLOTS));
  i = put(out, i, <f64>hget(H_LIVE));
  i = put(out, i, <f64>hget(H_DELETED));
  i = put(out, i, <f64><i32>hget(H_MAX_LEVEL));
  i = put(out, i, <f64>(<u64>memory.size() << 16));
  i = put(out, i, <f64>hget(H_ARENA_TOP));
  i = put(out, i, <f64>freeRunBytes());
  for (let c: u32 = 0; c < CLASS_PAYLOAD; c++) {
    i = put(out, i, <f64>acctGet(c, ACCT_COMMITTED));
    i = put(out, i, <f64>acctGet(c, ACCT_USED));
  }
  i = put(out, i, <f64>hget(H_LIVE) * <f64>hget(H_STRIDE) + <f64>hget(H_LIVE_LINK_BYTES) + <f64>livePayloadBytes());
  i = put(out, i, <f64>hget(H_STRIDE));
  i = put(out, i, <f64>hget(H_ARENA_BASE));
  i = put(out, i, <f64>idmapBytes());
  i = put(out, i, <f64>scratchCommittedBytes());
  i = put(out, i, <f64>hget(H_IO_BYTES));
  i = put(out, i, <f64>(<u64>slabsFor(hget(H_NODE_DIR_CAP) * 4) << 16));
  i = put(out, i, <f64>hget(H_ENTRY));
  i = put(out, i, <f64>hget(H_IDMAP_CAP));
  i = put(out, i, <f64>h);
  i = put(out, i, <f64>hget(H_EF));
  i = put(out, i, <f64>livePayloadBytes());
  i = put(out, i, <f64>acctGet(CLASS_PAYLOAD, ACCT_COMMITTED));
  i = put(out, i, <f64>acctGet(CLASS_PAYLOAD, ACCT_USED));
  put(out, i, <f64>hget(H_MAX_PAYLOAD));
}

export function setEf(ef: u32): i32 {
  if (ef == 0) return ERR_INVALID;
  hset(H_EF, ef);
  return OK;
}

// Packed ids (4 id words, then kind: 1 for a UUID) of live nodes from slot
// `from` on, at most `maxCount`, to `out`. Returns how many; H_IO_USED gets
// the slot to continue from.
export function listIds(from: u32, maxCount: u32, out: usize): i32 {
  const slots = hget(H_SLOTS);
  let n: u32 = 0;
  let s = from;
  for (; s < slots && n < maxCount; s++) {
    const p = nodePtr(s);
    const meta = load<u32>(p);
    if ((meta & FLAG_DELETED) != 0) continue;
    const id = p + <usize>hget(H_ID_OFF);
    const o = out + <usize>n * 20;
    store<u64>(o, load<u64>(id));
    store<u64>(o, load<u64>(id, 8), 8);
    store<u32>(o, (meta & FLAG_UUID) != 0 ? 1 : 0, 16);
    n++;
  }
  hset(H_IO_USED, s);
  return <i32>n;
}

// --- test hooks: the arena model test and the kernel test drive these ---

export function arenaRunAlloc(slabs: u32, cls: u32): usize {
  return runAlloc(slabs, cls);
}
export function arenaRunFree(ptr: usize, slabs: u32, cls: u32): void {
  runFree(ptr, slabs, cls);
}
export function arenaSmallAlloc(sc: u32): usize {
  if (sc == 0 || sc > MAX_LEVEL) return 0;
  return smallAlloc(sc);
}
export function arenaSmallFree(sc: u32, ptr: usize): void {
  smallFree(sc, ptr);
}
export function arenaSmallBlock(sc: u32): u32 {
  return smallBlockBytes(sc);
}
export function arenaFreeRunBytes(): f64 {
  return <f64>freeRunBytes();
}
export function kernelL2(a: usize, b: usize, dim: u32): f32 {
  return l2Simd(a, b, dim);
}
export function kernelL2Scalar(a: usize, b: usize, dim: u32): f32 {
  return l2Scalar(a, b, dim);
}
export function kernelDot(a: usize, b: usize, dim: u32): f32 {
  return dotSimd(a, b, dim);
}
export function kernelDotScalar(a: usize, b: usize, dim: u32): f32 {
  return dotScalar(a, b, dim);
}
