/**
 * A cluster node's copy of a shard (cluster-node.ts) as the node tracks it:
 * its rebuild, whether it was dropped, and its images. A leader puts an
 * image of its shard in the object store every `imageEvery` records it
 * writes and on `checkpoint()`; a new copy rebuilds from the newest plus
 * the stream after it.
 */
import type { ImageStore } from '../cluster/images.js';
import type { ShardReplica } from './cluster-replica.js';

export interface Copy {
  ready: Promise<ShardReplica>;
  replica: ShardReplica | null;
  closed: boolean;
  /** Records this node wrote as leader since the shard's last image. */
  sinceImage: number;
  /** The image being put, if one is. */
  imaging: Promise<boolean> | null;
}

/**
 * The shard's image to the object store if this node leads it, and the
 * older ones pruned to `keep`; true when put. A failure throws when
 * `strict` (checkpoint), else the next `imageEvery` records try again.
 */
export async function putImage(images: ImageStore, dataset: string, shard: number, copy: Copy, keep: number, strict: boolean): Promise<boolean> {
  const r = copy.replica;
  if (r?.role !== 'leader') return false;
  const since = copy.sinceImage;
  copy.sinceImage = 0;
  try {
    const { image, seq } = await r.image();
    await images.put(dataset, shard, seq, seq, image);
    await images.prune(dataset, shard, keep);
    return true;
  } catch (err) {
    copy.sinceImage += since;
    if (strict) throw err;
    return false;
  }
}
