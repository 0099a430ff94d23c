// Memory benchmark: does an engine give memory back to the OS after heavy deletes,
// after compaction, after a drop? quiver vs hnswlib-node, hnswlib-wasm and usearch.
//
//   node dist/bench/memory.js [--json FILE] [--small] [--engines a,b] [--verbose]
//
// Every engine runs in its own child process (`node --expose-gc`), one after the other,
// and reports process RSS at fixed points: baseline (module and data loaded, nothing
// built), after build, after deleting a fixed random half of the ids, after compaction
// (quiver only) and after dropping the index. A child prints one JSON line prefixed with
// RESULT_PREFIX; anything else on its stdout is ignored. An engine that cannot load, or
// crashes, becomes an error row.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { generate, generatedSpecs } from './datasets.js';

const RESULT_PREFIX = '@@quiver-memory-result@@ ';
const M = 16;
const EF_CONSTRUCTION = 200;
const N_FULL = 100_000;
const N_SMALL = 10_000;
const ADD_CHUNK = 1000;
const SEED = 100;
const DELETE_SEED = 0x5eed;
const WARMUP_N = 200;
const CHILD_TIMEOUT_MS = 20 * 60_000;
// V8 grows the young generation (up to 2 x 16 MB) under allocation-heavy loops such as a
// build, and its memory reducer shrinks it again seconds later: RSS noise of 5-30 MB that
// would land in whichever step happens to be running. A 1 MB semi-space caps it at ~1 MB.
const CHILD_NODE_FLAGS = ['--expose-gc', '--max-semi-space-size=1'];
const MB = 1024 * 1024;

// settle(): poll RSS until two readings 100 ms apart differ by less than this, or give up.
const STABLE_BYTES = 0.5 * MB;
const STABLE_WINDOW_MS = 100;
const SETTLE_MAX_MS = 3000;
// A dropped WebAssembly.Memory is unmapped asynchronously ~0.2 s after the GC that finds it;
// two equal readings before that would stop too early, so never stop before this.
const SETTLE_MIN_MS = 300;

// quiver's targets.
const TARGET_DROP_WITHIN_MB = 2;
const TARGET_COMPACT_RETURN = 0.45;

const ENGINE_NAMES = ['quiver-index', 'quiver-store', 'hnswlib-node', 'hnswlib-wasm', 'usearch'] as const;
type EngineName = (typeof ENGINE_NAMES)[number];

const thisFile = fileURLToPath(import.meta.url);

interface Row {
  engine: string;
  n: number;
  dim: number;
  /** RSS in MB at each point; afterCompactMb is null for engines without compaction. */
  baselineMb: number;
  afterBuildMb: number;
  afterDeleteMb: number;
  afterCompactMb: number | null;
  afterDropMb: number;
  /** afterBuild - baseline. */
  indexMb: number;
  /** afterBuild - (afterCompact ?? afterDelete), and as a fraction of indexMb. */
  returnedAfterDeleteMb: number;
  returnedAfterDeleteFraction: number;
  /** afterBuild - afterDrop. */
  returnedAfterDropMb: number;
  /** afterDrop - baseline (negative: below the baseline). */
  dropOverBaselineMb: number;
  deleted: number;
  buildSeconds: number;
  deleteMs: number;
  compactMs: number | null;
  /** How long the drop call itself took (dispose, dropDataset, index.delete(), ...). */
  dropCallMs: number;
  /** From the start of the drop until RSS first came within 0.5 MB of its settled value. */
  dropReleaseMs: number;
  /**
   * RSS after the index was dropped but before the engine itself was released, for
   * engines where afterDrop also releases the engine: quiver-store `afterDropStoreOpen`
   * (afterDrop is after close()), hnswlib-wasm `afterIndexDeleteModuleKept`.
   */
  extraMb: Record<string, number>;
  /** What the engine itself says it holds, where it can tell (quiver: committed WASM bytes). */
  engineBytes: Record<string, number>;
  /** process.memoryUsage() in MB at each reading (heapTotal etc. are the main thread's). */
  usageMb: Record<string, { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number }>;
  notes: string[];
}

interface ErrorRow {
  engine: string;
  error: string;
}

type Result = Row | ErrorRow;

const isError = (r: Result): r is ErrorRow => 'error' in r;

// ---------------------------------------------------------------- child: measuring

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g !== 'function') throw new Error('run the child with --expose-gc');
  g();
}

interface Settled {
  rss: number;
  /** V8's own view at the end, to tell the JS heap from the rest. */
  usage: NodeJS.MemoryUsage;
  /** Time from the settle() call until RSS first came within STABLE_BYTES of `rss`. */
  reachedMs: number;
  tookMs: number;
}

/**
 * Runs a GC, then polls RSS until two readings STABLE_WINDOW_MS apart differ by less
 * than STABLE_BYTES (after at least SETTLE_MIN_MS) or SETTLE_MAX_MS pass. A GC runs
 * before every window, since V8 frees a dropped WebAssembly.Memory (or a native object's
 * finalizer runs) only after a GC finds it dead. `pollMs` below the window only sharpens
 * `reachedMs`.
 */
async function settle(pollMs = STABLE_WINDOW_MS): Promise<Settled> {
  const t0 = performance.now();
  const samples: { t: number; rss: number }[] = [];
  gc();
  gc();
  let lastGc = performance.now();
  for (;;) {
    await sleep(pollMs);
    const now = performance.now();
    if (now - lastGc >= STABLE_WINDOW_MS) {
      gc();
      lastGc = performance.now();
    }
    const cur = { t: performance.now() - t0, rss: process.memoryUsage.rss() };
    samples.push(cur);
    let prev: { t: number; rss: number } | undefined;
    for (let i = samples.length - 2; i >= 0; i--) {
      if (samples[i]!.t <= cur.t - STABLE_WINDOW_MS + 1) {
        prev = samples[i];
        break;
      }
    }
    if (prev && Math.abs(cur.rss - prev.rss) < STABLE_BYTES && cur.t >= SETTLE_MIN_MS) break;
    if (cur.t >= SETTLE_MAX_MS) break;
  }
  const rss = samples[samples.length - 1]!.rss;
  const reached = samples.find((s) => Math.abs(s.rss - rss) < STABLE_BYTES)!;
  return { rss, usage: process.memoryUsage(), reachedMs: reached.t, tookMs: performance.now() - t0 };
}

/** A fixed random half of 0..n-1 (partial Fisher-Yates with a seeded xorshift32). */
function randomHalf(n: number, seed: number): Uint32Array {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const all = new Uint32Array(n);
  for (let i = 0; i < n; i++) all[i] = i;
  const half = n >> 1;
  for (let i = 0; i < half; i++) {
    const j = i + Math.floor(next() * (n - i));
    const t = all[i]!;
    all[i] = all[j]!;
    all[j] = t;
  }
  return all.slice(0, half);
}

// ---------------------------------------------------------------- child: engines

interface Spec {
  dim: number;
  n: number;
}

/** One index under test. Every method may be sync or async. */
interface MemIndex {
  /** Adds vectors (flat) with ids firstId, firstId + 1, ... */
  add(firstId: number, vectors: Float32Array): void | Promise<void>;
  /** Deletes (tombstones) ids; returns how many went. */
  delete(ids: Uint32Array): number | Promise<number>;
  /** Only engines that can compact. */
  compact?(): void | Promise<void>;
  /** What the engine reports it holds, by name (bytes). */
  engineBytes?(): Record<string, number> | Promise<Record<string, number>>;
  /** Drops every reference the adapter holds. */
  drop(): void | Promise<void>;
}

interface MemEngine {
  create(spec: Spec): MemIndex | Promise<MemIndex>;
  /** Called once after build, before the "after build" reading (quiver-store: GC the workers). */
  afterBuild?(): Promise<void>;
  /**
   * Called once the dropped index has settled: releases the engine itself where that
   * means something. Returns the name under which the reading before it is kept.
   */
  unload?(): Promise<string>;
  notes: string[];
}

type Loader = () => Promise<MemEngine>;

interface QuiverModule {
  Index: typeof import('../host/index.js').Index;
  Store: typeof import('../host/index.js').Store;
}

async function importQuiver(): Promise<QuiverModule> {
  // Through a URL so a missing host build is an error row, not a compile error of the bench.
  const url = new URL('../host/index.js', import.meta.url).href;
  const mod = (await import(url)) as Partial<QuiverModule>;
  if (typeof mod.Index !== 'function' || typeof mod.Store !== 'function') throw new Error(`${url} does not export Index and Store`);
  return mod as QuiverModule;
}

function sequentialIds(firstId: number, count: number): Uint32Array {
  const ids = new Uint32Array(count);
  for (let i = 0; i < count; i++) ids[i] = firstId + i;
  return ids;
}

const quiverIndex: Loader = async () => {
  const { Index } = await importQuiver();
  return {
    notes: [],
    create(spec) {
      let idx: InstanceType<typeof Index> | undefined = new Index({ dim: spec.dim, metric: 'l2', M, efConstruction: EF_CONSTRUCTION, seed: SEED });
      return {
        add(firstId, vectors) {
          idx!.add(sequentialIds(firstId, vectors.length / spec.dim), vectors);
        },
        delete: (ids) => idx!.remove(ids),
        compact() {
          idx!.compact();
        },
        engineBytes() {
          const s = idx!.stats();
          return { committed: s.committedBytes, live: s.liveBytes, reclaimable: s.reclaimableBytes };
        },
        drop() {
          idx?.dispose();
          idx = undefined;
        },
      };
    },
  };
};

const quiverStore: Loader = async () => {
  const { Store } = await importQuiver();
  const store = await Store.open({ threads: 1 });
  let created = 0;
  return {
    notes: ['1 worker thread, 1 shard; after build store.releaseMemory() runs a GC in the worker (no tombstones yet, so no compaction)'],
    async create(spec) {
      const ds = `memory-${created++}`;
      await store.createDataset(ds, { dim: spec.dim, M, efConstruction: EF_CONSTRUCTION, shards: 1 });
      return {
        async add(firstId, vectors) {
          await store.insert(ds, sequentialIds(firstId, vectors.length / spec.dim), vectors);
        },
        delete: async (ids) => (await store.delete(ds, ids)).deleted,
        async compact() {
          await store.compact(ds);
        },
        async engineBytes() {
          const info = await store.datasetInfo(ds);
          return { committed: info.committedBytes, live: info.liveBytes };
        },
        async drop() {
          await store.dropDataset(ds);
        },
      };
    },
    async afterBuild() {
      await store.releaseMemory();
    },
    async unload() {
      // The dataset is gone; what is left is the worker thread itself.
      await store.close();
      return 'afterDropStoreOpen';
    },
  };
};

const hnswlibNode: Loader = async () => {
  const mod = await import('hnswlib-node');
  const { HierarchicalNSW } = mod.default; // a CommonJS addon: default is module.exports
  return {
    notes: ['markDelete per id; no way to free the index but dropping the object'],
    create(spec) {
      let idx: InstanceType<typeof HierarchicalNSW> | undefined = new HierarchicalNSW('l2', spec.dim);
      idx.initIndex(spec.n, M, EF_CONSTRUCTION, SEED);
      return {
        add(firstId, vectors) {
          // The addon takes only plain arrays.
          for (let i = 0, off = 0; off < vectors.length; i++, off += spec.dim) {
            idx!.addPoint(Array.from(vectors.subarray(off, off + spec.dim)), firstId + i);
          }
        },
        delete(ids) {
          for (const id of ids) idx!.markDelete(id);
          return ids.length;
        },
        drop() {
          idx = undefined;
        },
      };
    },
  };
};

interface WasmHnsw {
  initIndex(maxElements: number, m: number, efConstruction: number, seed: number): void;
  addPoint(point: Float32Array, label: number, replaceDeleted: boolean): void;
  markDeleteItems(labels: number[]): void;
  delete(): void;
}
interface WasmLib {
  HierarchicalNSW: new (space: 'l2', dim: number, autoSaveFilename: string) => WasmHnsw;
}

const hnswlibWasm: Loader = async () => {
  // The emscripten glue is a web build: it needs `window` to load (see engines.ts).
  (globalThis as { window?: unknown }).window = globalThis;
  // loadHnswlib() keeps the module instance in a closure for good, so to be able to drop
  // the module this calls the emscripten factory chunk next to it directly (which also
  // skips the IDBFS mount that fails in Node).
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
      let idx: WasmHnsw | undefined = new lib!.HierarchicalNSW('l2', spec.dim, '');
      idx.initIndex(spec.n, M, EF_CONSTRUCTION, SEED);
      return {
        add(firstId, vectors) {
          for (let i = 0, off = 0; off < vectors.length; i++, off += spec.dim) {
            idx!.addPoint(vectors.subarray(off, off + spec.dim), firstId + i, false);
          }
        },
        delete(ids) {
          // markDeleteItems, not markDelete per id: this build's markDelete costs O(n)
          // per call (~1 ms at 10k), which would make the step take minutes at 100k.
          idx!.markDeleteItems(Array.from(ids));
          return ids.length;
        },
        drop() {
          idx?.delete(); // frees the C++ object inside the module's heap
          idx = undefined;
        },
      };
    },
    async unload() {
      lib = undefined;
      return 'afterIndexDeleteModuleKept';
    },
  };
};

const usearch: Loader = async () => {
  const { Index, MetricKind, ScalarKind } = await import('usearch');
  return {
    notes: ['remove(keys) in one call; no way to free the index but dropping the object'],
    create(spec) {
      let idx: InstanceType<typeof Index> | undefined = new Index({
        dimensions: spec.dim,
        metric: MetricKind.L2sq,
        quantization: ScalarKind.F32,
        connectivity: M,
        expansion_add: EF_CONSTRUCTION,
        expansion_search: 64,
        multi: false,
      });
      return {
        add(firstId, vectors) {
          const count = vectors.length / spec.dim;
          const keys = new BigUint64Array(count);
          for (let i = 0; i < count; i++) keys[i] = BigInt(firstId + i);
          idx!.add(keys, vectors, 1);
        },
        delete(ids) {
          const keys = BigUint64Array.from(ids, (id) => BigInt(id));
          const removed = idx!.remove(keys);
          return Array.isArray(removed) ? removed.reduce((a, b) => a + b, 0) : removed;
        },
        drop() {
          idx = undefined;
        },
      };
    },
  };
};

const LOADERS: Record<EngineName, Loader> = {
  'quiver-index': quiverIndex,
  'quiver-store': quiverStore,
  'hnswlib-node': hnswlibNode,
  'hnswlib-wasm': hnswlibWasm,
  usearch,
};

// ---------------------------------------------------------------- child: the run

async function build(index: MemIndex, base: Float32Array, n: number, dim: number): Promise<void> {
  for (let start = 0; start < n; start += ADD_CHUNK) {
    const end = Math.min(n, start + ADD_CHUNK);
    await index.add(start, base.subarray(start * dim, end * dim));
  }
}

const toMb = (bytes: number) => bytes / MB;

async function runChild(engineName: EngineName, n: number): Promise<Row> {
  // The data first, and kept alive to the end, so it is part of every reading.
  const spec = { ...generatedSpecs(false)[0]!, n, nq: 1 };
  const { base } = generate(spec);
  const dim = spec.dim;
  const doomed = randomHalf(n, DELETE_SEED);

  const engine = await LOADERS[engineName]();
  // Warm-up: a tiny index through every step, so module compilation, lazily loaded code
  // and JIT land before the baseline, not in the index's bytes.
  {
    const warm = await engine.create({ dim, n: WARMUP_N });
    await build(warm, base, WARMUP_N, dim);
    await warm.delete(Uint32Array.of(0, 1));
    await warm.compact?.();
    await warm.drop();
  }

  const baseline = await settle();

  let t = performance.now();
  let index: MemIndex | undefined = await engine.create({ dim, n });
  await build(index, base, n, dim);
  const buildSeconds = (performance.now() - t) / 1000;
  await engine.afterBuild?.();
  const afterBuild = await settle();
  const engineBytes: Record<string, number> = {};
  const record = async (when: string) => {
    const b = await index?.engineBytes?.();
    if (b) for (const [k, v] of Object.entries(b)) engineBytes[`${when}.${k}`] = v;
  };
  await record('afterBuild');

  t = performance.now();
  const deleted = await index.delete(doomed);
  const deleteMs = performance.now() - t;
  const afterDelete = await settle();
  await record('afterDelete');

  let afterCompact: Settled | null = null;
  let compactMs: number | null = null;
  if (index.compact) {
    t = performance.now();
    await index.compact();
    compactMs = performance.now() - t;
    afterCompact = await settle();
    await record('afterCompact');
  }

  // Drop: every reference goes; then GCs and fine-grained polling, so the release time
  // is known to ~10 ms. Then, where it means something, the engine itself goes too.
  t = performance.now();
  await index.drop();
  index = undefined;
  const dropCallMs = performance.now() - t;
  const dropped = await settle(10);
  const dropReleaseMs = dropCallMs + dropped.reachedMs;
  let afterDrop = dropped;
  const extra: Record<string, number> = {};
  if (engine.unload) {
    extra[await engine.unload()] = dropped.rss;
    afterDrop = await settle(10);
  }

  // Keep the data alive to here: touching it after the last reading.
  if (base[0] !== base[0]) throw new Error('unreachable');

  const usageMb: Row['usageMb'] = {};
  const points: [string, Settled | null][] = [
    ['baseline', baseline], ['afterBuild', afterBuild], ['afterDelete', afterDelete], ['afterCompact', afterCompact],
    ...(engine.unload ? [['dropped', dropped] as [string, Settled]] : []), ['afterDrop', afterDrop],
  ];
  for (const [k, p] of points) {
    if (!p) continue;
    const u = p.usage;
    usageMb[k] = { rss: toMb(u.rss), heapTotal: toMb(u.heapTotal), heapUsed: toMb(u.heapUsed), external: toMb(u.external), arrayBuffers: toMb(u.arrayBuffers) };
  }

  const indexBytes = afterBuild.rss - baseline.rss;
  const returnedAfterDelete = afterBuild.rss - (afterCompact ?? afterDelete).rss;
  return {
    engine: engineName,
    n,
    dim,
    baselineMb: toMb(baseline.rss),
    afterBuildMb: toMb(afterBuild.rss),
    afterDeleteMb: toMb(afterDelete.rss),
    afterCompactMb: afterCompact ? toMb(afterCompact.rss) : null,
    afterDropMb: toMb(afterDrop.rss),
    indexMb: toMb(indexBytes),
    returnedAfterDeleteMb: toMb(returnedAfterDelete),
    returnedAfterDeleteFraction: indexBytes > 0 ? returnedAfterDelete / indexBytes : 0,
    returnedAfterDropMb: toMb(afterBuild.rss - afterDrop.rss),
    dropOverBaselineMb: toMb(afterDrop.rss - baseline.rss),
    deleted,
    buildSeconds,
    deleteMs,
    compactMs,
    dropCallMs,
    dropReleaseMs,
    extraMb: Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, toMb(v)])),
    engineBytes,
    usageMb,
    notes: engine.notes,
  };
}

// ---------------------------------------------------------------- parent

function spawnChild(engine: EngineName, n: number, verbose: boolean): Promise<Result> {
  const fail = (error: string): ErrorRow => ({ engine, error });
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [...CHILD_NODE_FLAGS, thisFile, '--child', `engine=${engine}`, `n=${n}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (verbose) process.stderr.write(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolvePromise(fail(`spawn failed: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (line) {
        try {
          resolvePromise(JSON.parse(line.slice(RESULT_PREFIX.length)) as Result);
          return;
        } catch {
          // fall through: report as a crash
        }
      }
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      resolvePromise(fail(`child exited (${signal ?? `code ${code}`})${tail ? `: ${tail}` : ''}`));
    });
  });
}

const log = (msg: string) => process.stderr.write(`[memory] ${msg}\n`);

const f1 = (x: number) => x.toFixed(1);
const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;

interface TargetCheck {
  engine: string;
  target: string;
  pass: boolean;
  detail: string;
  value: number;
}

function targetChecks(rows: Result[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const r of rows) {
    if (!r.engine.startsWith('quiver')) continue;
    if (isError(r)) {
      checks.push({ engine: r.engine, target: 'run', pass: false, detail: `error: ${r.error}`, value: NaN });
      continue;
    }
    const drop = (label: string, mb: number) =>
      checks.push({
        engine: r.engine,
        target: `${label} within ${TARGET_DROP_WITHIN_MB} MB of baseline`,
        // below the baseline counts: nothing of the index is left
        pass: mb - r.baselineMb <= TARGET_DROP_WITHIN_MB,
        detail: `${f1(mb)} MB vs baseline ${f1(r.baselineMb)} MB (${signed(mb - r.baselineMb)} MB); release took ${Math.round(r.dropReleaseMs)} ms`,
        value: mb - r.baselineMb,
      });
    const open = r.extraMb.afterDropStoreOpen;
    if (open !== undefined) drop('after dropDataset (store open)', open);
    drop(open !== undefined ? 'after dropDataset + close' : 'after drop', r.afterDropMb);
    checks.push({
      engine: r.engine,
      target: `delete half + compact returns >= ${TARGET_COMPACT_RETURN * 100}% of the index`,
      pass: r.afterCompactMb !== null && r.returnedAfterDeleteFraction >= TARGET_COMPACT_RETURN,
      detail: `returned ${f1(r.returnedAfterDeleteMb)} of ${f1(r.indexMb)} MB (${(r.returnedAfterDeleteFraction * 100).toFixed(1)}%)`,
      value: r.returnedAfterDeleteFraction,
    });
  }
  return checks;
}

function printTable(rows: Result[], n: number, checks: TargetCheck[]): void {
  const lines: string[] = [];
  lines.push('');
  lines.push(`== process RSS in MB: n=${n} dim=128 M=${M} efConstruction=${EF_CONSTRUCTION}, delete a random half ==`);
  const cols: [string, number][] = [
    ['engine', 13],
    ['baseline', 9],
    ['built', 8],
    ['del half', 9],
    ['compact', 8],
    ['dropped', 8],
    ['index MB', 9],
    ['returned after delete', 22],
    ['returned after drop', 23],
  ];
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(cols[i]![1]) : c.padStart(cols[i]![1]))).join(' |');
  lines.push(fmt(cols.map(([h]) => h)));
  lines.push('-'.repeat(cols.reduce((a, [, w]) => a + w + 2, -2)));
  for (const r of rows) {
    if (isError(r)) {
      lines.push(`${r.engine.padEnd(13)} | error: ${r.error}`);
      continue;
    }
    lines.push(
      fmt([
        r.engine,
        f1(r.baselineMb),
        f1(r.afterBuildMb),
        f1(r.afterDeleteMb),
        r.afterCompactMb === null ? '-' : f1(r.afterCompactMb),
        f1(r.afterDropMb),
        f1(r.indexMb),
        `${f1(r.returnedAfterDeleteMb)} (${(r.returnedAfterDeleteFraction * 100).toFixed(0)}%)`,
        `${f1(r.returnedAfterDropMb)} (base ${signed(r.dropOverBaselineMb)})`,
      ]),
    );
  }
  lines.push('');
  lines.push('returned after delete = built - (compact, else del half); base = dropped - baseline');
  for (const r of rows) {
    if (isError(r)) continue;
    const parts = [
      `build ${r.buildSeconds.toFixed(1)} s`,
      `delete ${Math.round(r.deleteMs)} ms`,
      ...(r.compactMs === null ? [] : [`compact ${Math.round(r.compactMs)} ms`]),
      `drop call ${Math.round(r.dropCallMs)} ms, RSS settled ${Math.round(r.dropReleaseMs)} ms after the drop`,
      ...Object.entries(r.extraMb).map(([k, v]) => `${k} ${f1(v)} MB`),
    ];
    lines.push(`  ${r.engine.padEnd(13)} ${parts.join('; ')}`);
    const eb = r.engineBytes;
    if (eb['afterBuild.committed'] !== undefined) {
      const c = (k: string) => (eb[k] === undefined ? '-' : f1(toMb(eb[k]!)));
      lines.push(
        `  ${''.padEnd(13)} WASM committed MB: built ${c('afterBuild.committed')}, del half ${c('afterDelete.committed')}, compact ${c('afterCompact.committed')}`,
      );
    }
    for (const note of r.notes) lines.push(`  ${''.padEnd(13)} ${note}`);
  }
  lines.push('');
  lines.push('quiver targets (index MB = built - baseline; the benchmark does not fail on a miss):');
  for (const c of checks) lines.push(`  ${c.pass ? 'PASS' : 'MISS'}  ${c.engine.padEnd(13)} ${c.target}: ${c.detail}`);
  process.stdout.write(lines.join('\n') + '\n');
}

const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      json: { type: 'string' },
      small: { type: 'boolean', default: false },
      engines: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      child: { type: 'boolean', default: false },
    },
  });

  if (values.child) {
    const kv = Object.fromEntries(positionals.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    const engine = (kv.engine ?? '') as EngineName;
    let result: Result;
    try {
      if (!ENGINE_NAMES.includes(engine)) throw new Error(`unknown engine ${engine}`);
      result = await runChild(engine, Number(kv.n ?? N_FULL));
    } catch (e) {
      const err = e as Error;
      process.stderr.write(`${err.stack ?? err.message}\n`);
      result = { engine, error: err.message?.split('\n')[0] ?? String(e) };
    }
    process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(result)}\n`);
    // A library may leave handles open (a worker, a timer); the result is out, so leave.
    process.exit(0);
  }

  const started = performance.now();
  const engines = list(values.engines) ?? [...ENGINE_NAMES];
  for (const e of engines) if (!ENGINE_NAMES.includes(e as EngineName)) throw new Error(`unknown engine ${e} (have ${ENGINE_NAMES.join(', ')})`);
  const n = values.small ? N_SMALL : N_FULL;

  const rows: Result[] = [];
  for (const engine of engines as EngineName[]) {
    log(`${engine} (n=${n})...`);
    const t = performance.now();
    const r = await spawnChild(engine, n, values.verbose);
    log(`${engine} ${isError(r) ? `failed: ${r.error}` : 'done'} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    rows.push(r);
  }
  const checks = targetChecks(rows);
  printTable(rows, n, checks);

  if (values.json) {
    const file = resolve(values.json);
    mkdirSync(dirname(file), { recursive: true });
    const targets = {
      dropWithinMb: TARGET_DROP_WITHIN_MB,
      compactReturnFraction: TARGET_COMPACT_RETURN,
      checks,
    };
    writeFileSync(file, JSON.stringify({ rows, targets }, null, 2) + '\n');
    log(`wrote ${file}`);
  }
  log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
