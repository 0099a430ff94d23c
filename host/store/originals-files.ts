/**
 * The f32 originals of a disk-mode shard (`alwaysRam: false`,
 * docs/durability.md "The originals files"), as files of its shard
 * directory:
 *
 *   <shard dir>/originals-<generation>.f32   dim x 4 bytes a slot, slot s at s x dim x 4
 *
 * The core does the slot I/O (host/core/originals.ts); this file decides
 * which file a shard gets and when files go. An image pairs with the file
 * its header's generation names (H.ORIG_GEN; 0: not spilled yet, the
 * originals are still in the image, and the shard holds the file it will
 * spill into, generation 1). A spilled shard's compaction writes a new file
 * of generation + 1, published with the new image; until then the older
 * image keeps pairing with the older file. Order:
 *
 *   checkpoint:  sync the shard's file ─> write the image, the manifest (checkpoint.ts) ─> delete unpaired files
 *   compaction:  create originals-<g+1>.f32 (truncated) ─> copy in the new slot order ─> the checkpoint above
 *   recovery:    image ─> its paired file (a torn tail slot cut off) ─> replay rewrites the slots after it
 *
 * A file the retained images (the manifest's current and previous) do not
 * name, nor the shard, is deleted after each checkpoint and at recovery:
 * a compaction target a crash left, or the file of an image that is gone.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { H, HEADER_BYTES, HEADER_PTR } from '../core/abi.js';
import { OriginalsFile } from '../core/originals.js';
import { Shard, type ShardParams } from '../core/shard.js';
import { ErrorCode, QuiverError } from '../errors.js';
import type { FileHandle } from '../storage/index.js';

export type { OriginalsFile };

/** The generation a shard spills into: its file from create on. */
export const SPILL_GENERATION = 1;
const NAME = /^originals-(\d+)\.f32$/;
const COPY_CHUNK = 1024 * 1024;

export const originalsName = (generation: number): string => `originals-${generation}.f32`;

/** Is `params` a disk-mode shard's (quantized, alwaysRam false)? */
export const isDiskMode = (params: ShardParams): boolean => params.quantization?.alwaysRam === false;

/** The file a shard of generation `generation` writes to (0: not spilled, the file it will spill into). */
const fileGeneration = (generation: number): number => Math.max(SPILL_GENERATION, generation);

/** Reads the u32 header fields at `fields` of the image starting at byte `at` of `path`; undefined if it is too short. */
function peekHeader(path: string, at: number, fields: number[]): number[] | undefined {
  const fd = openSync(path, 'r');
  try {
    const header = new Uint8Array(HEADER_BYTES);
    if (readSync(fd, header, 0, HEADER_BYTES, at + HEADER_PTR) !== HEADER_BYTES) return undefined;
    const v = new DataView(header.buffer);
    return fields.map((f) => v.getUint32(f, true));
  } finally {
    closeSync(fd);
  }
}

/** The originals generation an image file's header carries (its CRC is checked when the image loads). */
export function imageGeneration(path: string): number | undefined {
  try {
    return peekHeader(path, 0, [H.ORIG_GEN])?.[0];
  } catch {
    return undefined;
  }
}

/**
 * Opens `originals-<generation>.f32` of `dir` for an image of that
 * generation. Its bytes up to the image's slots were synced before the
 * image was made current, so a partial slot at the tail (a crash
 * mid-append, past the image) is cut off; replay writes it again. A
 * spilled image whose file is missing is QUIVER_ERR_CORRUPT (recovery
 * falls back to the previous image).
 */
export function openForImage(dir: string, generation: number, dim: number, imagePath: string): OriginalsFile {
  const path = join(dir, originalsName(fileGeneration(generation)));
  if (!existsSync(path)) {
    // not spilled yet: there is nothing in the file, the spill writes it whole
    if (generation === 0) return OriginalsFile.create(path, dim);
    throw new QuiverError(ErrorCode.CORRUPT, `${imagePath}: the originals file it pairs with (${path}) is missing`);
  }
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    const stride = dim * Float32Array.BYTES_PER_ELEMENT;
    if (size % stride !== 0) ftruncateSync(fd, size - (size % stride));
  } finally {
    closeSync(fd);
  }
  return OriginalsFile.open(path, dim);
}

/** The originals of one disk-mode shard: its current file, and which generations the retained images pair with. */
export class ShardOriginals {
  readonly dir: string;
  readonly dim: number;
  file: OriginalsFile;
  /** Generations of the manifest's current and previous image (undefined: not known, so nothing is deleted). */
  #retained: (number | undefined)[];

  constructor(dir: string, dim: number, file: OriginalsFile, retained: (number | undefined)[]) {
    this.dir = dir;
    this.dim = dim;
    this.file = file;
    this.#retained = retained;
  }

  /** A shard with no image yet: its spill file, created empty (replay writes every slot again). */
  static fresh(dir: string, dim: number): OriginalsFile {
    return OriginalsFile.create(join(dir, originalsName(SPILL_GENERATION)), dim);
  }

  /** Before an image of the shard is made current: its file's bytes durable. */
  sync(): void {
    this.file.sync();
  }

  /** An image of `generation` is current now; the one it replaced (`previous`) stays the fallback. Unpaired files go. */
  published(generation: number): string[] {
    this.#retained = [generation, this.#retained[0]];
    return this.removeUnpaired();
  }

  /** Deletes every originals file neither the shard nor a retained image pairs with. */
  removeUnpaired(): string[] {
    if (this.#retained.some((g) => g === undefined)) return [];
    const keep = new Set([this.file.path, ...this.#retained.map((g) => join(this.dir, originalsName(fileGeneration(g!))))]);
    const removed: string[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!NAME.test(name) || keep.has(join(this.dir, name))) continue;
      try {
        unlinkSync(join(this.dir, name));
        removed.push(name);
      } catch {
        // gone already, or not now: the next checkpoint tries again
      }
    }
    return removed;
  }

  /**
   * Runs a compaction of `shard` with the file its target needs: a spilled
   * shard's target writes a new file of generation + 1 (a crashed
   * compaction's is truncated), adopted when the compaction finishes,
   * deleted when it does not; an unspilled one keeps the file it has.
   */
  async compact<T>(shard: Shard, run: (options: { originals: OriginalsFile }) => Promise<T | undefined>): Promise<T | undefined> {
    if (!shard.spilled) return run({ originals: this.file });
    const target = OriginalsFile.create(join(this.dir, originalsName(shard.originalsGeneration + 1)), this.dim);
    let report: T | undefined;
    try {
      report = await run({ originals: target });
    } finally {
      if (report === undefined) {
        target.close();
        try {
          unlinkSync(target.path);
        } catch {
          // removed as unpaired at the next checkpoint
        }
      }
    }
    if (report === undefined) return undefined;
    this.file.close();
    this.file = target;
    return report;
  }

  close(): void {
    this.file.close();
  }
}

/** Appends the whole originals file to `h` at byte `at` (a snapshot part: the image, then its file). Resolves with the new end. */
export async function appendOriginals(file: OriginalsFile, h: FileHandle, at: number): Promise<number> {
  const fd = openSync(file.path, 'r');
  try {
    const buffer = new Uint8Array(COPY_CHUNK);
    for (let from = 0; ;) {
      const n = readSync(fd, buffer, 0, COPY_CHUNK, from);
      if (n === 0) return at;
      await h.write(buffer.subarray(0, n), at);
      at += n;
      from += n;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A snapshot part at [offset, offset + length) of `file`: the image (its
 * header says how long), then, for a disk-mode shard, its originals. The
 * originals are written to `dir` as the file the image pairs with (synced);
 * resolves with the image's length. A disk-mode part needs a durable store.
 */
export function restoreOriginals(file: string, offset: number, length: number, dim: number, dir: string | undefined): number {
  const head = peekHeader(file, offset, [H.IMAGE_BYTES, H.ORIG_GEN]);
  if (head === undefined) return length;
  const [imageBytes, generation] = head as [number, number];
  if (imageBytes >= length) return length;
  const tail = length - imageBytes;
  if (tail % (dim * Float32Array.BYTES_PER_ELEMENT) !== 0) {
    throw new QuiverError(ErrorCode.CORRUPT, `${file}: corrupt at byte ${offset + imageBytes}: ${tail} bytes of originals after a shard image are not whole vectors of dim ${dim}`);
  }
  if (dir === undefined) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'a snapshot of an alwaysRam: false dataset can only be restored into a durable store (Store.open({ path }))');
  mkdirSync(dir, { recursive: true });
  const src = openSync(file, 'r');
  const dst = openSync(join(dir, originalsName(fileGeneration(generation))), 'w');
  try {
    const buffer = new Uint8Array(COPY_CHUNK);
    for (let done = 0; done < tail;) {
      const n = readSync(src, buffer, 0, Math.min(COPY_CHUNK, tail - done), offset + imageBytes + done);
      if (n === 0) throw new QuiverError(ErrorCode.CORRUPT, `${file}: ends inside a shard's originals at byte ${offset + imageBytes + done}`);
      for (let w = 0; w < n;) w += writeSync(dst, buffer, w, n - w, done + w);
      done += n;
    }
    fsyncSync(dst);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
  return imageBytes;
}

/** Checks a restored image (with its originals in `dir` when it is a disk-mode one's) before it becomes a checkpoint. */
export function verifyImage(bytes: Uint8Array, params: ShardParams, dir: string): void {
  const build = params.build ?? 'release';
  if (!isDiskMode(params)) {
    Shard.fromImage(bytes, build).dispose();
    return;
  }
  const generation = bytes.length >= HEADER_PTR + HEADER_BYTES ? new DataView(bytes.buffer, bytes.byteOffset).getUint32(HEADER_PTR + H.ORIG_GEN, true) : 0;
  mkdirSync(dir, { recursive: true });
  const file = openForImage(dir, generation, params.dim, 'the snapshot');
  try {
    Shard.loadImage(bytes.length, (into) => into.set(bytes), build, { originals: file }).dispose();
  } finally {
    file.close();
  }
}
