/**
 * Payload indexes, host side (the index itself is the core's:
 * core/payload-index.ts, kept in the shard's arena, maintained by every
 * write, carried by images and compaction). The Store checks a request
 * (dataset, field, type, the per-dataset limit) before anything is logged;
 * every shard then logs it (CREATE_INDEX / DELETE_INDEX) and applies it in
 * log order, as replay does (applyIndexRecord).
 *
 * Index changes of one dataset run one at a time, against the set of
 * indexes the host knows (read from the shards the first time, and again
 * after any failure), so the limit check and the no-op cases (the same
 * type again, dropping an index that is not there) never race each other.
 */
import {
  checkPayloadIndexField, checkPayloadIndexType, createPayloadIndex, dropPayloadIndex, MAX_PAYLOAD_INDEXES,
  type PayloadIndexInfo, type PayloadIndexType,
} from '../core/payload-index.js';
import type { Shard } from '../core/shard.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { Op, type IndexBody } from '../storage/index.js';
import type { Dataset } from './catalog.js';
import type { Scatter } from './scatter.js';
import type { ReadRunner, ShardSet } from './points.js';

export type { PayloadIndexInfo, PayloadIndexType };

const invalid = (m: string): QuiverError => new QuiverError(ErrorCode.INVALID_ARGUMENT, m);

/** A field as the Store takes it: the core's key path check, and well-formed text (it is logged as UTF-8). */
export function checkField(field: unknown): string {
  const f = checkPayloadIndexField(field);
  if (!(f as unknown as { isWellFormed(): boolean }).isWellFormed()) throw invalid(`field ${JSON.stringify(f)} holds a lone surrogate; a field must be well-formed Unicode`);
  return f;
}

/**
 * Applies a logged index record to a shard (live, and on replay): undefined
 * when done, else why the shard refused it (INVALID_ARGUMENT: over the
 * limit; MEMORY_LIMIT: no room to build it), the shard unchanged. A type
 * this version does not know is damage: CORRUPT.
 */
export function applyIndexRecord(shard: Shard, op: number, body: IndexBody, where = 'an index record'): QuiverError | undefined {
  try {
    if (op === Op.DELETE_INDEX) {
      dropPayloadIndex(shard, body.field);
      return undefined;
    }
    let type: PayloadIndexType;
    try {
      type = checkPayloadIndexType(body.type);
    } catch {
      throw new QuiverError(ErrorCode.CORRUPT, `${where} names the index type ${JSON.stringify(body.type)}, which this version does not know`);
    }
    createPayloadIndex(shard, body.field, type);
    return undefined;
  } catch (err) {
    if (err instanceof QuiverError && (err.code === ErrorCode.INVALID_ARGUMENT || err.code === ErrorCode.MEMORY_LIMIT)) return err;
    throw err;
  }
}

/** Per dataset: the index changes queued (one at a time) and the field -> type the host knows of. */
interface IndexState {
  queue: Promise<unknown>;
  known: Map<string, PayloadIndexType> | undefined;
}

const states = new WeakMap<Dataset, IndexState>();

/** Runs `fn` after every earlier index change of `ds`; a failure makes the next one read the shards again. */
function serial<T>(ds: Dataset, fn: (state: IndexState) => Promise<T>): Promise<T> {
  let state = states.get(ds);
  if (state === undefined) states.set(ds, (state = { queue: Promise.resolve(), known: undefined }));
  const s = state;
  const run = s.queue.then(() => fn(s)).catch((err: unknown) => {
    s.known = undefined;
    throw err;
  });
  s.queue = run.catch(() => {});
  return run;
}

async function known(scatter: Scatter, ds: Dataset, state: IndexState): Promise<Map<string, PayloadIndexType>> {
  state.known ??= new Map((await listIndexes(scatter, ds)).map((i) => [i.field, i.type]));
  return state.known;
}

const result = (wait: boolean): { acknowledged?: true } => (wait ? {} : { acknowledged: true });

/** Bytes an index takes per value (docs/filtering.md, "Records"): what a new one asks of the memory limit per live point. */
const INDEX_BYTES_PER_POINT = 16;

/**
 * Creates (or retypes) the index on `field` on every shard of `ds`. Checked
 * first: a bad field or type, or a new field past MAX_PAYLOAD_INDEXES, is
 * INVALID_ARGUMENT and nothing is logged; the same field and type again
 * changes nothing. `admit` asks the memory limit for the bytes the index
 * will take (MEMORY_LIMIT, nothing logged, when they do not fit).
 */
export function createIndex(
  scatter: Scatter, ds: Dataset, field: unknown, type: unknown, wait: boolean, admit: (bytes: number) => Promise<() => void> = async () => () => {},
): Promise<{ acknowledged?: true }> {
  const f = checkField(field);
  const t = checkPayloadIndexType(type);
  return serial(ds, async (state) => {
    const now = await known(scatter, ds, state);
    if (now.get(f) === t) return result(wait);
    if (!now.has(f) && now.size >= MAX_PAYLOAD_INDEXES) {
      throw invalid(`dataset ${JSON.stringify(ds.name)} has ${now.size} payload indexes, the most a dataset may have (${MAX_PAYLOAD_INDEXES}); drop one first`);
    }
    const live = await Promise.all(ds.shards.map((ref) => scatter.run<number>(ref, { op: 'count', shard: ref.key })));
    const release = await admit(INDEX_BYTES_PER_POINT * live.reduce((a, b) => a + b, 0));
    try {
      await everyShard(scatter, ds, (key) => ({ op: 'createIndex', shard: key, field: f, type: t, wait }));
    } finally {
      release();
    }
    now.set(f, t);
    return result(wait);
  });
}

/** Drops the index on `field` from every shard of `ds`; nothing is logged when there is none. */
export function dropIndex(scatter: Scatter, ds: Dataset, field: unknown, wait: boolean): Promise<{ acknowledged?: true }> {
  const f = checkField(field);
  return serial(ds, async (state) => {
    const now = await known(scatter, ds, state);
    if (!now.has(f)) return result(wait);
    await everyShard(scatter, ds, (key) => ({ op: 'dropIndex', shard: key, field: f, wait }));
    now.delete(f);
    return result(wait);
  });
}

async function everyShard(scatter: Scatter, ds: Dataset, task: (key: string) => Parameters<Scatter['run']>[1]): Promise<void> {
  const results = await Promise.allSettled(ds.shards.map((ref) => scatter.run(ref, task(ref.key))));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** The indexes of `ds`, sorted by field: each with its points summed over the shards. */
export async function listIndexes(scatter: ReadRunner, ds: ShardSet): Promise<PayloadIndexInfo[]> {
  const parts = await Promise.all(ds.shards.map((ref) => scatter.run<PayloadIndexInfo[]>(ref, { op: 'payloadIndexes', shard: ref.key })));
  const byField = new Map<string, PayloadIndexInfo>();
  for (const part of parts) {
    for (const i of part) {
      const seen = byField.get(i.field);
      if (seen === undefined) byField.set(i.field, { field: i.field, type: i.type, points: i.points });
      else seen.points += i.points;
    }
  }
  return [...byField.values()].sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
}
