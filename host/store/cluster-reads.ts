/**
 * A cluster node's reads with the Store's options and answers: search
 * (filter, payloads, quantization params), retrieve, scroll and count, each
 * checked as the Store checks it, sent to one copy of every shard as the
 * Store's read tasks (cluster-tasks.ts) and merged by the Store's own code
 * (scatter.ts, points.ts).
 */
import { quantSearchOption } from '../core/quantization.js';
import type { SearchHits } from '../core/shard.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { compileOptionalFilter } from '../filter/filter.js';
import { packIds, type IdList } from '../ids.js';
import { intIn, invalidArgument, MAX_K } from '../options.js';
import { clusterRunner, clusterShards } from './cluster-tasks.js';
import type { ClusterSearchOptions } from './cluster-options.js';
import { countPoints, retrievePoints, scrollPage } from './points.js';
import { listIndexes } from './payload-indexes.js';
import type { PayloadIndexInfo } from '../core/payload-index.js';
import type { SearchResult } from './protocol.js';
import { mergeTopK } from './scatter.js';
import type { ReadTask } from './shard-tasks.js';
import type { CountOptions, PointRecord, ReadOptions, ScrollOptions, ScrollPage } from './types.js';

/** What the reads need of a dataset: its shard count, dimension and default beam. */
export interface ReadDataset {
  shards: number;
  params: { dim: number; ef: number };
}

/** Runs one task per shard (the map's keys) on a copy of each; answers by shard. */
export type RunTasks = (tasks: Map<number, ReadTask>) => Promise<Map<number, unknown>>;

const everyShard = (d: ReadDataset, task: (shard: number) => ReadTask): Map<number, ReadTask> =>
  new Map(Array.from({ length: d.shards }, (_, s) => [s, task(s)]));

/** The k nearest points over every shard, nearest first; with a filter, each shard's planner path. */
export async function searchCluster(d: ReadDataset, run: RunTasks, query: Float32Array, k: number, o: ClusterSearchOptions): Promise<SearchHits> {
  if (!(query instanceof Float32Array) || query.length !== d.params.dim) throw new QuiverError(ErrorCode.DIMENSION, `a query of ${query.length} values for dim ${d.params.dim}`);
  const kk = intIn(k, 'k', 1, MAX_K, invalidArgument);
  const ef = Math.max(kk, intIn(o.ef ?? d.params.ef, 'options.ef', 1, MAX_K, invalidArgument));
  const filter = compileOptionalFilter(o.filter, 'options.filter');
  const quant = quantSearchOption(o.quantization, 'options.quantization', invalidArgument);
  const withPayload = o.withPayload === true;
  const answers = await run(everyShard(d, (s) => ({
    op: 'search', shard: String(s), queries: query, n: 1, k: kk, ef, withPayload, ...(filter === undefined ? {} : { filter }), ...(quant === undefined ? {} : { quant }),
  })));
  // in shard order, as a single process merges them: equal distances keep one order whichever node answered first
  const parts = [...answers].sort((a, b) => a[0] - b[0]).map(([, v]) => v as SearchResult);
  return mergeTopK(parts, 0, kk, withPayload);
}

/** The points of ids that exist, in the order asked, each once. */
export function retrieveCluster(d: ReadDataset, run: RunTasks, ids: IdList, o: ReadOptions = {}): Promise<PointRecord[]> {
  return retrievePoints(runner(run), clusterShards(d.shards, d.params.dim), packIds(ids, false), o.withVector ?? true, o.withPayload ?? true);
}

/** One page in id order from `offset` on, and where the next starts (as Store.scroll). */
export function scrollCluster(d: ReadDataset, run: RunTasks, o: ScrollOptions = {}): Promise<ScrollPage> {
  const limit = intIn(o.limit ?? 10, 'options.limit', 1, MAX_K, invalidArgument);
  const from = o.offset === undefined ? undefined : packIds([o.offset], false);
  const filter = compileOptionalFilter(o.filter, 'options.filter');
  return scrollPage(runner(run), clusterShards(d.shards, d.params.dim), from, limit, o.withVector ?? true, o.withPayload ?? true, filter);
}

/** Live points, or those the filter matches, counted exactly. */
export function countCluster(d: ReadDataset, run: RunTasks, o: CountOptions = {}): Promise<number> {
  return countPoints(runner(run), clusterShards(d.shards, d.params.dim), compileOptionalFilter(o.filter, 'options.filter'));
}

/** The payload indexes, each with its points summed over the shards (as Store.payloadIndexes). */
export function indexesCluster(d: ReadDataset, run: RunTasks): Promise<PayloadIndexInfo[]> {
  return listIndexes(runner(run), clusterShards(d.shards, d.params.dim));
}

/** points.ts asks one shard at a time; each becomes a batch of one. */
const runner = (run: RunTasks) => clusterRunner(async (shard, task) => (await run(new Map([[shard, task]]))).get(shard));
