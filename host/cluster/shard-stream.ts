/**
 * A shard's replicated log: the JetStream subject quiver.<dataset>.<shard>.
 *
 * Layout. One stream per dataset (QUIVER_<token>, subjects quiver.<token>.*,
 * names.ts), not one for all: a collection's replication factor is the
 * stream's replica count, dropping a dataset is deleting its stream, and each
 * stream is its own Raft group, so the groups' leaders (where the appends
 * go) spread over the nats-servers instead of all landing on one. Shards of
 * a dataset share the stream's sequence numbers, so one shard's messages have
 * increasing but not consecutive sequences; a position in a shard's log is
 * the stream sequence of its last message (0 = empty).
 *
 * Writing. Only the shard's owner appends, through a ShardWriter that holds
 * the last sequence it knows. Each append is published with
 * `expect.lastSubjectSequence` = that sequence and `msgID` = the caller's id
 * for the record: the server refuses it if anything else was appended to the
 * subject since, so a stale owner (paused, partitioned, its lease lost) can
 * never write after a newer owner has; it gets QUIVER_ERR_FENCED and the
 * writer refuses every later append (step down). Appends of one writer are
 * therefore one at a time: the caller batches records into one message.
 *
 * In doubt. A publish that times out may still be stored later (the Raft
 * proposal commits when a quorum comes back: seen on nats-server 2.9.10, and
 * a retry with the same msgID then got "wrong last sequence", not a duplicate
 * ack). So an append that fails with QUIVER_ERR_UNAVAILABLE leaves the writer
 * in doubt about that record, and the only append it accepts next is the
 * same record again (same msgID, same bytes). The retry resolves it exactly
 * once: a duplicate ack, a fresh store, or "wrong last sequence" with that
 * msgID as the subject's last message, which is the earlier attempt having
 * landed. msgIDs must be unique per record across all writers of a shard
 * (node id + lease term + LSN, say).
 *
 * Reading. read(from, until) replays the subject from a sequence to the tail
 * as of the call (a new owner catching up); tail(from) follows it for as long
 * as it is open (a follower). Both are a ShardReader (shard-reader.ts): an
 * ordered consumer that is replaced when it gets stuck.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type StoredMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { ErrorCode, QuiverError } from '../errors.js';
import { apiCode, isWrongLastSequence, JsCode, natsError, retrying, type ClusterClient } from './connect.js';
import { checkShard, shardSubject, streamName, streamSubjects } from './names.js';
import { ShardReader, type LogEntry, type ReaderOptions } from './shard-reader.js';

export { ShardReader, type LogEntry } from './shard-reader.js';

export interface DatasetLogOptions {
  /** Copies of each message, 1..5 (JetStream's limit); default 3. */
  replicas?: number;
  /** How long the servers remember a msgID for deduplication, ms; default 120000. */
  duplicateWindowMs?: number;
  /** Retries through leader elections for up to this long, ms; default the client's timeoutMs. */
  timeoutMs?: number;
}

export interface ReadOptions {
  /** Opening the read (tail lookup, consumer, and reopening it) retries through leader elections this long, ms; default 30000. */
  timeoutMs?: number;
  /** After this long without a delivery the reader checks it is not stuck (shard-reader.ts), ms; default 1000. */
  stallMs?: number;
}

const DEFAULT_STALL_MS = 1000;
/** A leader election after a server dies can take several seconds (the meta leader's too, which creating a consumer needs). */
const DEFAULT_READ_TIMEOUT_MS = 30_000;

export interface AppendOptions {
  /** The whole append, retries included, ms; default the client's timeoutMs. */
  timeoutMs?: number;
}

const MSG_ID = 'Nats-Msg-Id';
const MSG_ID_RE = /^[\x21-\x7e]{1,256}$/;
const RETRY_MS = 100;
/** One publish attempt's limit: a request sent while the connection moves to another server is retried, not waited out. */
const ATTEMPT_MS = 2000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Creates the dataset's stream, or checks the existing one has `replicas` copies (EXISTS if not). */
export async function ensureDatasetLog(client: ClusterClient, dataset: string, options: DatasetLogOptions = {}): Promise<void> {
  const name = streamName(dataset);
  const replicas = options.replicas ?? 3;
  const windowMs = options.duplicateWindowMs ?? 120_000;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.replicas must be an integer in 1..5');
  if (!Number.isInteger(windowMs) || windowMs < 1000) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.duplicateWindowMs must be an integer >= 1000');
  const what = `creating the log stream ${name}`;
  const info = await retrying(what, options.timeoutMs ?? client.timeoutMs, async () => {
    try {
      return await client.jsm.streams.add({
        name, subjects: [streamSubjects(dataset)], num_replicas: replicas, storage: StorageType.File,
        retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old, duplicate_window: nanos(windowMs),
      });
    } catch (err) {
      if (apiCode(err) !== JsCode.STREAM_NAME_IN_USE) throw err;
      return client.jsm.streams.info(name);
    }
  });
  if (info.config.num_replicas !== replicas) {
    throw new QuiverError(ErrorCode.EXISTS, `the log stream ${name} exists with ${info.config.num_replicas} replicas, not ${replicas}`);
  }
}

/** Deletes the dataset's stream (every shard's log); false if there was none. */
export async function deleteDatasetLog(client: ClusterClient, dataset: string): Promise<boolean> {
  try {
    return await client.jsm.streams.delete(streamName(dataset));
  } catch (err) {
    if (apiCode(err) === JsCode.STREAM_NOT_FOUND) return false;
    throw natsError(err, `deleting the log stream of ${dataset}`);
  }
}

function entryOf(m: { seq: number; data: Uint8Array }, msgId: string | undefined): LogEntry {
  return { seq: m.seq, msgId: msgId ?? '', data: m.data.slice() };
}

export class ShardLog {
  readonly client: ClusterClient;
  readonly dataset: string;
  readonly shard: number;
  readonly stream: string;
  readonly subject: string;

  constructor(client: ClusterClient, dataset: string, shard: number) {
    checkShard(shard);
    this.client = client;
    this.dataset = dataset;
    this.shard = shard;
    this.stream = streamName(dataset);
    this.subject = shardSubject(dataset, shard);
  }

  /** The shard's last message (null when its log is empty), read from the stream's leader. */
  async last(): Promise<LogEntry | null> {
    let m: StoredMsg | null;
    try {
      m = await this.client.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject });
    } catch (err) {
      throw natsError(err, `reading the tail of ${this.subject}`);
    }
    return m === null ? null : entryOf(m, m.header?.get(MSG_ID));
  }

  /** The sequence of the shard's last message, 0 when its log is empty. */
  async lastSeq(): Promise<number> {
    return (await this.last())?.seq ?? 0;
  }

  /** A writer for an owner that knows the log up to `lastSeq` (its next append must follow exactly that). */
  writer(lastSeq: number): ShardWriter {
    if (!Number.isSafeInteger(lastSeq) || lastSeq < 0) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'lastSeq must be a non-negative integer');
    return new ShardWriter(this, lastSeq);
  }

  /**
   * A new owner's first append: `marker` appended right after whatever the
   * log holds now, retried (within timeoutMs) while other writers slip records
   * in. Once it resolves no writer that knows less can append again; the
   * owner replays the log up to `markerSeq` (exclusive) and writes after it.
   */
  async claim(marker: Uint8Array, msgId: string, options: AppendOptions = {}): Promise<{ writer: ShardWriter; markerSeq: number }> {
    const deadline = Date.now() + (options.timeoutMs ?? this.client.timeoutMs);
    for (;;) {
      const last = await this.last();
      if (last !== null && last.msgId === msgId) return { writer: this.writer(last.seq), markerSeq: last.seq };
      const writer = this.writer(last?.seq ?? 0);
      try {
        const markerSeq = await writer.append(marker, msgId, { timeoutMs: Math.max(1, deadline - Date.now()) });
        return { writer, markerSeq };
      } catch (err) {
        if (!(err instanceof QuiverError && err.code === ErrorCode.FENCED) || Date.now() >= deadline) throw err;
      }
    }
  }

  /**
   * Replays the shard's records with seq in [fromSeq, untilSeq], in order,
   * and ends at the tail as of the call (untilSeq beyond it is cut to it).
   */
  async *read(fromSeq = 1, untilSeq?: number, options: ReadOptions = {}): AsyncGenerator<LogEntry> {
    checkFrom(fromSeq);
    if (untilSeq !== undefined && (!Number.isSafeInteger(untilSeq) || untilSeq < 0)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'untilSeq must be a non-negative integer');
    const { timeoutMs } = this.readerOptions(options);
    const last = await retrying(`reading the tail of ${this.subject}`, timeoutMs, () => this.lastSeq());
    const until = Math.min(untilSeq ?? last, last);
    if (until < fromSeq) return;
    yield* this.reader(fromSeq, { ...this.readerOptions(options), until });
  }

  /** Follows the shard's log from fromSeq, in order, until the reader is closed. */
  tail(fromSeq = 1, options: ReadOptions = {}): ShardReader {
    checkFrom(fromSeq);
    return this.reader(fromSeq, this.readerOptions(options));
  }

  private readerOptions(options: ReadOptions): ReaderOptions {
    const stallMs = options.stallMs ?? DEFAULT_STALL_MS;
    if (!Number.isInteger(stallMs) || stallMs < 100) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.stallMs must be an integer >= 100');
    const timeoutMs = options.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.timeoutMs must be a positive integer');
    return { timeoutMs, stallMs };
  }

  private reader(fromSeq: number, options: ReaderOptions): ShardReader {
    return new ShardReader(this.client, this.stream, this.subject, fromSeq, () => this.lastSeq(), options);
  }
}

function checkFrom(fromSeq: number): void {
  if (!Number.isSafeInteger(fromSeq) || fromSeq < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'fromSeq must be a positive integer');
}

type WriterState = 'ready' | 'in-doubt' | 'fenced';

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The owner's side of a shard log (see the file comment). */
export class ShardWriter {
  readonly log: ShardLog;
  #lastSeq: number;
  #state: WriterState = 'ready';
  #doubt: { msgId: string; data: Uint8Array } | null = null;
  #busy = false;

  constructor(log: ShardLog, lastSeq: number) {
    this.log = log;
    this.#lastSeq = lastSeq;
  }

  /** The sequence of the last record this writer knows the log holds. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  get state(): WriterState {
    return this.#state;
  }

  /**
   * Appends one record and resolves with its sequence once JetStream has
   * stored it on a quorum of replicas. Rejects with FENCED if another writer
   * has appended since lastSeq (this writer is then done), UNAVAILABLE if no
   * quorum answered within timeoutMs (the record is in doubt: retry it).
   */
  async append(data: Uint8Array, msgId: string, options: AppendOptions = {}): Promise<number> {
    if (!(data instanceof Uint8Array)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'data must be a Uint8Array');
    if (typeof msgId !== 'string' || !MSG_ID_RE.test(msgId)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'msgId must be 1-256 printable ASCII characters without spaces');
    const limit = this.log.client.maxPayload - 1024;
    if (data.length > limit) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `a log record is at most ${limit} bytes (got ${data.length}): split the batch`);
    const timeoutMs = options.timeoutMs ?? this.log.client.timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.timeoutMs must be a positive integer');
    if (this.#state === 'fenced') throw this.fenced('this writer was fenced earlier');
    if (this.#doubt !== null && (this.#doubt.msgId !== msgId || !sameBytes(this.#doubt.data, data))) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `the append of ${this.#doubt.msgId} to ${this.log.subject} is in doubt: retry it (same msgId and bytes) before appending another`);
    }
    if (this.#busy) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `one append at a time per writer (${this.log.subject}): batch records into one`);
    this.#busy = true;
    try {
      return await this.publish(data, msgId, Date.now() + timeoutMs);
    } finally {
      this.#busy = false;
    }
  }

  private async publish(data: Uint8Array, msgId: string, deadline: number): Promise<number> {
    const { js } = this.log.client;
    let lastErr: unknown = null;
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const ack = await js.publish(this.log.subject, data, { msgID: msgId, expect: { lastSubjectSequence: this.#lastSeq }, timeout: Math.min(left, ATTEMPT_MS) });
        if (ack.duplicate) await this.checkDuplicate(ack.seq, msgId);
        await this.checkAlone(ack.seq);
        return this.settled(ack.seq);
      } catch (err) {
        if (isWrongLastSequence(err)) {
          const last = await this.log.last().then((entry) => ({ entry }), (e: unknown) => ({ error: e }));
          if ('entry' in last) {
            // Expected seq = ours, so a landed earlier attempt is exactly the next message and, being last, nothing followed it.
            const { entry } = last;
            if (entry !== null && entry.msgId === msgId && entry.seq > this.#lastSeq) {
              await this.checkAlone(entry.seq);
              return this.settled(entry.seq);
            }
            this.#state = 'fenced';
            this.#doubt = null;
            throw this.fenced(`the log moved on to seq ${entry?.seq ?? 0} past the ${this.#lastSeq} this writer knows`, err);
          }
          lastErr = last.error;
        } else {
          const coded = natsError(err, `appending to ${this.log.subject}`);
          // A refusal that is not about availability is definite: nothing was stored.
          if (coded.code !== ErrorCode.UNAVAILABLE) throw coded;
          lastErr = err;
        }
        this.#doubt = { msgId, data };
        this.#state = 'in-doubt';
        await sleep(Math.min(RETRY_MS * (attempt + 1), 500, Math.max(0, deadline - Date.now())));
      }
    }
    this.#doubt = { msgId, data };
    this.#state = 'in-doubt';
    throw new QuiverError(ErrorCode.UNAVAILABLE,
      `appending to ${this.log.subject}: no JetStream quorum answered in time; the record ${msgId} is in doubt (retry it)`, { cause: lastErr });
  }

  /**
   * A duplicate ack names the record that first had this msgId; the dataset's
   * shards share one stream (one deduplication window), so it must be this
   * subject's, or nothing of ours was stored (the msgId was another shard's).
   */
  private async checkDuplicate(seq: number, msgId: string): Promise<void> {
    let subject: string | null;
    try {
      subject = (await this.log.client.jsm.streams.getMessage(this.log.stream, { seq }))?.subject ?? null;
    } catch (err) {
      throw natsError(err, `checking the duplicate ${msgId} of ${this.log.subject}`);
    }
    if (subject === null) {
      // the first record with this msgId is gone (purged, or lost by the servers) and its msgId is still in the window
      throw new QuiverError(ErrorCode.IO, `appending ${msgId} to ${this.log.subject}: answered as a duplicate of record ${seq}, which the stream no longer holds (its msgId is still in the duplicate window): nothing was stored; retry after the window`);
    }
    if (subject !== this.log.subject) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `msgId ${msgId} is already record ${seq} of ${subject} in the stream ${this.log.stream}: a msgId must be unique across the dataset's shards; nothing was appended to ${this.log.subject}`);
    }
  }

  /**
   * nats-server 2.9 checks an expected last subject sequence before the
   * Raft proposal, not in it (nats-io/nats-server#4320, fixed after 2.9.20): two
   * writers that both knew lastSeq and published within a few ms of each
   * other can both be stored. So the first record of this subject after
   * lastSeq must be ours (`seq`); when another writer's landed first, ours
   * was stored behind a record this writer's owner never applied, and the
   * writer is fenced as if refused: its owner steps down to a follower from
   * lastSeq and applies both from the log, in the log's order. (Asked only
   * when the stream moved on by more than our record: the dataset's other
   * shards share it.)
   */
  private async checkAlone(seq: number): Promise<void> {
    if (seq <= this.#lastSeq + 1) return;
    let first: StoredMsg | null;
    try {
      // STREAM.MSG.GET takes next_by_subj on 2.9; the client types it for direct gets only
      first = await this.log.client.jsm.streams.getMessage(this.log.stream, { seq: this.#lastSeq + 1, next_by_subj: this.log.subject } as unknown as { seq: number });
    } catch (err) {
      throw natsError(err, `checking what precedes record ${seq} of ${this.log.subject}`);
    }
    if (first !== null && first.seq < seq) {
      this.#state = 'fenced';
      this.#doubt = null;
      throw this.fenced(`another writer's record ${first.seq} was stored between the ${this.#lastSeq} this writer knew and its own ${seq}, at once (nats-server 2.9: nats-io/nats-server#4320)`);
    }
  }

  private settled(seq: number): number {
    if (seq > this.#lastSeq) this.#lastSeq = seq;
    this.#doubt = null;
    this.#state = 'ready';
    return seq;
  }

  private fenced(why: string, cause?: unknown): QuiverError {
    return new QuiverError(ErrorCode.FENCED, `${this.log.subject}: fenced, another writer owns this shard (${why}); step down`, cause === undefined ? {} : { cause });
  }
}
