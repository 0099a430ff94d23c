/**
 * A durable store's data directory:
 *
 *   <path>/LOCK                         held for the life of the store (storage/lock.ts)
 *   <path>/CATALOG                      the datasets and their options (quantization too), replaced atomically
 *   <path>/datasets/<id>/shard-<i>/     one shard: MANIFEST, images, wal/ (storage/index.ts)
 *   <path>/snapshots/<dataset>/         snapshot files (snapshots.ts)
 *
 * Catalog changes are durable before they are acknowledged: a create
 * writes its shard directories, then the catalog; a drop writes the catalog,
 * then removes the directory. A crash between leaves a directory no
 * catalog entry names, which the next open removes.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';
import { DirLock, errorCode, ioError, nodeFiles, readWhole, replaceFile, type FsyncPolicy } from '../storage/index.js';
import type { Durability } from './shard-log.js';
import type { DatasetInfo } from './types.js';

const CATALOG = 'CATALOG';
const FORMAT = 'quiver-catalog';
const VERSION = 1;

/** One dataset as the catalog file keeps it: its options, shard count and id. */
export type CatalogEntry = Pick<DatasetInfo, 'name' | 'dim' | 'metric' | 'M' | 'efConstruction' | 'ef' | 'shards' | 'quantization'> & { id: number };

interface CatalogFile {
  format: typeof FORMAT;
  version: number;
  nextId: number;
  datasets: CatalogEntry[];
}

export interface DurabilitySettings {
  fsync: FsyncPolicy;
  intervalMs: number;
  checkpointLogBytes: number;
}

export class DataDir {
  readonly path: string;
  readonly settings: DurabilitySettings;
  readonly #lock: DirLock;
  /** Catalog writes, one at a time, each with the state at its turn. */
  #lane: Promise<void> = Promise.resolve();

  private constructor(path: string, lock: DirLock, settings: DurabilitySettings) {
    this.path = path;
    this.#lock = lock;
    this.settings = settings;
  }

  /** Takes the directory's lock (QUIVER_ERR_LOCKED if another process holds it) and creates its layout. */
  static async open(path: string, settings: DurabilitySettings): Promise<DataDir> {
    await nodeFiles.mkdir(path).catch((err: unknown) => {
      throw ioError(`creating the data directory ${path}`, err);
    });
    const lock = await DirLock.acquire(path);
    try {
      await nodeFiles.mkdir(join(path, 'datasets'));
      return new DataDir(path, lock, settings);
    } catch (err) {
      await lock.release();
      throw ioError(`creating ${join(path, 'datasets')}`, err);
    }
  }

  /** The catalog: nextId and the datasets, or an empty one for a new directory. */
  async readCatalog(): Promise<{ nextId: number; datasets: CatalogEntry[] }> {
    const file = join(this.path, CATALOG);
    let bytes: Uint8Array;
    try {
      bytes = await readWhole(nodeFiles, file);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return { nextId: 1, datasets: [] };
      throw ioError(`reading ${file}`, err);
    }
    let parsed: CatalogFile;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as CatalogFile;
    } catch (err) {
      throw new QuiverError(ErrorCode.CORRUPT, `${file}: corrupt at byte 0: not JSON (${(err as Error).message})`, { cause: err });
    }
    if (parsed?.format !== FORMAT || parsed.version !== VERSION || !Array.isArray(parsed.datasets) || !Number.isSafeInteger(parsed.nextId)) {
      throw new QuiverError(ErrorCode.CORRUPT, `${file}: corrupt at byte 0: not a version ${VERSION} quiver catalog`);
    }
    return { nextId: parsed.nextId, datasets: parsed.datasets };
  }

  /** Replaces the catalog durably; writes are applied in call order. */
  writeCatalog(state: () => { nextId: number; datasets: CatalogEntry[] }): Promise<void> {
    const run = this.#lane.then(async () => {
      const { nextId, datasets } = state();
      const body: CatalogFile = { format: FORMAT, version: VERSION, nextId, datasets };
      try {
        await replaceFile(nodeFiles, join(this.path, CATALOG), new TextEncoder().encode(`${JSON.stringify(body, null, 1)}\n`));
      } catch (err) {
        throw ioError(`writing the catalog ${join(this.path, CATALOG)}`, err);
      }
    });
    this.#lane = run.catch(() => {});
    return run;
  }

  datasetDir(id: number): string {
    return join(this.path, 'datasets', String(id));
  }

  shardDurability(id: number, shard: number): Durability {
    return { dir: join(this.datasetDir(id), `shard-${shard}`), ...this.settings };
  }

  /** Removes a dropped dataset's files. */
  async removeDataset(id: number): Promise<void> {
    await rm(this.datasetDir(id), { recursive: true, force: true }).catch((err: unknown) => {
      throw ioError(`removing ${this.datasetDir(id)}`, err);
    });
  }

  /** Removes dataset directories no catalog entry names (a create or drop cut short by a crash). */
  async removeOrphans(ids: Set<number>): Promise<string[]> {
    const dir = join(this.path, 'datasets');
    const removed: string[] = [];
    for (const name of await nodeFiles.readdir(dir)) {
      if (/^\d+$/.test(name) && ids.has(Number(name))) continue;
      await rm(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    }
    if (removed.length > 0) await nodeFiles.syncDir(dir);
    return removed;
  }

  release(): Promise<void> {
    return this.#lock.release();
  }
}
