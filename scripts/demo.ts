/**
 * `npm start`: quiver's single-thread Index on generated data. Builds an
 * index, searches it, deletes half, compacts, and prints recall, QPS and
 * memory (committed WASM bytes and process RSS) at each step.
 *
 *   npm start -- [--n 50000] [--dim 128]
 */
import { parseArgs } from 'node:util';
import { Index, collectGarbage } from '../host/index.js';
import { clustered } from '../bench/lib/random.js';
import { settle } from '../bench/lib/rss.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '50000' }, dim: { type: 'string', default: '128' } } });
const n = Number(values.n);
const dim = Number(values.dim);
const queries = 200;
const MiB = 1024 * 1024;

function exactTop10(data: Float32Array, live: (i: number) => boolean, q: Float32Array, qo: number): Set<number> {
  const best: [number, number][] = [];
  for (let i = 0; i < data.length / dim; i++) {
    if (!live(i)) continue;
    let d = 0;
    for (let j = 0; j < dim; j++) d += (data[i * dim + j]! - q[qo + j]!) ** 2;
    if (best.length < 10 || d < best[9]![0]) {
      best.push([d, i]);
      best.sort((a, b) => a[0] - b[0]);
      best.length = Math.min(best.length, 10);
    }
  }
  return new Set(best.map((b) => b[1]));
}

function measure(index: Index, data: Float32Array, q: Float32Array, live: (i: number) => boolean): { recall: number; qps: number } {
  const truth = Array.from({ length: queries }, (_, i) => exactTop10(data, live, q, i * dim));
  const started = performance.now();
  const found = Array.from({ length: queries }, (_, i) => index.search(q.subarray(i * dim, (i + 1) * dim), 10).ids);
  const seconds = (performance.now() - started) / 1000;
  let hits = 0;
  found.forEach((ids, i) => ids.forEach((id) => (truth[i]!.has(id as number) ? hits++ : 0)));
  return { recall: hits / (queries * 10), qps: queries / seconds };
}

// a dropped WebAssembly.Memory is unmapped asynchronously after a GC
const rssSettled = async (): Promise<number> => (await settle({ gc: collectGarbage })).rss;

const rows: string[][] = [];
const row = (step: string, index: Index | undefined, rss: number, extra = ''): void => {
  const s = index?.stats();
  rows.push([step, s ? String(s.liveNodes) : '-', s ? String(s.deletedNodes) : '-',
    s ? (s.committedBytes / MiB).toFixed(1) : '-', (rss / MiB).toFixed(1), extra]);
};

// a clustered set that looks like embeddings
const data = clustered(n + queries, dim, 64, 2026, 0.25);
const base = data.subarray(0, n * dim);
const q = data.subarray(n * dim);
console.log(`quiver demo: ${n} x ${dim} clustered vectors, l2, M=16, efConstruction=200, ef=64`);
row('start', undefined, await rssSettled());

const index = new Index({ dim, seed: 1 });
let t0 = performance.now();
index.add(Array.from({ length: n }, (_, i) => i), base);
const buildSeconds = (performance.now() - t0) / 1000;
let m = measure(index, base, q, () => true);
row('built', index, await rssSettled(), `build ${buildSeconds.toFixed(1)} s (${Math.round(n / buildSeconds)} vectors/s); recall@10 ${m.recall.toFixed(3)}, ${Math.round(m.qps)} QPS`);

const removed = (i: number): boolean => i % 2 === 0;
index.remove(Array.from({ length: n }, (_, i) => i).filter(removed));
m = measure(index, base, q, (i) => !removed(i));
row('deleted half', index, await rssSettled(), `recall@10 ${m.recall.toFixed(3)}, ${Math.round(m.qps)} QPS`);

t0 = performance.now();
const report = index.compact();
m = measure(index, base, q, (i) => !removed(i));
row('compacted', index, await rssSettled(), `${(report.durationMs / 1000).toFixed(1)} s, ${(report.reclaimedBytes / MiB).toFixed(1)} MiB reclaimed; recall@10 ${m.recall.toFixed(3)}, ${Math.round(m.qps)} QPS`);

index.dispose();
row('disposed', undefined, await rssSettled());

const head = ['step', 'live', 'deleted', 'committed MiB', 'RSS MiB', ''];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
