/**
 * What a Store reports about itself: `stats()` (datasets, the tuner's view,
 * a durable store's log figures summed), the per-shard figures the tuner and
 * the metrics read, and the Prometheus exposition text.
 */
import type { IndexStats } from '../core/stats.js';
import type { MemoryManager, ShardEntry } from '../memory/manager.js';
import { processMetrics, type Registry } from '../metrics.js';
import { infoOf, type Catalog } from './catalog.js';
import type { DataDir } from './data-dir.js';
import type { ThreadPool } from './pool.js';
import type { Scatter } from './scatter.js';
import type { StoreStats } from './types.js';

/** Every live shard's figures (a dataset whose shards do not answer is skipped); notes each dataset's committed bytes. */
export async function shardEntries(catalog: Catalog, scatter: Scatter): Promise<ShardEntry[]> {
  const perDataset = await Promise.all(catalog.live().map(async (ds) => {
    const stats = await scatter.stats(ds.shards).catch(() => [] as IndexStats[]);
    catalog.noteCommitted(ds.name, stats.reduce((a, s) => a + s.committedBytes, 0));
    return stats.map((s, i): ShardEntry => ({ dataset: ds.name, shard: i, thread: ds.shards[i]!.thread, figures: s }));
  }));
  return perDataset.flat();
}

export async function storeStats(catalog: Catalog, scatter: Scatter, pool: ThreadPool, memory: MemoryManager, dir: DataDir | undefined): Promise<StoreStats> {
  const datasets = await Promise.all(catalog.live().map(async (ds) => {
    // one read of the shards: the totals and the per-shard figures agree
    const shardStats = await scatter.stats(ds.shards);
    return { ...infoOf(ds, shardStats), shardStats };
  }));
  const mem = process.memoryUsage();
  const arenaBytes = datasets.reduce((a, d) => a + d.committedBytes, 0);
  const reclaimableBytes = datasets.reduce((a, d) => a + d.shardStats.reduce((b, s) => b + s.reclaimableBytes, 0), 0);
  const out: StoreStats = {
    threads: pool.size, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, datasets,
    // the tuner's pressure and limit, with this call's fresh byte counts
    tuner: { ...memory.last, rssBytes: mem.rss, heapBytes: mem.heapUsed, arenaBytes, reclaimableBytes, limitBytes: memory.limitBytes },
  };
  if (dir !== undefined) {
    const logs = datasets.flatMap((d) => d.shardStats.map((s) => s.log)).filter((l) => l !== undefined);
    const sum = (f: (l: (typeof logs)[number]) => number): number => logs.reduce((a, l) => a + f(l), 0);
    out.durability = {
      path: dir.path, fsync: dir.settings.fsync,
      fsyncs: sum((l) => l.fsyncs), writes: sum((l) => l.writes), records: sum((l) => l.records), bytes: sum((l) => l.bytes), checkpoints: sum((l) => l.checkpoints),
    };
  }
  return out;
}

/**
 * Prometheus exposition text: the store's registry, plus Node's process
 * metrics (from one process-wide registry) unless the store's registry
 * has them already.
 */
export async function exposition(registry: Registry): Promise<string> {
  const own = await registry.metrics();
  if (registry.getSingleMetric('process_cpu_user_seconds_total') !== undefined) return own;
  return `${own}\n${await processMetrics().metrics()}`;
}
