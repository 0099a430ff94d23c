import t from 'tap';
import fc from 'fast-check';
import { Index, type Id } from '../host/index.js';

// The index against a plain model: a Map from id to vector. With ef at least
// the number of stored vectors a search visits every reachable node, so it
// must return exactly the brute-force top k (by distance; ties may swap ids).

const DIM = 4;
const UUIDS = Array.from({ length: 8 }, (_, i) => `${i}0000000-aaaa-4bbb-8ccc-${String(i).padStart(12, '0')}`);

const idArb: fc.Arbitrary<Id> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(...UUIDS) },
  { weight: 1, arbitrary: fc.constantFrom(2n ** 63n, 2n ** 64n - 1n) },
);
// small integer coordinates: many exact ties and duplicate vectors, the
// cases that strand nodes in a pruned graph
const vecArb = fc.array(fc.integer({ min: -6, max: 6 }), { minLength: DIM, maxLength: DIM });

type Op =
  | { kind: 'add'; items: { id: Id; vec: number[]; payload?: { n: number; s: string } }[] }
  | { kind: 'remove'; ids: Id[] }
  | { kind: 'search'; query: number[]; k: number }
  | { kind: 'compact' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), items: fc.array(fc.record({ id: idArb, vec: vecArb, payload: fc.option(fc.record({ n: fc.integer(), s: fc.string({ maxLength: 40 }) }), { nil: undefined }) }), { minLength: 1, maxLength: 12 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), ids: fc.array(idArb, { minLength: 1, maxLength: 6 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('search' as const), query: vecArb, k: fc.integer({ min: 1, max: 12 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
);

const keyOf = (id: Id): string => (typeof id === 'bigint' && id <= BigInt(Number.MAX_SAFE_INTEGER) ? String(Number(id)) : String(id));
const l2 = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i]! - b[i]!) ** 2;
  return d;
};

// On a quantized index (int8 codes, f32 originals apart) the same model
// holds when the search re-ranks every candidate of a beam that holds every
// node (oversampling as large as it goes); a search with the default
// oversampling still returns live ids, exact distances, sorted.
for (const quantized of [false, true]) {
t.test(`random add / remove / upsert / search / compact against a model${quantized ? ', quantized (int8)' : ''}`, async (t) => {
  let runs = 0;
  let learned = 0;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.constantFrom(2, 4, 8), (ops, M) => {
      runs++;
      const index = new Index({
        dim: DIM, M, efConstruction: 16, build: 'debug', seed: 5, ...(quantized ? { quantization: { scalar: { type: 'int8' as const } } } : {}),
      });
      const model = new Map<string, { id: Id; vec: number[]; payload?: unknown }>();
      try {
        for (const op of ops) {
          if (op.kind === 'add') {
            const seen = new Set<string>();
            const items = op.items.filter((it) => !seen.has(keyOf(it.id)) && seen.add(keyOf(it.id)));
            index.add(items.map((it) => it.id), items.map((it) => it.vec), items.map((it) => it.payload));
            for (const it of items) model.set(keyOf(it.id), it);
          } else if (op.kind === 'remove') {
            const expected = new Set(op.ids.map(keyOf).filter((k) => model.has(k))).size;
            if (index.remove(op.ids) !== expected) throw new Error('remove count differs from the model');
            for (const id of op.ids) model.delete(keyOf(id));
          } else if (op.kind === 'search') {
            const hits = index.search(op.query, op.k, { ef: 1000, ...(quantized ? { quantization: { oversampling: 1000 } } : {}) });
            if (quantized) {
              const quick = index.search(op.query, op.k, { ef: 8 });
              quick.ids.forEach((id, i) => {
                const entry = model.get(keyOf(id));
                if (entry === undefined) throw new Error(`default search returned removed or unknown id ${String(id)}`);
                if (Math.abs(quick.distances[i]! - l2(entry.vec, op.query)) > 1e-3) throw new Error('a re-ranked distance is not exact');
                if (i > 0 && quick.distances[i - 1]! > quick.distances[i]!) throw new Error('default search results not sorted');
              });
            }
            const exact = [...model.values()].map((v) => l2(v.vec, op.query)).sort((a, b) => a - b);
            if (hits.ids.length !== Math.min(op.k, model.size)) throw new Error(`search returned ${hits.ids.length}, model has ${model.size}`);
            hits.ids.forEach((id, i) => {
              const entry = model.get(keyOf(id));
              if (entry === undefined) throw new Error(`search returned removed or unknown id ${String(id)}`);
              if (Math.abs(hits.distances[i]! - l2(entry.vec, op.query)) > 1e-3) throw new Error('distance does not match the stored vector');
              if (Math.abs(hits.distances[i]! - exact[i]!) > 1e-3) throw new Error(`rank ${i}: got distance ${hits.distances[i]}, brute force ${exact[i]}`);
              if (i > 0 && hits.distances[i - 1]! > hits.distances[i]!) throw new Error('results not sorted');
            });
          } else {
            index.compact();
            if (index.stats().deletedNodes !== 0) throw new Error('compaction left tombstones');
          }
          const integrity = index.checkIntegrity();
          if (!integrity.ok) throw new Error(`integrity after ${op.kind}: ${JSON.stringify(integrity)}`);
          if (index.size !== model.size) throw new Error(`size ${index.size}, model ${model.size}`);
          for (const { id, vec, payload } of model.values()) {
            const got = index.get(id);
            if (got === undefined || l2(got, vec) !== 0) throw new Error(`id ${String(id)} not found by exact lookup`);
            if (JSON.stringify(index.getPayload(id)) !== JSON.stringify(payload)) throw new Error(`id ${String(id)}: payload differs`);
          }
        }
        if (quantized && index.stats().quantization!.learnedFrom > 0) learned++;
      } finally {
        index.dispose();
      }
    }),
    { seed: quantized ? 20261202 : 20261127, numRuns: 150 },
  );
  t.equal(runs >= 150, true, 'ran every generated case');
  // the quantized cases must walk codes, not only the originals (learned at 32 live)
  if (quantized) t.ok(learned >= 20, `${learned} of ${runs} cases ended with a learned quantizer`);
});
}

t.test('an image round-trips: same answers, same bytes', async (t) => {
  const index = new Index({ dim: DIM, M: 4, build: 'debug', seed: 9 });
  const ids = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? UUIDS[i % 8]!.slice(0, -3) + String(i).padStart(3, '0') : i));
  const vecs = ids.map((_, i) => [i % 7, (i * 3) % 11, (i * 5) % 13, i % 2]);
  index.add(ids, vecs);
  index.remove(ids.filter((_, i) => i % 4 === 0));
  const image = index.toImage();
  const copy = Index.fromImage(image, { build: 'debug' });
  t.equal(copy.size, index.size);
  t.ok(copy.checkIntegrity().ok);
  for (const q of [[0, 0, 0, 0], [3, 5, 7, 1], [6, 10, 12, 0]]) {
    t.same(copy.search(q, 10), index.search(q, 10));
  }
  t.same(copy.toImage(), image, 'the copy serialises to the same bytes');
  // release and debug builds share the layout
  const release = Index.fromImage(image);
  t.same(release.search([1, 2, 3, 0], 5), index.search([1, 2, 3, 0], 5));
  for (const i of [index, copy, release]) i.dispose();
});
