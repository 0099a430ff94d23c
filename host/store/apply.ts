/**
 * Applying logged records to a shard: the same code for a live write, for
 * replay of the shard's own log at recovery (shard-log.ts) and for a shard
 * rebuilt from a cluster's stream (cluster-rebuild.ts), so the three cannot
 * disagree on what a record does.
 */
import type { Shard } from '../core/shard.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { decodeDelete, decodeIndex, decodePayloadUpdate, decodeUpsert, Op } from '../storage/index.js';
import { applyIndexRecord } from './payload-indexes.js';
import { applyLoggedUpdate, isPayloadOp, matchingIds } from './payload-updates.js';
import { ID_WORDS } from './protocol.js';

/**
 * Applies rows [from, to) of an upsert. Stops at the first row that does not
 * go in: `full` when memory ran out, `error` when the shard refused it;
 * `applied` is the row it stopped at either way.
 */
export function applyUpsert(
  shard: Shard, ids: Uint32Array, vectors: Float32Array, payloads: readonly (Uint8Array | null | undefined)[] | undefined, from: number, to: number,
): { applied: number; full: boolean; error?: unknown } {
  let i = from;
  try {
    for (; i < to; i++) {
      if (!shard.insert(ids, i, vectors, i * shard.dim, payloads?.[i] ?? undefined)) return { applied: i, full: true };
    }
  } catch (error) {
    return { applied: i, full: false, error };
  }
  return { applied: to, full: false };
}

export function applyDelete(shard: Shard, ids: Uint32Array): number {
  let deleted = 0;
  for (let i = 0; i < ids.length / ID_WORDS; i++) if (shard.remove(ids, i)) deleted++;
  return deleted;
}

/** Deletes every live point the compiled filter `program` matches now; returns how many. */
export function applyDeleteWhere(shard: Shard, program: Uint8Array): number {
  return applyDelete(shard, matchingIds(shard, program));
}

/**
 * Applies one logged record as replay does: an upsert up to `applied` rows
 * when a PARTIAL record said it was cut short, a refused payload or index
 * change refused again. `where` names the record in errors. PARTIAL records
 * themselves are the caller's (they are read in a first pass).
 */
export function applyRecord(shard: Shard, op: number, body: Uint8Array, applied: number | undefined, where: string): void {
  if (op === Op.UPSERT) {
    const b = decodeUpsert(body);
    if (b.dim !== shard.dim) throw new QuiverError(ErrorCode.CORRUPT, `${where} holds vectors of dim ${b.dim}, the shard has ${shard.dim}`);
    const r = applyUpsert(shard, b.ids, b.vectors, b.payloads, 0, Math.min(b.count, applied ?? b.count));
    if (r.error !== undefined) throw r.error;
    if (r.full) throw outOfMemory(where);
  } else if (op === Op.DELETE) {
    applyDelete(shard, decodeDelete(body).ids);
  } else if (op === Op.DELETE_WHERE) {
    applyDeleteWhere(shard, body);
  } else if (isPayloadOp(op)) {
    // a refused update (an id absent, a payload past the limit) is refused again, changing nothing
    const r = applyLoggedUpdate(shard, op, decodePayloadUpdate(body), applied);
    if ('error' in r && r.error.code === ErrorCode.MEMORY_LIMIT) throw outOfMemory(where);
    if ('error' in r && r.error.code !== ErrorCode.NOT_FOUND && r.error.code !== ErrorCode.INVALID_ARGUMENT) throw r.error;
  } else if (op === Op.CREATE_INDEX || op === Op.DELETE_INDEX) {
    // a create the shard refused (over the limit) is refused again, changing nothing
    const err = applyIndexRecord(shard, op, decodeIndex(body, op === Op.CREATE_INDEX), where);
    if (err?.code === ErrorCode.MEMORY_LIMIT) throw outOfMemory(where);
  } else if (op !== Op.PARTIAL) {
    throw new QuiverError(ErrorCode.CORRUPT, `${where} has operation ${op}, which this version does not know`);
  }
}

/** Rows an upsert applies between two yields to the event loop (about 0.1 s at 128-d, efConstruction 200). */
export const UPSERT_STEP = 256;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * applyUpsert in steps of UPSERT_STEP rows, yielding to the event loop
 * between them: on a cluster node the shards share the main thread with
 * the lease renewals, which a 1,000-point record applied in one go could
 * hold off past the lease.
 */
export async function applyUpsertInSteps(
  shard: Shard, ids: Uint32Array, vectors: Float32Array, payloads: readonly (Uint8Array | null | undefined)[] | undefined, from: number, to: number,
): Promise<{ applied: number; full: boolean; error?: unknown }> {
  for (let at = from; ;) {
    const r = applyUpsert(shard, ids, vectors, payloads, at, Math.min(to, at + UPSERT_STEP));
    if (r.full || r.error !== undefined || r.applied >= to) return r;
    at = r.applied;
    await yieldToLoop();
  }
}

/** applyRecord, with an upsert applied in steps (applyUpsertInSteps). */
export async function applyRecordInSteps(shard: Shard, op: number, body: Uint8Array, applied: number | undefined, where: string): Promise<void> {
  if (op !== Op.UPSERT) return applyRecord(shard, op, body, applied, where);
  const b = decodeUpsert(body);
  if (b.dim !== shard.dim) throw new QuiverError(ErrorCode.CORRUPT, `${where} holds vectors of dim ${b.dim}, the shard has ${shard.dim}`);
  const r = await applyUpsertInSteps(shard, b.ids, b.vectors, b.payloads, 0, Math.min(b.count, applied ?? b.count));
  if (r.error !== undefined) throw r.error;
  if (r.full) throw outOfMemory(where);
}

const outOfMemory = (where: string): QuiverError => new QuiverError(ErrorCode.MEMORY_LIMIT, `${where}: out of WASM memory replaying it`);
