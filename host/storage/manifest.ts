/**
 * The manifest of a shard directory: which checkpoint image is current, at
 * which LSN, and the one before it. Little-endian:
 *
 *   0       4         8           16          24         28         32
 *   +-------+---------+-----------+-----------+----------+----------+--------------+---------------+--------+
 *   | magic | version | lsn       | prev lsn  | name len | prev len | name (utf-8) | prev (utf-8)  | crc32c |
 *   | QVMF  | u32 = 1 | u64       | u64       | u32      | u32      | current file | previous file | u32    |
 *   +-------+---------+-----------+-----------+----------+----------+--------------+---------------+--------+
 *   prev len = 0: no previous image. crc32c covers every byte before it.
 *
 * Replaced atomically (write MANIFEST.tmp, fsync, rename, fsync the
 * directory), so a crash leaves the old or the new manifest, never a mix.
 * Before each replacement the outgoing manifest is kept, the same way, as
 * MANIFEST.prev: if MANIFEST is ever damaged (a bad sector, not a crash),
 * reading falls back to it; its image and the log after it are still on
 * disk (checkpoint.ts keeps two generations).
 */
import { join } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';
import { crc32c } from './crc32c.js';
import { errorCode, readWhole, replaceFile, type Files } from './files.js';

export const MANIFEST = 'MANIFEST';
export const MANIFEST_PREV = 'MANIFEST.prev';

const MAGIC = 0x464d5651; // 'QVMF'
const VERSION = 1;
const M_MAGIC = 0;
const M_VERSION = M_MAGIC + 4;
const M_LSN = M_VERSION + 4;
const M_PREV_LSN = M_LSN + 8;
const M_NAME_LEN = M_PREV_LSN + 8;
const M_PREV_LEN = M_NAME_LEN + 4;
const M_NAMES = M_PREV_LEN + 4;
const CRC_BYTES = 4;
const MAX_NAME = 255;
const TWO_32 = 4294967296;

/** An image file in the shard directory (a name, not a path) and the LSN it contains. */
export interface ImageRef {
  file: string;
  lsn: number;
}

export interface Manifest {
  current: ImageRef;
  previous: ImageRef | null;
}

export interface ReadManifest {
  manifest: Manifest;
  /** The file it came from (MANIFEST, or MANIFEST.prev after a fallback). */
  path: string;
  /** Why MANIFEST was not used, when it came from MANIFEST.prev. */
  fallbackReason: string | null;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

function checkRef(ref: ImageRef, what: string): Uint8Array {
  if (!Number.isSafeInteger(ref.lsn) || ref.lsn < 0) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `manifest: ${what} lsn must be a non-negative integer`);
  const name = utf8.encode(ref.file);
  if (name.length === 0 || name.length > MAX_NAME || ref.file.includes('/') || ref.file.includes('\\')) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `manifest: ${what} file must be a plain file name of 1..${MAX_NAME} bytes`);
  }
  return name;
}

export function encodeManifest(m: Manifest): Uint8Array {
  const name = checkRef(m.current, 'current');
  const prev = m.previous === null ? new Uint8Array(0) : checkRef(m.previous, 'previous');
  const out = new Uint8Array(M_NAMES + name.length + prev.length + CRC_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(M_MAGIC, MAGIC, true);
  v.setUint32(M_VERSION, VERSION, true);
  const lsnPair = (at: number, lsn: number): void => {
    v.setUint32(at, lsn % TWO_32, true);
    v.setUint32(at + 4, Math.floor(lsn / TWO_32), true);
  };
  lsnPair(M_LSN, m.current.lsn);
  lsnPair(M_PREV_LSN, m.previous?.lsn ?? 0);
  v.setUint32(M_NAME_LEN, name.length, true);
  v.setUint32(M_PREV_LEN, prev.length, true);
  out.set(name, M_NAMES);
  out.set(prev, M_NAMES + name.length);
  const crcAt = out.length - CRC_BYTES;
  v.setUint32(crcAt, crc32c(out.subarray(0, crcAt)), true);
  return out;
}

/** Decodes a manifest; a damaged one is QUIVER_ERR_CORRUPT naming `path`. */
export function decodeManifest(bytes: Uint8Array, path: string): Manifest {
  const bad = (why: string): QuiverError => new QuiverError(ErrorCode.CORRUPT, `${path}: not a valid manifest: ${why}`);
  if (bytes.length < M_NAMES + CRC_BYTES) throw bad(`${bytes.length} bytes, shorter than a manifest`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const crcAt = bytes.length - CRC_BYTES;
  if (crc32c(bytes.subarray(0, crcAt)) !== v.getUint32(crcAt, true)) throw bad('checksum mismatch');
  if (v.getUint32(M_MAGIC, true) !== MAGIC) throw bad('wrong magic');
  if (v.getUint32(M_VERSION, true) !== VERSION) throw bad(`unknown version ${v.getUint32(M_VERSION, true)}`);
  const nameLen = v.getUint32(M_NAME_LEN, true);
  const prevLen = v.getUint32(M_PREV_LEN, true);
  if (M_NAMES + nameLen + prevLen !== crcAt || nameLen === 0) throw bad('name lengths do not match the file');
  const lsn = (at: number): number => v.getUint32(at + 4, true) * TWO_32 + v.getUint32(at, true);
  try {
    const file = fromUtf8.decode(bytes.subarray(M_NAMES, M_NAMES + nameLen));
    const prev = fromUtf8.decode(bytes.subarray(M_NAMES + nameLen, crcAt));
    return { current: { file, lsn: lsn(M_LSN) }, previous: prevLen === 0 ? null : { file: prev, lsn: lsn(M_PREV_LSN) } };
  } catch {
    throw bad('file name is not UTF-8');
  }
}

async function readOne(files: Files, path: string): Promise<Manifest | null> {
  let bytes: Uint8Array;
  try {
    bytes = await readWhole(files, path);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return null;
    throw new QuiverError(ErrorCode.IO, `reading ${path} failed: ${(err as Error).message}`, { cause: err });
  }
  return decodeManifest(bytes, path);
}

/**
 * The manifest of `dir`: MANIFEST, or MANIFEST.prev if MANIFEST is damaged
 * or missing; null if there is neither (nothing was ever checkpointed).
 * Both damaged: QUIVER_ERR_CORRUPT naming both files.
 */
export async function readManifest(files: Files, dir: string): Promise<ReadManifest | null> {
  const path = join(dir, MANIFEST);
  let reason: string;
  let missing = false;
  try {
    const m = await readOne(files, path);
    if (m) return { manifest: m, path, fallbackReason: null };
    reason = `${path} is missing`;
    missing = true;
  } catch (err) {
    if (!(err instanceof QuiverError) || err.code !== ErrorCode.CORRUPT) throw err;
    reason = err.message;
  }
  const prevPath = join(dir, MANIFEST_PREV);
  let prev: Manifest | null;
  try {
    prev = await readOne(files, prevPath);
  } catch (err) {
    if (!(err instanceof QuiverError) || err.code !== ErrorCode.CORRUPT) throw err;
    throw new QuiverError(ErrorCode.CORRUPT, `${reason}; and its previous copy: ${err.message}`, { cause: err });
  }
  if (prev) return { manifest: prev, path: prevPath, fallbackReason: reason };
  if (missing) return null;
  throw new QuiverError(ErrorCode.CORRUPT, `${reason}; and there is no previous copy (${prevPath})`);
}

/**
 * Replaces the manifest of `dir` with `next`, atomically. `outgoing` (the
 * manifest being replaced, if any) is first kept as MANIFEST.prev.
 */
export async function writeManifest(files: Files, dir: string, next: Manifest, outgoing: Manifest | null): Promise<void> {
  const bytes = encodeManifest(next);
  if (outgoing) await replaceFile(files, join(dir, MANIFEST_PREV), encodeManifest(outgoing));
  await replaceFile(files, join(dir, MANIFEST), bytes);
}
