import t from 'tap';
import { Index, type IndexOptions } from '../host/index.js';
import { insertBytesPerVector } from '../host/core/abi.js';
import { clustered, recallAt, sift } from './helpers/data.js';

// Quantized shards (assembly/qshard.ts): recall against the f32 index at the
// same ef, the walk on the originals equal to an f32 index's, compaction's
// re-learn, images, the byte accounting of the two record kinds, bad input.

const INT8 = { scalar: { type: 'int8' as const } };

function build(base: { data: Float32Array; dim: number; n: number }, options: Partial<IndexOptions>, n = base.n): Index {
  const index = new Index({ dim: base.dim, M: 16, efConstruction: 100, seed: 7, ...options });
  for (let at = 0; at < n; at += 1000) {
    const m = Math.min(1000, n - at);
    index.add(Array.from({ length: m }, (_, i) => at + i), base.data.subarray(at * base.dim, (at + m) * base.dim));
  }
  return index;
}

function recall(index: Index, queries: Float32Array, dim: number, truth: (i: number) => ArrayLike<number>, ef: number, quantization?: object): number {
  const nq = queries.length / dim;
  let sum = 0;
  for (let i = 0; i < nq; i++) {
    const hits = index.search(queries.subarray(i * dim, (i + 1) * dim), 10, { ef, ...(quantization ? { quantization } : {}) });
    sum += recallAt(hits.ids.map(Number), truth(i), 10);
  }
  return sum / nq;
}

t.test('SIFT10K: recall@10 with codes and re-ranking within 0.01 of the f32 index at the same ef', async (t) => {
  const { base, query, truth } = sift();
  const f32 = build(base, {});
  const int8 = build(base, { quantization: INT8 });
  const q = int8.stats().quantization!;
  t.equal(q.type, 'int8');
  t.equal(q.quantile, 0.99, 'the default quantile');
  t.equal(q.learnedFrom, 1024, 'learned from the first 1,024 (the doublings up to FREEZE_AT), then frozen');
  const truthOf = (i: number) => truth.data.subarray(i * truth.k, i * truth.k + 10);
  for (const ef of [16, 32, 64, 128]) {
    const rf = recall(f32, query.data, base.dim, truthOf, ef);
    const rq = recall(int8, query.data, base.dim, truthOf, ef);
    t.comment(`ef ${ef}: recall@10 f32 ${rf.toFixed(3)}, int8 + re-rank ${rq.toFixed(3)}`);
    t.ok(rq >= rf - 0.01, `ef ${ef}: int8 within 0.01 of f32`);
  }
  // without re-ranking the codes alone lose recall: the re-rank is what recovers it
  const codesOnly = recall(int8, query.data, base.dim, truthOf, 64, { rescore: false });
  const reranked = recall(int8, query.data, base.dim, truthOf, 64);
  t.comment(`ef 64: codes only ${codesOnly.toFixed(3)}, re-ranked ${reranked.toFixed(3)}`);
  t.ok(codesOnly < reranked, 're-ranking improves on the codes alone');
  // Up to the freeze the inserts build the f32 index's graph, so walking the
  // originals is its walk; after it the graph is built on codes, and walking
  // the originals keeps the f32 index's recall.
  const f32Head = build(base, {}, 1024);
  const int8Head = build(base, { quantization: INT8 }, 1024);
  let same = 0;
  for (let i = 0; i < query.n; i++) {
    const v = query.data.subarray(i * base.dim, (i + 1) * base.dim);
    const a = f32Head.search(v, 10, { ef: 32 });
    const b = int8Head.search(v, 10, { ef: 32, quantization: { ignore: true } });
    if (JSON.stringify(a.ids) === JSON.stringify(b.ids) && a.distances.every((d, j) => d === b.distances[j])) same++;
  }
  t.equal(same, query.n, 'at the freeze (1,024 inserts) ignore: true answers exactly as the f32 index, on all 100 queries');
  for (const i of [f32Head, int8Head]) i.dispose();
  const rf = recall(f32, query.data, base.dim, truthOf, 32);
  const ri = recall(int8, query.data, base.dim, truthOf, 32, { ignore: true });
  t.comment(`ef 32 after 10,000 inserts: recall@10 f32 ${rf.toFixed(3)}, int8 walking the originals ${ri.toFixed(3)}`);
  t.ok(ri >= rf - 0.01, 'ignore: true on the graph built on codes: within 0.01 of the f32 index');
  // re-ranked distances are exact; code distances are not
  const v = query.data.subarray(0, base.dim);
  const exact = int8.search(v, 10, { ef: 64 });
  const codes = int8.search(v, 10, { ef: 64, quantization: { rescore: false } });
  for (let j = 0; j < 10; j++) {
    const stored = int8.get(exact.ids[j]!)!;
    let d = 0;
    for (let x = 0; x < base.dim; x++) d += (stored[x]! - v[x]!) ** 2;
    t.ok(Math.abs(exact.distances[j]! - d) <= 1e-3 * d, `rank ${j}: the re-ranked distance is the exact one`);
  }
  t.not(JSON.stringify(Array.from(codes.distances)), JSON.stringify(Array.from(exact.distances)), 'rescore: false returns code distances');
  for (const i of [f32, int8]) i.dispose();
});

t.test('768-d cosine: recall@10 with codes and re-ranking within 0.01 of the f32 index', async (t) => {
  const dim = 768;
  const n = 4000;
  const data = clustered(n + 50, dim, 40, 0x768);
  const base = { data: data.subarray(0, n * dim), dim, n };
  const queries = data.subarray(n * dim);
  // exact top 10 by cosine
  const norm = (a: Float32Array, off: number) => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += a[off + j]! ** 2;
    return Math.sqrt(s);
  };
  const norms = Float64Array.from({ length: n }, (_, i) => norm(base.data, i * dim));
  const truth: number[][] = [];
  for (let qi = 0; qi < 50; qi++) {
    const qn = norm(queries, qi * dim);
    const scored = Array.from({ length: n }, (_, i) => {
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += base.data[i * dim + j]! * queries[qi * dim + j]!;
      return { i, d: 1 - dot / (norms[i]! * qn) };
    }).sort((a, b) => a.d - b.d);
    truth.push(scored.slice(0, 10).map((s) => s.i));
  }
  const f32 = build(base, { metric: 'cosine' });
  const int8 = build(base, { metric: 'cosine', quantization: INT8 });
  for (const ef of [16, 64]) {
    const rf = recall(f32, queries, dim, (i) => truth[i]!, ef);
    const rq = recall(int8, queries, dim, (i) => truth[i]!, ef);
    t.comment(`ef ${ef}: recall@10 f32 ${rf.toFixed(3)}, int8 + re-rank ${rq.toFixed(3)}`);
    t.ok(rq >= rf - 0.01, `ef ${ef}: int8 within 0.01 of f32`);
  }
  for (const i of [f32, int8]) i.dispose();
});

t.test('compaction learns the quantizer again from the survivors and keeps recall; images round-trip', async (t) => {
  const { base, query } = sift();
  const dim = base.dim;
  const int8 = build(base, { quantization: INT8, build: 'debug' }, 6000);
  const f32 = build(base, { build: 'debug' }, 6000);
  const doomed = Array.from({ length: 6000 }, (_, i) => i).filter((i) => i % 2 === 0 || i >= 5000);
  for (const i of [int8, f32]) i.remove(doomed);
  int8.compact();
  f32.compact();
  const survivors = 6000 - doomed.length;
  t.equal(int8.stats().quantization!.learnedFrom, survivors, 'learned from every survivor');
  t.ok(int8.checkIntegrity().ok, 'integrity after compaction');
  // exact neighbours among the survivors
  const rows = Array.from({ length: 5000 }, (_, i) => i).filter((i) => i % 2 === 1);
  const truthOf = (qi: number) => {
    const scored = rows.map((r) => {
      let d = 0;
      for (let j = 0; j < dim; j++) d += (base.data[r * dim + j]! - query.data[qi * dim + j]!) ** 2;
      return { r, d };
    }).sort((a, b) => a.d - b.d);
    return scored.slice(0, 10).map((s) => s.r);
  };
  const truth = Array.from({ length: query.n }, (_, qi) => truthOf(qi));
  for (const ef of [16, 64]) {
    const rf = recall(f32, query.data, dim, (i) => truth[i]!, ef);
    const rq = recall(int8, query.data, dim, (i) => truth[i]!, ef);
    t.comment(`after compaction, ef ${ef}: f32 ${rf.toFixed(3)}, int8 ${rq.toFixed(3)}`);
    t.ok(rq >= rf - 0.01, `ef ${ef}: compacted int8 within 0.01 of compacted f32`);
  }
  for (let i = 0; i < rows.length; i += 97) {
    const got = int8.get(rows[i]!)!;
    t.same(Array.from(got), Array.from(base.data.subarray(rows[i]! * dim, (rows[i]! + 1) * dim)), `id ${rows[i]}: the original survives compaction`);
  }
  const image = int8.toImage();
  const copy = Index.fromImage(image, { build: 'debug' });
  const release = Index.fromImage(image);
  t.same(copy.stats().quantization, int8.stats().quantization, 'the image keeps the quantizer');
  for (let qi = 0; qi < 20; qi++) {
    const v = query.data.subarray(qi * dim, (qi + 1) * dim);
    for (const options of [{}, { quantization: { rescore: false } }, { quantization: { ignore: true } }]) {
      t.same(copy.search(v, 10, options), int8.search(v, 10, options));
      t.same(release.search(v, 10, options), int8.search(v, 10, options));
    }
  }
  t.same(copy.toImage(), image, 'the copy serialises to the same bytes');
  // the copy keeps learning: inserts after the load are encoded and found
  copy.add([90001], [base.data.subarray(0, dim)]);
  t.same(copy.search(base.data.subarray(0, dim), 1).ids, [90001]);
  for (const i of [int8, f32, copy, release]) i.dispose();
});

t.test('the two record kinds: 288-byte node records and 512-byte originals at d=128, M=16', async (t) => {
  const { base } = sift();
  const f32 = build(base, {}, 2000);
  const int8 = build(base, { quantization: INT8 }, 2000);
  const a = f32.stats();
  const b = int8.stats();
  // live bytes are records + link blocks; the link blocks are the same graph's
  const links = a.liveBytes - 2000 * 672;
  t.equal(b.liveBytes - links, 2000 * (288 + 512), 'quantized live bytes: node record + original per vector');
  t.ok(b.fixedOverheadBytes > a.fixedOverheadBytes, 'the quantizer run and the vector directory are fixed overhead');
  // the Store's memory admission estimates an insert from the layout (abi.ts)
  for (const [stats, quantized] of [[a, false], [b, true]] as const) {
    const estimate = insertBytesPerVector(16, 128, quantized);
    const measured = stats.liveBytes / 2000;
    t.ok(estimate >= measured && estimate <= 1.15 * measured, `${quantized ? 'int8' : 'f32'}: admission estimate ${estimate} B covers the measured ${measured.toFixed(0)} B a vector`);
  }
  t.ok(b.reclaimableBytes >= 0);
  for (const i of [f32, int8]) i.dispose();
});

t.test('before the quantizer is learned, searches walk the originals: exact on a tiny index', async (t) => {
  const index = new Index({ dim: 3, quantization: INT8, build: 'debug' });
  index.add([1, 2, 3], [[0, 0, 0], [1, 0, 0], [5, 5, 5]]);
  t.equal(index.stats().quantization!.learnedFrom, 0, 'three vectors: nothing learned yet');
  const hits = index.search([0.9, 0, 0], 3);
  t.same(hits.ids, [2, 1, 3]);
  t.ok(Math.abs(hits.distances[0]! - 0.01) < 1e-6, 'an exact distance');
  index.dispose();
});

t.test('bad quantization options are coded errors and change nothing', async (t) => {
  const bad: unknown[] = [
    'int8', { scalar: 'int8' }, { scalar: { type: 'int4' } }, { scalar: { type: 'int8', quantile: 0.4 } },
    { scalar: { type: 'int8', quantile: 1.5 } }, { scalar: { type: 'int8', quantile: '0.9' } }, { scalar: { type: 'int8', alwaysRam: 'yes' } },
    { scalar: { type: 'int8', extra: 1 } }, { product: {} }, { scalar: { type: 'int8', alwaysRam: false } },
  ];
  for (const quantization of bad) {
    t.throws(() => new Index({ dim: 4, quantization: quantization as IndexOptions['quantization'] }), RangeError, JSON.stringify(quantization));
  }
  const index = new Index({ dim: 2, quantization: INT8, build: 'debug' });
  index.add(Array.from({ length: 100 }, (_, i) => i), Array.from({ length: 100 }, (_, i) => [i, i % 7]));
  const before = index.search([3, 3], 5);
  for (const quantization of [{ oversampling: 0.5 }, { oversampling: 'x' }, { rescore: 1 }, { ignore: 'no' }, { other: true }, 7]) {
    t.throws(() => index.search([3, 3], 5, { quantization: quantization as never }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, JSON.stringify(quantization));
  }
  t.same(index.search([3, 3], 5), before, 'nothing changed');
  // an unquantized index takes the params and ignores them
  const plain = new Index({ dim: 2 });
  plain.add([1, 2], [[0, 0], [1, 1]]);
  t.same(plain.search([0, 0], 2, { quantization: { rescore: false } }).ids, [1, 2]);
  for (const i of [index, plain]) i.dispose();
});

t.test('filtered search, count and payload indexes on a quantized index answer as on the f32 index (codes re-ranked on the originals)', async (t) => {
  const { base, query } = sift();
  const n = 4000;
  const payloads = Array.from({ length: n }, (_, i) => ({ tag: i % 10 === 0 ? 'rare' : i % 2 === 0 ? 'even' : 'odd', i }));
  const make = (options: Partial<IndexOptions>) => {
    const index = new Index({ dim: base.dim, M: 16, efConstruction: 100, seed: 3, ...options });
    for (let at = 0; at < n; at += 1000) {
      index.add(Array.from({ length: 1000 }, (_, i) => at + i), base.data.subarray(at * base.dim, (at + 1000) * base.dim), payloads.slice(at, at + 1000));
    }
    return index;
  };
  const f32 = make({});
  const int8 = make({ quantization: INT8 });
  const filters = [
    { must: [{ key: 'tag', match: { value: 'even' } }] },               // 50%: a graph walk
    { must: [{ key: 'tag', match: { value: 'rare' } }] },               // 10%
    { must: [{ key: 'i', range: { lt: 30 } }] },                        // 30 points: the exact path
  ];
  const paths = new Set<string>();
  for (const round of ['plain', 'indexed']) {
    if (round === 'indexed') for (const i of [f32, int8]) { i.createPayloadIndex('tag', 'keyword'); i.createPayloadIndex('i', 'integer'); }
    for (const filter of filters) {
      t.equal(int8.count(filter), f32.count(filter), `${round} count ${JSON.stringify(filter)}`);
      for (let qi = 0; qi < 20; qi++) {
        const v = query.data.subarray(qi * base.dim, (qi + 1) * base.dim);
        const a = f32.search(v, 10, { ef: 32, filter });
        const b = int8.search(v, 10, { ef: 32, filter });
        for (const p of b.paths ?? []) paths.add(p);
        if (JSON.stringify(a.ids) !== JSON.stringify(b.ids)) {
          t.fail(`${round} ${JSON.stringify(filter)} query ${qi}: ${JSON.stringify(a.ids)} vs ${JSON.stringify(b.ids)}`);
          break;
        }
      }
    }
  }
  t.ok(paths.size >= 3, `the planner took several paths on the quantized index: ${[...paths].join(', ')}`);
  for (const i of [f32, int8]) i.dispose();
});
