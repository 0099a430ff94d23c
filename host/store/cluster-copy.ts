/**
 * A cluster node's copy of a shard (cluster-node.ts) as the node tracks it:
 * its rebuild, whether it was dropped, its images and what it reported
 * applied. A leader puts an image of its shard in the object store every
 * `imageEvery` records it writes and on `checkpoint()`, then trims the log
 * (cluster-trim.ts); a new copy rebuilds from the newest image plus the
 * stream after it. Every copy reports what it has applied (cluster/applied.ts),
 * 0 before it rebuilds, so no trim passes a reader.
 */
import { join } from 'node:path';
import type { AppliedTable } from '../cluster/applied.js';
import type { ClusterClient } from '../cluster/connect.js';
import type { ImageStore } from '../cluster/images.js';
import { datasetToken, nameOf } from '../cluster/names.js';
import { ErrorCode, QuiverError } from '../errors.js';
import type { DatasetEntry } from './cluster-datasets.js';
import type { MoveGate } from './cluster-moves.js';
import { ShardReplica } from './cluster-replica.js';
import { retryable } from './cluster-tasks.js';

/** A node's key of its copy of a shard. */
export const keyOf = (dataset: string, shard: number): string => `${dataset}\u0000${shard}`;

export interface Copy {
  ready: Promise<ShardReplica>;
  replica: ShardReplica | null;
  closed: boolean;
  /** Records this node wrote as leader since the shard's last image. */
  sinceImage: number;
  /** The image being put, if one is (imageNow). */
  imaging: Promise<unknown> | null;
  /** The applied sequence this node last reported for the copy (cluster/applied.ts). */
  reported: number;
}

/** What a copy's rebuild needs of its node. */
export interface CopyHost {
  client: ClusterClient;
  images: ImageStore;
  applied: AppliedTable;
  nodeId: string;
  /** The node's directory (a disk-mode copy's originals: <dir>/<dataset token>/<shard>/originals). */
  dir: string;
  /** The node's rate limit on rebuilds (cluster-moves.ts). */
  moves: MoveGate;
  /** The dataset's catalog entry by name (NOT_FOUND once dropped). */
  entry(name: string): Promise<DatasetEntry>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A new copy of shard `shard` of incarnation `dataset`: rebuilt (retried
 * while NATS is unavailable) until it follows, unless it is closed first
 * or its incarnation leaves the catalog.
 */
export function followCopy(host: CopyHost, dataset: string, shard: number): Copy {
  const copy: Copy = { ready: Promise.resolve(null as unknown as ShardReplica), replica: null, closed: false, sinceImage: 0, imaging: null, reported: 0 };
  copy.ready = (async () => {
    for (;;) {
      try {
        const d = await host.entry(nameOf(dataset));
        if (d.id !== dataset) throw new QuiverError(ErrorCode.CLOSED, `${dataset}: dropped`);
        const beforeRead = reportRebuild(host.applied, host.nodeId, dataset, shard, copy);
        const originals = join(host.dir, datasetToken(dataset), String(shard), 'originals');
        const r = await host.moves.run(copy, () => ShardReplica.follow({ client: host.client, images: host.images, applied: host.applied, dataset, shard, params: d.params, beforeRead, originals }));
        if (r === null) throw new QuiverError(ErrorCode.CLOSED, `${dataset}/${shard}: dropped before its rebuild began`);
        if (copy.closed) {
          await r.close();
          throw new QuiverError(ErrorCode.CLOSED, `${dataset}/${shard}: dropped while it was rebuilt`);
        }
        copy.replica = r;
        return r;
      } catch (err) {
        if (copy.closed || !retryable(err)) throw err;
        await sleep(250);
      }
    }
  })();
  copy.ready.catch(() => {});
  return copy;
}

/**
 * The shard's image to the object store if this node leads it, the older
 * ones pruned to `keep`, then `after` (the log trimmed: cluster-trim.ts; its
 * failure changes nothing, the next image tries again): the stream
 * sequence the image covers (its name), or null when this node does not
 * lead. One at a time per copy: an image being put is waited for first, so
 * two puts of one name never replace an object under its reader. A failure
 * throws when `strict` (checkpoint, snapshot), else the next `imageEvery`
 * records try again.
 */
export async function imageNow(images: ImageStore, dataset: string, shard: number, copy: Copy, keep: number, strict: boolean, after?: () => Promise<unknown>): Promise<number | null> {
  while (copy.imaging !== null) await copy.imaging.catch(() => {});
  const run = putImage(images, dataset, shard, copy, keep, strict, after);
  copy.imaging = run;
  try {
    return await run;
  } finally {
    if (copy.imaging === run) copy.imaging = null;
  }
}

async function putImage(images: ImageStore, dataset: string, shard: number, copy: Copy, keep: number, strict: boolean, after?: () => Promise<unknown>): Promise<number | null> {
  const r = copy.replica;
  if (r?.role !== 'leader' || copy.closed) return null;
  const since = copy.sinceImage;
  copy.sinceImage = 0;
  try {
    const { image, seq } = await r.image();
    await images.put(dataset, shard, seq, seq, image);
    await images.prune(dataset, shard, keep);
    await after?.().catch(() => {});
    return seq;
  } catch (err) {
    copy.sinceImage += since;
    if (strict) throw err;
    return null;
  }
}

/**
 * Every `everyMs`, each copy's applied sequence reported (cluster/applied.ts)
 * when it moved on since its last report; a report NATS refuses is made
 * again at the next tick. Returns the stop.
 */
export function reportApplied(applied: AppliedTable, nodeId: string, copies: ReadonlyMap<string, Copy>, everyMs: number): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => {
      for (const [key, copy] of [...copies]) {
        const seq = copy.replica?.lastSeq ?? 0;
        if (copy.closed || seq <= copy.reported) continue;
        const [dataset, shard] = key.split('\u0000');
        await applied.report(dataset!, Number(shard), nodeId, seq).then(() => {
          copy.reported = Math.max(copy.reported, seq);
        }, () => {});
      }
    })().finally(() => {
      running = false;
    });
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** A copy's `beforeRead` (cluster-rebuild.ts): it reports 0 applied, so no trim passes what it is about to read (cluster-trim.ts). */
export function reportRebuild(applied: AppliedTable, nodeId: string, dataset: string, shard: number, copy: Copy): () => Promise<void> {
  return async () => {
    copy.reported = 0;
    await applied.report(dataset, shard, nodeId, 0);
  };
}
