/**
 * The file seam: the few operations the storage layer needs, so tests can
 * swap the real file system for one that loses its page cache (sim-files.ts).
 *
 * Durability contract the layer relies on (POSIX, as on Linux ext4/xfs):
 * - a file's bytes and size are durable after `datasync()` / `sync()`;
 * - a directory entry (create, rename, unlink) is durable only after
 *   `syncDir()` of the directory that holds it;
 * - `rename()` replaces its target atomically.
 * Errors are Node's system errors (`err.code` = 'ENOSPC', 'EIO', ...); the
 * layers above turn them into coded QuiverErrors.
 */
import * as fs from 'node:fs/promises';
import { dirname } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';

/** 'r' read; 'r+' read/write an existing file; 'w' create or truncate; 'wx' create, fail if it exists. */
export type OpenFlags = 'r' | 'r+' | 'w' | 'wx';

export interface FileHandle {
  /** Reads up to `length` bytes at `position` into `into[0..]`; returns how many were read (0 at the end). */
  read(into: Uint8Array, position: number, length?: number): Promise<number>;
  /** Writes all of `data` at `position` (a pwrite; a short write is retried until done or an error). */
  write(data: Uint8Array, position: number): Promise<void>;
  /** fdatasync: the file's bytes and size are durable. */
  datasync(): Promise<void>;
  /** fsync: bytes and all metadata are durable. */
  sync(): Promise<void>;
  truncate(size: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface Files {
  open(path: string, flags: OpenFlags): Promise<FileHandle>;
  /** Names (not paths) of the entries in `dir`; [] if it does not exist. */
  readdir(dir: string): Promise<string[]>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Creates `dir` and its parents if missing, durably. */
  mkdir(dir: string): Promise<void>;
  /** fsync of a directory: the entries created, renamed or removed in it are durable. */
  syncDir(dir: string): Promise<void>;
}

/** Reads bytes [offset, offset + length) of a file; QUIVER_ERR_CORRUPT if it ends first. */
export async function readRange(files: Files, path: string, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const h = await files.open(path, 'r');
  try {
    for (let done = 0; done < length;) {
      const n = await h.read(out.subarray(done), offset + done, length - done);
      if (n === 0) throw corrupt(path, offset + done, `the file ends inside the ${length} bytes from ${offset}`);
      done += n;
    }
  } finally {
    await h.close();
  }
  return out;
}

/** Reads a whole file (the storage layer's files are bounded: manifests, images, a segment window). */
export async function readWhole(files: Files, path: string): Promise<Uint8Array> {
  const h = await files.open(path, 'r');
  try {
    const size = await h.size();
    const out = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const n = await h.read(out.subarray(done), done, size - done);
      if (n === 0) break;
      done += n;
    }
    return done === size ? out : out.subarray(0, done);
  } finally {
    await h.close();
  }
}

/** Writes `data` to `path` durably and atomically: temp file, fsync, rename, fsync of the directory. */
export async function replaceFile(files: Files, path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const h = await files.open(tmp, 'w');
  try {
    await h.write(data, 0);
    await h.sync();
  } finally {
    await h.close();
  }
  await files.rename(tmp, path);
  await files.syncDir(dirname(path));
}

export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

class NodeFileHandle implements FileHandle {
  constructor(private readonly h: fs.FileHandle) {}

  async read(into: Uint8Array, position: number, length = into.length): Promise<number> {
    const { bytesRead } = await this.h.read(into, 0, length, position);
    return bytesRead;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.h.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  datasync(): Promise<void> {
    return this.h.datasync();
  }

  sync(): Promise<void> {
    return this.h.sync();
  }

  truncate(size: number): Promise<void> {
    return this.h.truncate(size);
  }

  async size(): Promise<number> {
    return (await this.h.stat()).size;
  }

  close(): Promise<void> {
    return this.h.close();
  }
}

/** The real file system (node:fs/promises). */
export const nodeFiles: Files = {
  async open(path, flags) {
    return new NodeFileHandle(await fs.open(path, flags));
  },
  async readdir(dir) {
    try {
      return await fs.readdir(dir);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return [];
      throw err;
    }
  },
  rename: (from, to) => fs.rename(from, to),
  unlink: (path) => fs.unlink(path),
  async mkdir(dir) {
    const first = await fs.mkdir(dir, { recursive: true });
    // Make each directory that was created durable in its parent.
    if (first !== undefined) {
      for (let d = dir; ; d = dirname(d)) {
        await nodeFiles.syncDir(dirname(d));
        if (d === first || dirname(d) === d) break;
      }
    }
  },
  async syncDir(dir) {
    let h: fs.FileHandle | undefined;
    try {
      h = await fs.open(dir, 'r');
      await h.sync();
    } catch (err) {
      // Windows cannot open or fsync a directory; its renames are durable without it.
      const code = errorCode(err);
      if (process.platform !== 'win32' || (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL')) throw err;
    } finally {
      await h?.close();
    }
  },
};

/** A QUIVER_ERR_CORRUPT naming the file and the byte offset. */
export function corrupt(file: string, offset: number, why: string, cause?: unknown): QuiverError {
  return new QuiverError(ErrorCode.CORRUPT, `${file}: corrupt at byte ${offset}: ${why}`, cause === undefined ? {} : { cause });
}

/** A file-system failure as QUIVER_ERR_IO, saying what was being done and the system code (QuiverErrors pass through). */
export function ioError(what: string, err: unknown): QuiverError {
  if (err instanceof QuiverError) return err;
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return new QuiverError(ErrorCode.IO, `${what} failed${code ? ` (${code})` : ''}: ${message}`, { cause: err });
}
