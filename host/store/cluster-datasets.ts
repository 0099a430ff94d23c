/**
 * Creating and dropping datasets on a cluster (docs/cluster.md, "Dropping a
 * collection"). A dataset's streams, images, leases, placement and local
 * logs belong to one incarnation of it (its name and the uid its creation
 * drew, names.ts), so a name dropped and created again never meets what is
 * left of the old one; what this module does is make the old one go:
 *
 *   1. the catalog entry goes, a tombstone of the incarnation comes
 *      (control.ts `dropDataset`): every node's next round drops its copies
 *      and leases of it;
 *   2. every alive node is asked to `forget` it (a round that started after
 *      the drop, its copies closed and their memory given back, its local
 *      logs deleted), until the node answers, leaves the members, or the
 *      deadline passes;
 *   3. `purgeIncarnation`: the stream, every image, the copies' applied
 *      reports, the placement, the lease keys, then the tombstone. A purge
 *      that fails (NATS out of reach) is done again by any node whose round
 *      finds the tombstone older than the dropping node's deadline.
 *
 * A node that was down during the drop finds no catalog entry for the
 * incarnation when it comes back, so it places nothing of it, and
 * `sweepLocal` deletes its local logs when it opens.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AppliedTable } from '../cluster/applied.js';
import type { ClusterClient } from '../cluster/connect.js';
import { datasetId, type ClusterDataset, type ControlNode } from '../cluster/control.js';
import type { ImageStore } from '../cluster/images.js';
import { checkDatasetName, datasetToken, hasUid, incarnation, newUid } from '../cluster/names.js';
import { callRpc, rpcSubject } from '../cluster/rpc.js';
import { deleteDatasetLog, ensureDatasetLog } from '../cluster/shard-stream.js';
import { Shard, type ShardParams } from '../core/shard.js';
import type { ClusterDatasetOptions } from './cluster-options.js';
import { clusterQuantization } from './cluster-writes.js';
import { ErrorCode, isQuiverError, QuiverError } from '../errors.js';

export interface DatasetEntry {
  /** The incarnation (names.ts) its shards, leases and streams are keyed by. */
  id: string;
  shards: number;
  replicas: number;
  params: ShardParams;
}

/** A dataset's catalog entry from its options, checked before anything is written: the counts here, the rest by the core (coded errors). */
export function checkedEntry(name: string, o: ClusterDatasetOptions): ClusterDataset {
  const config: ShardParams = { dim: o.dim, metric: o.metric ?? 'l2', M: o.M ?? 16, efConstruction: o.efConstruction ?? 200, ef: o.ef ?? 64, ...clusterQuantization(o.quantization) };
  if (!Number.isInteger(o.shards) || o.shards < 1 || o.shards > 65536) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'shards must be an integer in 1..65536');
  if (!Number.isInteger(o.replicas) || o.replicas < 1 || o.replicas > 5) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'replicas must be an integer in 1..5');
  checkDatasetName(name);
  // a disk-mode shard's checks are its quantizer's and graph's: the originals file is each copy's own
  Shard.create(config.quantization?.alwaysRam === false ? { ...config, quantization: { type: config.quantization.type, quantile: config.quantization.quantile } } : config).dispose();
  return { name, shards: o.shards, replicas: o.replicas, config };
}

export const entryOf = (d: ClusterDataset): DatasetEntry => ({ id: datasetId(d), shards: d.shards, replicas: d.replicas, params: d.config as ShardParams });

/** What creating and dropping datasets needs of its node (cluster-node.ts). */
export interface DatasetsHost {
  nodeId: string;
  client: ClusterClient;
  images: ImageStore;
  applied: AppliedTable;
  /** The node's directory of local logs. */
  dir: string;
  prefix: string;
  streamReplicas: number;
  /** How long a drop waits for a node to forget the dataset. */
  waitMs: number;
  control(): ControlNode;
  /** Settles once every copy this node is closing is closed. */
  closing(): Promise<void>;
}

/** Creating and dropping a node's datasets (see above). */
export class ClusterDatasets {
  readonly #host: DatasetsHost;
  readonly #purging = new Set<string>();

  constructor(host: DatasetsHost) {
    this.#host = host;
  }

  /**
   * A new incarnation's log stream, then the catalog entry the nodes place
   * from (the same again changes nothing; a racing create's stream is
   * deleted by the one that lost).
   */
  async create(entry: ClusterDataset): Promise<void> {
    const h = this.#host;
    checkDatasetName(entry.name);
    const have = (await h.control().datasets()).find((x) => x.name === entry.name);
    if (have !== undefined) {
      await h.control().createDataset({ ...entry, uid: have.uid });
      return;
    }
    const uid = newUid();
    await ensureDatasetLog(h.client, incarnation(entry.name, uid), { replicas: h.streamReplicas });
    let failed: unknown = null;
    await h.control().createDataset({ ...entry, uid }).catch((err: unknown) => {
      failed = err;
    });
    // read back: nats-server 2.9 can store two creates of one key at once (shard-stream.ts), the later one standing
    const stored = failed === null ? (await h.control().datasets()).find((x) => x.name === entry.name) : undefined;
    if (stored?.uid !== uid) await deleteDatasetLog(h.client, incarnation(entry.name, uid)).catch(() => {});
    if (failed !== null) throw failed;
    if (stored !== undefined && stored.uid !== uid) await h.control().createDataset({ ...entry, uid: stored.uid });
    await h.control().round();
  }

  /** Steps 1-3 above; false if there was no such dataset. */
  async drop(name: string): Promise<boolean> {
    checkDatasetName(name);
    const d = await this.#host.control().dropDataset(name);
    if (d === null) return false;
    await this.#retire(d);
    return true;
  }

  /**
   * A new incarnation of `entry.name` (snapshot recovery, cluster-snapshots.ts):
   * its log stream, then `seed` puts its shards' images (the incarnation's id
   * given), and only then does the catalog name it, replacing the incarnation
   * there, which goes as a dropped one does (steps 2-3 above). A seed that
   * fails, or another write of the name first, changes nothing and leaves
   * nothing behind.
   */
  async replace(entry: ClusterDataset, seed: (id: string) => Promise<void>): Promise<void> {
    const h = this.#host;
    checkDatasetName(entry.name);
    const d = { ...entry, uid: newUid() };
    // what the catalog never named is this call's to delete
    const discard = (err: unknown): Promise<never> => Promise.resolve().then(() => purgeIncarnation(h.client, h.images, h.applied, h.control(), d)).catch(() => {}).then(() => {
      throw err;
    });
    await ensureDatasetLog(h.client, datasetId(d), { replicas: h.streamReplicas }).then(() => seed(datasetId(d))).catch(discard);
    let old: ClusterDataset | null = null;
    let failed: unknown = null;
    await h.control().replaceDataset(d).then((o) => {
      old = o;
    }, (err: unknown) => {
      failed = err;
    });
    if (isQuiverError(failed, ErrorCode.EXISTS)) await discard(failed);
    // read back: after a NATS error the set may have happened; nats-server 2.9 can store two compare-and-sets
    // from one revision (shard-stream.ts), the later standing
    let stored: ClusterDataset | undefined | null = null;
    for (let tries = 0; stored === null && tries < 10; tries++) {
      if (tries > 0) await sleep(200);
      stored = await h.control().datasets().then((l) => l.find((x) => x.name === d.name), () => null);
    }
    if (stored === null) throw new QuiverError(ErrorCode.UNAVAILABLE, `recovering ${d.name}: the catalog could not be read back, so whether it was replaced is not known`, { cause: failed });
    if (stored?.uid !== d.uid) await discard(failed ?? new QuiverError(ErrorCode.EXISTS, `dataset ${d.name} was replaced by another node at the same time: nothing was replaced`));
    if (old !== null) await this.#retire(old);
    await h.control().round();
  }

  /** Steps 2 and 3 above, for an incarnation the catalog no longer names. */
  async #retire(d: ClusterDataset): Promise<void> {
    const h = this.#host;
    const id = datasetId(d);
    const alive = async (): Promise<string[]> => (await h.control().members.alive()).map((m) => m.nodeId);
    await forgetEverywhere(await alive().catch(() => [h.nodeId]), async (m) => {
      if (m === h.nodeId) await this.forget(id);
      else await callRpc(h.client, rpcSubject(h.prefix, m), { op: 'forget', dataset: id });
    }, alive, Date.now() + h.waitMs);
    // the drop stands once the entry is gone; a purge NATS refuses now is done again from the tombstone
    await this.#purge(d);
  }

  /** A round that started after the drop, then this node's copies of `id` closed and its local logs deleted (UNAVAILABLE while a copy remains). */
  async forget(id: string): Promise<void> {
    const ctl = this.#host.control();
    await ctl.round();
    await ctl.round();
    await this.gone(id);
    if (ctl.roles().copies.some((c) => c.dataset === id)) throw new QuiverError(ErrorCode.UNAVAILABLE, `${id}: ${this.#host.nodeId} still holds a copy (the catalog could not be read)`);
  }

  /** The control plane's `gone`: once the copies are closed, the local logs go. */
  async gone(id: string): Promise<void> {
    await this.#host.closing();
    removeLocal(this.#host.dir, id);
  }

  /** The control plane's `dropped`: a tombstone another node left, purged here once older than any drop's wait. */
  dropped(d: ClusterDataset, since: Date): void {
    // a tombstone left by a replace whose set NATS refused names an incarnation still in the catalog
    const live = this.#host.control().known(d.name);
    if (live !== undefined && datasetId(live) === datasetId(d)) return;
    if (Date.now() - since.getTime() >= 2 * this.#host.waitMs) void this.#purge(d);
  }

  /** When this node opens: the local logs of datasets dropped while it was down (only from a catalog read that succeeded). */
  async sweep(): Promise<void> {
    await this.#host.control().datasets().then((live) => sweepLocal(this.#host.dir, live.map(datasetId)), () => {});
  }

  async #purge(d: ClusterDataset): Promise<void> {
    const id = datasetId(d);
    if (this.#purging.has(id)) return;
    this.#purging.add(id);
    await purgeIncarnation(this.#host.client, this.#host.images, this.#host.applied, this.#host.control(), d).catch(() => {});
    this.#purging.delete(id);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The dropped incarnation's stream, images, applied reports, placement, leases and tombstone, deleted (each step a no-op when already done). */
export async function purgeIncarnation(client: ClusterClient, images: ImageStore, applied: AppliedTable, control: ControlNode, d: ClusterDataset): Promise<void> {
  const id = datasetId(d);
  await deleteDatasetLog(client, id);
  for (let s = 0; s < d.shards; s++) {
    for (const i of await images.list(id, s)) await images.delete(id, s, i.lsn);
    await applied.remove(id, s);
  }
  await control.purge(d);
}

/** Deletes this node's local logs of an incarnation. */
export function removeLocal(dir: string, id: string): void {
  rmSync(join(dir, datasetToken(id)), { recursive: true, force: true });
}

/**
 * Deletes the local logs of every incarnation with a uid that is not in
 * `live` (read from the catalog just now): one dropped while this node was
 * down. Directories of datasets from before the uid are kept.
 */
export function sweepLocal(dir: string, live: readonly string[]): string[] {
  if (!existsSync(dir)) return [];
  const keep = new Set(live.map((id) => datasetToken(id)));
  const gone = readdirSync(dir).filter((name) => hasUid(name) && !keep.has(name));
  for (const name of gone) rmSync(join(dir, name), { recursive: true, force: true });
  return gone;
}

/**
 * Asks every node in `members` to forget the incarnation (`ask`), each
 * until it answers, is no longer alive (`alive`), or `deadline` passes.
 * Returns the nodes that did not answer.
 */
export async function forgetEverywhere(members: readonly string[], ask: (node: string) => Promise<void>, alive: () => Promise<string[]>, deadline: number): Promise<string[]> {
  const missed: string[] = [];
  await Promise.all(members.map(async (m) => {
    for (;;) {
      try {
        await ask(m);
        return;
      } catch {
        if (Date.now() > deadline || !(await alive().catch(() => [m])).includes(m)) {
          missed.push(m);
          return;
        }
        await sleep(200);
      }
    }
  }));
  return missed.sort();
}
