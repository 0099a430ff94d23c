import type { PayloadIndexType } from '../core/payload-index.js';
import type { QuantSearch } from '../core/quantization.js';
import type { FilterPath, ShardParams } from '../core/shard.js';
import type { CompiledFilter } from '../filter/compile.js';
import type { Durability } from './shard-log.js';
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
  // with `durable`: open (or recover) the shard from its directory
  | { op: 'create'; shard: ShardKey; params: ShardParams; durable?: Durability }
  // a shard from the raw image at [offset, offset + length) of `file` (a snapshot); durable: checkpointed at once
  | { op: 'restore'; shard: ShardKey; params: ShardParams; file: string; offset: number; length: number; durable?: Durability }
  | { op: 'checkpoint'; shard: ShardKey }
  // writes the shard's raw image to `file` (for a snapshot)
  | { op: 'writeImage'; shard: ShardKey; file: string }
  // a graceful close: checkpoint (durable shards) and close the logs
  | { op: 'close'; shards: ShardKey[] }
  | { op: 'drop'; shards: ShardKey[] }
  // wait false: answer once the record is logged (durable per the policy); it is applied after, in order
  | { op: 'insert'; shard: ShardKey; ids: Uint32Array; vectors: Float32Array; payloads?: (Uint8Array | undefined)[]; cancel: number; wait?: boolean }
  | { op: 'delete'; shard: ShardKey; ids: Uint32Array; wait?: boolean }
  // every live point the filter matches, decided where the record stands in the log
  | { op: 'deleteWhere'; shard: ShardKey; filter: CompiledFilter; wait?: boolean }
  // a payload update (payload-updates.ts): `kind` is its log op, `arg` its argument; by ids, or by filter (decided in log order)
  | { op: 'updatePayload'; shard: ShardKey; kind: number; arg: Uint8Array; ids?: Uint32Array; filter?: CompiledFilter; wait?: boolean }
  // payload indexes (payload-indexes.ts), logged and applied in log order; payloadIndexes lists them (PayloadIndexInfo[])
  | { op: 'createIndex'; shard: ShardKey; field: string; type: PayloadIndexType; wait?: boolean }
  | { op: 'dropIndex'; shard: ShardKey; field: string; wait?: boolean }
  | { op: 'payloadIndexes'; shard: ShardKey }
  | { op: 'count'; shard: ShardKey; filter?: CompiledFilter }
  | { op: 'get'; shard: ShardKey; ids: Uint32Array; withPayload?: boolean }
  // quant: a quantized shard's search params (host/core/quantization.ts); an unquantized shard ignores them
  | { op: 'search'; shard: ShardKey; queries: Float32Array; n: number; k: number; ef: number; withPayload?: boolean; filter?: CompiledFilter; quant?: QuantSearch }
  | { op: 'scroll'; shard: ShardKey; from?: Uint32Array; limit: number; withVector: boolean; withPayload: boolean; filter?: CompiledFilter }
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
  /** wait false: logged, not yet applied */
  acknowledged?: boolean;
}

export interface OpenResult {
  threadId: number;
  /** durable: records replayed after the image, and the image's LSN */
  replayed?: number;
  imageLsn?: number;
  fallbackReason?: string | null;
}

export interface ImageResult {
  bytes: number;
  lsn: number;
}

export interface SearchResult {
  /** per query, how many hits */
  counts: Uint32Array;
  /** n * k packed ids (only counts[i] of each block of k are valid) */
  ids: Uint32Array;
  distances: Float32Array;
  /** with withPayload: n * k entries, parallel to distances */
  payloads?: (Uint8Array | undefined)[];
  /** with a filter: per query, the path the shard's planner took */
  paths?: FilterPath[];
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
