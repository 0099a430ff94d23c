/**
 * The Store's parts, and how they are started and wired (shut down:
 * shutdown.ts). Started: the options checked, the data directory locked,
 * the worker threads ready. Wired: the memory manager reads the shards' figures, compacts through
 * Compactions and evicts through Datasets; Snapshots admit through the
 * manager; the metrics read the shards at scrape time; events and a lost
 * thread's error reach the Store's listeners. The Store (store.ts) is the
 * facade over them.
 */
import type { EventEmitter } from 'node:events';
import { MemoryManager, type TunerOptions } from '../memory/manager.js';
import type { CompactionPolicy } from '../memory/policy.js';
import { createMetrics, type Metrics, type Registry } from '../metrics.js';
import { storeSettings } from '../options.js';
import { CancelSlots } from './cancel.js';
import { Catalog } from './catalog.js';
import { SearchCoalescer } from './coalescer.js';
import { Compactions } from './compactions.js';
import { Datasets } from './datasets.js';
import { DataDir, Durable } from './durable.js';
import { Intake } from './intake.js';
import { ThreadPool } from './pool.js';
import type { SearchResult } from './protocol.js';
import { Scatter } from './scatter.js';
import { releaseStore } from './shutdown.js';
import { Snapshots, snapshotsDir } from './snapshots.js';
import { shardEntries } from './store-stats.js';
import type { StoreOptions } from './types.js';

/** What a Store starts from: its checked options, its data directory (durable), its threads. */
export interface StoreBase {
  pool: ThreadPool;
  cancel: CancelSlots;
  registry: Registry;
  policy: CompactionPolicy;
  tuner: TunerOptions;
  testHooks: boolean;
  dir: DataDir | undefined;
  snapshotsPath: string;
}

export interface StoreParts extends StoreBase {
  catalog: Catalog;
  intake: Intake;
  metrics: Metrics;
  memory: MemoryManager;
  scatter: Scatter;
  coalescer: SearchCoalescer;
  compactions: Compactions;
  datasets: Datasets;
  durable: Durable | undefined;
  snapshots: Snapshots;
}

/**
 * Checks the options, takes the data directory (durable) and starts the
 * threads. QUIVER_TEST_HOOKS=1 in the environment (and only that) turns the
 * test hooks on.
 */
export async function startStore(options: StoreOptions): Promise<StoreBase> {
  const { threads, policy, tuner, registry, durability } = storeSettings(options);
  const snapshotsPath = snapshotsDir(options);
  const testHooks = process.env.QUIVER_TEST_HOOKS === '1';
  const dir = durability === undefined ? undefined : await DataDir.open(durability.path, durability);
  const cancel = new CancelSlots();
  const pool = new ThreadPool(threads, cancel.buffer, testHooks);
  const base: StoreBase = { pool, cancel, registry, policy, tuner, testHooks, dir, snapshotsPath };
  try {
    await pool.ready(threads);
  } catch (err) {
    await releaseStore(base);
    throw err;
  }
  return base;
}

/** Starts a Store's base, then builds on it (`build`); if building fails, what was started is released. */
export async function openStore<T>(options: StoreOptions, build: (base: StoreBase) => Promise<T>): Promise<T> {
  const base = await startStore(options);
  try {
    return await build(base);
  } catch (err) {
    await releaseStore(base);
    throw err;
  }
}

/** The parts over a started base, wired to each other and to the Store's events. */
export function wireStore(base: StoreBase, events: EventEmitter): StoreParts {
  const { pool, cancel, registry, policy, tuner, dir, snapshotsPath } = base;
  const catalog = new Catalog();
  const intake = new Intake();
  const scatter = new Scatter(pool, () => intake.closed);
  const coalescer = new SearchCoalescer((ref, task) => scatter.run<SearchResult>(ref, task));
  const durable = dir === undefined ? undefined : new Durable(dir, catalog, scatter, pool);
  const snapshots = new Snapshots(snapshotsPath, scatter, {
    catalog, durable, threads: () => pool.threadIds, forget: (name) => memory.forget(name),
    admit: (name, bytes) => memory.admit(name, bytes),
  });
  pool.on('threadLost', (threadId: number) => {
    if (intake.closed) return;
    const err = datasets.threadLost(threadId);
    // an 'error' event with no listener would throw; the coded error reaches
    // callers anyway on their next call to a lost dataset
    if (err !== undefined && events.listenerCount('error') > 0) events.emit('error', err);
  });
  const metrics = createMetrics(registry, {
    shards: () => shardEntries(catalog, scatter).then((all) => all.map((e) => ({ dataset: e.dataset, shard: e.shard, ...e.figures }))),
    threads: () => pool.size,
    tuner: () => ({ ...memory.last, limitBytes: memory.limitBytes }),
  });
  const compactions = new Compactions(scatter, cancel, metrics, {
    emit: (event, payload) => events.emit(event, payload),
    compacted: (dataset, shard, report) => memory.compacted(dataset, shard, report),
  });
  const datasets = new Datasets(catalog, scatter, pool, durable, metrics, (name) => memory.forget(name));
  const memory = new MemoryManager({
    shards: () => shardEntries(catalog, scatter),
    compactShard: (dataset, shard, trigger, signal) => compactions.shard(catalog.get(dataset), shard, trigger, signal),
    lruDatasets: () => catalog.leastRecentlyUsed(),
    evict: async (dataset) => {
      const freed = await datasets.drop(dataset);
      events.emit('eviction', { dataset, freedBytes: freed });
      return freed;
    },
    emit: (event, payload) => {
      if (event !== 'error' || events.listenerCount('error') > 0) events.emit(event, payload);
    },
  }, policy, tuner, metrics);
  return { ...base, catalog, intake, metrics, memory, scatter, coalescer, compactions, datasets, durable, snapshots };
}
