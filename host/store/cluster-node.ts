/**
 * One quiver node of a cluster (docs/cluster.md, "A node"): the control
 * plane's events (control.ts) drive this node's copies of shards
 * (cluster-replica.ts), and any node answers any request. A write goes to
 * the shard's leader (the lease holder): applied here when that is this
 * node, else forwarded over NATS request/reply (rpc.ts); it is acknowledged
 * once the leader has it in the stream and fsynced. A search goes to one
 * copy of every shard, grouped by node, and the top k are merged.
 *
 *   copy      rebuild the shard from image + stream, then follow it
 *   acquired  the copy leads for the lease's term (claim, catch up)
 *   lost      the copy steps down to a follower
 *   drop      the copy closes and its memory goes
 *   gone      a dropped dataset's local logs go (cluster-datasets.ts; images: cluster-copy.ts)
 *
 * Reads take `consistency`: 'leader' (default) asks each shard's leader,
 * which has applied every acknowledged write; 'any' lets a follower answer
 * (this node's own copy first), which may lag the leader by the records in
 * flight. A write that finds no leader (a failover under way: lease expiry
 * plus the new leader's catch-up) is retried until `writeTimeoutMs`, then
 * fails UNAVAILABLE, never acknowledged.
 *
 * The shards of a node run on its main thread, not in a Store's worker
 * pool (docs/cluster.md, "Not yet wired"); `quiver serve --cluster` serves it.
 */
import { join } from 'node:path';
import { ClusterClient } from '../cluster/connect.js';
import { ControlNode, datasetId } from '../cluster/control.js';
import { ImageStore, type ImageRead } from '../cluster/images.js';
import type { Lease } from '../cluster/leases.js';
import { datasetToken, nameOf } from '../cluster/names.js';
import { callRpc, rpcSubject, serveRpc, type RpcMessage } from '../cluster/rpc.js';
import { checkedEntry, ClusterDatasets, entryOf, type DatasetEntry } from './cluster-datasets.js';
export type { DatasetEntry } from './cluster-datasets.js';
import { followCopy, imageNow, keyOf, reportApplied, type Copy } from './cluster-copy.js';
import { trimShard } from './cluster-trim.js';
import { AppliedTable } from '../cluster/applied.js';
import { collectGarbage } from '../core/gc.js';
import type { SearchHits } from '../core/shard.js';
import { ErrorCode, QuiverError } from '../errors.js';
import type { CompiledFilter, Filter } from '../filter/filter.js';
import type { IdList } from '../ids.js';
import type { Payload } from '../payload.js';
import type { PayloadIndexInfo, PayloadIndexType } from '../core/payload-index.js';
import { deleteRecords, deleteWhereRecords, indexRecords, payloadRecords, upsertRecords, type ShardRecord } from './cluster-writes.js';
import { countCluster, indexesCluster, retrieveCluster, scrollCluster, searchCluster, type RunTasks } from './cluster-reads.js';
import { CopyReads, decodeAnswers, decodeTasks, encodeAnswers, encodeTasks, retryable, runOnCopies, type TaskAnswer } from './cluster-tasks.js';
import type { ReadTask } from './shard-tasks.js';
import type { CountOptions, PayloadUpdate, PointRecord, PointSelection, ReadOptions, ScrollOptions, ScrollPage } from './types.js';
import { MoveGate, type MoveStats } from './cluster-moves.js';
import type { ClusterDatasetOptions, ClusterNodeOptions, ClusterReadOptions, ClusterSearchOptions, ReadConsistency } from './cluster-options.js';
import type { ShardReplica } from './cluster-replica.js';

export type { ClusterDatasetOptions, ClusterNodeOptions, ClusterReadOptions, ClusterSearchOptions, ReadConsistency } from './cluster-options.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export class ClusterNode {
  readonly nodeId: string;
  readonly #client: ClusterClient;
  readonly #images: ImageStore;
  readonly #applied: AppliedTable;
  #stopReports = (): void => {};
  readonly #dir: string;
  readonly #prefix: string;
  /** How long a write waits for its shard's leader before it fails UNAVAILABLE. */
  readonly writeTimeoutMs: number;
  readonly #streamReplicas: number;
  readonly #imageEvery: number;
  readonly #moves: MoveGate;
  readonly #copies = new Map<string, Copy>();
  readonly #dropping = new Set<Promise<void>>();
  readonly #datasets: ClusterDatasets;
  readonly #reads = new CopyReads();
  #control: ControlNode | null = null;
  #fenced = 0;
  #closing = false;

  private constructor(o: ClusterNodeOptions, client: ClusterClient, images: ImageStore, applied: AppliedTable) {
    this.nodeId = o.nodeId;
    this.#client = client;
    this.#images = images;
    this.#applied = applied;
    this.#dir = o.dir;
    this.#prefix = o.prefix ?? 'quiver';
    // long enough to ride out a JetStream election after a nats-server dies (several seconds on 2.9)
    this.writeTimeoutMs = o.writeTimeoutMs ?? Math.max(4 * (o.ttlMs ?? 3000), 10_000);
    this.#streamReplicas = o.streamReplicas ?? 3;
    this.#imageEvery = o.imageEvery ?? 1000;
    this.#moves = new MoveGate(o.maxMoves ?? 1);
    this.#datasets = new ClusterDatasets({
      nodeId: o.nodeId, client, images, applied, dir: o.dir, prefix: this.#prefix, streamReplicas: this.#streamReplicas, waitMs: this.writeTimeoutMs,
      control: () => this.#ctl(), closing: async () => void (await Promise.all(this.#dropping)),
    });
    if (!Number.isInteger(this.#moves.limit) || this.#moves.limit < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.maxMoves must be an integer >= 1');
    if (!Number.isInteger(this.#imageEvery) || this.#imageEvery < 0) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.imageEvery must be an integer >= 0');
  }

  /** Connects, joins the cluster and starts taking the shards placed here. */
  static async open(o: ClusterNodeOptions): Promise<ClusterNode> {
    if (typeof o.dir !== 'string' || o.dir === '') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.dir must be a directory path');
    const client = await ClusterClient.connect({ servers: o.servers as string | string[], name: o.nodeId });
    try {
      const node = new ClusterNode(o, client, await ImageStore.open(client), await AppliedTable.open(client, { bucket: `${o.prefix ?? 'quiver'}-applied` }));
      node.#control = await ControlNode.open(client, { nodeId: o.nodeId, address: o.address ?? `nats:${rpcSubject(node.#prefix, o.nodeId)}`, ttlMs: o.ttlMs ?? 3000, prefix: node.#prefix }, {
        copy: (d, s) => void node.#copy(d, s),
        drop: (d, s) => void node.#drop(d, s),
        acquired: (lease) => node.#lead(lease),
        lost: (d, s) => void node.#copies.get(keyOf(d, s))?.replica?.stepDown().catch(() => {}),
        gone: (d) => void node.#datasets.gone(d).catch(() => {}),
        dropped: (d, since) => node.#datasets.dropped(d, since),
      });
      serveRpc(client, rpcSubject(node.#prefix, o.nodeId), (m) => node.#serve(m));
      await node.#control.start();
      node.#stopReports = reportApplied(node.#applied, o.nodeId, node.#copies, 1000);
      await node.#datasets.sweep();
      return node;
    } catch (err) {
      await client.close();
      throw err;
    }
  }

  /** Adds a dataset to the cluster (a new incarnation: its log stream, then the catalog entry; cluster-datasets.ts). */
  async createDataset(name: string, o: ClusterDatasetOptions): Promise<void> {
    await this.#datasets.create(checkedEntry(name, o));
  }

  /**
   * Makes `name` a new incarnation whose shards start from the images `seed`
   * puts under the id it is given, replacing the one there (snapshot
   * recovery: cluster-snapshots.ts, cluster-datasets.ts `replace`).
   */
  async recoverDataset(name: string, o: ClusterDatasetOptions, seed: (images: ImageStore, id: string) => Promise<void>): Promise<void> {
    await this.#datasets.replace(checkedEntry(name, o), (id) => seed(this.#images, id));
  }

  /** Drops a dataset from every node and purges it from NATS (cluster-datasets.ts); false if there was none. */
  dropDataset(name: string): Promise<boolean> {
    return this.#datasets.drop(name);
  }

  /** Upserts points through their shards' leaders; resolves once every one is acknowledged. */
  async upsert(dataset: string, ids: IdList, vectors: Float32Array, payloads?: readonly Payload[]): Promise<void> {
    const d = await this.dataset(dataset);
    await this.#writeAll(d.id, upsertRecords(d, ids, vectors, payloads));
  }

  /** Deletes points (absent ids are no error); resolves once every shard's leader acknowledged. */
  async delete(dataset: string, ids: IdList): Promise<void> {
    const d = await this.dataset(dataset);
    await this.#writeAll(d.id, deleteRecords(d, ids));
  }

  /** Deletes every point `filter` matches now, through every shard's leader (as Store.deleteWhere). */
  async deleteWhere(dataset: string, filter: Filter | CompiledFilter): Promise<void> {
    const d = await this.dataset(dataset);
    await this.#writeAll(d.id, deleteWhereRecords(d, filter));
  }

  /** Changes the payloads of the points `select` names (as Store.updatePayload: an absent id is NOT_FOUND, on its shard). */
  async updatePayload(dataset: string, select: PointSelection, update: PayloadUpdate): Promise<void> {
    const d = await this.dataset(dataset);
    await this.#writeAll(d.id, payloadRecords(d, select, update));
  }

  /** A payload index on `field` of `type` on every shard, or (type undefined) the index dropped. */
  async payloadIndex(dataset: string, field: string, type?: PayloadIndexType): Promise<void> {
    const d = await this.dataset(dataset);
    await this.#writeAll(d.id, indexRecords(d, field, type));
  }

  /** Each shard's records in order, the shards at once; every shard is tried, the first failure thrown. */
  async #writeAll(dataset: string, records: ShardRecord[]): Promise<void> {
    const byShard = new Map<number, ShardRecord[]>();
    for (const r of records) {
      const rs = byShard.get(r.shard);
      if (rs === undefined) byShard.set(r.shard, [r]);
      else rs.push(r);
    }
    const results = await Promise.allSettled([...byShard.values()].map(async (rs) => {
      for (const r of rs) await this.#write(dataset, r.shard, r.op, r.body);
    }));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** The k nearest points over every shard, nearest first (as Store.search: filter, payloads, quantization params). */
  async search(dataset: string, query: Float32Array, k: number, o: ClusterSearchOptions = {}): Promise<SearchHits> {
    const d = await this.dataset(dataset);
    return searchCluster(d, this.#runner(d.id, o), query, k, o);
  }

  /** The points of ids that exist, in the order asked (as Store.retrieve). */
  async retrieve(dataset: string, ids: IdList, o: ReadOptions & ClusterReadOptions = {}): Promise<PointRecord[]> {
    const d = await this.dataset(dataset);
    return retrieveCluster(d, this.#runner(d.id, o), ids, o);
  }

  /** A page of points in id order (as Store.scroll). */
  async scroll(dataset: string, o: ScrollOptions & ClusterReadOptions = {}): Promise<ScrollPage> {
    const d = await this.dataset(dataset);
    return scrollCluster(d, this.#runner(d.id, o), o);
  }

  /** Live points, or those `filter` matches (as Store.count). */
  async count(dataset: string, o: CountOptions & ClusterReadOptions = {}): Promise<number> {
    const d = await this.dataset(dataset);
    return countCluster(d, this.#runner(d.id, o), o);
  }

  /** The dataset's payload indexes, sorted by field, points summed over the shards (as Store.payloadIndexes). */
  async payloadIndexes(dataset: string, o: ClusterReadOptions = {}): Promise<PayloadIndexInfo[]> {
    const d = await this.dataset(dataset);
    return indexesCluster(d, this.#runner(d.id, o));
  }

  /**
   * Puts an image of every shard of `dataset` this node leads in the object store (named by the
   * stream sequence it covers), keeps the newest `keep` of each and trims the log below what they
   * and every copy no longer need; a copy made later rebuilds from it. Returns the shards imaged.
   */
  async checkpoint(dataset: string, keep = 2): Promise<number[]> {
    const { id } = await this.dataset(dataset);
    const done: number[] = [];
    for (const { dataset: d, shard } of this.#ctl().roles().leading) {
      const copy = d === id ? this.#copies.get(keyOf(d, shard)) : undefined;
      if (copy !== undefined && (await imageNow(this.#images, d, shard, copy, keep, true, () => this.#trim(d, shard))) !== null) done.push(shard);
    }
    return done.sort((x, y) => x - y);
  }

  /** This node's moves (copy rebuilds): running, queued, done, cancelled. */
  get moves(): MoveStats {
    return this.#moves.stats;
  }

  /** Appends of this node's that a shard's log refused (FENCED: another node had claimed it); each stepped the copy down. */
  get fencedAppends(): number {
    return this.#fenced;
  }

  /** The cluster's datasets, from its catalog. */
  async datasets(): Promise<({ name: string } & DatasetEntry)[]> {
    return (await this.#ctl().datasets()).map((d) => ({ name: d.name, ...entryOf(d) }));
  }

  /** The nodes alive now and where each answers. */
  async peers(): Promise<{ nodeId: string; address: string }[]> {
    return (await this.#ctl().members.alive()).map((m) => ({ nodeId: m.nodeId, address: m.address }));
  }

  /** A dataset's placement now: shard -> leader and followers. */
  async placement(dataset: string): ReturnType<ControlNode['placement']> {
    return this.#ctl().placement((await this.dataset(dataset)).id);
  }

  /** This node's copies and the shards it leads, by dataset name. */
  roles(): ReturnType<ControlNode['roles']> {
    const { copies, leading } = this.#ctl().roles();
    return { copies: copies.map((c) => ({ ...c, dataset: nameOf(c.dataset) })), leading: leading.map((l) => ({ ...l, dataset: nameOf(l.dataset) })) };
  }

  /** The copy of a shard of the dataset named on this node, once rebuilt (tests and metrics). */
  replica(dataset: string, shard: number): ShardReplica | null {
    const d = this.#control?.known(dataset);
    return d === undefined ? null : this.#replica(datasetId(d), shard);
  }

  #replica(id: string, shard: number): ShardReplica | null {
    return this.#copies.get(keyOf(id, shard))?.replica ?? null;
  }

  /** Leaves the cluster (`leave`: at once, else its leases run out as a crash's do) and frees every copy. */
  async close(leave = true): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#stopReports();
    await this.#control?.stop(leave).catch(() => {});
    await Promise.all([...this.#copies.keys()].map((k) => {
      const [d, s] = k.split('\u0000');
      return this.#drop(d!, Number(s));
    }));
    await this.#client.close();
  }

  #ctl(): ControlNode {
    if (this.#control === null || this.#closing) throw new QuiverError(ErrorCode.CLOSED, 'the cluster node is closed');
    return this.#control;
  }

  /** A dataset's incarnation, shards, copies and parameters (as the last round read the catalog; else read now). */
  async dataset(name: string): Promise<DatasetEntry> {
    const d = this.#ctl().known(name) ?? (await this.#ctl().datasets()).find((x) => x.name === name);
    if (d === undefined) throw new QuiverError(ErrorCode.NOT_FOUND, `dataset ${name} not found in the cluster`);
    return entryOf(d);
  }

  /** The copy of a newly placed shard (made once: cluster-copy.ts). */
  #copy(dataset: string, shard: number): Copy {
    const key = keyOf(dataset, shard);
    const copy = this.#copies.get(key) ?? followCopy({ client: this.#client, images: this.#images, applied: this.#applied, nodeId: this.nodeId, dir: this.#dir, moves: this.#moves, entry: (n) => this.dataset(n) }, dataset, shard);
    this.#copies.set(key, copy);
    return copy;
  }

  #drop(dataset: string, shard: number): Promise<void> {
    const p = this.#close(dataset, shard).finally(() => this.#dropping.delete(p));
    this.#dropping.add(p);
    return p;
  }

  async #close(dataset: string, shard: number): Promise<void> {
    const key = keyOf(dataset, shard);
    const copy = this.#copies.get(key);
    if (copy === undefined) return;
    this.#copies.delete(key);
    copy.closed = true;
    this.#moves.cancel(copy);
    await copy.imaging?.catch(() => {});
    const r = await copy.ready.catch(() => null);
    await r?.close();
    // the copy's WebAssembly.Memory goes back to the OS only after a GC in this thread
    collectGarbage();
  }

  /** The shard's log trimmed below what its images and every copy no longer need (cluster-trim.ts). */
  async #trim(dataset: string, shard: number): Promise<number> {
    return trimShard({ client: this.#client, images: this.#images, applied: this.#applied, dataset, shard, placement: (await this.#ctl().placement(dataset)).get(shard) });
  }

  /** The lease was acquired: the copy (made now if the placement has not reached it yet) leads. */
  async #lead(lease: Lease): Promise<void> {
    const r = await this.#copy(lease.dataset, lease.shard).ready;
    if (r.role === 'leader') return;
    await r.lead({ dir: join(this.#dir, datasetToken(lease.dataset), String(lease.shard)), nodeId: this.nodeId, term: lease.term });
  }

  /** `local` when this node holds the shard's lease, else `remote` asks the holder; retried while there is none or it moves. */
  async #onLeader<T>(dataset: string, shard: number, local: () => Promise<T>, remote: (holder: string) => Promise<RpcMessage>): Promise<T> {
    const deadline = Date.now() + this.writeTimeoutMs;
    for (;;) {
      try {
        const holder = await this.#ctl().leaseHolder(dataset, shard);
        if (holder === null) throw new QuiverError(ErrorCode.UNAVAILABLE, `${dataset}/${shard}: no node leads the shard now`);
        return holder === this.nodeId ? await local() : (await remote(holder)).header.seq as T;
      } catch (err) {
        if (!retryable(err) || Date.now() > deadline) throw err;
        await sleep(100);
      }
    }
  }

  #write(dataset: string, shard: number, op: number, body: Uint8Array): Promise<number> {
    return this.#onLeader(dataset, shard, () => this.#writeLocal(dataset, shard, op, body),
      (holder) => callRpc(this.#client, rpcSubject(this.#prefix, holder), { op: 'write', dataset, shard, record: op }, body));
  }

  /**
   * A fresh image of the shard, put by its leader now (as `checkpoint` puts
   * them), to stream from the object store (cluster-snapshots.ts).
   */
  async freshImage(name: string, shard: number): Promise<ImageRead> {
    const { id } = await this.dataset(name);
    const seq = await this.#onLeader(id, shard, () => this.#imageLocal(id, shard),
      (holder) => callRpc(this.#client, rpcSubject(this.#prefix, holder), { op: 'image', dataset: id, shard }, undefined, this.writeTimeoutMs));
    return this.#images.get(id, shard, seq);
  }

  async #imageLocal(id: string, shard: number): Promise<number> {
    const copy = this.#copies.get(keyOf(id, shard));
    const seq = copy === undefined ? null : await imageNow(this.#images, id, shard, copy, 2, true, () => this.#trim(id, shard));
    if (seq === null) throw new QuiverError(ErrorCode.FENCED, `${id}/${shard}: this node does not lead the shard (yet)`);
    return seq;
  }

  async #writeLocal(dataset: string, shard: number, op: number, body: Uint8Array): Promise<number> {
    const copy = this.#copies.get(keyOf(dataset, shard));
    const r = copy?.replica;
    if (copy === undefined || r?.role !== 'leader') throw new QuiverError(ErrorCode.FENCED, `${dataset}/${shard}: this node does not lead the shard (yet)`);
    let seq: number;
    try {
      seq = await r.write(op, body);
    } catch (err) {
      // the shard's log refused this node's append: another claimed it (a paused leader, resumed), or, the
      // lease still valid, another writer got in at once (nats-server 2.9): take the lease again, claim afresh
      if (err instanceof QuiverError && err.code === ErrorCode.FENCED) {
        this.#fenced++;
        if (this.#ctl().keeper.leaseOf(dataset, shard) !== undefined) void this.#ctl().keeper.yield(dataset, shard).catch(() => {});
      }
      throw err;
    }
    // every imageEvery records an image, in the background (a rebuild then replays only what came after it)
    if (this.#imageEvery > 0 && ++copy.sinceImage >= this.#imageEvery && copy.imaging === null) {
      void imageNow(this.#images, dataset, shard, copy, 2, false, () => this.#trim(dataset, shard)).catch(() => {});
    }
    return seq;
  }

  /**
   * Runs read tasks on one copy of each shard, grouped by the node that
   * answers (its placed leader, or with 'any' this node's own copy first);
   * a shard whose copy is not there yet or moved is asked again until
   * `writeTimeoutMs`.
   */
  #runner(dataset: string, o: ClusterReadOptions): RunTasks {
    const consistency = o.consistency ?? 'leader';
    if (consistency !== 'leader' && consistency !== 'any') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'consistency must be \'leader\' or \'any\'');
    const route = async (shards: number[]): Promise<Map<string, number[]>> => {
      const placement = await this.#ctl().placement(dataset);
      const byNode = new Map<string, number[]>();
      for (const s of shards) {
        const p = placement.get(s);
        if (p === undefined) throw new QuiverError(ErrorCode.UNAVAILABLE, `${dataset}/${s}: the shard is not placed yet`);
        const local = this.#replica(dataset, s);
        const node = consistency === 'any' && local !== null && local.role !== 'broken' ? this.nodeId : p.leader;
        byNode.set(node, [...(byNode.get(node) ?? []), s]);
      }
      return byNode;
    };
    const ask = async (node: string, shards: number[], batch: ReadTask[]): Promise<TaskAnswer[]> => (node === this.nodeId
      ? this.#runLocal(dataset, shards, batch, consistency)
      : decodeAnswers((await callRpc(this.#client, rpcSubject(this.#prefix, node), { op: 'tasks', dataset, shards, consistency }, encodeTasks(batch))).body, shards.length));
    return (tasks) => runOnCopies(tasks, Date.now() + this.writeTimeoutMs, route, ask);
  }

  /** Read tasks on this node's copies (each shard's answer, or the error it met). */
  #runLocal(dataset: string, shards: readonly number[], tasks: readonly ReadTask[], consistency: ReadConsistency): TaskAnswer[] {
    return this.#reads.runLocal(this.nodeId, dataset, shards, tasks, consistency === 'leader', (s) => this.#replica(dataset, s));
  }

  async #serve(m: RpcMessage): Promise<RpcMessage> {
    const h = m.header;
    if (h.op === 'write') {
      const seq = await this.#writeLocal(String(h.dataset), Number(h.shard), Number(h.record), m.body);
      return { header: { seq }, body: new Uint8Array(0) };
    }
    if (h.op === 'image') return { header: { seq: await this.#imageLocal(String(h.dataset), Number(h.shard)) }, body: new Uint8Array(0) };
    if (h.op === 'forget') {
      await this.#datasets.forget(String(h.dataset));
      return { header: {}, body: new Uint8Array(0) };
    }
    if (h.op === 'tasks') {
      return { header: {}, body: encodeAnswers(this.#runLocal(String(h.dataset), h.shards as number[], decodeTasks(m.body), h.consistency as ReadConsistency)) };
    }
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `unknown cluster request ${JSON.stringify(h.op)}`);
  }
}
