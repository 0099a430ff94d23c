// ANN benchmark: quiver (f32 and int8) vs hnswlib-node, hnswlib-wasm and usearch (f32 and i8).
//
//   node dist/bench/ann.js [--data DIR] [--json FILE] [--small] [--baseline DIR]
//                          [--engines a,b] [--datasets a,b] [--efs 16,32] [--verbose]
//
// The parent prepares datasets and ground truth, then runs every (dataset, engine) pair
// in its own child process, one at a time, so engines cannot disturb each other's
// memory numbers or timings. A child prints one JSON line prefixed with RESULT_PREFIX;
// anything else on its stdout (library chatter) is ignored.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type DatasetRef,
  K,
  SIFT_NAME,
  ensureCached,
  generatedSpecs,
  loadDataset,
  siftFiles,
  siftRef,
} from './datasets.js';
import { BASELINE_ENV, ENGINES, QUIVER_BASELINE, type AnnIndex, type Engine } from './engines.js';
import { childArgs, reportResult, runChild } from './lib/child.js';
import { settle } from './lib/rss.js';

const RESULT_PREFIX = '@@quiver-ann-result@@ ';
const M = 16;
const EF_CONSTRUCTION = 200;
// Steps of about 1.5x: at 100k the f32 engines cross recall 0.95 between 32 and 64, and a
// quantized search with oversampling 4 walks a beam of 40; a coarse grid would compare
// those at unequal beams.
const DEFAULT_EFS = [16, 24, 32, 48, 64, 96, 128, 256];
const ADD_CHUNK = 1000;
const QUERY_RUNS = 3;
// A run repeats the query set until it lasts this long: 100 SIFT queries take ~5 ms,
// far too short to time on a noisy machine. --small trades precision for CI time.
const MIN_RUN_MS = 300;
const MIN_RUN_MS_SMALL = 30;
/** The recall levels the summary reports QPS at (the issue's). */
const RECALLS = [0.95, 0.99] as const;
/** The peer every ratio is taken against. */
const REFERENCE = 'hnswlib-node';
/**
 * Issue 11's targets, by dataset: quiver-int8's QPS at recall@10 >= 0.95 over
 * hnswlib-node's. The run prints the measured ratio against them; it decides nothing.
 */
const QUANT_TARGETS: Record<string, number> = { 'clustered-100k-128': 1.3, 'cosine-20k-768': 1.5 };
const CHILD_TIMEOUT_MS = 20 * 60_000;

const thisFile = fileURLToPath(import.meta.url);

interface SweepPoint {
  ef: number;
  /** quiver-int8's re-rank size as a multiple of k (0: no re-rank); absent for engines without the knob. */
  oversampling?: number;
  recall: number;
  qps: number;
  qpsRuns: number[];
}

interface EngineResult {
  engine: string;
  dataset: string;
  n: number;
  dim: number;
  nq: number;
  buildSeconds: number;
  bytesPerVector: number;
  bytesPerVectorImage: number | null;
  sweep: SweepPoint[];
}

interface ErrorResult {
  engine: string;
  dataset: string;
  error: string;
}

type Result = EngineResult | ErrorResult;

const isError = (r: Result): r is ErrorResult => 'error' in r;

// ---------------------------------------------------------------- child

/** RSS after garbage collection, once it stops moving (the OS and V8 release memory lazily). */
async function settledRss(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const stable = { bytes: 64 * 1024, windowMs: 50, minMs: 0 };
  return (await settle({ gc: () => gc?.(), until: { stable }, pollMs: 50, deadlineMs: 1000 })).rss;
}

function recallAt(results: ArrayLike<number | bigint | string>[], gt: Int32Array): number {
  let hits = 0;
  for (let q = 0; q < results.length; q++) {
    const truth = new Set(gt.subarray(q * K, q * K + K));
    const got = results[q]!;
    for (let i = 0; i < Math.min(got.length, K); i++) if (truth.has(Number(got[i]))) hits++;
  }
  return hits / (results.length * K);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const ALL_ENGINES: readonly Engine[] = [...ENGINES, QUIVER_BASELINE];

async function measureEngine(engineName: string, ref: DatasetRef, efs: number[], minRunMs: number): Promise<EngineResult> {
  const engine = ALL_ENGINES.find((e) => e.name === engineName);
  if (!engine) throw new Error(`unknown engine ${engineName}`);
  const ds = loadDataset(ref);
  const { n, dim, nq } = ds;
  const loaded = await engine.load();
  const queries = Array.from({ length: nq }, (_, q) => ds.queries.slice(q * dim, (q + 1) * dim));

  const rssBefore = await settledRss();
  const t0 = performance.now();
  const idx: AnnIndex = await loaded.create({ dim, n, metric: ds.metric, M, efConstruction: EF_CONSTRUCTION });
  for (let start = 0; start < n; start += ADD_CHUNK) {
    const end = Math.min(n, start + ADD_CHUNK);
    idx.add(start, ds.base.subarray(start * dim, end * dim));
  }
  const buildSeconds = (performance.now() - t0) / 1000;
  const rssAfter = await settledRss();
  const image = idx.imageBytes();

  const prepared = queries.map((q) => idx.prepareQuery(q));
  const results: ArrayLike<number | bigint | string>[] = new Array(nq);
  const sweep: SweepPoint[] = [];
  // One point per ef, or per (oversampling, ef) for an engine with that second knob.
  const settings: { ef: number; oversampling?: number }[] =
    loaded.oversampling && idx.setOversampling
      ? loaded.oversampling.flatMap((oversampling) => efs.map((ef) => ({ ef, oversampling })))
      : efs.map((ef) => ({ ef }));
  for (const setting of settings) {
    if (setting.oversampling !== undefined) idx.setOversampling!(setting.oversampling);
    idx.setEf(setting.ef);
    // Warm-up pass so JIT tiering and cold caches do not land in the first timed run.
    for (let q = 0; q < Math.min(nq, 100); q++) results[q] = idx.search(prepared[q], K);
    const qpsRuns: number[] = [];
    for (let run = 0; run < QUERY_RUNS; run++) {
      let done = 0;
      const t = performance.now();
      let elapsed = 0;
      do {
        for (let q = 0; q < nq; q++) results[q] = idx.search(prepared[q], K);
        done += nq;
        elapsed = performance.now() - t;
      } while (elapsed < minRunMs);
      qpsRuns.push(done / (elapsed / 1000));
    }
    sweep.push({ ...setting, recall: recallAt(results, ds.gt), qps: median(qpsRuns), qpsRuns });
  }
  await idx.dispose();
  return {
    engine: engineName,
    dataset: ds.name,
    n,
    dim,
    nq,
    buildSeconds,
    bytesPerVector: (rssAfter - rssBefore) / n,
    bytesPerVectorImage: image === null ? null : image / n,
    sweep,
  };
}

// ---------------------------------------------------------------- parent

async function runEngine(engine: string, ref: DatasetRef, efs: number[], minRunMs: number, verbose: boolean): Promise<Result> {
  const r = await runChild<Result>({
    file: thisFile,
    args: ['--child', `engine=${engine}`, `dataset=${JSON.stringify(ref)}`, `efs=${efs.join(',')}`, `minRunMs=${minRunMs}`],
    marker: RESULT_PREFIX,
    nodeFlags: ['--expose-gc'],
    timeoutMs: CHILD_TIMEOUT_MS,
    verbose,
  });
  return r.ok ? r.value : { engine, dataset: ref.name, error: r.error };
}

function repoRoot(): string {
  // Compiled to dist/bench/ann.js; walk up to the directory holding package.json.
  let dir = dirname(thisFile);
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

const log = (msg: string) => process.stderr.write(`[ann] ${msg}\n`);

const fmtInt = (x: number) => Math.round(x).toLocaleString('en-US');

/** The fastest setting that reaches recall@10 >= `recall` (over every ef and oversampling swept). */
function bestAt(r: EngineResult, recall: number): SweepPoint | undefined {
  let best: SweepPoint | undefined;
  for (const p of r.sweep) if (p.recall >= recall && (!best || p.qps > best.qps)) best = p;
  return best;
}

const settingOf = (p: SweepPoint) => `ef=${p.ef}${p.oversampling === undefined ? '' : ` os=${p.oversampling}`}`;
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');

function printDataset(name: string, results: Result[]): void {
  const ok = results.filter((r): r is EngineResult => !isError(r));
  const efs = [...new Set(ok.flatMap((r) => r.sweep.map((p) => p.ef)))];
  const first = ok[0];
  const lines: string[] = [];
  lines.push('');
  lines.push(
    first
      ? `== ${name}: n=${first.n} dim=${first.dim} queries=${first.nq} k=${K} M=${M} efConstruction=${EF_CONSTRUCTION} ==`
      : `== ${name} ==`,
  );
  // The sweep: one row per engine, or per oversampling value for an engine that has it.
  const left = ['engine'.padEnd(20), 'build s'.padStart(8), 'vectors/s'.padStart(10), 'B/vec RSS'.padStart(10), 'B/vec img'.padStart(10)].join(' ');
  const group = (s: string) => s.padStart(16);
  lines.push(left + ' |' + efs.map((ef) => group(`ef=${ef}`)).join(' |'));
  lines.push(' '.repeat(left.length) + ' |' + efs.map(() => `${'R@10'.padStart(7)}${'QPS'.padStart(9)}`).join(' |'));
  lines.push('-'.repeat(left.length + efs.length * 18 + 1));
  for (const r of results) {
    if (isError(r)) {
      lines.push(`${r.engine.padEnd(20)} error: ${r.error}`);
      continue;
    }
    const variants = [...new Set(r.sweep.map((p) => p.oversampling))];
    for (const [i, os] of variants.entries()) {
      const label = os === undefined ? r.engine : `${r.engine} os=${os}`;
      const row = [
        label.padEnd(20),
        (i === 0 ? r.buildSeconds.toFixed(2) : '').padStart(8),
        (i === 0 ? fmtInt(r.n / r.buildSeconds) : '').padStart(10),
        (i === 0 ? fmtInt(r.bytesPerVector) : '').padStart(10),
        (i === 0 ? (r.bytesPerVectorImage === null ? '-' : fmtInt(r.bytesPerVectorImage)) : '').padStart(10),
      ].join(' ');
      const cells = efs.map((ef) => {
        const p = r.sweep.find((x) => x.ef === ef && x.oversampling === os);
        return p ? `${p.recall.toFixed(3).padStart(7)}${fmtInt(p.qps).padStart(9)}` : ''.padStart(16);
      });
      lines.push(row + ' |' + cells.join(' |'));
    }
  }

  // The summary: the fastest setting at each recall level, and every number against the reference peer.
  const ref = ok.find((r) => r.engine === REFERENCE);
  lines.push('');
  lines.push(`fastest setting reaching recall@10 >= ${RECALLS.join(' / ')}; x = ratio to ${REFERENCE} (>1: faster, or fewer bytes for B/vec):`);
  const head = [
    'engine'.padEnd(16),
    ...RECALLS.map((r) => `${`QPS@${r}`.padStart(9)} ${'setting'.padEnd(13)} ${'R@10'.padStart(5)} ${'x'.padStart(6)}`),
    'vectors/s'.padStart(10),
    'x'.padStart(6),
    'B/vec RSS'.padStart(10),
    'x'.padStart(6),
    'B/vec img'.padStart(10),
  ];
  lines.push(head.join(' | '));
  for (const r of ok) {
    const cells = RECALLS.map((level) => {
      const p = bestAt(r, level);
      const rp = ref && bestAt(ref, level);
      return p
        ? `${fmtInt(p.qps).padStart(9)} ${settingOf(p).padEnd(13)} ${p.recall.toFixed(3).padStart(5)} ${ratio(p.qps, rp?.qps).padStart(6)}`
        : `${'n/a'.padStart(9)} ${`(max ${Math.max(...r.sweep.map((x) => x.recall)).toFixed(3)})`.padEnd(13)} ${''.padStart(5)} ${''.padStart(6)}`;
    });
    lines.push(
      [
        r.engine.padEnd(16),
        ...cells,
        fmtInt(r.n / r.buildSeconds).padStart(10),
        ratio(ref?.buildSeconds, r.buildSeconds).padStart(6),
        fmtInt(r.bytesPerVector).padStart(10),
        ratio(ref?.bytesPerVector, r.bytesPerVector).padStart(6),
        (r.bytesPerVectorImage === null ? '-' : fmtInt(r.bytesPerVectorImage)).padStart(10),
      ].join(' | '),
    );
  }

  // Issue 11's bars, against what this run measured.
  const byName = (n: string) => ok.find((r) => r.engine === n);
  const level = RECALLS[0];
  const qpsAt = (n: string) => {
    const r = byName(n);
    return r && bestAt(r, level)?.qps;
  };
  const target = QUANT_TARGETS[name];
  const verdict = (x: number | undefined, bar: number) => (x === undefined ? 'n/a' : x >= bar ? 'met' : `missed by ${((1 - x / bar) * 100).toFixed(0)}%`);
  const quant = qpsAt('quiver-int8');
  const refQps = qpsAt(REFERENCE);
  lines.push('');
  lines.push(`targets (issue 11), QPS at recall@10 >= ${level}:`);
  if (target !== undefined) {
    const x = quant !== undefined && refQps ? quant / refQps : undefined;
    lines.push(`  quiver-int8 / ${REFERENCE}: ${ratio(quant, refQps)} (target >= ${target}x): ${verdict(x, target)}`);
  } else {
    lines.push(`  quiver-int8 / ${REFERENCE}: ${ratio(quant, refQps)} (no target on this set)`);
  }
  lines.push(`  quiver / ${REFERENCE}: ${ratio(qpsAt('quiver'), refQps)}`);
  if (byName(QUIVER_BASELINE.name)) {
    const base = qpsAt(QUIVER_BASELINE.name);
    const q = qpsAt('quiver');
    lines.push(
      `  quiver / ${QUIVER_BASELINE.name} (the --baseline build): ${ratio(q, base)} (target: no slower than before; ` +
        `build throughput ${ratio(byName(QUIVER_BASELINE.name)!.buildSeconds, byName('quiver')?.buildSeconds)})`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

function toRecords(results: Result[]): object[] {
  return results.flatMap<object>((r) =>
    isError(r)
      ? [{ engine: r.engine, dataset: r.dataset, error: r.error }]
      : r.sweep.map((p) => ({
          engine: r.engine,
          dataset: r.dataset,
          n: r.n,
          dim: r.dim,
          ef: p.ef,
          oversampling: p.oversampling ?? null,
          recall: p.recall,
          qps: p.qps,
          buildSeconds: r.buildSeconds,
          bytesPerVector: r.bytesPerVector,
          bytesPerVectorImage: r.bytesPerVectorImage,
        })),
  );
}

const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      json: { type: 'string' },
      small: { type: 'boolean', default: false },
      baseline: { type: 'string' },
      engines: { type: 'string' },
      datasets: { type: 'string' },
      efs: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      child: { type: 'boolean', default: false },
    },
  });
  const efs = list(values.efs)?.map(Number) ?? DEFAULT_EFS;
  if (efs.some((ef) => !Number.isInteger(ef) || ef < 1)) throw new Error(`bad --efs ${values.efs}`);

  if (values.child) {
    const kv = childArgs(positionals);
    const engine = kv.engine ?? '';
    let ref: DatasetRef | undefined;
    let result: Result;
    try {
      ref = JSON.parse(kv.dataset ?? '') as DatasetRef;
      result = await measureEngine(engine, ref, list(kv.efs)?.map(Number) ?? DEFAULT_EFS, Number(kv.minRunMs ?? MIN_RUN_MS));
    } catch (e) {
      const err = e as Error;
      process.stderr.write(`${err.stack ?? err.message}\n`);
      result = { engine, dataset: ref?.name ?? '?', error: err.message.split('\n')[0] ?? String(e) };
    }
    reportResult(RESULT_PREFIX, result);
    return;
  }

  const started = performance.now();
  const root = repoRoot();
  const dataDir = resolve(values.data ?? join(root, 'test', 'fixtures'));
  const cacheDir = join(root, 'bench', 'results');
  // --baseline DIR: another checkout (an earlier commit, built with npm run build) whose
  // unquantized Index runs as quiver-baseline, so "no slower than before" is one run's ratio.
  if (values.baseline) {
    const host = resolve(values.baseline, 'dist', 'host', 'index.js');
    if (!existsSync(host)) throw new Error(`--baseline ${values.baseline}: no ${host} (run npm run build there)`);
    process.env[BASELINE_ENV] = host; // the children inherit it
  }
  const defaults = [...ENGINES, ...(values.baseline ? [QUIVER_BASELINE] : [])].map((e) => e.name);
  const engines = list(values.engines) ?? defaults;
  for (const e of engines) if (!ALL_ENGINES.some((x) => x.name === e)) throw new Error(`unknown engine ${e}`);

  const specs = generatedSpecs(values.small);
  const wanted = list(values.datasets);
  const known = [SIFT_NAME, ...specs.map((s) => s.name)];
  for (const d of wanted ?? []) if (!known.includes(d)) throw new Error(`unknown dataset ${d} (have ${known.join(', ')})`);
  const datasets: (DatasetRef | ErrorResult)[] = [];
  if (!wanted || wanted.includes(SIFT_NAME)) {
    const missing = siftFiles(dataDir).filter((f) => !existsSync(f));
    datasets.push(missing.length ? { engine: '*', dataset: SIFT_NAME, error: `missing ${missing.join(', ')}` } : siftRef(dataDir));
  }
  for (const spec of specs) {
    if (wanted && !wanted.includes(spec.name)) continue;
    datasets.push(ensureCached(spec, cacheDir, log));
  }

  const all: Result[] = [];
  for (const ds of datasets) {
    const results: Result[] = [];
    for (const engine of engines) {
      if ('error' in ds) {
        results.push({ ...ds, engine });
        continue;
      }
      log(`${ds.name}: ${engine}...`);
      const t = performance.now();
      const r = await runEngine(engine, ds, efs, values.small ? MIN_RUN_MS_SMALL : MIN_RUN_MS, values.verbose);
      log(`${ds.name}: ${engine} ${isError(r) ? `failed: ${r.error}` : 'done'} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
      results.push(r);
    }
    printDataset('error' in ds ? ds.dataset : ds.name, results);
    all.push(...results);
  }

  if (values.json) {
    const file = resolve(values.json);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(toRecords(all), null, 2) + '\n');
    log(`wrote ${file}`);
  }
  log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
