// The soak's load: two long-lived datasets churned at a steady rate, searches
// on both, and short-lived datasets created, filled and dropped, all at once
// until the deadline. Every loop awaits its own calls, so the work in flight
// is bounded.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../../host/index.js';
import { ClusteredSource, rng } from '../../bench/lib/random.js';

/**
 * The long-lived datasets: filled at full speed, then churned at a steady
 * rate. soak-a's vectors carry JSON payloads of varied sizes (stored in the
 * arena, freed on delete, rewritten by upserts).
 */
export const LONG_LIVED = [
  { name: 'soak-a', dim: 64, size: 30_000, efConstruction: 48, payloads: true },
  { name: 'soak-b', dim: 128, size: 20_000, efConstruction: 48, payloads: false },
] as const;
type LongLived = (typeof LONG_LIVED)[number];
/** Payload text length: uniform in 0..PAYLOAD_MAX_CHARS, so blobs land in several size classes. */
const PAYLOAD_MAX_CHARS = 300;
export const M = 16;
const FILL_BATCH = 1_000;
/** Churn: a batch of new ids in and as many of the oldest out, CHURN_PER_SECOND vectors a second per dataset. */
const CHURN_BATCH = 250;
export const CHURN_PER_SECOND = 1_000;
/** Every UPSERT_EVERY-th churn batch also rewrites UPSERT_COUNT live ids with new vectors. */
const UPSERT_EVERY = 4;
const UPSERT_COUNT = 50;
/** Searches: per long-lived dataset, one batch of SEARCH_BATCH queries plus SEARCH_SINGLES single ones every SEARCH_EVERY_MS. */
const SEARCH_BATCH = 8;
const SEARCH_SINGLES = 4;
const SEARCH_EVERY_MS = 50;
const K = 10;
/** Short-lived datasets: one every EPHEMERAL_EVERY_MS, EPHEMERAL_SIZE vectors, a quarter deleted before the drop. */
export const EPHEMERAL_EVERY_MS = 2_000;
export const EPHEMERAL_SIZE = 4_000;
const EPHEMERAL_DIMS = [32, 96, 128] as const;
const EPHEMERAL_EF_CONSTRUCTION = 32;
/** Clustered vectors: one of 32 centres plus noise. */
const CLUSTERS = 32;

export interface Counters {
  inserted: number;
  deleted: number;
  searches: number;
  errors: number;
  compactions: number;
  compactionErrors: number;
  reclaimed: number;
  tuner: number;
  created: number;
  dropped: number;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function payloadsFor(ids: readonly number[], rand: () => number): { id: number; note: string }[] {
  return ids.map((id) => ({ id, note: 'x'.repeat(Math.floor(rand() * (PAYLOAD_MAX_CHARS + 1))) }));
}

export class Workload {
  readonly counters: Counters = { inserted: 0, deleted: 0, searches: 0, errors: 0, compactions: 0, compactionErrors: 0, reclaimed: 0, tuner: 0, created: 0, dropped: 0 };
  /** The first ten error messages. */
  readonly errorMessages: string[] = [];
  #churning = true;
  #loops: Promise<void>[] = [];

  /** `deadline()` (performance.now() time) may move earlier, e.g. on Ctrl-C. */
  constructor(readonly store: Store, readonly threads: number, readonly seed: number, readonly deadline: () => number) {}

  noteError(where: string, err: unknown): void {
    this.counters.errors++;
    if (this.errorMessages.length < 10) this.errorMessages.push(`${where}: ${(err as Error)?.message ?? String(err)}`);
  }

  /** Creates the long-lived datasets and starts every loop. */
  async start(): Promise<void> {
    const rand = rng(this.seed);
    for (const [i, spec] of LONG_LIVED.entries()) {
      await this.store.createDataset(spec.name, { dim: spec.dim, M, efConstruction: spec.efConstruction, shards: this.threads });
      const base = this.seed * 1000 + i;
      this.#loops.push(this.#writer(spec, new ClusteredSource(spec.dim, CLUSTERS, base), rng(base + 100)));
      this.#loops.push(this.#searcher(spec, new ClusteredSource(spec.dim, CLUSTERS, base + 500)));
    }
    this.#loops.push(this.#ephemeral(Math.floor(rand() * 2 ** 31)));
  }

  /** Stops the churn and waits for every loop to finish its last call. */
  async stop(): Promise<void> {
    this.#churning = false;
    await Promise.all(this.#loops);
  }

  /** Sleeps until `ms` after `since`, or until the churn stops. */
  async #pace(since: number, ms: number): Promise<void> {
    const left = Math.min(since + ms, this.deadline()) - performance.now();
    if (left > 0 && this.#churning) await sleep(left);
  }

  async #writer(spec: LongLived, src: ClusteredSource, rand: () => number): Promise<void> {
    const { store, counters } = this;
    let lo = 0; // live ids are lo..hi-1
    let hi = 0;
    let batch = 0;
    const put = async (ids: number[]): Promise<number> => {
      const options = spec.payloads ? { payloads: payloadsFor(ids, rand) } : {};
      return (await store.insert(spec.name, ids, src.next(ids.length), options)).inserted;
    };
    while (this.#churning) {
      const started = performance.now();
      try {
        if (hi - lo < spec.size) {
          // fill at full speed: churn (searches, short-lived datasets) runs alongside from the first second
          const n = Math.min(FILL_BATCH, spec.size - (hi - lo));
          counters.inserted += await put(range(hi, hi + n));
          hi += n;
          continue;
        }
        counters.inserted += await put(range(hi, hi + CHURN_BATCH));
        hi += CHURN_BATCH;
        counters.deleted += (await store.delete(spec.name, range(lo, lo + CHURN_BATCH))).deleted;
        lo += CHURN_BATCH;
        if (++batch % UPSERT_EVERY === 0) {
          const ids = new Set<number>();
          while (ids.size < UPSERT_COUNT) ids.add(lo + Math.floor(rand() * (hi - lo)));
          await put([...ids]);
        }
      } catch (err) {
        this.noteError(`${spec.name} write`, err);
      }
      await this.#pace(started, (CHURN_BATCH / CHURN_PER_SECOND) * 1000);
    }
  }

  async #searcher(spec: LongLived, src: ClusteredSource): Promise<void> {
    const { store, counters } = this;
    while (this.#churning) {
      const started = performance.now();
      try {
        const singles = Array.from({ length: SEARCH_SINGLES }, () => store.search(spec.name, src.next(1), K));
        await Promise.all([store.search(spec.name, src.next(SEARCH_BATCH), K, { withPayload: spec.payloads }), ...singles]);
        counters.searches += SEARCH_BATCH + SEARCH_SINGLES;
      } catch (err) {
        this.noteError(`${spec.name} search`, err);
      }
      await this.#pace(started, SEARCH_EVERY_MS);
    }
  }

  async #ephemeral(seed: number): Promise<void> {
    const { store, counters } = this;
    const rand = rng(seed);
    let n = 0;
    while (this.#churning) {
      const started = performance.now();
      const name = `soak-tmp-${++n}`;
      const dim = EPHEMERAL_DIMS[n % EPHEMERAL_DIMS.length]!;
      const src = new ClusteredSource(dim, CLUSTERS, Math.floor(rand() * 2 ** 31));
      let created = false;
      try {
        await store.createDataset(name, { dim, M, efConstruction: EPHEMERAL_EF_CONSTRUCTION, shards: this.threads });
        created = true;
        counters.created++;
        const half = EPHEMERAL_SIZE / 2;
        // odd-numbered ones carry payloads in their first half
        const payloads = n % 2 === 1 ? { payloads: payloadsFor(range(0, half), rand) } : {};
        counters.inserted += (await store.insert(name, range(0, half), src.next(half), payloads)).inserted;
        counters.inserted += (await store.insert(name, range(half, EPHEMERAL_SIZE), src.next(half))).inserted;
        await store.search(name, src.next(SEARCH_BATCH), K);
        counters.searches += SEARCH_BATCH;
        counters.deleted += (await store.delete(name, range(0, EPHEMERAL_SIZE / 4))).deleted;
      } catch (err) {
        this.noteError(`${name}`, err);
      }
      if (created) {
        try {
          await store.dropDataset(name);
          counters.dropped++;
        } catch (err) {
          this.noteError(`${name} drop`, err);
        }
      }
      await this.#pace(started, EPHEMERAL_EVERY_MS);
    }
  }
}
