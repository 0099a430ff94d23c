// The rows that decide issue 11's targets, measured in ONE process, interleaved:
// quiver (f32), quiver of another build (--baseline), hnswlib-node and quiver-int8
// (oversampling 0, 2, 4) are built on the same data, then every (engine, ef) is
// timed in turn, round after round, so load from other processes lands on all of
// them alike. bench/ann.ts runs engines one after another in fresh processes
// (clean memory numbers); on a shared machine its QPS swings by ±30% between
// children, which is more than the differences this answers.
//
//   node dist/bench/ann-interleaved.js --dataset clustered-100k-128 [--baseline DIR]
//                                      [--efs 16,32,48,64,96] [--rounds 7]
//
// The dataset must be cached by a bench:ann run first (bench/results/<name>-*.bin).
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { K, loadDataset } from './datasets.js';

const ROUND_MS = 200;

interface Row {
  name: string;
  search: (q: number) => ArrayLike<number | bigint | string>;
}

type HostModule = typeof import('../host/index.js');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dataset: { type: 'string' },
      baseline: { type: 'string' },
      efs: { type: 'string', default: '16,32,48,64,96' },
      rounds: { type: 'string', default: '7' },
    },
  });
  const here = dirname(fileURLToPath(import.meta.url));
  const results = resolve(here, '..', '..', 'bench', 'results');
  const file = readdirSync(results).find((f) => f.startsWith(`${values.dataset}-`) && f.endsWith('.bin'));
  if (!values.dataset || !file) throw new Error(`--dataset: no cached ${values.dataset ?? '?'} in ${results} (run bench:ann first)`);
  const ds = loadDataset({ name: values.dataset, kind: 'cache', file: join(results, file) });
  const { n, dim, nq, metric } = ds;
  const efs = values.efs.split(',').map(Number);
  const rounds = Number(values.rounds);

  const current = (await import('../host/index.js')) as HostModule;
  const baseline = values.baseline
    ? ((await import(pathToFileURL(resolve(values.baseline, 'dist', 'host', 'index.js')).href)) as HostModule)
    : undefined;
  const ids = Uint32Array.from({ length: n }, (_, i) => i);
  const build = (mod: HostModule, quantized: boolean) => {
    const t = performance.now();
    const idx = new mod.Index({
      dim, metric, M: 16, efConstruction: 200, seed: 100,
      ...(quantized ? { quantization: { scalar: { type: 'int8' as const, quantile: 0.99 } } } : {}),
    });
    for (let s = 0; s < n; s += 1000) {
      const e = Math.min(n, s + 1000);
      idx.add(ids.subarray(s, e), ds.base.subarray(s * dim, e * dim));
    }
    process.stderr.write(`built ${quantized ? 'int8' : 'f32'} in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
    return idx;
  };
  const f32 = build(current, false);
  const base = baseline && build(baseline, false);
  const int8 = build(current, true);
  const { HierarchicalNSW } = (await import('hnswlib-node')).default;
  const hnsw = new HierarchicalNSW(metric, dim);
  hnsw.initIndex(n, 16, 200, 100);
  for (let i = 0; i < n; i++) hnsw.addPoint(Array.from(ds.base.subarray(i * dim, (i + 1) * dim)), i);

  const qs = Array.from({ length: nq }, (_, i) => ds.queries.slice(i * dim, (i + 1) * dim));
  const arrays = qs.map((q) => Array.from(q));
  const rows: Row[] = [];
  for (const ef of efs) {
    rows.push({ name: `quiver ef=${ef}`, search: (q) => f32.search(qs[q]!, K, { ef }).ids });
    if (base) rows.push({ name: `quiver-baseline ef=${ef}`, search: (q) => base.search(qs[q]!, K, { ef }).ids });
    rows.push({ name: `hnswlib-node ef=${ef}`, search: (q) => (hnsw.setEf(ef), hnsw.searchKnn(arrays[q]!, K).neighbors) });
    rows.push({ name: `quiver-int8 os=0 ef=${ef}`, search: (q) => int8.search(qs[q]!, K, { ef, quantization: { rescore: false } }).ids });
    for (const oversampling of [2, 4]) {
      rows.push({ name: `quiver-int8 os=${oversampling} ef=${ef}`, search: (q) => int8.search(qs[q]!, K, { ef, quantization: { oversampling } }).ids });
    }
  }
  const recall = rows.map((row) => {
    let hits = 0;
    for (let q = 0; q < nq; q++) {
      const truth = new Set(ds.gt.subarray(q * K, q * K + K));
      for (const id of Array.from(row.search(q))) if (truth.has(Number(id))) hits++;
    }
    return hits / (nq * K);
  });
  const qps: number[][] = rows.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < rows.length; i++) {
      const j = (i + r) % rows.length; // each round starts one row later
      let done = 0;
      let elapsed = 0;
      const t = performance.now();
      do {
        for (let q = 0; q < nq; q++) rows[j]!.search(q);
        done += nq;
        elapsed = performance.now() - t;
      } while (elapsed < ROUND_MS);
      qps[j]!.push(done / (elapsed / 1000));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  process.stdout.write(`${values.dataset}: n=${n} dim=${dim} queries=${nq}, ${rounds} interleaved rounds of >= ${ROUND_MS} ms, median\n`);
  for (let i = 0; i < rows.length; i++) {
    const xs = qps[i]!;
    process.stdout.write(
      `${rows[i]!.name.padEnd(28)} R@10 ${recall[i]!.toFixed(3)}  QPS ${fmt(median(xs)).padStart(7)}  (min ${fmt(Math.min(...xs))}, max ${fmt(Math.max(...xs))})\n`,
    );
  }
  f32.dispose();
  base?.dispose();
  int8.dispose();
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
