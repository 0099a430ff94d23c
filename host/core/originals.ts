/**
 * Disk mode (`alwaysRam: false`): the f32 originals of a spilled quantized
 * shard live in an OriginalsFile, one per shard generation, `dim * 4` bytes
 * a slot at `slot * dim * 4` (cosine: the normalised vector, the bytes the
 * core would have kept). The core keeps only the hot records (links, codes,
 * id); the host reads originals with positioned reads for the re-rank,
 * `get` and compaction, and writes them with positioned writes as inserts
 * are applied (assembly/qshard.ts "DISK MODE" has the core's side).
 *
 * Which file pairs with which image, its fsync order and its deletion are
 * the store's business (docs/quantization.md); this file only does the I/O.
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { ErrorCode, QuiverError } from '../errors.js';
import { H, MAX_DIM } from './abi.js';
import type { Shard } from './shard.js';
import { coreStatusError } from './status.js';

function ioError(what: string, path: string, err: unknown): QuiverError {
  return new QuiverError(ErrorCode.IO, `${what} ${path}: ${(err as Error).message}`, { cause: err });
}

/** One generation's file of originals; positioned reads and writes on its fd. */
export class OriginalsFile {
  readonly path: string;
  readonly dim: number;
  /** Bytes a slot: dim * 4. */
  readonly stride: number;
  #fd: number | undefined;

  private constructor(path: string, dim: number, fd: number) {
    this.path = path;
    this.dim = dim;
    this.stride = dim * Float32Array.BYTES_PER_ELEMENT;
    this.#fd = fd;
  }

  static #checkDim(dim: number): void {
    if (!Number.isInteger(dim) || dim < 1 || dim > MAX_DIM) throw new RangeError(`dim must be an integer from 1 to ${MAX_DIM}`);
  }

  /** A new, empty file at `path` (an existing one is truncated). */
  static create(path: string, dim: number): OriginalsFile {
    OriginalsFile.#checkDim(dim);
    let fd: number;
    try {
      fd = openSync(path, 'w+');
    } catch (err) {
      throw ioError('cannot create the originals file', path, err);
    }
    return new OriginalsFile(path, dim, fd);
  }

  /** An existing file; CORRUPT when its length is not a multiple of dim * 4. */
  static open(path: string, dim: number): OriginalsFile {
    OriginalsFile.#checkDim(dim);
    let fd: number;
    try {
      fd = openSync(path, 'r+');
    } catch (err) {
      throw ioError('cannot open the originals file', path, err);
    }
    const file = new OriginalsFile(path, dim, fd);
    const size = file.byteLength;
    if (size % file.stride !== 0) {
      file.close();
      throw new QuiverError(ErrorCode.CORRUPT, `the originals file ${path} is ${size} bytes, not a multiple of ${file.stride} (dim ${dim} x 4)`);
    }
    return file;
  }

  get closed(): boolean {
    return this.#fd === undefined;
  }

  #handle(): number {
    if (this.#fd === undefined) throw new QuiverError(ErrorCode.CLOSED, `the originals file ${this.path} is closed`);
    return this.#fd;
  }

  get byteLength(): number {
    try {
      return fstatSync(this.#handle()).size;
    } catch (err) {
      if (err instanceof QuiverError) throw err;
      throw ioError('cannot stat', this.path, err);
    }
  }

  /** Slots the file holds (whole strides). */
  get slots(): number {
    return Math.floor(this.byteLength / this.stride);
  }

  /** Reads `count` slots from `slot` on into `into` (count * stride bytes). */
  read(slot: number, into: Uint8Array, count = 1): void {
    const fd = this.#handle();
    const want = count * this.stride;
    let done = 0;
    try {
      while (done < want) {
        const n = readSync(fd, into, done, want - done, slot * this.stride + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw ioError('cannot read', this.path, err);
    }
    if (done < want) {
      throw new QuiverError(ErrorCode.CORRUPT, `the originals file ${this.path} ends before slot ${slot + Math.floor(done / this.stride)} (${this.byteLength} bytes)`);
    }
  }

  /** Writes whole slots from `slot` on: `bytes` is a multiple of the stride. */
  write(slot: number, bytes: Uint8Array): void {
    const fd = this.#handle();
    let done = 0;
    try {
      while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, slot * this.stride + done);
    } catch (err) {
      throw ioError('cannot write', this.path, err);
    }
  }

  /** fdatasync: before an image of the shard is published. */
  sync(): void {
    try {
      fdatasyncSync(this.#handle());
    } catch (err) {
      if (err instanceof QuiverError) throw err;
      throw ioError('cannot sync', this.path, err);
    }
  }

  /** Idempotent. */
  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    closeSync(fd);
  }
}

/** What a disk-mode shard is given: its file (Shard.create, Shard.loadImage, compaction). */
export interface DiskOptions {
  originals: OriginalsFile;
}

function check(status: number, what: string): number {
  if (status < 0) throw coreStatusError(status, what);
  return status;
}

/** The header says disk mode, not spilled, frozen (FREEZE_AT live reached): the spill is due. */
export function spillDue(shard: Shard): boolean {
  return shard.header32(H.DISK) === 1 && shard.header32(H.ORIG_GEN) === 0 && shard.header32(H.QFROZEN) === 1;
}

/**
 * The spill, once the core has frozen its quantizer (the insert that
 * brought it to FREEZE_AT live learned it, as in RAM): every slot's original
 * goes to `file` (one positioned write), then the core frees its cold slabs
 * and takes generation 1. A file error throws and leaves the shard in its
 * RAM phase (frozen, built on codes as a spilled one is: the next insert
 * tries again).
 */
export function spill(shard: Shard, file: OriginalsFile): void {
  const slots = check(shard.core((c) => c.spillBegin()), 'spill');
  const stride = file.stride;
  const all = new Uint8Array(slots * stride);
  for (let s = 0; s < slots; s++) {
    const ptr = shard.core((c) => c.originalAt(s));
    all.set(shard.bytes(ptr, stride), s * stride);
  }
  file.write(0, all);
  check(shard.core((c) => c.spillFinish(1)), 'spill');
}

/** The file error that put off a shard's last spill attempt (cleared when one succeeds). */
const spillErrors = new WeakMap<Shard, QuiverError>();

/** Why the spill that is due has not happened yet: the file error of its last attempt, if any. */
export function spillDeferred(shard: Shard): QuiverError | undefined {
  return spillErrors.get(shard);
}

/**
 * After an applied insert into slot `slot` of a disk-mode shard: its
 * original to the file, or the spill. No write leaves a point whose original
 * is nowhere: a spilled shard's failed write takes the point out again
 * (`unapply`) and throws QUIVER_ERR_IO (the write reports it unapplied; an
 * upsert's previous version was replaced, so its id is absent until a
 * restart replays the log, which brings that version back); a failed spill
 * changes nothing that was applied (the originals are still in RAM) and is
 * tried again by the next insert.
 */
export function afterInsert(shard: Shard, file: OriginalsFile, slot: number, staged: number, unapply: () => void): void {
  if (shard.header32(H.ORIG_GEN) !== 0) {
    try {
      file.write(slot, shard.bytes(staged, file.stride));
    } catch (err) {
      unapply();
      throw err;
    }
    return;
  }
  if (!spillDue(shard)) return;
  try {
    spill(shard, file);
    spillErrors.delete(shard);
  } catch (err) {
    if (!(err instanceof QuiverError) || err.code !== ErrorCode.IO) throw err;
    spillErrors.set(shard, err);
  }
}

/** The original of `slot`, read from the file. */
export function readOriginal(file: OriginalsFile, slot: number): Float32Array {
  const out = new Float32Array(file.dim);
  file.read(slot, new Uint8Array(out.buffer));
  return out;
}

/** io bytes a spilled search needs past its results: the candidate slots, then their originals. */
export function candidateBytes(dim: number, k: number, rescore: number): number {
  const n = Math.max(k, rescore);
  return ((n * 4 + 7) & ~7) + n * dim * 4;
}

/**
 * A spilled shard's re-rank: the core left `n` candidate slots at `at`
 * (candidateBytes of room there); their originals are read next to them and
 * the core writes the k exact nearest to `out`. Returns the count.
 */
export function rerankFromFile(shard: Shard, file: OriginalsFile, k: number, n: number, at: number, out: number): number {
  const stride = file.stride;
  const vecs = at + ((n * 4 + 7) & ~7);
  const slots = Uint32Array.from(new Uint32Array(shard.memory.buffer, at, n));
  for (let i = 0; i < n; i++) file.read(slots[i]!, shard.bytes(vecs + i * stride, stride));
  return check(shard.core((c) => c.rerank(k, n, at, vecs, out)), 'rerank');
}

/** The error of `ignore: true` on a spilled shard. */
export function ignoreRefused(): QuiverError {
  return new QuiverError(
    ErrorCode.INVALID_ARGUMENT,
    'quantization.ignore is not available on a shard whose originals are on disk (alwaysRam: false, spilled): there are no f32 originals in RAM to walk',
  );
}

/** The image's disk fields checked against the file given with it. */
export function checkPairing(shard: Shard, disk: DiskOptions | undefined): void {
  if (shard.header32(H.DISK) !== 1) {
    if (disk?.originals !== undefined) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'an originals file was given for a shard that is not in disk mode (alwaysRam: true)');
    return;
  }
  if (disk?.originals === undefined) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'a disk-mode shard (alwaysRam: false) needs its originals file ({ originals })');
  if (disk.originals.dim !== shard.dim) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `the originals file is for dim ${disk.originals.dim}, the shard has dim ${shard.dim}`);
  const slots = shard.header32(H.SLOTS);
  if (shard.header32(H.ORIG_GEN) !== 0 && disk.originals.slots < slots) {
    throw new QuiverError(ErrorCode.CORRUPT, `the originals file ${disk.originals.path} holds ${disk.originals.slots} slots, the image ${slots}`);
  }
}
