/**
 * Snapshots on a cluster (docs/cluster.md, "Snapshots"): the Store's file
 * format (storage/snapshot.ts) and directory layout (snapshot-files.ts),
 * kept on the node that made them, as a Qdrant peer keeps its own.
 *
 * create: each shard's leader puts a fresh image of its shard in the object
 * store (as a checkpoint does, cluster-copy.ts `imageNow`), this node
 * streams it into a part file, and the parts become one file. It holds the
 * whole collection, every shard whichever node leads it (a Qdrant peer's
 * snapshot holds only its local shards), consistent per shard as a Store's
 * is. An image pruned or replaced before it was read is asked for again.
 *
 * recover: the file is verified and each shard's image checked (it loads,
 * and its dim is the entry's) before anything is written. Then a new
 * incarnation of the name is made whose shards start from the snapshot's
 * images (at stream sequence 0: its log starts empty), the catalog swaps
 * the name over to it, and the old incarnation goes as a dropped one does
 * (cluster-datasets.ts `replace`). It resolves once every shard of the new
 * one answers a read. A bad snapshot changes nothing.
 *
 * One format: a Store's snapshot recovers into a cluster and a cluster's
 * into a Store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { H, HEADER_BYTES, HEADER_PTR } from '../core/abi.js';
import type { ShardParams } from '../core/shard.js';
import { ErrorCode, isQuiverError, QuiverError } from '../errors.js';
import type { GraphParams } from '../options.js';
import { corrupt, ioError, nodeFiles, readRange } from '../storage/index.js';
import type { SnapshotEntry, SnapshotShard } from '../storage/snapshot.js';
import { checkName } from './catalog.js';
import { checkedEntry } from './cluster-datasets.js';
import type { ClusterNode } from './cluster-node.js';
import { isDiskMode, restoreOriginals, verifyImage } from './originals-files.js';
import { quantizationField, shardParams, storedParams } from './quantization.js';
import { SnapshotFiles } from './snapshot-files.js';
import type { SnapshotInfo } from './types.js';

/** Tries at a shard's fresh image before the snapshot fails (each one a new image). */
const IMAGE_TRIES = 5;

export class ClusterSnapshots extends SnapshotFiles {
  readonly #node: ClusterNode;
  readonly #waitMs: number;

  /** `waitMs`: how long a recovery waits for the new incarnation's shards to answer. */
  constructor(dir: string, node: ClusterNode, waitMs: number) {
    super(dir);
    this.#node = node;
    this.#waitMs = waitMs;
  }

  async create(name: string): Promise<SnapshotInfo> {
    checkName(name);
    const d = await this.#node.dataset(name);
    const p = d.params;
    const entry: SnapshotEntry = {
      name, dim: p.dim, metric: p.metric, M: p.M, efConstruction: p.efConstruction, ef: p.ef ?? 64, shards: d.shards,
      ...quantizationField(p.quantization === undefined ? undefined : { ...p.quantization, alwaysRam: p.quantization.alwaysRam !== false }),
    };
    return this.write(entry, d.id.replace(/[^A-Za-z0-9_-]/g, '_'), (dir) => Promise.all(Array.from({ length: d.shards }, async (_, s) => {
      const path = join(dir, `shard-${s}.img`);
      return { lsn: await this.#download(name, s, path), path };
    })));
  }

  /** A fresh image of the shard into `path`; the stream sequence it covers. */
  async #download(name: string, shard: number, path: string): Promise<number> {
    for (let tries = 1; ; tries++) {
      try {
        const read = await this.#node.freshImage(name, shard);
        await writeChunks(path, read.chunks);
        return read.info.seq;
      } catch (err) {
        // pruned or replaced by a newer image between its put and this read: take another
        if (tries >= IMAGE_TRIES || !(isQuiverError(err, ErrorCode.NOT_FOUND) || isQuiverError(err, ErrorCode.CORRUPT_IMAGE) || isQuiverError(err, ErrorCode.UNAVAILABLE))) throw err;
      }
    }
  }

  /**
   * Makes `name` what the snapshot in `file` holds (its options and shard
   * count), `replicas` copies of each shard (default: the replaced
   * dataset's, else 1), replacing a dataset of that name if there is one.
   */
  async recover(name: string, file: string, replicas?: number): Promise<void> {
    checkName(name);
    const { entry, shards } = await this.read(file);
    const params = storedParams({ ...entry, metric: entry.metric as GraphParams['metric'] }, (m) => corrupt(file, 0, `the collection entry: ${m}`));
    const q = params.quantization;
    const copies = replicas ?? (await this.#node.dataset(name).catch(() => null))?.replicas ?? 1;
    const options = {
      dim: params.dim, metric: params.metric, M: params.M, efConstruction: params.efConstruction, ef: params.ef, shards: shards.length, replicas: copies,
      ...quantizationField(q),
    };
    // the options a cluster serves, then each image: a bad one changes nothing
    checkedEntry(name, options);
    for (const s of shards) await checkPart(file, s, shardParams(params, 0n));
    await this.#node.recoverDataset(name, options, async (images, id) => {
      for (let s = 0; s < shards.length; s++) await images.put(id, s, 0, 0, await readPart(file, shards[s]!));
    });
    await this.#served(name);
  }

  /** Waits until every shard of `name` answers a read (its copies rebuilt, its leaders serving). */
  async #served(name: string): Promise<void> {
    const deadline = Date.now() + this.#waitMs;
    for (;;) {
      try {
        await this.#node.count(name);
        return;
      } catch (err) {
        if (!isQuiverError(err, ErrorCode.UNAVAILABLE) || Date.now() > deadline) throw err;
      }
    }
  }
}

/** A shard's image as the snapshot holds it. */
async function readPart(file: string, s: SnapshotShard): Promise<Uint8Array> {
  try {
    return await readRange(nodeFiles, file, s.offset, s.length);
  } catch (err) {
    throw ioError(`reading ${file}`, err);
  }
}

/**
 * Loads a shard's image as a rebuild would (a disk-mode one with its
 * originals, written to a temp directory) and checks its dim against the
 * entry's: CORRUPT if either fails.
 */
async function checkPart(file: string, s: SnapshotShard, params: ShardParams): Promise<void> {
  const dir = isDiskMode(params) ? mkdtempSync(join(tmpdir(), 'quiver-part-')) : undefined;
  try {
    const length = dir === undefined ? s.length : restoreOriginals(file, s.offset, s.length, params.dim, dir);
    const bytes = await readPart(file, { ...s, length });
    try {
      verifyImage(bytes, params, dir ?? '');
    } catch (err) {
      throw corrupt(file, s.offset, `a shard image does not load: ${(err as Error).message}`, err);
    }
    const dim = bytes.length >= HEADER_PTR + HEADER_BYTES ? new DataView(bytes.buffer, bytes.byteOffset).getUint32(HEADER_PTR + H.DIM, true) : 0;
    if (dim !== params.dim) throw corrupt(file, s.offset, `a shard image holds dim ${dim}, the collection entry says ${params.dim}`);
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

async function writeChunks(path: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  let h;
  try {
    h = await open(path, 'w');
  } catch (err) {
    throw ioError(`creating ${path}`, err);
  }
  try {
    for await (const c of chunks) await h.write(c);
    await h.sync();
  } finally {
    await h.close();
  }
}
