/**
 * The worker side of the Store: each worker thread owns the shards created
 * on it (their WebAssembly memories live here and nowhere else) and runs the
 * tasks the host routes to it. Long tasks (insert, compaction) run in
 * bounded steps and yield between them, so searches on the same thread get
 * in; writes to one shard are serialised.
 */
import { threadId, workerData } from 'node:worker_threads';
import { compactInSteps, type CompactionReport } from '../core/compaction.js';
import { collectGarbage } from '../core/gc.js';
import { Shard, type FilterPath } from '../core/shard.js';
import { statsOf, type IndexStats } from '../core/stats.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { nodeFiles, Op, readRange, writeCheckpoint } from '../storage/index.js';
import { isCancelled } from './cancel.js';
import { IdOrder } from './id-order.js';
import {
  ID_WORDS, type GcResult, type GetResult, type ImageResult, type InsertResult, type OpenResult, type Reply, type ScrollResult,
  type SearchResult, type ShardKey, type Task,
} from './protocol.js';
import { applyDelete, applyDeleteWhere, applyUpsert } from './apply.js';
import { ShardLog, writeImageFile, type Durability } from './shard-log.js';
import { restoreOriginals, verifyImage, type OriginalsFile } from './originals-files.js';
import { applyIndexRecord } from './payload-indexes.js';
import { applyLoggedUpdate, type PayloadOp } from './payload-updates.js';
import { runRead } from './shard-tasks.js';

const { cancel, testHooks } = workerData as { cancel: SharedArrayBuffer; testHooks?: boolean };
// a growable buffer: this view tracks its length as the host adds slots
const cancelFlags = new Int32Array(cancel);
const shards = new Map<ShardKey, Shard>();
const writeLocks = new Map<ShardKey, Promise<unknown>>();
/** Each shard's ids in id order, for scroll; built on the first scroll. */
const idOrders = new Map<ShardKey, IdOrder>();
/** The logs of durable shards. */
const logs = new Map<ShardKey, ShardLog>();
/** Image writes of in-memory shards (snapshots) that reads must wait for. */
const imageBusy = new Map<ShardKey, Promise<void>>();
/** Shards with a checkpoint queued because their log passed the threshold. */
const checkpointQueued = new Set<ShardKey>();

/** Vectors inserted per step before yielding and checking for cancel. */
const INSERT_STEP = 256;

const yieldToOthers = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function fail(code: string, message: string, applied?: number): Reply<never> {
  return applied === undefined ? { ok: false, code, message } : { ok: false, code, message, applied };
}

function shardFor(key: ShardKey): Shard {
  const shard = shards.get(key);
  if (shard === undefined) {
    throw new QuiverError('QUIVER_ERR_WORKER_LOST', `shard ${key} is not on this thread (its thread was lost)`);
  }
  return shard;
}

/** A shard to read: waits while a checkpoint streams its image (a read writes into the scratch the image covers). */
async function readable(key: ShardKey): Promise<Shard> {
  for (;;) {
    const busy = logs.get(key)?.busy ?? imageBusy.get(key);
    if (busy === undefined) return shardFor(key);
    await busy;
  }
}

/** Runs `fn` after every earlier write to `key` has finished. */
async function exclusive<T>(key: ShardKey, fn: () => Promise<T>): Promise<T> {
  const previous = writeLocks.get(key) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const settled = run.then(() => undefined, () => undefined);
  writeLocks.set(key, settled);
  try {
    return await run;
  } finally {
    if (writeLocks.get(key) === settled) writeLocks.delete(key);
  }
}

/** The body of an insert: rows in steps, yielding and checking for cancel between them. */
async function applyInsert(task: Extract<Task, { op: 'insert' }>, shard: Shard): Promise<Reply<InsertResult>> {
  const n = task.ids.length / ID_WORDS;
  let applied = 0;
  while (applied < n) {
    if (isCancelled(cancelFlags, task.cancel)) {
      return fail('QUIVER_ERR_ABORTED', `insert cancelled after ${applied} of ${n} vectors`, applied);
    }
    const from = applied;
    const step = applyUpsert(shard, task.ids, task.vectors, task.payloads, applied, Math.min(n, applied + INSERT_STEP));
    applied = step.applied;
    // what went in is listed for scroll, whatever stopped the step
    idOrders.get(task.shard)?.inserted(task.ids, from, applied);
    if (step.error !== undefined) {
      const err = step.error;
      if (err instanceof QuiverError) return fail(err.code, err.message, applied);
      return fail('QUIVER_ERR_CORE_TRAP', `worker error: ${(err as Error)?.message ?? String(err)}`, applied);
    }
    if (step.full) return fail('QUIVER_ERR_MEMORY_LIMIT', `out of WASM memory after ${applied} of ${n} vectors`, applied);
    if (applied < n) await yieldToOthers();
  }
  return { ok: true, value: { applied } };
}

/**
 * Inserts. A durable shard logs the record first (at once, so records keep
 * the order tasks arrive in) and applies it, in that order, once it is
 * durable; an insert cut short is followed by a PARTIAL record. With wait
 * false the reply goes once the record is logged.
 */
async function insert(task: Extract<Task, { op: 'insert' }>): Promise<Reply<InsertResult>> {
  const log = logs.get(task.shard);
  if (log === undefined) return exclusive(task.shard, () => applyInsert(task, shardFor(task.shard)));
  const shard = shardFor(task.shard);
  const logged = log.logUpsert(task.ids, task.vectors, task.payloads, shard.dim);
  const done = exclusive(task.shard, async () => {
    const lsn = await logged;
    const reply = await applyInsert(task, shard);
    const n = task.ids.length / ID_WORDS;
    if (!reply.ok && (reply.applied ?? 0) < n) await log.logPartial(lsn, reply.applied ?? 0);
    log.applied(lsn);
    afterWrite(task.shard, log);
    return reply;
  });
  if (task.wait !== false) return done;
  // logged is all wait false waits for; a failure after that is the shard's (and is logged as PARTIAL)
  done.catch(() => {});
  await logged;
  return { ok: true, value: { applied: task.ids.length / ID_WORDS, acknowledged: true } };
}

/** Deletes by ids, or by filter (logged as the filter: which points it takes is decided in log order, live and on replay). */
async function remove(task: Extract<Task, { op: 'delete' | 'deleteWhere' }>): Promise<Reply<number>> {
  const log = logs.get(task.shard);
  const logged = task.op === 'delete' ? log?.logDelete(task.ids) : log?.logDeleteWhere(task.filter.bytes);
  const done = exclusive(task.shard, async () => {
    const lsn = await logged;
    const shard = shardFor(task.shard);
    const deleted = task.op === 'delete' ? applyDelete(shard, task.ids) : applyDeleteWhere(shard, task.filter.bytes);
    idOrders.get(task.shard)?.deleted(deleted);
    if (log !== undefined && lsn !== undefined) {
      log.applied(lsn);
      afterWrite(task.shard, log);
    }
    return { ok: true, value: deleted } as const;
  });
  if (task.wait !== false || logged === undefined) return done;
  done.catch(() => {});
  await logged;
  return { ok: true, value: 0 };
}

/**
 * A payload update, logged first (by filter: as its program) and applied in
 * log order; an out-of-memory stop part-way is followed by a PARTIAL record.
 */
async function updatePayload(task: Extract<Task, { op: 'updatePayload' }>): Promise<Reply<number>> {
  const log = logs.get(task.shard);
  const body = task.ids !== undefined
    ? { by: 'ids' as const, count: task.ids.length / ID_WORDS, ids: task.ids, arg: task.arg }
    : { by: 'filter' as const, program: task.filter!.bytes, arg: task.arg };
  const logged = log?.logPayloadUpdate(task.kind as PayloadOp, body);
  const done = exclusive(task.shard, async (): Promise<Reply<number>> => {
    const lsn = await logged;
    const r = applyLoggedUpdate(shardFor(task.shard), task.kind, body);
    if (log !== undefined && lsn !== undefined) {
      if ('error' in r && r.error.code === ErrorCode.MEMORY_LIMIT) await log.logPartial(lsn, r.error.applied ?? 0);
      log.applied(lsn);
      afterWrite(task.shard, log);
    }
    return 'error' in r ? fail(r.error.code, r.error.message, r.error.applied) : { ok: true, value: r.updated };
  });
  if (task.wait !== false || logged === undefined) return done;
  done.catch(() => {});
  await logged;
  return { ok: true, value: 0 };
}

/** A payload index created or dropped: logged first and applied in log order, as replay applies it (payload-indexes.ts). */
async function changeIndex(task: Extract<Task, { op: 'createIndex' | 'dropIndex' }>): Promise<Reply<null>> {
  const log = logs.get(task.shard);
  const body = task.op === 'createIndex' ? { field: task.field, type: task.type } : { field: task.field };
  const logged = log?.logIndex(body);
  const done = exclusive(task.shard, async (): Promise<Reply<null>> => {
    const lsn = await logged;
    const err = applyIndexRecord(shardFor(task.shard), task.op === 'createIndex' ? Op.CREATE_INDEX : Op.DELETE_INDEX, body);
    if (log !== undefined && lsn !== undefined) {
      log.applied(lsn);
      afterWrite(task.shard, log);
    }
    return err === undefined ? { ok: true, value: null } : fail(err.code, err.message);
  });
  if (task.wait !== false || logged === undefined) return done;
  done.catch(() => {});
  await logged;
  return { ok: true, value: null };
}

/** A log past its threshold gets a checkpoint, queued behind the writes already waiting. */
function afterWrite(key: ShardKey, log: ShardLog): void {
  if (!log.due || checkpointQueued.has(key)) return;
  checkpointQueued.add(key);
  void exclusive(key, async () => {
    checkpointQueued.delete(key);
    if (shards.has(key) && log.due) await log.checkpoint(shardFor(key));
  }).catch(() => {
    // the log still holds every record: durability is intact, the next write retries
  });
}

async function open(key: ShardKey, durable: Durability, params: Extract<Task, { op: 'create' }>['params']): Promise<Reply<OpenResult>> {
  if (shards.has(key)) return fail('QUIVER_ERR_EXISTS', `shard ${key} exists`);
  const r = await ShardLog.recover(durable, params);
  if (shards.has(key)) {
    r.shard.dispose();
    await r.log.destroy();
    return fail('QUIVER_ERR_EXISTS', `shard ${key} exists`);
  }
  shards.set(key, r.shard);
  logs.set(key, r.log);
  return { ok: true, value: { threadId, replayed: r.replayed, imageLsn: r.imageLsn, fallbackReason: r.fallbackReason } };
}

async function restore(task: Extract<Task, { op: 'restore' }>): Promise<Reply<OpenResult>> {
  if (shards.has(task.shard)) return fail('QUIVER_ERR_EXISTS', `shard ${task.shard} exists`);
  // a disk-mode shard's part holds its originals after the image: they go to its directory first
  const length = restoreOriginals(task.file, task.offset, task.length, task.params.dim, task.durable?.dir);
  const bytes = await readRange(nodeFiles, task.file, task.offset, length);
  if (task.durable !== undefined) {
    // checked before it is written: a bad image never becomes a checkpoint
    verifyImage(bytes, task.params, task.durable.dir);
    await writeCheckpoint({ dir: task.durable.dir, lsn: 0, chunks: [bytes] });
    return open(task.shard, task.durable, task.params);
  }
  const shard = Shard.fromImage(bytes, task.params.build ?? 'release');
  shards.set(task.shard, shard);
  return { ok: true, value: { threadId } };
}

async function writeImage(task: Extract<Task, { op: 'writeImage' }>): Promise<Reply<ImageResult>> {
  return exclusive(task.shard, async () => {
    const shard = shardFor(task.shard);
    const log = logs.get(task.shard);
    if (log !== undefined) return { ok: true, value: await log.writeImage(shard, task.file) } as const;
    const bytes = await writeImageFile(shard, task.file, nodeFiles, (b) => {
      if (b === undefined) imageBusy.delete(task.shard);
      else imageBusy.set(task.shard, b);
    });
    return { ok: true, value: { bytes, lsn: 0 } } as const;
  });
}

/** Drops shards: a write in progress finishes first, then the log closes and the memory goes. */
async function drop(keys: ShardKey[]): Promise<void> {
  await Promise.all(keys.map((key) => exclusive(key, async () => {
    shards.get(key)?.dispose();
    shards.delete(key);
    idOrders.delete(key);
    const log = logs.get(key);
    logs.delete(key);
    await log?.destroy();
  })));
}

async function compact(task: Extract<Task, { op: 'compact' }>): Promise<Reply<CompactionReport>> {
  return exclusive(task.shard, async () => {
    const shard = shardFor(task.shard);
    const run = (o?: { originals: OriginalsFile }): Promise<CompactionReport | undefined> => compactInSteps(shard, yieldToOthers, () => isCancelled(cancelFlags, task.cancel), o);
    // a disk-mode shard's compaction writes its target's originals file (originals-files.ts)
    const originals = logs.get(task.shard)?.originals;
    const report = originals === undefined ? await run() : await originals.compact(shard, run);
    if (report === undefined) return fail('QUIVER_ERR_ABORTED', 'compaction cancelled; the shard is unchanged');
    // the deleted ids are gone from the shard: list the live ones afresh
    idOrders.delete(task.shard);
    // the image is right-sized now: make it the checkpoint
    await logs.get(task.shard)?.checkpoint(shardFor(task.shard));
    return { ok: true, value: report };
  });
}

/** Each shard's ids in id order, for scroll: built on first use, again once deletes made it stale. */
function idOrderOf(key: ShardKey, shard: Shard): IdOrder {
  let order = idOrders.get(key);
  if (order === undefined || order.stale) {
    order = new IdOrder(shard.listIds());
    idOrders.set(key, order);
  }
  return order;
}

async function run(task: Task): Promise<Reply<unknown>> {
  switch (task.op) {
    case 'create':
      if (task.durable !== undefined) return open(task.shard, task.durable, task.params);
      if (shards.has(task.shard)) return fail('QUIVER_ERR_EXISTS', `shard ${task.shard} exists`);
      shards.set(task.shard, Shard.create(task.params));
      return { ok: true, value: { threadId } satisfies OpenResult };
    case 'restore':
      return restore(task);
    case 'drop':
      await drop(task.shards);
      collectGarbage();
      return { ok: true, value: null };
    case 'insert':
      return insert(task);
    case 'delete':
    case 'deleteWhere':
      return remove(task);
    case 'updatePayload':
      return updatePayload(task);
    case 'createIndex':
    case 'dropIndex':
      return changeIndex(task);
    case 'count':
    case 'payloadIndexes':
    case 'get':
    case 'search':
    case 'scroll': {
      const shard = await readable(task.shard);
      return { ok: true, value: runRead(shard, task, () => idOrderOf(task.shard, shard)) };
    }
    case 'checkpoint':
      return exclusive(task.shard, async () => {
        const log = logs.get(task.shard);
        shardFor(task.shard);
        return { ok: true, value: log === undefined ? null : await log.checkpoint(shardFor(task.shard)) };
      });
    case 'writeImage':
      return writeImage(task);
    case 'close':
      // a graceful close: every shard's image at its last write, then its log synced and closed
      await Promise.all(task.shards.map((key) => exclusive(key, async () => {
        const log = logs.get(key);
        if (log === undefined) return;
        if (log.appliedLsn > log.imageLsn) await log.checkpoint(shardFor(key));
        // kept in the map, closed: a write that still came would be refused, never applied unlogged
        await log.close();
      })));
      return { ok: true, value: null };
    case 'stats': {
      const stats: IndexStats = statsOf(await readable(task.shard));
      const log = logs.get(task.shard);
      if (log !== undefined) stats.log = log.figures();
      return { ok: true, value: stats };
    }
    case 'compact':
      return compact(task);
    case 'gc':
      collectGarbage();
      return { ok: true, value: { threadId } satisfies GcResult };
    case 'hang':
    case 'exit':
      // test hooks, off unless the pool was started for tests
      if (testHooks !== true) return fail('QUIVER_ERR_INVALID_ARGUMENT', `unknown task ${task.op}`);
      if (task.op === 'exit') process.exit(1); // the thread dies as if it had crashed
      for (;;) {
        // a worker that never answers (close must still finish)
      }
  }
}

/** piscina's entry point: never throws; failures come back coded. */
export default async function handle(task: Task): Promise<Reply<unknown>> {
  try {
    return await run(task);
  } catch (err) {
    if (err instanceof QuiverError) return fail(err.code, err.message, err.applied);
    return fail('QUIVER_ERR_CORE_TRAP', `worker error: ${(err as Error)?.message ?? String(err)}`);
  }
}
