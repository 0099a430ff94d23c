/**
 * The placement of every dataset's shards, in a KV bucket (default
 * `quiver-placement`, R=3, history 1): one key per dataset (names.ts: the
 * dataset's token), value JSON { shards: { "<shard>": { leader, followers } } }.
 *
 * Every write is a compare-and-set on the revision it was computed from, so
 * two nodes rebalancing at once cannot both win: the loser reads the new
 * placement and plans again from it (placement.ts is deterministic, so from
 * the same input it reaches the same answer and usually has nothing left to
 * write). Readers act on what they read; the leases (leases.ts) decide who
 * may write a shard, so a node acting on a placement one revision old can
 * at worst try for a lease it will not get.
 */
import type { KV } from '@nats-io/kv';
import { ErrorCode, QuiverError } from '../errors.js';
import { isKeyTaken, natsError, openKvBucket, type ClusterClient } from './connect.js';
import { checkShard, datasetToken } from './names.js';
import { plan, type Move, type ShardPlacement } from './placement.js';

export interface DatasetPlacement {
  /** shard number -> its copies */
  shards: Map<number, ShardPlacement>;
  /** The KV revision read (0: none written yet). */
  revision: number;
}

export interface RebalanceResult extends DatasetPlacement {
  moves: Move[];
  /** False when the placement already met the rules: nothing was written. */
  written: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const MAX_RACES = 8;

export class PlacementTable {
  readonly #kv: KV;
  readonly #timeoutMs: number;

  private constructor(kv: KV, timeoutMs: number) {
    this.#kv = kv;
    this.#timeoutMs = timeoutMs;
  }

  static async open(client: ClusterClient, options: { bucket?: string; replicas?: number } = {}): Promise<PlacementTable> {
    const { bucket = 'quiver-placement', replicas = 3 } = options;
    return new PlacementTable(await openKvBucket(client, bucket, replicas, 'placement'), client.timeoutMs);
  }

  async read(dataset: string): Promise<DatasetPlacement> {
    const key = datasetToken(dataset);
    let e;
    try {
      e = await this.#kv.get(key);
    } catch (err) {
      throw natsError(err, `reading the placement of ${dataset}`);
    }
    if (e === null || e.operation !== 'PUT') return { shards: new Map(), revision: e?.revision ?? 0 };
    return { shards: parse(dataset, e.value), revision: e.revision };
  }

  /** Deletes the dataset's placement (a dropped incarnation's, once no node places it). */
  async remove(dataset: string): Promise<void> {
    try {
      await this.#kv.purge(datasetToken(dataset));
    } catch (err) {
      throw natsError(err, `deleting the placement of ${dataset}`);
    }
  }

  /**
   * Writes `shards` if the dataset's placement is still at `revision` (0: not
   * written yet). Returns the new revision, or null when another write came
   * first (read again).
   */
  async write(dataset: string, shards: ReadonlyMap<number, ShardPlacement>, revision: number): Promise<number | null> {
    const key = datasetToken(dataset);
    const body = enc.encode(JSON.stringify({ shards: Object.fromEntries([...shards].map(([s, p]) => [String(s), p])) }));
    try {
      return revision === 0 ? await this.#kv.create(key, body) : await this.#kv.update(key, body, revision, this.#timeoutMs);
    } catch (err) {
      if (isKeyTaken(err)) return null;
      throw natsError(err, `writing the placement of ${dataset}`);
    }
  }

  /**
   * Plans the dataset's `shardCount` shards (each with `replicas` copies) on
   * the `alive` nodes from the placement stored now, and writes the plan
   * unless it changes nothing; a lost race reads and plans again.
   */
  async rebalance(dataset: string, shardCount: number, replicas: number, alive: readonly string[]): Promise<RebalanceResult> {
    if (!Number.isInteger(shardCount) || shardCount < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'shardCount must be an integer >= 1');
    checkShard(shardCount - 1);
    if (!Number.isInteger(replicas) || replicas < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'replicas must be an integer >= 1');
    const shards = Array.from({ length: shardCount }, (_, i) => ({ key: String(i), replicas }));
    for (let race = 0; race < MAX_RACES; race++) {
      const now = await this.read(dataset);
      const current = new Map([...now.shards].map(([s, p]) => [String(s), p]));
      const next = plan(shards, alive, current);
      const placed = new Map([...next.placement].map(([k, p]) => [Number(k), p]));
      if (next.moves.length === 0 && now.revision !== 0) return { shards: placed, revision: now.revision, moves: [], written: false };
      const revision = await this.write(dataset, placed, now.revision);
      if (revision !== null) return { shards: placed, revision, moves: next.moves, written: true };
    }
    throw new QuiverError(ErrorCode.UNAVAILABLE, `the placement of ${dataset} changed under ${MAX_RACES} rebalances in a row; try again`);
  }
}

function parse(dataset: string, value: Uint8Array): Map<number, ShardPlacement> {
  const bad = (): QuiverError => new QuiverError(ErrorCode.CORRUPT, `the placement of ${dataset} is not a placement record`);
  let raw: unknown;
  try {
    raw = JSON.parse(dec.decode(value));
  } catch {
    throw bad();
  }
  const shards = (raw as { shards?: unknown } | null)?.shards;
  if (typeof shards !== 'object' || shards === null) throw bad();
  const out = new Map<number, ShardPlacement>();
  for (const [k, p] of Object.entries(shards as Record<string, unknown>)) {
    const v = p as ShardPlacement;
    if (!/^\d+$/.test(k) || typeof v?.leader !== 'string' || !Array.isArray(v.followers) || !v.followers.every((f) => typeof f === 'string')) throw bad();
    out.set(Number(k), { leader: v.leader, followers: [...v.followers] });
  }
  return out;
}
