import t from 'tap';
import { Index } from '../host/index.js';
import { bruteForce, clustered, recallAt, sift } from './helpers/data.js';

t.test('SIFT10K: recall@10 >= 0.95 at some ef <= 128', async (t) => {
  const { base, query, truth } = sift();
  t.equal(base.dim, 128);
  t.equal(base.n, 10_000);
  const index = new Index({ dim: 128, build: 'debug', seed: 7 });
  index.add(Array.from({ length: base.n }, (_, i) => i), base.data);
  t.equal(index.size, 10_000);
  const byEf: Record<number, number> = {};
  for (const ef of [16, 32, 64, 128]) {
    let sum = 0;
    for (let q = 0; q < query.n; q++) {
      const hits = index.search(query.data.subarray(q * 128, (q + 1) * 128), 10, { ef });
      sum += recallAt(hits.ids, truth.data.subarray(q * truth.k, (q + 1) * truth.k), 10);
    }
    byEf[ef] = sum / query.n;
  }
  t.comment(`recall@10 by ef: ${JSON.stringify(byEf)}`);
  t.ok(Math.max(...Object.values(byEf)) >= 0.95, 'some ef <= 128 reaches 0.95');
  t.ok(byEf[128]! >= byEf[16]! - 0.01, 'a wider beam does not lose recall');
  t.ok(index.checkIntegrity().ok);
  index.dispose();
});

t.test('generated clustered set: recall@10 >= 0.95 at ef 128, for l2, ip and cosine', async (t) => {
  const dim = 32;
  const n = 20_000;
  // queries are held out from the same draw, so they come from the same clusters
  const all = clustered(n + 100, dim, 50, 11);
  const data = all.subarray(0, n * dim);
  const queries = all.subarray(n * dim);
  const ids = Array.from({ length: n }, (_, i) => i);
  // l2 against exact brute force
  const l2 = new Index({ dim, metric: 'l2', build: 'debug', efConstruction: 100, seed: 3 });
  l2.add(ids, data);
  let sum = 0;
  for (let q = 0; q < 100; q++) {
    const exact = bruteForce(data, dim, queries, q * dim, 10);
    sum += recallAt(l2.search(queries.subarray(q * dim, (q + 1) * dim), 10, { ef: 128 }).ids, exact, 10);
  }
  t.comment(`l2 recall@10 = ${sum / 100}`);
  t.ok(sum / 100 >= 0.95);
  l2.dispose();

  // cosine against brute force over normalised vectors (ranked by dot product)
  const unit = new Float32Array(data);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += unit[i * dim + j]! ** 2;
    norm = Math.sqrt(norm);
    for (let j = 0; j < dim; j++) unit[i * dim + j]! /= norm;
  }
  for (const metric of ['cosine', 'ip'] as const) {
    const index = new Index({ dim, metric, build: 'debug', efConstruction: 100, seed: 3 });
    index.add(ids, metric === 'cosine' ? data : unit);
    let s = 0;
    for (let q = 0; q < 100; q++) {
      const qv = queries.subarray(q * dim, (q + 1) * dim);
      const scored = ids.map((i) => {
        let d = 0;
        for (let j = 0; j < dim; j++) d += unit[i * dim + j]! * qv[j]!;
        return { i, d };
      });
      scored.sort((a, b) => b.d - a.d);
      const exact = scored.slice(0, 10).map((x) => x.i);
      const hits = index.search(qv, 10, { ef: 128 });
      s += recallAt(hits.ids, exact, 10);
      for (let i = 1; i < hits.distances.length; i++) t.ok(hits.distances[i - 1]! <= hits.distances[i]!, 'sorted');
    }
    t.comment(`${metric} recall@10 = ${s / 100}`);
    t.ok(s / 100 >= 0.95, `${metric} recall`);
    index.dispose();
  }
});
