/**
 * The point calls of a dataset as scatter/gather over its shards: writes
 * (insert, delete) and reads (get, retrieve, scroll). Input is validated by
 * the Store before it gets here; ids arrive packed.
 */
import { QuiverError } from '../errors.js';
import { packIds, unpackId } from '../ids.js';
import { compileFilter } from '../filter/filter.js';
import { checkUpdate, type PayloadUpdate, type PointSelection } from './payload-updates.js';
import type { CompiledFilter } from '../filter/compile.js';
import { decodePayload } from '../payload.js';
import type { Dataset } from './catalog.js';
import { ID_WORDS, type GetResult, type InsertResult, type ScrollResult, type Task } from './protocol.js';
import { abortError, mergeScroll, pick, route, type Scatter, type ShardRef } from './scatter.js';
import { leases, transferList, transientF32 } from '../memory/transient.js';
import type { PointRecord, ScrollPage } from './types.js';
import type { ReadTask } from './shard-tasks.js';

/** What runs a read task on a shard: a Store's Scatter, or a cluster node's runner (cluster-tasks.ts). */
export interface ReadRunner {
  run<T>(ref: ShardRef, task: ReadTask, transfer?: Transferable[]): Promise<T>;
}

/** The shards a read goes to, and their vectors' dimension. */
export type ShardSet = Pick<Dataset, 'shards' | 'dim'>;

/**
 * Inserts packed ids with their vectors (and encoded payloads) on their
 * shards, all at once; `cancel` is the cancel slot every shard watches.
 * Resolves with how many went in; a failure carries that count as `applied`.
 */
export async function insertPoints(
  scatter: Scatter, ds: Dataset, packed: Uint32Array, flat: Float32Array,
  encoded: (Uint8Array | undefined)[] | undefined, cancel: number, signal: AbortSignal | undefined, wait = true,
): Promise<number> {
  // with wait the shards are done with the parts when they answer: lease them (transient.ts)
  const lease = wait ? leases() : undefined;
  const results = await Promise.allSettled([...route(ds.shards.length, packed)].map(([s, rows]) => {
    const part = (lease?.f32 ?? transientF32)(rows.length * ds.dim);
    rows.forEach((row, j) => part.set(flat.subarray(row * ds.dim, (row + 1) * ds.dim), j * ds.dim));
    const partIds = pick(packed, rows, lease?.u32);
    const ref = ds.shards[s]!;
    const task: Task = { op: 'insert', shard: ref.key, ids: partIds, vectors: part, cancel, wait };
    if (encoded !== undefined) task.payloads = rows.map((r) => encoded[r]);
    return scatter.run<InsertResult>(ref, task, transferList(part, partIds));
  }));
  lease?.release();
  let applied = 0;
  let failure: unknown;
  for (const r of results) {
    if (r.status === 'fulfilled') applied += r.value.applied;
    else {
      applied += (r.reason as QuiverError).applied ?? 0;
      failure ??= r.reason;
    }
  }
  if (failure === undefined) return applied;
  if (signal?.aborted) throw abortError(signal, applied);
  const err = failure as QuiverError;
  throw err instanceof QuiverError ? new QuiverError(err.code, err.message, { applied, cause: err.cause }) : err;
}

export async function deletePoints(scatter: Scatter, ds: Dataset, packed: Uint32Array, wait = true): Promise<number> {
  const lease = wait ? leases() : undefined;
  const counts = await Promise.allSettled([...route(ds.shards.length, packed)].map(([s, rows]) => {
    const ref = ds.shards[s]!;
    const part = pick(packed, rows, lease?.u32);
    return scatter.run<number>(ref, { op: 'delete', shard: ref.key, ids: part, wait }, transferList(part));
  }));
  lease?.release();
  let deleted = 0;
  for (const c of counts) {
    if (c.status === 'rejected') throw c.reason;
    deleted += c.value;
  }
  return deleted;
}

/** Deletes every live point `filter` matches, each shard deciding in its log order; resolves with how many. */
export async function deleteWhere(scatter: Scatter, ds: Dataset, filter: CompiledFilter, wait = true): Promise<number> {
  const counts = await Promise.all(ds.shards.map((ref) => scatter.run<number>(ref, { op: 'deleteWhere', shard: ref.key, filter, wait })));
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * A checked payload update on the points `select` names: ids go to their
 * shards (each shard refuses the whole update when one of its ids is
 * absent), a filter to every shard. Resolves with how many points changed.
 */
export async function updatePayloads(scatter: Scatter, ds: Dataset, select: PointSelection, payloadUpdate: PayloadUpdate, wait = true): Promise<number> {
  const update = checkUpdate(payloadUpdate);
  if (select === null || typeof select !== 'object' || (('ids' in select) === ('filter' in select))) {
    throw new QuiverError('QUIVER_ERR_INVALID_ARGUMENT', 'select must be { ids } or { filter }');
  }
  const base = { op: 'updatePayload', kind: update.op, arg: update.arg, wait } as const;
  let runs: Promise<number>[];
  if ('filter' in select) {
    const filter = compileFilter(select.filter, 'select.filter');
    runs = ds.shards.map((ref) => scatter.run<number>(ref, { ...base, shard: ref.key, filter }));
  } else {
    const packed = packIds(select.ids, false);
    runs = [...route(ds.shards.length, packed)].map(([s, rows]) => {
      const ref = ds.shards[s]!;
      const ids = pick(packed, rows);
      return scatter.run<number>(ref, { ...base, shard: ref.key, ids }, transferList(ids));
    });
  }
  const results = await Promise.allSettled(runs);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return results.reduce((a, r) => a + (r as PromiseFulfilledResult<number>).value, 0);
}

/** Live points, or those `filter` matches, counted exactly. */
export async function countPoints(scatter: ReadRunner, ds: ShardSet, filter: CompiledFilter | undefined): Promise<number> {
  const counts = await Promise.all(ds.shards.map((ref) => scatter.run<number>(ref, { op: 'count', shard: ref.key, ...(filter === undefined ? {} : { filter }) })));
  return counts.reduce((a, b) => a + b, 0);
}

/** Reads packed ids from their shards; calls `found(row, vector, payload)` for each present one. */
export async function readPoints(
  scatter: ReadRunner, ds: ShardSet, packed: Uint32Array, withPayload: boolean,
  found: (row: number, vector: Float32Array, payload: Uint8Array | undefined) => void,
): Promise<void> {
  await Promise.all([...route(ds.shards.length, packed)].map(async ([s, rows]) => {
    const ref = ds.shards[s]!;
    const part = pick(packed, rows);
    const got = await scatter.run<GetResult>(ref, { op: 'get', shard: ref.key, ids: part, withPayload }, transferList(part));
    rows.forEach((row, j) => {
      if (got.found[j] === 1) found(row, got.vectors.slice(j * ds.dim, (j + 1) * ds.dim), got.payloads?.[j]);
    });
  }));
}

/** The stored vectors of packed ids, in order; undefined where one is absent. */
export async function getVectors(scatter: ReadRunner, ds: ShardSet, packed: Uint32Array): Promise<(Float32Array | undefined)[]> {
  const out: (Float32Array | undefined)[] = new Array(packed.length / ID_WORDS).fill(undefined);
  await readPoints(scatter, ds, packed, false, (row, vector) => {
    out[row] = vector;
  });
  return out;
}

/** The points of packed ids that exist, in the order asked, each once. */
export async function retrievePoints(scatter: ReadRunner, ds: ShardSet, packed: Uint32Array, withVector: boolean, withPayload: boolean): Promise<PointRecord[]> {
  const found: (PointRecord | undefined)[] = new Array(packed.length / ID_WORDS);
  await readPoints(scatter, ds, packed, withPayload, (row, vector, payload) => {
    const rec: PointRecord = { id: unpackId(packed, row * ID_WORDS, packed[row * ID_WORDS + 4] === 1) };
    if (withVector) rec.vector = vector;
    if (withPayload) rec.payload = decodePayload(payload);
    found[row] = rec;
  });
  // an id asked twice comes back once
  const seen = new Set<string>();
  return found.filter((r): r is PointRecord => {
    if (r === undefined) return false;
    const key = typeof r.id === 'string' ? r.id : `#${String(r.id)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * One scroll page: each shard seeks to `from` in its sorted ids and sends
 * its next limit + 1 live points; the page is the first `limit` of their
 * merge, and the next page starts at the one after.
 */
export async function scrollPage(
  scatter: ReadRunner, ds: ShardSet, from: Uint32Array | undefined, limit: number, withVector: boolean, withPayload: boolean,
  filter?: CompiledFilter,
): Promise<ScrollPage> {
  const parts = await Promise.all(ds.shards.map((ref) => scatter.run<ScrollResult>(ref, {
    op: 'scroll', shard: ref.key, limit: limit + 1, withVector, withPayload, ...(from === undefined ? {} : { from }), ...(filter === undefined ? {} : { filter }),
  })));
  return mergeScroll(parts, limit, ds.dim);
}
