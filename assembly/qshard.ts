// A quantized shard (layout.ts: the record kinds): its quantizer, the codes
// in its node records, and the search that walks them.
//
// THE QUANTIZER RUN (H_QPARAMS, one run, accounted as node bytes):
//
//   0        params (quant.ts PARAMS), quantParamsBytes(dim)
//   QB       the query's dot bias f32 (QB = params rounded up to 16)
//   QB + 16  the query's codes, dim u8
//
// LEARNING. The quantizer is learned from the shard's own f32 originals: a
// sample of up to SAMPLE_MAX live vectors spread evenly over the slots.
// Until LEARN_MIN vectors are in, there is nothing to learn from and every
// search walks the originals (WALK_COLD: exact, as an f32 shard). After
// that, an insert that doubles the live count since the last learn learns
// again, up to LEARN_CAP live vectors; past that, compaction learns again
// (importFinish), from the survivors. A learn re-encodes every slot
// (tombstones too: searches walk them), O(slots * dim); the doublings make
// that O(1) amortised per insert. A learn that cannot get its scratch
// changes nothing; one at the end of a compaction that cannot leaves the
// shard unlearned (searches walk the originals) until the next insert.
//
// THE SEARCH. The query is encoded with the shard's quantizer; the upper
// levels and level 0 are walked on codes (WALK_CODES, hot records only);
// then the best `rescore` candidates of the beam are re-ranked with exact
// f32 distances to their originals and the k nearest returned, with exact
// distances. rescore 0 returns the code distances of the beam's best k.

import {
  CLASS_NODE, CLASS_SCRATCH, ERR_INVALID, ERR_OUT_OF_MEMORY, H_BIAS_OFF, H_DIM, H_LIVE, H_METRIC, H_QLEARNED,
  H_QPARAMS, H_QUANT, H_QUANTILE, H_RES, H_SEL, H_SLOTS, OK, QUANT_NONE, QUANT_SQ8, SLAB_SHIFT, headerPtr, hget, hset,
} from "./layout";
import { runAlloc, runFree, slabsFor } from "./arena";
import { distance } from "./distance";
import { drainAscending, entrySlot, heapPop, heapPush, entryDist } from "./heap";
import { coldPtr, isDeleted, metaOf, nodePtr, vectorOf } from "./node";
import { quantEncode, quantLearnRows, quantParamsBytes } from "./quant";
import { WALK_CODES, descendWith, walkLayer } from "./hnsw";

// @ts-ignore: decorator
@inline const LEARN_MIN: u32 = 32;
// @ts-ignore: decorator
@inline const LEARN_CAP: u32 = 65536;
// @ts-ignore: decorator
@inline const SAMPLE_MAX: u32 = 16384;
// @ts-ignore: decorator
@inline const AHEAD: u32 = 4;

// @ts-ignore: decorator
@inline function queryBiasOff(dim: u32): u32 {
  return (quantParamsBytes(dim) + 15) & ~15;
}

// @ts-ignore: decorator
@inline function runBytes(dim: u32): u32 {
  return queryBiasOff(dim) + 16 + dim;
}

// @ts-ignore: decorator
@inline export function queryBias(): f32 {
  return load<f32>(<usize>hget(H_QPARAMS) + <usize>queryBiasOff(hget(H_DIM)));
}

// @ts-ignore: decorator
@inline function queryCodes(): usize {
  return <usize>hget(H_QPARAMS) + <usize>queryBiasOff(hget(H_DIM)) + 16;
}

// Sets up quantization `quant` (QUANT_*) at init: the quantizer run, not
// learned yet. ERR_INVALID for an unknown kind or a quantile out of 0.5..1.
export function quantInit(quant: u32, quantile: f32): i32 {
  hset(H_QUANT, quant);
  if (quant == QUANT_NONE) return OK;
  if (quant != QUANT_SQ8 || !(quantile >= 0.5 && quantile <= 1)) return ERR_INVALID;
  store<f32>(headerPtr() + H_QUANTILE, quantile);
  const run = runAlloc(slabsFor(runBytes(hget(H_DIM))), CLASS_NODE);
  if (run == 0) return ERR_OUT_OF_MEMORY;
  memory.fill(run, 0, runBytes(hget(H_DIM)));
  hset(H_QPARAMS, <u32>run);
  hset(H_QLEARNED, 0);
  return OK;
}

// Clears the last query's codes and bias (an image holds no query).
export function quantScrubQuery(): void {
  if (hget(H_QUANT) == QUANT_NONE) return;
  const dim = hget(H_DIM);
  memory.fill(<usize>hget(H_QPARAMS) + <usize>queryBiasOff(dim), 0, 16 + dim);
}

export function quantRunBytes(): u64 {
  if (hget(H_QUANT) == QUANT_NONE) return 0;
  return <u64>slabsFor(runBytes(hget(H_DIM))) << SLAB_SHIFT;
}

// Writes the codes and bias of `slot` from its original (learned shards only).
// @ts-ignore: decorator
@inline export function encodeSlot(slot: u32): void {
  const p = nodePtr(slot);
  const bias = quantEncode(<usize>hget(H_QPARAMS), coldPtr(slot), vectorOf(p));
  store<f32>(p + <usize>hget(H_BIAS_OFF), bias);
}

// @ts-ignore: decorator
@inline export function quantLearned(): bool {
  return hget(H_QUANT) != QUANT_NONE && hget(H_QLEARNED) != 0;
}

// After an insert: learns again when the live count doubled since the last
// learn (or reached LEARN_MIN), below LEARN_CAP.
export function quantMaybeLearn(): void {
  const live = hget(H_LIVE);
  const learned = hget(H_QLEARNED);
  if (live < LEARN_MIN || learned >= LEARN_CAP) return;
  if (learned != 0 && live < 2 * learned) return;
  quantLearnNow();
}

// Learns the quantizer from a sample of the live originals and re-encodes
// every slot. Returns false, changing nothing, when its scratch cannot be
// had (or there is nothing to learn from).
export function quantLearnNow(): bool {
  const slots = hget(H_SLOTS);
  const live = hget(H_LIVE);
  if (live == 0) return false;
  const want = min<u32>(live, SAMPLE_MAX);
  const scratchSlabs = slabsFor(want * 8);
  const scratch = runAlloc(scratchSlabs, CLASS_SCRATCH);
  if (scratch == 0) return false;
  // rows: up to `want` live slots spread evenly over [0, slots)
  let n: u32 = 0;
  if (live <= SAMPLE_MAX) {
    for (let s: u32 = 0; s < slots; s++) {
      if (!isDeleted(metaOf(nodePtr(s)))) n = addRow(scratch, n, s);
    }
  } else {
    for (let i: u32 = 0; i < SAMPLE_MAX; i++) {
      const s = <u32>((<u64>i * <u64>slots) / <u64>SAMPLE_MAX);
      if (!isDeleted(metaOf(nodePtr(s)))) n = addRow(scratch, n, s);
    }
  }
  const params = <usize>hget(H_QPARAMS);
  const status = n == 0 ? ERR_INVALID
    : quantLearnRows(scratch, n, hget(H_DIM), load<f32>(headerPtr() + H_QUANTILE), params, scratch + (<usize>want << 2));
  runFree(scratch, scratchSlabs, CLASS_SCRATCH);
  if (status != OK) return false;
  for (let s: u32 = 0; s < slots; s++) encodeSlot(s);
  hset(H_QLEARNED, live);
  return true;
}

// @ts-ignore: decorator
@inline function addRow(rows: usize, n: u32, slot: u32): u32 {
  store<u32>(rows + (<usize>n << 2), <u32>coldPtr(slot));
  return n + 1;
}

// After a compaction's import: learn from the survivors, or fall back to
// the originals until the next insert learns.
export function quantAfterImport(): void {
  if (hget(H_QUANT) == QUANT_NONE) return;
  hset(H_QLEARNED, 0);
  quantLearnNow();
}

// The quantized search of the query at q (f32, checked): leaves the k
// nearest (or fewer) ascending in SEL and returns how many. The caller has
// reserved scratch for max(ef, k, rescore).
export function searchCodes(q: usize, k: u32, ef: u32, rescore: u32): u32 {
  const dim = hget(H_DIM);
  const metric = hget(H_METRIC);
  const qc = queryCodes();
  const params = <usize>hget(H_QPARAMS);
  store<f32>(params + <usize>queryBiasOff(dim), quantEncode(params, q, qc));
  const width = max<u32>(max<u32>(ef, k), rescore);
  const ep = descendWith(WALK_CODES, qc, 0);
  const nr = walkLayer(WALK_CODES, qc, ep, width, 0, true);
  const sel = <usize>hget(H_SEL);
  const res = <usize>hget(H_RES);
  drainAscending(res, nr, sel);
  if (rescore == 0) return min<u32>(k, nr);
  const n = min<u32>(nr, max<u32>(rescore, k));
  let nk: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    // WASM has no prefetch: touch the original AHEAD candidates on
    if (i + AHEAD < n) load<u32>(coldPtr(entrySlot(sel, i + AHEAD)));
    const s = entrySlot(sel, i);
    const d = distance(metric, q, coldPtr(s), dim);
    if (nk < k) nk = heapPush(res, nk, d, s, true);
    else if (d < entryDist(res, 0)) nk = heapPush(res, heapPop(res, nk, true), d, s, true);
  }
  drainAscending(res, nk, sel);
  return nk;
}
