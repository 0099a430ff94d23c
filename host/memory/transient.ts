/**
 * Big transient buffers (an insert's per-shard vectors and ids, a delete's
 * ids, a large read's reply) kept out of malloc.
 *
 * Why: an ArrayBuffer's bytes come from glibc's malloc, and glibc raises its
 * mmap threshold to the size of every mmapped chunk (up to 32 MiB) that is
 * freed. After one 25.6 MB insert part is freed, every later buffer under
 * that size lands in the main heap or a thread arena, which glibc never
 * trims: 3-4 MiB of `[heap]` and 2-3 MiB of arenas stayed after each drop
 * (docs/memory-architecture.md, "Two findings"). A shared WebAssembly.Memory
 * is mapped by V8 itself (mmap, munmap once unreachable in every thread), so
 * glibc never sees it, and its SharedArrayBuffer crosses to a worker by
 * reference: no transfer list, no structured-clone copy.
 */

const WASM_PAGE = 64 * 1024;
/** glibc's default mmap threshold: below it malloc never mmaps and never moves its threshold. */
export const TRANSIENT_MIN_BYTES = 128 * 1024;

/**
 * `bytes` of zeroed memory: a SharedArrayBuffer mapped by V8 from
 * TRANSIENT_MIN_BYTES on (rounded up to 64 KiB pages), a plain ArrayBuffer
 * below. When the mapping is refused (address space) it falls back to an
 * ArrayBuffer: the buffer is still right, only glibc may keep its residue.
 */
export function transientBuffer(bytes: number): ArrayBuffer | SharedArrayBuffer {
  if (bytes < TRANSIENT_MIN_BYTES) return new ArrayBuffer(bytes);
  const pages = Math.ceil(bytes / WASM_PAGE);
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer;
  } catch {
    return new ArrayBuffer(bytes);
  }
}

export function transientF32(length: number): Float32Array {
  return new Float32Array(transientBuffer(length * Float32Array.BYTES_PER_ELEMENT), 0, length);
}

export function transientU32(length: number): Uint32Array {
  return new Uint32Array(transientBuffer(length * Uint32Array.BYTES_PER_ELEMENT), 0, length);
}

export function transientU8(length: number): Uint8Array {
  return new Uint8Array(transientBuffer(length), 0, length);
}

/**
 * Reused transient memories. A shared WebAssembly.Memory is unmapped only
 * once a GC in every thread finds it unreachable, and V8 does not count it
 * as memory pressure: an insert stream that made a new one per batch kept
 * every batch's parts mapped until the next full GC (RSS grew twice as fast
 * as the data; RSS-based admission refused writes at half the headroom). So
 * the buffers of a call whose worker is done with them when it answers (a
 * write with wait) are leased and come back here for the next call. Idle
 * ones are let go after IDLE_MS (then the next GC unmaps them) and at once
 * by `releaseIdleTransients()` (a drop, a close), so they never stand
 * between a drop and the memory going back.
 */
const IDLE_MS = 1000;
/** Idle leased memory kept at most (resident once used). */
const POOL_MAX_BYTES = 64 * 1024 * 1024;
const idle = new Map<number, WebAssembly.Memory[]>();
let idleBytes = 0;
let idleTimer: NodeJS.Timeout | undefined;

export function releaseIdleTransients(): void {
  idle.clear();
  idleBytes = 0;
  if (idleTimer !== undefined) clearTimeout(idleTimer);
  idleTimer = undefined;
}

/** Leased typed arrays and the one call that gives their memories back. */
export interface Leases {
  f32(length: number): Float32Array;
  u32(length: number): Uint32Array;
  /** Back to the pool: call only once no thread reads the arrays any more. */
  release(): void;
}

export function leases(): Leases {
  const held: WebAssembly.Memory[] = [];
  const buffer = (bytes: number): ArrayBuffer | SharedArrayBuffer => {
    if (bytes < TRANSIENT_MIN_BYTES) return new ArrayBuffer(bytes);
    // whole powers of two of pages, so a buffer serves the next calls of about the same size
    const pages = 2 ** Math.ceil(Math.log2(Math.ceil(bytes / WASM_PAGE)));
    let mem = idle.get(pages)?.pop();
    if (mem !== undefined) idleBytes -= pages * WASM_PAGE;
    else {
      try {
        mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      } catch {
        return new ArrayBuffer(bytes);
      }
    }
    held.push(mem);
    return mem.buffer as unknown as SharedArrayBuffer;
  };
  return {
    f32: (length) => new Float32Array(buffer(length * 4), 0, length),
    u32: (length) => new Uint32Array(buffer(length * 4), 0, length),
    release() {
      for (const mem of held.splice(0)) {
        const bytes = mem.buffer.byteLength;
        if (idleBytes + bytes > POOL_MAX_BYTES) continue;
        const pages = bytes / WASM_PAGE;
        idle.set(pages, [...(idle.get(pages) ?? []), mem]);
        idleBytes += bytes;
      }
      // let go once no call has used the pool for IDLE_MS
      if (idleTimer !== undefined) idleTimer.refresh();
      else if (idleBytes > 0) {
        idleTimer = setTimeout(releaseIdleTransients, IDLE_MS);
        idleTimer.unref();
      }
    },
  };
}

/** The buffers of `views` that must be moved, not copied, to another thread: the unshared ones. */
export function transferList(...views: (ArrayBufferView | undefined)[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const v of views) {
    if (v !== undefined && !(v.buffer instanceof SharedArrayBuffer) && !out.includes(v.buffer as ArrayBuffer)) out.push(v.buffer as ArrayBuffer);
  }
  return out;
}
