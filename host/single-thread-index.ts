import type { MetricName } from './core/abi.js';
import { compactNow, type CompactionReport } from './core/compaction.js';
import type { Build } from './core/module.js';
import {
  checkPayloadIndexField, checkPayloadIndexType, createPayloadIndex, dropPayloadIndex, payloadIndexes, type PayloadIndexInfo, type PayloadIndexType,
} from './core/payload-index.js';
import { quantizationOption, quantSearchOption, type QuantizationOptions, type QuantSearch } from './core/quantization.js';
import { Shard, type SearchHits } from './core/shard.js';
import { statsOf, type IndexStats } from './core/stats.js';
import { ErrorCode, QuiverError } from './errors.js';
import { ID_WORDS, packId, packIds, type Id, type IdList } from './ids.js';
import { graphParams, intIn, invalidArgument, MAX_K, rangeError } from './options.js';
import { decodePayload, encodePayloads, type Payload } from './payload.js';
import { compileOptionalFilter, type CompiledFilter, type Filter } from './filter/filter.js';
import { flattenBatch, toQueries, toQuery, type Vector, type VectorBatch } from './vectors.js';

export interface IndexOptions {
  /** Vector dimension, 1..65536. */
  dim: number;
  /** 'l2' (squared Euclidean), 'ip' (1 - dot) or 'cosine' (1 - cosine). Default 'l2'. */
  metric?: MetricName;
  /** Links per node above level 0 (level 0 has 2M). Default 16. */
  M?: number;
  /** Beam width while inserting. Default 200. */
  efConstruction?: number;
  /** Default beam width of a search. Default 64. */
  ef?: number;
  /** Seed of the level generator: same seed and inserts give the same graph. */
  seed?: number | bigint;
  /** 'release' (default) or 'debug' (asserts on; what the tests use). */
  build?: Build;
  /** int8 scalar quantization (docs/quantization.md): `{ scalar: { type: 'int8', quantile?: 0.99 } }`. Default: none (f32 records). */
  quantization?: QuantizationOptions | null;
}

export interface SearchOptions {
  /** Beam width for this search; raised to k when smaller. */
  ef?: number;
  /** Also return each hit's payload (`payloads`, parallel to `ids`). */
  withPayload?: boolean;
  /** Only points whose payload (and id) satisfy this Qdrant filter (docs/filtering.md); the hits then say which `path` the planner took. */
  filter?: Filter | CompiledFilter | null;
  /** On a quantized index: `{ ignore, rescore, oversampling }` as Qdrant's `params.quantization` (docs/quantization.md). Ignored otherwise. */
  quantization?: QuantSearch | null;
}

/**
 * A single-thread HNSW index over one WASM instance, for direct embedding.
 * Everything is synchronous. Bad input throws a QuiverError and changes
 * nothing; `dispose()` (or a compaction) gives the memory back to the OS.
 */
export class Index {
  #shard: Shard;
  #ef: number;

  constructor(options: IndexOptions);
  /** @internal */
  constructor(options: IndexOptions, shard: Shard);
  constructor(options: IndexOptions, shard?: Shard) {
    if (shard !== undefined) {
      this.#shard = shard;
      this.#ef = shard.stats().ef;
      return;
    }
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const { dim, metric, M, efConstruction, ef } = graphParams(options, rangeError);
    let seed: bigint | undefined;
    if (options.seed !== undefined) {
      if (typeof options.seed !== 'bigint' && !Number.isSafeInteger(options.seed)) {
        throw new RangeError('options.seed must be an integer or a bigint');
      }
      seed = BigInt.asUintN(64, BigInt(options.seed));
    }
    const build = options.build ?? 'release';
    if (build !== 'release' && build !== 'debug') throw new RangeError("options.build must be 'release' or 'debug'");
    const quant = quantizationOption(options.quantization, 'options.quantization', rangeError);
    if (quant?.alwaysRam === false) {
      throw new RangeError('options.quantization.scalar.alwaysRam: false needs a durable Store (its data directory holds the originals); an Index keeps everything in RAM');
    }
    const quantization = quant === undefined ? {} : { quantization: { type: quant.type, quantile: quant.quantile } };
    this.#shard = Shard.create({ dim, metric, M, efConstruction, ef, seed, build, ...quantization });
    this.#ef = ef;
  }

  /** Loads an image made by `toImage`, checking magic, layout version and checksum. */
  static fromImage(bytes: Uint8Array, options: { build?: Build } = {}): Index {
    const shard = Shard.fromImage(bytes, options.build ?? 'release');
    return new Index({ dim: shard.dim }, shard);
  }

  get dim(): number {
    return this.#shard.dim;
  }

  get metric(): MetricName {
    return this.#shard.metric;
  }

  /** Number of live vectors. */
  get size(): number {
    return this.#shard.stats().live;
  }

  /**
   * Adds vectors; an id already present is replaced (upsert). The whole batch
   * is validated first, so bad input changes nothing. Returns the count added.
   */
  add(ids: IdList, vectors: VectorBatch, payloads?: readonly Payload[]): number {
    const packed = packIds(ids, true);
    const n = packed.length / ID_WORDS;
    const flat = flattenBatch(vectors, n, this.dim);
    const encoded = encodePayloads(payloads, n);
    const dim = this.dim;
    for (let i = 0; i < n; i++) {
      if (!this.#shard.insert(packed, i, flat, i * dim, encoded?.[i])) {
        throw new QuiverError(
          ErrorCode.MEMORY_LIMIT,
          `out of WASM memory after ${i} of ${n} vectors (one index is limited to 4 GiB)`,
          { applied: i },
        );
      }
    }
    return n;
  }

  /** The k nearest live vectors, nearest first (among those `options.filter` matches). */
  search(query: Vector, k: number, options: SearchOptions = {}): SearchHits {
    const q = toQuery(query, this.dim);
    const kk = intIn(k, 'k', 1, MAX_K, invalidArgument);
    const ef = intIn(options.ef ?? this.#ef, 'options.ef', 1, MAX_K, invalidArgument);
    const filter = compileOptionalFilter(options.filter, 'options.filter');
    const quant = quantSearchOption(options.quantization, 'options.quantization', invalidArgument);
    return decoded(this.#shard.search(q, 0, kk, ef, options.withPayload === true, filter, quant));
  }

  /** One search per query (flat n*dim, or an array of vectors). */
  searchBatch(queries: VectorBatch, k: number, options: SearchOptions = {}): SearchHits[] {
    const { flat, n } = toQueries(queries, this.dim);
    const kk = intIn(k, 'k', 1, MAX_K, invalidArgument);
    const ef = intIn(options.ef ?? this.#ef, 'options.ef', 1, MAX_K, invalidArgument);
    const filter = compileOptionalFilter(options.filter, 'options.filter');
    const quant = quantSearchOption(options.quantization, 'options.quantization', invalidArgument);
    const out: SearchHits[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = decoded(this.#shard.search(flat, i * this.dim, kk, ef, options.withPayload === true, filter, quant));
    return out;
  }

  /** Live points, or those `filter` matches; exact. */
  count(filter?: Filter | CompiledFilter | null): number {
    const compiled = compileOptionalFilter(filter, 'filter');
    return compiled === undefined ? this.size : this.#shard.countMatching(compiled);
  }

  /**
   * An index on payload `field` (a key path, as filters write it) of `type`
   * ('keyword', 'integer', 'float', 'bool' or 'uuid'), built from the stored
   * payloads and kept up to date by every write; filters on the field use
   * it. The same field and type again changes nothing; another type
   * replaces it. Throws INVALID_ARGUMENT (bad field or type, more than
   * MAX_PAYLOAD_INDEXES) or MEMORY_LIMIT, the index unchanged.
   */
  createPayloadIndex(field: string, type: PayloadIndexType): void {
    createPayloadIndex(this.#shard, checkPayloadIndexField(field), checkPayloadIndexType(type));
  }

  /** Drops the payload index on `field`; false when there was none. */
  dropPayloadIndex(field: string): boolean {
    return dropPayloadIndex(this.#shard, checkPayloadIndexField(field));
  }

  /** The payload indexes, sorted by field; `points`: live points with at least one value of the index's type at the field. */
  payloadIndexes(): PayloadIndexInfo[] {
    return payloadIndexes(this.#shard);
  }

  /** Removes ids (tombstones until compaction); unknown ids are skipped. Returns the count removed. */
  remove(ids: IdList): number {
    const packed = packIds(ids, false);
    let removed = 0;
    for (let i = 0; i < packed.length / ID_WORDS; i++) if (this.#shard.remove(packed, i)) removed++;
    return removed;
  }

  /** The stored vector of an id (unit length under cosine), or undefined. */
  get(id: Id): Float32Array | undefined {
    return this.#shard.get(packId(id), 0)?.vector;
  }

  /** The payload stored with an id (undefined when it has none or is absent). */
  getPayload(id: Id): Payload {
    return decodePayload(this.#shard.get(packId(id), 0)?.payload);
  }

  has(id: Id): boolean {
    return this.get(id) !== undefined;
  }

  /**
   * Repairs the graph around tombstones, renumbers the live nodes densely into
   * a new right-sized memory, drops the old one and runs a GC so its pages go
   * back to the OS.
   */
  compact(): CompactionReport {
    return compactNow(this.#shard);
  }

  stats(): IndexStats {
    return statsOf(this.#shard);
  }

  /** Walks the whole graph and id map; `ok` is true when nothing is wrong. */
  checkIntegrity(): ReturnType<Shard['integrity']> {
    return this.#shard.integrity();
  }

  /**
   * The used prefix of the index's memory, sealed with its length and a
   * checksum. Compact first for the smallest image.
   */
  toImage(): Uint8Array {
    return this.#shard.toImage();
  }

  /** Releases the index; its memory goes back to the OS at the next GC. */
  dispose(): void {
    this.#shard.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** A shard's hits with their payloads decoded. */
function decoded(hits: ReturnType<Shard['search']>): SearchHits {
  const { ids, distances, payloads, path } = hits;
  return {
    ids, distances,
    ...(payloads === undefined ? {} : { payloads: payloads.map(decodePayload) }),
    ...(path === undefined ? {} : { paths: [path] }),
  };
}
