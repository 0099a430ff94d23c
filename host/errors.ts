/** Stable error codes. A code never changes meaning once released. */
export const ErrorCode = {
  DIMENSION: 'QUIVER_ERR_DIMENSION',
  INVALID_ARGUMENT: 'QUIVER_ERR_INVALID_ARGUMENT',
  NOT_FOUND: 'QUIVER_ERR_NOT_FOUND',
  EXISTS: 'QUIVER_ERR_EXISTS',
  ABORTED: 'QUIVER_ERR_ABORTED',
  CLOSED: 'QUIVER_ERR_CLOSED',
  MEMORY_LIMIT: 'QUIVER_ERR_MEMORY_LIMIT',
  CORRUPT_IMAGE: 'QUIVER_ERR_CORRUPT_IMAGE',
  WORKER_LOST: 'QUIVER_ERR_WORKER_LOST',
  CORE_TRAP: 'QUIVER_ERR_CORE_TRAP',
  /** The WASM build and the host disagree on the core's layout (a stale build). */
  CORE_ABI: 'QUIVER_ERR_CORE_ABI',
  CORRUPT: 'QUIVER_ERR_CORRUPT',
  LOCKED: 'QUIVER_ERR_LOCKED',
  IO: 'QUIVER_ERR_IO',
  /** The cluster service (NATS JetStream) cannot serve the call now; retryable, and the call was not acknowledged. */
  UNAVAILABLE: 'QUIVER_ERR_UNAVAILABLE',
  /** This node no longer owns the shard (another writer moved its log on, or its lease was lost): step down. */
  FENCED: 'QUIVER_ERR_FENCED',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface QuiverErrorOptions {
  cause?: unknown;
  /** For a batch that stopped part-way: how many items were applied. */
  applied?: number;
}

/** The one error class quiver throws; switch on `code`, not on the message. */
export class QuiverError extends Error {
  readonly code: ErrorCode;
  readonly applied?: number;

  constructor(code: ErrorCode, message: string, options: QuiverErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QuiverError';
    this.code = code;
    if (options.applied !== undefined) this.applied = options.applied;
  }
}

export function isQuiverError(err: unknown, code?: ErrorCode): err is QuiverError {
  return err instanceof QuiverError && (code === undefined || err.code === code);
}
