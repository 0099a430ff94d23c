/**
 * A shard's write path in a cluster (docs/cluster.md, "The ack rule"): each
 * record goes to the node's own fsynced write-ahead log (host/storage Wal,
 * fsync 'always') and to the shard's JetStream subject (ShardWriter, fenced
 * by the expected last sequence), and is acknowledged only when both have
 * happened. nats-server 2.9 syncs its file store every 60 s, so a quorum ack
 * alone does not survive every server dying at once; the local log is what
 * lets the leader put those records back.
 *
 * Order: the stream first, then the local log. So the local log only ever
 * holds records the stream accepted at some point:
 *   - FENCED (another owner appended) leaves nothing local to undo: the
 *     refused record never reaches the disk, and the log writes nothing
 *     after that (every later append is FENCED too);
 *   - UNAVAILABLE leaves the record in doubt in the stream only; settle()
 *     retries it (same msgId, same bytes) and writes it locally once it is
 *     known to be stored;
 *   - recovery may re-append every local record past the stream's last one
 *     without the risk of resurrecting a record the stream refused.
 * The cost: the publish round trip and the fsync do not overlap (one record
 * at a time per shard, as ShardWriter already is: callers batch).
 *
 * Records. msgId = <node id>.<term>.<shard>.<lsn>, the lsn being the local
 * log's for the record: unique across writers (terms grow per shard) and
 * across the dataset's shards, which share one stream and so one
 * deduplication window (with <node>.<term>.<lsn> alone, shard 1's claim was
 * taken for shard 0's and "acknowledged" at shard 0's sequence). Stream
 * message = [op u8][body]; local record = op, [msgId length u16][msgId][body].
 * A new term's first record is a claim marker (op CLAIM_OP, body = the msgId
 * of the stream's last message before it), which fences earlier writers.
 *
 * Recovery at open(), with M = the msgId of the stream's last message of
 * the shard:
 *   - M in the local log at lsn L: the local records after L are re-appended
 *     in order with their msgIds (acknowledged records the servers lost);
 *   - M is ours at the next lsn: a record that landed unheard (the node died
 *     between the stream ack and the local write) is adopted locally;
 *   - M (or an empty subject) is the prev of a local claim: the stream lost
 *     everything from that claim on, which is re-appended;
 *   - otherwise another writer appended past what this node knows: FENCED
 *     (the takeover path rebuilds such a shard from the stream instead).
 * Then, unless the last record is this node's in this term, a claim.
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { nodeFiles, Wal, type Files } from '../storage/index.js';
import { retrying, type ClusterClient } from './connect.js';
import { ShardLog, type ShardWriter } from './shard-stream.js';

/** The op of a claim marker (the local log's highest op number, reserved here). */
export const CLAIM_OP = 255;

export interface ReplicatedLogOptions {
  client: ClusterClient;
  dataset: string;
  shard: number;
  /** The shard's local log directory (created if missing). */
  dir: string;
  /** This node's id (letters, digits, '_', '-', '.'). */
  nodeId: string;
  /** The lease term this node holds the shard under (leases.ts). */
  term: number;
  files?: Files;
  /** Each stream append (retries included) and the recovery's reads, ms; default the client's timeoutMs. */
  timeoutMs?: number;
}

export interface Appended {
  lsn: number;
  /** The stream sequence the record got. */
  seq: number;
  msgId: string;
}

export interface LocalRecord {
  lsn: number;
  op: number;
  body: Uint8Array;
  msgId: string;
}

export interface LogRecovery {
  /** The shard's last stream sequence found at open (before any re-append). */
  streamLastSeq: number;
  /** Local records put back into the stream (acknowledged records it had lost). */
  reappended: number;
  /** Records found in the stream but not locally (landed unheard), written locally. */
  adopted: number;
  /** Whether open() appended a claim marker for this term. */
  claimed: boolean;
}

export type ReplicatedLogState = 'ready' | 'in-doubt' | 'fenced' | 'broken' | 'closed';

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const enc = new TextEncoder();
const dec = new TextDecoder();

function streamData(op: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + body.length);
  out[0] = op;
  out.set(body, 1);
  return out;
}

function localBody(msgId: string, body: Uint8Array): Uint8Array {
  const id = enc.encode(msgId);
  const out = new Uint8Array(2 + id.length + body.length);
  new DataView(out.buffer).setUint16(0, id.length, true);
  out.set(id, 2);
  out.set(body, 2 + id.length);
  return out;
}

function splitLocal(dir: string, lsn: number, op: number, raw: Uint8Array): LocalRecord {
  const n = raw.length >= 2 ? new DataView(raw.buffer, raw.byteOffset, 2).getUint16(0, true) : -1;
  if (n < 1 || 2 + n > raw.length) throw new QuiverError(ErrorCode.CORRUPT, `${dir}: record ${lsn} carries no msgId: not a replicated log`);
  return { lsn, op, msgId: dec.decode(raw.subarray(2, 2 + n)), body: raw.subarray(2 + n) };
}

/** <node>.<term>.<shard>.<lsn> -> its parts (the node id may contain dots: parsed from the right). */
function parseMsgId(msgId: string): { node: string; term: number; shard: number; lsn: number } | null {
  const m = /^(.+)\.(\d+)\.(\d+)\.(\d+)$/.exec(msgId);
  return m === null ? null : { node: m[1]!, term: Number(m[2]), shard: Number(m[3]), lsn: Number(m[4]) };
}

export class ReplicatedLog {
  readonly dataset: string;
  readonly shard: number;
  readonly nodeId: string;
  readonly term: number;
  readonly stream: ShardLog;
  readonly #wal: Wal;
  readonly #timeoutMs: number;
  #writer: ShardWriter;
  #state: ReplicatedLogState = 'ready';
  #doubt: { op: number; body: Uint8Array; msgId: string; lsn: number } | null = null;
  #lane: Promise<unknown> = Promise.resolve();
  #lastMsgId: string;
  #closing: Promise<void> | null = null;
  recovery: LogRecovery = { streamLastSeq: 0, reappended: 0, adopted: 0, claimed: false };

  private constructor(o: ReplicatedLogOptions, stream: ShardLog, wal: Wal, writer: ShardWriter, lastMsgId: string, timeoutMs: number) {
    this.dataset = o.dataset;
    this.shard = o.shard;
    this.nodeId = o.nodeId;
    this.term = o.term;
    this.stream = stream;
    this.#wal = wal;
    this.#writer = writer;
    this.#lastMsgId = lastMsgId;
    this.#timeoutMs = timeoutMs;
  }

  /** Opens the local log, brings the stream back up to it (see the file comment), and claims the shard for this term. */
  static async open(o: ReplicatedLogOptions): Promise<ReplicatedLog> {
    if (o === null || typeof o !== 'object') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options must be an object');
    if (typeof o.nodeId !== 'string' || !NODE_RE.test(o.nodeId)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.nodeId must be 1-64 letters, digits, \'_\', \'-\' or \'.\', starting with a letter or digit');
    if (!Number.isSafeInteger(o.term) || o.term < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.term must be a positive integer');
    if (typeof o.dir !== 'string' || o.dir === '') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.dir must be a non-empty string');
    const timeoutMs = o.timeoutMs ?? o.client.timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.timeoutMs must be a positive integer');
    const stream = new ShardLog(o.client, o.dataset, o.shard);
    const wal = await Wal.open({ dir: o.dir, files: o.files ?? nodeFiles, fsync: 'always' });
    try {
      const log = await ReplicatedLog.recover(o, stream, wal, timeoutMs);
      const tail = parseMsgId(log.#lastMsgId);
      if (tail?.node !== o.nodeId || tail.term !== o.term) await log.claim();
      return log;
    } catch (err) {
      await wal.destroy();
      throw err;
    }
  }

  private static async recover(o: ReplicatedLogOptions, stream: ShardLog, wal: Wal, timeoutMs: number): Promise<ReplicatedLog> {
    const where = `${wal.dir} against ${stream.subject}`;
    const lsnOf = new Map<string, number>();
    const claims: { lsn: number; prev: string }[] = [];
    let localLast = '';
    for await (const rec of wal.replay()) {
      const r = splitLocal(wal.dir, rec.lsn, rec.op, rec.body);
      lsnOf.set(r.msgId, r.lsn);
      if (r.op === CLAIM_OP) claims.push({ lsn: r.lsn, prev: dec.decode(r.body) });
      localLast = r.msgId;
    }
    const last = await retrying(`reading the tail of ${stream.subject}`, timeoutMs, () => stream.last());
    const m = last?.msgId ?? '';
    const mine = parseMsgId(m);
    const report: LogRecovery = { streamLastSeq: last?.seq ?? 0, reappended: 0, adopted: 0, claimed: false };
    let from = 0;
    if (lsnOf.has(m)) {
      from = lsnOf.get(m)! + 1;
    } else if (last !== null && mine?.node === o.nodeId && mine.lsn === wal.nextLsn) {
      const got = await wal.append(last.data[0]!, localBody(m, last.data.subarray(1)));
      if (got !== mine.lsn) throw new QuiverError(ErrorCode.IO, `${where}: adopting ${m} at local lsn ${got}`);
      localLast = m;
      report.adopted = 1;
    } else if (lsnOf.size === 0) {
      // nothing local to put back: a fresh copy starts at the stream's tail
    } else {
      const claim = claims.filter((c) => c.prev === m).at(-1);
      if (claim === undefined) {
        throw new QuiverError(ErrorCode.FENCED,
          `${where}: the stream's last record ${m || '(none)'} is neither in the local log nor right before one of its claims: another writer appended past this node's records; step down (rebuild the shard from the stream)`);
      }
      from = claim.lsn;
    }
    const writer = stream.writer(last?.seq ?? 0);
    if (from > 0 && from <= wal.lastLsn) {
      for await (const rec of wal.replay(from)) {
        const r = splitLocal(wal.dir, rec.lsn, rec.op, rec.body);
        await writer.append(streamData(r.op, r.body), r.msgId, { timeoutMs });
        report.reappended++;
      }
      // a duplicate ack for a message the stream no longer holds would look like success: check the tail is ours
      const tail = await retrying(`reading the tail of ${stream.subject}`, timeoutMs, () => stream.last());
      if (tail?.msgId !== localLast) {
        throw new QuiverError(ErrorCode.IO, `${where}: after re-appending, the stream ends at ${tail?.msgId ?? '(none)'}, not ${localLast} (a msgId still in the duplicate window of a lost message?); reopen later`);
      }
    }
    // the stream now ends where the local log does (or, with nothing local, where it ended)
    const log = new ReplicatedLog(o, stream, wal, writer, localLast === '' ? m : localLast, timeoutMs);
    log.recovery = report;
    return log;
  }

  /** A claim marker for this term, right after whatever the stream holds (retried while other writers slip records in). */
  private async claim(): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const last = await retrying(`reading the tail of ${this.stream.subject}`, Math.max(1, deadline - Date.now()), () => this.stream.last());
      this.#writer = this.stream.writer(last?.seq ?? 0);
      this.#state = 'ready';
      try {
        await this.write(CLAIM_OP, enc.encode(last?.msgId ?? ''), Math.max(1, deadline - Date.now()));
        this.recovery.claimed = true;
        return;
      } catch (err) {
        if (!(err instanceof QuiverError && err.code === ErrorCode.FENCED) || Date.now() >= deadline) throw err;
      }
    }
  }

  get state(): ReplicatedLogState {
    return this.#state;
  }

  /** The local log's last lsn (every record up to it is acknowledged or was settled). */
  get lastLsn(): number {
    return this.#wal.lastLsn;
  }

  /** The stream sequence of the last record this log knows the stream holds. */
  get lastSeq(): number {
    return this.#writer.lastSeq;
  }

  /**
   * Appends one record (op 1..254) and resolves once it is both in the
   * shard's stream (a quorum) and fsynced locally. Rejects with FENCED
   * (step down: every later append is refused, nothing more is written),
   * UNAVAILABLE (no quorum: the record is in doubt and not written locally;
   * settle() it before appending another), INVALID_ARGUMENT (bad input,
   * nothing written), IO (the local write failed after the stream took the
   * record: the log is broken; reopening adopts the record).
   */
  append(op: number, body: Uint8Array, options: { timeoutMs?: number } = {}): Promise<Appended> {
    if (!Number.isInteger(op) || op < 1 || op >= CLAIM_OP) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, `op must be an integer in 1..${CLAIM_OP - 1}`));
    if (!(body instanceof Uint8Array)) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, 'body must be a Uint8Array'));
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.timeoutMs must be a positive integer'));
    return this.serial(() => {
      if (this.#state === 'in-doubt') {
        throw new QuiverError(ErrorCode.UNAVAILABLE, `${this.stream.subject}: the record ${this.#doubt!.msgId} is in doubt; settle() it before appending another (nothing was written)`);
      }
      return this.write(op, body, timeoutMs);
    });
  }

  /**
   * Retries the record in doubt (same msgId and bytes) until the stream
   * settles it, then writes it locally: resolves with it (the caller
   * applies it now; it was never acknowledged before), or null if nothing
   * was in doubt. UNAVAILABLE again leaves it in doubt; FENCED steps down.
   */
  settle(options: { timeoutMs?: number } = {}): Promise<(Appended & { op: number; body: Uint8Array }) | null> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.timeoutMs must be a positive integer'));
    return this.serial(async () => {
      const d = this.#doubt;
      if (this.#state !== 'in-doubt' || d === null) return null;
      const done = await this.write(d.op, d.body, timeoutMs);
      return { ...done, op: d.op, body: d.body };
    });
  }

  /** The local log's records from `from` (claim markers included, op CLAIM_OP), in order. */
  async *records(from = this.#wal.firstLsn): AsyncGenerator<LocalRecord> {
    for await (const rec of this.#wal.replay(from)) yield splitLocal(this.#wal.dir, rec.lsn, rec.op, rec.body);
  }

  /** Waits for the append in flight, syncs and closes the local log. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#lane.then(() => undefined, () => undefined).then(() => {
      this.#state = 'closed';
      return this.#wal.close();
    });
    return this.#closing;
  }

  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.#lane.then(() => {
      if (this.#closing !== null || this.#state === 'closed') throw new QuiverError(ErrorCode.CLOSED, `the replicated log of ${this.stream.subject} is closed`);
      if (this.#state === 'fenced') throw new QuiverError(ErrorCode.FENCED, `${this.stream.subject}: this log was fenced earlier (another writer owns the shard); step down`);
      if (this.#state === 'broken') throw new QuiverError(ErrorCode.IO, `${this.stream.subject}: a local write failed after the stream took its record; reopen the log`);
      return fn();
    });
    this.#lane = run.catch(() => undefined);
    return run;
  }

  /** The stream, then the local log (see the file comment); the record in doubt, if any, is this one. */
  private async write(op: number, body: Uint8Array, timeoutMs: number): Promise<Appended> {
    const lsn = this.#doubt?.lsn ?? this.#wal.nextLsn;
    const msgId = this.#doubt?.msgId ?? `${this.nodeId}.${this.term}.${this.shard}.${lsn}`;
    let seq: number;
    try {
      seq = await this.#writer.append(streamData(op, body), msgId, { timeoutMs });
    } catch (err) {
      const code = err instanceof QuiverError ? err.code : '';
      if (code === ErrorCode.FENCED) {
        this.#state = 'fenced';
        this.#doubt = null;
      } else if (code === ErrorCode.UNAVAILABLE) {
        this.#state = 'in-doubt';
        this.#doubt = { op, body, msgId, lsn };
      }
      throw err;
    }
    this.#doubt = null;
    try {
      const got = await this.#wal.append(op, localBody(msgId, body));
      if (got !== lsn) throw new QuiverError(ErrorCode.IO, `${this.#wal.dir}: ${msgId} was written at local lsn ${got}`);
    } catch (err) {
      this.#state = 'broken';
      throw err instanceof QuiverError && err.code === ErrorCode.IO ? err : new QuiverError(ErrorCode.IO, `${this.#wal.dir}: writing ${msgId} locally after the stream took it`, { cause: err });
    }
    this.#state = 'ready';
    this.#lastMsgId = msgId;
    return { lsn, seq, msgId };
  }
}
