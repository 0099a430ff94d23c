/**
 * The write-ahead log's options, counters and limits (wal.ts), and the
 * validation of the options Wal.open() takes.
 */
import { nodeFiles, type Files } from './files.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_INTERVAL_MS = 1000;
/**
 * Most bytes one group write carries: bounds the buffer a burst of large
 * appends concatenates into; a bigger backlog takes several writes.
 */
export const MAX_GROUP_BYTES = 8 * 1024 * 1024;
/**
 * 'interval' keeps the acknowledged-but-unsynced bytes to re-write them if a
 * sync fails; past this many it syncs at once rather than wait for the
 * timer, so that copy stays bounded (and a crash loses less, never more).
 */
export const MAX_UNSYNCED_BYTES = 16 * 1024 * 1024;

export interface WalOptions {
  /** The shard's log directory (created if missing). */
  dir: string;
  files?: Files;
  fsync?: FsyncPolicy;
  /** For 'interval': how often to sync, in ms. */
  intervalMs?: number;
  /** Rotate to a new segment once the active one holds this many bytes. */
  segmentBytes?: number;
  /**
   * The LSN the log continues at if it is empty or ends before it (records
   * before it are covered by a checkpoint image). Default 1.
   */
  startLsn?: number;
}

/** Counters for benchmarks and metrics. */
export interface WalStats {
  /** fdatasyncs of segment files. */
  fsyncs: number;
  /** fsyncs of the log directory. */
  dirSyncs: number;
  /** Group writes (one write() each). */
  writes: number;
  records: number;
  bytes: number;
  /** Segments rotated to. */
  rotations: number;
}

/** What open() repaired. */
export interface WalRecovery {
  /** Bytes of a torn tail that were cut off the last segment. */
  truncatedBytes: number;
  /** The segment that was cut, if any. */
  file: string | null;
}

const POLICIES: readonly FsyncPolicy[] = ['always', 'interval', 'never'];

function positiveInt(value: unknown, name: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`options.${name} must be an integer >= ${min}`);
  }
  return value;
}

/** WalOptions with every default filled in, except startLsn. */
export type ResolvedWalOptions = Required<Omit<WalOptions, 'startLsn'>>;

/** Validates `options` (TypeError / RangeError) and fills in the defaults. */
export function resolveOptions(options: WalOptions): { o: ResolvedWalOptions; startLsn: number } {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError('options.dir must be a non-empty string');
  const fsync = options.fsync ?? 'always';
  if (!POLICIES.includes(fsync)) throw new RangeError(`options.fsync must be one of ${POLICIES.join(', ')}`);
  const o = {
    dir: options.dir,
    files: options.files ?? nodeFiles,
    fsync,
    intervalMs: positiveInt(options.intervalMs ?? DEFAULT_INTERVAL_MS, 'intervalMs'),
    segmentBytes: positiveInt(options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, 'segmentBytes', 64),
  };
  const startLsn = positiveInt(options.startLsn ?? 1, 'startLsn');
  return { o, startLsn };
}
