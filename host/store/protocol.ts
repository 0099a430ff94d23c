import type { IndexStats } from '../index-class.js';
import type { ShardParams } from '../core/shard.js';

import { ID_WORDS } from '../ids.js';

/**
 * Messages between the Store (main thread) and its workers. Everything a
 * task carries is numbers, strings and typed arrays: vectors and ids cross
 * threads as transferred buffers, never as arrays of numbers.
 *
 * Ids travel packed as ids.ts packs them: ID_WORDS u32 per id.
 */
export { ID_WORDS };

/** How a task names its shard: `${datasetId}:${shardIndex}`. */
export type ShardKey = string;

export type Task =
  | { op: 'create'; shard: ShardKey; params: ShardParams }
  | { op: 'drop'; shards: ShardKey[] }
  | { op: 'insert'; shard: ShardKey; ids: Uint32Array; vectors: Float32Array; payloads?: (Uint8Array | undefined)[]; cancel: number }
  | { op: 'delete'; shard: ShardKey; ids: Uint32Array }
  | { op: 'get'; shard: ShardKey; ids: Uint32Array; withPayload?: boolean }
  | { op: 'search'; shard: ShardKey; queries: Float32Array; n: number; k: number; ef: number; withPayload?: boolean }
  | { op: 'ids'; shard: ShardKey }
  | { op: 'stats'; shard: ShardKey }
  | { op: 'compact'; shard: ShardKey; cancel: number }
  | { op: 'gc' }
  | { op: 'hang' }
  | { op: 'exit' };

/** What every task resolves with: a value, or a coded failure. */
export type Reply<T> = { ok: true; value: T } | { ok: false; code: string; message: string; applied?: number };

export interface InsertResult {
  applied: number;
}

export interface SearchResult {
  /** per query, how many hits */
  counts: Uint32Array;
  /** n * k packed ids (only counts[i] of each block of k are valid) */
  ids: Uint32Array;
  distances: Float32Array;
  /** with withPayload: n * k entries, parallel to distances */
  payloads?: (Uint8Array | undefined)[];
}

export interface GetResult {
  found: Uint8Array;
  vectors: Float32Array;
  payloads?: (Uint8Array | undefined)[];
}

export interface CompactResult {
  committedBefore: number;
  committedAfter: number;
  removedTombstones: number;
}

export type ShardStats = IndexStats;

export interface GcResult {
  threadId: number;
}
