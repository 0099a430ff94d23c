// The soak's sampler: once a second, store.stats() and the workload's
// counters become a row; the rows go out as CSV.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store, StoreStats } from '../../host/index.js';
import { osThreads } from '../../bench/lib/resources.js';
import type { Counters } from './workload.js';

export const SAMPLE_MS = 1_000;

export type Phase = 'churn' | 'settle' | 'drop' | 'closed';

export interface Sample {
  t: number; // seconds since the store opened
  phase: Phase;
  rss: number;
  heapUsed: number;
  committed: number;
  live: number;
  threads: number;
  osThreads: number;
  datasets: number;
  liveVectors: number;
  deletedVectors: number;
  compactions: number;
  inserted: number;
  deleted: number;
  searches: number;
  errors: number;
}

/** store.stats(), retried: a short-lived dataset dropped while its shards are asked about fails that one call. */
async function stats(store: Store): Promise<StoreStats | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await store.stats();
    } catch {
      await sleep(20);
    }
  }
  return undefined;
}

function toSample(st: StoreStats, t: number, phase: Phase, counters: Counters): Sample {
  const sum = (pick: (d: StoreStats['datasets'][number]) => number): number => st.datasets.reduce((a, d) => a + pick(d), 0);
  return {
    t, phase,
    rss: st.rssBytes,
    heapUsed: st.heapUsedBytes,
    committed: sum((d) => d.committedBytes),
    live: sum((d) => d.liveBytes),
    threads: st.threads,
    osThreads: osThreads(),
    datasets: st.datasets.length,
    liveVectors: sum((d) => d.count),
    deletedVectors: sum((d) => d.deleted),
    compactions: counters.compactions,
    inserted: counters.inserted,
    deleted: counters.deleted,
    searches: counters.searches,
    errors: counters.errors,
  };
}

export interface Sampler {
  readonly rows: Sample[];
  /** Ticks on which store.stats() failed three times. */
  missed(): number;
  stop(): Promise<void>;
}

/** Samples once a second (a late sample is stamped with when it was taken; missed ticks are skipped). */
export function startSampler(store: Store, t0: number, phase: () => Phase, counters: Counters): Sampler {
  const rows: Sample[] = [];
  let missed = 0;
  let running = true;
  let wake: (() => void) | undefined;
  const done = (async () => {
    let tick = 0;
    while (running) {
      const st = await stats(store);
      if (st === undefined) missed++;
      else rows.push(toSample(st, (performance.now() - t0) / 1000, phase(), counters));
      tick = Math.max(tick + 1, Math.ceil((performance.now() - t0) / SAMPLE_MS));
      const wait = t0 + tick * SAMPLE_MS - performance.now();
      if (running && wait > 0) {
        await new Promise<void>((r) => {
          const timer = setTimeout(r, wait);
          wake = () => {
            clearTimeout(timer);
            r();
          };
        });
      }
    }
  })();
  return {
    rows,
    missed: () => missed,
    stop: async () => {
      running = false;
      wake?.();
      await done;
    },
  };
}

export function csv(rows: Sample[]): string {
  const head = 'elapsed_s,phase,rss_bytes,heap_used_bytes,arena_committed_bytes,arena_live_bytes,worker_threads,os_threads,datasets,live_vectors,deleted_vectors,compactions,inserted,deleted,searches,errors';
  const lines = rows.map((r) => [
    r.t.toFixed(3), r.phase, r.rss, r.heapUsed, r.committed, r.live, r.threads, r.osThreads, r.datasets,
    r.liveVectors, r.deletedVectors, r.compactions, r.inserted, r.deleted, r.searches, r.errors,
  ].join(','));
  return [head, ...lines].join('\n') + '\n';
}
