/**
 * quiver's snapshot file: one collection (its catalog entry and every
 * shard's image at its LSN) in one self-describing, checksummed file. It is
 * quiver's own format, not Qdrant's tar archive.
 *
 *   +-------+---------+----------+--------+------------+-------+--------------+---------+--------+
 *   | magic | version | entryLen | shards | header crc | entry | shard table  | images  | crc32c |
 *   | 8 B   | u32 = 1 | u32      | u32    | u32        | JSON  | shards x 24B | ...     | u32    |
 *   +-------+---------+----------+--------+------------+-------+--------------+---------+--------+
 *   shard table row: lsn u64, offset u64 (from the start of the file), length u64
 *   header crc: CRC32C of bytes [0, H_CRC) ++ entry ++ table, so a damaged
 *               length or count is caught before anything is read by it
 *   trailer:    CRC32C of every byte before it
 *
 * Images follow each other in shard order from the end of the table; the
 * trailer follows the last. Written by streaming each shard's part file
 * (never the whole snapshot in memory) to a temp name, fsynced, renamed,
 * and the directory fsynced. Verified by streaming it back.
 */
import { createHash } from 'node:crypto';
import { basename, dirname } from 'node:path';
import { crc32c } from './crc32c.js';
import { corrupt, ioError, nodeFiles, type FileHandle, type Files } from './files.js';

/** 'QVSNAP' + 0x0d 0x0a: a text-mode transfer that mangles line ends shows as a bad magic. */
export const SNAPSHOT_MAGIC = Uint8Array.of(0x51, 0x56, 0x53, 0x4e, 0x41, 0x50, 0x0d, 0x0a);
export const SNAPSHOT_VERSION = 1;

const H_MAGIC = 0;
const H_VERSION = H_MAGIC + SNAPSHOT_MAGIC.length;
const H_ENTRY_LEN = H_VERSION + 4;
const H_SHARDS = H_ENTRY_LEN + 4;
const H_CRC = H_SHARDS + 4;
const H_ENTRY = H_CRC + 4;
const ROW_LSN = 0;
const ROW_OFFSET = ROW_LSN + 8;
const ROW_LENGTH = ROW_OFFSET + 8;
const ROW = ROW_LENGTH + 8;
const TRAILER = 4;
/** Bounds a hostile header can claim before anything is allocated for it. */
const MAX_ENTRY = 64 * 1024;
const MAX_SHARDS = 1024;
/** Bytes per read or write while streaming. */
const CHUNK = 1024 * 1024;
const TWO_32 = 4294967296;

/** The collection as a snapshot describes it (the store's catalog entry, without its local id). */
export interface SnapshotEntry {
  name: string;
  dim: number;
  metric: string;
  M: number;
  efConstruction: number;
  ef: number;
  shards: number;
  /** The dataset's quantization (host/store/quantization.ts), checked by the store; absent when it has none. */
  quantization?: unknown;
}

export interface SnapshotShard {
  /** The LSN of the last write the image holds (0 for a shard in memory). */
  lsn: number;
  /** Where its image starts in the file, and its length. */
  offset: number;
  length: number;
}

export interface WrittenSnapshot {
  size: number;
  /** SHA-256 of the whole file, hex (Qdrant's `checksum`). */
  sha256: string;
}

function put64(v: DataView, at: number, n: number): void {
  v.setUint32(at, n % TWO_32, true);
  v.setUint32(at + 4, Math.floor(n / TWO_32), true);
}

function get64(v: DataView, at: number): number {
  return v.getUint32(at + 4, true) * TWO_32 + v.getUint32(at, true);
}

/** The header, entry and shard table for parts of these lengths. */
function encodeHeader(entry: SnapshotEntry, parts: { lsn: number; length: number }[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(entry));
  const out = new Uint8Array(H_ENTRY + json.length + parts.length * ROW);
  const v = new DataView(out.buffer);
  out.set(SNAPSHOT_MAGIC, H_MAGIC);
  v.setUint32(H_VERSION, SNAPSHOT_VERSION, true);
  v.setUint32(H_ENTRY_LEN, json.length, true);
  v.setUint32(H_SHARDS, parts.length, true);
  out.set(json, H_ENTRY);
  let offset = out.length;
  parts.forEach((p, i) => {
    const row = H_ENTRY + json.length + i * ROW;
    put64(v, row + ROW_LSN, p.lsn);
    put64(v, row + ROW_OFFSET, offset);
    put64(v, row + ROW_LENGTH, p.length);
    offset += p.length;
  });
  v.setUint32(H_CRC, crc32c(out.subarray(H_ENTRY), crc32c(out.subarray(0, H_CRC))), true);
  return out;
}

/**
 * Writes a snapshot at `file` from the shards' image part files, in shard
 * order: temp name, fsync, rename, fsync of the directory. Resolves with
 * its size and SHA-256.
 */
export async function writeSnapshot(options: {
  file: string;
  entry: SnapshotEntry;
  parts: { lsn: number; path: string }[];
  files?: Files;
}): Promise<WrittenSnapshot> {
  const { file, entry, parts } = options;
  const files = options.files ?? nodeFiles;
  if (entry.shards !== parts.length) throw new RangeError(`entry.shards is ${entry.shards} but ${parts.length} parts were given`);
  const tmp = `${file}.tmp`;
  const inputs: FileHandle[] = [];
  let out: FileHandle | undefined;
  try {
    for (const p of parts) inputs.push(await files.open(p.path, 'r'));
    const lengths = await Promise.all(inputs.map((h) => h.size()));
    const header = encodeHeader(entry, parts.map((p, i) => ({ lsn: p.lsn, length: lengths[i]! })));
    const sha = createHash('sha256');
    out = await files.open(tmp, 'w');
    let at = 0;
    let crc = 0;
    const emit = async (bytes: Uint8Array): Promise<void> => {
      await out!.write(bytes, at);
      at += bytes.length;
      crc = crc32c(bytes, crc);
      sha.update(bytes);
    };
    await emit(header);
    const buffer = new Uint8Array(CHUNK);
    for (let i = 0; i < inputs.length; i++) {
      for (let done = 0; done < lengths[i]!;) {
        const n = await inputs[i]!.read(buffer, done, Math.min(CHUNK, lengths[i]! - done));
        if (n === 0) throw new Error(`${parts[i]!.path} ended at byte ${done} of ${lengths[i]!}`);
        await emit(buffer.subarray(0, n));
        done += n;
      }
    }
    const trailer = new Uint8Array(TRAILER);
    new DataView(trailer.buffer).setUint32(0, crc, true);
    await out.write(trailer, at);
    sha.update(trailer);
    await out.sync();
    await out.close();
    out = undefined;
    await files.rename(tmp, file);
    await files.syncDir(dirname(file));
    return { size: at + TRAILER, sha256: sha.digest('hex') };
  } catch (err) {
    await out?.close().catch(() => {});
    await files.unlink(tmp).catch(() => {});
    throw ioError(`writing the snapshot ${file}`, err);
  } finally {
    await Promise.all(inputs.map((h) => h.close().catch(() => {})));
  }
}

/** Reads exactly `length` bytes at `position`, or as many as there are. */
async function readAt(h: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const n = await h.read(into.subarray(done), position + done, into.length - done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The entry's fields have the types a snapshot writes; the store checks their ranges. */
function checkEntry(file: string, raw: unknown, shards: number): SnapshotEntry {
  const e = raw as Partial<SnapshotEntry> | null;
  const fields = ['dim', 'M', 'efConstruction', 'ef', 'shards'] as const;
  if (e === null || typeof e !== 'object' || typeof e.name !== 'string' || typeof e.metric !== 'string' || !fields.every((f) => isCount(e[f]))) {
    throw corrupt(file, H_ENTRY, 'the collection entry lacks a field or has one of the wrong type');
  }
  if (e.shards !== shards) throw corrupt(file, H_SHARDS, `the entry says ${e.shards} shards, the table has ${shards}`);
  const out: SnapshotEntry = { name: e.name, dim: e.dim!, metric: e.metric, M: e.M!, efConstruction: e.efConstruction!, ef: e.ef!, shards };
  if (e.quantization !== undefined) out.quantization = e.quantization;
  return out;
}

/**
 * Verifies a snapshot by streaming it (the header's own checksum, its
 * layout, then every byte against the trailer) and returns what it holds.
 * Anything wrong is QUIVER_ERR_CORRUPT naming the file and byte offset.
 */
export async function readSnapshot(file: string, files: Files = nodeFiles): Promise<{ entry: SnapshotEntry; shards: SnapshotShard[]; size: number }> {
  let h: FileHandle;
  try {
    h = await files.open(file, 'r');
  } catch (err) {
    throw ioError(`opening the snapshot ${file}`, err);
  }
  try {
    const size = await h.size();
    const fixed = new Uint8Array(H_ENTRY);
    if (await readAt(h, fixed, 0) < H_ENTRY) throw corrupt(file, size, `ends inside the header (${size} bytes; the header alone is ${H_ENTRY})`);
    const fv = new DataView(fixed.buffer);
    if (!SNAPSHOT_MAGIC.every((b, i) => fixed[H_MAGIC + i] === b)) throw corrupt(file, H_MAGIC, 'not a quiver snapshot (bad magic)');
    const version = fv.getUint32(H_VERSION, true);
    if (version !== SNAPSHOT_VERSION) throw corrupt(file, H_VERSION, `snapshot format version ${version}; this build reads version ${SNAPSHOT_VERSION}`);
    const entryLen = fv.getUint32(H_ENTRY_LEN, true);
    const count = fv.getUint32(H_SHARDS, true);
    if (entryLen > MAX_ENTRY || count < 1 || count > MAX_SHARDS) throw corrupt(file, H_ENTRY_LEN, `implausible header (entry ${entryLen} bytes, ${count} shards)`);
    const rest = new Uint8Array(entryLen + count * ROW);
    if (await readAt(h, rest, H_ENTRY) < rest.length || H_ENTRY + rest.length + TRAILER > size) {
      throw corrupt(file, size, `ends inside the header (${size} bytes; the header says it is ${H_ENTRY + rest.length})`);
    }
    if (crc32c(rest, crc32c(fixed.subarray(0, H_CRC))) !== fv.getUint32(H_CRC, true)) throw corrupt(file, H_CRC, 'the header checksum does not match');
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(rest.subarray(0, entryLen)));
    } catch (err) {
      throw corrupt(file, H_ENTRY, `the collection entry is not JSON (${(err as Error).message})`, err);
    }
    const entry = checkEntry(file, parsed, count);
    const rv = new DataView(rest.buffer);
    const shards: SnapshotShard[] = [];
    let expected = H_ENTRY + rest.length;
    for (let i = 0; i < count; i++) {
      const row = entryLen + i * ROW;
      const s = { lsn: get64(rv, row + ROW_LSN), offset: get64(rv, row + ROW_OFFSET), length: get64(rv, row + ROW_LENGTH) };
      if (s.offset !== expected || s.length < 1 || s.offset + s.length + TRAILER > size) {
        throw corrupt(file, H_ENTRY + row, `shard ${i}'s image (${s.length} bytes at ${s.offset}) does not fit the file (${size} bytes) after the one before`);
      }
      shards.push(s);
      expected = s.offset + s.length;
    }
    if (expected + TRAILER !== size) throw corrupt(file, expected, `${size - expected - TRAILER} bytes too many after the last image`);
    let crc = 0;
    const buffer = new Uint8Array(CHUNK);
    for (let at = 0; at < expected;) {
      const n = await readAt(h, buffer.subarray(0, Math.min(CHUNK, expected - at)), at);
      if (n === 0) throw corrupt(file, at, 'the file shrank while it was read');
      crc = crc32c(buffer.subarray(0, n), crc);
      at += n;
    }
    const trailer = new Uint8Array(TRAILER);
    await readAt(h, trailer, expected);
    if (new DataView(trailer.buffer).getUint32(0, true) !== crc) {
      throw corrupt(file, expected, `the checksum of bytes 0 to ${expected} does not match the trailer`);
    }
    return { entry, shards, size };
  } catch (err) {
    throw ioError(`reading the snapshot ${basename(file)}`, err);
  } finally {
    await h.close().catch(() => {});
  }
}

/** SHA-256 of a file, hex, by streaming it. */
export async function sha256Of(file: string, files: Files = nodeFiles): Promise<string> {
  const h = await files.open(file, 'r');
  try {
    const sha = createHash('sha256');
    const buffer = new Uint8Array(CHUNK);
    for (let at = 0; ;) {
      const n = await h.read(buffer, at, CHUNK);
      if (n === 0) break;
      sha.update(buffer.subarray(0, n));
      at += n;
    }
    return sha.digest('hex');
  } finally {
    await h.close();
  }
}
