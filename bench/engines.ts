// One adapter per engine, shared by every benchmark: each hides its engine's
// API behind EngineIndex (build, delete, compact, drop: bench/memory.ts) and,
// for engines that search in-process, AnnIndex (bench/ann.ts), so the
// measuring loops are identical for all of them.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Metric } from './datasets.js';

export interface BuildSpec {
  dim: number;
  n: number;
  metric: Metric;
  M: number;
  efConstruction: number;
}

/** What every engine does. Methods may be sync or async (the Store is async). */
export interface EngineIndex {
  /** Adds vectors (a flat chunk) with ids firstId, firstId + 1, ... */
  add(firstId: number, vectors: Float32Array): void | Promise<void>;
  /** Deletes (tombstones) ids; returns how many went. */
  remove(ids: Uint32Array): number | Promise<number>;
  /** Only engines that can compact. */
  compact?(): void | Promise<void>;
  /** What the engine says it holds, by name (bytes), where it can tell. */
  engineBytes?(): Record<string, number> | Promise<Record<string, number>>;
  /** Drops every reference the adapter holds, freeing what the engine lets be freed. */
  dispose(): void | Promise<void>;
}

/** Q is the engine's preferred query form; converting to it happens outside the timed loop. */
export interface AnnIndex<Q = unknown> extends EngineIndex {
  add(firstId: number, vectors: Float32Array): void;
  setEf(ef: number): void;
  /**
   * Engines with a second search knob (quiver-int8: how many candidates the exact f32
   * re-rank takes, as a multiple of k; 0 = no re-rank, the code distances as they are).
   * The values swept are LoadedEngine.oversampling.
   */
  setOversampling?(oversampling: number): void;
  prepareQuery(v: Float32Array): Q;
  search(q: Q, k: number): ArrayLike<number | bigint | string>;
  /** Serialized size in bytes, or null when the engine offers no way to measure it. */
  imageBytes(): number | null;
}

export interface LoadedEngine<I extends EngineIndex> {
  create(spec: BuildSpec): I | Promise<I>;
  /** How the adapter deletes and drops, for the tables. */
  notes: string[];
  /** The values bench/ann.ts sweeps through AnnIndex.setOversampling, each with every ef. */
  oversampling?: readonly number[];
  /** Called once after a build, before it is measured (quiver-store: GC the workers). */
  afterBuild?(): Promise<void>;
  /**
   * Releases the engine itself where that means something (a Store's threads,
   * a WASM module). Returns the name for the reading taken before it.
   */
  unload?(): Promise<string>;
}

export interface Engine<I extends EngineIndex = AnnIndex> {
  name: string;
  /** Loads the module; done before the RSS baseline so code and runtime are not counted. */
  load(): Promise<LoadedEngine<I>>;
}

const SEED = 100;

function tempFile(name: string): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-bench-'));
  return { path: join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function sequentialIds(firstId: number, count: number): Uint32Array {
  const ids = new Uint32Array(count);
  for (let i = 0; i < count; i++) ids[i] = firstId + i;
  return ids;
}

// ---------------------------------------------------------------- quiver

interface QuiverModule {
  Index: typeof import('../host/index.js').Index;
  Store: typeof import('../host/index.js').Store;
}

async function importQuiver(hostUrl?: string): Promise<QuiverModule> {
  // Through a URL so a missing host build is an error row, not a crash of the bench.
  const url = hostUrl ?? new URL('../host/index.js', import.meta.url).href;
  const mod = (await import(url)) as Partial<QuiverModule>;
  if (typeof mod.Index !== 'function' || typeof mod.Store !== 'function') throw new Error(`${url} does not export Index and Store`);
  return mod as QuiverModule;
}

interface QuiverFlavour {
  name: string;
  /** Where the host build is (default: this checkout's dist/host/index.js). */
  hostUrl?: () => string;
  quantization?: import('../host/index.js').IndexOptions['quantization'];
  oversampling?: readonly number[];
}

function quiverEngine(flavour: QuiverFlavour): Engine {
  return {
    name: flavour.name,
    async load() {
      const { Index } = await importQuiver(flavour.hostUrl?.());
      const quantization = flavour.quantization;
      return {
        notes: [],
        ...(flavour.oversampling ? { oversampling: flavour.oversampling } : {}),
        create(spec) {
          let idx: InstanceType<typeof Index> | undefined = new Index({
            dim: spec.dim,
            metric: spec.metric,
            M: spec.M,
            efConstruction: spec.efConstruction,
            seed: SEED,
            ...(quantization ? { quantization } : {}),
          });
          let options: import('../host/index.js').SearchOptions = { ef: 64 };
          let oversampling = 2;
          const searchOptions = (ef: number) =>
            quantization ? { ef, quantization: oversampling === 0 ? { rescore: false } : { oversampling } } : { ef };
          return {
            add(firstId, vectors) {
              idx!.add(sequentialIds(firstId, vectors.length / spec.dim), vectors);
            },
            remove: (ids) => idx!.remove(ids),
            compact() {
              idx!.compact();
            },
            engineBytes() {
              const s = idx!.stats();
              return { committed: s.committedBytes, live: s.liveBytes, reclaimable: s.reclaimableBytes };
            },
            setEf(ef) {
              options = searchOptions(ef);
            },
            setOversampling(o) {
              oversampling = o;
              options = searchOptions(options.ef ?? 64);
            },
            prepareQuery: (v) => v,
            search: (q, k) => idx!.search(q, k, options).ids,
            imageBytes: () => idx!.toImage().byteLength,
            dispose() {
              idx?.dispose();
              idx = undefined;
            },
          } satisfies AnnIndex<Float32Array>;
        },
      };
    },
  };
}

const quiver = quiverEngine({ name: 'quiver' });

/** int8 codes in the graph, f32 originals for the re-rank (docs/quantization.md); 0 = codes only, no re-rank. */
const quiverInt8 = quiverEngine({
  name: 'quiver-int8',
  quantization: { scalar: { type: 'int8', quantile: 0.99 } },
  oversampling: [0, 1, 2, 4],
});

/** Environment variable naming another build's dist/host/index.js, for the quiver-baseline engine. */
export const BASELINE_ENV = 'QUIVER_BASELINE_HOST';

/**
 * The unquantized Index of another build (an earlier commit, built in its own checkout),
 * measured in the same run to answer "is quiver slower than before?" (bench/ann.ts --baseline).
 */
export const QUIVER_BASELINE: Engine = quiverEngine({
  name: 'quiver-baseline',
  hostUrl() {
    const file = process.env[BASELINE_ENV];
    if (!file) throw new Error(`${BASELINE_ENV} is not set (bench/ann.ts --baseline DIR sets it)`);
    return pathToFileURL(file).href;
  },
});

/** The Store with 1 thread and 1 shard: the same index behind a worker (memory only; it searches asynchronously). */
const quiverStore: Engine<EngineIndex> = {
  name: 'quiver-store',
  async load() {
    const { Store } = await importQuiver();
    const store = await Store.open({ threads: 1 });
    let created = 0;
    return {
      notes: ['1 worker thread, 1 shard; after build store.releaseMemory() runs a GC in the worker (no tombstones yet, so no compaction)'],
      async create(spec) {
        const ds = `bench-${created++}`;
        await store.createDataset(ds, { dim: spec.dim, metric: spec.metric, M: spec.M, efConstruction: spec.efConstruction, shards: 1 });
        return {
          async add(firstId, vectors) {
            await store.insert(ds, sequentialIds(firstId, vectors.length / spec.dim), vectors);
          },
          remove: async (ids) => (await store.delete(ds, ids)).deleted,
          async compact() {
            await store.compact(ds);
          },
          async engineBytes() {
            const info = await store.datasetInfo(ds);
            return { committed: info.committedBytes, live: info.liveBytes };
          },
          async dispose() {
            await store.dropDataset(ds);
          },
        };
      },
      async afterBuild() {
        await store.releaseMemory();
      },
      async unload() {
        // the dataset is gone; what is left is the worker thread itself
        await store.close();
        return 'afterDropStoreOpen';
      },
    };
  },
};

// ---------------------------------------------------------------- hnswlib-node

const hnswlibNode: Engine = {
  name: 'hnswlib-node',
  async load() {
    const mod = await import('hnswlib-node');
    // A CommonJS addon: its default export is module.exports.
    const { HierarchicalNSW } = mod.default;
    return {
      notes: ['markDelete per id; no way to free the index but dropping the object'],
      create(spec) {
        let idx: InstanceType<typeof HierarchicalNSW> | undefined = new HierarchicalNSW(spec.metric, spec.dim);
        idx.initIndex(spec.n, spec.M, spec.efConstruction, SEED);
        return {
          add(firstId, vectors) {
            // The addon only takes plain arrays; converting is part of what a user pays to add.
            for (let i = 0, off = 0; off < vectors.length; i++, off += spec.dim) {
              idx!.addPoint(Array.from(vectors.subarray(off, off + spec.dim)), firstId + i);
            }
          },
          remove(ids) {
            for (const id of ids) idx!.markDelete(id);
            return ids.length;
          },
          setEf: (ef) => idx!.setEf(ef),
          prepareQuery: (v) => Array.from(v),
          search: (q, k) => idx!.searchKnn(q, k).neighbors,
          imageBytes() {
            const tmp = tempFile('index.hnsw');
            try {
              idx!.writeIndexSync(tmp.path);
              return statSync(tmp.path).size;
            } finally {
              tmp.cleanup();
            }
          },
          dispose() {
            idx = undefined;
          },
        } satisfies AnnIndex<number[]>;
      },
    };
  },
};

// ---------------------------------------------------------------- hnswlib-wasm

interface WasmHnsw {
  initIndex(maxElements: number, m: number, efConstruction: number, seed: number): void;
  addPoint(point: Float32Array, label: number, replaceDeleted: boolean): void;
  markDeleteItems(labels: number[]): void;
  setEfSearch(ef: number): void;
  searchKnn(q: Float32Array, k: number, filter: undefined): { neighbors: number[] };
  delete(): void;
}
interface WasmLib {
  HierarchicalNSW: new (space: Metric, dim: number, autoSaveFilename: string) => WasmHnsw;
}

const hnswlibWasm: Engine = {
  name: 'hnswlib-wasm',
  async load() {
    // The emscripten glue is a web build: it picks browser code paths and needs
    // `window` to load at all.
    (globalThis as { window?: unknown }).window = globalThis;
    // loadHnswlib() keeps the module instance in a closure for good (and mounts
    // IDBFS, which fails in Node and logs an abort message), so to be able to
    // drop the module this calls the emscripten factory chunk next to it.
    const entry = fileURLToPath(import.meta.resolve('hnswlib-wasm/dist/hnswlib.js'));
    const chunk = readdirSync(dirname(entry)).find((f) => /^hnswlib-[0-9a-f]+\.js$/.test(f));
    let lib: WasmLib | undefined;
    const notes = ['markDeleteItems(ids); drop = index.delete(), then the module instance is dropped too'];
    if (chunk) {
      const factory = (await import(pathToFileURL(join(dirname(entry), chunk)).href)) as { default: () => Promise<WasmLib> };
      lib = await factory.default();
    } else {
      const { loadHnswlib } = (await import('hnswlib-wasm/dist/hnswlib.js')) as unknown as { loadHnswlib: () => Promise<WasmLib> };
      lib = await loadHnswlib();
      notes.push('factory chunk not found: loaded through loadHnswlib(), which keeps the module alive');
    }
    return {
      notes,
      create(spec) {
        let idx: WasmHnsw | undefined = new lib!.HierarchicalNSW(spec.metric, spec.dim, '');
        idx.initIndex(spec.n, spec.M, spec.efConstruction, SEED);
        return {
          add(firstId, vectors) {
            for (let i = 0, off = 0; off < vectors.length; i++, off += spec.dim) {
              idx!.addPoint(vectors.subarray(off, off + spec.dim), firstId + i, false);
            }
          },
          remove(ids) {
            // markDeleteItems, not markDelete per id: this build's markDelete costs O(n)
            // per call (~1 ms at 10k), which would make a delete take minutes at 100k.
            idx!.markDeleteItems(Array.from(ids));
            return ids.length;
          },
          setEf: (ef) => idx!.setEfSearch(ef),
          prepareQuery: (v) => v,
          search: (q, k) => idx!.searchKnn(q, k, undefined).neighbors,
          // writeIndex only reaches emscripten's in-memory FS, and the module does not export FS to stat it.
          imageBytes: () => null,
          dispose() {
            idx?.delete(); // frees the C++ object inside the module's heap
            idx = undefined;
          },
        } satisfies AnnIndex<Float32Array>;
      },
      async unload() {
        lib = undefined;
        return 'afterIndexDeleteModuleKept';
      },
    };
  },
};

// ---------------------------------------------------------------- usearch

/**
 * usearch stores vectors as `kind`. Its i8 cast (index_plugins.hpp, cast_to_i8_gt) scales
 * each vector to unit length and then to [-127, 127], so it is meant for cosine: on L2
 * data the codes keep only the direction, the ranking is by angle, and recall against the
 * exact L2 top 10 is capped by how much the norms differ. Its own README says the same
 * ("only valid for cosine-like metrics"); the row shows what a user who turns it on gets.
 */
function usearchEngine(name: string, kind: 'f32' | 'i8'): Engine {
  return {
    name,
    async load() {
      const { Index, MetricKind, ScalarKind } = await import('usearch');
      return {
        notes: ['remove(keys) in one call; no way to free the index but dropping the object'],
        create(spec) {
          const config = (expansion_search: number) => ({
            dimensions: spec.dim,
            metric: spec.metric === 'l2' ? MetricKind.L2sq : MetricKind.Cos,
            quantization: kind === 'i8' ? ScalarKind.I8 : ScalarKind.F32,
            connectivity: spec.M,
            expansion_add: spec.efConstruction,
            expansion_search,
            multi: false,
          });
          let idx: InstanceType<typeof Index> | undefined = new Index(config(64));
          // The JS binding cannot change expansion_search after construction, so the ef sweep
          // saves the built index once and loads it into an index configured with each ef.
          let saved: { path: string; cleanup: () => void } | null = null;
          const save = (): string => {
            if (!saved) {
              saved = tempFile('index.usearch');
              idx!.save(saved.path);
            }
            return saved.path;
          };
          return {
            add(firstId, vectors) {
              const count = vectors.length / spec.dim;
              const keys = new BigUint64Array(count);
              for (let i = 0; i < count; i++) keys[i] = BigInt(firstId + i);
              idx!.add(keys, vectors, 1); // threads = 1: the single-threaded insert path
            },
            remove(ids) {
              const removed = idx!.remove(BigUint64Array.from(ids, (id) => BigInt(id)));
              return Array.isArray(removed) ? removed.reduce((a, b) => a + b, 0) : removed;
            },
            setEf(ef) {
              const path = save();
              idx = new Index(config(ef));
              idx.load(path);
            },
            prepareQuery: (v) => v,
            search: (q, k) => idx!.search(q, k, 1).keys,
            imageBytes: () => statSync(save()).size,
            dispose() {
              saved?.cleanup();
              idx = undefined;
            },
          } satisfies AnnIndex<Float32Array>;
        },
      };
    },
  };
}

const usearch = usearchEngine('usearch', 'f32');
const usearchI8 = usearchEngine('usearch-i8', 'i8');

/** The engines bench/ann.ts sweeps (each searches synchronously in-process). */
export const ENGINES: readonly Engine[] = [quiver, quiverInt8, hnswlibNode, hnswlibWasm, usearch, usearchI8];

/** The engines bench/memory.ts measures: the same adapters, plus quiver's Store. */
export const MEMORY_ENGINES: readonly Engine<EngineIndex>[] = [{ ...quiver, name: 'quiver-index' }, quiverStore, hnswlibNode, hnswlibWasm, usearch];
