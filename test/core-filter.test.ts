// Filters evaluated inside the core (assembly/filter.ts, fsearch.ts) against
// the reference evaluator host/filter/model.ts; filtered search against brute
// force over the matching set.
import t from 'tap';
import fc from 'fast-check';
import { Shard } from '../host/core/shard.js';
import { compactNow } from '../host/core/compaction.js';
import { compile } from '../host/filter/compile.js';
import type { Cond } from '../host/filter/ast.js';
import { packIds } from '../host/ids.js';
import { rng } from './helpers/data.js';
import { encode, filterArb, idsOf, model, pointPayload } from './helpers/filter-arbs.js';

// ---------------------------------------------------------------- model --
const PARAMS = { dim: 4, metric: 'l2' as const, M: 6, efConstruction: 24, ef: 24, build: 'debug' as const };

t.test('the core matches exactly the points the model does, before and after compaction and an image round trip', async (t) => {
  let checked = 0;
  fc.assert(fc.property(
    fc.array(pointPayload, { minLength: 1, maxLength: 40 }),
    fc.array(filterArb, { minLength: 1, maxLength: 12 }),
    fc.array(fc.boolean(), { maxLength: 40 }),
    (payloads, filters, deletes) => {
      const ids = idsOf(payloads.length);
      const packed = packIds(ids, true);
      let shard = Shard.create(PARAMS);
      const rand = rng(payloads.length);
      payloads.forEach((p, i) => {
        const v = Float32Array.from({ length: 4 }, () => rand());
        t.ok(shard.insert(packed, i, v, 0, p === undefined ? undefined : encode(p)));
      });
      const alive = ids.map(() => true);
      const check = (stage: string): void => {
        for (const f of filters) {
          const prog = compile(f);
          const want = ids.map((id, i) => alive[i]! && model(f, payloads[i], id));
          const got = ids.map((_, i) => shard.matches(packed, i, prog));
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            throw new Error(`${stage}: matches differ for ${JSON.stringify(f)}\n got ${JSON.stringify(got)}\nwant ${JSON.stringify(want)}\npayloads ${JSON.stringify(payloads)}`);
          }
          const count = shard.countMatching(prog);
          if (count !== want.filter(Boolean).length) throw new Error(`${stage}: countMatching ${count} for ${JSON.stringify(f)}`);
          checked++;
        }
      };
      check('fresh');
      deletes.forEach((d, i) => {
        if (d && i < ids.length) { shard.remove(packed, i); alive[i] = false; }
      });
      check('after deletes');
      compactNow(shard);
      t.ok(shard.integrity().ok);
      check('after compaction');
      const copy = Shard.fromImage(shard.toImage(), 'debug');
      shard.dispose();
      shard = copy;
      check('after an image round trip');
      shard.dispose();
    },
  ), { numRuns: 60, seed: 1010 });
  t.ok(checked > 500, `${checked} filter x shard states compared`);
});

t.test('bad programs and bad payload bytes are refused with a code, never a trap', async (t) => {
  const shard = Shard.create(PARAMS);
  const packed = packIds([1, 2], true);
  shard.insert(packed, 0, Float32Array.of(1, 0, 0, 0), 0, encode({ a: ['x', 1] }));
  shard.insert(packed, 1, Float32Array.of(0, 1, 0, 0), 0, Uint8Array.of(7, 1, 0, 0, 0, 200, 0, 0, 0)); // an object past its blob
  const good = compile({ kind: 'keyword', path: [{ key: 'a' }], any: ['x'] }).bytes;
  t.ok(shard.matches(packed, 0, { kind: 'quiver-filter', bytes: good }));
  t.throws(() => shard.matches(packed, 1, { kind: 'quiver-filter', bytes: good }), { code: 'QUIVER_ERR_CORRUPT_IMAGE' }, 'a payload that is not QPB');
  const rand = rng(7);
  for (let i = 0; i < 300; i++) {
    // even: cut short; odd: whole, with three bytes overwritten (may still be well formed)
    const bad = i % 2 === 0 ? good.slice(0, Math.floor(rand() * good.length)) : good.slice();
    if (i % 2 === 1) for (let j = 0; j < 3; j++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
    try {
      shard.matches(packed, 0, { kind: 'quiver-filter', bytes: bad });
    } catch (err) {
      t.equal((err as { code?: string }).code, 'QUIVER_ERR_INVALID_ARGUMENT', 'a malformed program');
    }
  }
  t.ok(shard.integrity().ok, 'the shard is still whole (it never trapped)');
  t.throws(() => shard.countMatching({ kind: 'nope' } as never), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  let deep: Cond = { kind: 'isNull', path: [{ key: 'a' }] };
  for (let i = 0; i < 40; i++) deep = { kind: 'not', of: deep };
  t.throws(() => compile(deep), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /deeper than 32/ });
  shard.dispose();
});

// --------------------------------------------------------------- search --
const N = 20_000;
const DIM = 16;

function l2(a: Float32Array, ao: number, b: Float32Array, bo: number): number {
  let d = 0;
  for (let j = 0; j < DIM; j++) { const x = a[ao + j]! - b[bo + j]!; d += x * x; }
  return d;
}

t.test('filtered search: exact below the planner threshold, recall >= 0.95 above it, every hit matches', async (t) => {
  const rand = rng(42);
  const data = Float32Array.from({ length: N * DIM }, () => rand());
  const r = Array.from({ length: N }, () => Math.floor(rand() * 1000));
  const shard = Shard.create({ dim: DIM, metric: 'l2', M: 16, efConstruction: 100, ef: 64 }, N);
  const packed = packIds(Array.from({ length: N }, (_, i) => i), false);
  for (let i = 0; i < N; i++) shard.insert(packed, i, data, i * DIM, encode({ r: r[i]!, tag: `k${r[i]! % 100}`, list: [r[i]! % 7, 'z'], x0: Math.floor(data[i * DIM]! * 10) }));
  const queries = Array.from({ length: 40 }, () => Float32Array.from({ length: DIM }, () => rand()));
  // queries far from the matching set: coordinate 0 in [0.9, 1), the filter wants [0, 0.1)
  const far = Array.from({ length: 40 }, () => Float32Array.from({ length: DIM }, (_, j) => (j === 0 ? 0.9 + rand() * 0.1 : rand())));
  const k = 10;
  const cases: { name: string; filter: Cond; ok: (i: number) => boolean; path: string; qs?: Float32Array[] }[] = [
    { name: 'anti-correlated 10%', filter: { kind: 'integer', path: [{ key: 'x0' }], any: [0] }, ok: (i) => data[i * DIM]! < 0.1, path: 'graph', qs: far },
    { name: 'range 50%', filter: { kind: 'range', path: [{ key: 'r' }], bounds: { lt: 500 } }, ok: (i) => r[i]! < 500, path: 'graph' },
    { name: 'range 10%', filter: { kind: 'range', path: [{ key: 'r' }], bounds: { gte: 900 } }, ok: (i) => r[i]! >= 900, path: 'graph' },
    { name: 'keyword 10%', filter: { kind: 'keyword', path: [{ key: 'tag' }], any: Array.from({ length: 10 }, (_, j) => `k${j * 3}`) }, ok: (i) => (r[i]! % 100) % 3 === 0 && r[i]! % 100 < 30, path: 'graph' },
    { name: 'array element 14%', filter: { kind: 'integer', path: [{ key: 'list' }], any: [3] }, ok: (i) => r[i]! % 7 === 3, path: 'graph' },
    { name: 'range 1%', filter: { kind: 'range', path: [{ key: 'r' }], bounds: { gt: 100, lte: 110 } }, ok: (i) => r[i]! > 100 && r[i]! <= 110, path: 'exact' },
    { name: 'keyword 1%', filter: { kind: 'keyword', path: [{ key: 'tag' }], any: ['k42'] }, ok: (i) => r[i]! % 100 === 42, path: 'exact' },
    { name: 'range 0.1%', filter: { kind: 'integer', path: [{ key: 'r' }], any: [777] }, ok: (i) => r[i]! === 777, path: 'exact' },
  ];
  for (const c of cases) {
    const prog = compile(c.filter);
    const matching = Array.from({ length: N }, (_, i) => i).filter(c.ok);
    t.equal(shard.countMatching(prog), matching.length, `${c.name}: countMatching is exact (${matching.length})`);
    let recall = 0;
    let allMatch = true;
    let exact = true;
    const paths = new Set<string>();
    for (const q of c.qs ?? queries) {
      const hits = shard.search(q, 0, k, 64, false, prog);
      paths.add(hits.path!);
      const truth = matching.map((i) => ({ i, d: l2(data, i * DIM, q, 0) })).sort((a, b) => a.d - b.d).slice(0, k).map((x) => x.i);
      const got = hits.ids as number[];
      allMatch &&= got.every((i) => c.ok(i));
      recall += truth.filter((i) => got.includes(i)).length / Math.min(k, truth.length);
      exact &&= JSON.stringify(got) === JSON.stringify(truth);
    }
    recall /= (c.qs ?? queries).length;
    t.same([...paths], [c.path], `${c.name}: the planner picks ${c.path}`);
    t.ok(allMatch, `${c.name}: every hit satisfies the filter`);
    if (c.path === 'exact') t.ok(exact, `${c.name}: exactly the filtered brute-force top-${k}`);
    else t.ok(recall >= 0.95, `${c.name}: recall@${k} ${recall.toFixed(3)} >= 0.95`);
  }

  // fewer than k matching points: exactly those, nearest first, on either path
  const few = [3, 999, 5000, 12345, 19999];
  const prog = compile({ kind: 'hasId', ids: few });
  const q = queries[0]!;
  const want = few.map((i) => ({ i, d: l2(data, i * DIM, q, 0) })).sort((a, b) => a.d - b.d).map((x) => x.i);
  const exactHits = shard.search(q, 0, k, 64, false, prog);
  t.same(exactHits.ids, want, 'five matching points: exactly those five');
  t.equal(exactHits.path, 'exact');
  shard.filterPlanner = { exactBelow: 0, exactFraction: 0 };
  const forced = shard.search(q, 0, k, 64, false, prog);
  t.equal(forced.path, 'graph+exact', 'a walk that finds fewer than k falls back to the exact path');
  t.same(forced.ids, want, 'and still returns exactly those five');
  const none = shard.search(q, 0, k, 64, false, compile({ kind: 'or', of: [] }));
  t.same(none.ids, [], 'a filter nothing satisfies: no hits');
  t.throws(() => { shard.filterPlanner = { exactFraction: 2 }; }, RangeError);
  shard.dispose();
});

t.test('both graph walks (plain and two-hop, chosen by twoHopBelow): recall >= 0.95 and every hit a live match, with tombstones', async (t) => {
  const rand = rng(7);
  const n = 8_000;
  const data = Float32Array.from({ length: n * DIM }, () => rand());
  const r = Array.from({ length: n }, () => Math.floor(rand() * 1000));
  const shard = Shard.create({ dim: DIM, metric: 'l2', M: 16, efConstruction: 100, ef: 64 }, n);
  const packed = packIds(Array.from({ length: n }, (_, i) => i), false);
  for (let i = 0; i < n; i++) shard.insert(packed, i, data, i * DIM, encode({ r: r[i]!, tag: `k${r[i]! % 100}` }));
  // tombstones among the matches: every 5th point
  const alive = Array.from({ length: n }, (_, i) => i % 5 !== 0);
  for (let i = 0; i < n; i += 5) shard.remove(packed, i);
  const queries = Array.from({ length: 30 }, () => Float32Array.from({ length: DIM }, () => rand()));
  const k = 10;
  const cases: { name: string; filter: Cond; ok: (i: number) => boolean }[] = [
    { name: 'range 50%', filter: { kind: 'range', path: [{ key: 'r' }], bounds: { lt: 500 } }, ok: (i) => r[i]! < 500 },
    { name: 'keyword 10%', filter: { kind: 'keyword', path: [{ key: 'tag' }], any: Array.from({ length: 10 }, (_, j) => `k${j}`) }, ok: (i) => r[i]! % 100 < 10 },
    { name: 'range 5%', filter: { kind: 'range', path: [{ key: 'r' }], bounds: { gte: 950 } }, ok: (i) => r[i]! >= 950 },
  ];
  // exactBelow 0 and exactFraction 0: always a walk; twoHopBelow 0: always the plain one, 1: always two-hop
  for (const [walk, twoHopBelow] of [['plain', 0], ['two-hop', 1]] as const) {
    shard.filterPlanner = { exactBelow: 0, exactFraction: 0, twoHopBelow };
    for (const c of cases) {
      const prog = compile(c.filter);
      const matching = Array.from({ length: n }, (_, i) => i).filter((i) => alive[i] && c.ok(i));
      let recall = 0;
      let allMatch = true;
      const paths = new Set<string>();
      for (const q of queries) {
        const hits = shard.search(q, 0, k, 64, false, prog);
        paths.add(hits.path!);
        const truth = matching.map((i) => ({ i, d: l2(data, i * DIM, q, 0) })).sort((a, b) => a.d - b.d).slice(0, k).map((x) => x.i);
        const got = hits.ids as number[];
        allMatch &&= got.length === k && got.every((i) => alive[i] && c.ok(i));
        recall += truth.filter((i) => got.includes(i)).length / k;
      }
      recall /= queries.length;
      t.same([...paths], ['graph'], `${walk} ${c.name}: a graph walk`);
      t.ok(allMatch, `${walk} ${c.name}: k hits, every one live and satisfying the filter`);
      t.ok(recall >= 0.95, `${walk} ${c.name}: recall@${k} ${recall.toFixed(3)} >= 0.95`);
    }
  }
  t.throws(() => { shard.filterPlanner = { twoHopBelow: -0.1 }; }, RangeError);
  t.throws(() => { shard.filterPlanner = { twoHopBelow: 1.5 }; }, RangeError);
  t.same(shard.filterPlanner, { exactBelow: 0, exactFraction: 0, twoHopBelow: 1, indexFraction: 0.05 }, 'a refused option changes nothing');
  shard.dispose();
});
