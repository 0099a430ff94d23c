/**
 * The dataset catalog: which datasets exist, their parameters, where their
 * shards live, which were lost with a thread, and when each was last used
 * (for LRU eviction).
 */
import { ErrorCode, QuiverError } from '../errors.js';
import type { IndexStats } from '../core/stats.js';
import { quantizationField, type DatasetParams } from './quantization.js';
import type { ShardRef } from './scatter.js';
import type { DatasetInfo } from './types.js';

/** A dataset: its graph parameters and quantization, and where its shards are. */
export interface Dataset extends DatasetParams {
  name: string;
  shards: ShardRef[];
  /** Unique per dataset instance: also the shard seed. */
  id: number;
  lost: boolean;
  lastUsed: number;
  /** A durable dataset that could not be opened (damaged files): every call but drop gets this error. */
  broken?: QuiverError;
  /** A durable dataset whose shards are being recovered onto a new thread: calls wait for this. */
  recovering?: Promise<void>;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new QuiverError(
      ErrorCode.INVALID_ARGUMENT,
      `dataset name must be 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit (got ${JSON.stringify(name)})`,
    );
  }
}

const notFound = (name: string): QuiverError => new QuiverError(ErrorCode.NOT_FOUND, `no dataset named ${JSON.stringify(name)}`);

export class Catalog {
  readonly #datasets = new Map<string, Dataset>();
  /** Last committed bytes seen per dataset (for eviction's arithmetic). */
  readonly #committed = new Map<string, number>();
  #nextId = 1;
  #nextThread = 0;

  /** A dataset in use: NOT_FOUND when absent, WORKER_LOST when its thread died. Marks it used. */
  get(name: string): Dataset {
    if (typeof name !== 'string') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'dataset name must be a string');
    const ds = this.#datasets.get(name);
    if (ds === undefined) throw notFound(name);
    if (ds.lost) throw new QuiverError(ErrorCode.WORKER_LOST, `dataset ${JSON.stringify(name)} was lost with its worker thread`);
    if (ds.broken !== undefined) throw new QuiverError(ds.broken.code, `dataset ${JSON.stringify(name)} cannot be opened: ${ds.broken.message}`, { cause: ds.broken });
    ds.lastUsed = performance.now();
    return ds;
  }

  /** A dataset whatever its state, or undefined. */
  find(name: string): Dataset | undefined {
    return this.#datasets.get(name);
  }

  /** Checks a name for dropping: a string that names a dataset. */
  mustExist(name: string): void {
    if (typeof name !== 'string') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'dataset name must be a string');
    if (!this.#datasets.has(name)) throw notFound(name);
  }

  names(): string[] {
    return [...this.#datasets.keys()];
  }

  /** Datasets not lost with a thread, not broken and not being recovered. */
  live(): Dataset[] {
    return [...this.#datasets.values()].filter((d) => !d.lost && d.broken === undefined && d.recovering === undefined);
  }

  /** Every dataset, for the catalog file. */
  all(): Dataset[] {
    return [...this.#datasets.values()];
  }

  get nextId(): number {
    return this.#nextId;
  }

  /** Ids below `next` are taken (a durable store's catalog file says so). */
  advanceId(next: number): void {
    this.#nextId = Math.max(this.#nextId, next);
  }

  /** Throws EXISTS when the name is taken. */
  checkFree(name: string): void {
    if (this.#datasets.has(name)) throw new QuiverError(ErrorCode.EXISTS, `dataset ${JSON.stringify(name)} already exists`);
  }

  /**
   * Reserves a name before the first await (a concurrent create of the same
   * name gets EXISTS) and places its shards round-robin over `threads`.
   */
  reserve(name: string, params: DatasetParams, shardCount: number, threads: number[], knownId?: number): Dataset {
    this.checkFree(name);
    const id = knownId ?? this.#nextId;
    this.#nextId = Math.max(this.#nextId, id + 1);
    const shards: ShardRef[] = [];
    for (let i = 0; i < shardCount; i++) {
      shards.push({ key: `${id}:${i}`, thread: threads[(this.#nextThread + i) % threads.length]! });
    }
    this.#nextThread = (this.#nextThread + shardCount) % Math.max(1, threads.length);
    const ds: Dataset = { name, ...params, shards, id, lost: false, lastUsed: performance.now() };
    this.#datasets.set(name, ds);
    return ds;
  }

  remove(name: string): void {
    this.#datasets.delete(name);
    this.#committed.delete(name);
  }

  /** Marks every dataset with a shard on `threadId` lost; returns their names. */
  markLost(threadId: number): string[] {
    const hit: string[] = [];
    for (const ds of this.#datasets.values()) {
      if (ds.shards.some((s) => s.thread === threadId)) {
        ds.lost = true;
        hit.push(ds.name);
      }
    }
    return hit;
  }

  noteCommitted(name: string, bytes: number): void {
    this.#committed.set(name, bytes);
  }

  /** Live datasets by last use, least recent first, with their last known committed bytes. */
  leastRecentlyUsed(): { name: string; committedBytes: number }[] {
    return this.live().sort((a, b) => a.lastUsed - b.lastUsed)
      .map((d) => ({ name: d.name, committedBytes: this.#committed.get(d.name) ?? 0 }));
  }

  clear(): void {
    this.#datasets.clear();
    this.#committed.clear();
  }
}

/** A dataset's public description, from one read of its shards' stats. */
export function infoOf(ds: Dataset, stats: IndexStats[]): DatasetInfo {
  const sum = (f: (s: IndexStats) => number): number => stats.reduce((a, s) => a + f(s), 0);
  return {
    name: ds.name, dim: ds.dim, metric: ds.metric, M: ds.M, efConstruction: ds.efConstruction, ef: ds.ef,
    shards: ds.shards.length,
    count: sum((s) => s.liveNodes),
    deleted: sum((s) => s.deletedNodes),
    committedBytes: sum((s) => s.committedBytes),
    liveBytes: sum((s) => s.liveBytes),
    ...quantizationField(ds.quantization),
  };
}
