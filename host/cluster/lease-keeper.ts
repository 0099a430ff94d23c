/**
 * The lease keeper: one loop per node that holds the leases placement gives
 * it (placement.ts) and lets the others go. Every `intervalMs` (default a
 * quarter of the lease's ttl) one round, never two at once:
 *
 *   - a held lease whose validity has less than half the ttl left is renewed
 *     (leases.ts). FENCED (another node took the shard over while this one
 *     was paused or cut off) is the end of it: `lost` is reported, and the
 *     caller must stop writing the shard at once; its log's expected-sequence
 *     check would refuse the writes anyway (shard-stream.ts). UNAVAILABLE
 *     (NATS did not answer) keeps the lease and tries again next round; if
 *     its validity runs out first, that too is `lost` (the caller cannot
 *     know whether another node has it by now);
 *   - a wanted shard this node does not hold is tried (tryAcquire): free, or
 *     held by a node that has not renewed it for the ttl as this node has
 *     watched it, it is taken over and `acquired` reported (the caller
 *     rebuilds the shard from image + log before it serves: the takeover);
 *   - `unwant` (a planned move away) releases the lease at once, so the new
 *     leader need not wait out the ttl.
 *
 * So a leader that dies is replaced within ttl + 2 x intervalMs of its last
 * renewal (the watch starts at the first round that sees the record, and the
 * takeover happens at the first round after the ttl), plus the NATS round
 * trips.
 */
import { ErrorCode, QuiverError } from '../errors.js';
import type { Lease, LeaseTable } from './leases.js';
import { leaseKey } from './names.js';

export interface LeaseKeeperEvents {
  /** This node now leads the shard. A rejection is reported to `error` and the lease released. */
  acquired?(lease: Lease): void | Promise<void>;
  /** This node no longer leads the shard: stop writing it now. */
  lost?(dataset: string, shard: number, term: number, why: QuiverError): void;
  /** A round's failure that changes nothing (NATS unavailable): retried next round. */
  error?(dataset: string, shard: number, err: unknown): void;
}

export interface LeaseKeeperOptions {
  /** ms between rounds; default ttl / 4. */
  intervalMs?: number;
}

interface Want {
  dataset: string;
  shard: number;
}

export class LeaseKeeper {
  readonly #table: LeaseTable;
  readonly #events: LeaseKeeperEvents;
  readonly intervalMs: number;
  readonly #wanted = new Map<string, Want>();
  readonly #held = new Map<string, Lease>();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #stopped = false;

  constructor(table: LeaseTable, events: LeaseKeeperEvents = {}, options: LeaseKeeperOptions = {}) {
    const intervalMs = options.intervalMs ?? Math.max(10, Math.floor(table.ttlMs / 4));
    if (!Number.isFinite(intervalMs) || intervalMs <= 0 || intervalMs >= table.ttlMs / 2) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `intervalMs must be > 0 and under half the lease ttl (${table.ttlMs} ms)`);
    }
    this.#table = table;
    this.#events = events;
    this.intervalMs = intervalMs;
  }

  /** Placement says this node leads the shard: hold its lease (taking it over once it expires). */
  want(dataset: string, shard: number): void {
    this.#wanted.set(leaseKey(dataset, shard), { dataset, shard });
  }

  /** Placement moved the shard away: stop trying, and release the lease if held (false if it was not). */
  async unwant(dataset: string, shard: number): Promise<boolean> {
    this.#wanted.delete(leaseKey(dataset, shard));
    return this.yield(dataset, shard);
  }

  /**
   * Gives a held lease back but keeps wanting it: the next round takes it
   * again under a new term, so its holder claims the log afresh. For a
   * holder whose log refused its append while the lease was still valid
   * (nats-server 2.9 can grant one lease, or store two appends, to two
   * writers at once: shard-stream.ts); false if it was not held.
   */
  async yield(dataset: string, shard: number): Promise<boolean> {
    const key = leaseKey(dataset, shard);
    await this.#round;
    const lease = this.#held.get(key);
    if (lease === undefined) return false;
    this.#held.delete(key);
    return this.#table.release(lease);
  }

  /** The leases held now (valid ones: a lapsed one is reported lost at the next round). */
  held(): Lease[] {
    return [...this.#held.values()].filter((l) => l.valid);
  }

  /** The lease of a shard if this node holds it and may write. */
  leaseOf(dataset: string, shard: number): Lease | undefined {
    const l = this.#held.get(leaseKey(dataset, shard));
    return l?.valid === true ? l : undefined;
  }

  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setInterval(() => {
      if (this.#round === undefined) void this.round();
    }, this.intervalMs);
    this.#timer.unref();
    void this.round();
  }

  /** Stops the loop; held leases are released when `release` (a graceful leave), else left to expire. */
  async stop(release = true): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#round;
    if (!release) return;
    const leases = [...this.#held.values()];
    this.#held.clear();
    await Promise.all(leases.map((l) => this.#table.release(l).catch(() => false)));
  }

  /** One round now (the timer's work; tests call it to step the keeper). */
  round(): Promise<void> {
    if (this.#round !== undefined) return this.#round;
    this.#round = this.#run().finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  async #run(): Promise<void> {
    const ttl = this.#table.ttlMs;
    for (const [key, lease] of [...this.#held]) {
      if (!this.#wanted.has(key)) continue; // unwant releases it
      if (lease.remainingMs >= ttl / 2) continue;
      try {
        await this.#table.renew(lease);
      } catch (err) {
        if (err instanceof QuiverError && err.code === ErrorCode.FENCED) this.#lose(key, lease, err);
        else this.#events.error?.(lease.dataset, lease.shard, err);
      }
      if (this.#held.get(key) === lease && !lease.valid) {
        this.#lose(key, lease, new QuiverError(ErrorCode.UNAVAILABLE, `lease ${key} (term ${lease.term}) lapsed: no renewal reached the cluster in time; step down`));
      }
    }
    for (const [key, want] of [...this.#wanted]) {
      if (this.#held.has(key) || this.#stopped) continue;
      let lease: Lease;
      try {
        const r = await this.#table.tryAcquire(want.dataset, want.shard);
        if (!r.acquired) continue;
        lease = r.lease;
      } catch (err) {
        this.#events.error?.(want.dataset, want.shard, err);
        continue;
      }
      // unwanted while the acquire was in flight: give it straight back
      if (!this.#wanted.has(key) || this.#stopped) {
        await this.#table.release(lease).catch(() => false);
        continue;
      }
      this.#held.set(key, lease);
      try {
        await this.#events.acquired?.(lease);
      } catch (err) {
        this.#held.delete(key);
        this.#events.error?.(want.dataset, want.shard, err);
        await this.#table.release(lease).catch(() => false);
      }
    }
  }

  #lose(key: string, lease: Lease, why: QuiverError): void {
    this.#held.delete(key);
    this.#events.lost?.(lease.dataset, lease.shard, lease.term, why);
  }
}
