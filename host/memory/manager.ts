import type { CompactionReport } from '../core/compaction.js';
import { ErrorCode, QuiverError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { needsCompaction, type CompactionPolicy, type ShardFigures } from './policy.js';

/** One shard as the manager sees it. */
export interface ShardEntry {
  dataset: string;
  shard: number;
  thread: number;
  figures: ShardFigures;
}

export type Trigger = 'auto' | 'manual' | 'tuner';
/** How one compaction ended (the `result` label of its metric and event). */
export type CompactionOutcome = 'ok' | 'aborted' | 'error';

/** What the manager needs from the Store. */
export interface ManagedStore {
  shards(): Promise<ShardEntry[]>;
  compactShard(dataset: string, shard: number, trigger: Trigger, signal: AbortSignal): Promise<CompactionReport>;
  /** Datasets by last use, least recent first, with what dropping each would free. */
  lruDatasets(): { name: string; committedBytes: number }[];
  /** Drops a dataset; resolves with the committed bytes it held. */
  evict(dataset: string): Promise<number>;
  emit(event: string, payload: unknown): void;
}

export interface TunerOptions {
  /** Reject (or evict for) writes that would take process RSS past this. */
  maxMemoryBytes?: number;
  /** 'reject' (default) or 'lru': drop whole datasets, least recently used first. */
  evictionPolicy?: 'reject' | 'lru';
  /** Background compaction check. Default 30 s; 0 turns it off. */
  compactionIntervalMs: number;
  /** Tuner sample period. Default 2 s, and `pressureIntervalMs` (500 ms) under pressure. */
  tunerIntervalMs: number;
  pressureIntervalMs: number;
  /** The tuner compacts when arenas exceed this share of RSS... */
  arenaShare: number;
  /** ...and at least this many bytes are reclaimable. */
  reclaimFloorBytes: number;
  /** At most this share of wall time goes to tuner-started compactions. */
  cpuBudget: number;
  /** Writes start again once RSS is below this share of the limit. */
  lowWatermark: number;
}

export const DEFAULT_TUNER: TunerOptions = {
  compactionIntervalMs: 30_000,
  tunerIntervalMs: 2_000,
  pressureIntervalMs: 500,
  arenaShare: 0.7,
  reclaimFloorBytes: 16 << 20,
  cpuBudget: 0.25,
  lowWatermark: 0.9,
};

const BUDGET_WINDOW_MS = 10_000;

const futileKey = (dataset: string, shard: number): string => `${dataset}\0${shard}`;

/**
 * The memory manager: the background compaction scheduler, the tuner (the
 * Go plan's GC tuner: Node has no GOGC, so its levers are when to compact,
 * when to collect, and when to refuse writes) and admission control under
 * maxMemoryBytes. Every decision is an event and a metric.
 */
export class MemoryManager {
  readonly #store: ManagedStore;
  readonly #policy: CompactionPolicy;
  readonly #options: TunerOptions;
  readonly #metrics: Metrics;
  readonly #abort = new AbortController();
  readonly #busyThreads = new Set<number>();
  #compactionTimer: NodeJS.Timeout | undefined;
  #tunerTimer: NodeJS.Timeout | undefined;
  #running = new Set<Promise<unknown>>();
  #stopped = false;
  /**
   * Bytes of admitted writes that have not settled. A large insert runs for
   * seconds in steps, so its bytes count until it resolves or fails, not
   * until the next tuner tick.
   */
  #pendingBytes = 0;
  /**
   * Shards whose last compaction reclaimed under the policy's floor, with
   * what they looked like after it: while a shard still looks the same, the
   * policy's verdict (and a compaction's outcome) would be the same too.
   */
  readonly #futile = new Map<string, { liveNodes: number; committedBytes: number }>();
  #rejecting = false;
  /** [start, end] of tuner-started compactions, for the CPU budget. */
  #busy: [number, number][] = [];
  readonly last = { rssBytes: 0, heapBytes: 0, arenaBytes: 0, reclaimableBytes: 0, pressure: false };

  constructor(store: ManagedStore, policy: CompactionPolicy, options: TunerOptions, metrics: Metrics) {
    this.#store = store;
    this.#policy = policy;
    this.#options = options;
    this.#metrics = metrics;
    this.last.rssBytes = process.memoryUsage.rss();
    if (options.compactionIntervalMs > 0) this.#scheduleCompaction();
    if (options.tunerIntervalMs > 0) this.#scheduleTuner(options.tunerIntervalMs);
  }

  get limitBytes(): number {
    return this.#options.maxMemoryBytes ?? 0;
  }

  #scheduleCompaction(): void {
    if (this.#stopped) return;
    this.#compactionTimer = setTimeout(() => {
      this.#track(this.runScheduler('auto')).finally(() => this.#scheduleCompaction());
    }, this.#options.compactionIntervalMs);
    this.#compactionTimer.unref();
  }

  #scheduleTuner(ms: number): void {
    if (this.#stopped) return;
    this.#tunerTimer = setTimeout(() => {
      this.#track(this.tick()).finally(() => {
        this.#scheduleTuner(this.last.pressure ? this.#options.pressureIntervalMs : this.#options.tunerIntervalMs);
      });
    }, ms);
    this.#tunerTimer.unref();
  }

  #track<T>(p: Promise<T>): Promise<unknown> {
    const q = p.catch((err: unknown) => {
      if (!this.#stopped) this.#store.emit('tunerError', err);
    });
    this.#running.add(q);
    void q.finally(() => this.#running.delete(q));
    return q;
  }

  #decide(decision: string, detail: Record<string, unknown> = {}): void {
    this.#metrics.tuner.decisions.inc({ decision });
    this.#store.emit('tuner', { decision, ...detail });
  }

  /**
   * Compacts the shards that need it, most reclaimable bytes first, at most
   * one per thread at a time. Returns how many compactions ran.
   */
  async runScheduler(trigger: Trigger, filter?: (e: ShardEntry) => boolean): Promise<number> {
    if (this.#stopped) return 0;
    const due = (await this.#store.shards())
      .filter((e) => (filter === undefined || filter(e)) && this.isDue(e))
      .sort((a, b) => b.figures.reclaimableBytes - a.figures.reclaimableBytes);
    return this.#compactAll(due, trigger);
  }

  /** The policy says compact, and the shard changed since a compaction that won back too little. */
  isDue(e: ShardEntry): boolean {
    return needsCompaction(e.figures, this.#policy) !== undefined && !this.#unchangedSinceFutile(e);
  }

  #unchangedSinceFutile(e: ShardEntry): boolean {
    const after = this.#futile.get(futileKey(e.dataset, e.shard));
    return after !== undefined && e.figures.deletedNodes === 0 && e.figures.liveNodes === after.liveNodes
      && e.figures.committedBytes === after.committedBytes;
  }

  /** Every finished compaction, whoever started it, goes through here. */
  compacted(dataset: string, shard: number, report: CompactionReport): void {
    const key = futileKey(dataset, shard);
    if (report.reclaimedBytes < this.#policy.minReclaimableBytes) {
      this.#futile.set(key, { liveNodes: report.liveNodes, committedBytes: report.committedAfter });
    } else {
      this.#futile.delete(key);
    }
  }

  /** A dataset was dropped: forget its shards. */
  forget(dataset: string): void {
    for (const key of this.#futile.keys()) if (key.startsWith(`${dataset}\0`)) this.#futile.delete(key);
  }

  async #compactAll(due: ShardEntry[], trigger: Trigger): Promise<number> {
    // one lane per thread, each working down its shards in order
    const lanes = new Map<number, ShardEntry[]>();
    for (const e of due) lanes.set(e.thread, [...(lanes.get(e.thread) ?? []), e]);
    let ran = 0;
    await Promise.all([...lanes].map(async ([thread, entries]) => {
      for (const e of entries) {
        if (this.#stopped || this.#busyThreads.has(thread)) return;
        this.#busyThreads.add(thread);
        const started = performance.now();
        try {
          await this.#store.compactShard(e.dataset, e.shard, trigger, this.#abort.signal);
          ran++;
        } catch {
          // compactShard counted and reported it; the next tick tries again
        } finally {
          this.#busyThreads.delete(thread);
          if (trigger === 'tuner') this.#busy.push([started, performance.now()]);
        }
      }
    }));
    return ran;
  }

  /** Share of the last BUDGET_WINDOW_MS spent in tuner compactions. */
  #budgetUsed(now: number): number {
    this.#busy = this.#busy.filter(([, end]) => end > now - BUDGET_WINDOW_MS);
    const busy = this.#busy.reduce((a, [start, end]) => a + (end - Math.max(start, now - BUDGET_WINDOW_MS)), 0);
    return busy / BUDGET_WINDOW_MS;
  }

  /** One tuner sample and its decisions. */
  async tick(): Promise<void> {
    if (this.#stopped) return;
    const shards = await this.#store.shards();
    const mem = process.memoryUsage();
    const arena = shards.reduce((a, e) => a + e.figures.committedBytes, 0);
    const reclaimable = shards.reduce((a, e) => a + e.figures.reclaimableBytes, 0);
    const limit = this.limitBytes;
    Object.assign(this.last, { rssBytes: mem.rss, heapBytes: mem.heapUsed, arenaBytes: arena, reclaimableBytes: reclaimable });
    const fragmented = arena > this.#options.arenaShare * mem.rss && reclaimable > this.#options.reclaimFloorBytes;
    this.last.pressure = fragmented || (limit > 0 && mem.rss > this.#options.lowWatermark * limit);
    this.#metrics.tuner.ticks.inc();
    if (this.#rejecting && limit > 0 && mem.rss < this.#options.lowWatermark * limit) {
      this.#rejecting = false;
      this.#decide('accept-writes', { rssBytes: mem.rss, limitBytes: limit });
    }
    if (!fragmented) return;
    const now = performance.now();
    if (this.#budgetUsed(now) >= this.#options.cpuBudget) {
      this.#decide('skip-budget', { reclaimableBytes: reclaimable });
      return;
    }
    const worst = shards
      .filter((e) => e.figures.reclaimableBytes >= this.#policy.minReclaimableBytes && !this.#unchangedSinceFutile(e))
      .sort((a, b) => b.figures.reclaimableBytes - a.figures.reclaimableBytes);
    if (worst.length === 0) return;
    this.#decide('compact', { dataset: worst[0]!.dataset, shard: worst[0]!.shard, reclaimableBytes: reclaimable });
    await this.#compactAll(worst.slice(0, 1), 'tuner');
  }

  /**
   * Admission control for a write of about `bytes`: under maxMemoryBytes,
   * a write that would take RSS past the limit is rejected (or, with
   * evictionPolicy 'lru', whole datasets are dropped first). Once rejecting,
   * writes stay rejected until RSS falls below the low watermark. Returns a
   * release to call when the write has finished.
   */
  async admit(dataset: string, bytes: number): Promise<() => void> {
    const limit = this.limitBytes;
    if (limit === 0) return () => {};
    const rss = process.memoryUsage.rss();
    if (this.#rejecting && rss < this.#options.lowWatermark * limit) {
      this.#rejecting = false;
      this.#decide('accept-writes', { rssBytes: rss, limitBytes: limit });
    }
    let projected = rss + this.#pendingBytes + bytes;
    if (!this.#rejecting && projected > limit && this.#options.evictionPolicy === 'lru') {
      for (const victim of this.#store.lruDatasets()) {
        if (projected <= limit) break;
        if (victim.name === dataset) continue;
        // what the victim holds is read as it goes, not from a stale sample
        const freed = await this.#store.evict(victim.name);
        projected -= freed;
        this.#decide('evict', { dataset: victim.name, freedBytes: freed });
      }
    }
    if (this.#rejecting || projected > limit) {
      if (!this.#rejecting) this.#decide('reject-writes', { rssBytes: rss, projectedBytes: projected, limitBytes: limit });
      this.#rejecting = true;
      this.#metrics.limitRejections.inc();
      throw new QuiverError(
        ErrorCode.MEMORY_LIMIT,
        `writing ${bytes} more bytes would take RSS (${rss} bytes) past maxMemoryBytes (${limit}); delete, compact or drop to make room`,
        { applied: 0 },
      );
    }
    this.#pendingBytes += bytes;
    return () => {
      this.#pendingBytes = Math.max(0, this.#pendingBytes - bytes);
    };
  }

  /** Stops every timer and cancels running compactions; waits for them. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#compactionTimer);
    clearTimeout(this.#tunerTimer);
    this.#abort.abort(new QuiverError(ErrorCode.CLOSED, 'the store is closing'));
    await Promise.allSettled([...this.#running]);
  }
}
