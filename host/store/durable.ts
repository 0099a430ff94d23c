/**
 * What a durable Store adds to the in-memory one: the catalog on disk,
 * recovery of every dataset on open (each shard on its owning thread, all
 * in parallel), recovery of a lost thread's shards onto its replacement, and
 * the graceful close that checkpoints every shard. Where the files are:
 * data-dir.ts; one shard's log and images: shard-log.ts.
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { invalidArgument } from '../options.js';
import type { Catalog, Dataset } from './catalog.js';
import { DataDir, type CatalogEntry } from './data-dir.js';
import type { ThreadPool } from './pool.js';
import type { OpenResult, ShardKey } from './protocol.js';
import { quantizationField, shardParams, storedParams } from './quantization.js';
import type { Scatter, ShardRef } from './scatter.js';
import type { RecoveryReport } from './types.js';

/** How long a write to a lost thread's dataset waits for its recovery before it gives up. */
const REPLACEMENT_WAIT_MS = 30_000;

const entryOf = (d: Dataset): CatalogEntry => ({
  name: d.name, id: d.id, dim: d.dim, metric: d.metric, M: d.M, efConstruction: d.efConstruction, ef: d.ef, shards: d.shards.length,
  ...quantizationField(d.quantization),
});

export class Durable {
  readonly dir: DataDir;
  readonly #catalog: Catalog;
  readonly #scatter: Scatter;
  readonly #pool: ThreadPool;

  constructor(dir: DataDir, catalog: Catalog, scatter: Scatter, pool: ThreadPool) {
    this.dir = dir;
    this.#catalog = catalog;
    this.#scatter = scatter;
    this.#pool = pool;
  }

  /** The create task of shard `i` of `ds`: opens (or recovers) its directory. */
  openShard(ds: Dataset, i: number): Promise<OpenResult> {
    const ref = ds.shards[i]!;
    // the dataset's quantization too: a shard with no image yet is rebuilt from its log as the quantized one it was
    const params = shardParams(ds, BigInt(ds.id));
    return this.#scatter.run<OpenResult>(ref, { op: 'create', shard: ref.key, params, durable: this.dir.shardDurability(ds.id, i) });
  }

  /** Writes the catalog as it is at its turn, optionally without one dataset (a drop in progress). */
  persist(without?: Dataset): Promise<void> {
    return this.dir.writeCatalog(() => ({
      nextId: this.#catalog.nextId,
      datasets: this.#catalog.all().filter((d) => d !== without).map(entryOf),
    }));
  }

  /**
   * Opens every dataset of the catalog: shards placed round-robin and
   * recovered on their threads in parallel. A dataset whose files are
   * damaged is kept in the catalog, marked broken; the others open.
   */
  async recover(): Promise<RecoveryReport[]> {
    const { nextId, datasets } = await this.dir.readCatalog();
    this.#catalog.advanceId(nextId);
    await this.dir.removeOrphans(new Set(datasets.map((d) => d.id)));
    const threads = this.#pool.threadIds;
    const opened = datasets.map((e) => {
      const params = storedParams(e, invalidArgument);
      return this.#catalog.reserve(e.name, params, e.shards, threads, e.id);
    });
    return Promise.all(opened.map(async (ds): Promise<RecoveryReport> => {
      const results = await Promise.allSettled(ds.shards.map((_, i) => this.openShard(ds, i)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed !== undefined) {
        // what did open is let go: the dataset refuses every call but drop
        await this.#scatter.drop(ds.shards);
        const reason = (failed as PromiseRejectedResult).reason as unknown;
        ds.broken = reason instanceof QuiverError ? reason : new QuiverError(ErrorCode.IO, String(reason));
        return { dataset: ds.name, shards: ds.shards.length, replayed: 0, error: ds.broken.message };
      }
      const replayed = results.reduce((a, r) => a + ((r as PromiseFulfilledResult<OpenResult>).value.replayed ?? 0), 0);
      return { dataset: ds.name, shards: ds.shards.length, replayed };
    }));
  }

  /**
   * A thread died: its shards are reopened from their directories on a live
   * thread (the replacement the pool starts). Calls to those datasets wait
   * meanwhile; if recovery fails the dataset is marked broken.
   */
  recoverLost(threadId: number): string[] {
    const hit: string[] = [];
    for (const ds of this.#catalog.all()) {
      const lost = ds.shards.map((s, i) => ({ s, i })).filter(({ s }) => s.thread === threadId);
      if (lost.length === 0 || ds.broken !== undefined) continue;
      hit.push(ds.name);
      const previous = ds.recovering ?? Promise.resolve();
      ds.recovering = previous.then(async () => {
        const thread = await this.#liveThread(threadId);
        // the shards go to the replacement; recovered in parallel there
        for (const { s } of lost) s.thread = thread;
        await Promise.all(lost.map(({ i }) => this.openShard(ds, i)));
      }).then(() => {
        ds.recovering = undefined;
      }, (err: unknown) => {
        ds.recovering = undefined;
        ds.broken = err instanceof QuiverError ? err : new QuiverError(ErrorCode.WORKER_LOST, String(err));
      });
    }
    return hit;
  }

  async #liveThread(lost: number): Promise<number> {
    const deadline = performance.now() + REPLACEMENT_WAIT_MS;
    for (;;) {
      const ids = this.#pool.threadIds.filter((t) => t !== lost);
      if (ids.length > 0) {
        // the least loaded: the replacement has none of the lost shards yet
        const load = new Map(ids.map((t) => [t, 0]));
        for (const ds of this.#catalog.all()) for (const s of ds.shards) if (load.has(s.thread)) load.set(s.thread, load.get(s.thread)! + 1);
        return [...load].sort((a, b) => a[1] - b[1])[0]![0];
      }
      if (performance.now() > deadline) throw new QuiverError(ErrorCode.WORKER_LOST, 'no worker thread came back to recover the lost shards');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Checkpoints every shard of `datasets`: its image at its last write replaces the log before it. */
  async checkpoint(datasets: Dataset[]): Promise<void> {
    await Promise.all(datasets.flatMap((ds) => ds.shards.map((s) => this.#scatter.run(s, { op: 'checkpoint', shard: s.key }))));
  }

  /** A graceful close: every shard checkpointed and its log closed, one task per thread. */
  async close(datasets: Dataset[]): Promise<void> {
    const byThread = new Map<number, ShardKey[]>();
    for (const ds of datasets) {
      if (ds.broken !== undefined) continue;
      for (const s of ds.shards) byThread.set(s.thread, [...(byThread.get(s.thread) ?? []), s.key]);
    }
    await Promise.all([...byThread].map(([thread, shards]) => this.#scatter.run({ key: shards[0]!, thread } satisfies ShardRef, { op: 'close', shards })));
  }

  /**
   * The graceful close, given `ms` to finish: `late` once that has passed
   * (the logs still hold everything). `error` is what the close failed with,
   * set whenever it fails, late or not.
   */
  async closeWithin(datasets: Dataset[], ms: number): Promise<{ late: boolean; error?: unknown }> {
    const out: { late: boolean; error?: unknown } = { late: false };
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), ms);
    });
    const done = await Promise.race([this.close(datasets).then(() => 'done' as const, (err: unknown) => {
      out.error = err;
      return 'done' as const;
    }), late]);
    clearTimeout(timer);
    out.late = done === 'late';
    return out;
  }
}

export { DataDir };
