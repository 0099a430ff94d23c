/**
 * The shared body of Store.search and Store.searchBatch, over queries
 * already checked against the dataset: the options checked (k, ef, filter,
 * quantization params), the coalesced scatter, and the search metrics.
 */
import { quantSearchOption } from '../core/quantization.js';
import type { SearchHits } from '../core/shard.js';
import { compileOptionalFilter } from '../filter/filter.js';
import type { Metrics } from '../metrics.js';
import { intIn, invalidArgument, MAX_K } from '../options.js';
import type { Dataset } from './catalog.js';
import type { SearchCoalescer } from './coalescer.js';
import { abortError } from './scatter.js';
import type { SearchOptions } from './types.js';

/** The top k of each of the n queries in `flat` (n * dim, validated). */
export async function searchFlat(
  coalescer: SearchCoalescer, metrics: Metrics, ds: Dataset, flat: Float32Array, n: number, k: number, options: SearchOptions,
): Promise<SearchHits[]> {
  const kk = intIn(k, 'k', 1, MAX_K, invalidArgument);
  const ef = intIn(options.ef ?? ds.ef, 'options.ef', 1, MAX_K, invalidArgument);
  const filter = compileOptionalFilter(options.filter, 'options.filter');
  // checked on every dataset (a bad value is a bad call), used by quantized shards only
  const quant = quantSearchOption(options.quantization, 'options.quantization', invalidArgument);
  const signal = options.signal;
  if (signal?.aborted) throw abortError(signal);
  const stopTimer = metrics.search.duration.startTimer({ dataset: ds.name });
  const merged = await coalescer.search(ds, flat, n, kk, ef, options.withPayload === true, filter, quant);
  stopTimer();
  for (const path of merged.flatMap((h) => h.paths ?? [])) metrics.search.filtered.inc({ dataset: ds.name, path });
  if (signal?.aborted) throw abortError(signal);
  return merged;
}
