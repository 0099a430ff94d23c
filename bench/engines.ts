// One adapter per engine. Each hides its engine's API behind AnnIndex so the
// measuring loop in ann.ts is identical for all of them.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Metric } from './datasets.js';

export interface BuildSpec {
  dim: number;
  n: number;
  metric: Metric;
  M: number;
  efConstruction: number;
}

/** Q is the engine's preferred query form; converting to it happens outside the timed loop. */
export interface AnnIndex<Q = unknown> {
  /** Adds vectors (a flat chunk) with ids firstId, firstId + 1, ... */
  add(firstId: number, vectors: Float32Array): void;
  setEf(ef: number): void;
  prepareQuery(v: Float32Array): Q;
  search(q: Q, k: number): ArrayLike<number | bigint | string>;
  /** Serialized size in bytes, or null when the engine offers no way to measure it. */
  imageBytes(): number | null;
  dispose(): void;
}

export interface Engine {
  name: string;
  /** Loads the module; done before the RSS baseline so code and runtime are not counted. */
  load(): Promise<(spec: BuildSpec) => AnnIndex>;
}

const SEED = 100;

function tempFile(name: string): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-bench-'));
  return { path: join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------- quiver

// Typed here rather than imported: host/index.ts is written in parallel and may not
// exist yet, and a missing quiver must become an error row, not a compile error.
interface QuiverIndex {
  add(ids: number[], vectors: Float32Array): void;
  search(q: Float32Array, k: number, opts: { ef: number }): { ids: ArrayLike<number | bigint | string> };
  toImage(): Uint8Array;
  dispose(): void;
}
interface QuiverModule {
  Index: new (opts: { dim: number; metric: Metric; M: number; efConstruction: number; seed: number }) => QuiverIndex;
}

const quiver: Engine = {
  name: 'quiver',
  async load() {
    const url = new URL('../host/index.js', import.meta.url).href;
    const mod = (await import(url)) as Partial<QuiverModule>;
    const Index = mod.Index;
    if (typeof Index !== 'function') throw new Error(`${url} does not export Index`);
    return (spec) => {
      const idx = new Index({ dim: spec.dim, metric: spec.metric, M: spec.M, efConstruction: spec.efConstruction, seed: SEED });
      let ef = 64;
      return {
        add(firstId, vectors) {
          const count = vectors.length / spec.dim;
          idx.add(Array.from({ length: count }, (_, i) => firstId + i), vectors);
        },
        setEf(e) {
          ef = e;
        },
        prepareQuery: (v) => v,
        search: (q, k) => idx.search(q, k, { ef }).ids,
        imageBytes: () => idx.toImage().byteLength,
        dispose: () => idx.dispose(),
      } satisfies AnnIndex<Float32Array>;
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
    return (spec) => {
      const idx = new HierarchicalNSW(spec.metric, spec.dim);
      idx.initIndex(spec.n, spec.M, spec.efConstruction, SEED);
      return {
        add(firstId, vectors) {
          // The addon only takes plain arrays; converting is part of what a user pays to add.
          for (let i = 0, off = 0; off < vectors.length; i++, off += spec.dim) {
            idx.addPoint(Array.from(vectors.subarray(off, off + spec.dim)), firstId + i);
          }
        },
        setEf: (ef) => idx.setEf(ef),
        prepareQuery: (v) => Array.from(v),
        search: (q, k) => idx.searchKnn(q, k).neighbors,
        imageBytes() {
          const tmp = tempFile('index.hnsw');
          try {
            idx.writeIndexSync(tmp.path);
            return statSync(tmp.path).size;
          } finally {
            tmp.cleanup();
          }
        },
        dispose() {},
      } satisfies AnnIndex<number[]>;
    };
  },
};

// ---------------------------------------------------------------- hnswlib-wasm

interface WasmHnsw {
  initIndex(maxElements: number, m: number, efConstruction: number, seed: number): void;
  addPoint(point: Float32Array, label: number, replaceDeleted: boolean): void;
  setEfSearch(ef: number): void;
  searchKnn(q: Float32Array, k: number, filter: undefined): { neighbors: number[] };
  delete?(): void;
}
interface WasmLib {
  HierarchicalNSW: new (space: Metric, dim: number, autoSaveFilename: string) => WasmHnsw;
}

const hnswlibWasm: Engine = {
  name: 'hnswlib-wasm',
  async load() {
    // The emscripten glue picks browser code paths (and IDBFS) when `window` exists; it
    // needs `window` to load at all. IDBFS then fails to mount in Node and logs an abort
    // message, but indexing and search work; files go to its in-memory FS.
    (globalThis as { window?: unknown }).window = globalThis;
    // The package has no "main" or "exports", so Node needs the file path.
    const { loadHnswlib } = (await import('hnswlib-wasm/dist/hnswlib.js')) as unknown as { loadHnswlib: () => Promise<WasmLib> };
    const lib = await loadHnswlib();
    return (spec) => {
      const idx = new lib.HierarchicalNSW(spec.metric, spec.dim, '');
      idx.initIndex(spec.n, spec.M, spec.efConstruction, SEED);
      return {
        add(firstId, vectors) {
          for (let i = 0, off = 0; off < vectors.length; i++, off += spec.dim) {
            idx.addPoint(vectors.subarray(off, off + spec.dim), firstId + i, false);
          }
        },
        setEf: (ef) => idx.setEfSearch(ef),
        prepareQuery: (v) => v,
        search: (q, k) => idx.searchKnn(q, k, undefined).neighbors,
        // writeIndex only reaches emscripten's in-memory FS, and the module does not export FS to stat it.
        imageBytes: () => null,
        dispose: () => idx.delete?.(),
      } satisfies AnnIndex<Float32Array>;
    };
  },
};

// ---------------------------------------------------------------- usearch

const usearch: Engine = {
  name: 'usearch',
  async load() {
    const { Index, MetricKind, ScalarKind } = await import('usearch');
    return (spec) => {
      const config = (expansion_search: number) => ({
        dimensions: spec.dim,
        metric: spec.metric === 'l2' ? MetricKind.L2sq : MetricKind.Cos,
        quantization: ScalarKind.F32,
        connectivity: spec.M,
        expansion_add: spec.efConstruction,
        expansion_search,
        multi: false,
      });
      let idx = new Index(config(64));
      // The JS binding cannot change expansion_search after construction, so the ef sweep
      // saves the built index once and loads it into an index configured with each ef.
      let saved: { path: string; cleanup: () => void } | null = null;
      const save = (): string => {
        if (!saved) {
          saved = tempFile('index.usearch');
          idx.save(saved.path);
        }
        return saved.path;
      };
      return {
        add(firstId, vectors) {
          const count = vectors.length / spec.dim;
          const keys = new BigUint64Array(count);
          for (let i = 0; i < count; i++) keys[i] = BigInt(firstId + i);
          idx.add(keys, vectors, 1); // threads = 1: the single-threaded insert path
        },
        setEf(ef) {
          const path = save();
          idx = new Index(config(ef));
          idx.load(path);
        },
        prepareQuery: (v) => v,
        search: (q, k) => idx.search(q, k, 1).keys,
        imageBytes: () => statSync(save()).size,
        dispose() {
          saved?.cleanup();
        },
      } satisfies AnnIndex<Float32Array>;
    };
  },
};

export const ENGINES: readonly Engine[] = [quiver, hnswlibNode, hnswlibWasm, usearch];
