// The debug build's entry: the production ABI (index.ts) plus the hooks the
// arena model test and the kernel test drive. The release build compiles
// index.ts alone, so none of these is reachable from production.

export * from "./index";

import { MAX_LEVEL } from "./layout";
import { freeRunBytes, runAlloc, runFree, smallAlloc, smallBlockBytes, smallFree } from "./arena";
import { dotScalar, dotSimd, l2Scalar, l2Simd } from "./distance";

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
