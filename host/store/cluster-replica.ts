/**
 * One node's copy of a shard in a cluster (docs/cluster.md, "A shard's
 * copy"): the data plane's unit that the control plane's events drive.
 *
 * A copy starts as a follower: rebuilt from the newest image plus the
 * stream (cluster-rebuild.ts), then tailing the shard's subject and applying
 * every record with the same code as local replay (apply.ts), so a follower
 * holds exactly the stream's records up to `lastSeq`. `caughtUp(seq)` waits
 * for a sequence (a read that must see a write waits for its sequence).
 *
 * `lead()` (the lease was acquired) stops the tail, opens the shard's
 * ReplicatedLog for the term (its claim fences every older writer), applies
 * what the stream holds up to the claim, and from then on `write()` appends
 * a record (stream quorum and local fsync) and only then applies it. A
 * FENCED append (another node claimed the shard) steps down to a follower
 * from the last sequence applied: a refused record was never applied, so the
 * shard still equals the stream up to there. An UNAVAILABLE append is not
 * applied either; the next write settles it first.
 *
 * A PARTIAL record (a leader ran out of memory part way through an upsert)
 * arrives after the upsert it cuts, which a follower has applied in full by
 * then; the follower then rebuilds from image + stream, which applies it cut.
 *
 * Each term gets its own local log directory (`<dir>/term-<n>`); older
 * terms' directories are removed once the claim is in the stream, because
 * every record they hold that was acknowledged is in the stream before it.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Shard } from '../core/shard.js';
import { CLAIM_OP, ReplicatedLog } from '../cluster/replicated-log.js';
import type { ShardReader } from '../cluster/shard-reader.js';
import { ShardLog } from '../cluster/shard-stream.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { decodeIndex, decodePartial, decodePayloadUpdate, decodeUpsert, encodePartial, Op } from '../storage/index.js';
import { applyRecordInSteps, applyUpsertInSteps } from './apply.js';
import { applyIndexRecord } from './payload-indexes.js';
import { applyLoggedUpdate, isPayloadOp, type UpdateOutcome } from './payload-updates.js';
import { rebuildShard, release, type RebuildSource } from './cluster-rebuild.js';

export type ReplicaRole = 'follower' | 'leader' | 'broken' | 'closed';

export interface LeadOptions {
  /** This node's directory for the shard's local logs. */
  dir: string;
  nodeId: string;
  term: number;
}

export class ShardReplica {
  readonly #src: RebuildSource;
  readonly #stream: ShardLog;
  #shard: Shard;
  #lastSeq: number;
  #role: ReplicaRole = 'follower';
  #error: unknown = null;
  #log: ReplicatedLog | null = null;
  #reader: ShardReader | null = null;
  #tailing: Promise<void> = Promise.resolve();
  #waiters: { seq: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #lane: Promise<unknown> = Promise.resolve();
  /** Times this follower rebuilt itself after a PARTIAL. */
  resyncs = 0;
  /** Where its first rebuild started (the image's LSN, null: none) and how many stream records it replayed. */
  rebuiltFrom: { imageLsn: number | null; replayed: number } = { imageLsn: null, replayed: 0 };

  private constructor(src: RebuildSource, shard: Shard, lastSeq: number) {
    this.#src = src;
    this.#stream = new ShardLog(src.client, src.dataset, src.shard);
    this.#shard = shard;
    this.#lastSeq = lastSeq;
  }

  /** Rebuilds the shard from the cluster and follows its subject. */
  static async follow(src: RebuildSource): Promise<ShardReplica> {
    const r = await rebuildShard(rebuildDir(src, 0));
    const replica = new ShardReplica(src, r.shard, r.lastSeq);
    replica.rebuiltFrom = { imageLsn: r.imageLsn, replayed: r.replayed };
    replica.#startTail();
    return replica;
  }

  get role(): ReplicaRole {
    return this.#role;
  }

  /** Why the copy broke (role 'broken'), else null. */
  get error(): unknown {
    return this.#error;
  }

  /** The shard's memory as of `lastSeq` (searches read it directly). */
  get shard(): Shard {
    return this.#shard;
  }

  /** The last stream sequence applied to the shard. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Resolves once the shard has applied the stream up to `seq` (rejects if the copy breaks or closes first). */
  caughtUp(seq: number): Promise<void> {
    if (this.#lastSeq >= seq) return Promise.resolve();
    if (this.#role === 'broken' || this.#role === 'closed') return Promise.reject(this.#unusable());
    return new Promise((resolve, reject) => this.#waiters.push({ seq, resolve, reject }));
  }

  /** Becomes the shard's writer for `term`: claims the log and applies the stream up to the claim. */
  lead(o: LeadOptions): Promise<void> {
    return this.#serial(async () => {
      if (this.#role !== 'follower') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `${this.#stream.subject}: lead() on a copy that is ${this.#role}`);
      await this.#stopTail();
      try {
        const log = await ReplicatedLog.open({ client: this.#src.client, dataset: this.#src.dataset, shard: this.#src.shard, dir: join(o.dir, `term-${o.term}`), nodeId: o.nodeId, term: o.term });
        if (log.lastSeq > this.#lastSeq) await this.#catchUp(log.lastSeq);
        this.#log = log;
        this.#role = 'leader';
        for (const name of readdirSync(o.dir)) if (name.startsWith('term-') && name !== `term-${o.term}`) rmSync(join(o.dir, name), { recursive: true, force: true });
      } catch (err) {
        if (this.#role === 'follower') this.#startTail();
        throw err;
      }
    });
  }

  /**
   * Appends a record (op and body as the local log has them) and applies it;
   * resolves with its stream sequence once it is acknowledged (in the stream
   * and fsynced locally) and applied. FENCED steps down to a follower.
   */
  write(op: number, body: Uint8Array): Promise<number> {
    return this.#serial(async () => {
      const log = this.#log;
      if (this.#role !== 'leader' || log === null) throw new QuiverError(ErrorCode.FENCED, `${this.#stream.subject}: this copy is ${this.#role}, not the shard's leader`);
      try {
        if (log.state === 'in-doubt') {
          const settled = await log.settle();
          if (settled !== null) await this.#applyOwn(log, settled.op, settled.body, settled.lsn, settled.seq);
        }
        const a = await log.append(op, body);
        await this.#applyOwn(log, op, body, a.lsn, a.seq);
        return this.#lastSeq;
      } catch (err) {
        if (err instanceof QuiverError && (err.code === ErrorCode.FENCED || log.state === 'fenced' || log.state === 'broken')) await this.#stepDown();
        throw err;
      }
    });
  }

  /**
   * An image of the shard and the last stream sequence it holds, taken
   * between two records (never between an upsert and its PARTIAL), for the
   * object store: a rebuild from it replays the stream after `seq`. A
   * spilled disk-mode shard's is a snapshot part: the image, then the
   * originals file it pairs with.
   */
  image(): Promise<{ image: Uint8Array; seq: number }> {
    return this.#serial(async () => {
      if (this.#role === 'broken' || this.#role === 'closed') throw this.#unusable();
      const image = this.#shard.toImage();
      const file = this.#shard.spilled ? this.#shard.originals : undefined;
      return { image: file === undefined ? image : Buffer.concat([image, readFileSync(file.path)]), seq: this.#lastSeq };
    });
  }

  /** Gives up writing (a lost lease or a planned move) and follows again. */
  stepDown(): Promise<void> {
    return this.#serial(() => this.#stepDown());
  }

  /** Stops tailing or writing and frees the shard's memory. */
  close(): Promise<void> {
    return this.#serial(async () => {
      if (this.#role === 'closed') return;
      await this.#stopTail();
      await this.#log?.close().catch(() => {});
      this.#log = null;
      this.#role = 'closed';
      release(this.#shard);
      if (this.#src.originals !== undefined) rmSync(this.#src.originals, { recursive: true, force: true });
      this.#fail(this.#unusable());
    });
  }

  async #applyOwn(log: ReplicatedLog, op: number, body: Uint8Array, lsn: number, seq: number): Promise<void> {
    if (op === Op.UPSERT) {
      const b = decodeUpsert(body);
      const r = await applyUpsertInSteps(this.#shard, b.ids, b.vectors, b.payloads, 0, b.count);
      this.#lastSeq = seq;
      if (r.applied < b.count) {
        // the stream must say how far it went, or every copy would apply it in full
        this.#lastSeq = (await log.append(Op.PARTIAL, encodePartial({ lsn, applied: r.applied }))).seq;
        throw r.error ?? new QuiverError(ErrorCode.MEMORY_LIMIT, `${this.#stream.subject}: out of WASM memory after ${r.applied} of ${b.count} points`);
      }
    } else if (isPayloadOp(op) || op === Op.CREATE_INDEX || op === Op.DELETE_INDEX) {
      // refused here as on every copy (an absent id, a full shard): in the stream all the same, and the writer told
      const err = isPayloadOp(op) ? errorOf(applyLoggedUpdate(this.#shard, op, decodePayloadUpdate(body)))
        : applyIndexRecord(this.#shard, op, decodeIndex(body, op === Op.CREATE_INDEX), `${this.#stream.subject} record ${seq}`);
      this.#lastSeq = seq;
      if (err?.code === ErrorCode.MEMORY_LIMIT && isPayloadOp(op)) this.#lastSeq = (await log.append(Op.PARTIAL, encodePartial({ lsn, applied: err.applied ?? 0 }))).seq;
      this.#wake();
      if (err !== undefined) throw err;
    } else {
      await applyRecordInSteps(this.#shard, op, body, undefined, `${this.#stream.subject} record ${seq}`);
      this.#lastSeq = seq;
    }
    this.#wake();
  }

  async #stepDown(): Promise<void> {
    if (this.#role !== 'leader') return;
    await this.#log?.close().catch(() => {});
    this.#log = null;
    this.#role = 'follower';
    this.#startTail();
  }

  /** Applies the stream from lastSeq + 1 to `until` (lead's catch-up to its claim). */
  async #catchUp(until: number): Promise<void> {
    for await (const e of this.#stream.read(this.#lastSeq + 1, until)) {
      // a PARTIAL's rebuild may have applied past this entry already
      if (e.seq > this.#lastSeq) await this.#applyStreamed(e.seq, e.msgId, e.data);
    }
  }

  async #applyStreamed(seq: number, msgId: string, data: Uint8Array): Promise<void> {
    const op = data[0]!;
    if (op === Op.PARTIAL) {
      // the upsert it cuts was applied in full here: rebuild, which applies it cut
      decodePartial(data.subarray(1));
      // into a directory of its own: the shard it replaces keeps its originals file until then
      const r = await rebuildShard(rebuildDir(this.#src, this.resyncs + 1));
      release(this.#shard);
      if (this.#src.originals !== undefined) rmSync(rebuildDir(this.#src, this.resyncs).originals!, { recursive: true, force: true });
      this.#shard = r.shard;
      this.#lastSeq = r.lastSeq;
      this.resyncs++;
    } else {
      if (op !== CLAIM_OP) await applyRecordInSteps(this.#shard, op, data.subarray(1), undefined, `${this.#stream.subject} record ${seq} (${msgId})`);
      this.#lastSeq = Math.max(this.#lastSeq, seq);
    }
    this.#wake();
  }

  #startTail(): void {
    const reader = this.#stream.tail(this.#lastSeq + 1);
    this.#reader = reader;
    this.#tailing = (async () => {
      try {
        for await (const e of reader) {
          if (this.#reader !== reader) return;
          if (e.seq <= this.#lastSeq) continue;
          await this.#applyStreamed(e.seq, e.msgId, e.data);
        }
      } catch (err) {
        if (this.#reader !== reader) return;
        if (err instanceof QuiverError && err.code === ErrorCode.UNAVAILABLE) {
          // NATS out of reach past the reader's own retries: follow again from where it got
          await new Promise((r) => setTimeout(r, 500));
          if (this.#reader === reader) this.#startTail();
          return;
        }
        this.#role = 'broken';
        this.#error = err;
        this.#fail(err);
      }
    })();
  }

  async #stopTail(): Promise<void> {
    const reader = this.#reader;
    this.#reader = null;
    await reader?.close();
    await this.#tailing;
  }

  #wake(): void {
    const still = [];
    for (const w of this.#waiters) if (w.seq <= this.#lastSeq) w.resolve(); else still.push(w);
    this.#waiters = still;
  }

  #fail(err: unknown): void {
    for (const w of this.#waiters) w.reject(err);
    this.#waiters = [];
  }

  #unusable(): QuiverError {
    return new QuiverError(ErrorCode.UNAVAILABLE, `${this.#stream.subject}: this copy is ${this.#role}${this.#error instanceof Error ? ` (${this.#error.message})` : ''}`);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lane.then(fn, fn);
    this.#lane = run.catch(() => {});
    return run;
  }
}

/** A rebuild's source with directory `n` under the copy's originals directory (a disk-mode copy's rebuilds each get one). */
const rebuildDir = (src: RebuildSource, n: number): RebuildSource => (src.originals === undefined ? src : { ...src, originals: join(src.originals, String(n)) });

const errorOf = (r: UpdateOutcome): QuiverError | undefined => ('error' in r ? r.error : undefined);
