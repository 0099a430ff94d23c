// The flat ABI the host sees: numbers and pointers only. Every function
// returns 0 / a count on success or a negative ERR_* (layout.ts); results
// go to caller-given pointers or to the io buffer.

import {
  ACCT_COMMITTED, ACCT_USED, CLASS_IDMAP, CLASS_LINKS, CLASS_NODE, CLASS_PAYLOAD, CLASS_SCRATCH, DEBUG,
  ERR_CORRUPT, ERR_INVALID, ERR_NOT_FOUND, ERR_OUT_OF_MEMORY, FLAG_DELETED, FLAG_UUID, HEADER_BYTES, HEADER_PTR,
  H_ARENA_BASE, H_ARENA_TOP, H_CHECKSUM, H_DELETED, H_DIM, H_EF, H_EFC, H_ENTRY, H_EXACT_GROWTH, H_FREE_RUNS,
  H_IDMAP_CAP, H_IMAGE_BYTES, H_IO, H_IO_BYTES, H_IO_USED, H_LEVEL_MULT, H_LIVE, H_LIVE_LINK_BYTES, H_M, H_M0,
  H_MAGIC, H_MAX_LEVEL, H_MAX_PAYLOAD, H_METRIC, H_NODE_DIR, H_NODE_DIR_CAP, H_RES, H_RNG, H_SLOTS, H_SMALL, H_STRIDE,
  H_VERSION, H_FCACHE, H_FCACHE_CAP, H_FGEN, H_FPATH, H_FEST, PATH_GRAPH, PATH_EXACT, PATH_GRAPH_EXACT, PATH_INDEX, H_VISITED, H_VISITED_CAP, H_VISIT_GEN, IO_ID_HI, IO_ID_LO, IO_KIND, IO_PAYLOAD, IO_PAYLOAD_LEN, IO_VECTOR,
  LAYOUT_VERSION, LINK_BYTES, LISTED_BYTES, LISTED_ID_HI, LISTED_ID_LO, LISTED_KIND, MAGIC, MAX_DIM,
  MAX_LEVEL, MAX_M, MAX_PAYLOAD_BYTES, META_LEVEL_MASK, META_LEVEL_SHIFT, METRIC_COSINE, METRIC_IP, METRIC_L2,
  ID_BYTES, NODE_LINKS, NODE_META, NODE_PAYLOAD, NONE, OK, PROBLEM_KINDS, RESULT_BYTES, RESULT_DIST, RESULT_FLAGS, RESULT_ID_HI,
  RESULT_ID_LO, RESULT_PAYLOAD_LEN, RESULT_PAYLOAD_PTR, SC_STRIDE, SLAB_BYTES, SLAB_SHIFT, SMALL_CLASSES,
  ID_HI, ID_LO, STAT_COUNT, TAG_SHIFT, UPPER_LINKS, headerPtr, hget, hset,
  H_COLD_DIR_CAP, H_COLD_STRIDE, H_QLEARNED, H_QUANTILE, H_QPARAMS, H_QUANT, QUANT_NONE, QUANT_SQ8,
  H_DISK, H_ORIG_GEN, H_ORDER, FREEZE_AT, H_RES_CAP, H_SEL, H_QFROZEN,
} from "./layout";
import {
  encodeRange, originalAt, quantInit, quantRunBytes, quantScrubQuery, relearnBegin, relearnColumn, relearnCount, relearnDim,
  relearnFinish, relearnSlots, rerankInto, spillBegin, spillFinish,
} from "./qshard";
import { acctGet, arenaInit, freeRunBytes, scrubFreeRuns, runAlloc, runFree, slabsFor, smallInit } from "./arena";
import { ensureSlots, idOf, isSpilled, nodeLayoutInit, nodePtr, upperBlockBytes } from "./node";
import { idmapBytes, idmapInit } from "./idmap";
import {
  ensureScratch, ensureVisited, getStaged, insertStaged, removeStaged, scratchCommittedBytes, scratchHeapBytes,
  searchStaged, writeResults,
} from "./hnsw";
import {
  compactDone, compactPlan, exportNodes, importFinish, importNodes, planEntry, repairFinish,
  repairRange,
} from "./repair";
import { checkIntegrity } from "./integrity";
import { livePayloadBytes, payloadInit } from "./payload";
import { countMatching, filterCacheBytes, matchesStaged, searchFiltered } from "./fsearch";
import {
  PX_BOOL, PX_FLOAT, PX_INTEGER, PX_KEYWORD, PX_MAX, PX_NAME, PX_NAME_LEN, PX_NAME_MAX, PX_POINTS, PX_TYPE, PX_UUID,
  pxBytes, pxCandBytes, pxCreate, pxDrop, pxEntry,
} from "./pindex";

export {
  insertStaged as insert, removeStaged as remove, getStaged as get, searchStaged as search,
  repairRange, repairFinish, compactPlan, compactDone, exportNodes, importNodes, importFinish,
  planEntry, checkIntegrity, searchFiltered, countMatching, matchesStaged as matches,
  pxCreate as createPayloadIndex, pxDrop as dropPayloadIndex, pxEntry as payloadIndexEntry,
  spillBegin, spillFinish, originalAt,
  relearnBegin, relearnCount, relearnSlots, relearnColumn, relearnDim, relearnFinish, encodeRange,
};


// @ts-ignore: decorator
@inline const IO_MIN: u32 = SLAB_BYTES;
// @ts-ignore: decorator
@inline const DEFAULT_EF: u32 = 64;
// @ts-ignore: decorator
@inline const DEFAULT_SEED: u64 = 0x9e3779b97f4a7c15;

// Lays out an empty shard in this memory. `capacity` pre-sizes node slabs,
// the id map and the visited tags (compaction passes the live count).
// `disk` 1: disk mode (quantized only; qshard.ts "DISK MODE"); `generation`
// != 0 makes it spilled from the start (a compaction's target: no cold
// slabs; the host copies the quantizer in before the import).
export function init(
  dim: u32, metric: u32, m: u32, efConstruction: u32, seed: u64, capacity: u32, quant: u32, quantile: f32,
  disk: u32, generation: u32,
): i32 {
  if (dim == 0 || dim > MAX_DIM || metric > METRIC_COSINE) return ERR_INVALID;
  if (quant > QUANT_SQ8 || (quant != QUANT_NONE && !(quantile >= 0.5 && quantile <= 1))) return ERR_INVALID;
  if (disk > 1 || (disk == 0 && generation != 0) || (disk != 0 && quant == QUANT_NONE)) return ERR_INVALID;
  if (m < 2 || m > MAX_M || efConstruction == 0) return ERR_INVALID;
  if (<usize>__heap_base > headerPtr()) return ERR_CORRUPT;
  const h = headerPtr();
  if (<u64>memory.size() << SLAB_SHIFT < <u64>(h + HEADER_BYTES)) {
    if (memory.grow(<i32>(((h + HEADER_BYTES) >> SLAB_SHIFT) + 1 - memory.size())) < 0) return ERR_OUT_OF_MEMORY;
  }
  memory.fill(h, 0, HEADER_BYTES);
  hset(H_MAGIC, MAGIC);
  hset(H_VERSION, LAYOUT_VERSION);
  hset(H_DIM, dim);
  hset(H_METRIC, metric);
  hset(H_M, m);
  hset(H_M0, 2 * m);
  hset(H_EFC, efConstruction);
  hset(H_EF, DEFAULT_EF);
  hset(H_SLOTS, 0);
  hset(H_LIVE, 0);
  hset(H_DELETED, 0);
  hset(H_ENTRY, NONE);
  hset(H_MAX_LEVEL, <u32>-1);
  store<u64>(h + H_RNG, seed == 0 ? DEFAULT_SEED : seed);
  store<f64>(h + H_LEVEL_MULT, 1.0 / Math.log(<f64>m));
  hset(H_DISK, disk);
  hset(H_ORIG_GEN, generation);
  nodeLayoutInit(dim, 2 * m, quant);
  // link class L holds the upper link block of a level-L node
  for (let sc: u32 = 1; sc < SMALL_CLASSES; sc++) smallInit(sc, upperBlockBytes(sc));
  payloadInit();
  // the arena starts at the first slab boundary after the header
  arenaInit((h + HEADER_BYTES + SLAB_BYTES - 1) & ~(<usize>SLAB_BYTES - 1));
  if (ioReserve(IO_MIN) == 0) return ERR_OUT_OF_MEMORY;
  const q = quantInit(quant, quantile);
  if (q != OK) return q;
  if (!idmapInit(capacity)) return ERR_OUT_OF_MEMORY;
  if (capacity > 0 && !ensureSlots(capacity)) return ERR_OUT_OF_MEMORY;
  if (!ensureVisited(max<u32>(capacity, 1))) return ERR_OUT_OF_MEMORY;
  if (!ensureScratch(0)) return ERR_OUT_OF_MEMORY;
  return OK;
}

// Validates the header of a memory that holds an image (or a copy).
export function attach(): i32 {
  const h = headerPtr();
  if (<u64>memory.size() << SLAB_SHIFT < <u64>(h + HEADER_BYTES)) return ERR_CORRUPT;
  if (hget(H_MAGIC) != MAGIC || hget(H_VERSION) != LAYOUT_VERSION) return ERR_CORRUPT;
  const top = <u64>hget(H_ARENA_TOP);
  if (top > <u64>memory.size() << SLAB_SHIFT || (top & 7) != 0 || hget(H_ARENA_BASE) < <u32>(h + HEADER_BYTES)) return ERR_CORRUPT;
  if (hget(H_DIM) == 0 || hget(H_DIM) > MAX_DIM || hget(H_M0) != 2 * hget(H_M)) return ERR_CORRUPT;
  if (hget(H_LIVE) + hget(H_DELETED) != hget(H_SLOTS)) return ERR_CORRUPT;
  if (hget(H_QUANT) > QUANT_SQ8 || (hget(H_QUANT) != QUANT_NONE && hget(H_QPARAMS) == 0)) return ERR_CORRUPT;
  // disk mode is quantized; spilled is disk mode with a learned quantizer and no cold slabs
  if (hget(H_DISK) > 1 || (hget(H_DISK) == 1 && hget(H_QUANT) == QUANT_NONE)) return ERR_CORRUPT;
  if (hget(H_ORIG_GEN) != 0 && (hget(H_DISK) == 0 || hget(H_QLEARNED) == 0 || hget(H_COLD_DIR_CAP) != 0)) return ERR_CORRUPT;
  // frozen is quantized
  if (hget(H_QFROZEN) > 1 || (hget(H_QFROZEN) == 1 && hget(H_QUANT) == QUANT_NONE)) return ERR_CORRUPT;
  return OK;
}

// The io buffer, at least `bytes` long; 0 when out of memory.
export function ioReserve(bytes: u32): usize {
  const have = hget(H_IO_BYTES);
  if (have >= bytes && hget(H_IO) != 0) return <usize>hget(H_IO);
  const size = slabsFor(max<u32>(bytes, IO_MIN)) << SLAB_SHIFT;
  const p = runAlloc(size >> SLAB_SHIFT, CLASS_SCRATCH);
  if (p == 0) return 0;
  if (have != 0) runFree(<usize>hget(H_IO), have >> SLAB_SHIFT, CLASS_SCRATCH);
  hset(H_IO, <u32>p);
  hset(H_IO_BYTES, size);
  return p;
}

// Gives a grown io buffer back (after a compaction streamed through it).
export function ioTrim(): void {
  const have = hget(H_IO_BYTES);
  if (have <= IO_MIN) return;
  runFree(<usize>hget(H_IO), have >> SLAB_SHIFT, CLASS_SCRATCH);
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

// @ts-ignore: decorator
@inline const HASH_BASIS: u64 = 0xcbf29ce484222325;
// @ts-ignore: decorator
@inline const HASH_PRIME: u64 = 0x100000001b3;

// 64-bit multiply-xor hash over [headerPtr, top) in u64 words, with the
// checksum field read as zero: cheap enough to run on every image. The
// static checks in layout.ts make HEADER_PTR 8-aligned and H_CHECKSUM the
// high half of a word; attach() refuses a top that is not 8-aligned, so
// no tail byte escapes the hash.
function imageHash(top: usize): u32 {
  const h = headerPtr();
  if (DEBUG) assert(((top - h) & 7) == 0);
  let acc: u64 = HASH_BASIS;
  for (let p = h; p + 8 <= top; p += 8) {
    let w = load<u64>(p);
    if (p == h + H_CHECKSUM - 4) w &= 0x00000000ffffffff; // H_CHECKSUM is the high half
    acc = (acc ^ w) * HASH_PRIME;
    acc ^= acc >> 29;
  }
  return <u32>(acc ^ (acc >> 32));
}

// Stamps the image length and checksum; returns the image length. Scratch
// (visited tags, heaps, io, free runs) is zeroed first: it carries nothing
// between calls, and zeroed it makes the image a function of the contents.
export function sealImage(): u32 {
  memory.fill(<usize>hget(H_VISITED), 0, <usize>hget(H_VISITED_CAP) << TAG_SHIFT);
  hset(H_VISIT_GEN, 0);
  if (hget(H_FCACHE) != 0) memory.fill(<usize>hget(H_FCACHE), 0, <usize>hget(H_FCACHE_CAP) << TAG_SHIFT);
  hset(H_FGEN, 0);
  hset(H_FPATH, 0);
  hset(H_FEST, 0);
  memory.fill(<usize>hget(H_RES), 0, scratchHeapBytes());
  memory.fill(<usize>hget(H_IO), 0, <usize>hget(H_IO_BYTES));
  hset(H_IO_USED, 0);
  quantScrubQuery();
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
  store<f64>(out + (<usize>i << alignof<f64>()), v);
  return i + 1;
}

// @ts-ignore: decorator
@inline function coldStride(): u32 {
  return hget(H_QUANT) == QUANT_NONE || isSpilled() ? 0 : hget(H_COLD_STRIDE);
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
  i = put(out, i, <f64>(<u64>memory.size() << SLAB_SHIFT));
  i = put(out, i, <f64>hget(H_ARENA_TOP));
  i = put(out, i, <f64>freeRunBytes());
  for (let c: u32 = 0; c < CLASS_PAYLOAD; c++) {
    i = put(out, i, <f64>acctGet(c, ACCT_COMMITTED));
    i = put(out, i, <f64>acctGet(c, ACCT_USED));
  }
  i = put(out, i, <f64>hget(H_LIVE) * <f64>(hget(H_STRIDE) + coldStride()) + <f64>hget(H_LIVE_LINK_BYTES) + <f64>livePayloadBytes());
  i = put(out, i, <f64>hget(H_STRIDE));
  i = put(out, i, <f64>hget(H_ARENA_BASE));
  i = put(out, i, <f64>idmapBytes());
  i = put(out, i, <f64>(scratchCommittedBytes() + filterCacheBytes() + pxCandBytes()));
  i = put(out, i, <f64>hget(H_IO_BYTES));
  i = put(out, i, <f64>((<u64>slabsFor(hget(H_NODE_DIR_CAP) * 4) + <u64>slabsFor(hget(H_COLD_DIR_CAP) * 4)) << SLAB_SHIFT));
  i = put(out, i, <f64>hget(H_ENTRY));
  i = put(out, i, <f64>hget(H_IDMAP_CAP));
  i = put(out, i, <f64>h);
  i = put(out, i, <f64>hget(H_EF));
  i = put(out, i, <f64>livePayloadBytes());
  i = put(out, i, <f64>acctGet(CLASS_PAYLOAD, ACCT_COMMITTED));
  i = put(out, i, <f64>acctGet(CLASS_PAYLOAD, ACCT_USED));
  i = put(out, i, <f64>hget(H_MAX_PAYLOAD));
  i = put(out, i, <f64>pxBytes());
  i = put(out, i, <f64>hget(H_QUANT));
  i = put(out, i, <f64>hget(H_QLEARNED));
  i = put(out, i, hget(H_QUANT) == QUANT_NONE ? 0 : <f64>load<f32>(h + H_QUANTILE));
  i = put(out, i, <f64>coldStride());
  i = put(out, i, <f64>quantRunBytes());
  if (DEBUG) assert(i == STAT_COUNT);
}

// A spilled shard's re-rank (qshard.ts rerankInto): the n candidate slots
// a search wrote to `slots`, their originals at `vecs`; the k nearest to
// `out` as RESULT records. Returns the count.
export function rerank(k: u32, n: u32, slots: usize, vecs: usize, out: usize): i32 {
  if (!isSpilled() || k == 0 || k + 2 > hget(H_RES_CAP) || n > hget(H_RES_CAP)) return ERR_INVALID;
  const slotCount = hget(H_SLOTS);
  for (let i: u32 = 0; i < n; i++) {
    if (load<u32>(slots + (<usize>i << 2)) >= slotCount) return ERR_INVALID;
  }
  return writeResults(<usize>hget(H_SEL), rerankInto(k, n, slots, vecs), out);
}

export function setEf(ef: u32): i32 {
  if (ef == 0) return ERR_INVALID;
  hset(H_EF, ef);
  return OK;
}

// Ids of live nodes from slot `from` on, at most `maxCount`, to `out` as
// LISTED ID records (layout.ts; host/ids.ts packs ids the same way). Returns
// how many; H_IO_USED gets the slot to continue from.
export function listIds(from: u32, maxCount: u32, out: usize): i32 {
  const slots = hget(H_SLOTS);
  let n: u32 = 0;
  let s = from;
  for (; s < slots && n < maxCount; s++) {
    const p = nodePtr(s);
    const meta = load<u32>(p, NODE_META);
    if ((meta & FLAG_DELETED) != 0) continue;
    const id = idOf(p);
    const o = out + <usize>n * LISTED_BYTES;
    store<u64>(o, load<u64>(id, ID_LO), LISTED_ID_LO);
    store<u64>(o, load<u64>(id, ID_HI), LISTED_ID_HI);
    store<u32>(o, (meta & FLAG_UUID) != 0 ? 1 : 0, LISTED_KIND);
    n++;
  }
  hset(H_IO_USED, s);
  return <i32>n;
}

// ---------------------------------------------------------------------------
// The layout table: the constants the host mirrors, in the order of LAYOUT
// in host/core/abi.ts. The host checks every entry at instantiate, so a
// stale build or a one-sided layout change fails loudly, not silently.
// ---------------------------------------------------------------------------
const LAYOUT_TABLE: StaticArray<f64> = [
  LAYOUT_VERSION, MAGIC, <f64>HEADER_PTR, HEADER_BYTES, SLAB_BYTES, NONE,
  OK, ERR_INVALID, ERR_NOT_FOUND, ERR_OUT_OF_MEMORY, ERR_CORRUPT,
  METRIC_L2, METRIC_IP, METRIC_COSINE,
  MAX_DIM, MAX_M, MAX_LEVEL, MAX_PAYLOAD_BYTES, FLAG_UUID,
  H_MAGIC, H_VERSION, H_DIM, H_METRIC, H_MAX_LEVEL, H_CHECKSUM, H_RNG, H_ARENA_TOP, H_FREE_RUNS, H_IMAGE_BYTES,
  H_NODE_DIR, H_SMALL, H_EXACT_GROWTH, SC_STRIDE, SMALL_CLASSES,
  CLASS_NODE, CLASS_LINKS, CLASS_IDMAP, CLASS_SCRATCH, CLASS_PAYLOAD,
  IO_ID_LO, IO_ID_HI, IO_KIND, IO_PAYLOAD, IO_PAYLOAD_LEN, IO_VECTOR,
  RESULT_DIST, RESULT_FLAGS, RESULT_ID_LO, RESULT_ID_HI, RESULT_PAYLOAD_PTR, RESULT_PAYLOAD_LEN, RESULT_BYTES,
  LISTED_BYTES,
  NODE_META, NODE_PAYLOAD, NODE_LINKS, ID_BYTES, META_LEVEL_SHIFT, META_LEVEL_MASK, UPPER_LINKS, LINK_BYTES,
  STAT_COUNT, PROBLEM_KINDS,
  H_FPATH, H_FEST, PATH_GRAPH, PATH_EXACT, PATH_GRAPH_EXACT, PATH_INDEX,
  PX_TYPE, PX_NAME_LEN, PX_NAME, PX_NAME_MAX, PX_POINTS, PX_MAX, PX_KEYWORD, PX_INTEGER, PX_FLOAT, PX_BOOL, PX_UUID,
  QUANT_NONE, QUANT_SQ8,
  H_DISK, H_ORIG_GEN, H_QLEARNED, H_ORDER, FREEZE_AT, H_SLOTS, H_LIVE, H_QFROZEN,
];

// Entry `i` of the layout table, or -1 past its end.
export function layoutEntry(i: u32): f64 {
  return i < <u32>LAYOUT_TABLE.length ? unchecked(LAYOUT_TABLE[i]) : -1;
}

// ---------------------------------------------------------------------------
// Payload updates (set / overwrite / delete keys / clear): the host computes
// the new payload, the core swaps the blob in place (assembly/payload.ts).
// ---------------------------------------------------------------------------
export { replacePayloadStaged as replacePayload } from "./payload";
