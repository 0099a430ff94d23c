/**
 * The worker side of the Store: each worker thread owns the shards created
 * on it (their WebAssembly memories live here and nowhere else) and runs the
 * tasks the host routes to it. Long tasks (insert, compaction) run in
 * bounded steps and yield between them, so searches on the same thread get
 * in; writes to one shard are serialised.
 */
import { threadId, workerData } from 'node:worker_threads';
import { collectGarbage } from '../core/gc.js';
import { Shard } from '../core/shard.js';
import { QuiverError } from '../errors.js';
import { statsOf } from '../index-class.js';
import { isCancelled } from './cancel.js';
import {
  ID_WORDS, type CompactResult, type GcResult, type GetResult, type InsertResult, type Reply, type SearchResult,
  type ShardKey, type ShardStats, type Task,
} from './protocol.js';

const cancelFlags = new Int32Array((workerData as { cancel: SharedArrayBuffer }).cancel);
const shards = new Map<ShardKey, Shard>();
const writeLocks = new Map<ShardKey, Promise<unknown>>();

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
      for (; applied < end; applied++) {
        if (!shard.insert(task.ids, applied, task.vectors, applied * dim, task.payloads?.[applied])) {
          return fail('QUIVER_ERR_MEMORY_LIMIT', `out of WASM memory after ${applied} of ${n} vectors`, applied);
        }
      }
      if (applied < n) await yieldToOthers();
    }
    return { ok: true, value: { applied } };
  });
}

async function compact(task: Extract<Task, { op: 'compact' }>): Promise<Reply<CompactResult>> {
  return exclusive(task.shard, async () => {
    const shard = shardFor(task.shard);
    const before = statsOf(shard);
    const job = shard.startCompaction();
    try {
      while (!job.step()) {
        await yieldToOthers();
        if (isCancelled(cancelFlags, task.cancel)) {
          job.abandon();
          return fail('QUIVER_ERR_ABORTED', 'compaction cancelled; the shard is unchanged');
        }
      }
    } catch (err) {
      job.abandon();
      throw err;
    }
    job.finish();
    collectGarbage();
    return {
      ok: true,
      value: { committedBefore: before.committedBytes, committedAfter: shard.committedBytes, removedTombstones: before.deletedNodes },
    };
  });
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
        return { ok: true, value: deleted };
      });
    case 'get':
      return get(task);
    case 'search':
      return search(task);
    case 'ids':
      return { ok: true, value: shardFor(task.shard).listIds() };
    case 'stats':
      return { ok: true, value: statsOf(shardFor(task.shard)) satisfies ShardStats };
    case 'compact':
      return compact(task);
    case 'gc':
      collectGarbage();
      return { ok: true, value: { threadId } satisfies GcResult };
    case 'hang':
      // test hook: a worker that never answers (close must still finish)
      for (;;) {
        // spin
      }
    case 'exit':
      // test hook: the thread dies as if it had crashed
      process.exit(1);
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
