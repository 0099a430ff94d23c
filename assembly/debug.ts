// The debug build's entry: the production ABI (index.ts) plus the hooks the
// arena model test and the kernel tests drive. The release build compiles
// index.ts alone, so none of these is reachable from production.

export * from "./index";

import { MAX_LEVEL } from "./layout";
import { freeRunBytes, runAlloc, runFree, smallAlloc, smallBlockBytes, smallFree } from "./arena";
import { dotScalar, dotSimd, l2Scalar, l2Simd } from "./distance";
import { codeDistance, codeDotScalar, codeDotSimd, codeL2Scalar, codeL2Simd, quantParamsBytes, selectKth } from "./quant";

export function arenaRunAlloc(slabs: u32, cls: u32): usize {
  return runAlloc(slabs, cls);
}
export function arenaRunFree(ptr: usize, slabs: u32, cls: u32): void {
  runFree(ptr, slabs, cls);
}
// link classes only: payload classes are driven through payload.ts
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

// int8 scalar quantization (assembly/quant.ts) over caller-placed memory:
// the integer kernels widen their u32 to f64 (JS reads a u32 result >= 2^31
// as a negative i32).
export { quantLearn, quantEncode, quantDecode } from "./quant";
export function quantParamsSize(dim: u32): u32 {
  return quantParamsBytes(dim);
}
export function quantSelectKth(ptr: usize, n: u32, k: u32): f32 {
  if (n == 0 || k >= n) return NaN;
  return selectKth(ptr, 0, n - 1, k);
}
export function kernelCodeL2(a: usize, b: usize, dim: u32): f64 {
  return <f64>codeL2Simd(a, b, dim);
}
export function kernelCodeL2Scalar(a: usize, b: usize, dim: u32): f64 {
  return <f64>codeL2Scalar(a, b, dim);
}
export function kernelCodeDot(a: usize, b: usize, dim: u32): f64 {
  return <f64>codeDotSimd(a, b, dim);
}
export function kernelCodeDotScalar(a: usize, b: usize, dim: u32): f64 {
  return <f64>codeDotScalar(a, b, dim);
}
export function quantDistance(metric: u32, params: usize, raw: f64, biasA: f32, biasB: f32): f32 {
  return codeDistance(metric, params, <u32>raw, biasA, biasB);
}
