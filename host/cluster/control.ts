/**
 * The control plane of one node: membership (members.ts), the datasets of
 * the cluster (a KV catalog), their placement (placement-table.ts) and the
 * leases this node holds (lease-keeper.ts), put together in one loop. It
 * moves no data: it tells the data plane, through its events, what this
 * node must hold and lead.
 *
 * Every round (default a quarter of the ttl), on every node:
 *   1. the alive members are read;
 *   2. for each dataset in the catalog, `rebalance` with them (a no-op when
 *      the placement already meets the rules; a compare-and-set when not, so
 *      nodes computing at once agree);
 *   3. from the placement: a shard newly placed on this node is `copy`
 *      (rebuild it from image + log, then follow its subject), one no longer
 *      placed here is `drop` (let its memory go); the lease keeper wants the
 *      shards this node leads and releases the ones it no longer leads;
 *   4. the keeper's own round: `acquired` (a takeover: catch up, then
 *      serve writes) and `lost` (stop writing now) pass straight through.
 *
 * Failover therefore costs: the member ttl (until the others stop counting
 * the dead node), a round (the rebalance that moves its leaderships), the
 * lease ttl (the lease it held runs out; the keeper waits it out as it
 * watches), a round, and the new leader's catch-up. A planned move (a node
 * joins) costs two rounds: the old leader releases at its next round and the
 * new one takes the lease at its next.
 */
import type { KV } from '@nats-io/kv';
import { ErrorCode, QuiverError } from '../errors.js';
import { isKeyTaken, isWrongLastSequence, kvKeys, natsError, openKvBucket, type ClusterClient } from './connect.js';
import { LeaseKeeper } from './lease-keeper.js';
import { LeaseTable, type Lease } from './leases.js';
import { Members } from './members.js';
import { checkDatasetName, checkShard, datasetToken, incarnation } from './names.js';
import { PlacementTable } from './placement-table.js';
import type { ShardPlacement } from './placement.js';

export interface ClusterDataset {
  name: string;
  shards: number;
  replicas: number;
  /** What the data plane needs to make a shard (its parameters), as JSON; the control plane only stores it. */
  config?: unknown;
  /** The uid its creation drew (names.ts): the shards, leases and placement are the incarnation's. */
  uid?: string;
}

/** The incarnation the catalog entry names: what its streams, leases, placement and images are keyed by. */
export const datasetId = (d: ClusterDataset): string => incarnation(d.name, d.uid);

/** Catalog keys of dropped incarnations waiting to be purged; a name's token has no '.' (names.ts). */
const DROPPED = 'dropped.';

export interface ControlEvents {
  /** This node now holds a copy of the shard (it was placed here). */
  copy?(dataset: string, shard: number): void;
  /** This node no longer holds a copy (placed elsewhere): let it go. */
  drop?(dataset: string, shard: number): void;
  /** This node leads the shard from now on (a failed promise gives the lease back). */
  acquired?(lease: Lease): void | Promise<void>;
  /** This node stopped leading the shard: stop writing it now. */
  lost?(dataset: string, shard: number, term: number, why: QuiverError): void;
  /** A dataset incarnation left the catalog (dropped) after this node's copies of it were dropped. */
  gone?(dataset: string): void;
  /** A dropped incarnation whose purge is still to do (its tombstone, put `since`). */
  dropped?(d: ClusterDataset, since: Date): void;
  /** A round's failure (NATS unavailable, ...): retried next round. */
  error?(err: unknown): void;
}

export interface ControlOptions {
  nodeId: string;
  /** Where this node answers (its HTTP URL). */
  address: string;
  /** Member and lease ttl, ms. */
  ttlMs: number;
  /** ms between rounds; default ttl / 4. */
  roundMs?: number;
  /** Bucket name prefix (default 'quiver'): <prefix>-members, -leases, -placement, -datasets. */
  prefix?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const keyOf = (dataset: string, shard: number): string => `${dataset}\u0000${shard}`;

export class ControlNode {
  readonly nodeId: string;
  readonly roundMs: number;
  readonly members: Members;
  readonly keeper: LeaseKeeper;
  readonly #placement: PlacementTable;
  readonly #leases: LeaseTable;
  readonly #catalog: KV;
  readonly #client: ClusterClient;
  readonly #catalogBucket: string;
  readonly #events: ControlEvents;
  /** the copies this node holds by the last placement it read */
  readonly #copies = new Set<string>();
  /** the shards it leads by that placement */
  readonly #leads = new Map<string, { dataset: string; shard: number }>();
  /** the catalog as last read, by name */
  #known = new Map<string, ClusterDataset>();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;

  private constructor(o: ControlOptions, client: ClusterClient, members: Members, keeper: LeaseKeeper, leases: LeaseTable, placement: PlacementTable, catalog: KV, events: ControlEvents, roundMs: number) {
    this.nodeId = o.nodeId;
    this.#leases = leases;
    this.#client = client;
    this.#catalogBucket = `${o.prefix ?? 'quiver'}-datasets`;
    this.members = members;
    this.keeper = keeper;
    this.#placement = placement;
    this.#catalog = catalog;
    this.#events = events;
    this.roundMs = roundMs;
  }

  static async open(client: ClusterClient, options: ControlOptions, events: ControlEvents = {}): Promise<ControlNode> {
    const { nodeId, address, ttlMs, prefix = 'quiver' } = options;
    const roundMs = options.roundMs ?? Math.max(10, Math.floor(ttlMs / 4));
    if (typeof prefix !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(prefix)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.prefix must be 1-40 letters, digits, \'_\' or \'-\'');
    const members = await Members.open(client, { nodeId, address, ttlMs, heartbeatMs: roundMs, bucket: `${prefix}-members` });
    const table = await LeaseTable.open(client, { nodeId, ttlMs, bucket: `${prefix}-leases` });
    const placement = await PlacementTable.open(client, { bucket: `${prefix}-placement` });
    const catalog = await openKvBucket(client, `${prefix}-datasets`, 3, 'datasets');
    const keeper = new LeaseKeeper(table, {
      acquired: (lease) => events.acquired?.(lease),
      lost: (dataset, shard, term, why) => events.lost?.(dataset, shard, term, why),
      error: (_d, _s, err) => events.error?.(err),
    }, { intervalMs: roundMs });
    return new ControlNode(options, client, members, keeper, table, placement, catalog, events, roundMs);
  }

  /** Joins the cluster and starts the rounds. */
  async start(): Promise<void> {
    await this.members.join();
    this.members.start((err) => this.#events.error?.(err));
    await this.round();
    this.#timer = setInterval(() => {
      if (this.#round === undefined) void this.round();
    }, this.roundMs);
    this.#timer.unref();
  }

  /** Stops; `leave` (graceful) releases the leases and the membership at once, else they run out (a crash). */
  async stop(leave = true): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#round;
    await this.keeper.stop(leave);
    await this.members.stop(leave);
  }

  /** Adds a dataset to the cluster's catalog (EXISTS if the name is taken with other parameters); the entry the catalog holds. */
  async createDataset(d: ClusterDataset): Promise<ClusterDataset> {
    checkDatasetName(d.name);
    if (!Number.isInteger(d.shards) || d.shards < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'shards must be an integer >= 1');
    checkShard(d.shards - 1);
    if (!Number.isInteger(d.replicas) || d.replicas < 1 || d.replicas > 5) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'replicas must be an integer in 1..5');
    const entry = { name: d.name, shards: d.shards, replicas: d.replicas, ...(d.config === undefined ? {} : { config: d.config }), ...(d.uid === undefined ? {} : { uid: d.uid }) };
    try {
      await this.#catalog.create(datasetToken(d.name), enc.encode(JSON.stringify(entry)));
      return entry;
    } catch (err) {
      if (!isKeyTaken(err)) throw natsError(err, `adding ${d.name} to the catalog`);
      const have = (await this.datasets()).find((x) => x.name === d.name);
      if (have?.shards !== d.shards || have.replicas !== d.replicas || JSON.stringify(have.config) !== JSON.stringify(d.config)) {
        throw new QuiverError(ErrorCode.EXISTS, `dataset ${d.name} exists with ${have?.shards} shards, ${have?.replicas} replicas and ${JSON.stringify(have?.config)}`);
      }
      return have;
    }
  }

  /**
   * Takes the dataset out of the catalog: a tombstone for its incarnation
   * first (so its purge is done even if this node stops), then the entry,
   * compare-and-set on the revision read. Every node's next round drops its
   * copies and leases of it. The entry dropped, or null if there was none.
   */
  async dropDataset(name: string): Promise<ClusterDataset | null> {
    const key = datasetToken(name);
    try {
      const e = await this.#catalog.get(key);
      if (e === null || e.operation !== 'PUT') return null;
      const d = JSON.parse(dec.decode(e.value)) as ClusterDataset;
      await this.#catalog.put(DROPPED + datasetToken(datasetId(d)), e.value);
      await this.#catalog.delete(key, { previousSeq: e.revision });
      this.#known.delete(name);
      return d;
    } catch (err) {
      // another node's drop of it came first (an entry changes only when dropped)
      if (isWrongLastSequence(err)) return null;
      throw natsError(err, `dropping ${name} from the catalog`);
    }
  }

  /**
   * Puts `d` (a new incarnation, its uid drawn) under its name, replacing
   * the incarnation there if there is one: a tombstone for that one first,
   * as a drop puts, then the entry by compare-and-set on the revision read.
   * Every node's next round drops the old one's copies and places the new
   * one's. The entry replaced, or null if the name was free; EXISTS if
   * another write of the name came between the read and the set.
   */
  async replaceDataset(d: ClusterDataset & { uid: string }): Promise<ClusterDataset | null> {
    const key = datasetToken(d.name);
    const entry = enc.encode(JSON.stringify({ name: d.name, shards: d.shards, replicas: d.replicas, config: d.config, uid: d.uid }));
    try {
      const e = await this.#catalog.get(key);
      if (e === null || e.operation !== 'PUT') {
        await this.#catalog.create(key, entry);
        return null;
      }
      const old = JSON.parse(dec.decode(e.value)) as ClusterDataset;
      await this.#catalog.put(DROPPED + datasetToken(datasetId(old)), e.value);
      await this.#catalog.update(key, entry, e.revision);
      return old;
    } catch (err) {
      if (isWrongLastSequence(err) || isKeyTaken(err)) throw new QuiverError(ErrorCode.EXISTS, `dataset ${d.name} was created, dropped or replaced by another node meanwhile: nothing was replaced`);
      throw natsError(err, `replacing ${d.name} in the catalog`);
    }
  }

  /** The placement and leases of a dropped incarnation deleted, then its tombstone (the data plane deleted its stream and images). */
  async purge(d: ClusterDataset): Promise<void> {
    const id = datasetId(d);
    if ([...this.#known.values()].some((x) => datasetId(x) === id)) throw new QuiverError(ErrorCode.EXISTS, `${id} is in the catalog: not purged`);
    await this.#placement.remove(id);
    for (let s = 0; s < d.shards; s++) await this.#leases.remove(id, s);
    try {
      await this.#catalog.purge(DROPPED + datasetToken(id));
    } catch (err) {
      throw natsError(err, `purging the tombstone of ${id}`);
    }
  }

  /** The catalog now (also kept, by name: `known`). */
  async datasets(): Promise<ClusterDataset[]> {
    return (await this.#read()).live;
  }

  /** The entry of `name` as the last catalog read had it. */
  known(name: string): ClusterDataset | undefined {
    return this.#known.get(name);
  }

  async #read(): Promise<{ live: ClusterDataset[]; dropped: { d: ClusterDataset; since: Date }[] }> {
    const live: ClusterDataset[] = [];
    const dropped: { d: ClusterDataset; since: Date }[] = [];
    for (const k of await kvKeys(this.#client, this.#catalogBucket)) {
      let e;
      try {
        e = await this.#catalog.get(k);
      } catch (err) {
        throw natsError(err, `reading the dataset ${k}`);
      }
      if (e === null || e.operation !== 'PUT') continue;
      const d = JSON.parse(dec.decode(e.value)) as ClusterDataset;
      if (k.startsWith(DROPPED)) dropped.push({ d, since: e.created });
      else live.push(d);
    }
    live.sort((a, b) => (a.name < b.name ? -1 : 1));
    this.#known = new Map(live.map((d) => [d.name, d]));
    return { live, dropped };
  }

  /** The dataset's placement as the table holds it now: shard -> leader and followers. */
  async placement(dataset: string): Promise<Map<number, ShardPlacement>> {
    return (await this.#placement.read(dataset)).shards;
  }

  /** The node that holds the shard's lease now (the one that may write it), or null. */
  async leaseHolder(dataset: string, shard: number): Promise<string | null> {
    const h = await this.#leases.holderOf(dataset, shard);
    return h === null ? null : h.record.holder;
  }

  /** The shards this node holds a copy of, and the ones it leads with a valid lease. */
  roles(): { copies: { dataset: string; shard: number }[]; leading: { dataset: string; shard: number; term: number }[] } {
    const copies = [...this.#copies].map((k) => {
      const [dataset, shard] = k.split('\u0000');
      return { dataset: dataset!, shard: Number(shard) };
    });
    return { copies, leading: this.keeper.held().map((l) => ({ dataset: l.dataset, shard: l.shard, term: l.term })) };
  }

  /** One round now (the timer's work). */
  round(): Promise<void> {
    if (this.#round !== undefined) return this.#round;
    this.#round = this.#run().catch((err) => this.#events.error?.(err)).finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  async #run(): Promise<void> {
    const alive = (await this.members.alive()).map((m) => m.nodeId);
    const copies = new Set<string>();
    const leads = new Map<string, { dataset: string; shard: number }>();
    const before = new Set([...this.#known.values()].map(datasetId));
    const { live, dropped } = await this.#read();
    for (const d of live) {
      const id = datasetId(d);
      before.delete(id);
      const { shards } = await this.#placement.rebalance(id, d.shards, d.replicas, alive);
      for (const [shard, p] of shards) {
        if (p.leader === this.nodeId) leads.set(keyOf(id, shard), { dataset: id, shard });
        if (p.leader === this.nodeId || p.followers.includes(this.nodeId)) copies.add(keyOf(id, shard));
      }
    }
    for (const k of copies) {
      if (this.#copies.has(k)) continue;
      this.#copies.add(k);
      const [dataset, shard] = k.split('\u0000');
      this.#events.copy?.(dataset!, Number(shard));
    }
    for (const [k, l] of this.#leads) {
      if (leads.has(k)) continue;
      this.#leads.delete(k);
      await this.keeper.unwant(l.dataset, l.shard);
    }
    for (const [k, l] of leads) {
      this.#leads.set(k, l);
      this.keeper.want(l.dataset, l.shard);
    }
    for (const k of [...this.#copies]) {
      if (copies.has(k)) continue;
      this.#copies.delete(k);
      const [dataset, shard] = k.split('\u0000');
      this.#events.drop?.(dataset!, Number(shard));
    }
    for (const id of before) this.#events.gone?.(id);
    for (const x of dropped) this.#events.dropped?.(x.d, x.since);
    await this.keeper.round();
  }
}
