// SlabArena: the only allocator of a shard. Two kinds of allocation:
//
// - runs: whole slabs (SLAB_BYTES each), contiguous, for everything that
//   is addressed as one array (node slabs, the id map, scratch). Freed runs
//   go on an address-ordered free list and coalesce; a free run that
//   touches the arena top lowers the top, so the used prefix (what an image
//   and a shrink copy) only ever covers live allocations and holes.
// - blocks: fixed-size blocks of a small class, carved from slabs by
//   bumping, recycled through a per-class free list. Link classes 1..15
//   hold upper-level link blocks (accounted as links), payload classes
//   hold payload blobs of 32 B .. 32 KiB (accounted as payload). A class
//   never gives its slabs back; compaction does, by copying.
//
// A free run keeps its bookkeeping in its own first bytes:
//
//   FREE RUN   0 next run ptr u32 (0 = end)   4 slabs u32
//
// The arena grows memory by what a run needs plus headroom (ensureMemory;
// none while H_EXACT_GROWTH is set, during an import) and never assumes
// memory shrinks: shrinking is the host's job (copy the prefix into a new,
// smaller memory). Every committed byte belongs to one accounting class.

import {
  ACCT_COMMITTED, ACCT_STRIDE, ACCT_USED, ALL_SMALL_CLASSES, CLASS_LINKS, CLASS_PAYLOAD, H_ACCT,
  H_PAYLOAD_ACCT, H_PAYLOAD_CLASSES, PAYLOAD_CLASS_BASE, H_ARENA_BASE, H_ARENA_TOP,
  H_EXACT_GROWTH, H_FREE_RUNS, H_SMALL, MAX_PAGES, SC_BLOCK, SC_BUMP, SC_END, SC_FREE, SC_STRIDE,
  SLAB_BYTES, SLAB_SHIFT, DEBUG, headerPtr, hget, hset,
} from "./layout";

// @ts-ignore: decorator
@inline const BLOCK_ALIGN: u32 = 4; // small blocks hold u32s
// @ts-ignore: decorator
@inline const RUN_NEXT: u32 = 0;
// @ts-ignore: decorator
@inline const RUN_SLABS: u32 = 4;
// @ts-ignore: decorator
@inline const RUN_HEADER: u32 = RUN_SLABS + 4; // a free run's bookkeeping words, at its start

// @ts-ignore: decorator
@inline function acctPtr(cls: u32): usize {
  return cls == CLASS_PAYLOAD ? headerPtr() + H_PAYLOAD_ACCT : headerPtr() + H_ACCT + cls * ACCT_STRIDE;
}

// @ts-ignore: decorator
@inline function smallPtr(sc: u32): usize {
  return sc < PAYLOAD_CLASS_BASE
    ? headerPtr() + H_SMALL + sc * SC_STRIDE
    : headerPtr() + H_PAYLOAD_CLASSES + (sc - PAYLOAD_CLASS_BASE) * SC_STRIDE;
}

// @ts-ignore: decorator
@inline function smallAcct(sc: u32): u32 {
  return sc < PAYLOAD_CLASS_BASE ? CLASS_LINKS : CLASS_PAYLOAD;
}

export function acctAdd(cls: u32, field: u32, delta: i64): void {
  const p = acctPtr(cls) + field;
  store<u64>(p, <u64>(<i64>load<u64>(p) + delta));
}

export function acctGet(cls: u32, field: u32): u64 {
  return load<u64>(acctPtr(cls) + field);
}

export function slabsFor(bytes: u32): u32 {
  return (bytes + SLAB_BYTES - 1) >> SLAB_SHIFT;
}

// Makes memory at least `end` bytes long. Grows by what is needed plus a
// sixteenth of the current size (capped at 16 MiB) so a build does not call
// memory.grow per slab; fails (false) instead of trapping at the 4 GiB cap.
function ensureMemory(end: u64): bool {
  const have = <u64>memory.size() << 16;
  if (end <= have) return true;
  const needPages = <u32>((end - have + 0xffff) >> 16);
  const havePages = <u32>memory.size();
  let extra = hget(H_EXACT_GROWTH) != 0 ? 0 : min<u32>(havePages >> 4, 256);
  if (havePages + needPages + extra > MAX_PAGES) extra = 0;
  if (havePages + needPages > MAX_PAGES) return false;
  if (memory.grow(<i32>(needPages + extra)) >= 0) return true;
  return memory.grow(<i32>needPages) >= 0;
}

export function arenaInit(base: usize): void {
  hset(H_ARENA_BASE, <u32>base);
  hset(H_ARENA_TOP, <u32>base);
  hset(H_FREE_RUNS, 0);
}

// A run of `slabs` contiguous slabs, or 0 when memory cannot grow.
// First fit over the free runs, else bump the arena top.
export function runAlloc(slabs: u32, cls: u32): usize {
  if (slabs == 0) return 0;
  const bytes = <u64>slabs << SLAB_SHIFT;
  let prevPtr: usize = headerPtr() + H_FREE_RUNS; // where the link to `run` is stored
  let run = <usize>hget(H_FREE_RUNS);
  while (run != 0) {
    const have = load<u32>(run, RUN_SLABS);
    if (have >= slabs) {
      const next = load<u32>(run, RUN_NEXT);
      if (have == slabs) {
        store<u32>(prevPtr, next);
      } else {
        const rest = run + <usize>bytes;
        store<u32>(rest, next, RUN_NEXT);
        store<u32>(rest, have - slabs, RUN_SLABS);
        store<u32>(prevPtr, <u32>rest);
      }
      acctAdd(cls, ACCT_COMMITTED, <i64>bytes);
      acctAdd(cls, ACCT_USED, <i64>bytes);
      return run;
    }
    prevPtr = run + RUN_NEXT;
    run = <usize>load<u32>(run, RUN_NEXT);
  }
  const top = <u64>hget(H_ARENA_TOP);
  const end = top + bytes;
  if (!ensureMemory(end)) return 0;
  hset(H_ARENA_TOP, <u32>end);
  acctAdd(cls, ACCT_COMMITTED, <i64>bytes);
  acctAdd(cls, ACCT_USED, <i64>bytes);
  return <usize>top;
}

// Returns a run to the free list, coalescing with its neighbours; a run that
// ends at the arena top lowers the top instead.
export function runFree(ptr: usize, slabs: u32, cls: u32): void {
  if (ptr == 0 || slabs == 0) return;
  const bytes = <u64>slabs << SLAB_SHIFT;
  if (DEBUG) assert((ptr - hget(H_ARENA_BASE)) % SLAB_BYTES == 0);
  acctAdd(cls, ACCT_COMMITTED, -<i64>bytes);
  acctAdd(cls, ACCT_USED, -<i64>bytes);
  let prevPtr: usize = headerPtr() + H_FREE_RUNS;
  let prev: usize = 0;
  let run = <usize>hget(H_FREE_RUNS);
  while (run != 0 && run < ptr) {
    prev = run;
    prevPtr = run + RUN_NEXT;
    run = <usize>load<u32>(run, RUN_NEXT);
  }
  let start = ptr;
  let count = slabs;
  // merge with the following run
  if (run != 0 && ptr + <usize>bytes == run) {
    count += load<u32>(run, RUN_SLABS);
    run = <usize>load<u32>(run, RUN_NEXT);
  }
  // merge with the preceding run
  if (prev != 0 && prev + (<usize>load<u32>(prev, RUN_SLABS) << SLAB_SHIFT) == start) {
    start = prev;
    count += load<u32>(prev, RUN_SLABS);
    // the link to `prev` is held by the run before it: find it again
    prevPtr = headerPtr() + H_FREE_RUNS;
    let r = <usize>hget(H_FREE_RUNS);
    while (r != prev) {
      prevPtr = r + RUN_NEXT;
      r = <usize>load<u32>(r, RUN_NEXT);
    }
  }
  if (start + (<usize>count << SLAB_SHIFT) == <usize>hget(H_ARENA_TOP)) {
    store<u32>(prevPtr, <u32>run);
    hset(H_ARENA_TOP, <u32>start);
    return;
  }
  store<u32>(start, <u32>run, RUN_NEXT);
  store<u32>(start, count, RUN_SLABS);
  store<u32>(prevPtr, <u32>start);
}

// Zeroes the free runs past their bookkeeping words, so that what they
// held before does not end up in an image.
export function scrubFreeRuns(): void {
  let run = <usize>hget(H_FREE_RUNS);
  while (run != 0) {
    memory.fill(run + RUN_HEADER, 0, (<usize>load<u32>(run, RUN_SLABS) << SLAB_SHIFT) - RUN_HEADER);
    run = <usize>load<u32>(run, RUN_NEXT);
  }
}

// Sum of slabs on the free run list (holes inside the used prefix).
export function freeRunBytes(): u64 {
  let total: u64 = 0;
  let run = <usize>hget(H_FREE_RUNS);
  while (run != 0) {
    total += <u64>load<u32>(run, RUN_SLABS) << SLAB_SHIFT;
    run = <usize>load<u32>(run, RUN_NEXT);
  }
  return total;
}

export function smallInit(sc: u32, blockBytes: u32): void {
  const p = smallPtr(sc);
  store<u32>(p, (blockBytes + BLOCK_ALIGN - 1) & ~(BLOCK_ALIGN - 1), SC_BLOCK);
  store<u32>(p, 0, SC_FREE);
  store<u32>(p, 0, SC_BUMP);
  store<u32>(p, 0, SC_END);
}

export function smallBlockBytes(sc: u32): u32 {
  return load<u32>(smallPtr(sc), SC_BLOCK);
}

// A block of small class `sc`, or 0 when memory cannot grow.
export function smallAlloc(sc: u32): usize {
  if (DEBUG) assert(sc > 0 && sc < ALL_SMALL_CLASSES);
  const p = smallPtr(sc);
  const cls = smallAcct(sc);
  const size = load<u32>(p, SC_BLOCK);
  let block = <usize>load<u32>(p, SC_FREE);
  if (block != 0) {
    store<u32>(p, load<u32>(block), SC_FREE);
  } else {
    let bump = <usize>load<u32>(p, SC_BUMP);
    if (bump == 0 || bump + size > <usize>load<u32>(p, SC_END)) {
      const slabs = slabsFor(size);
      const slab = runAlloc(slabs, cls);
      if (slab == 0) return 0;
      // the slab is committed to the class, but only handed-out blocks are used
      acctAdd(cls, ACCT_USED, -(<i64>slabs << SLAB_SHIFT));
      bump = slab;
      store<u32>(p, <u32>(slab + (<usize>slabs << SLAB_SHIFT)), SC_END);
    }
    block = bump;
    store<u32>(p, <u32>(bump + size), SC_BUMP);
  }
  acctAdd(cls, ACCT_USED, size);
  return block;
}

export function smallFree(sc: u32, block: usize): void {
  if (block == 0) return;
  const p = smallPtr(sc);
  store<u32>(block, load<u32>(p, SC_FREE));
  store<u32>(p, <u32>block, SC_FREE);
  acctAdd(smallAcct(sc), ACCT_USED, -<i64>load<u32>(p, SC_BLOCK));
}
