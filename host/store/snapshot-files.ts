/**
 * A directory of snapshot files (the file format: storage/snapshot.ts), the
 * part a Store's snapshots (snapshots.ts) and a cluster node's
 * (cluster-snapshots.ts) share:
 *
 *   <dir>/<dataset>/<dataset>-<ISO time, ':' as '-'>.snapshot
 *   <dir>/<dataset>/<...>.snapshot.sha256    its SHA-256, for listing
 *   <dir>/.parts-<pid>-<tag>-<random>/       shard images while one is made
 *   <dir>/.upload-<pid>-<random>.snapshot    an upload being received (server)
 *
 * What a process that died left there (by its pid) is removed by the next
 * snapshot taken.
 */
import { randomBytes } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';
import { errorCode, ioError, nodeFiles, readWhole, replaceFile } from '../storage/index.js';
import { readSnapshot, sha256Of, writeSnapshot, type SnapshotEntry, type SnapshotShard } from '../storage/snapshot.js';
import { checkName } from './catalog.js';
import type { SnapshotInfo } from './types.js';

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

/** A snapshot name as a caller gives it: one file name, no path. */
function checkSnapshotName(snapshot: unknown): asserts snapshot is string {
  if (typeof snapshot !== 'string' || snapshot === '' || /[/\\\0]/.test(snapshot) || snapshot.includes('..')) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `a snapshot name is a file name without '/', '\\' or '..' (got ${JSON.stringify(snapshot)})`);
  }
}

/** Qdrant's creation_time: ISO 8601 in UTC without the zone letter. */
const creationTime = (d: Date): string => d.toISOString().slice(0, -1);

/** One shard's part of a snapshot being made: the image file and the LSN it holds. */
export interface SnapshotPart {
  lsn: number;
  path: string;
}

export class SnapshotFiles {
  readonly dir: string;
  /** Names being written now (two snapshots in one millisecond get distinct names). */
  readonly #pending = new Set<string>();
  #swept = false;

  constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * A new snapshot of `entry.name`: `parts` writes every shard's image into
   * the part directory it is given (`tag` names it), and the parts become
   * one snapshot file; the part directory goes either way.
   */
  async write(entry: SnapshotEntry, tag: string, parts: (dir: string) => Promise<SnapshotPart[]>): Promise<SnapshotInfo> {
    await this.#sweep();
    const partsDir = join(this.dir, `.parts-${process.pid}-${tag}-${randomBytes(6).toString('hex')}`);
    const dsDir = join(this.dir, entry.name);
    try {
      await nodeFiles.mkdir(partsDir);
      await nodeFiles.mkdir(dsDir);
    } catch (err) {
      throw ioError(`creating the snapshot directory ${dsDir}`, err);
    }
    const name = await this.#freshName(entry.name, dsDir);
    try {
      const written = await parts(partsDir);
      const file = join(dsDir, name);
      const w = await writeSnapshot({ file, entry, parts: written });
      // the checksum beside it, so listing does not read every snapshot; a missing one is recomputed
      await replaceFile(nodeFiles, file + SHA_SUFFIX, new TextEncoder().encode(`${w.sha256}\n`)).catch(() => {});
      return { name, creationTime: creationTime((await stat(file)).mtime), size: w.size, checksum: w.sha256 };
    } finally {
      this.#pending.delete(name);
      await rm(partsDir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Once per process: removes part dirs and uploads that a dead process left. */
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
