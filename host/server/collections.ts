/**
 * What the server needs to know about a collection on every request (its
 * dimension and metric), kept here so a query does not cost a round trip to
 * every shard first. Entries are checked against store.listDatasets() on
 * each use and dropped on eviction, so a dropped dataset is never served
 * from the cache.
 */
import type { MetricName } from '../core/abi.js';
import type { DatasetInfo, Store } from '../store/store.js';

export interface CollectionMeta {
  name: string;
  dim: number;
  metric: MetricName;
  /** always_ram: false: the originals are read from files (an exact search re-ranks instead of walking them). */
  originalsOnDisk: boolean;
}

export class Collections {
  readonly #store: Store;
  readonly #cache = new Map<string, CollectionMeta>();
  readonly #onEviction = (e: { dataset: string }): void => {
    this.#cache.delete(e.dataset);
  };

  constructor(store: Store) {
    this.#store = store;
    store.on('eviction', this.#onEviction);
  }

  /** The collection's meta; rejects with the Store's NOT_FOUND when there is none. */
  async meta(name: string): Promise<CollectionMeta> {
    const cached = this.#cache.get(name);
    if (cached !== undefined && this.#store.listDatasets().includes(name)) return cached;
    return this.remember(await this.#store.datasetInfo(name));
  }

  remember(info: DatasetInfo): CollectionMeta {
    const meta = { name: info.name, dim: info.dim, metric: info.metric, originalsOnDisk: info.quantization?.scalar.alwaysRam === false };
    this.#cache.set(info.name, meta);
    return meta;
  }

  forget(name: string): void {
    this.#cache.delete(name);
  }

  dispose(): void {
    this.#store.off('eviction', this.#onEviction);
    this.#cache.clear();
  }
}
