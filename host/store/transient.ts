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

/** The buffers of `views` that must be moved, not copied, to another thread: the unshared ones. */
export function transferList(...views: (ArrayBufferView | undefined)[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const v of views) {
    if (v !== undefined && !(v.buffer instanceof SharedArrayBuffer) && !out.includes(v.buffer as ArrayBuffer)) out.push(v.buffer as ArrayBuffer);
  }
  return out;
}
