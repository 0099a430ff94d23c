import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { MAX_DIM, MAX_M, METRIC_NAMES, type MetricName } from '../core/abi.js';
import type { SearchHits } from '../core/shard.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { packIds, unpackId, type Id, type IdList } from '../ids.js';
import type { IndexStats } from '../index-class.js';
import { decodePayload, encodePayloads, type Payload } from '../payload.js';
import { flattenBatch, toQueries, toQuery, type Vector, type VectorBatch } from '../vectors.js';
import { MemoryManager, DEFAULT_TUNER, type ShardEntry, type TunerOptions, type Trigger } from '../memory/manager.js';
import { needsCompaction, resolvePolicy, type CompactionPolicy } from '../memory/policy.js';
import { createMetrics, removeMetrics, processMetrics, Registry, type Metrics } from '../metrics.js';
import { CancelSlots } from './cancel.js';
import { ThreadPool } from './pool.js';
import {
  ID_WORDS, type CompactResult, type GetResult, type InsertResult, type Reply, type SearchResult, type ShardKey, type Task,
} from './protocol.js';
import { shardOf } from './routing.js';

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
  tuner?: Partial<Omit<TunerOptions, 'maxMemoryBytes' | 'evictionPolicy' | 'compactionIntervalMs'>>;
}

export interface DatasetOptions {
  dim: number;
  metric?: MetricName;
  M?: number;
  efConstruction?: number;
  ef?: number;
  /** Shards, each one WASM memory on one thread. Default: the thread count. */
  shards?: number;
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
}

export interface SearchOptions {
  ef?: number;
  signal?: AbortSignal;
  /** Also return each hit's payload (`payloads`, parallel to `ids`). */
  withPayload?: boolean;
}

export interface PointRecord {
  id: Id;
  vector?: Float32Array;
  payload?: unknown;
}

export interface CloseOptions {
  /** How long running work may take before threads are terminated. Default 30 s. */
  timeoutMs?: number;
}

export interface CloseReport {
  forced: boolean;
  durationMs: number;
}

export interface CompactionReport {
  committedBefore: number;
  committedAfter: number;
  reclaimedBytes: number;
  removedTombstones: number;
}

export interface StoreStats {
  threads: number;
  rssBytes: number;
  heapUsedBytes: number;
  datasets: (DatasetInfo & { shardStats: IndexStats[] })[];
  tuner: { rssBytes: number; heapBytes: number; arenaBytes: number; reclaimableBytes: number; pressure: boolean; limitBytes: number };
}

interface ShardRef {
  key: ShardKey;
  thread: number;
}

interface SearchBatch {
  ds: Dataset;
  k: number;
  ef: number;
  withPayload: boolean;
  n: number;
  parts: Float32Array[];
  waiters: { offset: number; n: number; resolve: (hits: SearchHits[]) => void; reject: (err: unknown) => void }[];
}

interface Dataset {
  name: string;
  dim: number;
  metric: MetricName;
  M: number;
  efConstruction: number;
  ef: number;
  shards: ShardRef[];
  lost: boolean;
  lastUsed: number;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const MAX_K = 100_000;
const DEFAULT_CLOSE_MS = 30_000;
/** Queries one coalesced search task may carry. */
const MAX_BATCH_QUERIES = 256;

function invalid(message: string): QuiverError {
  return new QuiverError(ErrorCode.INVALID_ARGUMENT, message);
}

function intIn(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max} (got ${String(value)})`);
  }
  return value;
}

/** The packed ids at `rows`, as a new buffer that can be transferred. */
function pick(packed: Uint32Array, rows: number[]): Uint32Array {
  const out = new Uint32Array(rows.length * ID_WORDS);
  rows.forEach((row, j) => out.set(packed.subarray(row * ID_WORDS, (row + 1) * ID_WORDS), j * ID_WORDS));
  return out;
}

function unwrap<T>(reply: Reply<T>): T {
  if (reply.ok) return reply.value;
  throw new QuiverError(reply.code as ErrorCode, reply.message, reply.applied === undefined ? {} : { applied: reply.applied });
}

function abortError(signal: AbortSignal, applied?: number): QuiverError {
  return new QuiverError(ErrorCode.ABORTED, 'the operation was aborted', { cause: signal.reason, ...(applied === undefined ? {} : { applied }) });
}

/**
 * A vector store: named datasets, each split into shards by a hash of the
 * id; every shard is one WASM instance owned by one worker thread. Searches
 * scatter to every shard in parallel and merge the top k. Every method is
 * async and rejects with a coded QuiverError; bad input changes nothing.
 */
export class Store extends EventEmitter {
  readonly #pool: ThreadPool;
  readonly #cancel: CancelSlots;
  readonly #datasets = new Map<string, Dataset>();
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #searchBatches = new Map<string, SearchBatch>();
  readonly #registry: Registry;
  readonly #policy: CompactionPolicy;
  readonly #metrics: Metrics;
  readonly #memory: MemoryManager;
  #nextDataset = 1;
  #nextThread = 0;
  #closing: Promise<CloseReport> | undefined;

  private constructor(pool: ThreadPool, cancel: CancelSlots, registry: Registry, policy: CompactionPolicy, tuner: TunerOptions) {
    super();
    this.#pool = pool;
    this.#cancel = cancel;
    this.#registry = registry;
    this.#policy = policy;
    pool.on('threadLost', (threadId: number) => this.#onThreadLost(threadId));
    this.#metrics = createMetrics(registry, {
      shards: () => this.#shardEntries().then((all) => all.map((e) => ({ dataset: e.dataset, shard: e.shard, ...e.figures }))),
      threads: () => this.#pool.size,
      tuner: () => ({ ...this.#memory.last, limitBytes: this.#memory.limitBytes }),
    });
    this.#memory = new MemoryManager({
      shards: () => this.#shardEntries(),
      compactShard: (dataset, shard, trigger, signal) => this.#compactShard(this.#dataset(dataset), shard, trigger, signal),
      lruDatasets: () => [...this.#datasets.values()].filter((d) => !d.lost).sort((a, b) => a.lastUsed - b.lastUsed)
        .map((d) => ({ name: d.name, committedBytes: this.#committedEstimate.get(d.name) ?? 0 })),
      evict: async (dataset) => {
        const freed = await this.#drop(dataset);
        this.emit('eviction', { dataset, freedBytes: freed });
        return freed;
      },
      emit: (event, payload) => {
        if (event !== 'error' || this.listenerCount('error') > 0) this.emit(event, payload);
      },
    }, policy, tuner, this.#metrics);
  }

  static async open(options: StoreOptions = {}): Promise<Store> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new RangeError(`options.threads must be an integer from 1 to 256 (got ${String(threads)})`);
    }
    const policy = resolvePolicy(options.compaction ?? {});
    const intervalMs = options.compaction?.intervalMs ?? DEFAULT_TUNER.compactionIntervalMs;
    if (!(intervalMs >= 0)) throw new RangeError('options.compaction.intervalMs must be a non-negative number');
    const max = options.maxMemoryBytes;
    if (max !== undefined && !(Number.isFinite(max) && max > 0)) throw new RangeError('options.maxMemoryBytes must be a positive number');
    const eviction = options.evictionPolicy ?? 'reject';
    if (eviction !== 'reject' && eviction !== 'lru') throw new RangeError("options.evictionPolicy must be 'reject' or 'lru'");
    const tuner: TunerOptions = { ...DEFAULT_TUNER, ...options.tuner, compactionIntervalMs: intervalMs, evictionPolicy: eviction };
    if (max !== undefined) tuner.maxMemoryBytes = max;
    const registry = options.registry ?? new Registry();
    if (!(registry instanceof Registry)) throw new TypeError('options.registry must be a prom-client Registry');
    if (registry.getSingleMetric('quiver_arena_memory_bytes') !== undefined) {
      throw new TypeError('options.registry already holds quiver metrics: another open Store uses it');
    }
    const cancel = new CancelSlots();
    const pool = new ThreadPool(threads, cancel.buffer);
    await pool.ready(threads);
    try {
      return new Store(pool, cancel, registry, policy, tuner);
    } catch (err) {
      await pool.destroy();
      throw err;
    }
  }

  /** The prom-client Registry quiver's metrics live on. */
  get registry(): Registry {
    return this.#registry;
  }

  /**
   * Prometheus exposition text: the store's registry, plus Node's process
   * metrics (from one process-wide registry) unless the store's registry
   * has them already.
   */
  async metrics(): Promise<string> {
    const own = await this.#registry.metrics();
    if (this.#registry.getSingleMetric('process_cpu_user_seconds_total') !== undefined) return own;
    return `${own}\n${await processMetrics().metrics()}`;
  }

  /** Last committed bytes seen per dataset (for eviction's arithmetic). */
  readonly #committedEstimate = new Map<string, number>();

  async #shardEntries(): Promise<ShardEntry[]> {
    const live = [...this.#datasets.values()].filter((d) => !d.lost);
    const perDataset = await Promise.all(live.map(async (ds) => {
      const stats = await this.#shardStats(ds).catch(() => [] as IndexStats[]);
      this.#committedEstimate.set(ds.name, stats.reduce((a, s) => a + s.committedBytes, 0));
      return stats.map((s, i): ShardEntry => ({ dataset: ds.name, shard: i, thread: ds.shards[i]!.thread, figures: s }));
    }));
    return perDataset.flat();
  }

  /** One shard's compaction, counted and reported whatever its trigger. */
  async #compactShard(ds: Dataset, shard: number, trigger: Trigger, signal?: AbortSignal): Promise<CompactResult> {
    const ref = ds.shards[shard]!;
    const cancel = this.#cancel.acquire(signal);
    const started = performance.now();
    let result: 'ok' | 'aborted' | 'error' = 'error';
    try {
      const r = await this.#run<CompactResult>(ref, { op: 'compact', shard: ref.key, cancel: cancel.slot });
      result = 'ok';
      const reclaimed = Math.max(0, r.committedBefore - r.committedAfter);
      this.#metrics.compaction.reclaimed.inc(reclaimed);
      this.emit('compaction', { dataset: ds.name, shard, trigger, result, reclaimedBytes: reclaimed, durationMs: performance.now() - started });
      return r;
    } catch (err) {
      if ((err as QuiverError).code === ErrorCode.ABORTED) result = 'aborted';
      this.emit('compaction', { dataset: ds.name, shard, trigger, result, reclaimedBytes: 0, durationMs: performance.now() - started });
      throw err;
    } finally {
      cancel.release();
      this.#metrics.compaction.events.inc({ dataset: ds.name, trigger, result });
      this.#metrics.compaction.duration.observe((performance.now() - started) / 1000);
    }
  }

  /** Worker threads alive now. */
  get threads(): number {
    return this.#pool.size;
  }

  #onThreadLost(threadId: number): void {
    const hit: string[] = [];
    for (const ds of this.#datasets.values()) {
      if (ds.shards.some((s) => s.thread === threadId)) {
        ds.lost = true;
        hit.push(ds.name);
      }
    }
    const err = new QuiverError(ErrorCode.WORKER_LOST, `worker thread ${threadId} died; lost datasets: ${hit.join(', ') || 'none'}`);
    // an 'error' event with no listener would throw; the coded error reaches
    // callers anyway on their next call to a lost dataset
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Runs an operation unless the store is closing, and tracks it for close(). */
  #op<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) return Promise.reject(new QuiverError(ErrorCode.CLOSED, 'the store is closed'));
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      return Promise.reject(err);
    }
    this.#inflight.add(p);
    const done = (): void => {
      this.#inflight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  #dataset(name: string): Dataset {
    if (typeof name !== 'string') throw invalid('dataset name must be a string');
    const ds = this.#datasets.get(name);
    if (ds === undefined) throw new QuiverError(ErrorCode.NOT_FOUND, `no dataset named ${JSON.stringify(name)}`);
    if (ds.lost) throw new QuiverError(ErrorCode.WORKER_LOST, `dataset ${JSON.stringify(name)} was lost with its worker thread`);
    ds.lastUsed = performance.now();
    return ds;
  }

  async #run<T>(ref: ShardRef, task: Task, transfer: Transferable[] = []): Promise<T> {
    try {
      return unwrap(await this.#pool.run<T>(ref.thread, task, transfer));
    } catch (err) {
      if (err instanceof QuiverError) throw err;
      if (this.#closing !== undefined) {
        // a forced close terminated the thread under this call
        throw new QuiverError(ErrorCode.CLOSED, 'the store closed before this call finished', { cause: err });
      }
      if ((err as { threadLost?: number }).threadLost !== undefined) {
        throw new QuiverError(ErrorCode.WORKER_LOST, 'the worker thread that owns this shard was lost', { cause: err });
      }
      throw new QuiverError(ErrorCode.CORE_TRAP, `the worker failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  createDataset(name: string, options: DatasetOptions): Promise<DatasetInfo> {
    return this.#op(async () => {
      if (typeof name !== 'string' || !NAME_RE.test(name)) {
        throw invalid(`dataset name must be 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit (got ${JSON.stringify(name)})`);
      }
      if (options === null || typeof options !== 'object') throw invalid('dataset options must be an object');
      if (this.#datasets.has(name)) throw new QuiverError(ErrorCode.EXISTS, `dataset ${JSON.stringify(name)} already exists`);
      const dim = intIn(options.dim, 'options.dim', 1, MAX_DIM);
      const metric = options.metric ?? 'l2';
      if (!METRIC_NAMES.includes(metric)) throw invalid(`options.metric must be one of ${METRIC_NAMES.join(', ')}`);
      const M = intIn(options.M ?? 16, 'options.M', 2, MAX_M);
      const efConstruction = intIn(options.efConstruction ?? 200, 'options.efConstruction', 1, 100_000);
      const ef = intIn(options.ef ?? 64, 'options.ef', 1, MAX_K);
      const threads = this.#pool.threadIds;
      const shardCount = intIn(options.shards ?? threads.length, 'options.shards', 1, 1024);
      const id = this.#nextDataset++;
      const shards: ShardRef[] = [];
      for (let i = 0; i < shardCount; i++) {
        shards.push({ key: `${id}:${i}`, thread: threads[(this.#nextThread + i) % threads.length]! });
      }
      this.#nextThread = (this.#nextThread + shardCount) % Math.max(1, threads.length);
      const ds: Dataset = { name, dim, metric, M, efConstruction, ef, shards, lost: false, lastUsed: performance.now() };
      // reserve the name before the first await: a concurrent create of the
      // same name gets EXISTS
      this.#datasets.set(name, ds);
      try {
        await Promise.all(shards.map((s) => this.#run(s, { op: 'create', shard: s.key, params: { dim, metric, M, efConstruction, ef, seed: BigInt(id) } })));
      } catch (err) {
        this.#datasets.delete(name);
        await this.#dropShards(shards).catch(() => {});
        throw err;
      }
      return this.#info(ds);
    });
  }

  listDatasets(): string[] {
    return [...this.#datasets.keys()];
  }

  datasetInfo(name: string): Promise<DatasetInfo> {
    return this.#op(async () => this.#info(this.#dataset(name)));
  }

  async #shardStats(ds: Dataset): Promise<IndexStats[]> {
    return Promise.all(ds.shards.map((s) => this.#run<IndexStats>(s, { op: 'stats', shard: s.key })));
  }

  async #info(ds: Dataset, known?: IndexStats[]): Promise<DatasetInfo> {
    const stats = known ?? await this.#shardStats(ds);
    const sum = (f: (s: IndexStats) => number): number => stats.reduce((a, s) => a + f(s), 0);
    return {
      name: ds.name, dim: ds.dim, metric: ds.metric, M: ds.M, efConstruction: ds.efConstruction, ef: ds.ef,
      shards: ds.shards.length,
      count: sum((s) => s.liveNodes),
      deleted: sum((s) => s.deletedNodes),
      committedBytes: sum((s) => s.committedBytes),
      liveBytes: sum((s) => s.liveBytes),
    };
  }

  async #dropShards(shards: ShardRef[]): Promise<void> {
    const byThread = new Map<number, ShardKey[]>();
    for (const s of shards) byThread.set(s.thread, [...(byThread.get(s.thread) ?? []), s.key]);
    await Promise.all([...byThread].map(([thread, keys]) =>
      this.#pool.run(thread, { op: 'drop', shards: keys }).catch(() => undefined)));
  }

  /** Drops a dataset; its memory goes back to the OS (each owning thread runs a GC). */
  dropDataset(name: string): Promise<void> {
    return this.#op(async () => {
      if (typeof name !== 'string') throw invalid('dataset name must be a string');
      if (!this.#datasets.has(name)) throw new QuiverError(ErrorCode.NOT_FOUND, `no dataset named ${JSON.stringify(name)}`);
      await this.#drop(name);
    });
  }

  /** Drops a dataset; resolves with the committed bytes its shards held. */
  async #drop(name: string): Promise<number> {
    const ds = this.#datasets.get(name);
    if (ds === undefined) return 0;
    const committed = ds.lost ? 0 : (await this.#shardStats(ds).catch(() => [] as IndexStats[])).reduce((a, s) => a + s.committedBytes, 0);
    this.#datasets.delete(name);
    this.#committedEstimate.delete(name);
    await this.#dropShards(ds.shards);
    this.#metrics.compaction.reclaimed.inc(committed);
    return committed;
  }

  /** Groups ids (and their positions) by shard. */
  #route(ds: Dataset, packed: Uint32Array): Map<number, number[]> {
    const groups = new Map<number, number[]>();
    for (let i = 0; i < packed.length / ID_WORDS; i++) {
      const s = shardOf(packed, i, ds.shards.length);
      let g = groups.get(s);
      if (g === undefined) groups.set(s, (g = []));
      g.push(i);
    }
    return groups;
  }

  /**
   * Inserts (upserts) vectors. With a signal, an abort stops every shard
   * between steps; the rejection's `applied` says how many vectors went in
   * (they are searchable; none is half-inserted).
   */
  insert(name: string, ids: IdList, vectors: VectorBatch, options: { signal?: AbortSignal; payloads?: readonly Payload[] } = {}): Promise<{ inserted: number }> {
    return this.#op(async () => {
      const ds = this.#dataset(name);
      const packed = packIds(ids, true);
      const flat = flattenBatch(vectors, packed.length / ID_WORDS, ds.dim);
      const encoded = encodePayloads(options.payloads, packed.length / ID_WORDS);
      const signal = options.signal;
      if (signal?.aborted) throw abortError(signal, 0);
      const n = packed.length / ID_WORDS;
      // about what the shards will touch: node records plus id map and links
      const payloadBytes = encoded?.reduce((a, p) => a + (p?.byteLength ?? 0), 0) ?? 0;
      const releaseAdmission = await this.#memory.admit(ds.name, n * (8 * ds.M + 4 * ds.dim + 24 + 48) + payloadBytes);
      const cancel = this.#cancel.acquire(signal);
      let applied = 0;
      try {
        const results = await Promise.allSettled([...this.#route(ds, packed)].map(([s, rows]) => {
          const part = new Float32Array(rows.length * ds.dim);
          rows.forEach((row, j) => part.set(flat.subarray(row * ds.dim, (row + 1) * ds.dim), j * ds.dim));
          const partIds = pick(packed, rows);
          const ref = ds.shards[s]!;
          const task: Task = { op: 'insert', shard: ref.key, ids: partIds, vectors: part, cancel: cancel.slot };
          if (encoded !== undefined) task.payloads = rows.map((r) => encoded[r]);
          return this.#run<InsertResult>(ref, task, [part.buffer, partIds.buffer]);
        }));
        let failure: unknown;
        for (const r of results) {
          if (r.status === 'fulfilled') applied += r.value.applied;
          else {
            applied += (r.reason as QuiverError).applied ?? 0;
            failure ??= r.reason;
          }
        }
        if (failure !== undefined) {
          if (signal?.aborted) throw abortError(signal, applied);
          const err = failure as QuiverError;
          throw err instanceof QuiverError ? new QuiverError(err.code, err.message, { applied, cause: err.cause }) : err;
        }
        return { inserted: applied };
      } finally {
        cancel.release();
        releaseAdmission();
        if (applied > 0) this.#metrics.inserts.inc({ dataset: ds.name }, applied);
      }
    });
  }

  /** Deletes ids; unknown ids are skipped. Resolves with how many were deleted. */
  delete(name: string, ids: IdList): Promise<{ deleted: number }> {
    return this.#op(async () => {
      const ds = this.#dataset(name);
      const packed = packIds(ids, false);
      const counts = await Promise.all([...this.#route(ds, packed)].map(([s, rows]) => {
        const ref = ds.shards[s]!;
        const part = pick(packed, rows);
        return this.#run<number>(ref, { op: 'delete', shard: ref.key, ids: part }, [part.buffer]);
      }));
      return { deleted: counts.reduce((a, b) => a + b, 0) };
    });
  }

  /** The stored vectors of ids, in order; undefined where an id is absent. */
  get(name: string, ids: IdList): Promise<(Float32Array | undefined)[]> {
    return this.#op(async () => {
      const ds = this.#dataset(name);
      const packed = packIds(ids, false);
      const out: (Float32Array | undefined)[] = new Array(packed.length / ID_WORDS).fill(undefined);
      await Promise.all([...this.#route(ds, packed)].map(async ([s, rows]) => {
        const ref = ds.shards[s]!;
        const part = pick(packed, rows);
        const got = await this.#run<GetResult>(ref, { op: 'get', shard: ref.key, ids: part }, [part.buffer]);
        rows.forEach((row, j) => {
          if (got.found[j] === 1) out[row] = got.vectors.slice(j * ds.dim, (j + 1) * ds.dim);
        });
      }));
      return out;
    });
  }

  /**
   * The stored points of ids that exist, in the order asked: id, and the
   * vector and payload unless turned off.
   */
  retrieve(name: string, ids: IdList, options: { withVector?: boolean; withPayload?: boolean } = {}): Promise<PointRecord[]> {
    return this.#op(async () => {
      const ds = this.#dataset(name);
      const packed = packIds(ids, false);
      const withVector = options.withVector ?? true;
      const withPayload = options.withPayload ?? true;
      const found: (PointRecord | undefined)[] = new Array(packed.length / ID_WORDS);
      await Promise.all([...this.#route(ds, packed)].map(async ([s, rows]) => {
        const ref = ds.shards[s]!;
        const part = pick(packed, rows);
        const got = await this.#run<GetResult>(ref, { op: 'get', shard: ref.key, ids: part, withPayload }, [part.buffer]);
        rows.forEach((row, j) => {
          if (got.found[j] !== 1) return;
          const rec: PointRecord = { id: unpackId(packed, row * ID_WORDS, packed[row * ID_WORDS + 4] === 1) };
          if (withVector) rec.vector = got.vectors.slice(j * ds.dim, (j + 1) * ds.dim);
          if (withPayload) rec.payload = decodePayload(got.payloads?.[j]);
          found[row] = rec;
        });
      }));
      // an id asked twice comes back once
      const seen = new Set<string>();
      return found.filter((r): r is PointRecord => {
        if (r === undefined) return false;
        const key = typeof r.id === 'string' ? r.id : `#${String(r.id)}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
    });
  }

  /**
   * Pages through a dataset in id order (integer ids ascending, then UUIDs):
   * up to `limit` points from `offset` on (an id; the first page without),
   * and the id the next page starts at, or undefined after the last.
   */
  scroll(name: string, options: { offset?: Id; limit?: number; withVector?: boolean; withPayload?: boolean } = {}): Promise<{ points: PointRecord[]; nextOffset: Id | undefined }> {
    return this.#op(async () => {
      const ds = this.#dataset(name);
      const limit = intIn(options.limit ?? 10, 'options.limit', 1, MAX_K);
      const start = options.offset === undefined ? undefined : packIds([options.offset], false);
      const all = await Promise.all(ds.shards.map((ref) => this.#run<Uint32Array>(ref, { op: 'ids', shard: ref.key })));
      const rows: Uint32Array[] = [];
      for (const part of all) for (let i = 0; i < part.length; i += ID_WORDS) rows.push(part.subarray(i, i + ID_WORDS));
      rows.sort(compareIds);
      let from = 0;
      if (start !== undefined) {
        while (from < rows.length && compareIds(rows[from]!, start) < 0) from++;
      }
      const page = rows.slice(from, from + limit);
      const next = rows[from + limit];
      const pageIds = page.map((w) => unpackId(w, 0, w[4] === 1));
      const points = pageIds.length === 0 ? [] : await this.retrieve(name, pageIds, options);
      return { points, nextOffset: next === undefined ? undefined : unpackId(next, 0, next[4] === 1) };
    });
  }

  count(name: string): Promise<number> {
    return this.#op(async () => (await this.#info(this.#dataset(name))).count);
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
    return this.#op(async () => {
      const ds = this.#dataset(name);
      const single = isSingle(query, ds.dim);
      const { flat, n } = single ? { flat: toQuery(query as Vector, ds.dim), n: 1 } : toQueries(query as VectorBatch, ds.dim);
      const merged = await this.#searchFlat(ds, flat, n, k, options);
      return single ? merged[0]! : merged;
    });
  }

  /** One result per query: an array of vectors, or a flat Float32Array of n x dim. */
  searchBatch(name: string, queries: VectorBatch, k: number, options: SearchOptions = {}): Promise<SearchHits[]> {
    return this.#op(async () => {
      const ds = this.#dataset(name);
      const { flat, n } = toQueries(queries, ds.dim);
      return this.#searchFlat(ds, flat, n, k, options);
    });
  }

  /** The shared body of search and searchBatch, over validated queries. */
  async #searchFlat(ds: Dataset, flat: Float32Array, n: number, k: number, options: SearchOptions): Promise<SearchHits[]> {
    const kk = intIn(k, 'k', 1, MAX_K);
    const ef = intIn(options.ef ?? ds.ef, 'options.ef', 1, MAX_K);
    const signal = options.signal;
    if (signal?.aborted) throw abortError(signal);
    const stopTimer = this.#metrics.search.duration.startTimer({ dataset: ds.name });
    const merged = await this.#coalesce(ds, flat, n, kk, ef, options.withPayload === true);
    stopTimer();
    if (signal?.aborted) throw abortError(signal);
    return merged;
  }

  /**
   * Searches arriving in the same turn of the event loop for the same
   * dataset, k and ef travel together: one task per shard for the whole
   * batch. Under concurrent load this is what keeps the main thread from
   * being the bottleneck (a message per query per shard costs more than a
   * small search).
   */
  #coalesce(ds: Dataset, flat: Float32Array, n: number, k: number, ef: number, withPayload: boolean): Promise<SearchHits[]> {
    const key = `${ds.shards[0]!.key}/${k}/${ef}/${withPayload}`; // the shard key names this dataset instance
    let batch = this.#searchBatches.get(key);
    if (batch === undefined || batch.n + n > MAX_BATCH_QUERIES) {
      batch = { ds, k, ef, withPayload, n: 0, parts: [], waiters: [] };
      this.#searchBatches.set(key, batch);
      const b = batch;
      setImmediate(() => {
        if (this.#searchBatches.get(key) === b) this.#searchBatches.delete(key);
        void this.#flush(b);
      });
    }
    const offset = batch.n;
    batch.parts.push(flat);
    batch.n += n;
    return new Promise((resolve, reject) => batch.waiters.push({ offset, n, resolve, reject }));
  }

  async #flush(batch: SearchBatch): Promise<void> {
    const { ds, k, ef, n, withPayload } = batch;
    try {
      // one shared copy of the queries serves every shard
      const shared = new Float32Array(new SharedArrayBuffer(n * ds.dim * 4));
      let at = 0;
      for (const part of batch.parts) {
        shared.set(part, at);
        at += part.length;
      }
      const parts = await Promise.all(ds.shards.map((ref) =>
        this.#run<SearchResult>(ref, { op: 'search', shard: ref.key, queries: shared, n, k, ef, withPayload })));
      for (const w of batch.waiters) {
        w.resolve(Array.from({ length: w.n }, (_, q) => mergeTopK(parts, w.offset + q, k, withPayload)));
      }
    } catch (err) {
      for (const w of batch.waiters) w.reject(err);
    }
  }

  /** Compacts every shard of a dataset (repair, renumber, shrink, GC). */
  compact(name: string, options: { signal?: AbortSignal } = {}): Promise<CompactionReport> {
    return this.#op(async () => this.#compactDataset(this.#dataset(name), 'manual', options.signal));
  }

  async #compactDataset(ds: Dataset, trigger: Trigger, signal?: AbortSignal): Promise<CompactionReport> {
    if (signal?.aborted) throw abortError(signal);
    const results = await Promise.allSettled(ds.shards.map((_, i) => this.#compactShard(ds, i, trigger, signal)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      if (signal?.aborted) throw abortError(signal);
      throw (failed as PromiseRejectedResult).reason;
    }
    const ok = results.map((r) => (r as PromiseFulfilledResult<CompactResult>).value);
    const before = ok.reduce((a, r) => a + r.committedBefore, 0);
    const after = ok.reduce((a, r) => a + r.committedAfter, 0);
    return { committedBefore: before, committedAfter: after, reclaimedBytes: before - after, removedTombstones: ok.reduce((a, r) => a + r.removedTombstones, 0) };
  }

  /**
   * Compacts every shard that has tombstones or qualifies under the
   * compaction policy, then runs a GC in every thread, so what is free goes
   * back to the OS now rather than at the next scheduled pass.
   */
  releaseMemory(): Promise<{ reclaimedBytes: number; rssBefore: number; rssAfter: number }> {
    return this.#op(async () => {
      const rssBefore = process.memoryUsage.rss();
      let reclaimedBytes = 0;
      const due = (await this.#shardEntries()).filter((e) =>
        e.figures.deletedNodes > 0 || needsCompaction(e.figures, this.#policy) !== undefined);
      for (const e of due) {
        const ds = this.#datasets.get(e.dataset);
        if (ds === undefined || ds.lost) continue;
        const r = await this.#compactShard(ds, e.shard, 'manual');
        reclaimedBytes += Math.max(0, r.committedBefore - r.committedAfter);
      }
      await Promise.all(this.#pool.threadIds.map((t) => this.#pool.run(t, { op: 'gc' })));
      return { reclaimedBytes, rssBefore, rssAfter: process.memoryUsage.rss() };
    });
  }

  /** Runs the compaction scheduler now (what the background timer does). */
  runCompactionScheduler(): Promise<number> {
    return this.#op(() => this.#memory.runScheduler('auto'));
  }

  stats(): Promise<StoreStats> {
    return this.#op(async () => {
      const datasets = await Promise.all([...this.#datasets.values()].filter((d) => !d.lost).map(async (ds) => {
        // one read of the shards: the totals and the per-shard figures agree
        const shardStats = await this.#shardStats(ds);
        return { ...(await this.#info(ds, shardStats)), shardStats };
      }));
      const mem = process.memoryUsage();
      const arenaBytes = datasets.reduce((a, d) => a + d.committedBytes, 0);
      const reclaimableBytes = datasets.reduce((a, d) => a + d.shardStats.reduce((b, s) => b + s.reclaimableBytes, 0), 0);
      return {
        threads: this.#pool.size, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, datasets,
        // the tuner's pressure and limit, with this call's fresh byte counts
        tuner: { ...this.#memory.last, rssBytes: mem.rss, heapBytes: mem.heapUsed, arenaBytes, reclaimableBytes, limitBytes: this.#memory.limitBytes },
      };
    });
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
    const started = performance.now();
    this.#closing = (async () => {
      // timers stop and scheduled compactions are cancelled at once
      const managerStopped = this.#memory.stop();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled([...this.#inflight]).then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      // the manager's own calls (a tuner sample, a scheduled compaction)
      // count too, within what is left of the timeout
      let forced = timedOut;
      if (!forced) {
        const left = Math.max(0, timeoutMs - (performance.now() - started));
        forced = await Promise.race([
          managerStopped.then(() => false),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(true), left);
          }),
        ]);
        clearTimeout(timer);
      }
      this.#datasets.clear();
      removeMetrics(this.#registry);
      await this.#pool.destroy();
      return { forced, durationMs: performance.now() - started };
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal test hooks: make a thread hang forever, or die. */
  _testHook(hook: 'hang' | 'exit', thread?: number): Promise<unknown> {
    const t = thread ?? this.#pool.threadIds[0]!;
    // tracked like any call, so close() waits for it (and is forced past a hang)
    return this.#op(() => this.#pool.run(t, { op: hook }));
  }

  /** @internal the thread that owns each shard of a dataset */
  _shardThreads(name: string): number[] {
    return this.#dataset(name).shards.map((s) => s.thread);
  }
}

function isSingle(query: unknown, dim: number): boolean {
  if (query instanceof Float32Array) return query.length === dim;
  if (Array.isArray(query)) return query.length === 0 || typeof query[0] === 'number';
  return true;
}

/** Orders packed ids: integers ascending, then UUIDs by their bytes. */
function compareIds(a: Uint32Array, b: Uint32Array): number {
  if (a[4] !== b[4]) return a[4]! - b[4]!;
  if (a[4] === 0) return a[1]! - b[1]! || a[0]! - b[0]!;
  for (let w = 0; w < 4; w++) {
    // text order of a UUID is its bytes in order: compare word bytes low first
    for (let byte = 0; byte < 32; byte += 8) {
      const d = ((a[w]! >>> byte) & 0xff) - ((b[w]! >>> byte) & 0xff);
      if (d !== 0) return d;
    }
  }
  return 0;
}

/** Merges every shard's hits for query q into the global top k. */
function mergeTopK(parts: SearchResult[], q: number, k: number, withPayload = false): SearchHits {
  const all: { d: number; part: number; at: number }[] = [];
  parts.forEach((p, part) => {
    for (let i = 0; i < p.counts[q]!; i++) all.push({ d: p.distances[q * k + i]!, part, at: q * k + i });
  });
  all.sort((a, b) => a.d - b.d);
  const top = all.slice(0, k);
  return {
    ids: top.map((h): Id => {
      const ids = parts[h.part]!.ids;
      return unpackId(ids, h.at * ID_WORDS, ids[h.at * ID_WORDS + 4] === 1);
    }),
    distances: Float32Array.from(top, (h) => h.d),
    ...(withPayload ? { payloads: top.map((h) => decodePayload(parts[h.part]!.payloads?.[h.at])) } : {}),
  };
}
