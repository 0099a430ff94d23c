/**
 * One durable shard: its Shard (the WASM memory), its write-ahead log and
 * its checkpoints, in one shard directory (host/storage/index.ts has the
 * layout). The worker that owns the shard owns this object.
 *
 * A write is logged before it is applied, and applied in log order:
 * `log*()` enqueues the record at once (so records and applies keep the
 * order tasks arrived in) and resolves when it is durable per the policy.
 * An insert cut short (cancel, memory limit) is followed by a PARTIAL
 * record saying how many of its rows took effect, so replay reproduces
 * exactly the state that was acknowledged.
 *
 * A checkpoint streams the shard's image straight from linear memory
 * (sealImage, then views of the used prefix) at `appliedLsn`; reads of the
 * shard must wait while it streams (`busy`), since a search writes into the
 * scratch regions the image checksum covers.
 *
 * A disk-mode shard (`alwaysRam: false`) also has its originals file
 * (originals-files.ts): synced before each image is made current, paired
 * with the image by the generation in its header, replaced by a
 * compaction's, and copied after the image into a snapshot part.
 */
import { join } from 'node:path';
import { Shard, type ShardParams } from '../core/shard.js';
import type { LogFigures } from '../core/stats.js';
import { ErrorCode, QuiverError } from '../errors.js';
import {
  decodePartial, encodeDelete, encodeIndex, encodePartial, encodePayloadUpdate, encodeUpsert,
  loadCheckpointInto, nodeFiles, Op, Wal, writeCheckpoint, type Files, type FsyncPolicy, type IndexBody, type PayloadUpdateBody,
} from '../storage/index.js';
import { isDiskMode, imageGeneration, appendOriginals, openForImage, ShardOriginals } from './originals-files.js';
import { applyRecord } from './apply.js';
import type { PayloadOp } from './payload-updates.js';
import { ID_WORDS } from './protocol.js';

export interface Durability {
  /** The shard directory. */
  dir: string;
  fsync: FsyncPolicy;
  intervalMs: number;
  /** Checkpoint once the log after the current image holds this many bytes. */
  checkpointLogBytes: number;
  files?: Files;
}

/** Bytes per chunk of a streamed image. */
const IMAGE_CHUNK = 4 * 1024 * 1024;

export interface Recovered {
  log: ShardLog;
  shard: Shard;
  /** Records replayed after the image. */
  replayed: number;
  imageLsn: number;
  /** Why an older image was used, if one was. */
  fallbackReason: string | null;
}

export class ShardLog {
  readonly dir: string;
  readonly #wal: Wal;
  readonly #files: Files;
  readonly #threshold: number;
  /** The last LSN whose effect is in the shard's memory. */
  #applied: number;
  /** LSN of the current image (0: none yet). */
  #imageLsn: number;
  /** Log bytes appended since the current image. */
  #sinceImage = 0;
  #busy: Promise<void> | undefined;
  checkpoints = 0;
  /** A disk-mode shard's originals file. */
  originals: ShardOriginals | undefined;

  private constructor(dir: string, wal: Wal, files: Files, threshold: number, applied: number, imageLsn: number) {
    this.dir = dir;
    this.#wal = wal;
    this.#files = files;
    this.#threshold = threshold;
    this.#applied = applied;
    this.#imageLsn = imageLsn;
  }

  /**
   * Opens a shard directory: the newest valid image (or a new shard from
   * `params` when there is none), then the log after it, replayed.
   */
  static async recover(d: Durability, params: ShardParams): Promise<Recovered> {
    const files = d.files ?? nodeFiles;
    const disk = isDiskMode(params);
    let file: ReturnType<typeof openForImage> | undefined;
    // the image file is read straight into the shard's new linear memory. Its
    // CRC32C is checked although the core's image hash checks the header and
    // arena again: that hash skips the bytes below the header (static data,
    // stack), and a damaged file must be reported (and fallen back from)
    // wherever the damage is
    // a disk-mode image is loaded with the originals file its header names
    const loaded = await loadCheckpointInto({ dir: d.dir, files }, async (length, fill, path) => {
      if (!disk) return imageShard(length, fill, path, params);
      const gen = imageGeneration(path) ?? 0;
      const f = openForImage(d.dir, gen, params.dim, path);
      try {
        const shard = await imageShard(length, fill, path, params, f);
        file = f;
        return shard;
      } catch (err) {
        f.close();
        throw err;
      }
    });
    let shard: Shard | undefined = loaded?.value;
    let wal: Wal | undefined;
    try {
      const imageLsn = loaded?.lsn ?? 0;
      // the log first: it creates the shard directory (durably) the originals file goes in
      wal = await Wal.open({ dir: join(d.dir, 'wal'), files, fsync: d.fsync, intervalMs: d.intervalMs, startLsn: imageLsn + 1 });
      if (disk && shard === undefined) file = ShardOriginals.fresh(d.dir, params.dim);
      shard ??= Shard.create(params, 0, file === undefined ? undefined : { originals: file });
      const replayed = await replay(wal, shard, imageLsn + 1);
      const log = new ShardLog(d.dir, wal, files, d.checkpointLogBytes, wal.lastLsn, imageLsn);
      log.#sinceImage = replayed.bytes;
      if (file !== undefined) {
        const m = loaded?.manifest;
        const gens = m === undefined ? [] : [m.current, m.previous].filter((r) => r !== null).map((r) => imageGeneration(join(d.dir, r!.file)));
        log.originals = new ShardOriginals(d.dir, params.dim, file, gens);
        log.originals.removeUnpaired();
      }
      // a replayed shard was grown record by record: right-size it
      shard.shrinkToFit();
      return { log, shard, replayed: replayed.records, imageLsn, fallbackReason: loaded?.fallbackReason ?? null };
    } catch (err) {
      shard?.dispose();
      file?.close();
      await wal?.destroy();
      throw err;
    }
  }

  get appliedLsn(): number {
    return this.#applied;
  }

  get imageLsn(): number {
    return this.#imageLsn;
  }

  get logBytesSinceImage(): number {
    return this.#sinceImage;
  }

  /** The log's figures for stats(). */
  figures(): LogFigures {
    const w = this.#wal.stats;
    return {
      appliedLsn: this.#applied, imageLsn: this.#imageLsn, bytesSinceImage: this.#sinceImage,
      fsyncs: w.fsyncs, writes: w.writes, records: w.records, bytes: w.bytes, checkpoints: this.checkpoints,
    };
  }

  /** While a checkpoint streams the image, reads of the shard wait for this. */
  get busy(): Promise<void> | undefined {
    return this.#busy;
  }

  get due(): boolean {
    return this.#sinceImage >= this.#threshold;
  }

  logUpsert(ids: Uint32Array, vectors: Float32Array, payloads: readonly (Uint8Array | undefined)[] | undefined, dim: number): Promise<number> {
    const count = ids.length / ID_WORDS;
    const body = encodeUpsert({ count, dim, ids, vectors, payloads: Array.from({ length: count }, (_, i) => payloads?.[i] ?? null) });
    return this.#append(Op.UPSERT, body);
  }

  logDelete(ids: Uint32Array): Promise<number> {
    return this.#append(Op.DELETE, encodeDelete({ count: ids.length / ID_WORDS, ids }));
  }

  /** A delete by filter is logged as its program: replay decides the points where the record stands in the log, as the live apply did. */
  logDeleteWhere(program: Uint8Array): Promise<number> {
    return this.#append(Op.DELETE_WHERE, program);
  }

  /** A payload update by filter is logged with its program, and decided in log order, as a delete by filter is. */
  logPayloadUpdate(op: PayloadOp, body: PayloadUpdateBody): Promise<number> {
    return this.#append(op, encodePayloadUpdate(body));
  }

  /** A payload index created (with `type`) or dropped (without). */
  logIndex(body: IndexBody): Promise<number> {
    return this.#append(body.type === undefined ? Op.DELETE_INDEX : Op.CREATE_INDEX, encodeIndex(body));
  }

  logPartial(lsn: number, applied: number): Promise<number> {
    return this.#append(Op.PARTIAL, encodePartial({ lsn, applied }));
  }

  #append(op: number, body: Uint8Array): Promise<number> {
    this.#sinceImage += body.length + 17;
    return this.#wal.append(op, body);
  }

  /** Records that the effect of `lsn` is in the shard (applies come in log order). */
  applied(lsn: number): void {
    if (lsn > this.#applied) this.#applied = lsn;
  }

  /**
   * Writes the shard's image at appliedLsn and makes it current; the log it
   * covers goes. The caller holds the shard's write lock, so nothing is
   * applied meanwhile; reads wait on `busy` while the bytes stream.
   */
  async checkpoint(shard: Shard): Promise<{ bytes: number; lsn: number }> {
    const lsn = this.#applied;
    // the image must not claim records the log might still lose; and when it
    // holds every record so far, the log goes on in a new segment, so that a
    // recovery from this image reads none of what it covers
    if (this.#wal.lastLsn === lsn) await this.#wal.startSegment();
    else await this.#wal.sync();
    let release!: () => void;
    this.#busy = new Promise<void>((resolve) => {
      release = resolve;
    });
    const sinceBefore = this.#sinceImage;
    try {
      // the slots the image holds are durable in its file before the image is current
      this.originals?.sync();
      const result = await writeCheckpoint({ dir: this.dir, files: this.#files, lsn, chunks: imageChunks(shard, () => {
        this.#busy = undefined;
        release();
      }), wal: this.#wal });
      this.#imageLsn = lsn;
      this.#sinceImage = Math.max(0, this.#sinceImage - sinceBefore);
      this.checkpoints++;
      this.originals?.published(shard.originalsGeneration);
      return { bytes: result.bytes, lsn };
    } finally {
      this.#busy = undefined;
      release();
    }
  }

  /** Writes the shard's raw image (no trailer) to `file`, fsynced, for a snapshot. */
  async writeImage(shard: Shard, file: string): Promise<{ bytes: number; lsn: number }> {
    await this.#wal.sync();
    return writeImageFile(shard, file, this.#files, (b) => {
      this.#busy = b;
    }, this.originals).then((bytes) => ({ bytes, lsn: this.#applied }));
  }

  /** Syncs and closes the log (the store checkpoints before this at a graceful close). */
  async close(): Promise<void> {
    await this.#wal.close();
    this.originals?.close();
  }

  /** Closes without a final sync: for a shard being dropped or abandoned. */
  async destroy(): Promise<void> {
    await this.#wal.destroy();
    this.originals?.close();
  }
}

/** A shard from an image file that `fill` reads into its memory; damage is QUIVER_ERR_CORRUPT naming the file. */
async function imageShard(
  length: number, fill: (into: Uint8Array) => Promise<void>, path: string, params: ShardParams, originals?: ShardOriginals['file'],
): Promise<Shard> {
  try {
    const shard = await Shard.loadImage(length, fill, params.build ?? 'release', originals === undefined ? undefined : { originals });
    if (shard.dim !== params.dim) {
      shard.dispose();
      throw new QuiverError(ErrorCode.CORRUPT, `${path}: the image holds dim ${shard.dim}, the catalog says ${params.dim}`);
    }
    return shard;
  } catch (err) {
    if (err instanceof QuiverError && err.code === ErrorCode.CORRUPT_IMAGE) {
      throw new QuiverError(ErrorCode.CORRUPT, `${path}: corrupt at byte 0: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** Replays the log from `from` into `shard`: two passes, the first finding which inserts were cut short. */
async function replay(wal: Wal, shard: Shard, from: number): Promise<{ records: number; bytes: number }> {
  const partial = new Map<number, number>();
  for await (const rec of wal.replay(from)) {
    if (rec.op === Op.PARTIAL) {
      const p = decodePartial(rec.body);
      partial.set(p.lsn, p.applied);
    }
  }
  let records = 0;
  let bytes = 0;
  for await (const rec of wal.replay(from)) {
    records++;
    bytes += rec.body.length + 17;
    applyRecord(shard, rec.op, rec.body, partial.get(rec.lsn), `${wal.dir}: record ${rec.lsn}`);
  }
  return { records, bytes };
}

/**
 * The image as views of linear memory, sealed first; `done` runs when the
 * last byte has been handed out (reads may go on from then).
 */
function* imageChunks(shard: Shard, done: () => void): Generator<Uint8Array> {
  try {
    const top = shard.core((c) => c.sealImage());
    for (let at = 0; at < top; at += IMAGE_CHUNK) yield shard.bytes(at, Math.min(IMAGE_CHUNK, top - at));
  } finally {
    done();
  }
}

/** Writes a shard's sealed image to `file` (temp name, fsync, rename), then its originals file if it has one. Resolves with its length. */
export async function writeImageFile(
  shard: Shard, file: string, files: Files, setBusy: (p: Promise<void> | undefined) => void, originals?: ShardOriginals,
): Promise<number> {
  let release!: () => void;
  setBusy(new Promise<void>((resolve) => {
    release = resolve;
  }));
  const tmp = `${file}.tmp`;
  let bytes = 0;
  try {
    const h = await files.open(tmp, 'w');
    try {
      for (const chunk of imageChunks(shard, () => {})) {
        await h.write(chunk, bytes);
        bytes += chunk.length;
      }
      setBusy(undefined);
      release();
      // reads go on meanwhile (they only read the file); writes wait for the caller's lock
      if (originals !== undefined) bytes = await appendOriginals(originals.file, h, bytes);
      await h.sync();
    } finally {
      setBusy(undefined);
      release();
      await h.close();
    }
    await files.rename(tmp, file);
    return bytes;
  } finally {
    setBusy(undefined);
    release();
  }
}
