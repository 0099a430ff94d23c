import t from 'tap';
import { packIds } from '../host/ids.js';
import { compile } from '../host/filter/compile.js';
import type { Cond } from '../host/filter/ast.js';
import { createPayloadIndex } from '../host/core/payload-index.js';
import { LAYOUT } from '../host/core/abi.js';
import { encode } from './helpers/filter-arbs.js';
import { bruteForce, clustered, recallAt, sift } from './helpers/data.js';
import { identical, pair } from './helpers/disk.js';

// Disk mode (alwaysRam: false; assembly/qshard.ts "DISK MODE", host/core/originals.ts)
// at the Shard level, against an always_ram shard given the same inserts: identical
// answers at the spill point and after it (both build on codes once frozen), exact distances, get
// from the file, removes and upserts, and filtered search on every planner path.

const SPILL = LAYOUT.FREEZE_AT;
const DIM = 128;

function l2(a: Float32Array, ao: number, b: Float32Array, bo: number, dim = DIM): number {
  let d = 0;
  for (let j = 0; j < dim; j++) { const x = a[ao + j]! - b[bo + j]!; d += x * x; }
  return d;
}

t.test('SIFT10K: identical to always_ram at the spill point and after 10,000 inserts; exact distances', async (t) => {
  const { base, query, truth } = sift();
  const { ram, disk, file } = pair(t, DIM);
  const ids = packIds(Array.from({ length: base.n }, (_, i) => i), true);
  for (let i = 0; i < SPILL - 1; i++) { ram.insert(ids, i, base.data, i * DIM); disk.insert(ids, i, base.data, i * DIM); }
  t.equal(disk.spilled, false, `still in RAM one vector before ${SPILL}`);
  t.equal(disk.originalsGeneration, 0);
  t.equal(file.byteLength, 0, 'nothing written before the spill');
  ram.insert(ids, SPILL - 1, base.data, (SPILL - 1) * DIM);
  disk.insert(ids, SPILL - 1, base.data, (SPILL - 1) * DIM);
  t.equal(disk.spilled, true, `spilled at ${SPILL} live`);
  t.equal(disk.originalsGeneration, 1);
  t.equal(ram.spilled, false);
  t.equal(file.slots, SPILL, 'every slot written at the spill');
  t.equal(disk.stats().vectorStride, 0, 'no cold slabs left');
  t.ok(disk.stats().nodeCommitted < ram.stats().nodeCommitted - SPILL * DIM * 4 * 0.9, 'the cold slabs were freed');
  const settings = [{ ef: 64 }, { ef: 16 }, { ef: 32, quant: { oversampling: 4 } }, { ef: 64, quant: { rescore: false } }];
  const sameAnswers = (when: string) => {
    let same = 0;
    for (const { ef, quant } of settings) {
      for (let q = 0; q < query.n; q++) {
        const a = ram.search(query.data, q * DIM, 10, ef, false, undefined, quant);
        const b = disk.search(query.data, q * DIM, 10, ef, false, undefined, quant);
        if (identical(a, b)) same++;
        else t.fail(`${when}, query ${q} ${JSON.stringify({ ef, quant })}: ${JSON.stringify(a.ids)} vs ${JSON.stringify(b.ids)}`);
      }
    }
    t.equal(same, settings.length * query.n, `${when}: identical ids and distances on ${query.n} queries x ${settings.length} settings`);
  };
  sameAnswers('at the spill point');

  // past it both modes build on codes with the same frozen quantizer: the same graph
  for (let i = SPILL; i < base.n; i++) { ram.insert(ids, i, base.data, i * DIM); disk.insert(ids, i, base.data, i * DIM); }
  t.ok(disk.integrity().ok, 'integrity after building on codes');
  t.equal(file.slots, base.n, 'one slot a vector');
  t.equal(ram.stats().quantLearned, SPILL, 'always_ram froze its quantizer at the same point');
  sameAnswers(`after ${base.n} inserts`);
  const truthOf = (i: number) => truth.data.subarray(i * truth.k, i * truth.k + 10);
  for (const ef of [32, 64]) {
    let rd = 0;
    let exact = true;
    for (let q = 0; q < query.n; q++) {
      const b = disk.search(query.data, q * DIM, 10, ef);
      rd += recallAt(b.ids as number[], truthOf(q), 10);
      b.ids.forEach((id, j) => {
        const want = l2(base.data, (id as number) * DIM, query.data, q * DIM);
        if (Math.abs(b.distances[j]! - want) > 1e-5 * want) exact = false;
      });
    }
    t.comment(`ef ${ef}: recall@10 (both modes) ${(rd / query.n).toFixed(3)}`);
    t.ok(rd / query.n >= 0.95, `ef ${ef}: recall@10 at least 0.95`);
    t.ok(exact, `ef ${ef}: every distance is the exact one of the original`);
  }
  t.throws(() => disk.search(query.data, 0, 10, 64, false, undefined, { ignore: true }), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /not available/ }, 'ignore: true is refused once spilled');
  t.same(ram.search(query.data, 0, 10, 64, false, undefined, { ignore: true }).ids.length, 10, 'always_ram still walks the originals');
});

t.test('get reads the exact vector from the file; removes never come back; upserts write their new slot', async (t) => {
  const { base, query } = sift();
  const n = 3000;
  const { ram, disk } = pair(t, DIM);
  const ids = packIds(Array.from({ length: base.n }, (_, i) => i), true);
  for (let i = 0; i < n; i++) { ram.insert(ids, i, base.data, i * DIM); disk.insert(ids, i, base.data, i * DIM, encode({ i })); }
  for (let i = 0; i < n; i += 7) {
    const g = disk.get(ids, i)!;
    if (!g.vector.every((x, j) => x === base.data[i * DIM + j])) t.fail(`id ${i}: get differs from the inserted vector`);
    if (JSON.stringify(Array.from(g.vector)) !== JSON.stringify(Array.from(ram.get(ids, i)!.vector))) t.fail(`id ${i}: get differs from always_ram's`);
  }
  t.pass('get returns the inserted vector on every 7th id (before and after the spill point)');
  t.same(disk.get(ids, 5)!.payload, encode({ i: 5 }), 'with its payload');
  t.equal(disk.get(ids, n + 5), undefined, 'an absent id');
  const removed = new Set<number>();
  for (let i = 0; i < n; i += 3) { t.ok(disk.remove(ids, i)); removed.add(i); }
  let leaked = 0;
  for (let q = 0; q < query.n; q++) {
    for (const id of disk.search(query.data, q * DIM, 10, 64).ids) if (removed.has(id as number)) leaked++;
    for (const id of disk.search(query.data, q * DIM, 10, 64, false, undefined, { rescore: false }).ids) if (removed.has(id as number)) leaked++;
  }
  t.equal(leaked, 0, 'no removed id in 200 searches');
  t.equal(disk.get(ids, 3), undefined, 'get of a removed id');
  // upserts (of live and of removed ids) with another row's vector
  for (let i = 0; i < 60; i += 5) disk.insert(ids, i, base.data, (i + 5000) * DIM);
  for (let i = 0; i < 60; i += 5) {
    const g = disk.get(ids, i)!;
    t.ok(g.vector.every((x, j) => x === base.data[(i + 5000) * DIM + j]), `id ${i}: the upserted vector`);
    const hit = disk.search(base.data, (i + 5000) * DIM, 1, 64);
    t.same([hit.ids[0], hit.distances[0]], [i, 0], `id ${i}: found at distance 0`);
  }
  t.ok(disk.integrity().ok);
  t.same(disk.listIds().length / 5, disk.stats().live, 'listIds lists the live ids');
});

t.test('cosine: the file holds the normalised vectors; identical to always_ram at the spill point', async (t) => {
  const dim = 32;
  const n = SPILL + 500;
  const data = clustered(n + 20, dim, 12, 0xc05);
  const { ram, disk } = pair(t, dim, 'cosine');
  const ids = packIds(Array.from({ length: n }, (_, i) => i), true);
  for (let i = 0; i < SPILL; i++) { ram.insert(ids, i, data, i * dim); disk.insert(ids, i, data, i * dim); }
  t.ok(disk.spilled);
  const q = data.subarray(n * dim);
  for (let j = 0; j < 20; j++) t.ok(identical(ram.search(q, j * dim, 10, 32), disk.search(q, j * dim, 10, 32)), `query ${j}: identical`);
  for (let i = SPILL; i < n; i++) { ram.insert(ids, i, data, i * dim); disk.insert(ids, i, data, i * dim); }
  let same = 0;
  for (let i = 0; i < n; i++) {
    const a = ram.get(ids, i)!.vector;
    const b = disk.get(ids, i)!.vector;
    if (a.every((x, j) => Object.is(x, b[j]))) same++;
  }
  t.equal(same, n, 'get: the normalised vector, bit-identical to always_ram, for every id');
  let norm = 0;
  for (const x of disk.get(ids, n - 1)!.vector) norm += x * x;
  t.ok(Math.abs(norm - 1) < 1e-5, 'unit length');
  t.ok(disk.integrity().ok);
});

t.test('filtered search and counts on every planner path: the same matching set as always_ram', async (t) => {
  const { base, query } = sift();
  const n = base.n;
  const r = Array.from({ length: n }, (_, i) => (i * 7919) % 1000);
  const { ram, disk } = pair(t, DIM);
  for (const s of [ram, disk]) createPayloadIndex(s, 'tag', 'keyword');
  const ids = packIds(Array.from({ length: n }, (_, i) => i), true);
  for (let i = 0; i < n; i++) {
    const p = encode({ r: r[i]!, tag: `k${r[i]! % 100}` });
    ram.insert(ids, i, base.data, i * DIM, p);
    disk.insert(ids, i, base.data, i * DIM, p);
  }
  for (let i = 0; i < n; i += 4) { ram.remove(ids, i); disk.remove(ids, i); }
  const alive = (i: number) => i % 4 !== 0;
  const cases: { name: string; filter: Cond; ok: (i: number) => boolean; path: string; planner?: object }[] = [
    { name: 'range 50%, plain walk', filter: { kind: 'range', path: [{ key: 'r' }], bounds: { lt: 500 } }, ok: (i) => r[i]! < 500, path: 'graph' },
    { name: 'range 10%, two-hop walk', filter: { kind: 'range', path: [{ key: 'r' }], bounds: { gte: 900 } }, ok: (i) => r[i]! >= 900, path: 'graph', planner: { exactBelow: 0, exactFraction: 0, twoHopBelow: 0.5 } },
    { name: 'range 1%, exact', filter: { kind: 'range', path: [{ key: 'r' }], bounds: { gt: 100, lte: 110 } }, ok: (i) => r[i]! > 100 && r[i]! <= 110, path: 'exact' },
    { name: 'keyword 1%, payload index', filter: { kind: 'keyword', path: [{ key: 'tag' }], any: ['k42'] }, ok: (i) => r[i]! % 100 === 42, path: 'index' },
    { name: 'integer 0.1%, walk then exact', filter: { kind: 'integer', path: [{ key: 'r' }], any: [777] }, ok: (i) => r[i]! === 777, path: 'graph+exact', planner: { exactBelow: 0, exactFraction: 0 } },
  ];
  const k = 10;
  for (const c of cases) {
    const prog = compile(c.filter);
    const matching = Array.from({ length: n }, (_, i) => i).filter((i) => alive(i) && c.ok(i));
    for (const s of [ram, disk]) s.filterPlanner = { exactBelow: 1000, exactFraction: 0.02, twoHopBelow: 0.1, indexFraction: 0.05, ...c.planner };
    t.equal(disk.countMatching(prog), matching.length, `${c.name}: countMatching (${matching.length})`);
    t.equal(ram.countMatching(prog), matching.length);
    let matchesAgree = true;
    for (let i = 0; i < n; i += 13) matchesAgree &&= disk.matches(ids, i, prog) === ram.matches(ids, i, prog) && disk.matches(ids, i, prog) === (alive(i) && c.ok(i));
    t.ok(matchesAgree, `${c.name}: matches agrees on every 13th id`);
    let rd = 0;
    let allMatch = true;
    let same = true;
    let identicalWhenAllRescored = true;
    const paths = new Set<string>();
    const nq = 30;
    for (let q = 0; q < nq; q++) {
      const a = ram.search(query.data, q * DIM, k, 64, false, prog);
      const b = disk.search(query.data, q * DIM, k, 64, false, prog);
      paths.add(a.path!);
      paths.add(b.path!);
      const truth = bruteForce(base.data, DIM, query.data, q * DIM, k, matching);
      rd += recallAt(b.ids as number[], truth, k);
      allMatch &&= b.ids.every((id) => alive(id as number) && c.ok(id as number)) && new Set(b.ids).size === b.ids.length;
      same &&= identical(a, b);
      if (matching.length <= 200) {
        // re-ranking every match (oversampling 20: 200 candidates) is exact
        const all = disk.search(query.data, q * DIM, k, 64, false, prog, { oversampling: 20 });
        identicalWhenAllRescored &&= identical(ram.search(query.data, q * DIM, k, 64, false, prog, { oversampling: 20 }), all)
          && recallAt(all.ids as number[], truth, k) === 1;
      }
    }
    rd /= nq;
    t.same([...paths], [c.path], `${c.name}: both take the ${c.path} path`);
    t.ok(allMatch, `${c.name}: every hit matches, no duplicates`);
    t.ok(same, `${c.name}: identical ids and distances to always_ram on ${nq} queries`);
    t.comment(`${c.name}: filtered recall@10 (both modes) ${rd.toFixed(3)}`);
    t.ok(rd >= 0.9, `${c.name}: filtered recall@10 at least 0.9`);
    if (matching.length <= 200) t.ok(identicalWhenAllRescored, `${c.name}: with every match re-ranked, exact (the brute-force top ${k}) in both modes`);
  }
  const rescoreFalse = disk.search(query.data, 0, k, 64, false, compile(cases[0]!.filter), { rescore: false });
  t.equal(rescoreFalse.ids.length, k, 'rescore: false filtered search returns code distances');
  t.throws(() => disk.search(query.data, 0, k, 64, false, compile(cases[0]!.filter), { ignore: true }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
});
