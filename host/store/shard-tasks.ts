/**
 * The read tasks of protocol.ts run against one shard: search, get, scroll,
 * count and the list of payload indexes. One body for the worker (worker.ts, on the shards of its
 * thread) and for a cluster node (cluster-tasks.ts, on its copies), so a
 * read answers the same wherever the shard lives.
 */
import type { FilterPath, Shard } from '../core/shard.js';
import { payloadIndexes, type PayloadIndexInfo } from '../core/payload-index.js';
import type { IdOrder } from './id-order.js';
import { ID_WORDS, type GetResult, type ScrollResult, type SearchResult, type Task } from './protocol.js';
import { transientF32, transientU32, transientU8 } from '../memory/transient.js';

export type ReadTask = Extract<Task, { op: 'search' | 'get' | 'scroll' | 'count' | 'payloadIndexes' }>;

export function isReadTask(task: { op: string }): task is ReadTask {
  return task.op === 'search' || task.op === 'get' || task.op === 'scroll' || task.op === 'count' || task.op === 'payloadIndexes';
}

/** Runs a read task on `shard`; `order` gives the shard's ids in id order (for scroll, built on first use). */
export function runRead(shard: Shard, task: ReadTask, order: () => IdOrder): SearchResult | GetResult | ScrollResult | PayloadIndexInfo[] | number {
  switch (task.op) {
    case 'search':
      return search(shard, task);
    case 'get':
      return get(shard, task);
    case 'scroll':
      return scroll(shard, task, order());
    case 'count':
      return task.filter === undefined ? shard.stats().live : shard.countMatching(task.filter);
    case 'payloadIndexes':
      return payloadIndexes(shard);
  }
}

/**
 * Up to `limit` live points from id `from` on, in id order: a seek in the
 * shard's IdOrder, then one read per point (which is also the liveness
 * check that skips deleted ids).
 */
function scroll(shard: Shard, task: Extract<Task, { op: 'scroll' }>, order: IdOrder): ScrollResult {
  const { withVector, withPayload } = task;
  // never more room than the shard has points (limit can be 100,001)
  const limit = Math.min(task.limit, order.size);
  // replies in transient buffers: a big one goes to the host by reference, never through malloc (transient.ts)
  const ids = transientU32(limit * ID_WORDS);
  const vectors = withVector ? transientF32(limit * shard.dim) : undefined;
  const payloads = withPayload ? new Array<Uint8Array | undefined>() : undefined;
  let n = 0;
  const filter = task.filter;
  order.walk(task.from, 0, (list, row) => {
    if (filter !== undefined && !shard.matches(list, row, filter)) return true;
    const point = shard.get(list, row);
    if (point === undefined) return true;
    ids.set(list.subarray(row * ID_WORDS, (row + 1) * ID_WORDS), n * ID_WORDS);
    vectors?.set(point.vector, n * shard.dim);
    payloads?.push(point.payload);
    return ++n < limit;
  });
  const value: ScrollResult = { ids: ids.subarray(0, n * ID_WORDS) };
  if (vectors !== undefined) value.vectors = vectors.subarray(0, n * shard.dim);
  if (payloads !== undefined) value.payloads = payloads;
  return value;
}

function search(shard: Shard, task: Extract<Task, { op: 'search' }>): SearchResult {
  const { n, k } = task;
  const counts = transientU32(n);
  const ids = transientU32(n * k * ID_WORDS);
  const distances = transientF32(n * k);
  const payloads = task.withPayload === true ? new Array<Uint8Array | undefined>(n * k) : undefined;
  const paths = task.filter === undefined ? undefined : new Array<FilterPath>(n);
  for (let q = 0; q < n; q++) {
    counts[q] = shard.searchPacked(task.queries, q * shard.dim, k, task.ef, ids, q * k * ID_WORDS, distances, q * k, payloads, task.filter, task.quant);
    if (paths !== undefined) paths[q] = shard.lastFilterPath!;
  }
  const value: SearchResult = { counts, ids, distances };
  if (payloads !== undefined) value.payloads = payloads;
  if (paths !== undefined) value.paths = paths;
  return value;
}

function get(shard: Shard, task: Extract<Task, { op: 'get' }>): GetResult {
  const n = task.ids.length / ID_WORDS;
  const found = transientU8(n);
  const vectors = transientF32(n * shard.dim);
  const payloads = task.withPayload === true ? new Array<Uint8Array | undefined>(n) : undefined;
  for (let i = 0; i < n; i++) {
    const r = shard.get(task.ids, i);
    if (r !== undefined) {
      found[i] = 1;
      vectors.set(r.vector, i * shard.dim);
      if (payloads !== undefined) payloads[i] = r.payload;
    }
  }
  return payloads === undefined ? { found, vectors } : { found, vectors, payloads };
}
