/**
 * Shard images in a JetStream object store (default bucket `quiver-images`),
 * named <token>/<shard>/<lsn, 20 digits> (names.ts), so any node can rebuild
 * any shard from its newest image plus the log after it.
 *
 * An image is streamed both ways (the object store cuts it into 128 KiB
 * chunk messages): put() takes bytes or an async iterable of byte chunks,
 * get() yields chunks as they arrive, so neither side holds the whole image
 * twice. Each image carries, as object metadata, the shard LSN it contains
 * and the stream sequence of the last log record it covers (`seq`: replay
 * starts after it).
 *
 * Integrity. The object store records the SHA-256 of what was put; get()
 * checks it, and the size, after the last chunk and throws
 * QUIVER_ERR_CORRUPT_IMAGE if either differs (a flipped or a lost chunk):
 * a caller must not use an image before its iteration has ended without an
 * error. A transfer that stalls for the client's timeoutMs between two
 * chunks fails with QUIVER_ERR_UNAVAILABLE.
 */
import type { ObjectInfo, ObjectStore } from '@nats-io/obj';
import { ErrorCode, QuiverError } from '../errors.js';
import { checkBucketOptions, natsError, type ClusterClient } from './connect.js';
import { imageName, imagePrefix } from './names.js';

export interface ImageStoreOptions {
  /** Bucket name; default 'quiver-images'. */
  bucket?: string;
  /** Copies of every image, 1..5; default 3. */
  replicas?: number;
}

export interface ImageInfo {
  dataset: string;
  shard: number;
  /** The shard LSN the image contains. */
  lsn: number;
  /** The stream sequence of the last log record the image covers (0: none). */
  seq: number;
  size: number;
  /** SHA-256 of the bytes, as the object store records it ('SHA-256=<base64url>'). */
  digest: string;
  name: string;
}

export interface ImageRead {
  info: ImageInfo;
  /** The image's bytes in order; throws CORRUPT_IMAGE at the end if they do not match what was put. */
  chunks: AsyncIterable<Uint8Array>;
}

function toStream(source: Uint8Array | AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  if (source instanceof Uint8Array) {
    return new ReadableStream({ start(c) { if (source.length > 0) c.enqueue(source); c.close(); } });
  }
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream({
    async pull(c) {
      const { value, done } = await it.next();
      if (done) c.close();
      else if (!(value instanceof Uint8Array)) c.error(new QuiverError(ErrorCode.INVALID_ARGUMENT, 'an image source must yield Uint8Array chunks'));
      else c.enqueue(value);
    },
    async cancel(reason) { await it.return?.(reason); },
  });
}

function infoOf(o: ObjectInfo): ImageInfo | null {
  const m = o.metadata ?? {};
  const shard = Number(m.shard), lsn = Number(m.lsn), seq = Number(m.seq);
  if (typeof m.dataset !== 'string' || !Number.isInteger(shard) || !Number.isSafeInteger(lsn) || !Number.isSafeInteger(seq)) return null;
  return { dataset: m.dataset, shard, lsn, seq, size: o.size, digest: o.digest, name: o.name };
}

export class ImageStore {
  readonly bucket: string;
  readonly #os: ObjectStore;
  readonly #client: ClusterClient;
  readonly #timeoutMs: number;

  private constructor(os: ObjectStore, client: ClusterClient, bucket: string) {
    this.#os = os;
    this.#client = client;
    this.bucket = bucket;
    this.#timeoutMs = client.timeoutMs;
  }

  /** Opens (creating if absent) the images bucket. */
  static async open(client: ClusterClient, options: ImageStoreOptions = {}): Promise<ImageStore> {
    const { bucket = 'quiver-images', replicas = 3 } = options;
    checkBucketOptions(bucket, replicas);
    try {
      return new ImageStore(await client.objm.create(bucket, { replicas }), client, bucket);
    } catch (err) {
      throw natsError(err, `opening the images bucket ${bucket}`);
    }
  }

  /**
   * Stores the shard's image at `lsn` (covering the log up to stream
   * sequence `seq`), streamed from `source`. Resolves once every chunk and
   * the metadata are stored; a second put at the same LSN replaces the image.
   */
  async put(dataset: string, shard: number, lsn: number, seq: number, source: Uint8Array | AsyncIterable<Uint8Array>): Promise<ImageInfo> {
    const name = imageName(dataset, shard, lsn);
    if (!Number.isSafeInteger(seq) || seq < 0) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `seq must be a non-negative integer (got ${String(seq)})`);
    if (!(source instanceof Uint8Array) && typeof (source as AsyncIterable<Uint8Array>)?.[Symbol.asyncIterator] !== 'function') {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'source must be a Uint8Array or an async iterable of them');
    }
    let stored: ObjectInfo;
    try {
      stored = await this.#os.put({
        name, description: `quiver image of ${dataset} shard ${shard} at lsn ${lsn}`,
        metadata: { dataset, shard: String(shard), lsn: String(lsn), seq: String(seq) },
      }, toStream(source), { timeout: this.#timeoutMs });
    } catch (err) {
      throw natsError(err, `storing the image ${name}`);
    }
    return infoOf(stored)!;
  }

  /**
   * Every image of the shard, oldest (lowest LSN) first. Read as the
   * stream's meta subjects (one per object: `$O.<bucket>.M.<base64url of the
   * name>`) and each object's info, both from the stream's leader: the
   * object store's own list() (a consumer over those subjects) came back
   * empty right after three puts in a clean-clone CI run, and a rebuild that
   * finds no image while the log is trimmed would miss records.
   */
  async list(dataset: string, shard: number): Promise<ImageInfo[]> {
    const prefix = imagePrefix(dataset, shard);
    const meta = `$O.${this.bucket}.M.`;
    const out: ImageInfo[] = [];
    try {
      const info = await this.#client.jsm.streams.info(`OBJ_${this.bucket}`, { subjects_filter: `${meta}>` });
      const names = Object.keys(info.state.subjects ?? {}).map((s) => Buffer.from(s.slice(meta.length), 'base64url').toString('utf8'));
      for (const name of names.filter((n) => n.startsWith(prefix))) {
        const o = await this.#os.info(name);
        const i = o === null || o.deleted ? null : infoOf(o);
        if (i !== null && i.dataset === dataset && i.shard === shard) out.push(i);
      }
    } catch (err) {
      throw natsError(err, `listing the images of ${dataset} shard ${shard}`);
    }
    return out.sort((a, b) => a.lsn - b.lsn);
  }

  /** The shard's image with the highest LSN, or null if it has none. */
  async newest(dataset: string, shard: number): Promise<ImageInfo | null> {
    return (await this.list(dataset, shard)).at(-1) ?? null;
  }

  /** Streams the shard's image at `lsn`; NOT_FOUND if there is none. */
  async get(dataset: string, shard: number, lsn: number): Promise<ImageRead> {
    const name = imageName(dataset, shard, lsn);
    let result;
    try {
      result = await this.#os.get(name);
    } catch (err) {
      throw natsError(err, `reading the image ${name}`);
    }
    if (result === null) throw new QuiverError(ErrorCode.NOT_FOUND, `no image ${name}`);
    const info = infoOf(result.info);
    if (info === null) throw new QuiverError(ErrorCode.CORRUPT_IMAGE, `the image ${name} has no quiver metadata`);
    return { info, chunks: this.chunks(name, info.size, result.data) };
  }

  private async *chunks(name: string, size: number, data: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
    const reader = data.getReader();
    let received = 0;
    let timer: NodeJS.Timeout | undefined;
    const stall = () => new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QuiverError(ErrorCode.UNAVAILABLE, `reading the image ${name}: no data for ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      for (;;) {
        let step: ReadableStreamReadResult<Uint8Array>;
        try {
          step = await Promise.race([reader.read(), stall()]);
        } catch (err) {
          if (err instanceof QuiverError) throw err;
          const msg = (err as Error)?.message ?? String(err);
          if (/corrupt|digest/i.test(msg)) throw new QuiverError(ErrorCode.CORRUPT_IMAGE, `the image ${name} does not match its SHA-256: ${msg.split('\n')[0]}`, { cause: err });
          throw natsError(err, `reading the image ${name}`);
        } finally {
          clearTimeout(timer);
        }
        if (step.done) break;
        received += step.value.length;
        yield step.value;
      }
      if (received !== size) throw new QuiverError(ErrorCode.CORRUPT_IMAGE, `the image ${name} has ${received} bytes, its metadata says ${size}`);
    } finally {
      await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }

  /**
   * Deletes the shard's image at `lsn`; false if there was none. The object
   * store's delete keeps a meta message marking it deleted; that goes too,
   * so what list() reads stays as small as the images kept.
   */
  async delete(dataset: string, shard: number, lsn: number): Promise<boolean> {
    const name = imageName(dataset, shard, lsn);
    try {
      const info = await this.#os.info(name);
      if (info !== null && info.deleted) await this.#purgeMeta(name);
      if (info === null || info.deleted) return false;
      const done = (await this.#os.delete(name)).success;
      await this.#purgeMeta(name);
      return done;
    } catch (err) {
      throw natsError(err, `deleting the image ${name}`);
    }
  }

  /** The object's meta subject purged (nats.js names it by the name in padded base64url). */
  async #purgeMeta(name: string): Promise<void> {
    const encoded = Buffer.from(name, 'utf8').toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
    await this.#client.jsm.streams.purge(`OBJ_${this.bucket}`, { filter: `$O.${this.bucket}.M.${encoded}` });
  }

  /** Deletes all but the `keep` newest images of the shard; returns the LSNs deleted. */
  async prune(dataset: string, shard: number, keep: number): Promise<number[]> {
    if (!Number.isInteger(keep) || keep < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'keep must be a positive integer');
    const old = (await this.list(dataset, shard)).slice(0, -keep);
    for (const i of old) await this.delete(dataset, shard, i.lsn);
    return old.map((i) => i.lsn);
  }
}
