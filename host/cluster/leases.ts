/**
 * Shard leases in a JetStream KV bucket (default `quiver-leases`), one key
 * per shard (names.ts: <token>.<shard>), value a JSON LeaseRecord:
 *
 *   { holder: node id, term: 1, 2, ... (one more per acquisition),
 *     ttlMs, deadline: the holder's wall clock (ms since 1970) + ttlMs }
 *
 * A released lease is a record with holder '' (the term kept, so a key's
 * terms only grow: a term is a fencing token the holder may put in its log
 * records' msgIds). Every change is a compare-and-set on the key's revision, so of two nodes
 * racing for a shard exactly one wins, and a renewal that finds the revision
 * moved (someone took the shard over) fails: the holder has lost it
 * (QUIVER_ERR_FENCED) and must step down. A renewal that timed out may
 * still land later (as a log append can, shard-stream.ts), so a refused
 * renewal first reads the key: a record of this holder and term is its own
 * landed renewal, adopted, not a loss.
 *
 * Expiry without trusting clocks. `deadline` is written for people and for
 * GET /cluster; no decision reads it, because the nodes' wall clocks may
 * disagree. A node decides that a lease expired when it has seen the same
 * revision for ttlMs by its own monotonic clock (performance.now()): the
 * first tryAcquire() of a held key only starts that watch, a later one
 * takes the shard over once ttlMs has passed with no renewal. The holder, for
 * its part, counts its lease valid until ttlMs minus a margin (5%, >= 20 ms,
 * for clock rate drift) after the moment it *sent* the acquire or renewal,
 * which is before any observer saw the new revision: so no observer can take
 * over while the holder still thinks it is valid, whatever the clocks say.
 * What the holder must do with it: not write once `valid` is false until a
 * renewal succeeds. The shard log's expected sequence (shard-stream.ts) is
 * what makes a stale writer harmless; the lease only decides who should be
 * writing.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { ErrorCode, QuiverError } from '../errors.js';
import { isWrongLastSequence, natsError, openKvBucket, type ClusterClient } from './connect.js';
import { leaseKey } from './names.js';

export interface LeaseRecord {
  holder: string;
  term: number;
  ttlMs: number;
  deadline: number;
}

export interface LeaseTableOptions {
  /** This node's id (unique per running node). */
  nodeId: string;
  /** How long a lease lasts without renewal, ms (>= 100). */
  ttlMs: number;
  /** Bucket name; default 'quiver-leases'. */
  bucket?: string;
  /** Copies of the bucket; default 3. */
  replicas?: number;
}

export type AcquireResult =
  | { acquired: true; lease: Lease }
  | { acquired: false; holder: LeaseRecord; revision: number; expiresInMs: number };

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const enc = new TextEncoder();
const dec = new TextDecoder();
const now = (): number => performance.now();

/** A lease this node holds. */
export class Lease {
  readonly dataset: string;
  readonly shard: number;
  readonly key: string;
  readonly holder: string;
  readonly term: number;
  #revision: number;
  #validUntil: number;
  #lost = false;

  constructor(dataset: string, shard: number, key: string, record: LeaseRecord, revision: number, validUntil: number) {
    this.dataset = dataset;
    this.shard = shard;
    this.key = key;
    this.holder = record.holder;
    this.term = record.term;
    this.#revision = revision;
    this.#validUntil = validUntil;
  }

  /** The KV revision of this lease's last acquire or renewal. */
  get revision(): number {
    return this.#revision;
  }

  /** True while this node may act as the owner (not lost, and renewed recently enough). */
  get valid(): boolean {
    return !this.#lost && now() < this.#validUntil;
  }

  /** How long the lease stays valid without a renewal, ms (0 once expired or lost). */
  get remainingMs(): number {
    return this.#lost ? 0 : Math.max(0, this.#validUntil - now());
  }

  get lost(): boolean {
    return this.#lost;
  }

  /** @internal */ renewed(revision: number, validUntil: number): void {
    this.#revision = revision;
    this.#validUntil = validUntil;
  }

  /** @internal */ markLost(): void {
    this.#lost = true;
  }
}

export class LeaseTable {
  readonly nodeId: string;
  readonly ttlMs: number;
  readonly #kv: KV;
  readonly #timeoutMs: number;
  /** Held keys this node watches for expiry: the revision last seen and when it was first seen (monotonic ms). */
  readonly #seen = new Map<string, { revision: number; since: number }>();

  private constructor(kv: KV, nodeId: string, ttlMs: number, timeoutMs: number) {
    this.#kv = kv;
    this.nodeId = nodeId;
    this.ttlMs = ttlMs;
    this.#timeoutMs = timeoutMs;
  }

  /** Opens (creating if absent) the leases bucket. */
  static async open(client: ClusterClient, options: LeaseTableOptions): Promise<LeaseTable> {
    const { nodeId, ttlMs, bucket = 'quiver-leases', replicas = 3 } = options ?? ({} as LeaseTableOptions);
    if (typeof nodeId !== 'string' || !NODE_RE.test(nodeId)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.nodeId must be 1-64 letters, digits, \'_\', \'-\' or \'.\', starting with a letter or digit');
    if (!Number.isInteger(ttlMs) || ttlMs < 100) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.ttlMs must be an integer >= 100');
    return new LeaseTable(await openKvBucket(client, bucket, replicas, 'leases'), nodeId, ttlMs, client.timeoutMs);
  }

  private margin(): number {
    return Math.max(20, Math.ceil(this.ttlMs * 0.05));
  }

  private record(term: number): Uint8Array {
    const rec: LeaseRecord = { holder: this.nodeId, term, ttlMs: this.ttlMs, deadline: Date.now() + this.ttlMs };
    return enc.encode(JSON.stringify(rec));
  }

  private async entry(key: string): Promise<KvEntry | null> {
    try {
      const e = await this.#kv.get(key);
      return e === null || e.operation !== 'PUT' ? null : e;
    } catch (err) {
      throw natsError(err, `reading the lease ${key}`);
    }
  }

  /** Deletes a shard's lease key (a dropped incarnation's, whatever it holds). */
  async remove(dataset: string, shard: number): Promise<void> {
    try {
      await this.#kv.purge(leaseKey(dataset, shard));
    } catch (err) {
      throw natsError(err, `deleting the lease ${leaseKey(dataset, shard)}`);
    }
  }

  /** The current holder of a shard's lease, or null when nobody holds it (never taken, or released). */
  async holderOf(dataset: string, shard: number): Promise<{ record: LeaseRecord; revision: number } | null> {
    const e = await this.entry(leaseKey(dataset, shard));
    if (e === null) return null;
    const record = parseRecord(e);
    return record.holder === '' ? null : { record, revision: e.revision };
  }

  /**
   * Takes the shard's lease if nobody holds it, or if its holder has not
   * renewed it for ttlMs as this node has watched it (see the file comment:
   * the first call on a held lease starts the watch). Losing a race to
   * another node is { acquired: false }, not an error.
   */
  async tryAcquire(dataset: string, shard: number): Promise<AcquireResult> {
    const key = leaseKey(dataset, shard);
    const current = await this.entry(key);
    const sent = now();
    if (current === null) {
      this.#seen.delete(key);
      try {
        const revision = await this.#kv.create(key, this.record(1));
        return { acquired: true, lease: this.lease(dataset, shard, key, 1, revision, sent) };
      } catch (err) {
        return this.lostRace(dataset, shard, key, err);
      }
    }
    const record = parseRecord(current);
    const seen = this.#seen.get(key);
    if (record.holder !== '') {
      if (seen === undefined || seen.revision !== current.revision) {
        this.#seen.set(key, { revision: current.revision, since: now() });
        return { acquired: false, holder: record, revision: current.revision, expiresInMs: this.ttlMs };
      }
      const waited = now() - seen.since;
      if (waited < this.ttlMs) return { acquired: false, holder: record, revision: current.revision, expiresInMs: this.ttlMs - waited };
    }
    try {
      const revision = await this.#kv.update(key, this.record(record.term + 1), current.revision, this.#timeoutMs);
      this.#seen.delete(key);
      return { acquired: true, lease: this.lease(dataset, shard, key, record.term + 1, revision, sent) };
    } catch (err) {
      return this.lostRace(dataset, shard, key, err);
    }
  }

  /**
   * Extends the lease by ttlMs from now. Rejects with FENCED if the lease
   * moved on (another node took the shard over: step down; the lease is then
   * `lost` for good), UNAVAILABLE if the cluster did not answer (the lease
   * stays as it was and may still be renewed before it expires).
   */
  async renew(lease: Lease): Promise<Lease> {
    if (lease.lost) throw fenced(lease, 'it was lost earlier');
    for (let attempt = 0; ; attempt++) {
      const sent = now();
      try {
        const revision = await this.#kv.update(lease.key, this.record(lease.term), lease.revision, this.#timeoutMs);
        lease.renewed(revision, sent + this.ttlMs - this.margin());
        return lease;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw natsError(err, `renewing the lease ${lease.key}`);
        // A renewal that timed out may have landed later: a record of this holder and term is still ours.
        const current = attempt === 0 ? await this.entry(lease.key) : null;
        const record = current === null ? null : parseRecord(current);
        if (current !== null && record!.holder === this.nodeId && record!.term === lease.term && current.revision !== lease.revision) {
          lease.renewed(current.revision, now() + lease.remainingMs);
          continue;
        }
        lease.markLost();
        throw fenced(lease, 'its revision moved on: another node took the shard over', err);
      }
    }
  }

  /**
   * Gives the lease up: a compare-and-set write of a record with no holder
   * (its term kept, so terms only grow), which any node may take at once.
   * False if the lease had been lost already.
   */
  async release(lease: Lease): Promise<boolean> {
    if (lease.lost) return false;
    const free: LeaseRecord = { holder: '', term: lease.term, ttlMs: this.ttlMs, deadline: 0 };
    try {
      await this.#kv.update(lease.key, enc.encode(JSON.stringify(free)), lease.revision, this.#timeoutMs);
      lease.markLost();
      return true;
    } catch (err) {
      if (!isWrongLastSequence(err)) throw natsError(err, `releasing the lease ${lease.key}`);
      lease.markLost();
      return false;
    }
  }

  private lease(dataset: string, shard: number, key: string, term: number, revision: number, sent: number): Lease {
    const record: LeaseRecord = { holder: this.nodeId, term, ttlMs: this.ttlMs, deadline: 0 };
    return new Lease(dataset, shard, key, record, revision, sent + this.ttlMs - this.margin());
  }

  private async lostRace(dataset: string, shard: number, key: string, err: unknown): Promise<AcquireResult> {
    if (!isWrongLastSequence(err)) throw natsError(err, `acquiring the lease ${key}`);
    const winner = await this.holderOf(dataset, shard);
    if (winner === null) return this.tryAcquire(dataset, shard);
    this.#seen.set(key, { revision: winner.revision, since: now() });
    return { acquired: false, holder: winner.record, revision: winner.revision, expiresInMs: this.ttlMs };
  }
}

function parseRecord(e: KvEntry): LeaseRecord {
  try {
    const r = JSON.parse(dec.decode(e.value)) as LeaseRecord;
    if (typeof r.holder === 'string' && Number.isSafeInteger(r.term) && Number.isFinite(r.ttlMs) && Number.isFinite(r.deadline)) return r;
  } catch { /* fall through */ }
  throw new QuiverError(ErrorCode.CORRUPT, `the lease ${e.key} holds no lease record`);
}

function fenced(lease: Lease, why: string, cause?: unknown): QuiverError {
  return new QuiverError(ErrorCode.FENCED, `lease ${lease.key} (term ${lease.term}) lost: ${why}; step down`, cause === undefined ? {} : { cause });
}
