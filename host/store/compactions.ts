/**
 * Compaction orchestration on the host: one shard's compaction as a task on
 * its thread, counted in metrics and reported as an event whatever its
 * trigger (manual, the scheduler, the tuner), and a dataset's compaction as
 * all of its shards' at once.
 */
import type { CompactionReport } from '../core/compaction.js';
import { ErrorCode, type QuiverError } from '../errors.js';
import type { CompactionOutcome, MemoryManager, Trigger } from '../memory/manager.js';
import type { Metrics } from '../metrics.js';
import type { CancelSlots } from './cancel.js';
import type { Catalog, Dataset } from './catalog.js';
import type { ThreadPool } from './pool.js';
import { shardEntries } from './store-stats.js';
import { abortError, type Scatter } from './scatter.js';

/** Who hears about each compaction: the Store's 'compaction' event, and the memory manager. */
export interface CompactionListener {
  emit(event: 'compaction', payload: unknown): void;
  compacted(dataset: string, shard: number, report: CompactionReport): void;
}

export class Compactions {
  readonly #scatter: Scatter;
  readonly #cancel: CancelSlots;
  readonly #metrics: Metrics;
  readonly #listener: CompactionListener;

  constructor(scatter: Scatter, cancel: CancelSlots, metrics: Metrics, listener: CompactionListener) {
    this.#scatter = scatter;
    this.#cancel = cancel;
    this.#metrics = metrics;
    this.#listener = listener;
  }

  /** One shard's compaction. */
  async shard(ds: Dataset, shard: number, trigger: Trigger, signal?: AbortSignal): Promise<CompactionReport> {
    const ref = ds.shards[shard]!;
    const started = performance.now();
    let result: CompactionOutcome = 'error';
    let reclaimedBytes = 0;
    const cancel = this.#cancel.acquire(signal);
    try {
      const r = await this.#scatter.run<CompactionReport>(ref, { op: 'compact', shard: ref.key, cancel: cancel.slot });
      result = 'ok';
      reclaimedBytes = r.reclaimedBytes;
      this.#metrics.compaction.reclaimed.inc(reclaimedBytes);
      this.#listener.compacted(ds.name, shard, r);
      return r;
    } catch (err) {
      if ((err as QuiverError).code === ErrorCode.ABORTED) result = 'aborted';
      throw err;
    } finally {
      cancel.release();
      const durationMs = performance.now() - started;
      this.#listener.emit('compaction', { dataset: ds.name, shard, trigger, result, reclaimedBytes, durationMs });
      this.#metrics.compaction.events.inc({ dataset: ds.name, trigger, result });
      this.#metrics.compaction.duration.observe(durationMs / 1000);
    }
  }

  /**
   * The given shards one after another (a dataset dropped meanwhile is
   * skipped); resolves with the bytes they gave back.
   */
  async each(shards: { dataset: string; shard: number }[], find: (name: string) => Dataset | undefined, trigger: Trigger): Promise<number> {
    let reclaimed = 0;
    for (const { dataset, shard } of shards) {
      const ds = find(dataset);
      if (ds === undefined || ds.lost) continue;
      reclaimed += (await this.shard(ds, shard, trigger)).reclaimedBytes;
    }
    return reclaimed;
  }

  /**
   * Store.releaseMemory: compacts every shard that has tombstones or is due
   * under the policy, then runs a GC in every thread.
   */
  async releaseMemory(
    catalog: Catalog, scatter: Scatter, memory: MemoryManager, pool: ThreadPool,
  ): Promise<{ reclaimedBytes: number; rssBefore: number; rssAfter: number }> {
    const rssBefore = process.memoryUsage.rss();
    const due = (await shardEntries(catalog, scatter)).filter((e) => e.figures.deletedNodes > 0 || memory.isDue(e));
    const reclaimedBytes = await this.each(due, (name) => catalog.find(name), 'manual');
    await Promise.all(pool.threadIds.map((t) => pool.run(t, { op: 'gc' })));
    return { reclaimedBytes, rssBefore, rssAfter: process.memoryUsage.rss() };
  }

  /** Every shard of a dataset at once; the report sums theirs. */
  async dataset(ds: Dataset, trigger: Trigger, signal?: AbortSignal): Promise<CompactionReport> {
    if (signal?.aborted) throw abortError(signal);
    const started = performance.now();
    const results = await Promise.allSettled(ds.shards.map((_, i) => this.shard(ds, i, trigger, signal)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      if (signal?.aborted) throw abortError(signal);
      throw (failed as PromiseRejectedResult).reason;
    }
    const ok = results.map((r) => (r as PromiseFulfilledResult<CompactionReport>).value);
    const sum = (f: (r: CompactionReport) => number): number => ok.reduce((a, r) => a + f(r), 0);
    return {
      committedBefore: sum((r) => r.committedBefore),
      committedAfter: sum((r) => r.committedAfter),
      reclaimedBytes: sum((r) => r.committedBefore) - sum((r) => r.committedAfter),
      liveNodes: sum((r) => r.liveNodes),
      removedTombstones: sum((r) => r.removedTombstones),
      durationMs: performance.now() - started,
    };
  }
}
