/**
 * Snapshots of datasets, for backups (the file format: storage/snapshot.ts):
 *
 *   <snapshotsPath>/<dataset>/<dataset>-<ISO time, ':' as '-'>.snapshot
 *   <snapshotsPath>/<dataset>/<...>.snapshot.sha256    its SHA-256, for listing
 *   <snapshotsPath>/.parts-<pid>-<id>-<random>/        shard images while one is made
 *   <snapshotsPath>/.upload-<pid>-<random>.snapshot    an upload being received (server)
 *
 * What a process that died left there (by its pid) is removed by the next
 * snapshot taken.
 *
 * A snapshot holds each shard's image at that shard's last applied write
 * (writes to other shards may land between two shards' images: it is
 * consistent per shard, as Qdrant's are per segment). Recovery restores
 * every shard under a fresh dataset id first; only when all are in place
 * does the catalog swap the name over (one catalog write when durable),
 * and then the old dataset's shards and files go. A snapshot that fails its
 * checks, or a shard that fails to restore, changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';
import type { GraphParams } from '../options.js';
import { corrupt, errorCode, ioError, nodeFiles, readWhole, replaceFile } from '../storage/index.js';
import { readSnapshot, sha256Of, writeSnapshot, type SnapshotEntry, type SnapshotShard } from '../storage/snapshot.js';
import { checkName, type Catalog, type Dataset } from './catalog.js';
import type { Durable } from './durable.js';
import type { ImageResult, OpenResult } from './protocol.js';
import { quantizationField, shardParams, storedParams } from './quantization.js';
import type { Scatter, ShardRef } from './scatter.js';
import type { SnapshotInfo, StoreOptions } from './types.js';

const SUFFIX = '.snapshot';
const SHA_SUFFIX = '.sha256';
/** Temp names carry the pid of the process writing them, so leftovers of a dead one can be told apart. */
const LEFTOVER = /^\.(parts|upload)-(\d+)-/;

/** Whether a process with this pid runs (EPERM: it does, as another user). */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}

/** Where a store's snapshots go: options.snapshotsPath, <path>/snapshots, or a directory in the OS temp dir. */
export function snapshotsDir(options: StoreOptions): string {
  const dir = options.snapshotsPath;
  if (dir !== undefined) {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('options.snapshotsPath must be a non-empty string');
    return dir;
  }
  return typeof options.path === 'string' && options.path !== '' ? join(options.path, 'snapshots') : join(tmpdir(), `quiver-snapshots-${process.pid}`);
}

/** A snapshot name as a caller gives it: one file name, no path. */
function checkSnapshotName(snapshot: unknown): asserts snapshot is string {
  if (typeof snapshot !== 'string' || snapshot === '' || /[/\\\0]/.test(snapshot) || snapshot.includes('..')) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `a snapshot name is a file name without '/', '\\' or '..' (got ${JSON.stringify(snapshot)})`);
  }
}

/** Qdrant's creation_time: ISO 8601 in UTC without the zone letter. */
const creationTime = (d: Date): string => d.toISOString().slice(0, -1);

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

export class Snapshots {
  readonly dir: string;
  readonly #scatter: Scatter;
  readonly #deps: RecoverDeps;
  /** Names being written now (two snapshots in one millisecond get distinct names). */
  readonly #pending = new Set<string>();
  #swept = false;

  constructor(dir: string, scatter: Scatter, deps: RecoverDeps) {
    this.dir = dir;
    this.#scatter = scatter;
    this.#deps = deps;
  }

  /** Every shard writes its image to a part file, in parallel; the parts become one snapshot file. */
  async create(ds: Dataset): Promise<SnapshotInfo> {
    await this.#sweep();
    const parts = join(this.dir, `.parts-${process.pid}-${ds.id}-${randomBytes(6).toString('hex')}`);
    const dsDir = join(this.dir, ds.name);
    try {
      await nodeFiles.mkdir(parts);
      await nodeFiles.mkdir(dsDir);
    } catch (err) {
      throw ioError(`creating the snapshot directory ${dsDir}`, err);
    }
    const name = await this.#freshName(ds.name, dsDir);
    try {
      const images = await Promise.all(ds.shards.map((s, i) =>
        this.#scatter.run<ImageResult>(s, { op: 'writeImage', shard: s.key, file: join(parts, `shard-${i}.img`) })));
      const entry: SnapshotEntry = {
        name: ds.name, dim: ds.dim, metric: ds.metric, M: ds.M, efConstruction: ds.efConstruction, ef: ds.ef, shards: ds.shards.length,
        ...quantizationField(ds.quantization),
      };
      const file = join(dsDir, name);
      const written = await writeSnapshot({ file, entry, parts: images.map((r, i) => ({ lsn: r.lsn, path: join(parts, `shard-${i}.img`) })) });
      // the checksum beside it, so listing does not read every snapshot; a missing one is recomputed
      await replaceFile(nodeFiles, file + SHA_SUFFIX, new TextEncoder().encode(`${written.sha256}\n`)).catch(() => {});
      return { name, creationTime: creationTime((await stat(file)).mtime), size: written.size, checksum: written.sha256 };
    } finally {
      this.#pending.delete(name);
      await rm(parts, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Once per store: removes part dirs and uploads that a dead process left. */
  async #sweep(): Promise<void> {
    if (this.#swept) return;
    this.#swept = true;
    for (const name of await nodeFiles.readdir(this.dir).catch(() => [] as string[])) {
      const m = LEFTOVER.exec(name);
      if (m !== null && !alive(Number(m[2]))) await rm(join(this.dir, name), { recursive: true, force: true }).catch(() => {});
    }
  }

  async #freshName(dataset: string, dsDir: string): Promise<string> {
    const base = `${dataset}-${new Date().toISOString().replace(/:/g, '-')}`;
    for (let n = 0; ; n++) {
      const name = `${base}${n === 0 ? '' : `-${n}`}${SUFFIX}`;
      if (this.#pending.has(name)) continue;
      this.#pending.add(name);
      if (!(await exists(join(dsDir, name)))) return name;
      this.#pending.delete(name);
    }
  }

  /** The snapshots of a dataset (it need not exist any more), by name. */
  async list(dataset: string): Promise<SnapshotInfo[]> {
    checkName(dataset);
    const dsDir = join(this.dir, dataset);
    const names = (await nodeFiles.readdir(dsDir)).filter((n) => n.endsWith(SUFFIX)).sort();
    const out: SnapshotInfo[] = [];
    for (const name of names) {
      const info = await this.#describe(join(dsDir, name), name).catch((err: unknown) => {
        // deleted meanwhile
        if (errorCode(err) === 'ENOENT') return undefined;
        throw ioError(`reading the snapshot ${join(dsDir, name)}`, err);
      });
      if (info !== undefined) out.push(info);
    }
    return out;
  }

  async #describe(file: string, name: string): Promise<SnapshotInfo> {
    const st = await stat(file);
    let checksum: string;
    try {
      checksum = new TextDecoder().decode(await readWhole(nodeFiles, file + SHA_SUFFIX)).trim();
      if (!/^[0-9a-f]{64}$/.test(checksum)) throw new Error('not a sha256');
    } catch {
      checksum = await sha256Of(file);
    }
    return { name, creationTime: creationTime(st.mtime), size: st.size, checksum };
  }

  /** The file of one snapshot; NOT_FOUND if there is none by that name. */
  async path(dataset: string, snapshot: string): Promise<string> {
    checkName(dataset);
    checkSnapshotName(snapshot);
    const file = join(this.dir, dataset, snapshot);
    if (!snapshot.endsWith(SUFFIX) || !(await exists(file))) {
      throw new QuiverError(ErrorCode.NOT_FOUND, `no snapshot ${JSON.stringify(snapshot)} of dataset ${JSON.stringify(dataset)}`);
    }
    return file;
  }

  async delete(dataset: string, snapshot: string): Promise<void> {
    const file = await this.path(dataset, snapshot);
    try {
      await rm(file, { force: true });
      await rm(file + SHA_SUFFIX, { force: true });
      await nodeFiles.syncDir(join(this.dir, dataset));
    } catch (err) {
      throw ioError(`deleting the snapshot ${file}`, err);
    }
  }

  /** Verifies a snapshot file (streaming it once): its entry and shard table. */
  read(file: string): Promise<{ entry: SnapshotEntry; shards: SnapshotShard[]; size: number }> {
    if (typeof file !== 'string' || file === '') return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, 'the snapshot file must be a non-empty string'));
    return readSnapshot(file);
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

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw ioError(`looking for ${file}`, err);
  }
}
