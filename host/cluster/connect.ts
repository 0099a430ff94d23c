/**
 * One connection to the NATS cluster and the JetStream handles every
 * cluster module uses (streams, KV, object store).
 *
 * The client is given every server of the list and reconnects forever
 * (250 ms between attempts), so losing one nats-server moves the connection
 * to another without the caller doing anything; a request in flight while
 * that happens fails with QUIVER_ERR_UNAVAILABLE (retryable). close() drains
 * nothing on purpose: the cluster modules settle their own work first.
 *
 * natsError() is the one place NATS client errors become coded errors:
 * transient ones (timeouts, no responders, no JetStream quorum, a lost or
 * closing connection) are UNAVAILABLE; the rest are IO with the cause kept.
 */
import { connect, errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { ErrorCode, QuiverError } from '../errors.js';

export interface ClusterConnectOptions {
  /** nats://host:port URLs (or one comma-separated string, as `--cluster` takes them). */
  servers: string | string[];
  /** The connection name the servers report (the quiver node id, say). */
  name?: string;
  /** Time limit of each JetStream request and of the first connect, in ms (default 5000). */
  timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 5000;

/** JetStream API error codes quiver reacts to. */
export const JsCode = {
  WRONG_LAST_SEQUENCE: 10071,
  WRONG_LAST_SEQUENCE_UNKNOWN: 10164,
  STREAM_NAME_IN_USE: 10058,
  STREAM_NOT_FOUND: 10059,
  NO_QUORUM: 10074,
} as const;

export function parseServers(servers: unknown): string[] {
  const list = typeof servers === 'string' ? servers.split(',') : servers;
  if (!Array.isArray(list) || list.length === 0) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.servers must be a non-empty list of nats:// URLs');
  }
  return list.map((s) => {
    const url = typeof s === 'string' ? s.trim() : s;
    if (typeof url !== 'string' || !/^(nats|tls):\/\/[^\s/]+$/.test(url)) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `options.servers: ${JSON.stringify(s)} is not a nats://host:port URL`);
    }
    return url;
  });
}

/** A bucket name (1-64 letters, digits, '_' or '-') and a replica count (1..5) as options, or INVALID_ARGUMENT. */
export function checkBucketOptions(bucket: unknown, replicas: unknown): void {
  if (typeof bucket !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(bucket)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.bucket must be 1-64 letters, digits, \'_\' or \'-\'');
  if (!Number.isInteger(replicas) || (replicas as number) < 1 || (replicas as number) > 5) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.replicas must be an integer in 1..5');
}

/** Opens (creating if absent) a KV bucket of one value per key, `replicas` copies; `what` names it in errors. */
export async function openKvBucket(client: ClusterClient, bucket: string, replicas: number, what: string): Promise<KV> {
  checkBucketOptions(bucket, replicas);
  try {
    return await client.kvm.create(bucket, { replicas, history: 1, timeout: client.timeoutMs, allow_direct: false });
  } catch (err) {
    throw natsError(err, `opening the ${what} bucket ${bucket}`);
  }
}

/** A KV create that lost to a key already there (the compare-and-set refusal, or the client's own "exists"). */
export function isKeyTaken(err: unknown): boolean {
  return isWrongLastSequence(err) || (err instanceof Error && /exists/i.test(err.message));
}

/**
 * The keys of a KV bucket (deleted ones included: read each to tell), by
 * one stream-info request. Not `kv.keys()`: that runs a consumer to the end
 * of the bucket, and under load (two test files at once on 2 cores) it took
 * up to 50 s to end.
 */
export async function kvKeys(client: ClusterClient, bucket: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  try {
    const info = await client.jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length)).sort();
  } catch (err) {
    throw natsError(err, `listing the keys of ${bucket}`);
  }
}

/** The JetStream API error code of `err`, or 0. */
export function apiCode(err: unknown): number {
  return err instanceof JetStreamApiError ? err.code : 0;
}

/** A compare-and-set refusal: the subject's last sequence is not the one the caller expected. */
export function isWrongLastSequence(err: unknown): boolean {
  const code = apiCode(err);
  return code === JsCode.WRONG_LAST_SEQUENCE || code === JsCode.WRONG_LAST_SEQUENCE_UNKNOWN;
}

function transient(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof natsErrors.TimeoutError || e instanceof natsErrors.NoRespondersError || e instanceof natsErrors.RequestError
      || e instanceof natsErrors.ConnectionError || e instanceof natsErrors.ClosedConnectionError
      || e instanceof natsErrors.DrainingConnectionError || e.name === 'JetStreamNotEnabled') return true;
    if (e instanceof JetStreamApiError && (e.code === JsCode.NO_QUORUM || e.status === 503)) return true;
  }
  return false;
}

/** `err` from a NATS call as a coded error: UNAVAILABLE when retrying may succeed, IO otherwise. */
export function natsError(err: unknown, what: string): QuiverError {
  if (err instanceof QuiverError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return transient(err)
    ? new QuiverError(ErrorCode.UNAVAILABLE, `${what}: the NATS cluster is unavailable (${msg})`, { cause: err })
    : new QuiverError(ErrorCode.IO, `${what}: ${msg}`, { cause: err });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `fn` until it succeeds or fails with something other than
 * UNAVAILABLE, retrying (100 ms, growing to 500 ms apart) for up to
 * timeoutMs: rides out a JetStream leader election (a few seconds after a
 * nats-server dies). Only for calls that are safe to repeat.
 */
export async function retrying<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const coded = natsError(err, what);
      if (coded.code !== ErrorCode.UNAVAILABLE || Date.now() >= deadline) throw coded;
      await sleep(Math.min(100 * attempt, 500, Math.max(0, deadline - Date.now())));
    }
  }
}

export class ClusterClient {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly kvm: Kvm;
  readonly objm: Objm;
  readonly timeoutMs: number;
  #closed: Promise<void> | null = null;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, timeoutMs: number) {
    this.nc = nc;
    this.jsm = jsm;
    this.js = jetstream(nc, { timeout: timeoutMs });
    this.kvm = new Kvm(this.js);
    this.objm = new Objm(this.js);
    this.timeoutMs = timeoutMs;
  }

  /** Connects to the first reachable server of the list; UNAVAILABLE if none answers within timeoutMs. */
  static async connect(options: ClusterConnectOptions): Promise<ClusterClient> {
    const servers = parseServers(options?.servers);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.timeoutMs must be a positive integer');
    if (options.name !== undefined && typeof options.name !== 'string') throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'options.name must be a string');
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers, timeout: timeoutMs, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250,
        ...(options.name === undefined ? {} : { name: options.name }),
      });
    } catch (err) {
      throw new QuiverError(ErrorCode.UNAVAILABLE, `cannot connect to the NATS cluster at ${servers.join(',')}: ${(err as Error).message}`, { cause: err });
    }
    try {
      return new ClusterClient(nc, await jetstreamManager(nc, { timeout: timeoutMs }), timeoutMs);
    } catch (err) {
      await nc.close().catch(() => {});
      throw natsError(err, 'JetStream');
    }
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  /** The largest message payload the servers accept, in bytes. */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  /** Closes the connection (idempotent); pending requests reject with UNAVAILABLE. */
  close(): Promise<void> {
    this.#closed ??= this.nc.close().then(() => undefined, () => undefined);
    return this.#closed;
  }
}
