/**
 * bench:filter — filtered search at every selectivity, against the peers.
 *
 *   npm run bench:filter -- [--n 100000] [--queries 200] [--ef 64] [--json FILE] [--small] [--ood-queries]
 *
 * n x 128 clustered vectors (M 16, efConstruction 200, one thread), the
 * queries drawn from the same clusters (--ood-queries: from 100 other
 * centres, far from every point, where a walk that every point passes has
 * recall@10 0.45 at ef 64: that measures the data, not the filter), with
 * generated payloads: `kind` a keyword with a Zipf distribution over 1,000
 * values, `n` an integer uniform in [0, 1e6), `tags` an array of 1 to 3 of
 * 100 keywords. For each selectivity bucket (50%, 10%, 1%, 0.1%) and each
 * filter family (a range on `n`, a match on `kind`), in one run:
 *
 * - quiver's single-thread Index with `filter` (the core plans and
 *   evaluates it, no call into JS per candidate), without payload indexes
 *   and, on a copy of the same graph, with indexes on `n` (integer) and
 *   `kind` (keyword), the
 *   filter passed as JSON on every call (a caller that reuses one filter
 *   can compileFilter it once),
 * - hnswlib-node's searchKnn with a filter callback (the cheapest callback
 *   there is: a lookup in a precomputed mask),
 * - exact brute force in JS: evaluate the predicate over every payload,
 *   score the matching points, keep the top k.
 *
 * Recall@10 is against the exact filtered top 10. QPS is the median of three
 * passes over the queries. The ratios are quiver / hnswlib-node.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ClusteredSource, clustered, rng } from './lib/random.js';
import { table } from './lib/table.js';
import { Index, type Filter } from '../host/index.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string' },
    queries: { type: 'string' },
    ef: { type: 'string', default: '64' },
    json: { type: 'string' },
    small: { type: 'boolean', default: false },
    'ood-queries': { type: 'boolean', default: false },
  },
});

const DIM = 128;
const K = 10;
const M = 16;
const EFC = 200;
const KINDS = 1000;
const TAGS = 100;
const BUCKETS = [0.5, 0.1, 0.01, 0.001] as const;

interface Point {
  kind: string;
  n: number;
  tags: string[];
}

/** Zipf ranks over `m` values with exponent 1: a table of cumulative probabilities. */
function zipf(m: number): { sample: (u: number) => number; freq: (r: number) => number } {
  const weights = Array.from({ length: m }, (_, r) => 1 / (r + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let acc = 0;
  for (const w of weights) cdf.push((acc += w / total));
  return {
    sample(u) {
      let lo = 0;
      let hi = m - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdf[mid]! < u) lo = mid + 1; else hi = mid;
      }
      return lo;
    },
    freq: (r) => weights[r]! / total,
  };
}

function payloads(n: number, seed: number): Point[] {
  const rand = rng(seed);
  const z = zipf(KINDS);
  return Array.from({ length: n }, () => {
    const tags = new Set<string>();
    const count = 1 + Math.floor(rand() * 3);
    while (tags.size < count) tags.add(`t${Math.floor(rand() * TAGS)}`);
    return { kind: `k${z.sample(rand())}`, n: Math.floor(rand() * 1e6), tags: [...tags] };
  });
}

interface Family {
  name: string;
  filter: Filter;
  test: (p: Point) => boolean;
}

/** The filters of one bucket: a range with exactly that selectivity, and the Zipf kinds whose share comes closest. */
function families(target: number): Family[] {
  const below = Math.round(target * 1e6);
  const z = zipf(KINDS);
  // the fewest consecutive ranks (from the most frequent down, or one rank) closest to the target share
  let best: string[] = ['k0'];
  let bestErr = Infinity;
  for (let r = 0; r < KINDS; r++) {
    const err = Math.abs(z.freq(r) - target);
    if (err < bestErr) [best, bestErr] = [[`k${r}`], err];
  }
  let acc = 0;
  for (let r = 0; r < KINDS; r++) {
    acc += z.freq(r);
    const err = Math.abs(acc - target);
    if (err < bestErr) [best, bestErr] = [Array.from({ length: r + 1 }, (_, i) => `k${i}`), err];
    if (acc > target) break;
  }
  const kinds = new Set(best);
  return [
    { name: 'range n', filter: { must: [{ key: 'n', range: { lt: below } }] }, test: (p) => p.n < below },
    {
      name: best.length === 1 ? 'kind =' : `kind any(${best.length})`,
      filter: { must: [{ key: 'kind', match: best.length === 1 ? { value: best[0]! } : { any: best } }] },
      test: (p) => kinds.has(p.kind),
    },
  ];
}

function l2(a: Float32Array, ao: number, b: Float32Array, bo: number): number {
  let s = 0;
  for (let i = 0; i < DIM; i++) {
    const d = a[ao + i]! - b[bo + i]!;
    s += d * d;
  }
  return s;
}

/** Exact filtered top k: evaluate the predicate over every point, score the matches. */
function bruteForce(data: Float32Array, points: Point[], test: (p: Point) => boolean, q: Float32Array, qo: number): number[] {
  const best: { id: number; d: number }[] = [];
  for (let i = 0; i < points.length; i++) {
    if (!test(points[i]!)) continue;
    const d = l2(data, i * DIM, q, qo);
    if (best.length < K || d < best[best.length - 1]!.d) {
      best.push({ id: i, d });
      best.sort((x, y) => x.d - y.d);
      if (best.length > K) best.pop();
    }
  }
  return best.map((b) => b.id);
}

function recall(found: ArrayLike<number | bigint | string>, truth: number[]): number {
  if (truth.length === 0) return 1;
  const want = new Set(truth);
  let hit = 0;
  for (let i = 0; i < found.length; i++) if (want.has(Number(found[i]))) hit++;
  return hit / truth.length;
}

/** Median QPS of three passes, and the mean recall of the last. */
function measure(nq: number, truth: number[][], run: (i: number) => ArrayLike<number | bigint | string>): { qps: number; recall: number } {
  const qps: number[] = [];
  let rec = 0;
  for (let pass = 0; pass < 3; pass++) {
    rec = 0;
    const t0 = performance.now();
    for (let i = 0; i < nq; i++) rec += recall(run(i), truth[i]!);
    qps.push(nq / ((performance.now() - t0) / 1000));
  }
  qps.sort((a, b) => a - b);
  return { qps: qps[1]!, recall: rec / nq };
}

interface Row {
  bucket: number;
  family: string;
  selectivity: number;
  engine: string;
  qps: number;
  recall: number;
  paths?: Record<string, number>;
}

async function main(): Promise<void> {
  const n = Number(values.n ?? (values.small ? 10_000 : 100_000));
  const nq = Number(values.queries ?? (values.small ? 50 : 200));
  const ef = Number(values.ef);
  const source = new ClusteredSource(DIM, 100, 1);
  const data = source.next(n);
  const queries = values['ood-queries'] ? clustered(nq, DIM, 100, 2) : source.next(nq);
  const points = payloads(n, 3);
  const ids = Uint32Array.from({ length: n }, (_, i) => i);

  const t0 = performance.now();
  const index = new Index({ dim: DIM, metric: 'l2', M, efConstruction: EFC });
  index.add(ids, data, points);
  const quiverBuild = (performance.now() - t0) / 1000;

  const { HierarchicalNSW } = (await import('hnswlib-node')).default;
  const t1 = performance.now();
  const hnsw = new HierarchicalNSW('l2', DIM);
  hnsw.initIndex(n, M, EFC, 100);
  for (let i = 0; i < n; i++) hnsw.addPoint(Array.from(data.subarray(i * DIM, (i + 1) * DIM)), i);
  hnsw.setEf(ef);
  const hnswBuild = (performance.now() - t1) / 1000;
  const hnswQueries = Array.from({ length: nq }, (_, i) => Array.from(queries.subarray(i * DIM, (i + 1) * DIM)));

  const rows: Row[] = [];
  // a copy of the same graph (its image) with payload indexes on the
  // filtered fields, measured right after the one without, so both see the
  // same machine and the same JS heap
  const t2 = performance.now();
  const indexed = Index.fromImage(index.toImage());
  indexed.createPayloadIndex('n', 'integer');
  indexed.createPayloadIndex('kind', 'keyword');
  const indexBuild = (performance.now() - t2) / 1000;
  const quiver = (engine: string, idx: Index, bucket: number, fam: Family, selectivity: number, truth: number[][]): void => {
    const paths: Record<string, number> = {};
    const q = measure(nq, truth, (i) => {
      const hits = idx.search(queries.subarray(i * DIM, (i + 1) * DIM), K, { ef, filter: fam.filter });
      for (const p of hits.paths ?? []) paths[p] = (paths[p] ?? 0) + 1;
      return hits.ids;
    });
    rows.push({ bucket, family: fam.name, selectivity, engine, ...q, paths });
  };
  for (const bucket of BUCKETS) {
    for (const fam of families(bucket)) {
      const mask = new Uint8Array(n);
      let matching = 0;
      for (let i = 0; i < n; i++) if (fam.test(points[i]!)) (mask[i] = 1, matching++);
      const truth = Array.from({ length: nq }, (_, i) => bruteForce(data, points, fam.test, queries, i * DIM));
      const selectivity = matching / n;
      quiver('quiver', index, bucket, fam, selectivity, truth);
      quiver('quiver + indexes', indexed, bucket, fam, selectivity, truth);
      const callback = (label: number): boolean => mask[label] === 1;
      rows.push({
        bucket, family: fam.name, selectivity, engine: 'hnswlib-node',
        ...measure(nq, truth, (i) => {
          try {
            return hnsw.searchKnn(hnswQueries[i]!, Math.min(K, matching), callback).neighbors;
          } catch {
            return [];
          }
        }),
      });
      rows.push({ bucket, family: fam.name, selectivity, engine: 'brute force (JS)', ...measure(nq, truth, (i) => bruteForce(data, points, fam.test, queries, i * DIM)) });
    }
  }
  console.log(`bench:filter  ${n} x ${DIM}, M ${M}, efConstruction ${EFC}, ef ${ef}, k ${K}, ${nq} ${values['ood-queries'] ? 'out-of-distribution ' : ''}queries, one thread`);
  console.log(`build: quiver ${quiverBuild.toFixed(1)} s (a copy from its image with payload indexes on n and kind: ${indexBuild.toFixed(2)} s), hnswlib-node ${hnswBuild.toFixed(1)} s\n`);
  const out: string[][] = [];
  for (const bucket of BUCKETS) {
    for (const fam of families(bucket)) {
      const of = (engine: string): Row => rows.find((r) => r.bucket === bucket && r.family === fam.name && r.engine === engine)!;
      const qv = of('quiver');
      const hn = of('hnswlib-node');
      const qi = of('quiver + indexes');
      const bf = of('brute force (JS)');
      const paths = (r: Row): string => Object.entries(r.paths ?? {}).map(([p, c]) => `${p} ${c}`).join(', ');
      out.push([
        `${(bucket * 100).toString()}%`, fam.name, `${(qv.selectivity * 100).toFixed(2)}%`,
        qv.recall.toFixed(3), qv.qps.toFixed(0), paths(qv),
        qi.recall.toFixed(3), qi.qps.toFixed(0), paths(qi),
        hn.recall.toFixed(3), hn.qps.toFixed(0), bf.qps.toFixed(0), `${(qv.qps / hn.qps).toFixed(2)}x`, `${(qi.qps / hn.qps).toFixed(2)}x`,
      ]);
    }
  }
  console.log(table(
    ['bucket', 'filter', 'matching', 'quiver recall', 'quiver QPS', 'quiver paths', '+indexes recall', '+indexes QPS', '+indexes paths',
      'hnswlib recall', 'hnswlib QPS', 'brute QPS', 'quiver/hnswlib', '+indexes/hnswlib'],
    out,
  ));
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ n, dim: DIM, ef, queries: nq, quiverBuild, indexBuild, hnswBuild, rows }, null, 2));
  index.dispose();
  indexed.dispose();
}

await main();
