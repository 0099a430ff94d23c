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
 */
import { Shard, type ShardParams } from '../core/shard.js';
import type { AppliedTable } from '../cluster/applied.js';
import type { ClusterClient } from '../cluster/connect.js';
import type { ImageStore } from '../cluster/images.js';
import { CLAIM_OP } from '../cluster/replicated-log.js';
import { ShardLog } from '../cluster/shard-stream.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { decodePartial, Op } from '../storage/index.js';
import { applyRecordInSteps } from './apply.js';

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
  if (params.quantization?.alwaysRam === false) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'a shard with alwaysRam: false cannot be rebuilt from the cluster yet: its originals file is not in the object store');
  }
  await src.beforeRead?.();
  const started = performance.now();
  const trimmed = (await src.applied?.trimmedBelow(dataset, number)) ?? 0;
  const newest = await images.newest(dataset, number);
  // the log no longer holds what comes after that image (or, with none, after the start): try again
  if ((newest?.seq ?? 0) + 1 < trimmed) {
    throw new QuiverError(ErrorCode.UNAVAILABLE, `${dataset}/${number}: the log is trimmed below ${trimmed}, and the newest image found covers only up to ${newest?.seq ?? 0}`);
  }
  let shard: Shard;
  if (newest === null) shard = Shard.create(params);
  else {
    const read = await images.get(dataset, number, newest.lsn);
    shard = await Shard.loadImage(newest.size, async (into) => {
      let at = 0;
      for await (const chunk of read.chunks) {
        if (at + chunk.length > into.length) throw new QuiverError(ErrorCode.CORRUPT_IMAGE, `the image ${newest.name} holds more than its ${newest.size} bytes`);
        into.set(chunk, at);
        at += chunk.length;
      }
      if (at !== newest.size) throw new QuiverError(ErrorCode.CORRUPT_IMAGE, `the image ${newest.name} ended at ${at} of ${newest.size} bytes`);
    }, params.build ?? 'release');
    if (shard.dim !== params.dim) {
      shard.dispose();
      throw new QuiverError(ErrorCode.CORRUPT, `the image ${newest.name} holds dim ${shard.dim}, the dataset has ${params.dim}`);
    }
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
    shard.dispose();
    throw err;
  }
}
