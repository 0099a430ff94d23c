// Distance kernels. The v128 bodies keep four independent accumulators over
// 16 floats per step (measured: fewer stalls than one, and 8 or a full
// unroll were slower), then a 4-wide loop, then a scalar tail, so any
// dim >= 1 works. Smaller is closer for every metric:
//   l2      squared Euclidean distance
//   ip      1 - <a, b>
//   cosine  1 - <a, b> over vectors normalised on insert
// In a search the metric is chosen once per call (hnsw.ts instantiates
// greedy and searchLayer per metric, so `distance` folds to one kernel);
// elsewhere (insert's pruning, repair) `distance` branches on the shard's
// metric per call, a predictable branch off the hot path.

import { METRIC_L2, f32At } from "./layout";

// One v128 holds LANES f32s; the unrolled bodies step over STEP floats (four v128s).
// @ts-ignore: decorator
@inline const LANES: u32 = 4;
// @ts-ignore: decorator
@inline const V1: u32 = LANES * sizeof<f32>(); // byte offset of the second v128
// @ts-ignore: decorator
@inline const V2: u32 = 2 * V1;
// @ts-ignore: decorator
@inline const V3: u32 = 3 * V1;
// @ts-ignore: decorator
@inline const STEP: u32 = 4 * LANES; // floats per unrolled step

// @ts-ignore: decorator
@inline function at(ptr: usize, i: u32): usize {
  return ptr + (<usize>i << alignof<f32>());
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)
    + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

// @ts-ignore: decorator
@inline export function l2Simd(aPtr: usize, bPtr: usize, dim: u32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = s0, s2 = s0, s3 = s0;
  const n16 = dim & ~(STEP - 1);
  let i: u32 = 0;
  for (; i < n16; i += STEP) {
    const a = at(aPtr, i);
    const b = at(bPtr, i);
    const d0 = f32x4.sub(v128.load(a), v128.load(b));
    const d1 = f32x4.sub(v128.load(a, V1), v128.load(b, V1));
    const d2 = f32x4.sub(v128.load(a, V2), v128.load(b, V2));
    const d3 = f32x4.sub(v128.load(a, V3), v128.load(b, V3));
    s0 = f32x4.add(s0, f32x4.mul(d0, d0));
    s1 = f32x4.add(s1, f32x4.mul(d1, d1));
    s2 = f32x4.add(s2, f32x4.mul(d2, d2));
    s3 = f32x4.add(s3, f32x4.mul(d3, d3));
  }
  const n4 = dim & ~(LANES - 1);
  for (; i < n4; i += LANES) {
    const d = f32x4.sub(v128.load(at(aPtr, i)), v128.load(at(bPtr, i)));
    s0 = f32x4.add(s0, f32x4.mul(d, d));
  }
  let sum = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; i < dim; i++) {
    const d = f32At(aPtr, i) - f32At(bPtr, i);
    sum += d * d;
  }
  return sum;
}

// @ts-ignore: decorator
@inline export function dotSimd(aPtr: usize, bPtr: usize, dim: u32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = s0, s2 = s0, s3 = s0;
  const n16 = dim & ~(STEP - 1);
  let i: u32 = 0;
  for (; i < n16; i += STEP) {
    const a = at(aPtr, i);
    const b = at(bPtr, i);
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a), v128.load(b)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(a, V1), v128.load(b, V1)));
    s2 = f32x4.add(s2, f32x4.mul(v128.load(a, V2), v128.load(b, V2)));
    s3 = f32x4.add(s3, f32x4.mul(v128.load(a, V3), v128.load(b, V3)));
  }
  const n4 = dim & ~(LANES - 1);
  for (; i < n4; i += LANES) {
    s0 = f32x4.add(s0, f32x4.mul(v128.load(at(aPtr, i)), v128.load(at(bPtr, i))));
  }
  let sum = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; i < dim; i++) {
    sum += f32At(aPtr, i) * f32At(bPtr, i);
  }
  return sum;
}

// Scalar references, kept for the kernel tests (SIMD vs scalar vs float64).
export function l2Scalar(aPtr: usize, bPtr: usize, dim: u32): f32 {
  let sum: f32 = 0;
  for (let i: u32 = 0; i < dim; i++) {
    const d = f32At(aPtr, i) - f32At(bPtr, i);
    sum += d * d;
  }
  return sum;
}

export function dotScalar(aPtr: usize, bPtr: usize, dim: u32): f32 {
  let sum: f32 = 0;
  for (let i: u32 = 0; i < dim; i++) {
    sum += f32At(aPtr, i) * f32At(bPtr, i);
  }
  return sum;
}

// The distance for `metric`; with a constant metric the branch folds away.
// @ts-ignore: decorator
@inline export function distance(metric: u32, aPtr: usize, bPtr: usize, dim: u32): f32 {
  if (metric == METRIC_L2) return l2Simd(aPtr, bPtr, dim);
  return <f32>1 - dotSimd(aPtr, bPtr, dim);
}

// Scales a vector to unit length in place; false for a zero vector. The
// norm is summed in f64: squared in f32, a norm below ~1e-19 underflows and
// the vector would be stored at the wrong length. Once per insert, not hot.
export function normalize(ptr: usize, dim: u32): bool {
  let sum: f64 = 0;
  for (let i: u32 = 0; i < dim; i++) {
    const x = <f64>f32At(ptr, i);
    sum += x * x;
  }
  const n = Math.sqrt(sum);
  if (!(n > 0) || !isFinite(n)) return false;
  const inv: f64 = 1.0 / n;
  for (let i: u32 = 0; i < dim; i++) {
    const p = at(ptr, i);
    store<f32>(p, <f32>(<f64>load<f32>(p) * inv));
  }
  return true;
}
