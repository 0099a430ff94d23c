import { ErrorCode, QuiverError } from '../errors.js';
import { ID_WORDS, unpackId, type Id } from '../ids.js';
import {
  ERR_CORRUPT, ERR_INVALID, ERR_NOT_FOUND, ERR_OUT_OF_MEMORY, FLAG_UUID, H, HEADER_BYTES, HEADER_PTR,
  IO, LAYOUT, LAYOUT_VERSION, MAGIC, MAX_PAYLOAD_BYTES, Metric, METRIC_NAMES, OK, PAGE_BYTES,
  RESULT, RESULT_BYTES, type CoreExports, type IntegrityReport, type MetricName, type RawStats,
} from './abi.js';
import { CoreAbort, instantiate, type Build } from './module.js';
import { coreStatusError, newMemory, pagesFor } from './status.js';
import type { CompiledFilter } from '../filter/compile.js';
import { checkPlanner, DEFAULT_FILTER_PLANNER, FILTER_PATHS, filterStatus, programOf, type FilterPath, type FilterPlanner } from './filter-planner.js';
import { quantInitArgs, rescoreArg, type QuantSearch, type ShardQuantization } from './quantization.js';
import { integrityOf, listIdsOf, rawStatsOf } from './shard-reads.js';
import { afterInsert, candidateBytes, checkPairing, ignoreRefused, readOriginal, rerankFromFile, type DiskOptions, type OriginalsFile } from './originals.js';

export { coreStatusError, DEFAULT_FILTER_PLANNER, type FilterPath, type FilterPlanner };

export interface ShardParams {
  dim: number;
  metric: MetricName;
  M: number;
  efConstruction: number;
  ef: number;
  seed?: bigint;
  build?: Build;
  /** int8 codes in the node records, f32 originals apart (assembly/qshard.ts; alwaysRam false: in a file, originals.ts); absent: f32 records. */
  quantization?: ShardQuantization;
}

export interface SearchHits {
  ids: Id[];
  distances: Float32Array;
  /** With `withPayload`: each hit's payload (undefined where it has none). */
  payloads?: unknown[];
  /** A filtered search: which way each shard's planner went, one entry per shard searched (docs/filtering.md). */
  paths?: FilterPath[];
}


/** Word of a packed id (ids.ts) that holds its kind; the words before it are the id's 16 bytes. */
const ID_KIND_WORD = 4;
/** Ids the core lists (LISTED ID records) are packed as host/ids.ts packs them. */
if (LAYOUT.LISTED_BYTES !== ID_WORDS * 4 || LAYOUT.IO_ID_HI !== LAYOUT.IO_ID_LO + 8 || LAYOUT.RESULT_ID_HI !== LAYOUT.RESULT_ID_LO + 8) {
  throw new Error('host/ids.ts packing does not match the core\'s id records');
}

/**
 * One WASM instance and its linear memory: the unit the store shards by.
 * Validation of user input is the caller's job (Index, Store); a Shard maps
 * core status codes to coded errors (coreStatusError) and turns a trap into
 * CORE_TRAP, after which the shard refuses all calls.
 */
export class Shard {
  readonly dim: number;
  readonly metric: MetricName;
  readonly build: Build;
  #memory: WebAssembly.Memory;
  #core: CoreExports;
  #buffer!: ArrayBuffer;
  #u8!: Uint8Array;
  #u32!: Uint32Array;
  #f32!: Float32Array;
  #f64!: Float64Array;
  #broken: unknown = undefined;
  #planner: FilterPlanner = { ...DEFAULT_FILTER_PLANNER };
  #lastPath: FilterPath | undefined;
  #disposed = false;
  /** Disk mode: the file of this shard's originals (the owner closes it; dispose does not). */
  #originals: OriginalsFile | undefined;

  private constructor(memory: WebAssembly.Memory, core: CoreExports, build: Build, disk?: DiskOptions) {
    this.#memory = memory;
    this.#core = core;
    this.build = build;
    this.#views();
    this.dim = this.#u32[(HEADER_PTR + H.DIM) >>> 2]!;
    this.metric = METRIC_NAMES[this.#u32[(HEADER_PTR + H.METRIC) >>> 2]!]!;
    checkPairing(this, disk);
    this.#originals = disk?.originals;
  }

  /**
   * An empty shard with room for `capacity` vectors before it grows. Disk
   * mode (quantization.alwaysRam false) needs `disk.originals`; `generation`
   * is a compaction's (@internal: spilled from the start).
   */
  static create(params: ShardParams, capacity = 0, disk?: DiskOptions & { generation?: number }): Shard {
    const build = params.build ?? 'release';
    const memory = newMemory(1, 'a new shard');
    const core = instantiate(build, memory);
    const seed = params.seed ?? 0x9e3779b97f4a7c15n;
    const q = quantInitArgs(params.quantization);
    if ((q[2] === 1) !== (disk?.originals !== undefined)) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, q[2] === 1 ? 'alwaysRam: false needs an originals file ({ originals })' : 'an originals file needs quantization with alwaysRam: false');
    }
    const status = core.init(params.dim, Metric[params.metric], params.M, params.efConstruction, seed, capacity, ...q, disk?.generation ?? 0);
    if (status === ERR_OUT_OF_MEMORY) {
      throw new QuiverError(ErrorCode.MEMORY_LIMIT, `cannot reserve memory for ${capacity} vectors of dim ${params.dim}`);
    }
    if (status === ERR_INVALID) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'the core rejected the index parameters');
    if (status !== OK) throw coreStatusError(status, 'init');
    core.setEf(params.ef);
    return new Shard(memory, core, build, disk);
  }

  /** A shard over a copy of an image made by `toImage`, validated (a disk-mode image with the file paired with it). */
  static fromImage(bytes: Uint8Array, build: Build = 'release', disk?: DiskOptions): Shard {
    if (!(bytes instanceof Uint8Array)) {
      throw new QuiverError(ErrorCode.CORRUPT_IMAGE, 'an image must be a Uint8Array');
    }
    return Shard.loadImage(bytes.byteLength, (into) => into.set(bytes), build, disk);
  }

  /**
   * A shard over an image of `length` bytes that `fill` writes straight into
   * the new linear memory (a file read into it: no second copy), validated.
   * A disk-mode image needs the originals file paired with it.
   */
  static loadImage(length: number, fill: (into: Uint8Array) => void, build?: Build, disk?: DiskOptions): Shard;
  static loadImage(length: number, fill: (into: Uint8Array) => Promise<void>, build?: Build, disk?: DiskOptions): Promise<Shard>;
  static loadImage(length: number, fill: (into: Uint8Array) => void | Promise<void>, build: Build = 'release', disk?: DiskOptions): Shard | Promise<Shard> {
    const corrupt = (why: string): QuiverError => new QuiverError(ErrorCode.CORRUPT_IMAGE, `not a valid quiver image: ${why}`);
    if (!Number.isSafeInteger(length) || length < HEADER_PTR + HEADER_BYTES) throw corrupt('too short');
    const memory = newMemory(pagesFor(length), 'an image');
    const filled = fill(new Uint8Array(memory.buffer, 0, length));
    const attach = (): Shard => {
      const view = new DataView(memory.buffer, 0, length);
      if (view.getUint32(HEADER_PTR + H.MAGIC, true) !== MAGIC) throw corrupt('bad magic');
      const version = view.getUint32(HEADER_PTR + H.VERSION, true);
      if (version !== LAYOUT_VERSION) throw corrupt(`layout version ${version}, this build reads ${LAYOUT_VERSION}`);
      if (view.getUint32(HEADER_PTR + H.IMAGE_BYTES, true) !== length) throw corrupt('length does not match the header');
      let core: CoreExports;
      let status: number;
      try {
        core = instantiate(build, memory);
        status = core.verifyImage(length);
      } catch (err) {
        if (err instanceof QuiverError) throw err;
        throw new QuiverError(ErrorCode.CORRUPT_IMAGE, 'not a valid quiver image: the core trapped reading it', { cause: err });
      }
      if (status !== 0) throw corrupt('checksum or header fields do not match');
      return new Shard(memory, core, build, disk);
    };
    return filled instanceof Promise ? filled.then(attach) : attach();
  }

  get memory(): WebAssembly.Memory {
    return this.#memory;
  }

  get committedBytes(): number {
    return this.#memory.buffer.byteLength;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Disk mode: the file of the originals, the generation the header names (0: not spilled), whether spilled. */
  get originals(): OriginalsFile | undefined { return this.#originals; }
  get originalsGeneration(): number { return this.header32(H.ORIG_GEN); }
  get spilled(): boolean { return !this.#disposed && this.header32(H.ORIG_GEN) !== 0; }

  #views(): void {
    const buffer = this.#memory.buffer;
    if (buffer === this.#buffer) return;
    this.#buffer = buffer;
    this.#u8 = new Uint8Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#f32 = new Float32Array(buffer);
    this.#f64 = new Float64Array(buffer);
  }

  /** Runs a core call; a trap poisons the shard and becomes CORE_TRAP. */
  #call<T>(fn: (core: CoreExports) => T): T {
    if (this.#disposed) throw new QuiverError(ErrorCode.CLOSED, 'this index has been disposed');
    if (this.#broken !== undefined) {
      throw new QuiverError(ErrorCode.CORE_TRAP, 'this shard trapped earlier and refuses further calls', { cause: this.#broken });
    }
    try {
      const out = fn(this.#core);
      this.#views();
      return out;
    } catch (err) {
      if (err instanceof QuiverError) throw err;
      if (err instanceof WebAssembly.RuntimeError || err instanceof CoreAbort || err instanceof RangeError) {
        this.#broken = err;
        throw new QuiverError(ErrorCode.CORE_TRAP, `the WASM core trapped: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
  }

  #io(bytes: number): number {
    const ptr = this.#call((c) => c.ioReserve(bytes));
    if (ptr === 0) throw new QuiverError(ErrorCode.MEMORY_LIMIT, 'out of WASM memory (the 4 GiB limit of one shard)');
    return ptr;
  }

  /** Stages id `i` of a packed list (ids.ts) at io. */
  #stageId(io: number, ids: Uint32Array, i: number): void {
    const at = i * ID_WORDS;
    // the id's 16 bytes (lo u64, hi u64: ids.ts's first four words), then its kind
    this.#u32.set(ids.subarray(at, at + ID_KIND_WORD), (io + IO.ID_LO) >>> 2);
    this.#u32[(io + IO.KIND) >>> 2] = ids[at + ID_KIND_WORD] === 1 ? FLAG_UUID : 0;
  }

  /**
   * Inserts (or replaces) id `i` of a packed list with the vector at
   * `vectors[offset..]`.
   * Returns false when the core is out of memory (nothing was changed).
   */
  insert(ids: Uint32Array, i: number, vectors: Float32Array, offset: number, payload?: Uint8Array): boolean {
    const payloadLen = payload?.byteLength ?? 0;
    if (payloadLen > MAX_PAYLOAD_BYTES) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `a payload is ${payloadLen} bytes; the limit is ${MAX_PAYLOAD_BYTES}`);
    }
    const io = this.#io(IO.VECTOR + this.dim * 4 + payloadLen);
    this.#stageId(io, ids, i);
    this.#u32[(io + IO.PAYLOAD_LEN) >>> 2] = payloadLen;
    this.#f32.set(vectors.subarray(offset, offset + this.dim), (io + IO.VECTOR) >>> 2);
    if (payloadLen > 0) this.#u8.set(payload!, io + IO.VECTOR + this.dim * 4);
    const slot = this.header32(H.SLOTS);
    const status = this.#call((c) => c.insert());
    if (status === ERR_OUT_OF_MEMORY) return false;
    if (status === ERR_INVALID) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'the vector is not finite, or is zero under the cosine metric');
    }
    if (status !== OK) throw coreStatusError(status, 'insert');
    // disk mode: the (normalised) original to the file, or the spill
    if (this.#originals !== undefined) afterInsert(this, this.#originals, slot, io + IO.VECTOR, () => this.remove(ids, i));
    return true;
  }

  /** Tombstones id `i` of a packed list; false when it is not present. */
  remove(ids: Uint32Array, i: number): boolean {
    const io = this.#io(IO.VECTOR);
    this.#stageId(io, ids, i);
    const status = this.#call((c) => c.remove());
    if (status === ERR_NOT_FOUND) return false;
    if (status !== OK) throw coreStatusError(status, 'remove');
    return true;
  }

  /**
   * The stored vector (normalised under cosine) and payload bytes of id `i`
   * of a packed list, or undefined when it is absent.
   */
  get(ids: Uint32Array, i: number): { vector: Float32Array; payload: Uint8Array | undefined } | undefined {
    const io = this.#io(IO.VECTOR + this.dim * 4);
    this.#stageId(io, ids, i);
    const status = this.#call((c) => c.get());
    if (status === ERR_NOT_FOUND) return undefined;
    if (status !== OK) throw coreStatusError(status, 'get');
    const at = (io + IO.VECTOR) >>> 2;
    const ptr = this.#u32[(io + IO.PAYLOAD) >>> 2]!;
    const len = this.#u32[(io + IO.PAYLOAD_LEN) >>> 2]!;
    const payload = ptr === 0 ? undefined : this.#u8.slice(ptr, ptr + len);
    // spilled: the core left the slot where the vector goes
    if (this.spilled) return { vector: readOriginal(this.#originals!, this.#u32[at]!), payload };
    return { vector: this.#f32.slice(at, at + this.dim), payload };
  }

  /** Runs a search (filtered with `filter`); results stay in memory at `out`. io: query, results, program. */
  #searchRaw(query: Float32Array, offset: number, k: number, ef: number, filter?: CompiledFilter, quant?: QuantSearch): { out: number; n: number } {
    // results start 8-aligned after the query (a result has u64 ids)
    const vecBytes = (this.dim * Float32Array.BYTES_PER_ELEMENT + 7) & ~7;
    const prog = filter === undefined ? undefined : programOf(filter);
    const rescore = rescoreArg(k, quant);
    if (rescore < 0 && this.spilled) throw ignoreRefused();
    // spilled, re-ranking: the core leaves candidate slots past the results (originals.ts)
    const rerank = this.spilled && rescore > 0;
    const progAt = IO.VECTOR + vecBytes + k * RESULT_BYTES + (rerank ? candidateBytes(this.dim, k, rescore) : 0);
    const io = this.#io(progAt + (prog?.byteLength ?? 0));
    const out = io + IO.VECTOR + vecBytes;
    const at = rerank ? out + k * RESULT_BYTES : out;
    this.#f32.set(query.subarray(offset, offset + this.dim), (io + IO.VECTOR) >>> 2);
    let n: number;
    if (prog === undefined) {
      n = this.#call((c) => c.search(k, ef, rescore, at));
    } else {
      this.#u8.set(prog, io + progAt);
      const { exactBelow, exactFraction, twoHopBelow, indexFraction } = this.#planner;
      n = this.#call((c) => c.searchFiltered(k, ef, at, io + progAt, prog.byteLength, exactBelow, exactFraction, twoHopBelow, indexFraction, rescore));
      this.#lastPath = FILTER_PATHS[this.header32(LAYOUT.H_FPATH)];
    }
    if (rerank && n > 0) n = rerankFromFile(this, this.#originals!, k, n, at, out);
    if (n === ERR_OUT_OF_MEMORY) throw new QuiverError(ErrorCode.MEMORY_LIMIT, 'out of WASM memory for search scratch');
    if (n === ERR_INVALID) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `the query is not finite, or is zero under the cosine metric${prog ? ', or the filter is malformed' : ''}`);
    if (n < 0) throw coreStatusError(n, 'search');
    return { out, n };
  }

  /** Planner thresholds of filtered searches (filter-planner.ts); kept across compactions. */
  get filterPlanner(): FilterPlanner { return { ...this.#planner }; }
  set filterPlanner(options: Partial<FilterPlanner>) { this.#planner = checkPlanner({ ...this.#planner, ...options }); }

  /** The path the last filtered search took on this shard. */
  get lastFilterPath(): FilterPath | undefined {
    return this.#lastPath;
  }

  /** Live points that satisfy `filter`, counted exactly. */
  countMatching(filter: CompiledFilter): number {
    const prog = programOf(filter);
    const io = this.#io(prog.byteLength);
    this.#u8.set(prog, io);
    return filterStatus(this.#call((c) => c.countMatching(io, prog.byteLength)), 'countMatching');
  }

  /** Whether id `i` of a packed list is present and satisfies `filter`. */
  matches(ids: Uint32Array, i: number, filter: CompiledFilter): boolean {
    const prog = programOf(filter);
    const io = this.#io(IO.VECTOR + prog.byteLength);
    this.#stageId(io, ids, i);
    this.#u8.set(prog, io + IO.VECTOR);
    const r = this.#call((c) => c.matches(io + IO.VECTOR, prog.byteLength));
    return r !== ERR_NOT_FOUND && filterStatus(r, 'matches') === 1;
  }

  /** k nearest live vectors to `query` (already validated), nearest first. */
  search(
    query: Float32Array, offset: number, k: number, ef: number, withPayload = false, filter?: CompiledFilter, quant?: QuantSearch,
  ): { ids: Id[]; distances: Float32Array; payloads?: (Uint8Array | undefined)[]; path?: FilterPath } {
    const { out, n } = this.#searchRaw(query, offset, k, ef, filter, quant);
    const ids: Id[] = new Array(n);
    const distances = new Float32Array(n);
    const u32 = this.#u32;
    const f32 = this.#f32;
    for (let i = 0; i < n; i++) {
      const r = out + i * RESULT_BYTES;
      distances[i] = f32[(r + RESULT.DIST) >>> 2]!;
      ids[i] = unpackId(u32, (r + RESULT.ID_LO) >>> 2, (u32[(r + RESULT.FLAGS) >>> 2]! & FLAG_UUID) !== 0);
    }
    const path = filter === undefined ? {} : { path: this.#lastPath! };
    if (!withPayload) return { ids, distances, ...path };
    return { ids, distances, payloads: Array.from({ length: n }, (_, i) => this.#payloadAt(out, i)), ...path };
  }

  #payloadAt(out: number, i: number): Uint8Array | undefined {
    const r = out + i * RESULT_BYTES;
    const ptr = this.#u32[(r + RESULT.PAYLOAD_PTR) >>> 2]!;
    return ptr === 0 ? undefined : this.#u8.slice(ptr, ptr + this.#u32[(r + RESULT.PAYLOAD_LEN) >>> 2]!);
  }

  /**
   * The same search with ids left packed (w0 w1 w2 w3 kind per hit) into
   * `ids` at `idAt` and distances into `distances` at `distAt`: what a worker
   * sends back without building JS ids. Returns the hit count; with a
   * filter, `lastFilterPath` tells the path taken.
   */
  searchPacked(
    query: Float32Array, offset: number, k: number, ef: number,
    ids: Uint32Array, idAt: number, distances: Float32Array, distAt: number,
    payloads?: (Uint8Array | undefined)[], filter?: CompiledFilter, quant?: QuantSearch,
  ): number {
    const { out, n } = this.#searchRaw(query, offset, k, ef, filter, quant);
    const u32 = this.#u32;
    const f32 = this.#f32;
    for (let i = 0; i < n; i++) {
      const r = out + i * RESULT_BYTES;
      distances[distAt + i] = f32[(r + RESULT.DIST) >>> 2]!;
      const at = idAt + i * ID_WORDS;
      // the id's 16 bytes: lo u64 then hi u64, as four words
      ids.set(u32.subarray((r + RESULT.ID_LO) >>> 2, ((r + RESULT.ID_LO) >>> 2) + ID_KIND_WORD), at);
      ids[at + ID_KIND_WORD] = (u32[(r + RESULT.FLAGS) >>> 2]! & FLAG_UUID) !== 0 ? 1 : 0;
      if (payloads !== undefined) payloads[distAt + i] = this.#payloadAt(out, i);
    }
    return n;
  }

  /** Every live id, packed (ids.ts), in slot order. */
  listIds(): Uint32Array { return listIdsOf(this); }
  stats(): RawStats { return rawStatsOf(this); }
  integrity(): IntegrityReport { return integrityOf(this); }
  setEf(ef: number): void {
    this.#call((c) => c.setEf(ef));
  }

  /** The used prefix of memory, sealed with length and checksum. */
  toImage(): Uint8Array {
    const top = this.#call((c) => c.sealImage());
    return this.#u8.slice(0, top);
  }

  /**
   * Shrink by re-instantiation: when memory holds more pages than the used
   * prefix needs, copy the prefix into a right-sized memory and instantiate
   * over it. The old memory is unreachable afterwards; it goes back to the
   * OS at this thread's next GC.
   */
  shrinkToFit(): number {
    const used = this.#call((c) => c.usedBytes());
    const before = this.committedBytes;
    const pages = pagesFor(used);
    if (pages * PAGE_BYTES >= before) return 0;
    const memory = newMemory(pages, 'a shrunk copy');
    new Uint8Array(memory.buffer).set(this.#u8.subarray(0, used));
    const core = instantiate(this.build, memory);
    const status = core.attach();
    if (status !== OK) throw coreStatusError(status, 'attaching a shrunk copy');
    this.#memory = memory;
    this.#core = core;
    this.#views();
    return before - this.committedBytes;
  }


  /** Adopts another shard's memory and instance (the end of a compaction). */
  adopt(other: Shard): void {
    this.#memory = other.#memory;
    this.#core = other.#core;
    this.#originals = other.#originals;
    this.#views();
    other.#disposed = true;
  }

  /** @internal used by Compaction */
  core<T>(fn: (core: CoreExports) => T): T {
    return this.#call(fn);
  }

  /** @internal raw bytes of memory, valid until the next core call */
  bytes(ptr: number, length: number): Uint8Array {
    this.#views();
    return this.#u8.subarray(ptr, ptr + length);
  }

  header32(offset: number): number {
    this.#views();
    return this.#u32[(HEADER_PTR + offset) >>> 2]!;
  }

  setHeader32(offset: number, value: number): void {
    this.#views();
    this.#u32[(HEADER_PTR + offset) >>> 2] = value;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    // drop every reference to the memory so a GC can release it
    this.#memory = undefined as unknown as WebAssembly.Memory;
    this.#core = undefined as unknown as CoreExports;
    this.#buffer = undefined as unknown as ArrayBuffer;
    this.#u8 = this.#u32 = this.#f32 = this.#f64 = undefined as never;
  }
}
