// int8 scalar quantization (SQ8): the quantizer, the codes, their kernels.
// hnsw.ts wires it into a quantized shard (layout.ts: the record kinds).
//
// THE CODES. A vector x of dim f32s becomes dim u8 codes
//     c_i = clamp(round((x_i - offset_i) / alpha), 0, 255)
// and is read back as  x^_i = offset_i + alpha * c_i.
// One scale `alpha` per shard, one offset per dimension.
//
// WHY ONE SCALE AND PER-DIMENSION OFFSETS (measured; docs/quantization.md
// has the table and how it was measured). Three quantizers were compared on SIFT10K,
// 10,000 x 128 clustered and 5,000 x 768 normalised clustered data, quantile
// 0.99, exhaustive search on the codes:
//   G  one offset and one scale for the shard (Qdrant's own choice);
//   P  an offset and a scale per dimension;
//   S  one scale (the widest dimension's quantile range / 255) and an offset
//      per dimension that centres that dimension's range in 0..255.
// S had the lowest reconstruction error on all three (SIFT: 5.8e-5 of the
// variance against 2.8e-4 for G and P) and the best recall on the codes.
// The reason: the tails that the quantile clips cost more than the coarser
// step. P and G clip every dimension at its quantile; S clips only the
// widest one there, and a narrower dimension keeps its tails because its
// range sits inside 0..255 with room to spare. Without clipping (quantile
// 1) P's finer steps win by 1.2-1.8x in error, but P still cannot have the
// kernel below:
// WHAT THE INTEGER KERNEL CAN DO EXACTLY. With one scale the offsets cancel
// in a difference, so between two code vectors
//     |a^ - b^|^2 = alpha^2 * sum (ca_i - cb_i)^2
// and the sum is an exact integer; a per-dimension scale would weight every
// term by s_i^2 and leave no integer form at all. The dot product expands to
//     <a^, b^> = bias(ca) + bias(cb) + alpha^2 * sum ca_i * cb_i,
//     bias(c)  = sum offset_i^2 / 2 + alpha * sum offset_i * c_i,
// one f32 per vector computed at encode, so the kernel is again one exact
// integer sum. The back-mapping (`codeDistance`) is one or two float
// operations on that integer.
//
// WHY u8 AND A SYMMETRIC QUERY. The query is encoded the same way as the
// stored vectors. u8 lets |a - b| be taken exactly in u8 lanes (max_u -
// min_u), widened to i16 without a sign, and squared and summed in pairs by
// `i32x4.dot_i16x8_s` (pmaddwd); products of codes go the same way. All of
// it is exact for these ranges. Signed i8 codes would need the same
// widening and gain nothing. An f32 query against the dequantized codes
// (asymmetric) ranked 0.5-1.3 points of recall@10 better before re-ranking,
// but as an integer kernel it needs an i16 query with a finer step, whose
// squared differences overflow i32 lanes within a few hundred dimensions
// (an i64 flush inside the loop); the f32 re-rank of issue 11 is what
// recovers that point.
//
// QUANTILES, as Qdrant's `quantile` (encoded_vectors_u8): of n sample values
// the floor(n * (1 - q) / 2) smallest and as many largest are cut (at most
// (n - 1) / 2 each side), so q = 0.99 keeps the central 99% per dimension,
// 0.5% off each tail; q = 1 is min..max. Qdrant pools all dimensions; here
// each dimension has its own interval (that is what S needs). Selection is
// a 3-way quickselect (SIFT is full of equal values: a 2-way partition goes
// quadratic on them) with a median-of-3 pivot and a depth limit after which
// the rest of the range is heap-sorted: O(n) expected, O(n log n) worst, per
// dimension, in the caller's scratch, no allocation.
//
// OVERFLOW at dim <= MAX_DIM = 65536. Every term (a difference squared or a
// product of two codes) is <= 255^2 = 65025. `dot_i16x8_s` adds two terms
// per i32 lane (<= 130050, no overflow inside the instruction); the i16
// inputs are codes or |differences| <= 255, so the widening is exact. A
// 32-code step gives each lane of s0 and of s1 4 terms, so a lane of s0 + s1
// holds at most 8 * dim / 32 = dim / 4 terms from the unrolled loop plus
// 4 + 2 from the 16- and 8-code tail steps:
// (16384 + 6) * 65025 = 1.07e9 < 2^31 - 1: no i32 lane ever overflows.
// The whole sum is <= 65536 * 65025 = 4,261,478,400 < 2^32: the horizontal
// sum of the four lanes and the scalar tail are added as u32 and are exact.
// The kernels return that u32; the debug exports widen it to f64 for JS.
//
// PARAMS, caller-placed (quantParamsBytes(dim) bytes, 8-byte aligned):
//
//   0          4            8              16               24        28      32
//   +----------+------------+--------------+----------------+---------+-------+----------------+
//   | alpha f32| quantile   | alpha^2 f64  | sum o_i^2 / 2  | dim u32 | (0)   | offset f32*dim |
//   |          | f32        |              | f64            |         |       |                |
//   +----------+------------+--------------+----------------+---------+-------+----------------+

import { ERR_INVALID, MAX_DIM, METRIC_L2, OK, f32At, setF32At } from "./layout";

// @ts-ignore: decorator
@inline export const Q_ALPHA: u32 = 0;
// @ts-ignore: decorator
@inline export const Q_QUANTILE: u32 = Q_ALPHA + 4;
// @ts-ignore: decorator
@inline export const Q_ALPHA2: u32 = Q_QUANTILE + 4;
// @ts-ignore: decorator
@inline export const Q_HALF_OO: u32 = Q_ALPHA2 + 8;
// @ts-ignore: decorator
@inline export const Q_DIM: u32 = Q_HALF_OO + 8;
// @ts-ignore: decorator
@inline const Q_RESERVED: u32 = Q_DIM + 4;
// @ts-ignore: decorator
@inline export const Q_OFFSETS: u32 = Q_RESERVED + 4;

// @ts-ignore: decorator
@inline export const CODE_MAX: f32 = 255;
// @ts-ignore: decorator
@inline const CODE_MID: f64 = 127.5;
// @ts-ignore: decorator
@inline const F32_MIN_NORMAL: f32 = 1.1754943508222875e-38; // 2^-126

// @ts-ignore: decorator
@inline export function quantParamsBytes(dim: u32): u32 {
  return Q_OFFSETS + (dim << alignof<f32>());
}

// @ts-ignore: decorator
@inline function offsetsOf(paramsPtr: usize): usize {
  return paramsPtr + Q_OFFSETS;
}

// ---------------------------------------------------------------------------
// quantile selection (k-th smallest of n f32 at ptr, reordering them)
// ---------------------------------------------------------------------------

// @ts-ignore: decorator
@inline function swapF32(ptr: usize, i: u32, j: u32): void {
  const t = f32At(ptr, i);
  setF32At(ptr, i, f32At(ptr, j));
  setF32At(ptr, j, t);
}

function siftDown(ptr: usize, base: u32, root: u32, n: u32): void {
  let r = root;
  for (;;) {
    let child: u32 = 2 * r + 1;
    if (child >= n) return;
    if (child + 1 < n && f32At(ptr, base + child + 1) > f32At(ptr, base + child)) child++;
    if (!(f32At(ptr, base + child) > f32At(ptr, base + r))) return;
    swapF32(ptr, base + r, base + child);
    r = child;
  }
}

// Sorts [lo, hi] ascending: the fallback that bounds quickselect's worst case.
function heapSort(ptr: usize, lo: u32, hi: u32): void {
  const n = hi - lo + 1;
  for (let i = n >> 1; i > 0; i--) siftDown(ptr, lo, i - 1, n);
  for (let end = n - 1; end > 0; end--) {
    swapF32(ptr, lo, lo + end);
    siftDown(ptr, lo, 0, end);
  }
}

// The k-th smallest (0-based) of the n values at ptr; only [lo, hi] is
// searched, and it must already be the part of the order that holds k.
// The values end partitioned around k (everything before is <=, after >=).
export function selectKth(ptr: usize, lo: u32, hi: u32, k: u32): f32 {
  let depth: u32 = 2 * (32 - clz<u32>(hi - lo + 1));
  while (lo < hi) {
    if (depth-- == 0) {
      heapSort(ptr, lo, hi);
      return f32At(ptr, k);
    }
    // median of three as the pivot value
    const mid = lo + ((hi - lo) >> 1);
    const a = f32At(ptr, lo), b = f32At(ptr, mid), c = f32At(ptr, hi);
    const pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
    // 3-way partition: [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot
    let lt = lo, i = lo, gt = hi;
    while (i <= gt) {
      const v = f32At(ptr, i);
      if (v < pivot) {
        swapF32(ptr, lt, i);
        lt++;
        i++;
      } else if (v > pivot) {
        swapF32(ptr, i, gt);
        if (gt == 0) break;
        gt--;
      } else {
        i++;
      }
    }
    if (k < lt) hi = lt - 1;
    else if (k > gt) lo = gt + 1;
    else return pivot;
  }
  return f32At(ptr, k);
}

// ---------------------------------------------------------------------------
// learning
// ---------------------------------------------------------------------------

// Learns the params for `dim` from n sample vectors (n * dim f32 at
// samplePtr, row after row) with Qdrant's `quantile` (0.5..1). scratchPtr
// holds n f32 (one dimension's column). The caller bounds n (Qdrant samples
// 100,000 vectors). ERR_INVALID, params unwritten, for n == 0, a dim out
// of 1..MAX_DIM, a quantile out of range or a value that is not finite.
export function quantLearn(samplePtr: usize, n: u32, dim: u32, quantile: f32, paramsPtr: usize, scratchPtr: usize): i32 {
  return learn(samplePtr, 0, n, dim, quantile, paramsPtr, scratchPtr);
}

// quantLearn over n vectors anywhere in memory: `rows` holds their n u32
// pointers (a shard's sample of its own vectors, hnsw.ts quantRelearn).
export function quantLearnRows(rows: usize, n: u32, dim: u32, quantile: f32, paramsPtr: usize, scratchPtr: usize): i32 {
  return learn(0, rows, n, dim, quantile, paramsPtr, scratchPtr);
}

// @ts-ignore: decorator
@inline function rowPtr(samplePtr: usize, rows: usize, r: u32, dim: u32): usize {
  if (rows != 0) return <usize>load<u32>(rows + (<usize>r << alignof<u32>()));
  return samplePtr + ((<usize>r * <usize>dim) << alignof<f32>());
}

function learn(samplePtr: usize, rows: usize, n: u32, dim: u32, quantile: f32, paramsPtr: usize, scratchPtr: usize): i32 {
  if (n == 0 || dim == 0 || dim > MAX_DIM) return ERR_INVALID;
  if (!(quantile >= 0.5 && quantile <= 1)) return ERR_INVALID;
  // checked first: a bad value must leave the params as they were
  for (let r: u32 = 0; r < n; r++) {
    const row = rowPtr(samplePtr, rows, r, dim);
    for (let d: u32 = 0; d < dim; d++) {
      if (!isFinite(f32At(row, d))) return ERR_INVALID;
    }
  }
  const cut = learnCut(n, quantile);
  let width: f64 = 0;
  for (let d: u32 = 0; d < dim; d++) {
    for (let r: u32 = 0; r < n; r++) setF32At(scratchPtr, r, f32At(rowPtr(samplePtr, rows, r, dim), d));
    width = max<f64>(width, learnDim(scratchPtr, n, cut, paramsPtr, d));
  }
  learnFinish(paramsPtr, dim, quantile, width);
  return OK;
}

// The number of sample values cut off each end of a dimension's range.
export function learnCut(n: u32, quantile: f32): u32 {
  const cut = <u32>Math.floor(<f64>n * (1.0 - <f64>quantile) * 0.5);
  return min<u32>(cut, (n - 1) >> 1);
}

// One dimension `d` of a learn: its n sample values at `col` (reordered in
// place). Its centre goes to the params' offset d (the offset proper once
// learnFinish knows alpha); returns the width of its quantile interval.
export function learnDim(col: usize, n: u32, cut: u32, paramsPtr: usize, d: u32): f64 {
  const lo = <f64>selectKth(col, 0, n - 1, cut);
  // everything after `cut` is >= lo: the high quantile is in that part
  const hi = <f64>selectKth(col, cut, n - 1, n - 1 - cut);
  setF32At(offsetsOf(paramsPtr), d, <f32>((lo + hi) * 0.5));
  return hi - lo;
}

// The end of a learn: every dimension's centre is in the params' offsets
// and `width` is the widest interval.
export function learnFinish(paramsPtr: usize, dim: u32, quantile: f32, width: f64): void {
  const offsets = offsetsOf(paramsPtr);
  let maxAbs: f64 = 0;
  for (let d: u32 = 0; d < dim; d++) maxAbs = max<f64>(maxAbs, abs<f64>(<f64>f32At(offsets, d)));
  // Each dimension's centre sits at code 127.5, so the widest interval
  // spans 0..255 exactly. A sample with no width at all (every dimension
  // constant) puts its centres on code 128 instead, with a step of 1/128 of
  // the largest magnitude: that one decodes exactly, the others within half
  // a step.
  let alpha: f32;
  let centre: f64;
  if (width > 0) {
    alpha = <f32>(width / <f64>CODE_MAX);
    centre = CODE_MID;
  } else {
    alpha = maxAbs > 0 ? <f32>(maxAbs / 128.0) : <f32>1;
    centre = 128;
  }
  // a step that underflows (a width below 255 * 2^-126) would make 1 / alpha infinite
  if (!(alpha >= F32_MIN_NORMAL)) alpha = F32_MIN_NORMAL;
  let halfOO: f64 = 0;
  for (let d: u32 = 0; d < dim; d++) {
    const o = <f32>(<f64>f32At(offsets, d) - centre * <f64>alpha);
    setF32At(offsets, d, o);
    halfOO += <f64>o * <f64>o;
  }
  store<f32>(paramsPtr, alpha, Q_ALPHA);
  store<f32>(paramsPtr, quantile, Q_QUANTILE);
  store<f64>(paramsPtr, <f64>alpha * <f64>alpha, Q_ALPHA2);
  store<f64>(paramsPtr, halfOO * 0.5, Q_HALF_OO);
  store<u32>(paramsPtr, dim, Q_DIM);
  store<u32>(paramsPtr, 0, Q_RESERVED);
}

// ---------------------------------------------------------------------------
// encode / decode
// ---------------------------------------------------------------------------

// Writes the dim codes of the f32 vector at vecPtr to codePtr and returns
// its dot bias (sum o_i^2 / 2 + alpha * sum o_i c_i, see the top). A NaN
// becomes code 0 (the host rejects non-finite vectors before this).
export function quantEncode(paramsPtr: usize, vecPtr: usize, codePtr: usize): f32 {
  const dim = load<u32>(paramsPtr, Q_DIM);
  const alpha = load<f32>(paramsPtr, Q_ALPHA);
  const inv = <f32>1 / alpha;
  const offsets = offsetsOf(paramsPtr);
  let oc: f64 = 0;
  for (let i: u32 = 0; i < dim; i++) {
    const o = f32At(offsets, i);
    let r: f32 = nearest<f32>((f32At(vecPtr, i) - o) * inv);
    if (!(r >= 0)) r = 0;
    if (r > CODE_MAX) r = CODE_MAX;
    store<u8>(codePtr + i, <u8>r);
    oc += <f64>o * <f64>r;
  }
  return <f32>(load<f64>(paramsPtr, Q_HALF_OO) + <f64>alpha * oc);
}

// x^_i = offset_i + alpha * c_i, into dim f32 at outPtr.
export function quantDecode(paramsPtr: usize, codePtr: usize, outPtr: usize): void {
  const dim = load<u32>(paramsPtr, Q_DIM);
  const alpha = load<f32>(paramsPtr, Q_ALPHA);
  const offsets = offsetsOf(paramsPtr);
  for (let i: u32 = 0; i < dim; i++) {
    setF32At(outPtr, i, f32At(offsets, i) + alpha * <f32>load<u8>(codePtr + i));
  }
}

// ---------------------------------------------------------------------------
// kernels: exact integer sums over two code vectors (overflow: see the top)
// ---------------------------------------------------------------------------

// One v128 holds V codes; the unrolled bodies step over QSTEP (two v128s
// of each vector, two accumulators). Then one 16-code step, one 8-code step
// (`v128.load8x8_u` widens 8 codes in the load) and a scalar tail, so any
// dim >= 1 works and at most 7 codes go through the scalar loop.
// Measured (docs/quantization.md) against the 8-codes-per-load form
// (load8x8_u everywhere, four accumulators): l2 1.2-1.4x faster in cache and
// equal within noise on rows that miss the cache, dot 5-10% faster; against
// extmul + extadd_pairwise: 1.6-1.7x faster in cache. Four accumulators
// over 64 codes were no faster than two over 32.
// @ts-ignore: decorator
@inline const V: u32 = 16;
// @ts-ignore: decorator
@inline const QSTEP: u32 = 2 * V;
// @ts-ignore: decorator
@inline const HALF: u32 = V / 2;

// @ts-ignore: decorator
@inline function hsumU32(v: v128): u32 {
  // lanes are < 2^31 each and their sum < 2^32: u32 addition is exact
  return <u32>i32x4.extract_lane(v, 0) + <u32>i32x4.extract_lane(v, 1)
    + <u32>i32x4.extract_lane(v, 2) + <u32>i32x4.extract_lane(v, 3);
}

// 16 squared differences, 4 per i32 lane: |a - b| is exact in u8
// (max - min), so it widens without a sign and squares in pmaddwd.
// @ts-ignore: decorator
@inline function sq16(a: usize, b: usize): v128 {
  const x = v128.load(a);
  const y = v128.load(b);
  const d = i8x16.sub(i8x16.max_u(x, y), i8x16.min_u(x, y));
  const lo = i16x8.extend_low_i8x16_u(d);
  const hi = i16x8.extend_high_i8x16_u(d);
  return i32x4.add(i32x4.dot_i16x8_s(lo, lo), i32x4.dot_i16x8_s(hi, hi));
}

// 8 squared differences, 2 per lane, from two widening 8-byte loads.
// @ts-ignore: decorator
@inline function sq8(a: usize, b: usize): v128 {
  const d = i16x8.sub(v128.load8x8_u(a), v128.load8x8_u(b));
  return i32x4.dot_i16x8_s(d, d);
}

// 16 products of codes, 4 per lane.
// @ts-ignore: decorator
@inline function mul16(a: usize, b: usize): v128 {
  const x = v128.load(a);
  const y = v128.load(b);
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(x), i16x8.extend_low_i8x16_u(y)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(x), i16x8.extend_high_i8x16_u(y)),
  );
}

// 8 products of codes, 2 per lane.
// @ts-ignore: decorator
@inline function mul8(a: usize, b: usize): v128 {
  return i32x4.dot_i16x8_s(v128.load8x8_u(a), v128.load8x8_u(b));
}

// sum (a_i - b_i)^2 (squared) or sum a_i * b_i over dim u8 codes: one
// body for both kernels; `squared` is a constant at each inlined call, so
// each folds to its own loop.
// @ts-ignore: decorator
@inline function codeSum(aPtr: usize, bPtr: usize, dim: u32, squared: bool): u32 {
  let s0 = i32x4.splat(0);
  let s1 = s0;
  const n32 = dim & ~(QSTEP - 1);
  let i: u32 = 0;
  for (; i < n32; i += QSTEP) {
    const a = aPtr + i;
    const b = bPtr + i;
    s0 = i32x4.add(s0, squared ? sq16(a, b) : mul16(a, b));
    s1 = i32x4.add(s1, squared ? sq16(a + V, b + V) : mul16(a + V, b + V));
  }
  if (dim - i >= V) {
    s0 = i32x4.add(s0, squared ? sq16(aPtr + i, bPtr + i) : mul16(aPtr + i, bPtr + i));
    i += V;
  }
  if (dim - i >= HALF) {
    s1 = i32x4.add(s1, squared ? sq8(aPtr + i, bPtr + i) : mul8(aPtr + i, bPtr + i));
    i += HALF;
  }
  let sum = hsumU32(i32x4.add(s0, s1));
  for (; i < dim; i++) {
    const a = <i32>load<u8>(aPtr + i);
    const b = <i32>load<u8>(bPtr + i);
    sum += squared ? <u32>((a - b) * (a - b)) : <u32>(a * b);
  }
  return sum;
}

// sum (a_i - b_i)^2 over dim u8 codes.
// @ts-ignore: decorator
@inline export function codeL2Simd(aPtr: usize, bPtr: usize, dim: u32): u32 {
  return codeSum(aPtr, bPtr, dim, true);
}

// sum a_i * b_i over dim u8 codes.
// @ts-ignore: decorator
@inline export function codeDotSimd(aPtr: usize, bPtr: usize, dim: u32): u32 {
  return codeSum(aPtr, bPtr, dim, false);
}

// Scalar references, for the kernel tests.
export function codeL2Scalar(aPtr: usize, bPtr: usize, dim: u32): u32 {
  let sum: u32 = 0;
  for (let i: u32 = 0; i < dim; i++) {
    const d = <i32>load<u8>(aPtr + i) - <i32>load<u8>(bPtr + i);
    sum += <u32>(d * d);
  }
  return sum;
}

export function codeDotScalar(aPtr: usize, bPtr: usize, dim: u32): u32 {
  let sum: u32 = 0;
  for (let i: u32 = 0; i < dim; i++) sum += <u32>load<u8>(aPtr + i) * <u32>load<u8>(bPtr + i);
  return sum;
}

// The kernel's integer for `metric` (l2: squared differences; ip, cosine: products).
// @ts-ignore: decorator
@inline export function codeKernel(metric: u32, aPtr: usize, bPtr: usize, dim: u32): u32 {
  if (metric == METRIC_L2) return codeL2Simd(aPtr, bPtr, dim);
  return codeDotSimd(aPtr, bPtr, dim);
}

// ---------------------------------------------------------------------------
// the mapping back: the integer -> the f32 distance in distance.ts's units
// ---------------------------------------------------------------------------

// The distance between the two dequantized vectors, in the units of
// distance.ts (l2: squared Euclidean; ip, cosine: 1 - <a, b>), so a re-rank
// with exact f32 distances compares like with like. `raw` is codeKernel's
// integer, biasA and biasB the two vectors' quantEncode results (unused for l2).
// @ts-ignore: decorator
@inline export function codeDistance(metric: u32, paramsPtr: usize, raw: u32, biasA: f32, biasB: f32): f32 {
  // in f64: raw (< 2^32) and alpha^2 are exact there, so the result is
  // rounded once to f32 (l2), or after two additions (dot)
  const scaled = load<f64>(paramsPtr, Q_ALPHA2) * <f64>raw;
  if (metric == METRIC_L2) return <f32>scaled;
  return <f32>(1.0 - (<f64>biasA + <f64>biasB + scaled));
}
