/**
 * Checkpoint images: a shard's bytes at a known LSN, as a file.
 *
 *   image-00000000000000000007.qvi   (named by a checkpoint sequence number)
 *   +--------------------------+--------+---------+--------+--------+--------+
 *   | image (length bytes)     | magic  | version | lsn    | length | crc32c |
 *   | as the caller streams it | QVIT   | u32 = 1 | u64    | u64    | u32    |
 *   +--------------------------+--------+---------+--------+--------+--------+
 *                              \___________ trailer, 28 bytes ____________/
 *   crc32c covers the image and the trailer up to itself.
 *
 * The image is written from caller-supplied chunks (for the host: views of
 * a shard's linear memory), checksummed as they pass, so no second copy of
 * the shard is made. Two generations are kept, the current image and the
 * previous one, and the log from just after the previous one's LSN: if the
 * current image is ever found damaged, recovery falls back to the previous
 * image and replays the log from there (an image without the log after it
 * would be no fallback).
 *
 * Order of a checkpoint (a crash at any point leaves a recoverable state):
 *   1. write image-N.qvi.tmp, fsync          crash: the old manifest rules; the tmp is garbage
 *   2. rename to image-N.qvi, fsync the dir  crash: same; image-N is garbage
 *   3. replace the manifest (manifest.ts)    crash before its rename: old state; after: new state
 *   4. delete log segments wholly before the previous image's LSN + 1
 *   5. delete images other than current and previous, and leftovers
 */
import { join } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';
import { crc32c } from './crc32c.js';
import { errorCode, ioError, nodeFiles, type Files } from './files.js';
import { readManifest, writeManifest, MANIFEST, MANIFEST_PREV, type ImageRef, type Manifest } from './manifest.js';

const MAGIC = 0x54495651; // 'QVIT'
const VERSION = 1;
const T_MAGIC = 0;
const T_VERSION = T_MAGIC + 4;
const T_LSN = T_VERSION + 4;
const T_LENGTH = T_LSN + 8;
const T_CRC = T_LENGTH + 8;
export const IMAGE_TRAILER = T_CRC + 4;
const TWO_32 = 4294967296;
const IMAGE_NAME = /^image-(\d{20})\.qvi$/;
const LEFTOVER = /^(image-\d{20}\.qvi|MANIFEST(\.prev)?)\.tmp$/;

export function imageName(seq: number): string {
  return `image-${String(seq).padStart(20, '0')}.qvi`;
}

export interface CheckpointOptions {
  /** The shard directory holding MANIFEST and the images. */
  dir: string;
  files?: Files;
  /** The LSN of the last record the image contains. */
  lsn: number;
  /** The image's bytes, in order; each chunk is read once and not kept. */
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  /** The shard's log, whose segments before the previous image are then deleted. */
  wal?: { truncateBefore(lsn: number): Promise<number> };
}

export interface CheckpointResult {
  manifest: Manifest;
  bytes: number;
  removedSegments: number;
  removedFiles: string[];
}

function put64(v: DataView, at: number, n: number): void {
  v.setUint32(at, n % TWO_32, true);
  v.setUint32(at + 4, Math.floor(n / TWO_32), true);
}

function get64(v: DataView, at: number): number {
  return v.getUint32(at + 4, true) * TWO_32 + v.getUint32(at, true);
}

/** Writes a checkpoint image and makes it current (steps 1-5 above). */
export async function writeCheckpoint(options: CheckpointOptions): Promise<CheckpointResult> {
  const { dir, lsn, chunks, wal } = options;
  const files = options.files ?? nodeFiles;
  if (typeof dir !== 'string' || dir === '') throw new TypeError('options.dir must be a non-empty string');
  if (!Number.isSafeInteger(lsn) || lsn < 0) throw new RangeError('options.lsn must be a non-negative integer');
  await files.mkdir(dir).catch((err: unknown) => {
    throw ioError(`creating ${dir}`, err);
  });
  const read = await readManifest(files, dir);
  const outgoing = read?.manifest ?? null;
  if (outgoing && lsn < outgoing.current.lsn) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `checkpoint at LSN ${lsn} is older than the current image (LSN ${outgoing.current.lsn})`);
  }
  const names = await files.readdir(dir).catch((err: unknown) => {
    throw ioError(`listing ${dir}`, err);
  });
  let seq = 0;
  for (const name of [...names, outgoing?.current.file ?? '', outgoing?.previous?.file ?? '']) {
    const m = IMAGE_NAME.exec(name);
    if (m) seq = Math.max(seq, Number(m[1]));
  }
  const file = imageName(seq + 1);
  const path = join(dir, file);

  // 1. the image, under a temporary name
  let bytes = 0;
  const tmp = `${path}.tmp`;
  try {
    const h = await files.open(tmp, 'w');
    try {
      let crc = 0;
      for await (const chunk of chunks) {
        if (!(chunk instanceof Uint8Array)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'checkpoint: every chunk must be a Uint8Array');
        await h.write(chunk, bytes);
        crc = crc32c(chunk, crc);
        bytes += chunk.length;
      }
      const trailer = new Uint8Array(IMAGE_TRAILER);
      const v = new DataView(trailer.buffer);
      v.setUint32(T_MAGIC, MAGIC, true);
      v.setUint32(T_VERSION, VERSION, true);
      put64(v, T_LSN, lsn);
      put64(v, T_LENGTH, bytes);
      v.setUint32(T_CRC, crc32c(trailer.subarray(0, T_CRC), crc), true);
      await h.write(trailer, bytes);
      await h.sync();
    } finally {
      await h.close();
    }
    // 2. into place
    await files.rename(tmp, path);
    await files.syncDir(dir);
  } catch (err) {
    throw ioError(`writing checkpoint image ${path}`, err);
  }

  // 3. the manifest
  const manifest: Manifest = { current: { file, lsn }, previous: outgoing?.current ?? null };
  try {
    await writeManifest(files, dir, manifest, outgoing);
  } catch (err) {
    throw ioError(`replacing the manifest in ${dir}`, err);
  }

  // 4. the log the older kept image covers
  const removedSegments = wal && manifest.previous ? await wal.truncateBefore(manifest.previous.lsn + 1) : 0;

  // 5. images no manifest needs any more
  const removedFiles = await removeUnused(files, dir, manifest);
  return { manifest, bytes, removedSegments, removedFiles };
}

/** Deletes images other than the manifest's two, and temporary files of interrupted checkpoints. */
async function removeUnused(files: Files, dir: string, m: Manifest): Promise<string[]> {
  const keep = new Set([m.current.file, m.previous?.file]);
  const removed: string[] = [];
  try {
    for (const name of await files.readdir(dir)) {
      if ((IMAGE_NAME.test(name) && !keep.has(name)) || LEFTOVER.test(name)) {
        try {
          await files.unlink(join(dir, name));
        } catch (err) {
          if (errorCode(err) !== 'ENOENT') throw err;
        }
        removed.push(name);
      }
    }
    if (removed.length > 0) await files.syncDir(dir);
  } catch (err) {
    throw ioError(`removing old images in ${dir}`, err);
  }
  return removed;
}

export interface LoadedImage {
  /** The image bytes (the trailer removed). */
  bytes: Uint8Array;
  lsn: number;
  file: string;
  /** Why the newest image was not used, when an older one was. */
  fallbackReason: string | null;
  manifest: Manifest;
}

/** Reads and verifies one image file; QUIVER_ERR_CORRUPT names the file if it is damaged. */
export function readImage(files: Files, dir: string, ref: ImageRef): Promise<Uint8Array> {
  return readImageInto(files, dir, ref, intoNewBuffer);
}

async function intoNewBuffer(length: number, fill: (into: Uint8Array) => Promise<void>): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await fill(bytes);
  return bytes;
}

/**
 * The newest valid checkpoint of `dir`, falling back to the previous image
 * (and to MANIFEST.prev) when one is damaged; null if there is none yet.
 * Recovery then replays the log from `lsn + 1`.
 */
export async function loadCheckpoint(options: { dir: string; files?: Files }): Promise<LoadedImage | null> {
  const loaded = await loadCheckpointInto(options, intoNewBuffer);
  return loaded === null ? null : { bytes: loaded.value, lsn: loaded.lsn, file: loaded.file, fallbackReason: loaded.fallbackReason, manifest: loaded.manifest };
}

/** Bytes read per call when an image streams into its destination. */
const READ_CHUNK = 4 * 1024 * 1024;

/**
 * Reads one image file straight into memory the caller provides: `load`
 * gets the image's length and a `fill(into)` that reads the file into
 * `into` and verifies its checksum; whatever `load` returns is the result.
 * The trailer is checked before `load` runs. QUIVER_ERR_CORRUPT names the
 * file and offset.
 */
export async function readImageInto<T>(
  files: Files, dir: string, ref: ImageRef, load: (length: number, fill: (into: Uint8Array) => Promise<void>) => T | Promise<T>,
): Promise<T> {
  const path = join(dir, ref.file);
  const bad = (offset: number, why: string): QuiverError => new QuiverError(ErrorCode.CORRUPT, `${path}: corrupt at byte ${offset}: ${why}`);
  let h;
  try {
    h = await files.open(path, 'r');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new QuiverError(ErrorCode.CORRUPT, `${path}: the image the manifest names is missing`);
    throw ioError(`opening ${path}`, err);
  }
  try {
    const size = await h.size();
    if (size < IMAGE_TRAILER) throw bad(0, `${size} bytes, shorter than an image trailer`);
    const at = size - IMAGE_TRAILER;
    const trailer = new Uint8Array(IMAGE_TRAILER);
    if ((await h.read(trailer, at, IMAGE_TRAILER)) !== IMAGE_TRAILER) throw bad(at, 'the trailer cannot be read');
    const v = new DataView(trailer.buffer);
    if (v.getUint32(T_MAGIC, true) !== MAGIC) throw bad(at, 'no image trailer (wrong magic)');
    if (v.getUint32(T_VERSION, true) !== VERSION) throw bad(at + T_VERSION, `unknown image version ${v.getUint32(T_VERSION, true)}`);
    if (get64(v, T_LENGTH) !== at) throw bad(at + T_LENGTH, `trailer says ${get64(v, T_LENGTH)} bytes, the file holds ${at}`);
    if (get64(v, T_LSN) !== ref.lsn) throw bad(at + T_LSN, `image is at LSN ${get64(v, T_LSN)}, the manifest says ${ref.lsn}`);
    const handle = h;
    return await load(at, async (into) => {
      let crc = 0;
      for (let done = 0; done < at;) {
        const n = await handle.read(into.subarray(done, Math.min(at, done + READ_CHUNK)), done, Math.min(READ_CHUNK, at - done));
        if (n === 0) throw bad(done, 'the file ends inside the image');
        crc = crc32c(into.subarray(done, done + n), crc);
        done += n;
      }
      if (crc32c(trailer.subarray(0, T_CRC), crc) !== v.getUint32(T_CRC, true)) throw bad(at + T_CRC, 'checksum mismatch');
    });
  } catch (err) {
    if (err instanceof QuiverError) throw err;
    throw ioError(`reading ${path}`, err);
  } finally {
    await h.close().catch(() => {});
  }
}

/**
 * loadCheckpoint with the image read straight into caller memory (see
 * readImageInto): the newest valid image, else the previous one; null when
 * the directory has none. A `load` that throws QUIVER_ERR_CORRUPT (the
 * caller's own check of the bytes) falls back the same way.
 */
export async function loadCheckpointInto<T>(
  options: { dir: string; files?: Files }, load: (length: number, fill: (into: Uint8Array) => Promise<void>, path: string) => T | Promise<T>,
): Promise<{ value: T; lsn: number; file: string; fallbackReason: string | null; manifest: Manifest } | null> {
  const files = options.files ?? nodeFiles;
  const { dir } = options;
  const read = await readManifest(files, dir);
  if (!read) return null;
  const { manifest } = read;
  const reasons: string[] = read.fallbackReason ? [read.fallbackReason] : [];
  for (const ref of [manifest.current, manifest.previous]) {
    if (!ref) continue;
    try {
      const value = await readImageInto(files, dir, ref, (length, fill) => load(length, fill, join(dir, ref.file)));
      return { value, lsn: ref.lsn, file: ref.file, fallbackReason: reasons.length ? reasons.join('; ') : null, manifest };
    } catch (err) {
      if (!(err instanceof QuiverError) || err.code !== ErrorCode.CORRUPT) throw err;
      reasons.push(err.message);
    }
  }
  throw new QuiverError(ErrorCode.CORRUPT, `no valid checkpoint image in ${dir} (${read.path}): ${reasons.join('; ')}`);
}

export { MANIFEST, MANIFEST_PREV };
