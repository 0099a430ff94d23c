// Distance kernels. The v128 bodies keep four independent accumulators over
// 16 floats per step (measured: fewer stalls than one, and 8 or a full
// unroll were slower), then a 4-wide loop, then a scalar tail, so any
// dim >= 1 works. Smaller is closer for every metric:
//   l2      squared Euclidean distance
//   ip      1 - <a, b>
//   cosine  1 - <a, b> over vectors normalised on insert
// The metric is chosen once per search (see hnsw.ts: the search functions
// are instantiated per metric), never per distance.

import { METRIC_L2 } from "./layout";

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)
    + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

// @ts-ignore: decorator
@inline export function l2Simd(aPtr: usize, bPtr: usize, dim: u32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = s0, s2 = s0, s3 = s0;
  const n16 = dim & ~15;
  let i: u32 = 0;
  for (; i < n16; i += 16) {
    const a = aPtr + (<usize>i << 2);
    const b = bPtr + (<usize>i << 2);
    const d0 = f32x4.sub(v128.load(a), v128.load(b));
    const d1 = f32x4.sub(v128.load(a, 16), v128.load(b, 16));
    const d2 = f32x4.sub(v128.load(a, 32), v128.load(b, 32));
    const d3 = f32x4.sub(v128.load(a, 48), v128.load(b, 48));
    s0 = f32x4.add(s0, f32x4.mul(d0, d0));
    s1 = f32x4.add(s1, f32x4.mul(d1, d1));
    s2 = f32x4.add(s2, f32x4.mul(d2, d2));
    s3 = f32x4.add(s3, f32x4.mul(d3, d3));
  }
  const n4 = dim & ~3;
  for (; i < n4; i += 4) {
    const d = f32x4.sub(v128.load(aPtr + (<usize>i << 2)), v128.load(bPtr + (<usize>i << 2)));
    s0 = f32x4.add(s0, f32x4.mul(d, d));
  }
  let sum = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; i < dim; i++) {
    const d = load<f32>(aPtr + (<usize>i << 2)) - load<f32>(bPtr + (<usize>i << 2));
    sum += d * d;
  }
  return sum;
}

// @ts-ignore: decorator
@inline export function dotSimd(aPtr: usize, bPtr: usize, dim: u32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = s0, s2 = s0, s3 = s0;
  const n16 = dim & ~15;
  let i: u32 = 0;
  for (; i < n16; i += 16) {
    const a = aPtr + (<usize>i << 2);
    const b = bPtr + (<usize>i << 2);
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a), v128.load(b)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(a, 16), v128.load(b, 16)));
    s2 = f32x4.add(s2, f32x4.mul(v128.load(a, 32), v128.load(b, 32)));
    s3 = f32x4.add(s3, f32x4.mul(v128.load(a, 48), v128.load(b, 48)));
  }
  const n4 = dim & ~3;
  for (; i < n4; i += 4) {
    s0 = f32x4.add(s0, f32x4.mul(v128.load(aPtr + (<usize>i << 2)), v128.load(bPtr + (<usize>i << 2))));
  }
  let sum = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; i < dim; i++) {
    sum += load<f32>(aPtr + (<usize>i << 2)) * load<f32>(bPtr + (<usize>i << 2));
  }
  return sum;
}

// Scalar references, kept for the kernel tests (SIMD vs scalar vs float64).
export function l2Scalar(aPtr: usize, bPtr: usize, dim: u32): f32 {
  let sum: f32 = 0;
  for (let i: u32 = 0; i < dim; i++) {
    const d = load<f32>(aPtr + (<usize>i << 2)) - load<f32>(bPtr + (<usize>i << 2));
    sum += d * d;
  }
  return sum;
}

export function dotScalar(aPtr: usize, bPtr: usize, dim: u32): f32 {
  let sum: f32 = 0;
  for (let i: u32 = 0; i < dim; i++) {
    sum += load<f32>(aPtr + (<usize>i << 2)) * load<f32>(bPtr + (<usize>i << 2));
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
    const x = <f64>load<f32>(ptr + (<usize>i << 2));
    sum += x * x;
  }
  const n = Math.sqrt(sum);
  if (!(n > 0) || !isFinite(n)) return false;
  const inv: f64 = 1.0 / n;
  for (let i: u32 = 0; i < dim; i++) {
    const p = ptr + (<usize>i << 2);
    store<f32>(p, <f32>(<f64>load<f32>(p) * inv));
  }
  return true;
}
