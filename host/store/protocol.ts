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
  | { op: 'scroll'; shard: ShardKey; from?: Uint32Array; limit: number; withVector: boolean; withPayload: boolean }
  | { op: 'stats'; shard: ShardKey }
  | { op: 'compact'; shard: ShardKey; cancel: number }
  | { op: 'gc' }
  // test hooks, honoured only by a pool started with testHooks (see pool.ts)
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

/** Up to `limit` live points of one shard from an id on, in id order. */
export interface ScrollResult {
  /** packed ids, ascending */
  ids: Uint32Array;
  /** with withVector: n * dim */
  vectors?: Float32Array;
  /** with withPayload: n entries */
  payloads?: (Uint8Array | undefined)[];
}

export interface GcResult {
  threadId: number;
}
