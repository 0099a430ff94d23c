/**
 * How far each copy of a shard has applied the shard's log: a KV bucket
 * (default `quiver-applied`, R=3, history 1), one key per copy,
 * `<token>.<shard>.<node token>` (names.ts), value the stream sequence as
 * decimal text. A shard's leader trims the stream only below what every
 * copy in the shard's placement has reported (store/cluster-trim.ts): a
 * follower cannot tell that records it has not read yet were purged, so a
 * trim must never pass one. A copy reports 0 before it starts a rebuild
 * (what it is about to read is not known yet), then its applied sequence as
 * it goes; a missing or unreadable report holds the trim back.
 *
 * The same bucket keeps each shard's trim point (`<token>.<shard>._trim`:
 * node tokens never start with '_'), written before the purge, so a rebuild
 * can refuse an image that no longer meets the log (cluster-rebuild.ts).
 */
import type { KV } from '@nats-io/kv';
import { isKeyTaken, natsError, openKvBucket, type ClusterClient } from './connect.js';
import { checkShard, datasetToken, nodeToken } from './names.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

const keyOf = (dataset: string, shard: number, nodeId: string): string => {
  checkShard(shard);
  return `${datasetToken(dataset)}.${shard}.${nodeToken(nodeId)}`;
};

const trimKey = (dataset: string, shard: number): string => {
  checkShard(shard);
  return `${datasetToken(dataset)}.${shard}._trim`;
};

export class AppliedTable {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  static async open(client: ClusterClient, options: { bucket?: string; replicas?: number } = {}): Promise<AppliedTable> {
    const { bucket = 'quiver-applied', replicas = 3 } = options;
    return new AppliedTable(await openKvBucket(client, bucket, replicas, 'applied'));
  }

  /** The copy of the shard on `nodeId` has applied the log up to `seq`. */
  async report(dataset: string, shard: number, nodeId: string, seq: number): Promise<void> {
    try {
      await this.#kv.put(keyOf(dataset, shard, nodeId), enc.encode(String(seq)));
    } catch (err) {
      throw natsError(err, `reporting ${dataset}/${shard} applied on ${nodeId}`);
    }
  }

  /** The least sequence the copies on `nodes` reported, or null if one has not reported. */
  async least(dataset: string, shard: number, nodes: readonly string[]): Promise<number | null> {
    let least = Infinity;
    for (const n of nodes) {
      let e;
      try {
        e = await this.#kv.get(keyOf(dataset, shard, n));
      } catch (err) {
        throw natsError(err, `reading what ${n} applied of ${dataset}/${shard}`);
      }
      if (e === null || e.operation !== 'PUT') return null;
      const seq = Number(dec.decode(e.value));
      if (!Number.isSafeInteger(seq) || seq < 0) return null;
      least = Math.min(least, seq);
    }
    return Number.isFinite(least) ? least : null;
  }

  /** The shard's records below this sequence may be gone (0: none trimmed). */
  async trimmedBelow(dataset: string, shard: number): Promise<number> {
    try {
      const e = await this.#kv.get(trimKey(dataset, shard));
      return e === null || e.operation !== 'PUT' ? 0 : Number(dec.decode(e.value));
    } catch (err) {
      throw natsError(err, `reading the trim point of ${dataset}/${shard}`);
    }
  }

  /** Raises the shard's trim point to `below` (compare-and-set: it never goes down). */
  async setTrimmed(dataset: string, shard: number, below: number): Promise<void> {
    const key = trimKey(dataset, shard);
    for (let tries = 0; ; tries++) {
      try {
        const e = await this.#kv.get(key);
        const have = e === null || e.operation !== 'PUT' ? 0 : Number(dec.decode(e.value));
        if (have >= below) return;
        if (e === null) await this.#kv.create(key, enc.encode(String(below)));
        else await this.#kv.update(key, enc.encode(String(below)), e.revision);
        return;
      } catch (err) {
        if (!isKeyTaken(err) || tries >= 5) throw natsError(err, `raising the trim point of ${dataset}/${shard}`);
      }
    }
  }

  /** Every copy's report of the shard and its trim point, deleted (a dropped dataset's). */
  async remove(dataset: string, shard: number): Promise<void> {
    try {
      await this.#kv.purge(`${datasetToken(dataset)}.${shard}.*`);
    } catch (err) {
      throw natsError(err, `deleting the applied reports of ${dataset}/${shard}`);
    }
  }
}
