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
// again. A learn re-encodes every slot (tombstones too: searches walk
// them), O(slots * dim); the doublings make that O(1) amortised per insert.
// A learn that cannot get its scratch changes nothing.
//
// FREEZING (H_QFROZEN). The insert that brings a quantized shard to
// FREEZE_AT live vectors learns from them (unless its doubling just did)
// and freezes the quantizer: no insert learns again, and from then on an
// insert is linked on codes (its own codes as the query of the walk,
// code-to-code distances in the heuristic and in compaction's repair:
// hnsw.ts slotDistance), and a filtered search scores codes and re-ranks,
// as an unfiltered one does. Both modes do exactly this, so a disk-mode
// shard, whose originals leave memory at that point, builds the graph and
// answers bit for bit as an always_ram one given the same writes. A
// compaction learns again from the survivors (importFinish in RAM; a
// spilled target from the host's file, relearnBegin below, the same sample
// and arithmetic) and re-encodes every slot; one that cannot get its
// scratch leaves the shard unlearned (searches walk the originals) until
// the next insert learns.
//
// THE SEARCH. The query is encoded with the shard's quantizer; the upper
// levels and level 0 are walked on codes (WALK_CODES, hot records only);
// then the best `rescore` candidates of the beam are re-ranked with exact
// f32 distances to their originals and the k nearest returned, with exact
// distances. rescore 0 returns the code distances of the beam's best k.
//
// DISK MODE (H_DISK, always_ram: false). A disk-mode shard starts as above
// (the RAM phase: originals in cold slabs). Once frozen the host spills it:
// it copies every slot's original to its file (originalAt), and
// spillFinish frees the cold slabs and sets the originals generation
// (H_ORIG_GEN != 0: "spilled"). From then on an insert encodes its vector
// straight into its record, and a search with rescore > 0 leaves its best
// max(rescore, k) candidates' slots for the host, which reads their
// originals into io and calls rerank (exact distances, this module's
// kernel, in the RAM re-rank's order: bit-identical to it).

import {
  CLASS_NODE, CLASS_SCRATCH, FREEZE_AT, ERR_INVALID, ERR_OUT_OF_MEMORY, H_BIAS_OFF, H_DIM, H_DISK, H_IO, H_LIVE, H_QFROZEN,
  H_METRIC, H_ORIG_GEN, H_QLEARNED, H_QPARAMS, H_QUANT, H_QUANTILE, H_RES, H_SEL, H_SLOTS, IO_VECTOR, OK,
  QUANT_NONE, QUANT_SQ8, SLAB_SHIFT, headerPtr, hget, hset, u32At,
} from "./layout";
import { runAlloc, runFree, slabsFor } from "./arena";
import { distance } from "./distance";
import { drainAscending, entrySlot, heapPop, heapPush, entryDist } from "./heap";
import { coldPtr, freeColdSlabs, isDeleted, isFrozen, isQuantized, isSpilled, metaOf, nodePtr, vectorOf } from "./node";
import { codeDistance, codeKernel, learnCut, learnDim, learnFinish, quantEncode, quantLearnRows, quantParamsBytes } from "./quant";
import { WALK_CODES, descendWith, walkLayer } from "./hnsw";

// @ts-ignore: decorator
@inline const LEARN_MIN: u32 = 32;
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
  if (quant == QUANT_NONE) return hget(H_DISK) != 0 ? ERR_INVALID : OK;
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
// learn (or reached LEARN_MIN); at FREEZE_AT live, learns from them (unless
// the doubling just did) and freezes.
export function quantMaybeLearn(): void {
  const live = hget(H_LIVE);
  const learned = hget(H_QLEARNED);
  if (isFrozen()) {
    // a compaction's learn that could not get its scratch: this insert's
    if (learned == 0 && !isSpilled()) quantLearnNow();
    return;
  }
  if (live >= FREEZE_AT) {
    // a learn that cannot get its scratch leaves the freeze to the next insert
    if (learned == live || quantLearnNow()) hset(H_QFROZEN, 1);
    return;
  }
  if (live < LEARN_MIN) return;
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
  const n = sampleInto(scratch, true);
  const params = <usize>hget(H_QPARAMS);
  const status = n == 0 ? ERR_INVALID
    : quantLearnRows(scratch, n, hget(H_DIM), load<f32>(headerPtr() + H_QUANTILE), params, scratch + (<usize>want << 2));
  runFree(scratch, scratchSlabs, CLASS_SCRATCH);
  if (status != OK) return false;
  for (let s: u32 = 0; s < slots; s++) encodeSlot(s);
  hset(H_QLEARNED, live);
  return true;
}

// The learn's sample: up to SAMPLE_MAX live slots spread evenly over
// [0, slots), in slot order, as u32s at `out`: their originals' pointers
// (`pointers`) or the slots. Returns how many.
function sampleInto(out: usize, pointers: bool): u32 {
  const slots = hget(H_SLOTS);
  const all = hget(H_LIVE) <= SAMPLE_MAX;
  const m = all ? slots : SAMPLE_MAX;
  let n: u32 = 0;
  for (let i: u32 = 0; i < m; i++) {
    const s = all ? i : <u32>((<u64>i * <u64>slots) / <u64>SAMPLE_MAX);
    if (isDeleted(metaOf(nodePtr(s)))) continue;
    store<u32>(out + (<usize>n << 2), pointers ? <u32>coldPtr(s) : s);
    n++;
  }
  return n;
}

// After a compaction's import: learn from the survivors, or fall back to
// the originals until the next insert learns.
export function quantAfterImport(): void {
  // a spilled target learns from the host's file (relearnBegin)
  if (hget(H_QUANT) == QUANT_NONE || isSpilled()) return;
  hset(H_QLEARNED, 0);
  quantLearnNow();
}

// ------------------------------------------- a spilled target learns again --
// A compaction's target learns its quantizer again from the survivors, as
// quantAfterImport does in RAM, from the same sample; a spilled target's
// originals are in the host's file, so the host feeds the sample in, one
// dimension at a time, and then every slot's original (encodeRange):
//
//   run = relearnBegin()   the sample's relearnCount(run) slots at
//                          relearnSlots(run)
//   relearnDim(run, d)     after writing dimension d of the sample, in that
//                          order, at relearnColumn(run)
//   relearnFinish(run)     the quantizer is new; the codes are stale until
//                          encodeRange has covered every slot
//
// The run (CLASS_SCRATCH): n u32, cut u32, width f64, then n u32 slots,
// then the column, n f32.

// @ts-ignore: decorator
@inline const RL_WIDTH: usize = 8;
// @ts-ignore: decorator
@inline const RL_SLOTS: usize = 16;

// @ts-ignore: decorator
@inline function relearnRunBytes(n: u32): u32 {
  return <u32>RL_SLOTS + 8 * n;
}

// The run, or 0 (no scratch, or not a spilled shard with live vectors).
export function relearnBegin(): usize {
  const live = hget(H_LIVE);
  if (!isSpilled() || live == 0) return 0;
  const want = min<u32>(live, SAMPLE_MAX);
  const run = runAlloc(slabsFor(relearnRunBytes(want)), CLASS_SCRATCH);
  if (run == 0) return 0;
  const n = sampleInto(run + RL_SLOTS, false);
  store<u32>(run, n);
  store<u32>(run + 4, learnCut(n, load<f32>(headerPtr() + H_QUANTILE)));
  store<f64>(run + RL_WIDTH, 0);
  return run;
}

export function relearnCount(run: usize): u32 {
  return load<u32>(run);
}

export function relearnSlots(run: usize): usize {
  return run + RL_SLOTS;
}

export function relearnColumn(run: usize): usize {
  return run + RL_SLOTS + (<usize>load<u32>(run) << 2);
}

// ERR_INVALID for a value that is not finite (the params are then unusable:
// the compaction is abandoned).
export function relearnDim(run: usize, d: u32): i32 {
  const n = load<u32>(run);
  const col = relearnColumn(run);
  if (d >= hget(H_DIM)) return ERR_INVALID;
  for (let i: u32 = 0; i < n; i++) {
    if (!isFinite(load<f32>(col + (<usize>i << 2)))) return ERR_INVALID;
  }
  const w = learnDim(col, n, load<u32>(run + 4), <usize>hget(H_QPARAMS), d);
  store<f64>(run + RL_WIDTH, max<f64>(load<f64>(run + RL_WIDTH), w));
  return OK;
}

export function relearnFinish(run: usize): void {
  learnFinish(<usize>hget(H_QPARAMS), hget(H_DIM), load<f32>(headerPtr() + H_QUANTILE), load<f64>(run + RL_WIDTH));
  runFree(run, slabsFor(relearnRunBytes(min<u32>(hget(H_LIVE), SAMPLE_MAX))), CLASS_SCRATCH);
  hset(H_QLEARNED, hget(H_LIVE));
}

// Encodes slots [from, from + n) from their originals at `vecs` (dim f32
// each, in slot order): a spilled target after relearnFinish.
export function encodeRange(from: u32, n: u32, vecs: usize): i32 {
  if (!isSpilled() || from + n > hget(H_SLOTS)) return ERR_INVALID;
  const stride = <usize>hget(H_DIM) << 2;
  for (let i: u32 = 0; i < n; i++) encodeInto(from + i, vecs + <usize>i * stride);
  return OK;
}

// The walk on codes of the query at q (f32, checked): leaves the beam
// ascending in SEL and returns its size. The caller has reserved scratch
// for max(ef, k, rescore).
export function walkCodes(q: usize, k: u32, ef: u32, rescore: u32): u32 {
  const qc = encodeQuery(q);
  const width = max<u32>(max<u32>(ef, k), rescore);
  const ep = descendWith(WALK_CODES, qc, 0);
  const nr = walkLayer(WALK_CODES, qc, ep, width, 0, true);
  drainAscending(<usize>hget(H_RES), nr, <usize>hget(H_SEL));
  return nr;
}

// The quantized search of the query at q (f32, checked): leaves the k
// nearest (or fewer) ascending in SEL and returns how many. The caller has
// reserved scratch for max(ef, k, rescore).
export function searchCodes(q: usize, k: u32, ef: u32, rescore: u32): u32 {
  const nr = walkCodes(q, k, ef, rescore);
  if (rescore == 0) return min<u32>(k, nr);
  return rerankSel(q, k, min<u32>(nr, max<u32>(rescore, k)));
}

// The re-rank in RAM: the first n candidates of SEL (ascending by code
// distance) by exact distance from q (f32) to their originals in the cold
// slabs; leaves the k nearest ascending in SEL and returns how many.
export function rerankSel(q: usize, k: u32, n: u32): u32 {
  const dim = hget(H_DIM);
  const metric = hget(H_METRIC);
  const sel = <usize>hget(H_SEL);
  const res = <usize>hget(H_RES);
  let nk: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    // WASM has no prefetch: touch the original AHEAD candidates on
    if (i + AHEAD < n) load<u32>(coldPtr(entrySlot(sel, i + AHEAD)));
    const s = entrySlot(sel, i);
    nk = keepK(res, nk, k, distance(metric, q, coldPtr(s), dim), s);
  }
  drainAscending(res, nk, sel);
  return nk;
}

// Offers (d, s) to the max-heap RES of the k nearest so far; the new count.
// @ts-ignore: decorator
@inline function keepK(res: usize, nk: u32, k: u32, d: f32, s: u32): u32 {
  if (nk < k) return heapPush(res, nk, d, s, true);
  if (d < entryDist(res, 0)) return heapPush(res, heapPop(res, nk, true), d, s, true);
  return nk;
}

// ------------------------------------------------------------ disk mode --

// @ts-ignore: decorator
@inline export function isDisk(): bool {
  return hget(H_DISK) != 0;
}

// The first n candidates of SEL (a spilled search's, ascending by code
// distance) as u32 slots at `out`, for the host to read their originals.
export function writeCandidates(n: u32, out: usize): i32 {
  const sel = <usize>hget(H_SEL);
  for (let i: u32 = 0; i < n; i++) store<u32>(out + (<usize>i << 2), entrySlot(sel, i));
  return <i32>n;
}

// A spilled shard's re-rank: the query staged at io + IO_VECTOR (the search
// normalised it), the n candidate slots at `slots` and their originals at
// `vecs` (dim f32 each, the host read them from its file, in that order):
// the k nearest by exact distance, ascending, in SEL. Returns how many.
// The same order and the same heap as searchCodes' re-rank, so the same
// answer as a RAM shard with the same graph and codes.
export function rerankInto(k: u32, n: u32, slots: usize, vecs: usize): u32 {
  const dim = hget(H_DIM);
  const metric = hget(H_METRIC);
  const q = <usize>hget(H_IO) + IO_VECTOR;
  const res = <usize>hget(H_RES);
  const stride = <usize>dim << 2;
  let nk: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    nk = keepK(res, nk, k, distance(metric, q, vecs + <usize>i * stride, dim), u32At(slots, i));
  }
  drainAscending(res, nk, <usize>hget(H_SEL));
  return nk;
}

// True when a disk-mode shard in its RAM phase has reached FREEZE_AT
// live vectors: the host spills it after the insert.
export function spillDue(): bool {
  return isDisk() && !isSpilled() && isFrozen();
}

// Step one of the spill: the quantizer learned from the live set now
// (unless the insert just learned from it) and frozen. Returns the slot
// count (the host copies originalAt(0 .. slots) to its file), or an error:
// ERR_INVALID when no spill is due, ERR_OUT_OF_MEMORY when the learn could
// not get its scratch (nothing changed: the next insert tries again).
export function spillBegin(): i32 {
  if (!spillDue()) return ERR_INVALID;
  return <i32>hget(H_SLOTS);
}

// The original of `slot` before the spill (cold slabs), for the host to copy.
export function originalAt(slot: u32): usize {
  if (isSpilled() || !isQuantized() || slot >= hget(H_SLOTS)) return 0;
  return coldPtr(slot);
}

// Step two: the host has every original in its file; the cold slabs go.
export function spillFinish(generation: u32): i32 {
  if (!spillDue() || generation == 0 || hget(H_QLEARNED) == 0) return ERR_INVALID;
  freeColdSlabs();
  hset(H_ORIG_GEN, generation);
  return OK;
}

// Puts the codes and bias of `slot`'s record where a query's go, so an
// insert into a spilled shard walks on codes with its own as the query.
// Returns the codes' pointer.
export function stageSlotCodes(slot: u32): usize {
  const p = nodePtr(slot);
  const dim = hget(H_DIM);
  const qc = queryCodes();
  memory.copy(qc, vectorOf(p), dim);
  store<f32>(<usize>hget(H_QPARAMS) + <usize>queryBiasOff(dim), load<f32>(p + <usize>hget(H_BIAS_OFF)));
  return qc;
}

// The distance between the codes of two slots (a spilled shard's build).
export function codePairDistance(a: u32, b: u32): f32 {
  const metric = hget(H_METRIC);
  const pa = nodePtr(a);
  const pb = nodePtr(b);
  const biasOff = <usize>hget(H_BIAS_OFF);
  const raw = codeKernel(metric, vectorOf(pa), vectorOf(pb), hget(H_DIM));
  return codeDistance(metric, <usize>hget(H_QPARAMS), raw, load<f32>(pa + biasOff), load<f32>(pb + biasOff));
}

// Encodes the f32 vector at `vec` into `slot`'s record (a spilled insert).
export function encodeInto(slot: u32, vec: usize): void {
  const p = nodePtr(slot);
  store<f32>(p + <usize>hget(H_BIAS_OFF), quantEncode(<usize>hget(H_QPARAMS), vec, vectorOf(p)));
}

// The quantizer's params (a compaction copies them into a spilled target).
export function quantParamsAt(): usize {
  return hget(H_QUANT) == QUANT_NONE ? 0 : <usize>hget(H_QPARAMS);
}

export function quantParamsLen(): u32 {
  return hget(H_QUANT) == QUANT_NONE ? 0 : quantParamsBytes(hget(H_DIM));
}

// Query codes for a filtered walk of a spilled shard: encodes q (f32,
// checked) and returns the codes' pointer.
export function encodeQuery(q: usize): usize {
  const qc = queryCodes();
  const params = <usize>hget(H_QPARAMS);
  store<f32>(params + <usize>queryBiasOff(hget(H_DIM)), quantEncode(params, q, qc));
  return qc;
}

// The distance from the staged query's codes to the record at p.
// @ts-ignore: decorator
@inline export function queryCodeDistance(metric: u32, qc: usize, p: usize, dim: u32): f32 {
  const raw = codeKernel(metric, qc, vectorOf(p), dim);
  return codeDistance(metric, <usize>hget(H_QPARAMS), raw, queryBias(), load<f32>(p + <usize>hget(H_BIAS_OFF)));
}
