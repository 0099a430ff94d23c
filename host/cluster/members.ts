/**
 * Membership: which quiver nodes are alive, for placement (placement.ts).
 * A KV bucket (default `quiver-members`, R=3, history 1) with one key per
 * node id, value JSON { nodeId, address, incarnation, beat }: `address` is
 * where the node answers (its HTTP URL), `incarnation` a random id of this
 * process, `beat` a counter that grows with every heartbeat.
 *
 * Alive is decided as the leases decide expiry (leases.ts), by each
 * observer's own monotonic clock: a member is alive while its record's
 * revision has changed within `ttlMs` of this observer's looks (a record
 * first seen counts as alive from that moment). Wall clocks are never
 * compared. A graceful leave deletes the record, which every observer sees
 * at its next look; a crashed node drops out ttlMs after its last beat.
 *
 * One node id, one process: join creates the record, and if one exists it
 * is taken over only once it has stopped beating for ttlMs as this process
 * watched it (a restart after a crash waits out the ttl); a record that keeps
 * beating is another live process with this id: QUIVER_ERR_EXISTS.
 */
import { randomUUID } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { ErrorCode, QuiverError } from '../errors.js';
import { isKeyTaken, isWrongLastSequence, kvKeys, natsError, openKvBucket, type ClusterClient } from './connect.js';

export interface MembersOptions {
  nodeId: string;
  /** Where this node answers (its HTTP URL), for the others to forward to. */
  address: string;
  /** A member that has not beaten for this long is gone, ms (>= 100). */
  ttlMs: number;
  /** ms between heartbeats; default ttl / 4. */
  heartbeatMs?: number;
  bucket?: string;
  replicas?: number;
}

export interface Member {
  nodeId: string;
  address: string;
  incarnation: string;
}

interface Record_ extends Member {
  beat: number;
}

const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const enc = new TextEncoder();
const dec = new TextDecoder();
const now = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Members {
  readonly nodeId: string;
  readonly address: string;
  readonly ttlMs: number;
  readonly heartbeatMs: number;
  readonly incarnation = randomUUID();
  readonly #kv: KV;
  readonly #client: ClusterClient;
  readonly #bucket: string;
  readonly #timeoutMs: number;
  /** key -> the revision last seen, when it was first seen, the record */
  readonly #seen = new Map<string, { revision: number; since: number; member: Member }>();
  #revision = 0;
  #beat = 0;
  #timer: NodeJS.Timeout | undefined;
  #joined = false;

  private constructor(kv: KV, client: ClusterClient, bucket: string, o: MembersOptions, heartbeatMs: number, timeoutMs: number) {
    this.#kv = kv;
    this.#client = client;
    this.#bucket = bucket;
    this.nodeId = o.nodeId;
    this.address = o.address;
    this.ttlMs = o.ttlMs;
    this.heartbeatMs = heartbeatMs;
    this.#timeoutMs = timeoutMs;
  }

  static async open(client: ClusterClient, options: MembersOptions): Promise<Members> {
    const { nodeId, address, ttlMs, bucket = 'quiver-members', replicas = 3 } = options ?? ({} as MembersOptions);
    if (typeof nodeId !== 'string' || !NODE_RE.test(nodeId)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.nodeId must be 1-64 letters, digits, \'_\' or \'-\', starting with a letter or digit');
    if (typeof address !== 'string' || address.length === 0) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.address must be a non-empty string (the node\'s URL)');
    if (!Number.isInteger(ttlMs) || ttlMs < 100) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.ttlMs must be an integer >= 100');
    const heartbeatMs = options.heartbeatMs ?? Math.floor(ttlMs / 4);
    if (!Number.isFinite(heartbeatMs) || heartbeatMs <= 0 || heartbeatMs >= ttlMs / 2) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.heartbeatMs must be > 0 and under half the ttl');
    const kv = await openKvBucket(client, bucket, replicas, 'members');
    return new Members(kv, client, bucket, options, heartbeatMs, client.timeoutMs);
  }

  #record(): Uint8Array {
    const r: Record_ = { nodeId: this.nodeId, address: this.address, incarnation: this.incarnation, beat: ++this.#beat };
    return enc.encode(JSON.stringify(r));
  }

  /**
   * Joins: this node's record, created, or taken over from a process with
   * this id that stopped beating (waiting up to ttl + a beat to see that).
   * QUIVER_ERR_EXISTS when that process is still beating.
   */
  async join(): Promise<void> {
    const key = this.nodeId;
    for (let race = 0; ; race++) {
      const current = await this.#get(key);
      try {
        if (current === null) this.#revision = await this.#kv.create(key, this.#record());
        else {
          const watched = now();
          let last = current.revision;
          for (;;) {
            await sleep(Math.max(10, Math.floor(this.ttlMs / 8)));
            const e = await this.#get(key);
            if (e === null) break;
            if (e.revision !== last) throw new QuiverError(ErrorCode.EXISTS, `node id ${key} is in use by a live process (${parse(e.value).address}): give this node another --node-id`);
            if (now() - watched >= this.ttlMs) break;
            last = e.revision;
          }
          const e = await this.#get(key);
          this.#revision = e === null ? await this.#kv.create(key, this.#record()) : await this.#kv.update(key, this.#record(), e.revision, this.#timeoutMs);
        }
        this.#joined = true;
        return;
      } catch (err) {
        if (err instanceof QuiverError) throw err;
        if (!isKeyTaken(err)) throw natsError(err, `joining as ${key}`);
        // another process raced for the id: look again, a few times
        if (race >= 8) throw new QuiverError(ErrorCode.UNAVAILABLE, `joining as ${key}: the record kept changing under ${race + 1} attempts; try again`, { cause: err });
        await sleep(Math.max(10, Math.floor(this.ttlMs / 8)));
      }
    }
  }

  /** One heartbeat. FENCED if another process took this id over (this one must stop). */
  async heartbeat(): Promise<void> {
    if (!this.#joined) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'heartbeat before join');
    try {
      this.#revision = await this.#kv.update(this.nodeId, this.#record(), this.#revision, this.#timeoutMs);
    } catch (err) {
      if (!isWrongLastSequence(err)) throw natsError(err, `heartbeat of ${this.nodeId}`);
      const e = await this.#get(this.nodeId);
      const mine = e !== null && parse(e.value).incarnation === this.incarnation;
      if (mine) {
        this.#revision = e.revision; // a beat that timed out landed: go on from it
        return;
      }
      this.#joined = false;
      throw new QuiverError(ErrorCode.FENCED, `node id ${this.nodeId} was taken over by another process: stop this one`, { cause: err });
    }
  }

  /** Beats every heartbeatMs until stop; `onError` hears a failed beat (FENCED stops the beating). */
  start(onError: (err: unknown) => void = () => {}): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.heartbeat().catch((err) => {
        if (err instanceof QuiverError && err.code === ErrorCode.FENCED) {
          clearInterval(this.#timer);
          this.#timer = undefined;
        }
        onError(err);
      });
    }, this.heartbeatMs);
    this.#timer.unref();
  }

  /** Stops beating; `leave` (a graceful stop) deletes the record so the others see it at once. */
  async stop(leave = true): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (!leave || !this.#joined) return;
    this.#joined = false;
    try {
      await this.#kv.delete(this.nodeId, { previousSeq: this.#revision });
    } catch (err) {
      if (!isWrongLastSequence(err)) throw natsError(err, `leaving as ${this.nodeId}`);
    }
  }

  /**
   * Looks at every record and returns the members alive by this observer's
   * clock, sorted by id (this node included once joined).
   */
  async alive(): Promise<Member[]> {
    const keys = await kvKeys(this.#client, this.#bucket);
    const present = new Set<string>();
    for (const key of keys) {
      const e = await this.#get(key);
      if (e === null) continue;
      present.add(key);
      const s = this.#seen.get(key);
      if (s === undefined || s.revision !== e.revision) this.#seen.set(key, { revision: e.revision, since: now(), member: member(parse(e.value)) });
    }
    for (const key of [...this.#seen.keys()]) if (!present.has(key)) this.#seen.delete(key);
    return [...this.#seen.entries()]
      .filter(([key, s]) => (key === this.nodeId && this.#joined) || now() - s.since < this.ttlMs)
      .map(([, s]) => s.member)
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
  }

  async #get(key: string) {
    try {
      const e = await this.#kv.get(key);
      return e === null || e.operation !== 'PUT' ? null : e;
    } catch (err) {
      throw natsError(err, `reading the member ${key}`);
    }
  }
}

function parse(value: Uint8Array): Record_ {
  try {
    const r = JSON.parse(dec.decode(value)) as Record_;
    if (typeof r.nodeId === 'string' && typeof r.address === 'string' && typeof r.incarnation === 'string' && Number.isSafeInteger(r.beat)) return r;
  } catch { /* fall through */ }
  throw new QuiverError(ErrorCode.CORRUPT, 'a member record is not a member record');
}

const member = (r: Record_): Member => ({ nodeId: r.nodeId, address: r.address, incarnation: r.incarnation });
