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
import { Shard } from '../core/shard.js';
import { statsOf, type IndexStats } from '../core/stats.js';
import { QuiverError } from '../errors.js';
import { isCancelled } from './cancel.js';
import { IdOrder } from './id-order.js';
import {
  ID_WORDS, type GcResult, type GetResult, type InsertResult, type Reply, type ScrollResult, type SearchResult,
  type ShardKey, type Task,
} from './protocol.js';

const { cancel, testHooks } = workerData as { cancel: SharedArrayBuffer; testHooks?: boolean };
// a growable buffer: this view tracks its length as the host adds slots
const cancelFlags = new Int32Array(cancel);
const shards = new Map<ShardKey, Shard>();
const writeLocks = new Map<ShardKey, Promise<unknown>>();
/** Each shard's ids in id order, for scroll; built on the first scroll. */
const idOrders = new Map<ShardKey, IdOrder>();

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

async function insert(task: Extract<Task, { op: 'insert' }>): Promise<Reply<InsertResult>> {
  return exclusive(task.shard, async () => {
    const shard = shardFor(task.shard);
    const n = task.ids.length / ID_WORDS;
    const dim = shard.dim;
    let applied = 0;
    while (applied < n) {
      if (isCancelled(cancelFlags, task.cancel)) {
        return fail('QUIVER_ERR_ABORTED', `insert cancelled after ${applied} of ${n} vectors`, applied);
      }
      const end = Math.min(n, applied + INSERT_STEP);
      const from = applied;
      try {
        for (; applied < end; applied++) {
          if (!shard.insert(task.ids, applied, task.vectors, applied * dim, task.payloads?.[applied])) {
            return fail('QUIVER_ERR_MEMORY_LIMIT', `out of WASM memory after ${applied} of ${n} vectors`, applied);
          }
        }
      } finally {
        // what went in is listed for scroll, whatever stopped the step
        idOrders.get(task.shard)?.inserted(task.ids, from, applied);
      }
      if (applied < n) await yieldToOthers();
    }
    return { ok: true, value: { applied } };
  });
}

async function compact(task: Extract<Task, { op: 'compact' }>): Promise<Reply<CompactionReport>> {
  return exclusive(task.shard, async () => {
    const report = await compactInSteps(shardFor(task.shard), yieldToOthers, () => isCancelled(cancelFlags, task.cancel));
    if (report === undefined) return fail('QUIVER_ERR_ABORTED', 'compaction cancelled; the shard is unchanged');
    // the deleted ids are gone from the shard: list the live ones afresh
    idOrders.delete(task.shard);
    return { ok: true, value: report };
  });
}

/**
 * Up to `limit` live points from id `from` on, in id order: a seek in the
 * shard's IdOrder, then one read per point (which is also the liveness
 * check that skips deleted ids).
 */
function scroll(task: Extract<Task, { op: 'scroll' }>): Reply<ScrollResult> {
  const shard = shardFor(task.shard);
  let order = idOrders.get(task.shard);
  if (order === undefined || order.stale) {
    order = new IdOrder(shard.listIds());
    idOrders.set(task.shard, order);
  }
  const { withVector, withPayload } = task;
  // never more room than the shard has points (limit can be 100,001)
  const limit = Math.min(task.limit, order.size);
  const ids = new Uint32Array(limit * ID_WORDS);
  const vectors = withVector ? new Float32Array(limit * shard.dim) : undefined;
  const payloads = withPayload ? new Array<Uint8Array | undefined>() : undefined;
  let n = 0;
  order.walk(task.from, 0, (list, row) => {
    const point = shard.get(list, row);
    if (point === undefined) return true;
    ids.set(list.subarray(row * ID_WORDS, (row + 1) * ID_WORDS), n * ID_WORDS);
    vectors?.set(point.vector, n * shard.dim);
    payloads?.push(point.payload);
    return ++n < limit;
  });
  const value: ScrollResult = { ids: ids.slice(0, n * ID_WORDS) };
  if (vectors !== undefined) value.vectors = vectors.slice(0, n * shard.dim);
  if (payloads !== undefined) value.payloads = payloads;
  return { ok: true, value };
}

function search(task: Extract<Task, { op: 'search' }>): Reply<SearchResult> {
  const shard = shardFor(task.shard);
  const { n, k } = task;
  const counts = new Uint32Array(n);
  const ids = new Uint32Array(n * k * ID_WORDS);
  const distances = new Float32Array(n * k);
  const payloads = task.withPayload === true ? new Array<Uint8Array | undefined>(n * k) : undefined;
  for (let q = 0; q < n; q++) {
    counts[q] = shard.searchPacked(task.queries, q * shard.dim, k, task.ef, ids, q * k * ID_WORDS, distances, q * k, payloads);
  }
  return { ok: true, value: payloads === undefined ? { counts, ids, distances } : { counts, ids, distances, payloads } };
}

function get(task: Extract<Task, { op: 'get' }>): Reply<GetResult> {
  const shard = shardFor(task.shard);
  const n = task.ids.length / ID_WORDS;
  const found = new Uint8Array(n);
  const vectors = new Float32Array(n * shard.dim);
  const payloads = task.withPayload === true ? new Array<Uint8Array | undefined>(n) : undefined;
  for (let i = 0; i < n; i++) {
    const r = shard.get(task.ids, i);
    if (r !== undefined) {
      found[i] = 1;
      vectors.set(r.vector, i * shard.dim);
      if (payloads !== undefined) payloads[i] = r.payload;
    }
  }
  return { ok: true, value: payloads === undefined ? { found, vectors } : { found, vectors, payloads } };
}

async function run(task: Task): Promise<Reply<unknown>> {
  switch (task.op) {
    case 'create':
      if (shards.has(task.shard)) return fail('QUIVER_ERR_EXISTS', `shard ${task.shard} exists`);
      shards.set(task.shard, Shard.create(task.params));
      return { ok: true, value: threadId };
    case 'drop':
      // a write in progress finishes first, then the memory goes
      await Promise.all(task.shards.map((key) => exclusive(key, async () => {
        shards.get(key)?.dispose();
        shards.delete(key);
        idOrders.delete(key);
      })));
      collectGarbage();
      return { ok: true, value: null };
    case 'insert':
      return insert(task);
    case 'delete':
      return exclusive(task.shard, async () => {
        const shard = shardFor(task.shard);
        let deleted = 0;
        for (let i = 0; i < task.ids.length / ID_WORDS; i++) if (shard.remove(task.ids, i)) deleted++;
        idOrders.get(task.shard)?.deleted(deleted);
        return { ok: true, value: deleted };
      });
    case 'get':
      return get(task);
    case 'search':
      return search(task);
    case 'scroll':
      return scroll(task);
    case 'stats':
      return { ok: true, value: statsOf(shardFor(task.shard)) satisfies IndexStats };
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
