/**
 * Trimming a shard's log (docs/cluster.md, "Trimming the log"). After its
 * leader puts an image, the shard's records that every reader can do
 * without are purged from the dataset's stream, so the nats-servers' disk
 * use follows the live data, not every write ever made. The records kept
 * are those at or after the smallest of:
 *
 *   - the oldest image kept + 1: a rebuild starts from the newest image, or
 *     the one before it when the newest cannot be read;
 *   - what each copy in the shard's placement reported applied + 1
 *     (cluster/applied.ts; a copy that has not reported keeps everything):
 *     a follower cannot see a purge, so none may pass it;
 *   - the shard's last record: claims, in-doubt retries and a leader's
 *     recovery read it.
 */
import type { AppliedTable } from '../cluster/applied.js';
import type { ClusterClient } from '../cluster/connect.js';
import { natsError } from '../cluster/connect.js';
import type { ImageStore } from '../cluster/images.js';
import type { ShardPlacement } from '../cluster/placement.js';
import { ShardLog } from '../cluster/shard-stream.js';

export interface TrimSource {
  client: ClusterClient;
  images: ImageStore;
  applied: AppliedTable;
  dataset: string;
  shard: number;
  /** The shard's placement now (its leader and followers), undefined if it has none. */
  placement: ShardPlacement | undefined;
}

/** The sequence below which the shard's records may go (0: none may), per the rules above. */
export async function trimPoint(o: TrimSource): Promise<number> {
  const kept = await o.images.list(o.dataset, o.shard);
  if (kept.length === 0 || o.placement === undefined) return 0;
  const oldest = Math.min(...kept.map((i) => i.seq));
  const applied = await o.applied.least(o.dataset, o.shard, [o.placement.leader, ...o.placement.followers]);
  if (applied === null) return 0;
  const last = await new ShardLog(o.client, o.dataset, o.shard).lastSeq();
  return Math.max(0, Math.min(oldest + 1, applied + 1, last));
}

/** Purges the shard's records below its trim point; the number purged. */
export async function trimShard(o: TrimSource): Promise<number> {
  const below = await trimPoint(o);
  if (below <= 1) return 0;
  const log = new ShardLog(o.client, o.dataset, o.shard);
  // recorded first: a rebuild refuses an image older than it (cluster-rebuild.ts)
  await o.applied.setTrimmed(o.dataset, o.shard, below);
  try {
    return (await o.client.jsm.streams.purge(log.stream, { filter: log.subject, seq: below })).purged;
  } catch (err) {
    throw natsError(err, `trimming ${log.subject} below ${below}`);
  }
}
