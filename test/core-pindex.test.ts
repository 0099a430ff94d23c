// Payload indexes inside the core (assembly/pindex.ts, host/core/payload-index.ts):
// with indexes, filtered count and search give exactly the model's answers,
// through inserts, upserts, deletes, payload replaces, compaction and an
// image round trip; the points each index reports are the model's; the
// tail merges and stale rebuilds run at sizes that reach them.
import t from 'tap';
import fc from 'fast-check';
import { Shard } from '../host/core/shard.js';
import { compactNow } from '../host/core/compaction.js';
import { replacePayload } from '../host/core/payload-replace.js';
import {
  createPayloadIndex, dropPayloadIndex, payloadIndexes, PAYLOAD_INDEX_TYPES, type PayloadIndexType,
} from '../host/core/payload-index.js';
import { compile } from '../host/filter/compile.js';
import type { Cond, Path } from '../host/filter/ast.js';
import { resolvePath } from '../host/filter/model.js';
import { packIds, type Id } from '../host/ids.js';
import { rng } from './helpers/data.js';
import {
  boundsArb, encode, filterArb, idsOf, model, pathArb, pointPayload, small, UUID_TEXT, word, type Json,
} from './helpers/filter-arbs.js';

/** A path in the filter key syntax (the arbitraries' keys are bare). */
function pathText(p: Path): string {
  return p.map((s, i) => ('key' in s ? (i === 0 ? s.key : `.${s.key}`) : 'each' in s ? '[]' : `[${s.index}]`)).join('');
}

/** Is `v` a value an index of `type` counts (its points)? */
function typed(type: PayloadIndexType, v: unknown): boolean {
  switch (type) {
    case 'keyword': return typeof v === 'string';
    case 'uuid': return typeof v === 'string' && UUID_TEXT.test(v);
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'float': return typeof v === 'number';
    case 'bool': return typeof v === 'boolean';
  }
}

/** The model of an index's points: live points with a value of its type at its path (arrays one level). */
function modelPoints(path: Path, type: PayloadIndexType, payloads: (Json | undefined)[], alive: boolean[]): number {
  let n = 0;
  payloads.forEach((p, i) => {
    if (!alive[i] || p === undefined) return;
    const values = resolvePath(p, path).flatMap((v) => (Array.isArray(v) ? v : [v]));
    if (values.some((v) => typed(type, v))) n++;
  });
  return n;
}

interface IndexDef { path: Path; type: PayloadIndexType }
const indexArb: fc.Arbitrary<IndexDef> = fc.record({ path: pathArb as fc.Arbitrary<Path>, type: fc.constantFrom(...PAYLOAD_INDEX_TYPES) });

/** A leaf an index on `d` can answer, or with another random condition under an and. */
function indexedFilter(d: IndexDef): fc.Arbitrary<Cond> {
  const leaf: fc.Arbitrary<Cond> = d.type === 'keyword' || d.type === 'uuid'
    ? fc.record({ kind: fc.constant('keyword' as const), path: fc.constant(d.path), any: fc.array(word, { minLength: 1, maxLength: 3 }) })
    : d.type === 'bool'
      ? fc.record({ kind: fc.constant('bool' as const), path: fc.constant(d.path), value: fc.boolean() })
      : fc.oneof(
        fc.record({ kind: fc.constant('integer' as const), path: fc.constant(d.path), any: fc.array(small, { minLength: 1, maxLength: 3 }) }),
        fc.record({ kind: fc.constant('range' as const), path: fc.constant(d.path), bounds: boundsArb }),
      );
  return fc.oneof(leaf, fc.tuple(leaf, filterArb).map(([a, b]) => ({ kind: 'and' as const, of: [a, b] })));
}

const DIM = 4;
const PARAMS = { dim: DIM, metric: 'l2' as const, M: 6, efConstruction: 24, ef: 24, build: 'debug' as const };

function l2(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let j = 0; j < a.length; j++) { const x = a[j]! - b[j]!; d += x * x; }
  return d;
}

t.test('with payload indexes the core answers exactly as the model, through writes, compaction and an image round trip', async (t) => {
  let compared = 0;
  let indexed = 0;
  const scenario = fc.array(indexArb, { minLength: 1, maxLength: 3 }).chain((defs) => fc.record({
    defs: fc.constant(defs),
    payloads: fc.array(pointPayload, { minLength: 1, maxLength: 40 }),
    later: fc.array(fc.tuple(fc.nat(39), fc.constantFrom('upsert', 'delete', 'replace'), pointPayload), { maxLength: 30 }),
    filters: fc.array(fc.oneof(...defs.map(indexedFilter), filterArb), { minLength: 1, maxLength: 10 }),
    createAfter: fc.boolean(),
  }));
  fc.assert(fc.property(scenario, ({ defs, payloads, later, filters, createAfter }) => {
    const ids = idsOf(payloads.length);
    const packed = packIds(ids, true);
    const rand = rng(payloads.length * 31 + later.length);
    const vectors = ids.map(() => Float32Array.from({ length: DIM }, () => rand()));
    let shard = Shard.create(PARAMS);
    const create = (): void => defs.forEach((d) => createPayloadIndex(shard, pathText(d.path), d.type));
    if (!createAfter) create();
    const current = payloads.slice();
    const alive = ids.map(() => true);
    ids.forEach((_, i) => shard.insert(packed, i, vectors[i]!, 0, current[i] === undefined ? undefined : encode(current[i]!)));
    if (createAfter) create();
    // the last definition of a field wins (another type replaces the index)
    const byField = new Map(defs.map((d) => [pathText(d.path), d]));
    const check = (stage: string): void => {
      const listed = payloadIndexes(shard);
      const want = [...byField].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([field, d]) => ({ field, type: d.type, points: modelPoints(d.path, d.type, current, alive) }));
      if (JSON.stringify(listed) !== JSON.stringify(want)) throw new Error(`${stage}: indexes ${JSON.stringify(listed)}, want ${JSON.stringify(want)}`);
      for (const f of filters) {
        const prog = compile(f);
        const matching = ids.map((id, i) => i).filter((i) => alive[i]! && model(f, current[i], ids[i] as Id));
        const count = shard.countMatching(prog);
        if (count !== matching.length) throw new Error(`${stage}: countMatching ${count}, model ${matching.length}, for ${JSON.stringify(f)}`);
        const q = vectors[0]!;
        const hits = shard.search(q, 0, 5, 24, false, prog);
        const truth = matching.map((i) => ({ i, d: l2(vectors[i]!, q) })).sort((a, b) => a.d - b.d || a.i - b.i).slice(0, 5);
        const got = (hits.ids as Id[]).map((id) => ids.indexOf(id));
        // exact on every path at this size; equal distances may come in either order
        const gotD = got.map((i) => l2(vectors[i]!, q));
        if (JSON.stringify(gotD) !== JSON.stringify(truth.map((x) => x.d)) || !got.every((i) => matching.includes(i))) {
          throw new Error(`${stage}: search ${JSON.stringify(got)} (${hits.path}), want ${JSON.stringify(truth.map((x) => x.i))}, for ${JSON.stringify(f)}`);
        }
        if (hits.path === 'index') indexed++;
        compared++;
      }
    };
    check('fresh');
    for (const [i, op, p] of later) {
      if (i >= ids.length) continue;
      if (op === 'delete') {
        if (alive[i]) shard.remove(packed, i);
        alive[i] = false;
      } else if (op === 'upsert') {
        shard.insert(packed, i, vectors[i]!, 0, p === undefined ? undefined : encode(p));
        current[i] = p;
        alive[i] = true;
      } else if (alive[i]) {
        replacePayload(shard, packed, i, p === undefined ? undefined : encode(p));
        current[i] = p;
      }
    }
    check('after writes');
    compactNow(shard);
    if (!shard.integrity().ok) throw new Error('integrity after compaction');
    check('after compaction');
    const copy = Shard.fromImage(shard.toImage(), 'debug');
    shard.dispose();
    shard = copy;
    check('after an image round trip');
    for (const field of byField.keys()) dropPayloadIndex(shard, field);
    byField.clear();
    check('after dropping the indexes');
    shard.dispose();
  }), { numRuns: 80, seed: 2024 });
  t.ok(compared > 1000, `${compared} filter x shard states compared`);
  t.ok(indexed > 200, `${indexed} of them answered through an index`);
});

t.test('at 20,000 points: tail merges and stale rebuilds keep exact answers; drop gives the bytes back', async (t) => {
  const N = 20_000;
  const D = 8;
  const rand = rng(77);
  const shard = Shard.create({ dim: D, metric: 'l2', M: 12, efConstruction: 60, ef: 64, build: 'debug' }, N);
  const packed = packIds(Array.from({ length: N }, (_, i) => i), false);
  const data = Float32Array.from({ length: N * D }, () => rand());
  const payloads: Json[] = [];
  const make = (i: number, salt: number): Json => {
    const r = Math.floor(rand() * 1000);
    return { tag: `t${Math.floor(Math.sqrt(r + salt) * 3)}`, n: r, f: r / 7, tags: [`g${r % 13}`, `g${(r + salt) % 17}`], ok: r % 3 === 0, i };
  };
  for (let i = 0; i < N / 2; i++) payloads[i] = make(i, 0);
  for (let i = 0; i < N / 2; i++) shard.insert(packed, i, data, i * D, encode(payloads[i]!));
  const defs: [string, PayloadIndexType][] = [['tag', 'keyword'], ['n', 'integer'], ['f', 'float'], ['tags', 'keyword'], ['ok', 'bool']];
  for (const [field, type] of defs) createPayloadIndex(shard, field, type);
  for (let i = N / 2; i < N; i++) {
    payloads[i] = make(i, 0);
    shard.insert(packed, i, data, i * D, encode(payloads[i]!));
  }
  const alive = payloads.map(() => true);
  const filters: Cond[] = [
    { kind: 'keyword', path: [{ key: 'tag' }], any: ['t40'] },
    { kind: 'keyword', path: [{ key: 'tags' }], any: ['g3', 'g16'] },
    { kind: 'range', path: [{ key: 'n' }], bounds: { gte: 100, lt: 130 } },
    { kind: 'range', path: [{ key: 'f' }], bounds: { gt: 10, lte: 12.5 } },
    { kind: 'integer', path: [{ key: 'n' }], any: [7, 500, 999] },
    { kind: 'and', of: [{ kind: 'bool', path: [{ key: 'ok' }], value: true }, { kind: 'range', path: [{ key: 'n' }], bounds: { lt: 20 } }] },
  ];
  const q = Float32Array.from({ length: D }, () => rand());
  const check = (stage: string): void => {
    for (const f of filters) {
      const prog = compile(f);
      const matching = payloads.map((_, i) => i).filter((i) => alive[i]! && model(f, payloads[i], i));
      t.equal(shard.countMatching(prog), matching.length, `${stage}: count of ${JSON.stringify(f)} (${matching.length})`);
      const hits = shard.search(q, 0, 10, 64, false, prog);
      const truth = matching.map((i) => ({ i, d: l2(data.subarray(i * D, i * D + D), q) })).sort((a, b) => a.d - b.d).slice(0, 10).map((x) => x.i);
      t.same(hits.ids, truth, `${stage}: the top 10 of ${JSON.stringify(f)} are exact (${hits.path})`);
      // an index answers a selective filter (under the default indexFraction 0.05 of live points)
      const live = alive.filter(Boolean).length;
      if (matching.length < 0.035 * live) t.equal(hits.path, 'index', `${stage}: an index answered it (${matching.length} of ${live} match)`);
    }
    const points = payloadIndexes(shard).map((x) => [x.field, x.points]);
    const want = defs.map(([field, type]) => [field, modelPoints([{ key: field }], type, payloads, alive)]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
    t.same(points, want, `${stage}: points per index`);
  };
  check('built half, appended half');
  // churn: upserts with new values, payload replaces, deletes; far past the
  // stale share that makes pxMaintain rebuild and the tails it merges
  for (let round = 1; round <= 3; round++) {
    for (let i = 0; i < N; i++) {
      const x = rand();
      if (x < 0.25) {
        payloads[i] = make(i, round);
        alive[i] = true;
        shard.insert(packed, i, data, i * D, encode(payloads[i]!));
      } else if (x < 0.4 && alive[i]) {
        payloads[i] = make(i, round + 10);
        replacePayload(shard, packed, i, encode(payloads[i]!));
      } else if (x < 0.5 && alive[i]) {
        shard.remove(packed, i);
        alive[i] = false;
      }
    }
    check(`churn round ${round}`);
  }
  const before = shard.stats();
  compactNow(shard);
  t.ok(shard.integrity().ok);
  check('after compaction');
  t.ok(shard.stats().indexBytes <= before.indexBytes, 'compaction does not grow the indexes');
  const image = Shard.fromImage(shard.toImage(), 'debug');
  for (const [field] of defs) t.ok(dropPayloadIndex(shard, field), `dropped ${field}`);
  t.notOk(dropPayloadIndex(shard, 'tag'), 'dropping twice: nothing to drop');
  t.equal(shard.stats().indexBytes, 0, 'no index bytes left');
  const prog = compile(filters[0]!);
  t.not(shard.search(q, 0, 10, 64, false, prog).path, 'index', 'without indexes the planner samples');
  t.same(image.search(q, 0, 10, 64, false, prog).ids, shard.search(q, 0, 10, 64, false, prog).ids, 'the image (with indexes) and the shard (without) agree');
  t.equal(payloadIndexes(image).length, defs.length, 'the image carries the indexes');
  image.dispose();
  shard.dispose();
});

t.test('bad index requests are coded errors that change nothing', async (t) => {
  const shard = Shard.create(PARAMS);
  const packed = packIds([1, 2], false);
  shard.insert(packed, 0, Float32Array.of(1, 0, 0, 0), 0, encode({ a: 'x' }));
  createPayloadIndex(shard, 'a', 'keyword');
  for (const field of ['', 'a..b', 'a[', 42, 'x'.repeat(300)]) {
    t.throws(() => createPayloadIndex(shard, field as string, 'keyword'), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, `field ${JSON.stringify(field).slice(0, 20)}`);
  }
  for (const type of ['text', 'geo', 'datetime', 'KEYWORD', undefined]) {
    t.throws(() => createPayloadIndex(shard, 'b', type as PayloadIndexType), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /keyword, integer, float, bool, uuid/ }, `type ${type}`);
  }
  for (let i = 1; i < 32; i++) createPayloadIndex(shard, `f${i}`, 'integer');
  t.throws(() => createPayloadIndex(shard, 'one.too.many', 'integer'), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /at most 32/ });
  t.equal(payloadIndexes(shard).length, 32, 'still 32');
  createPayloadIndex(shard, 'a', 'keyword');
  t.same(payloadIndexes(shard).find((x) => x.field === 'a'), { field: 'a', type: 'keyword', points: 1 }, 'the same index again: unchanged');
  createPayloadIndex(shard, 'a', 'integer');
  t.same(payloadIndexes(shard).find((x) => x.field === 'a'), { field: 'a', type: 'integer', points: 0 }, 'another type replaces it');
  t.ok(shard.integrity().ok);
  shard.dispose();
});

t.test('a uuid index counts UUID text in the forms ids take, and finds any string', async (t) => {
  const shard = Shard.create(PARAMS);
  const forms = [
    'b7e2f0a4-1111-4c3a-9d2e-0000000000aa', 'B7E2F0A4-1111-4C3A-9D2E-0000000000AB', 'b7e2f0a411114c3a9d2e0000000000ac',
    '{b7e2f0a4-1111-4c3a-9d2e-0000000000ad}', 'urn:uuid:b7e2f0a4-1111-4c3a-9d2e-0000000000ae', 'URN:UUID:b7e2f0a4-1111-4c3a-9d2e-0000000000af',
  ];
  const junk = ['b7e2f0a4-1111-4c3a-9d2e-0000000000a', 'g7e2f0a4-1111-4c3a-9d2e-0000000000aa', 'b7e2f0a4_1111-4c3a-9d2e-0000000000aa',
    '{b7e2f0a4-1111-4c3a-9d2e-0000000000aa', 'urn:uuix:b7e2f0a4-1111-4c3a-9d2e-0000000000aa', 'x'];
  const all = [...forms, ...junk];
  const packed = packIds(all.map((_, i) => i), false);
  all.forEach((u, i) => shard.insert(packed, i, Float32Array.of(i, 0, 0, 0), 0, encode({ u })));
  createPayloadIndex(shard, 'u', 'uuid');
  t.same(payloadIndexes(shard), [{ field: 'u', type: 'uuid', points: forms.length }], 'the six UUID forms count, the six lookalikes do not');
  for (const u of all) {
    const hits = shard.search(Float32Array.of(0, 0, 0, 0), 0, 3, 24, false, compile({ kind: 'keyword', path: [{ key: 'u' }], any: [u] }));
    t.same([hits.ids.length, hits.path], [1, 'index'], `a match on ${JSON.stringify(u)} finds its point through the index`);
  }
  shard.dispose();
});
