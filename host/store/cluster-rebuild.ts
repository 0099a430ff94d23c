/**
 * Rebuilding a shard from the cluster (docs/cluster.md): the newest image
 * in the object store, then every record of the shard's stream after the
 * one that image covers, applied as the shard's own replay applies its local
 * log (apply.ts). This is how a node that takes a shard over, or receives a
 * copy in a move, gets it: the stream is the source of truth, a node's own
 * files are a cache of it.
 *
 * Stream messages are [op u8][body] with msgId <node>.<term>.<shard>.<lsn>
 * (replicated-log.ts); claim markers are skipped. A PARTIAL record names the
 * cut-short upsert by its writer's local lsn, so it is matched by msgId:
 * the same <node>.<term>.<shard> with that lsn. Two passes over the stream, the
 * first up to the tail as it is then, the second no further, so records
 * appended meanwhile are left to the caller's tail (from `lastSeq` + 1).
 *
 * A disk-mode shard (alwaysRam: false) gets a directory of its copy's own
 * for its originals file; its image is a snapshot part (the image, then the
 * originals file it pairs with: cluster-replica.ts `image`).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Shard, type ShardParams } from '../core/shard.js';
import type { AppliedTable } from '../cluster/applied.js';
import type { ClusterClient } from '../cluster/connect.js';
import type { ImageInfo, ImageStore } from '../cluster/images.js';
import { CLAIM_OP } from '../cluster/replicated-log.js';
import { ShardLog } from '../cluster/shard-stream.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { decodePartial, nodeFiles, Op, readRange } from '../storage/index.js';
import { applyRecordInSteps } from './apply.js';
import { imageGeneration, isDiskMode, openForImage, restoreOriginals, ShardOriginals } from './originals-files.js';

export interface RebuildSource {
  client: ClusterClient;
  images: ImageStore;
  dataset: string;
  shard: number;
  /** The dataset's shard parameters (for a shard with no image yet, and to check one that has). */
  params: ShardParams;
  /** Awaited before the image is chosen and the log read (a copy reports 0 applied: cluster/applied.ts). */
  beforeRead?: () => Promise<void>;
  /** Where the shard's trim point is kept: an image older than it is refused (a node always gives it). */
  applied?: AppliedTable;
  /** A disk-mode shard's (alwaysRam: false) directory for its originals file, emptied first; needed for one. */
  originals?: string;
}

export interface Rebuilt {
  shard: Shard;
  /** The LSN of the image it started from (null: none, an empty shard). */
  imageLsn: number | null;
  /** The last stream sequence applied: tail from the next one. */
  lastSeq: number;
  /** Stream records applied after the image (claims and PARTIALs not counted). */
  replayed: number;
  imageMs: number;
  replayMs: number;
}

/** The writer (`<node>.<term>.<shard>`) and lsn of a msgId `<node>.<term>.<shard>.<lsn>` (a node id may hold dots: the lsn is the last field). */
function writerOf(msgId: string): { writer: string; lsn: number } | null {
  const m = /^(.+\.\d+)\.(\d+)$/.exec(msgId);
  return m === null ? null : { writer: m[1]!, lsn: Number(m[2]) };
}

export async function rebuildShard(src: RebuildSource): Promise<Rebuilt> {
  const { client, images, dataset, shard: number, params } = src;
  const disk = isDiskMode(params);
  if (disk && src.originals === undefined) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'a shard with alwaysRam: false is rebuilt with a directory for its originals (source.originals)');
  }
  await src.beforeRead?.();
  const started = performance.now();
  const trimmed = (await src.applied?.trimmedBelow(dataset, number)) ?? 0;
  const newest = await images.newest(dataset, number);
  // the log no longer holds what comes after that image (or, with none, after the start): try again
  if ((newest?.seq ?? 0) + 1 < trimmed) {
    throw new QuiverError(ErrorCode.UNAVAILABLE, `${dataset}/${number}: the log is trimmed below ${trimmed}, and the newest image found covers only up to ${newest?.seq ?? 0}`);
  }
  const shard = disk ? await diskShard(src, src.originals!, newest) : await memoryShard(src, newest);
  if (shard.dim !== params.dim) {
    release(shard);
    throw new QuiverError(ErrorCode.CORRUPT, `the image ${newest?.name} holds dim ${shard.dim}, the dataset has ${params.dim}`);
  }
  const imageMs = performance.now() - started;
  const log = new ShardLog(client, dataset, number);
  const from = (newest?.seq ?? 0) + 1;
  try {
    // pass 1: which upserts were cut short (PARTIAL), and where the tail is now
    const partial = new Map<string, number>();
    let lastSeq = from - 1;
    for await (const e of log.read(from)) {
      lastSeq = e.seq;
      if (e.data[0] !== Op.PARTIAL) continue;
      const w = writerOf(e.msgId);
      const p = decodePartial(e.data.subarray(1));
      if (w !== null) partial.set(`${w.writer}.${p.lsn}`, p.applied);
    }
    // pass 2: apply, up to that tail
    let replayed = 0;
    if (lastSeq >= from) {
      for await (const e of log.read(from, lastSeq)) {
        const op = e.data[0]!;
        if (op === CLAIM_OP || op === Op.PARTIAL) continue;
        await applyRecordInSteps(shard, op, e.data.subarray(1), partial.get(e.msgId), `${log.subject} record ${e.seq} (${e.msgId})`);
        replayed++;
      }
    }
    return { shard, imageLsn: newest?.lsn ?? null, lastSeq, replayed, imageMs, replayMs: performance.now() - started - imageMs };
  } catch (err) {
    release(shard);
    throw err;
  }
}

/** Frees a rebuilt shard's memory and closes its originals file (a disk-mode one's). */
export function release(shard: Shard): void {
  const file = shard.originals;
  shard.dispose();
  file?.close();
}

/** Streams the image's bytes into `into` (its exact size), checking the count. */
async function fillFrom(chunks: AsyncIterable<Uint8Array>, image: ImageInfo, into: (chunk: Uint8Array, at: number) => Promise<void> | void): Promise<void> {
  let at = 0;
  for await (const chunk of chunks) {
    if (at + chunk.length > image.size) throw new QuiverError(ErrorCode.CORRUPT_IMAGE, `the image ${image.name} holds more than its ${image.size} bytes`);
    await into(chunk, at);
    at += chunk.length;
  }
  if (at !== image.size) throw new QuiverError(ErrorCode.CORRUPT_IMAGE, `the image ${image.name} ended at ${at} of ${image.size} bytes`);
}

async function memoryShard(src: RebuildSource, newest: ImageInfo | null): Promise<Shard> {
  if (newest === null) return Shard.create(src.params);
  const read = await src.images.get(src.dataset, src.shard, newest.lsn);
  return Shard.loadImage(newest.size, (into) => fillFrom(read.chunks, newest, (c, at) => into.set(c, at)), src.params.build ?? 'release');
}

/**
 * A disk-mode shard in `dir` (emptied first): a new one with its spill file,
 * or the image, which is a snapshot part (the image, then the originals
 * file it pairs with, cluster-replica.ts `image`): it goes to a file, the
 * originals are written out as the file the image pairs with, then the
 * image loads with it.
 */
async function diskShard(src: RebuildSource, dir: string, newest: ImageInfo | null): Promise<Shard> {
  const { params } = src;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (newest === null) {
    const file = ShardOriginals.fresh(dir, params.dim);
    try {
      return Shard.create(params, 0, { originals: file });
    } catch (err) {
      file.close();
      throw err;
    }
  }
  const part = join(dir, 'image.part');
  const read = await src.images.get(src.dataset, src.shard, newest.lsn);
  const h = await open(part, 'w');
  try {
    await fillFrom(read.chunks, newest, async (c, at) => void (await h.write(c, 0, c.length, at)));
  } finally {
    await h.close();
  }
  const imageBytes = restoreOriginals(part, 0, newest.size, params.dim, dir);
  const file = openForImage(dir, imageGeneration(part) ?? 0, params.dim, newest.name);
  try {
    // the image only: its originals were just written out as their own file
    return Shard.fromImage(await readRange(nodeFiles, part, 0, imageBytes), params.build ?? 'release', { originals: file });
  } catch (err) {
    file.close();
    throw err;
  } finally {
    rmSync(part, { force: true });
  }
}
