/**
 * A cluster node's copy of a shard (cluster-node.ts) as the node tracks it:
 * its rebuild, whether it was dropped, its images and what it reported
 * applied. A leader puts an image of its shard in the object store every
 * `imageEvery` records it writes and on `checkpoint()`, then trims the log
 * (cluster-trim.ts); a new copy rebuilds from the newest image plus the
 * stream after it. Every copy reports what it has applied (cluster/applied.ts),
 * 0 before it rebuilds, so no trim passes a reader.
 */
import type { AppliedTable } from '../cluster/applied.js';
import type { ImageStore } from '../cluster/images.js';
import type { ShardReplica } from './cluster-replica.js';

/** A node's key of its copy of a shard. */
export const keyOf = (dataset: string, shard: number): string => `${dataset}\u0000${shard}`;

export interface Copy {
  ready: Promise<ShardReplica>;
  replica: ShardReplica | null;
  closed: boolean;
  /** Records this node wrote as leader since the shard's last image. */
  sinceImage: number;
  /** The image being put, if one is. */
  imaging: Promise<boolean> | null;
  /** The applied sequence this node last reported for the copy (cluster/applied.ts). */
  reported: number;
}

/**
 * The shard's image to the object store if this node leads it, the older
 * ones pruned to `keep`, then `after` (the log trimmed: cluster-trim.ts; its
 * failure changes nothing, the next image tries again); true when put. A
 * failure throws when `strict` (checkpoint), else the next `imageEvery`
 * records try again.
 */
export async function putImage(images: ImageStore, dataset: string, shard: number, copy: Copy, keep: number, strict: boolean, after?: () => Promise<unknown>): Promise<boolean> {
  const r = copy.replica;
  if (r?.role !== 'leader') return false;
  const since = copy.sinceImage;
  copy.sinceImage = 0;
  try {
    const { image, seq } = await r.image();
    await images.put(dataset, shard, seq, seq, image);
    await images.prune(dataset, shard, keep);
    await after?.().catch(() => {});
    return true;
  } catch (err) {
    copy.sinceImage += since;
    if (strict) throw err;
    return false;
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
