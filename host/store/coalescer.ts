import type { SearchHits } from '../core/shard.js';
import type { Dataset } from './catalog.js';
import type { CompiledFilter } from '../filter/compile.js';
import type { QuantSearch } from '../core/quantization.js';
import type { SearchResult, Task } from './protocol.js';
import { mergeTopK, type ShardRef } from './scatter.js';
import { transientF32 } from '../memory/transient.js';

/** Queries one coalesced search task may carry. */
const MAX_BATCH_QUERIES = 256;

interface Batch {
  ds: Dataset;
  k: number;
  ef: number;
  withPayload: boolean;
  filter: CompiledFilter | undefined;
  quant: QuantSearch | undefined;
  n: number;
  parts: Float32Array[];
  waiters: { offset: number; n: number; resolve: (hits: SearchHits[]) => void; reject: (err: unknown) => void }[];
}

type RunSearch = (ref: ShardRef, task: Extract<Task, { op: 'search' }>) => Promise<SearchResult>;

/**
 * Searches arriving in the same turn of the event loop for the same
 * dataset, k, ef, filter and quantization params travel together: one
 * task per shard for the whole batch. Under concurrent load this is what keeps the main thread from
 * being the bottleneck (a message per query per shard costs more than a
 * small search).
 */
export class SearchCoalescer {
  readonly #batches = new Map<string, Batch>();
  readonly #run: RunSearch;

  constructor(run: RunSearch) {
    this.#run = run;
  }

  /** The top k of each of the n validated queries in `flat`. */
  search(
    ds: Dataset, flat: Float32Array, n: number, k: number, ef: number, withPayload: boolean, filter?: CompiledFilter, quant?: QuantSearch,
  ): Promise<SearchHits[]> {
    // the shard key names this dataset instance; searches with the same filter program and quantization params travel together
    const program = filter === undefined ? '' : Buffer.from(filter.bytes.buffer, filter.bytes.byteOffset, filter.bytes.byteLength).toString('base64');
    const q = quant === undefined ? '' : `${String(quant.ignore)}/${String(quant.rescore)}/${String(quant.oversampling)}`;
    const key = `${ds.shards[0]!.key}/${k}/${ef}/${withPayload}/${program}/${q}`;
    let batch = this.#batches.get(key);
    if (batch === undefined || batch.n + n > MAX_BATCH_QUERIES) {
      batch = { ds, k, ef, withPayload, filter, quant, n: 0, parts: [], waiters: [] };
      this.#batches.set(key, batch);
      const b = batch;
      setImmediate(() => {
        if (this.#batches.get(key) === b) this.#batches.delete(key);
        void this.#flush(b);
      });
    }
    const offset = batch.n;
    batch.parts.push(flat);
    batch.n += n;
    return new Promise((resolve, reject) => batch.waiters.push({ offset, n, resolve, reject }));
  }

  async #flush(batch: Batch): Promise<void> {
    const { ds, k, ef, n, withPayload, filter, quant } = batch;
    try {
      // one copy of the queries serves every shard (shared, out of malloc, when big: transient.ts)
      const shared = transientF32(n * ds.dim);
      let at = 0;
      for (const part of batch.parts) {
        shared.set(part, at);
        at += part.length;
      }
      const parts = await Promise.all(ds.shards.map((ref) =>
        this.#run(ref, {
          op: 'search', shard: ref.key, queries: shared, n, k, ef, withPayload, ...(filter === undefined ? {} : { filter }), ...(quant === undefined ? {} : { quant }),
        })));
      for (const w of batch.waiters) {
        w.resolve(Array.from({ length: w.n }, (_, q) => mergeTopK(parts, w.offset + q, k, withPayload)));
      }
    } catch (err) {
      for (const w of batch.waiters) w.reject(err);
    }
  }
}
