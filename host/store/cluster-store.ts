/**
 * `Store.open({ path, cluster })`: the Store's point API on a cluster node
 * (cluster-node.ts), for a library that joins a quiver cluster itself
 * (docs/cluster.md, "From the library"). The calls take the Store's
 * arguments and answer its shapes; where a cluster differs it says so:
 *
 * - every write waits for its shards' leaders (stream quorum and local
 *   fsync): `wait: false` is accepted and changes nothing, and there is no
 *   per-call signal (a write is retried until the node's writeTimeoutMs);
 * - delete, deleteWhere and updatePayload resolve once applied, without a
 *   count (each shard's leader applies and does not count back);
 * - reads take `consistency`: 'leader' (default) or 'any'.
 *
 * - dropDataset resolves once every alive node has closed its copies and
 *   the dataset's stream, images, placement and leases are purged
 *   (cluster-datasets.ts); a dataset created again under the name is a new
 *   one.
 *
 * - snapshots are kept on this node (`snapshotsPath`, default
 *   <path>/snapshots) and hold every shard of the dataset; recovering one
 *   makes a new incarnation of the name (cluster-snapshots.ts).
 *
 * What the Store has and this does not (compaction, stats) is not here:
 * calling it is a TypeError at compile time, not a stub.
 */
import { join } from 'node:path';
import type { SearchHits } from '../core/shard.js';
import { ErrorCode, QuiverError } from '../errors.js';
import type { CompiledFilter, Filter } from '../filter/filter.js';
import { ID_WORDS, packIds, type IdList } from '../ids.js';
import type { Payload } from '../payload.js';
import { flattenBatch, toQuery, type Vector, type VectorBatch } from '../vectors.js';
import { checkName } from './catalog.js';
import { ClusterNode } from './cluster-node.js';
import { ClusterSnapshots } from './cluster-snapshots.js';
import { quantizationField } from './quantization.js';
import type { ClusterNodeOptions, ClusterReadOptions, ClusterSearchOptions } from './cluster-options.js';
import type { CountOptions, DatasetInfo, DatasetOptions, PayloadUpdate, PointRecord, PointSelection, ReadOptions, ScrollOptions, ScrollPage, SnapshotInfo, WriteOptions } from './types.js';
import type { PayloadIndexInfo, PayloadIndexType } from '../core/payload-index.js';

/** `cluster` of Store.open: the node's options; its directory is the Store's `path`. */
export type ClusterStoreOptions = Omit<ClusterNodeOptions, 'dir'>;

/** A dataset as a Store describes it (without counts and memory: those are per copy), and its shards' copies. */
export type ClusterDatasetInfo = Pick<DatasetInfo, 'name' | 'dim' | 'metric' | 'M' | 'efConstruction' | 'ef' | 'shards' | 'quantization'> & {
  /** Copies of each shard (its leader and followers). */
  replicas: number;
};

/** A dataset's options: a Store's (shards default 1) and its shards' copies (1..5, default 1). */
export type ClusterDatasetCreate = DatasetOptions & { replicas?: number };

type WriteCall = WriteOptions & { signal?: AbortSignal };

export class ClusterStore {
  /** The node under it: its roles, moves and images (cluster-node.ts). */
  readonly node: ClusterNode;
  readonly #snapshots: ClusterSnapshots;

  private constructor(node: ClusterNode, snapshotsPath: string, waitMs: number) {
    this.node = node;
    this.#snapshots = new ClusterSnapshots(snapshotsPath, node, waitMs);
  }

  /** Joins the cluster as node `cluster.nodeId`, keeping its shards' local logs under `path` (and its snapshots: `snapshotsPath`). */
  static async open(options: { path?: string; snapshotsPath?: string; cluster: ClusterStoreOptions } & Record<string, unknown>): Promise<ClusterStore> {
    const extra = Object.keys(options).filter((k) => k !== 'path' && k !== 'cluster' && k !== 'snapshotsPath');
    if (extra.length > 0) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `options.${extra[0]} does not apply to a cluster store (its node decides threads, memory and durability: docs/cluster.md)`);
    if (typeof options.path !== 'string' || options.path === '') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'a cluster store needs options.path (its node\'s directory)');
    if (options.cluster === null || typeof options.cluster !== 'object') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.cluster must be an object');
    const snapshots = options.snapshotsPath ?? join(options.path, 'snapshots');
    if (typeof snapshots !== 'string' || snapshots === '') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.snapshotsPath must be a non-empty string');
    const node = await ClusterNode.open({ ...options.cluster, dir: options.path });
    // as long as a write may wait for a leader, three times over (a recovered shard is rebuilt first)
    return new ClusterStore(node, snapshots, 3 * node.writeTimeoutMs);
  }

  get nodeId(): string {
    return this.node.nodeId;
  }

  async createDataset(name: string, options: ClusterDatasetCreate): Promise<ClusterDatasetInfo> {
    checkName(name);
    if (options === null || typeof options !== 'object') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'dataset options must be an object');
    await this.node.createDataset(name, { ...options, shards: options.shards ?? 1, replicas: options.replicas ?? 1 });
    return this.datasetInfo(name);
  }

  /** Drops the dataset from the whole cluster (see above); false if there was none. */
  dropDataset(name: string): Promise<boolean> {
    checkName(name);
    return this.node.dropDataset(name);
  }

  /** The cluster's datasets, by name (read from its catalog). */
  async listDatasets(): Promise<string[]> {
    return (await this.node.datasets()).map((d) => d.name);
  }

  async datasetInfo(name: string): Promise<ClusterDatasetInfo> {
    const d = await this.node.dataset(name);
    const p = d.params;
    const q = p.quantization;
    return {
      name, dim: p.dim, metric: p.metric, M: p.M, efConstruction: p.efConstruction, ef: p.ef ?? 64, shards: d.shards, replicas: d.replicas,
      ...quantizationField(q === undefined ? undefined : { ...q, alwaysRam: q.alwaysRam !== false }),
    };
  }

  /** Upserts; resolves once every shard's leader has them (see above for `wait` and `signal`). */
  async insert(name: string, ids: IdList, vectors: VectorBatch, options: WriteCall & { payloads?: readonly Payload[] } = {}): Promise<{ inserted: number }> {
    const d = await this.node.dataset(name);
    const n = packIds(ids, true).length / ID_WORDS;
    await this.node.upsert(name, ids, flattenBatch(vectors, n, d.params.dim), options.payloads);
    return { inserted: n };
  }

  async delete(name: string, ids: IdList, _options: WriteCall = {}): Promise<void> {
    await this.node.delete(name, ids);
  }

  async deleteWhere(name: string, filter: Filter | CompiledFilter, _options: WriteCall = {}): Promise<void> {
    await this.node.deleteWhere(name, filter);
  }

  /** Changes the payloads of the points `select` names (an absent id: NOT_FOUND, and its shard changes nothing); resolves without a count. */
  async updatePayload(name: string, select: PointSelection, update: PayloadUpdate, _options: WriteCall = {}): Promise<void> {
    await this.node.updatePayload(name, select, update);
  }

  /** An index on payload `field` of `type` on every shard (the same again changes nothing). */
  async createPayloadIndex(name: string, field: string, type: PayloadIndexType, _options: WriteCall = {}): Promise<{ acknowledged?: true }> {
    await this.node.payloadIndex(name, field, type);
    return {};
  }

  async dropPayloadIndex(name: string, field: string, _options: WriteCall = {}): Promise<{ acknowledged?: true }> {
    await this.node.payloadIndex(name, field);
    return {};
  }

  payloadIndexes(name: string, options: ClusterReadOptions = {}): Promise<PayloadIndexInfo[]> {
    return this.node.payloadIndexes(name, options);
  }

  async search(name: string, query: Vector, k: number, options: ClusterSearchOptions & { signal?: AbortSignal } = {}): Promise<SearchHits> {
    const d = await this.node.dataset(name);
    return this.node.search(name, toQuery(query, d.params.dim), k, options);
  }

  /** The stored vectors of ids, in order; undefined where an id is absent. */
  async get(name: string, ids: IdList, options: ClusterReadOptions = {}): Promise<(Float32Array | undefined)[]> {
    const found = await this.node.retrieve(name, ids, { ...options, withVector: true, withPayload: false });
    const byKey = new Map(found.map((r) => [keyOf(r.id), r.vector]));
    return Array.from(ids as ArrayLike<unknown>, (id) => byKey.get(keyOf(id)));
  }

  retrieve(name: string, ids: IdList, options: ReadOptions & ClusterReadOptions = {}): Promise<PointRecord[]> {
    return this.node.retrieve(name, ids, options);
  }

  scroll(name: string, options: ScrollOptions & ClusterReadOptions = {}): Promise<ScrollPage> {
    return this.node.scroll(name, options);
  }

  count(name: string, options: CountOptions & ClusterReadOptions = {}): Promise<number> {
    return this.node.count(name, options);
  }

  /** Where this node keeps its snapshots. */
  get snapshotsPath(): string {
    return this.#snapshots.dir;
  }

  /** A snapshot of every shard of the dataset, written on this node (see above). */
  createSnapshot(name: string): Promise<SnapshotInfo> {
    return this.#snapshots.create(name);
  }

  /** This node's snapshots of a dataset (which may have been dropped since). */
  listSnapshots(name: string): Promise<SnapshotInfo[]> {
    return this.#snapshots.list(name);
  }

  /** The file of one of this node's snapshots; NOT_FOUND if it has none by that name. */
  snapshotPath(name: string, snapshot: string): Promise<string> {
    return this.#snapshots.path(name, snapshot);
  }

  deleteSnapshot(name: string, snapshot: string): Promise<void> {
    return this.#snapshots.delete(name, snapshot);
  }

  /**
   * Makes dataset `name` what the snapshot `file` holds (a Store's or a
   * cluster's), in the whole cluster, replacing the one there; `replicas`
   * defaults to the replaced dataset's (else 1).
   */
  async recoverSnapshot(name: string, file: string, options: { replicas?: number } = {}): Promise<ClusterDatasetInfo> {
    await this.#snapshots.recover(name, file, options.replicas);
    return this.datasetInfo(name);
  }

  /** Leaves the cluster (its leases go at once) and frees every copy. */
  close(): Promise<void> {
    return this.node.close(true);
  }
}

/** One key per id whatever its form (an integer as number or bigint, a UUID in any case). */
function keyOf(id: unknown): string {
  const p = packIds([id as number], false);
  return Array.from(p).join(',');
}
