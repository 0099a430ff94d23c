// Heaps and sorts of (dist, slot) entries, shared by search, insert and
// repair. An entry is ENTRY_BYTES (layout.ts):
//
//   ENTRY   0 dist f32 | 4 slot u32
//
// Entries move as one u64 word; `base` points at entry 0.

import { ENTRY_DIST, ENTRY_SHIFT, ENTRY_SLOT } from "./layout";

// @ts-ignore: decorator
@inline function entryPtr(base: usize, i: u32): usize {
  return base + (<usize>i << ENTRY_SHIFT);
}

// @ts-ignore: decorator
@inline export function entryDist(base: usize, i: u32): f32 {
  return load<f32>(entryPtr(base, i), ENTRY_DIST);
}

// @ts-ignore: decorator
@inline export function entrySlot(base: usize, i: u32): u32 {
  return load<u32>(entryPtr(base, i), ENTRY_SLOT);
}

// @ts-ignore: decorator
@inline export function setEntry(base: usize, i: u32, d: f32, s: u32): void {
  const p = entryPtr(base, i);
  store<f32>(p, d, ENTRY_DIST);
  store<u32>(p, s, ENTRY_SLOT);
}

// @ts-ignore: decorator
@inline function entryWord(base: usize, i: u32): u64 {
  return load<u64>(entryPtr(base, i));
}

// @ts-ignore: decorator
@inline function setEntryWord(base: usize, i: u32, w: u64): void {
  store<u64>(entryPtr(base, i), w);
}

// Entry `from` of `src` to entry `to` of `dst`.
// @ts-ignore: decorator
@inline export function copyEntry(dst: usize, to: u32, src: usize, from: u32): void {
  setEntryWord(dst, to, entryWord(src, from));
}

// @ts-ignore: decorator
@inline function swapEntries(base: usize, a: u32, b: u32): void {
  const t = entryWord(base, a);
  setEntryWord(base, a, entryWord(base, b));
  setEntryWord(base, b, t);
}

// Pushes onto a heap of n entries; `max` picks a max-heap. Returns n + 1.
// @ts-ignore: decorator
@inline export function heapPush(base: usize, n: u32, d: f32, s: u32, max: bool): u32 {
  let i = n;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const pd = entryDist(base, parent);
    if (max ? pd >= d : pd <= d) break;
    copyEntry(base, i, base, parent);
    i = parent;
  }
  setEntry(base, i, d, s);
  return n + 1;
}

// Removes the top of a heap of n entries. Returns n - 1.
// @ts-ignore: decorator
@inline export function heapPop(base: usize, n: u32, max: bool): u32 {
  const last = n - 1;
  if (last == 0) return 0;
  const d = entryDist(base, last);
  const moved = entryWord(base, last);
  let i: u32 = 0;
  while (true) {
    let child: u32 = 2 * i + 1;
    if (child >= last) break;
    let cd = entryDist(base, child);
    if (child + 1 < last) {
      const rd = entryDist(base, child + 1);
      if (max ? rd > cd : rd < cd) { child++; cd = rd; }
    }
    if (max ? cd <= d : cd >= d) break;
    copyEntry(base, i, base, child);
    i = child;
  }
  setEntryWord(base, i, moved);
  return last;
}

// Pops a max-heap of n entries into ascending order at `out`.
export function drainAscending(res: usize, n: u32, out: usize): void {
  let m = n;
  while (m > 0) {
    copyEntry(out, m - 1, res, 0);
    m = heapPop(res, m, true);
  }
}

// Insertion sort by distance, ascending: for short lists (<= M0 + 1).
export function sortShort(base: usize, n: u32): void {
  for (let i: u32 = 1; i < n; i++) {
    const e = entryWord(base, i);
    const d = entryDist(base, i);
    let j = i;
    while (j > 0 && entryDist(base, j - 1) > d) {
      copyEntry(base, j, base, j - 1);
      j--;
    }
    setEntryWord(base, j, e);
  }
}

function siftDown(base: usize, start: u32, n: u32): void {
  let i = start;
  while (true) {
    let c: u32 = 2 * i + 1;
    if (c >= n) return;
    if (c + 1 < n && entryDist(base, c + 1) > entryDist(base, c)) c++;
    if (entryDist(base, c) <= entryDist(base, i)) return;
    swapEntries(base, c, i);
    i = c;
  }
}

// Heap sort by distance, ascending: for long lists (repair's candidate
// pools hold up to M0 * (M0 + 1) entries, too many for insertion sort).
export function sortLong(base: usize, n: u32): void {
  if (n < 2) return;
  for (let i = <i32>(n / 2) - 1; i >= 0; i--) siftDown(base, <u32>i, n);
  for (let end = n - 1; end > 0; end--) {
    swapEntries(base, 0, end);
    siftDown(base, 0, end);
  }
}
