// ANN benchmark: quiver vs hnswlib-node, hnswlib-wasm and usearch.
//
//   node dist/bench/ann.js [--data DIR] [--json FILE] [--small]
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
import { ENGINES, type AnnIndex } from './engines.js';
import { childArgs, reportResult, runChild } from './lib/child.js';
import { settle } from './lib/rss.js';

const RESULT_PREFIX = '@@quiver-ann-result@@ ';
const M = 16;
const EF_CONSTRUCTION = 200;
const DEFAULT_EFS = [16, 32, 64, 128, 256];
const ADD_CHUNK = 1000;
const QUERY_RUNS = 3;
// A run repeats the query set until it lasts this long: 100 SIFT queries take ~5 ms,
// far too short to time on a noisy machine. --small trades precision for CI time.
const MIN_RUN_MS = 300;
const MIN_RUN_MS_SMALL = 30;
const TARGET_RECALL = 0.95;
const CHILD_TIMEOUT_MS = 20 * 60_000;

const thisFile = fileURLToPath(import.meta.url);

interface SweepPoint {
  ef: number;
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

async function measureEngine(engineName: string, ref: DatasetRef, efs: number[], minRunMs: number): Promise<EngineResult> {
  const engine = ENGINES.find((e) => e.name === engineName);
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
  for (const ef of efs) {
    idx.setEf(ef);
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
    sweep.push({ ef, recall: recallAt(results, ds.gt), qps: median(qpsRuns), qpsRuns });
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

function operatingPoint(r: EngineResult): SweepPoint | undefined {
  return r.sweep.find((p) => p.recall >= TARGET_RECALL);
}

function printDataset(name: string, results: Result[]): void {
  const ok = results.filter((r): r is EngineResult => !isError(r));
  const efs = ok[0]?.sweep.map((p) => p.ef) ?? [];
  const first = ok[0];
  const lines: string[] = [];
  lines.push('');
  lines.push(
    first
      ? `== ${name}: n=${first.n} dim=${first.dim} queries=${first.nq} k=${K} M=${M} efConstruction=${EF_CONSTRUCTION} ==`
      : `== ${name} ==`,
  );
  const left = ['engine'.padEnd(14), 'build s'.padStart(8), 'vectors/s'.padStart(10), 'B/vec RSS'.padStart(10), 'B/vec img'.padStart(10)].join(' ');
  const group = (s: string) => s.padStart(16);
  lines.push(left + ' |' + efs.map((ef) => group(`ef=${ef}`)).join(' |'));
  lines.push(' '.repeat(left.length) + ' |' + efs.map(() => `${'R@10'.padStart(7)}${'QPS'.padStart(9)}`).join(' |'));
  lines.push('-'.repeat(left.length + efs.length * 18 + 1));
  for (const r of results) {
    if (isError(r)) {
      lines.push(`${r.engine.padEnd(14)} error: ${r.error}`);
      continue;
    }
    const row = [
      r.engine.padEnd(14),
      r.buildSeconds.toFixed(2).padStart(8),
      fmtInt(r.n / r.buildSeconds).padStart(10),
      fmtInt(r.bytesPerVector).padStart(10),
      (r.bytesPerVectorImage === null ? '-' : fmtInt(r.bytesPerVectorImage)).padStart(10),
    ].join(' ');
    lines.push(row + ' |' + r.sweep.map((p) => `${p.recall.toFixed(3).padStart(7)}${fmtInt(p.qps).padStart(9)}`).join(' |'));
  }

  lines.push('');
  lines.push(`lowest ef reaching recall@10 >= ${TARGET_RECALL}:`);
  for (const r of ok) {
    const p = operatingPoint(r);
    const best = r.sweep.reduce((a, b) => (b.recall > a.recall ? b : a), r.sweep[0]!);
    lines.push(
      `  ${r.engine.padEnd(14)} ` +
        (p
          ? `ef=${String(p.ef).padEnd(4)} recall ${p.recall.toFixed(3)}  QPS ${fmtInt(p.qps)}`
          : `n/a (best recall ${best.recall.toFixed(3)} at ef=${best.ef})`),
    );
  }
  const q = results.find((r) => r.engine === 'quiver');
  if (!q || isError(q)) {
    lines.push('quiver vs peers: n/a (no quiver result)');
  } else {
    lines.push('quiver vs peers (>1 means quiver is faster):');
    const qp = operatingPoint(q);
    for (const peer of ok) {
      if (peer.engine === 'quiver') continue;
      const pp = operatingPoint(peer);
      const qpsRatio = qp && pp ? `${(qp.qps / pp.qps).toFixed(2)}x` : 'n/a';
      const buildRatio = `${(peer.buildSeconds / q.buildSeconds).toFixed(2)}x`;
      lines.push(`  vs ${peer.engine.padEnd(14)} QPS at recall>=${TARGET_RECALL}: ${qpsRatio.padEnd(6)} build throughput: ${buildRatio}`);
    }
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
  const engines = list(values.engines) ?? ENGINES.map((e) => e.name);
  for (const e of engines) if (!ENGINES.some((x) => x.name === e)) throw new Error(`unknown engine ${e}`);

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
