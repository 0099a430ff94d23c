// Filtered search: a planner per query, an exact scan of the matching set,
// and two filtered graph walks (plain, and two-hop through non-matching
// neighbours).
//
//   FILTER CACHE  u16 per slot (H_FCACHE, H_FCACHE_CAP entries), one run:
//                 (gen << 1) | matched, valid when gen == H_FGEN
//
// A fresh generation per query makes every payload evaluated at most once
// per query by the sample and the walks, without clearing the array (it is
// cleared when the 15-bit generation wraps). The exact scan does not use it.
//
// The planner (docs/filtering.md, "Planner"): evaluate the filter on up to
// SAMPLE live slots spread evenly over the slot range (deterministic: the
// same shard and filter give the same plan) and scale to the live count.
// Below max(exactBelow, exactFraction * live) matching points, the exact
// path scores every matching live point (a filter evaluation per live
// point, a distance per matching one; exact by construction). Above it a
// graph walk runs; when it finds fewer than k results, the exact path runs
// after it ("graph+exact"), so a sample that overestimated never loses
// results. The walk is the plain one when the estimated selectivity is at
// least twoHopBelow, else the two-hop one:
//
// - plain (plainLayer): hnswlib's filtered search. Every neighbour enters
//   the beam as in an unfiltered search; only matching live nodes are
//   results, and the walk runs until it holds ef of them, so its cost grows
//   as ef / selectivity.
// - two-hop (filteredLayer): only matching nodes are results and
//   candidates; a neighbour that does not match (or is a tombstone) is a
//   bridge whose own neighbours are examined (ACORN's two-hop expansion), so
//   the walk computes distances only for matches but evaluates the filter
//   on up to M0 x M0 nodes per expansion. Bridges are not marked visited,
//   so another candidate can still expand through them; their filter
//   result is cached.

import {
  CLASS_SCRATCH, ERR_INVALID, ERR_NOT_FOUND, ERR_OUT_OF_MEMORY, FLAG_UUID, IO_ID_HI, IO_ID_LO, IO_KIND, NONE, SLAB_SHIFT, H_DIM, H_ENTRY, H_FCACHE, H_FCACHE_CAP, H_FEST, H_FGEN,
  H_FPATH, H_IO, H_LIVE, H_METRIC, H_SLOTS, H_VISITED, H_RES, H_CAND, H_CAND_CAP, H_SEL, IO_VECTOR,
  METRIC_IP, METRIC_L2, PATH_EXACT, PATH_GRAPH, PATH_GRAPH_EXACT, PATH_INDEX, TAG_SHIFT, hget, hset, u32At,
  H_NODE_DIR, H_DIV_MAGIC, H_PER_SLAB, H_STRIDE, H_VEC_OFF, NODE_PAYLOAD, headerPtr,
} from "./layout";
import { runAlloc, runFree, slabsFor } from "./arena";
import { distance } from "./distance";
import { coldPtr, countAt, isDeleted, isQuantized, isSpilled, onCodes, linksAt, metaOf, nodePtr, slotPtr, vecOf } from "./node";
import { WALK_CODES, descend, descendWith, ensureScratch, nextGen, seen, stagedVectorOk, visit, writeResults } from "./hnsw";
import { encodeQuery, queryCodeDistance, rerankSel, writeCandidates } from "./qshard";
import { drainAscending, entryDist, entrySlot, heapPop, heapPush } from "./heap";
import { filterAt, filterCheck, filterRoot, filterSlot } from "./filter";
import { idmapFind } from "./idmap";
import { pxCandidate, pxGather, pxLiveShare, pxPlan } from "./pindex";

// @ts-ignore: decorator
@inline const SAMPLE: u32 = 256;
// @ts-ignore: decorator
@inline const FGEN_MAX: u32 = 0x7fff;
// @ts-ignore: decorator
@inline const AHEAD: u32 = 8;
// @ts-ignore: decorator
@inline const ROUNDS: u32 = 4;

// ---------------------------------------------------------------- cache --

function ensureFilterCache(slots: u32): bool {
  const cap = hget(H_FCACHE_CAP);
  if (slots <= cap && hget(H_FCACHE) != 0) return true;
  let next = cap < 1024 ? <u32>1024 : cap;
  while (next < slots) next *= 2;
  const p = runAlloc(slabsFor(next << TAG_SHIFT), CLASS_SCRATCH);
  if (p == 0) return false;
  memory.fill(p, 0, <usize>next << TAG_SHIFT);
  if (hget(H_FCACHE) != 0) runFree(<usize>hget(H_FCACHE), slabsFor(cap << TAG_SHIFT), CLASS_SCRATCH);
  hset(H_FCACHE, <u32>p);
  hset(H_FCACHE_CAP, next);
  hset(H_FGEN, 0);
  return true;
}

function nextFilterGen(): u32 {
  let gen = hget(H_FGEN) + 1;
  if (gen > FGEN_MAX) {
    memory.fill(<usize>hget(H_FCACHE), 0, <usize>hget(H_FCACHE_CAP) << TAG_SHIFT);
    gen = 1;
  }
  hset(H_FGEN, gen);
  return gen;
}

// The filter's result for `slot` this query: 1, 0 or a negative status.
// @ts-ignore: decorator
@inline function matchCached(prog: usize, cache: usize, gen: u32, slot: u32): i32 {
  const p = cache + (<usize>slot << TAG_SHIFT);
  const t = <u32>load<u16>(p);
  if (t >> 1 == gen) return <i32>(t & 1);
  const r = filterSlot(prog, slot);
  if (r >= 0) store<u16>(p, <u16>((gen << 1) | <u32>r));
  return r;
}

// -------------------------------------------------------------- planner --

// Matching live points, estimated from up to SAMPLE evenly spread slots
// (exact when the shard has at most SAMPLE slots); negative on error. The
// slots are taken in ROUNDS interleaved rounds, and sampling stops after a
// round once the share seen is more than three standard errors above
// `decided` (the largest selectivity a threshold compares it with): a
// filter most points match then costs SAMPLE / ROUNDS evaluations, not
// SAMPLE, each a cache miss in a large shard.
function estimate(prog: usize, cache: usize, gen: u32, decided: f64): i32 {
  const slots = hget(H_SLOTS);
  const step: u32 = slots <= SAMPLE ? 1 : slots / SAMPLE;
  const rounds: u32 = step >= ROUNDS ? ROUNDS : 1;
  const stride = step * rounds;
  let live: u32 = 0;
  let hits: u32 = 0;
  for (let round: u32 = 0; round < rounds; round++) {
    // round r takes the slots at (r + 1/2) step + i * rounds * step
    for (let s: u32 = (step >> 1) + round * step; s < slots; s += stride) {
      if (isDeleted(metaOf(nodePtr(s)))) continue;
      live++;
      const r = matchCached(prog, cache, gen, s);
      if (r < 0) return r;
      hits += <u32>r;
    }
    if (live > 0 && round + 1 < rounds) {
      const p = <f64>hits / <f64>live;
      if (p - 3 * Math.sqrt(p * (1 - p) / <f64>live) > decided) break;
    }
  }
  if (live == 0) return 0;
  return <i32>Math.round(<f64>hits * <f64>hget(H_LIVE) / <f64>live);
}

// ---------------------------------------------------------------- exact --

// Offers slot s at distance d to RES, a max-heap of the k nearest so far
// holding nr; the new count.
// @ts-ignore: decorator
@inline function keepNearest(res: usize, nr: u32, k: u32, d: f32, s: u32): u32 {
  if (nr < k) return heapPush(res, nr, d, s, true);
  if (d >= entryDist(res, 0)) return nr;
  return heapPush(res, heapPop(res, nr, true), d, s, true);
}

// k nearest matching live points by a scan; RES (a max-heap) gets them.
// Returns how many, or a negative status. The scan evaluates every slot
// itself, without the cache: a cached result saves less than reading and
// writing the cache costs here.
function exactScan(metric: u32, q: usize, k: u32, prog: usize, codes: bool): i32 {
  const dim = hget(H_DIM);
  const slots = hget(H_SLOTS);
  const res = <usize>hget(H_RES);
  let nr: u32 = 0;
  const h = headerPtr();
  const dir = <usize>load<u32>(h + H_NODE_DIR);
  const magic = load<u64>(h + H_DIV_MAGIC);
  const perSlab = load<u32>(h + H_PER_SLAB);
  const stride = <usize>load<u32>(h + H_STRIDE);
  const vecOff = <usize>load<u32>(h + H_VEC_OFF);
  // a quantized shard scores its f32 originals (cold slabs)
  const quant = isQuantized();
  for (let s: u32 = 0; s < slots; s++) {
    // WASM has no prefetch: touch the record AHEAD slots on and the payload
    // of the one AHEAD / 2 on (its record was touched before), so their
    // misses overlap the evaluation of this one
    if (s + AHEAD < slots) {
      load<u32>(slotPtr(s + AHEAD, dir, magic, perSlab, stride), NODE_PAYLOAD);
      const blob = <usize>load<u32>(slotPtr(s + (AHEAD >> 1), dir, magic, perSlab, stride), NODE_PAYLOAD);
      if (blob != 0) load<u32>(blob);
    }
    const p = slotPtr(s, dir, magic, perSlab, stride);
    const r = filterAt(prog, p);
    if (r == 0) continue;
    if (r < 0) return r;
    const d = codes ? queryCodeDistance(metric, q, p, dim) : distance(metric, q, quant ? coldPtr(s) : p + vecOff, dim);
    nr = keepNearest(res, nr, k, d, s);
  }
  return <i32>nr;
}

// exactScan over the candidates a payload index gave (pindex.ts pxGather):
// the same scoring, a filter evaluation per candidate instead of per live
// point. Returns how many RES holds, or a negative status.
function indexScan(metric: u32, q: usize, k: u32, prog: usize, count: u32, codes: bool): i32 {
  const n = pxGather(count);
  if (n < 0) return n;
  const dim = hget(H_DIM);
  const res = <usize>hget(H_RES);
  const vecOff = <usize>hget(H_VEC_OFF);
  const quant = isQuantized();
  let nr: u32 = 0;
  for (let i: u32 = 0; i < <u32>n; i++) {
    if (i + AHEAD < <u32>n) load<u32>(nodePtr(pxCandidate(i + AHEAD)), NODE_PAYLOAD);
    const s = pxCandidate(i);
    const p = nodePtr(s);
    const r = filterAt(prog, p);
    if (r == 0) continue;
    if (r < 0) return r;
    const d = codes ? queryCodeDistance(metric, q, p, dim) : distance(metric, q, quant ? coldPtr(s) : p + vecOff, dim);
    nr = keepNearest(res, nr, k, d, s);
  }
  return <i32>nr;
}

// The distance from q to slot s: q's codes to s's (codes: a spilled
// shard), else the f32 vectors.
// @ts-ignore: decorator
@inline function fdist(codes: bool, metric: u32, q: usize, s: u32, dim: u32): f32 {
  return codes ? queryCodeDistance(metric, q, nodePtr(s), dim) : distance(metric, q, vecOf(s), dim);
}

// ---------------------------------------------------------------- graph --

// The filtered beam search of level 0 from `ep` (and the pinned tree's
// root); RES gets up to ef matching live nodes. Returns how many, or a
// negative status.
// @ts-ignore: decorator
@inline function filteredLayer(metric: u32, q: usize, ep: u32, ef: u32, prog: usize, cache: usize, fgen: u32, codes: bool): i32 {
  const dim = hget(H_DIM);
  const visited = <usize>hget(H_VISITED);
  const res = <usize>hget(H_RES);
  const cand = <usize>hget(H_CAND);
  const candCap = hget(H_CAND_CAP);
  const gen = nextGen();
  let nc: u32 = 0;
  let nr: u32 = 0;
  const root = hget(H_ENTRY);
  for (let i = 0; i < 2; i++) {
    const s = i == 0 ? ep : root;
    if (!visit(visited, s, gen)) continue;
    const d = fdist(codes, metric, q, s, dim);
    // seeds are expanded whether they match or not
    nc = heapPush(cand, nc, d, s, false);
    const r = matchCached(prog, cache, fgen, s);
    if (r < 0) return r;
    if (r == 1) nr = heapPush(res, nr, d, s, true);
  }
  while (nc > 0) {
    if (nr >= ef && entryDist(cand, 0) > entryDist(res, 0)) break;
    const cPtr = nodePtr(entrySlot(cand, 0));
    nc = heapPop(cand, nc, false);
    const count = countAt(cPtr, 0);
    const links = linksAt(cPtr, 0);
    for (let j: u32 = 0; j < count; j++) {
      const n = u32At(links, j);
      if (seen(visited, n, gen)) continue;
      const r = matchCached(prog, cache, fgen, n);
      if (r < 0) return r;
      // a match is a result; anything else is a bridge to its own
      // neighbours (one hop further), and stays unvisited
      const nPtr = nodePtr(n);
      const hops: u32 = r == 1 ? 1 : countAt(nPtr, 0);
      const links2 = linksAt(nPtr, 0);
      for (let i: u32 = 0; i < hops; i++) {
        const m = r == 1 ? n : u32At(links2, i);
        if (r != 1) {
          if (seen(visited, m, gen)) continue;
          const r2 = matchCached(prog, cache, fgen, m);
          if (r2 < 0) return r2;
          if (r2 == 0) continue;
        }
        visit(visited, m, gen);
        const d = fdist(codes, metric, q, m, dim);
        if (nr < ef || d < entryDist(res, 0)) {
          if (nc < candCap) nc = heapPush(cand, nc, d, m, false);
          nr = heapPush(res, nr, d, m, true);
          if (nr > ef) nr = heapPop(res, nr, true);
        }
      }
    }
  }
  return <i32>nr;
}

// The plain filtered walk of level 0 (hnswlib's filtered search): every
// neighbour enters the beam as in an unfiltered search, only matching live
// nodes enter RES, and the walk stops only once RES holds ef of them, so
// the beam widens by itself to about ef / selectivity nodes. The filter is
// evaluated only for a node that would enter RES (nearer than its worst),
// so most visited nodes cost a distance and no evaluation. Returns how many
// RES holds, or a negative status.
// @ts-ignore: decorator
@inline function plainLayer(metric: u32, q: usize, ep: u32, ef: u32, prog: usize, cache: usize, fgen: u32, codes: bool): i32 {
  const dim = hget(H_DIM);
  const visited = <usize>hget(H_VISITED);
  const res = <usize>hget(H_RES);
  const cand = <usize>hget(H_CAND);
  const candCap = hget(H_CAND_CAP);
  const gen = nextGen();
  let nc: u32 = 0;
  let nr: u32 = 0;
  const root = hget(H_ENTRY);
  for (let i = 0; i < 2; i++) {
    const s = i == 0 ? ep : root;
    if (!visit(visited, s, gen)) continue;
    const d = fdist(codes, metric, q, s, dim);
    nc = heapPush(cand, nc, d, s, false);
    const r = matchCached(prog, cache, fgen, s);
    if (r < 0) return r;
    if (r == 1) nr = heapPush(res, nr, d, s, true);
  }
  const h = headerPtr();
  const dir = <usize>load<u32>(h + H_NODE_DIR);
  const magic = load<u64>(h + H_DIV_MAGIC);
  const perSlab = load<u32>(h + H_PER_SLAB);
  const stride = <usize>load<u32>(h + H_STRIDE);
  const vecOff = <usize>load<u32>(h + H_VEC_OFF);
  // the originals are in the cold slabs of a quantized shard, in the host's file once spilled (codes)
  const quant = isQuantized() && !codes;
  while (nc > 0) {
    if (nr >= ef && entryDist(cand, 0) > entryDist(res, 0)) break;
    const cPtr = slotPtr(entrySlot(cand, 0), dir, magic, perSlab, stride);
    nc = heapPop(cand, nc, false);
    const count = countAt(cPtr, 0);
    const links = linksAt(cPtr, 0);
    // touch the vectors first so their loads overlap (see searchLayer)
    for (let j: u32 = 0; j < count; j++) {
      const n = u32At(links, j);
      if (!seen(visited, n, gen)) load<u32>(quant ? coldPtr(n) : slotPtr(n, dir, magic, perSlab, stride) + vecOff);
    }
    for (let j: u32 = 0; j < count; j++) {
      const n = u32At(links, j);
      if (!visit(visited, n, gen)) continue;
      const nPtr = slotPtr(n, dir, magic, perSlab, stride);
      const d = codes ? queryCodeDistance(metric, q, nPtr, dim) : distance(metric, q, quant ? coldPtr(n) : nPtr + vecOff, dim);
      if (nr < ef || d < entryDist(res, 0)) {
        if (nc < candCap) nc = heapPush(cand, nc, d, n, false);
        const r = matchCached(prog, cache, fgen, n);
        if (r < 0) return r;
        if (r == 1) {
          nr = heapPush(res, nr, d, n, true);
          if (nr > ef) nr = heapPop(res, nr, true);
        }
      }
    }
  }
  return <i32>nr;
}

function plainL2(q: usize, ep: u32, ef: u32, prog: usize, cache: usize, fgen: u32, codes: bool): i32 {
  return plainLayer(METRIC_L2, q, ep, ef, prog, cache, fgen, codes);
}
function plainDot(q: usize, ep: u32, ef: u32, prog: usize, cache: usize, fgen: u32, codes: bool): i32 {
  return plainLayer(METRIC_IP, q, ep, ef, prog, cache, fgen, codes);
}

function filteredL2(q: usize, ep: u32, ef: u32, prog: usize, cache: usize, fgen: u32, codes: bool): i32 {
  return filteredLayer(METRIC_L2, q, ep, ef, prog, cache, fgen, codes);
}
function filteredDot(q: usize, ep: u32, ef: u32, prog: usize, cache: usize, fgen: u32, codes: bool): i32 {
  return filteredLayer(METRIC_IP, q, ep, ef, prog, cache, fgen, codes);
}

// ---------------------------------------------------------------- exports --

// Checks the program and readies the cache; the cache generation, or a
// negative status.
function begin(prog: usize, len: u32): i32 {
  if (filterCheck(prog, len) != 0) return ERR_INVALID;
  if (!ensureFilterCache(max<u32>(hget(H_SLOTS), 1))) return ERR_OUT_OF_MEMORY;
  return <i32>nextFilterGen();
}

// k nearest live points to the query staged at io + IO_VECTOR that satisfy
// the program at [prog, prog + len), nearest first, to `out` as RESULT
// records. Returns the count; H_FPATH gets the path taken, H_FEST the
// planner's estimate. exactBelow, exactFraction, twoHopBelow, indexFraction:
// see the planner above. `rescore` matters to a frozen quantized shard only
// (as search takes it, qshard.ts "FREEZING"): with rescore >= 0 every path
// scores codes and keeps max(rescore, k) candidates; with rescore > 0 they
// are re-ranked on their originals, here from the cold slabs, or, spilled,
// by the host, to which their slots go in `out` instead of results. A
// spilled shard takes rescore >= 0 only. Any other shard scores the f32
// vectors (a quantized one its originals), whatever rescore says.
export function searchFiltered(
  k: u32, ef: u32, out: usize, prog: usize, len: u32, exactBelow: u32, exactFraction: f64, twoHopBelow: f64,
  indexFraction: f64, rescore: i32,
): i32 {
  const q0 = <usize>hget(H_IO) + IO_VECTOR;
  if (!stagedVectorOk(q0, hget(H_DIM))) return ERR_INVALID;
  if (k == 0 || !(exactFraction >= 0) || !(twoHopBelow >= 0) || !(indexFraction >= 0)) return ERR_INVALID;
  const spilled = isSpilled();
  if (rescore < -1 || (spilled && rescore < 0)) return ERR_INVALID;
  const codes = onCodes() && rescore >= 0;
  const fgen = begin(prog, len);
  if (fgen < 0) return fgen;
  const root = filterRoot(prog);
  // candidates to re-rank (the host's, spilled) rather than results
  const candidates = codes && rescore > 0;
  // k results, or the candidates of the re-rank
  const keep = candidates ? max<u32>(<u32>rescore, k) : k;
  const width = max<u32>(ef, keep);
  if (!ensureScratch(width)) return ERR_OUT_OF_MEMORY;
  const q = codes ? encodeQuery(q0) : q0;
  const cache = <usize>hget(H_FCACHE);
  const metric = hget(H_METRIC) == METRIC_L2 ? METRIC_L2 : METRIC_IP;
  const live = hget(H_LIVE);
  hset(H_FPATH, PATH_EXACT);
  hset(H_FEST, 0);
  if (live == 0) return 0;
  const threshold = max<f64>(<f64>exactBelow, exactFraction * <f64>live);
  // an index's candidates bound the matching set from above
  // an index's records in range (stale ones too: `bound` sizes the gather),
  // scaled by its live share to an estimate of the matching points
  const bound = pxPlan(root);
  const indexEst = bound >= 0 ? Math.round(<f64>bound * pxLiveShare()) : -1;
  if (bound >= 0 && indexEst < max<f64>(threshold, indexFraction * <f64>live)) {
    hset(H_FPATH, PATH_INDEX);
    hset(H_FEST, <u32>indexEst);
    const n = indexScan(metric, q, keep, root, <u32>bound, codes);
    if (n >= 0) return finish(n, k, keep, out, candidates);
    if (n != ERR_OUT_OF_MEMORY) return n;
    // no room for the candidates: the scan needs none
    hset(H_FPATH, PATH_EXACT);
    const m = exactScan(metric, q, keep, root, codes);
    return m < 0 ? m : finish(m, k, keep, out, candidates);
  }
  let est = estimate(root, cache, <u32>fgen, max<f64>(threshold / <f64>live, twoHopBelow));
  if (est < 0) return est;
  if (bound >= 0 && indexEst < <f64>est) est = <i32>indexEst;
  hset(H_FEST, <u32>est);
  let nr: i32 = 0;
  if (<f64>est >= threshold) {
    hset(H_FPATH, PATH_GRAPH);
    const ep = codes ? descendWith(WALK_CODES, q, 0) : descend(q, 0);
    if (<f64>est >= twoHopBelow * <f64>live) {
      nr = metric == METRIC_L2
        ? plainL2(q, ep, width, root, cache, <u32>fgen, codes)
        : plainDot(q, ep, width, root, cache, <u32>fgen, codes);
    } else {
      nr = metric == METRIC_L2
        ? filteredL2(q, ep, width, root, cache, <u32>fgen, codes)
        : filteredDot(q, ep, width, root, cache, <u32>fgen, codes);
    }
    if (nr < 0) return nr;
    if (<u32>nr < k) hset(H_FPATH, PATH_GRAPH_EXACT);
  }
  if (hget(H_FPATH) != PATH_GRAPH) {
    nr = bound >= 0 ? indexScan(metric, q, keep, root, <u32>bound, codes) : ERR_OUT_OF_MEMORY;
    if (nr == ERR_OUT_OF_MEMORY) nr = exactScan(metric, q, keep, root, codes);
    if (nr < 0) return nr;
  }
  return finish(nr, k, keep, out, candidates);
}

// The nr entries of RES, nearest first, to `out` (at most keep): as
// results, or as candidates: re-ranked here to the k nearest (originals in
// the cold slabs), or their slots for the host's re-rank (spilled).
function finish(nr: i32, k: u32, keep: u32, out: usize, candidates: bool): i32 {
  const sel = <usize>hget(H_SEL);
  drainAscending(<usize>hget(H_RES), <u32>nr, sel);
  const n = min<u32>(keep, <u32>nr);
  if (!candidates) return writeResults(sel, n, out);
  if (isSpilled()) return writeCandidates(n, out);
  return writeResults(sel, rerankSel(<usize>hget(H_IO) + IO_VECTOR, k, n), out);
}

// Live points that satisfy the program, counted exactly.
export function countMatching(prog: usize, len: u32): i32 {
  const fgen = begin(prog, len);
  if (fgen < 0) return fgen;
  const cache = <usize>hget(H_FCACHE);
  const slots = hget(H_SLOTS);
  const root = filterRoot(prog);
  let n: i32 = 0;
  // an index's candidates, when it has fewer than the live points
  const bound = pxPlan(root);
  const c = bound >= 0 && <u32>bound < hget(H_LIVE) ? pxGather(<u32>bound) : -1;
  if (c >= 0) {
    for (let i: u32 = 0; i < <u32>c; i++) {
      const r = filterSlot(root, pxCandidate(i));
      if (r < 0) return r;
      n += r;
    }
    return n;
  }
  for (let s: u32 = 0; s < slots; s++) {
    const r = matchCached(root, cache, <u32>fgen, s);
    if (r < 0) return r;
    n += r;
  }
  return n;
}

// 1 when the point with the id staged at io (as remove takes it) satisfies
// the program, 0 when it does not, ERR_NOT_FOUND when it is absent.
export function matchesStaged(prog: usize, len: u32): i32 {
  if (filterCheck(prog, len) != 0) return ERR_INVALID;
  const io = <usize>hget(H_IO);
  const slot = idmapFind(load<u64>(io, IO_ID_LO), load<u64>(io, IO_ID_HI), load<u32>(io, IO_KIND) & FLAG_UUID);
  if (slot == NONE) return ERR_NOT_FOUND;
  return filterSlot(filterRoot(prog), slot);
}

// Bytes of the filter cache run (0 before the first filtered call).
export function filterCacheBytes(): u64 {
  return hget(H_FCACHE) == 0 ? 0 : <u64>slabsFor(hget(H_FCACHE_CAP) << TAG_SHIFT) << SLAB_SHIFT;
}
