import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the gauges read at scrape time: one snapshot of every shard. */
export interface ShardSample {
  dataset: string;
  shard: number;
  committedBytes: number;
  liveBytes: number;
  reclaimableBytes: number;
  liveNodes: number;
  deletedNodes: number;
}

export interface MetricsSource {
  /** Every shard's numbers, read from the workers. */
  shards(): Promise<ShardSample[]>;
  threads(): number;
  tuner(): { rssBytes: number; heapBytes: number; arenaBytes: number; pressure: boolean; limitBytes: number };
}

/** How long one scrape's shard snapshot is reused by the other gauges. */
const SNAPSHOT_TTL_MS = 250;

/**
 * quiver's metrics on a Registry the caller owns (never the global one).
 * Values that live in the workers are gathered at scrape time, once per
 * scrape, by the gauges' collect callbacks.
 */
export function createMetrics(registry: Registry, source: MetricsSource) {
  // The first worker-side gauge of a scrape (registration order: the arena
  // gauge) takes a fresh snapshot; the others of the same scrape reuse it.
  let cached: { at: number; value: Promise<ShardSample[]> } | undefined;
  const fresh = (): Promise<ShardSample[]> => {
    cached = { at: performance.now(), value: source.shards() };
    return cached.value;
  };
  const snapshot = (): Promise<ShardSample[]> => {
    if (cached === undefined || performance.now() - cached.at > SNAPSHOT_TTL_MS) return fresh();
    return cached.value;
  };
  const registers = [registry];

  const metrics = {
    arena: {
      bytes: new Gauge({
        name: 'quiver_arena_memory_bytes',
        help: 'WASM linear memory per shard: committed (what the process holds) and live (what the live vectors need)',
        labelNames: ['dataset', 'shard', 'state'] as const,
        registers,
        async collect() {
          this.reset();
          for (const s of await fresh()) {
            this.set({ dataset: s.dataset, shard: String(s.shard), state: 'committed' }, s.committedBytes);
            this.set({ dataset: s.dataset, shard: String(s.shard), state: 'live' }, s.liveBytes);
          }
        },
      }),
      fragmentation: new Gauge({
        name: 'quiver_slab_fragmentation_ratio',
        help: 'Reclaimable share of a shard\'s committed memory (0..1): what a compaction would give back',
        labelNames: ['dataset', 'shard'] as const,
        registers,
        async collect() {
          this.reset();
          for (const s of await snapshot()) {
            this.set({ dataset: s.dataset, shard: String(s.shard) }, s.committedBytes > 0 ? s.reclaimableBytes / s.committedBytes : 0);
          }
        },
      }),
    },
    nodes: new Gauge({
      name: 'quiver_hnsw_nodes',
      help: 'HNSW nodes per dataset: live, and deleted (tombstoned until compaction)',
      labelNames: ['dataset', 'state'] as const,
      registers,
      async collect() {
        this.reset();
        const byDataset = new Map<string, { live: number; deleted: number }>();
        for (const s of await snapshot()) {
          const d = byDataset.get(s.dataset) ?? { live: 0, deleted: 0 };
          d.live += s.liveNodes;
          d.deleted += s.deletedNodes;
          byDataset.set(s.dataset, d);
        }
        for (const [dataset, d] of byDataset) {
          this.set({ dataset, state: 'live' }, d.live);
          this.set({ dataset, state: 'deleted' }, d.deleted);
        }
      },
    }),
    threads: new Gauge({
      name: 'quiver_worker_threads',
      help: 'Worker threads alive in the store\'s pool',
      registers,
      collect() {
        this.set(source.threads());
      },
    }),
    compaction: {
      events: new Counter({
        name: 'quiver_compaction_events_total',
        help: 'Shard compactions by trigger (auto, manual, tuner) and result (ok, aborted, error)',
        labelNames: ['dataset', 'trigger', 'result'] as const,
        registers,
      }),
      duration: new Histogram({
        name: 'quiver_compaction_duration_seconds',
        help: 'Time one shard compaction took, steps and yields included',
        buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60],
        registers,
      }),
      reclaimed: new Counter({
        name: 'quiver_reclaimed_bytes_total',
        help: 'Committed WASM bytes given back by compactions and drops',
        registers,
      }),
    },
    tuner: {
      rss: new Gauge({ name: 'quiver_tuner_rss_bytes', help: 'Process RSS at the tuner\'s last sample', registers, collect() { this.set(source.tuner().rssBytes); } }),
      heap: new Gauge({ name: 'quiver_tuner_heap_bytes', help: 'V8 heap used at the tuner\'s last sample', registers, collect() { this.set(source.tuner().heapBytes); } }),
      arena: new Gauge({ name: 'quiver_tuner_arena_bytes', help: 'Committed WASM bytes of all shards at the tuner\'s last sample', registers, collect() { this.set(source.tuner().arenaBytes); } }),
      pressure: new Gauge({ name: 'quiver_tuner_pressure', help: '1 while the tuner samples fast because memory is near the limit or fragmented', registers, collect() { this.set(source.tuner().pressure ? 1 : 0); } }),
      limit: new Gauge({ name: 'quiver_tuner_memory_limit_bytes', help: 'maxMemoryBytes, or 0 when unset', registers, collect() { this.set(source.tuner().limitBytes); } }),
      decisions: new Counter({
        name: 'quiver_tuner_decisions_total',
        help: 'Tuner decisions: compact, skip-budget, evict, reject-writes, accept-writes',
        labelNames: ['decision'] as const,
        registers,
      }),
      ticks: new Counter({ name: 'quiver_tuner_ticks_total', help: 'Tuner samples taken', registers }),
    },
    search: {
      duration: new Histogram({
        name: 'quiver_search_duration_seconds',
        help: 'Store.search latency, scatter-gather included',
        labelNames: ['dataset'] as const,
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
        registers,
      }),
      filtered: new Counter({
        name: 'quiver_filtered_search_shards_total',
        help: 'Filtered searches of one shard, by the path its planner took (graph, exact, graph+exact, index)',
        labelNames: ['dataset', 'path'] as const,
        registers,
      }),
    },
    inserts: new Counter({
      name: 'quiver_insert_vectors_total',
      help: 'Vectors inserted (upserts included)',
      labelNames: ['dataset'] as const,
      registers,
    }),
    limitRejections: new Counter({
      name: 'quiver_memory_limit_rejections_total',
      help: 'Writes rejected with QUIVER_ERR_MEMORY_LIMIT',
      registers,
    }),
  };
  return metrics;
}

let processRegistry: Registry | undefined;

/**
 * Node's default process metrics, collected once per process: prom-client's
 * default collectors install process-wide observers that are never removed,
 * so one set per Store would keep every closed Store alive.
 */
export function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** Takes quiver's metrics off a registry (a closed store's). */
export function removeMetrics(registry: Registry): void {
  for (const m of registry.getMetricsAsArray()) {
    const name = (m as unknown as { name: string }).name;
    if (name.startsWith('quiver_')) registry.removeSingleMetric(name);
  }
}

export type Metrics = ReturnType<typeof createMetrics>;
export { Registry };
