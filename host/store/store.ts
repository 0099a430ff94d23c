import { EventEmitter } from 'node:events';
import { insertBytesPerVector } from '../core/abi.js';
import type { CompactionReport } from '../core/compaction.js';
import type { SearchHits } from '../core/shard.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { packIds, type IdList } from '../ids.js';
import type { MemoryManager } from '../memory/manager.js';
import type { Metrics, Registry } from '../metrics.js';
import { intIn, invalidArgument, MAX_K, waitOption } from '../options.js';
import { encodePayloads, type Payload } from '../payload.js';
import { flattenBatch, isSingleQuery, toQueries, toQuery, type Vector, type VectorBatch } from '../vectors.js';
import type { CancelSlots } from './cancel.js';
import { checkName, type Catalog } from './catalog.js';
import type { SearchCoalescer } from './coalescer.js';
import type { Compactions } from './compactions.js';
import type { Datasets } from './datasets.js';
import type { Durable } from './durable.js';
import type { Intake } from './intake.js';
import type { ThreadPool } from './pool.js';
import { compileFilter, compileOptionalFilter, type CompiledFilter, type Filter } from '../filter/filter.js';
import { ClusterStore, type ClusterStoreOptions } from './cluster-store.js';
import { countPoints, deletePoints, deleteWhere, getVectors, insertPoints, retrievePoints, scrollPage, updatePayloads } from './points.js';
import { createIndex, dropIndex, listIndexes } from './payload-indexes.js';
import { ID_WORDS } from './protocol.js';
import { abortError, type Scatter } from './scatter.js';
import { searchFlat } from './search.js';
import { datasetParams } from './quantization.js';
import type { Snapshots } from './snapshots.js';
import { shutdown } from './shutdown.js';
import { openStore, wireStore, type StoreBase } from './store-parts.js';
import { exposition, storeStats } from './store-stats.js';
import type {
  CloseOptions, CloseReport, CountOptions, DatasetInfo, DatasetOptions, PayloadIndexInfo, PayloadIndexType, PayloadUpdate, PointRecord, PointSelection,
  ReadOptions, RecoveryReport, ScrollOptions, ScrollPage, SearchOptions, SnapshotInfo, StoreOptions, StoreStats, WriteOptions,
} from './types.js';

export type * from './types.js';

const DEFAULT_CLOSE_MS = 30_000;

/**
 * A vector store: named datasets, each split into shards by a hash of the
 * id; every shard is one WASM instance owned by one worker thread. Searches
 * scatter to every shard in parallel and merge the top k. Every method is
 * async and rejects with a coded QuiverError; bad input changes nothing.
 */
export class Store extends EventEmitter {
  readonly #pool: ThreadPool;
  readonly #cancel: CancelSlots;
  readonly #catalog: Catalog;
  readonly #intake: Intake;
  readonly #registry: Registry;
  readonly #metrics: Metrics;
  readonly #memory: MemoryManager;
  readonly #scatter: Scatter;
  readonly #coalescer: SearchCoalescer;
  readonly #compactions: Compactions;
  readonly #datasets: Datasets;
  readonly #testHooks: boolean;
  readonly #durable: Durable | undefined;
  readonly #snapshots: Snapshots;
  #recovery: RecoveryReport[] = [];
  #closing: Promise<CloseReport> | undefined;

  private constructor(base: StoreBase) {
    super();
    ({
      pool: this.#pool, cancel: this.#cancel, catalog: this.#catalog, intake: this.#intake, registry: this.#registry, metrics: this.#metrics,
      memory: this.#memory, scatter: this.#scatter, coalescer: this.#coalescer, compactions: this.#compactions, datasets: this.#datasets,
      testHooks: this.#testHooks, durable: this.#durable, snapshots: this.#snapshots,
    } = wireStore(base, this));
  }

  /**
   * Starts the worker pool. With `path` the store is durable: it takes the
   * directory's lock (QUIVER_ERR_LOCKED if another process has it) and
   * recovers every dataset there, each shard on its thread, in parallel; a
   * dataset whose files are damaged answers QUIVER_ERR_CORRUPT while the
   * others open (`recovery` says which). QUIVER_TEST_HOOKS=1 in the
   * environment (and only that) turns `_testHook` on.
   */
  static open(options?: StoreOptions): Promise<Store>;
  /** With `cluster`: joins a quiver cluster on NATS as one node (cluster-store.ts, docs/cluster.md). */
  static open(options: { path: string; snapshotsPath?: string; cluster: ClusterStoreOptions }): Promise<ClusterStore>;
  static open(options: StoreOptions & { cluster?: ClusterStoreOptions } = {}): Promise<Store | ClusterStore> {
    if (options !== null && typeof options === 'object' && 'cluster' in options && options.cluster !== undefined) return ClusterStore.open(options as { cluster: ClusterStoreOptions });
    return openStore(options, async (base) => {
      const store = new Store(base);
      if (store.#durable !== undefined) store.#recovery = await store.#durable.recover();
      return store;
    });
  }

  /** The data directory, or undefined for a store in memory. */
  get path(): string | undefined { return this.#durable?.dir.path; }

  /** What opening a durable store recovered, per dataset (empty in memory). */
  get recovery(): RecoveryReport[] {
    return this.#recovery.map((r) => ({ ...r }));
  }

  /** Where snapshots are written (options.snapshotsPath). */
  get snapshotsPath(): string { return this.#snapshots.dir; }

  /** The prom-client Registry quiver's metrics live on. */
  get registry(): Registry { return this.#registry; }

  /** Prometheus exposition text: the store's metrics, plus Node's process metrics unless its registry has them. */
  metrics(): Promise<string> {
    return exposition(this.#registry);
  }

  /** Worker threads alive now. */
  get threads(): number { return this.#pool.size; }

  createDataset(name: string, options: DatasetOptions): Promise<DatasetInfo> {
    return this.#intake.run(async () => {
      checkName(name);
      if (options === null || typeof options !== 'object') throw invalidArgument('dataset options must be an object');
      this.#catalog.checkFree(name);
      const params = datasetParams(options, this.#durable !== undefined);
      const shardCount = intIn(options.shards ?? this.#pool.threadIds.length, 'options.shards', 1, 1024, invalidArgument);
      return this.#datasets.info(await this.#datasets.create(name, params, shardCount));
    });
  }

  listDatasets(): string[] {
    return this.#catalog.names();
  }

  datasetInfo(name: string): Promise<DatasetInfo> {
    return this.#intake.run(async () => this.#datasets.info(await this.#datasets.ready(name)));
  }

  /** Drops a dataset; its memory goes back to the OS (each owning thread runs a GC). */
  dropDataset(name: string): Promise<void> {
    return this.#intake.run(async () => {
      this.#catalog.mustExist(name);
      await this.#datasets.drop(name);
    });
  }

  /**
   * Inserts (upserts) vectors. With a signal, an abort stops every shard
   * between steps; the rejection's `applied` says how many vectors went in
   * (they are searchable; none is half-inserted).
   */
  insert(
    name: string, ids: IdList, vectors: VectorBatch, options: WriteOptions & { signal?: AbortSignal; payloads?: readonly Payload[] } = {},
  ): Promise<{ inserted: number; acknowledged?: true }> {
    return this.#intake.run(async () => {
      const ds = await this.#datasets.ready(name);
      const wait = waitOption(options.wait);
      const packed = packIds(ids, true);
      const n = packed.length / ID_WORDS;
      const flat = flattenBatch(vectors, n, ds.dim);
      const encoded = encodePayloads(options.payloads, n);
      const signal = options.signal;
      if (signal?.aborted) throw abortError(signal, 0);
      // about what the shards will touch: node records, links, id map and io staging (abi.ts), plus the payloads
      const payloadBytes = encoded?.reduce((a, p) => a + (p?.byteLength ?? 0), 0) ?? 0;
      const releaseAdmission = await this.#memory.admit(ds.name, n * insertBytesPerVector(ds.M, ds.dim, ds.quantization !== undefined, ds.quantization?.alwaysRam ?? true) + payloadBytes);
      let applied = 0;
      let cancel: ReturnType<CancelSlots['acquire']> | undefined;
      try {
        // wait false: the apply outlives this call, so it must not watch a slot that is freed when the call returns
        cancel = this.#cancel.acquire(wait ? signal : undefined);
        applied = await insertPoints(this.#scatter, ds, packed, flat, encoded, cancel.slot, signal, wait).catch((err: unknown) => {
          applied = (err as QuiverError).applied ?? 0;
          throw err;
        });
        return wait ? { inserted: applied } : { inserted: applied, acknowledged: true };
      } finally {
        cancel?.release();
        releaseAdmission();
        if (applied > 0) this.#metrics.inserts.inc({ dataset: ds.name }, applied);
      }
    });
  }

  /**
   * Deletes ids; unknown ids are skipped. Resolves with how many were
   * deleted (with wait false: 0 and acknowledged, before it is applied).
   */
  delete(name: string, ids: IdList, options: WriteOptions = {}): Promise<{ deleted: number; acknowledged?: true }> {
    return this.#intake.run(async () => {
      const ds = await this.#datasets.ready(name);
      const wait = waitOption(options?.wait);
      const deleted = await deletePoints(this.#scatter, ds, packIds(ids, false), wait);
      return wait ? { deleted } : { deleted, acknowledged: true };
    });
  }

  /** Deletes every point a Qdrant filter matches (each shard decides in its log order); resolves as delete does. */
  deleteWhere(name: string, filter: Filter | CompiledFilter, options: WriteOptions = {}): Promise<{ deleted: number; acknowledged?: true }> {
    return this.#intake.run(async () => {
      const ds = await this.#datasets.ready(name);
      const wait = waitOption(options?.wait);
      const deleted = await deleteWhere(this.#scatter, ds, compileFilter(filter), wait);
      return wait ? { deleted } : { deleted, acknowledged: true };
    });
  }

  /**
   * Changes the payloads of the points `select` names ({ ids }, each present, else NOT_FOUND; or { filter }): `update`
   * is { set, key? }, { overwrite }, { deleteKeys } or { clear: true } (docs/api.md). Resolves with how many changed.
   */
  updatePayload(name: string, select: PointSelection, update: PayloadUpdate, options: WriteOptions = {}): Promise<{ updated: number; acknowledged?: true }> {
    return this.#intake.run(async () => {
      const wait = waitOption(options?.wait);
      const updated = await updatePayloads(this.#scatter, await this.#datasets.ready(name), select, update, wait);
      return wait ? { updated } : { updated, acknowledged: true };
    });
  }

  /** An index on payload `field` (a key path) of `type` on every shard; the same again changes nothing (docs/api.md, "Payload indexes"). */
  createPayloadIndex(name: string, field: string, type: PayloadIndexType, options: WriteOptions = {}): Promise<{ acknowledged?: true }> {
    return this.#intake.run(async () =>
      createIndex(this.#scatter, await this.#datasets.ready(name), field, type, waitOption(options?.wait), (bytes) => this.#memory.admit(name, bytes)));
  }

  /** Drops the payload index on `field`; nothing to do when there is none. */
  dropPayloadIndex(name: string, field: string, options: WriteOptions = {}): Promise<{ acknowledged?: true }> {
    return this.#intake.run(async () => dropIndex(this.#scatter, await this.#datasets.ready(name), field, waitOption(options?.wait)));
  }

  /** The dataset's payload indexes, sorted by field; `points`: live points with a value of the index's type there. */
  payloadIndexes(name: string): Promise<PayloadIndexInfo[]> {
    return this.#intake.run(async () => listIndexes(this.#scatter, await this.#datasets.ready(name)));
  }

  /**
   * Checkpoints every shard of a dataset (or of every dataset): its image
   * at its last write replaces the log before it. Nothing to do in memory.
   */
  checkpoint(name?: string): Promise<void> {
    return this.#intake.run(async () => {
      const datasets = name === undefined ? this.#catalog.live() : [await this.#datasets.ready(name)];
      await this.#durable?.checkpoint(datasets);
    });
  }

  /** The stored vectors of ids, in order; undefined where an id is absent. */
  get(name: string, ids: IdList): Promise<(Float32Array | undefined)[]> {
    return this.#intake.run(async () => getVectors(this.#scatter, await this.#datasets.ready(name), packIds(ids, false)));
  }

  /**
   * The stored points of ids that exist, in the order asked: id, and the
   * vector and payload unless turned off.
   */
  retrieve(name: string, ids: IdList, options: ReadOptions = {}): Promise<PointRecord[]> {
    return this.#intake.run(async () => retrievePoints(this.#scatter, await this.#datasets.ready(name), packIds(ids, false), options.withVector ?? true, options.withPayload ?? true));
  }

  /**
   * Pages through a dataset in id order (integer ids ascending, then UUIDs):
   * up to `limit` points from `offset` on (an id; the first page without),
   * and the id the next page starts at, or undefined after the last. A page
   * costs a seek and about limit x shards reads, wherever it starts.
   */
  scroll(name: string, options: ScrollOptions = {}): Promise<ScrollPage> {
    return this.#intake.run(async () => {
      const ds = await this.#datasets.ready(name);
      const limit = intIn(options.limit ?? 10, 'options.limit', 1, MAX_K, invalidArgument);
      const from = options.offset === undefined ? undefined : packIds([options.offset], false);
      const filter = compileOptionalFilter(options.filter, 'options.filter');
      return scrollPage(this.#scatter, ds, from, limit, options.withVector ?? true, options.withPayload ?? true, filter);
    });
  }

  /** Live points of a dataset, or those `options.filter` matches; exact. */
  count(name: string, options: CountOptions = {}): Promise<number> {
    return this.#intake.run(async () => countPoints(this.#scatter, await this.#datasets.ready(name), compileOptionalFilter(options.filter, 'options.filter')));
  }

  /**
   * The k nearest vectors to one query (a Float32Array or number[] of dim),
   * or to each of many (an array of vectors, or a flat Float32Array of n*dim
   * with n > 1): SearchHits, or SearchHits[] for many.
   */
  search(name: string, query: Float32Array | readonly number[], k: number, options?: SearchOptions): Promise<SearchHits>;
  search(name: string, queries: readonly ArrayLike<number>[], k: number, options?: SearchOptions): Promise<SearchHits[]>;
  search(name: string, query: Vector | VectorBatch, k: number, options?: SearchOptions): Promise<SearchHits | SearchHits[]>;
  search(name: string, query: Vector | VectorBatch, k: number, options: SearchOptions = {}): Promise<SearchHits | SearchHits[]> {
    return this.#intake.run(async () => {
      const ds = await this.#datasets.ready(name);
      const single = isSingleQuery(query, ds.dim);
      const { flat, n } = single ? { flat: toQuery(query as Vector, ds.dim), n: 1 } : toQueries(query as VectorBatch, ds.dim);
      const merged = await searchFlat(this.#coalescer, this.#metrics, ds, flat, n, k, options);
      return single ? merged[0]! : merged;
    });
  }

  /** One result per query: an array of vectors, or a flat Float32Array of n x dim. */
  searchBatch(name: string, queries: VectorBatch, k: number, options: SearchOptions = {}): Promise<SearchHits[]> {
    return this.#intake.run(async () => {
      const ds = await this.#datasets.ready(name);
      const { flat, n } = toQueries(queries, ds.dim);
      return searchFlat(this.#coalescer, this.#metrics, ds, flat, n, k, options);
    });
  }

  /**
   * Writes a snapshot of a dataset: one file in snapshotsPath holding its
   * options and every shard's image at that shard's last write.
   */
  createSnapshot(name: string): Promise<SnapshotInfo> {
    return this.#intake.run(async () => this.#snapshots.create(await this.#datasets.ready(name)));
  }

  /** The snapshots of a dataset (which may have been dropped since). */
  listSnapshots(name: string): Promise<SnapshotInfo[]> {
    return this.#intake.run(() => this.#snapshots.list(name));
  }

  /** The file of a snapshot, to download or copy; NOT_FOUND if absent. */
  snapshotPath(name: string, snapshot: string): Promise<string> {
    return this.#intake.run(() => this.#snapshots.path(name, snapshot));
  }

  deleteSnapshot(name: string, snapshot: string): Promise<void> {
    return this.#intake.run(() => this.#snapshots.delete(name, snapshot));
  }

  /**
   * Makes dataset `name` what the snapshot `file` holds (its options and
   * shard count), replacing a dataset of that name. The file is verified
   * first: a damaged one is QUIVER_ERR_CORRUPT and changes nothing.
   */
  recoverSnapshot(name: string, file: string): Promise<DatasetInfo> {
    return this.#intake.run(async () => this.#datasets.info(await this.#snapshots.recover(name, file)));
  }

  /** Compacts every shard of a dataset (repair, renumber, shrink, GC). */
  compact(name: string, options: { signal?: AbortSignal } = {}): Promise<CompactionReport> {
    return this.#intake.run(async () => this.#compactions.dataset(await this.#datasets.ready(name), 'manual', options.signal));
  }

  /**
   * Compacts every shard that has tombstones or qualifies under the
   * compaction policy, then runs a GC in every thread, so what is free goes
   * back to the OS now rather than at the next scheduled pass.
   */
  releaseMemory(): Promise<{ reclaimedBytes: number; rssBefore: number; rssAfter: number }> {
    return this.#intake.run(() => this.#compactions.releaseMemory(this.#catalog, this.#scatter, this.#memory, this.#pool));
  }

  /** Runs the compaction scheduler now (what the background timer does). */
  runCompactionScheduler(): Promise<number> {
    return this.#intake.run(() => this.#memory.runScheduler('auto'));
  }

  stats(): Promise<StoreStats> {
    return this.#intake.run(() => storeStats(this.#catalog, this.#scatter, this.#pool, this.#memory, this.#durable?.dir));
  }

  /**
   * Stops intake (new calls reject with QUIVER_ERR_CLOSED), lets running
   * work finish for up to `timeoutMs`, then stops every thread. Past the
   * timeout the threads are terminated and the report says `forced`.
   * Idempotent.
   */
  close(options: CloseOptions = {}): Promise<CloseReport> {
    if (this.#closing !== undefined) return this.#closing;
    const timeoutMs = options.timeoutMs ?? DEFAULT_CLOSE_MS;
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      return Promise.reject(new RangeError('options.timeoutMs must be a non-negative number'));
    }
    const parts = { intake: this.#intake, memory: this.#memory, durable: this.#durable, catalog: this.#catalog, registry: this.#registry, pool: this.#pool };
    this.#closing = shutdown(parts, timeoutMs, this);
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal test hooks (QUIVER_TEST_HOOKS=1 at open): make a thread hang forever, or die. */
  _testHook(hook: 'hang' | 'exit', thread?: number): Promise<unknown> {
    if (!this.#testHooks) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, 'test hooks are off (open the store with QUIVER_TEST_HOOKS=1)'));
    const t = thread ?? this.#pool.threadIds[0]!;
    // tracked like any call, so close() waits for it (and is forced past a hang)
    return this.#intake.run(() => this.#pool.run(t, { op: hook }));
  }

  /** @internal the thread that owns each shard of a dataset */
  _shardThreads(name: string): number[] {
    return this.#catalog.get(name).shards.map((s) => s.thread);
  }
}
