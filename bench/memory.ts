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
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generate, generatedSpecs } from './datasets.js';
import { MEMORY_ENGINES, type EngineIndex } from './engines.js';
import { childArgs, reportResult, runChild } from './lib/child.js';
import { rng, sample } from './lib/random.js';
import { STABLE, settle, type Settled } from './lib/rss.js';

const RESULT_PREFIX = '@@quiver-memory-result@@ ';
const M = 16;
const EF_CONSTRUCTION = 200;
const N_FULL = 100_000;
const N_SMALL = 10_000;
const ADD_CHUNK = 1000;
const DELETE_SEED = 0x5eed;
const WARMUP_N = 200;
const CHILD_TIMEOUT_MS = 20 * 60_000;
// V8 grows the young generation (up to 2 x 16 MB) under allocation-heavy loops such as a
// build, and its memory reducer shrinks it again seconds later: RSS noise of 5-30 MB that
// would land in whichever step happens to be running. A 1 MB semi-space caps it at ~1 MB.
const CHILD_NODE_FLAGS = ['--expose-gc', '--max-semi-space-size=1'];
const MB = 1024 * 1024;

// quiver's targets.
const TARGET_DROP_WITHIN_MB = 2;
const TARGET_COMPACT_RETURN = 0.45;

const ENGINE_NAMES = MEMORY_ENGINES.map((e) => e.name);

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

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g !== 'function') throw new Error('run the child with --expose-gc');
  g();
}

/**
 * RSS once two readings STABLE.windowMs apart differ by less than STABLE.bytes
 * (at least STABLE.minMs: a dropped Memory is unmapped ~0.2 s after its GC).
 * A GC every window, since V8 frees a dropped WebAssembly.Memory (or a native
 * object's finalizer runs) only after a GC finds it dead; `pollMs` below the
 * window only sharpens `reachedMs`.
 */
const settled = (pollMs: number = STABLE.windowMs): Promise<Settled> => settle({ gc, pollMs, gcEveryMs: STABLE.windowMs });

// ---------------------------------------------------------------- child: the run

async function build(index: EngineIndex, base: Float32Array, n: number, dim: number): Promise<void> {
  for (let start = 0; start < n; start += ADD_CHUNK) {
    const end = Math.min(n, start + ADD_CHUNK);
    await index.add(start, base.subarray(start * dim, end * dim));
  }
}

const toMb = (bytes: number) => bytes / MB;

async function measureEngine(engineName: string, n: number): Promise<Row> {
  // The data first, and kept alive to the end, so it is part of every reading.
  const spec = { ...generatedSpecs(false)[0]!, n, nq: 1 };
  const { base } = generate(spec);
  const dim = spec.dim;
  const doomed = sample(n, n >> 1, rng(DELETE_SEED));

  const found = MEMORY_ENGINES.find((e) => e.name === engineName);
  if (found === undefined) throw new Error(`unknown engine ${engineName}`);
  const engine = await found.load();
  const buildSpec = (count: number) => ({ dim, n: count, metric: 'l2' as const, M, efConstruction: EF_CONSTRUCTION });
  // Warm-up: a tiny index through every step, so module compilation, lazily loaded code
  // and JIT land before the baseline, not in the index's bytes.
  {
    const warm = await engine.create(buildSpec(WARMUP_N));
    await build(warm, base, WARMUP_N, dim);
    await warm.remove(Uint32Array.of(0, 1));
    await warm.compact?.();
    await warm.dispose();
  }

  const baseline = await settled();

  let t = performance.now();
  let index: EngineIndex | undefined = await engine.create(buildSpec(n));
  await build(index, base, n, dim);
  const buildSeconds = (performance.now() - t) / 1000;
  await engine.afterBuild?.();
  const afterBuild = await settled();
  const engineBytes: Record<string, number> = {};
  const record = async (when: string) => {
    const b = await index?.engineBytes?.();
    if (b) for (const [k, v] of Object.entries(b)) engineBytes[`${when}.${k}`] = v;
  };
  await record('afterBuild');

  t = performance.now();
  const deleted = await index.remove(doomed);
  const deleteMs = performance.now() - t;
  const afterDelete = await settled();
  await record('afterDelete');

  let afterCompact: Settled | null = null;
  let compactMs: number | null = null;
  if (index.compact) {
    t = performance.now();
    await index.compact();
    compactMs = performance.now() - t;
    afterCompact = await settled();
    await record('afterCompact');
  }

  // Drop: every reference goes; then GCs and fine-grained polling, so the release time
  // is known to ~10 ms. Then, where it means something, the engine itself goes too.
  t = performance.now();
  await index.dispose();
  index = undefined;
  const dropCallMs = performance.now() - t;
  const dropped = await settled(10);
  const dropReleaseMs = dropCallMs + dropped.reachedMs;
  let afterDrop = dropped;
  const extra: Record<string, number> = {};
  if (engine.unload) {
    extra[await engine.unload()] = dropped.rss;
    afterDrop = await settled(10);
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

async function runEngine(engine: string, n: number, verbose: boolean): Promise<Result> {
  const r = await runChild<Result>({
    file: thisFile,
    args: ['--child', `engine=${engine}`, `n=${n}`],
    marker: RESULT_PREFIX,
    nodeFlags: CHILD_NODE_FLAGS,
    timeoutMs: CHILD_TIMEOUT_MS,
    verbose,
  });
  return r.ok ? r.value : { engine, error: r.error };
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
    const kv = childArgs(positionals);
    const engine = kv.engine ?? '';
    let result: Result;
    try {
      result = await measureEngine(engine, Number(kv.n ?? N_FULL));
    } catch (e) {
      const err = e as Error;
      process.stderr.write(`${err.stack ?? err.message}\n`);
      result = { engine, error: err.message?.split('\n')[0] ?? String(e) };
    }
    reportResult(RESULT_PREFIX, result);
    // A library may leave handles open (a worker, a timer); the result is out, so leave.
    process.exit(0);
  }

  const started = performance.now();
  const engines = list(values.engines) ?? [...ENGINE_NAMES];
  for (const e of engines) if (!ENGINE_NAMES.includes(e)) throw new Error(`unknown engine ${e} (have ${ENGINE_NAMES.join(', ')})`);
  const n = values.small ? N_SMALL : N_FULL;

  const rows: Result[] = [];
  for (const engine of engines) {
    log(`${engine} (n=${n})...`);
    const t = performance.now();
    const r = await runEngine(engine, n, values.verbose);
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
