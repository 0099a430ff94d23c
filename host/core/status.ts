import { ErrorCode, QuiverError } from '../errors.js';
import { ERR_CORRUPT, ERR_INVALID, ERR_NOT_FOUND, ERR_OUT_OF_MEMORY, PAGE_BYTES } from './abi.js';

export function pagesFor(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / PAGE_BYTES));
}

/** A new linear memory; the engine refusing one is MEMORY_LIMIT, like the core failing to grow. */
export function newMemory(pages: number, what: string): WebAssembly.Memory {
  try {
    return new WebAssembly.Memory({ initial: pages });
  } catch (err) {
    if (err instanceof RangeError) {
      throw new QuiverError(ErrorCode.MEMORY_LIMIT, `cannot allocate ${pages * PAGE_BYTES} bytes of WASM memory for ${what}`, { cause: err });
    }
    throw err;
  }
}

/**
 * The coded error for a negative core status (assembly/layout.ts ERR_*).
 * CORE_TRAP is kept for real traps (#call); a status this host does not
 * know means the core and the host disagree: CORE_ABI.
 */
export function coreStatusError(status: number, what: string): QuiverError {
  switch (status) {
    case ERR_INVALID:
      return new QuiverError(ErrorCode.INVALID_ARGUMENT, `${what}: the core rejected its input`);
    case ERR_NOT_FOUND:
      return new QuiverError(ErrorCode.NOT_FOUND, `${what}: not found`);
    case ERR_OUT_OF_MEMORY:
      return new QuiverError(ErrorCode.MEMORY_LIMIT, `out of WASM memory during ${what} (the 4 GiB limit of one shard)`);
    case ERR_CORRUPT:
      return new QuiverError(ErrorCode.CORRUPT_IMAGE, `${what}: the shard's memory does not hold a valid layout`);
    default:
      return new QuiverError(ErrorCode.CORE_ABI, `${what}: the core returned status ${status}, which this host does not know`);
  }
}

