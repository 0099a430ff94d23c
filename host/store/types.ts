/** The Store's public types: its options, and what its calls resolve with. */
import type { CompiledFilter, Filter } from '../filter/filter.js';
import type { MetricName } from '../core/abi.js';
import type { IndexStats } from '../core/stats.js';
import type { QuantizationOptions, QuantSearch } from '../core/quantization.js';
import type { Id, IdList } from '../ids.js';
import type { TunerKnobs } from '../options.js';
import type { CompactionPolicy } from '../memory/policy.js';
import type { Registry } from '../metrics.js';
import type { QuantizationInfo } from './quantization.js';

export type { CompactionReport } from '../core/compaction.js';
export type { PayloadIndexInfo, PayloadIndexType } from '../core/payload-index.js';

export interface StoreOptions {
  /** Worker threads. Default: available cores. */
  threads?: number;
  /** prom-client Registry for quiver's metrics. Default: one the store creates (never the global one). */
  registry?: Registry;
  /** Background compaction: when a shard qualifies, and how often to look (intervalMs 0 turns it off). */
  compaction?: Partial<CompactionPolicy> & { intervalMs?: number };
  /** Keep process RSS under this many bytes: writes that would cross it are rejected (or evict, below). */
  maxMemoryBytes?: number;
  /** With maxMemoryBytes: 'reject' writes (default) or drop whole datasets, least recently used first. */
  evictionPolicy?: 'reject' | 'lru';
  /** The memory tuner's knobs (see docs/memory-architecture.md). */
  tuner?: TunerKnobs;
  /**
   * A data directory: the store is durable (docs/durability.md) and holds the
   * directory's lock for its life. Without it the store lives in memory.
   */
  path?: string;
  /** With path: when a write is synced before it is acknowledged. Default 'always'. */
  fsync?: 'always' | 'interval' | 'never';
  /** With fsync 'interval': ms between syncs. Default 1000. */
  fsyncIntervalMs?: number;
  /** With path: checkpoint a shard once its log holds this many bytes past its image. Default 64 MiB. */
  checkpointLogBytes?: number;
  /** Where snapshots go. Default <path>/snapshots, or <os tmpdir>/quiver-snapshots-<pid> in memory. */
  snapshotsPath?: string;
}

export interface WriteOptions {
  /**
   * Default true: resolve once the write is durable (per the fsync policy)
   * and applied, so the next read sees it. false: resolve once it is in the
   * log (`acknowledged`); it is applied shortly after, in order.
   */
  wait?: boolean;
}

export interface DatasetOptions {
  dim: number;
  metric?: MetricName;
  M?: number;
  efConstruction?: number;
  ef?: number;
  /** Shards, each one WASM memory on one thread. Default: the thread count. */
  shards?: number;
  /**
   * int8 scalar quantization (docs/quantization.md): `{ scalar: { type: 'int8', quantile?: 0.99, alwaysRam?: true } }`.
   * Fixed for the dataset's life. Default: none (f32 records). `alwaysRam: false` keeps the f32 originals in files of the data directory, only the codes in RAM (a durable store only, else INVALID_ARGUMENT; docs/quantization.md).
   */
  quantization?: QuantizationOptions | null;
}

export interface DatasetInfo {
  name: string;
  dim: number;
  metric: MetricName;
  M: number;
  efConstruction: number;
  ef: number;
  shards: number;
  count: number;
  deleted: number;
  committedBytes: number;
  liveBytes: number;
  /** The dataset's quantization, every field filled in; absent when it has none. Each shard's `IndexStats.quantization` says what its quantizer learned from. */
  quantization?: QuantizationInfo;
}

export interface SearchOptions {
  ef?: number;
  signal?: AbortSignal;
  /** Also return each hit's payload (`payloads`, parallel to `ids`). */
  withPayload?: boolean;
  /** Only points this Qdrant filter matches; the hits then say each shard's planner `paths` (docs/filtering.md). */
  filter?: Filter | CompiledFilter | null;
  /** On a quantized dataset: `{ ignore, rescore, oversampling }` as Qdrant's `params.quantization` (docs/quantization.md). No effect otherwise. */
  quantization?: QuantSearch | null;
}

export interface PointRecord {
  id: Id;
  vector?: Float32Array;
  payload?: unknown;
}

export interface ReadOptions {
  /** Default true. */
  withVector?: boolean;
  /** Default true. */
  withPayload?: boolean;
}

export interface ScrollOptions extends ReadOptions {
  /** The id the page starts at (the first page: none). */
  offset?: Id;
  /** Points per page. Default 10. */
  limit?: number;
  /** Only points this Qdrant filter matches (docs/filtering.md). */
  filter?: Filter | CompiledFilter | null;
}

export interface CountOptions {
  /** Only points this Qdrant filter matches. */
  filter?: Filter | CompiledFilter | null;
}

export interface ScrollPage {
  points: PointRecord[];
  /** Where the next page starts; undefined after the last page. */
  nextOffset: Id | undefined;
}

export interface CloseOptions {
  /** How long running work may take before threads are terminated. Default 30 s. */
  timeoutMs?: number;
}

export interface CloseReport {
  forced: boolean;
  durationMs: number;
}

/** One snapshot file of a dataset (Qdrant's SnapshotDescription). */
export interface SnapshotInfo {
  /** The file's name in <snapshotsPath>/<dataset>/. */
  name: string;
  /** ISO 8601 in UTC without the zone letter, as Qdrant writes it. */
  creationTime: string;
  size: number;
  /** SHA-256 of the file, hex. */
  checksum: string;
}

/** What opening a durable store recovered, per dataset. */
export interface RecoveryReport {
  dataset: string;
  shards: number;
  /** Log records replayed after the images. */
  replayed: number;
  /** Set when the dataset could not be opened (its calls get this error's code). */
  error?: string;
}

export interface StoreStats {
  threads: number;
  rssBytes: number;
  heapUsedBytes: number;
  datasets: (DatasetInfo & { shardStats: IndexStats[] })[];
  tuner: { rssBytes: number; heapBytes: number; arenaBytes: number; reclaimableBytes: number; pressure: boolean; limitBytes: number };
  /** A durable store: its directory and policy, and its shards' log figures summed (per shard: shardStats[i].log). */
  durability?: { path: string; fsync: 'always' | 'interval' | 'never'; fsyncs: number; writes: number; records: number; bytes: number; checkpoints: number };
}

/** What a payload update does to each selected point's payload (Store.updatePayload; Qdrant's semantics, docs/api.md "Payload updates"). */
export type PayloadUpdate =
  /** Merge these keys into the payload (a null value removes the key), or into the object at path `key`. */
  | { set: Record<string, unknown>; key?: string | null }
  /** Replace the whole payload. */
  | { overwrite: Record<string, unknown> }
  /** Remove these key paths. */
  | { deleteKeys: readonly string[] }
  /** Remove the whole payload. */
  | { clear: true };

/** Which points a payload update changes: these ids (each must exist), or every point a filter matches. */
export type PointSelection = { ids: IdList } | { filter: Filter | CompiledFilter };
