/**
 * A Store's snapshots of its datasets, for backups (where the files go:
 * snapshot-files.ts; their format: storage/snapshot.ts).
 *
 * A snapshot holds each shard's image at that shard's last applied write
 * (writes to other shards may land between two shards' images: it is
 * consistent per shard, as Qdrant's are per segment). Recovery restores
 * every shard under a fresh dataset id first; only when all are in place
 * does the catalog swap the name over (one catalog write when durable),
 * and then the old dataset's shards and files go. A snapshot that fails its
 * checks, or a shard that fails to restore, changes nothing.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';
import type { GraphParams } from '../options.js';
import { corrupt } from '../storage/index.js';
import type { SnapshotEntry, SnapshotShard } from '../storage/snapshot.js';
import { checkName, type Catalog, type Dataset } from './catalog.js';
import type { Durable } from './durable.js';
import type { ImageResult, OpenResult } from './protocol.js';
import { quantizationField, shardParams, storedParams } from './quantization.js';
import type { Scatter, ShardRef } from './scatter.js';
import { SnapshotFiles } from './snapshot-files.js';
import type { SnapshotInfo, StoreOptions } from './types.js';

/** Where a store's snapshots go: options.snapshotsPath, <path>/snapshots, or a directory in the OS temp dir. */
export function snapshotsDir(options: StoreOptions): string {
  const dir = options.snapshotsPath;
  if (dir !== undefined) {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('options.snapshotsPath must be a non-empty string');
    return dir;
  }
  return typeof options.path === 'string' && options.path !== '' ? join(options.path, 'snapshots') : join(tmpdir(), `quiver-snapshots-${process.pid}`);
}

/** What recovery needs of the store. */
export interface RecoverDeps {
  catalog: Catalog;
  durable: Durable | undefined;
  threads: () => number[];
  /** The memory manager lets go of a dataset that was replaced. */
  forget: (name: string) => void;
  /** Admission under maxMemoryBytes: the restored shards take about the images' bytes. */
  admit: (name: string, bytes: number) => Promise<() => void>;
}

export class Snapshots extends SnapshotFiles {
  readonly #scatter: Scatter;
  readonly #deps: RecoverDeps;

  constructor(dir: string, scatter: Scatter, deps: RecoverDeps) {
    super(dir);
    this.#scatter = scatter;
    this.#deps = deps;
  }

  /** Every shard writes its image to a part file, in parallel; the parts become one snapshot file. */
  create(ds: Dataset): Promise<SnapshotInfo> {
    const entry: SnapshotEntry = {
      name: ds.name, dim: ds.dim, metric: ds.metric, M: ds.M, efConstruction: ds.efConstruction, ef: ds.ef, shards: ds.shards.length,
      ...quantizationField(ds.quantization),
    };
    return this.write(entry, String(ds.id), (parts) => Promise.all(ds.shards.map(async (s, i) => {
      const path = join(parts, `shard-${i}.img`);
      const r = await this.#scatter.run<ImageResult>(s, { op: 'writeImage', shard: s.key, file: path });
      return { lsn: r.lsn, path };
    })));
  }

  /**
   * Makes `dataset` what the snapshot in `file` holds, with its options and
   * shard count, replacing a dataset of that name if there is one.
   */
  async recover(dataset: string, file: string): Promise<Dataset> {
    checkName(dataset);
    const { entry, shards } = await this.read(file);
    const release = await this.#deps.admit(dataset, shards.reduce((a, s) => a + s.length, 0));
    try {
      return await this.#recover(dataset, file, entry, shards);
    } finally {
      release();
    }
  }

  async #recover(dataset: string, file: string, entry: SnapshotEntry, shards: SnapshotShard[]): Promise<Dataset> {
    const { catalog, durable } = this.#deps;
    const params = storedParams({ ...entry, metric: entry.metric as GraphParams['metric'] }, (m) => corrupt(file, 0, `the collection entry: ${m}`));
    if (params.quantization?.alwaysRam === false && durable === undefined) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `${file}: a snapshot of an alwaysRam: false dataset can only be recovered into a durable store (Store.open({ path }))`);
    }
    // a fresh id, taken before the first await: the restored shards never meet the old ones
    const id = catalog.nextId;
    catalog.advanceId(id + 1);
    const threads = this.#deps.threads();
    const refs: ShardRef[] = shards.map((_, i) => ({ key: `${id}:${i}`, thread: threads[(id + i) % threads.length]! }));
    const undo = async (): Promise<void> => {
      await this.#scatter.drop(refs);
      await durable?.dir.removeDataset(id).catch(() => {});
    };
    try {
      await Promise.all(shards.map((s, i) => this.#scatter.run<OpenResult>(refs[i]!, {
        op: 'restore', shard: refs[i]!.key, params: shardParams(params, BigInt(id)), file, offset: s.offset, length: s.length,
        durable: durable?.dir.shardDurability(id, i),
      })));
    } catch (err) {
      await undo();
      throw err;
    }
    while (catalog.find(dataset)?.recovering !== undefined) await catalog.find(dataset)!.recovering;
    const old = catalog.find(dataset);
    // the swap: no await between taking the old one out and putting the new one in
    if (old !== undefined) catalog.remove(dataset);
    let ds: Dataset;
    try {
      ds = catalog.reserve(dataset, params, refs.length, threads, id);
    } catch (err) {
      // a concurrent create took the name (only possible when there was no old one)
      await undo();
      throw err;
    }
    ds.shards = refs;
    try {
      await durable?.persist();
    } catch (err) {
      catalog.remove(dataset);
      if (old !== undefined) Object.assign(catalog.reserve(dataset, old, old.shards.length, threads, old.id), old);
      await undo();
      throw err;
    }
    if (old !== undefined) {
      this.#deps.forget(dataset);
      await this.#scatter.drop(old.shards);
      await durable?.dir.removeDataset(old.id);
    }
    return ds;
  }
}
