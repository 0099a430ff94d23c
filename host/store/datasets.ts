/**
 * A dataset's life across its shards: created on their threads (a durable
 * one: its shard directories first, then the catalog naming them, so that
 * acknowledged means durable), waited for while a lost thread's shards are
 * recovered, and dropped with its memory given back (a durable one: the
 * catalog without it first, then its files). The bookkeeping itself is the
 * Catalog's (catalog.ts).
 */
import { collectGarbage } from '../core/gc.js';
import { releaseIdleTransients } from '../memory/transient.js';
import type { IndexStats } from '../core/stats.js';
import { ErrorCode, QuiverError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { infoOf, type Catalog, type Dataset } from './catalog.js';
import type { Durable } from './durable.js';
import type { ThreadPool } from './pool.js';
import { shardParams, type DatasetParams } from './quantization.js';
import type { Scatter } from './scatter.js';
import type { DatasetInfo } from './types.js';

export class Datasets {
  readonly #catalog: Catalog;
  readonly #scatter: Scatter;
  readonly #pool: ThreadPool;
  readonly #durable: Durable | undefined;
  readonly #metrics: Metrics;
  /** Tells the memory manager a dataset is gone. */
  readonly #forget: (name: string) => void;

  constructor(catalog: Catalog, scatter: Scatter, pool: ThreadPool, durable: Durable | undefined, metrics: Metrics, forget: (name: string) => void) {
    this.#catalog = catalog;
    this.#scatter = scatter;
    this.#pool = pool;
    this.#durable = durable;
    this.#metrics = metrics;
    this.#forget = forget;
  }

  /** A dataset to use; while a lost thread's shards are recovered, waits for that. */
  async ready(name: string): Promise<Dataset> {
    for (;;) {
      const ds = this.#catalog.get(name);
      if (ds.recovering === undefined) return ds;
      await ds.recovering;
    }
  }

  /** Creates a dataset of validated parameters, its shards placed round-robin over the threads. */
  async create(name: string, params: DatasetParams, shardCount: number): Promise<Dataset> {
    const ds = this.#catalog.reserve(name, params, shardCount, this.#pool.threadIds);
    const durable = this.#durable;
    try {
      if (durable === undefined) {
        await Promise.all(ds.shards.map((s) => this.#scatter.run(s, { op: 'create', shard: s.key, params: shardParams(ds, BigInt(ds.id)) })));
      } else {
        // the shard directories first, then the catalog naming them: acknowledged means durable
        await Promise.all(ds.shards.map((_, i) => durable.openShard(ds, i)));
        await durable.persist();
      }
    } catch (err) {
      this.#catalog.remove(name);
      await this.#scatter.drop(ds.shards).catch(() => {});
      await durable?.dir.removeDataset(ds.id).catch(() => {});
      throw err;
    }
    return ds;
  }

  async info(ds: Dataset, known?: IndexStats[]): Promise<DatasetInfo> {
    return infoOf(ds, known ?? await this.#scatter.stats(ds.shards));
  }

  /** Drops a dataset; resolves with the committed bytes its shards held. */
  async drop(name: string): Promise<number> {
    const ds = this.#catalog.find(name);
    if (ds === undefined) return 0;
    await ds.recovering;
    const gone = ds.lost || ds.broken !== undefined;
    const committed = gone ? 0 : (await this.#scatter.stats(ds.shards).catch(() => [] as IndexStats[])).reduce((a, s) => a + s.committedBytes, 0);
    // durable: the catalog without it first; a crash after leaves files the next open removes
    await this.#durable?.persist(ds);
    this.#catalog.remove(name);
    this.#forget(name);
    await this.#scatter.drop(ds.shards);
    await this.#durable?.dir.removeDataset(ds.id);
    // The dataset's writes left garbage on this thread too (packed ids of
    // every insert and delete, routing rows, the duplicate check), 4-5 MiB
    // for 100,000 x 128 that no GC may collect while the process idles.
    // the pooled transient buffers too: nothing of the dataset may stay mapped
    releaseIdleTransients();
    collectGarbage();
    this.#metrics.compaction.reclaimed.inc(committed);
    return committed;
  }

  /**
   * A worker thread died. Durable: its shards come back from their
   * directories, nothing is lost. In memory: every dataset with a shard on
   * it is lost; the error returned names them.
   */
  threadLost(threadId: number): QuiverError | undefined {
    if (this.#durable !== undefined) {
      this.#durable.recoverLost(threadId);
      return undefined;
    }
    const hit = this.#catalog.markLost(threadId);
    return new QuiverError(ErrorCode.WORKER_LOST, `worker thread ${threadId} died; lost datasets: ${hit.join(', ') || 'none'}`);
  }
}
