import t from 'tap';
import fc from 'fast-check';
import { packIds } from '../host/ids.js';
import { Shard } from '../host/core/shard.js';
import { compactNow } from '../host/core/compaction.js';
import { LAYOUT } from '../host/core/abi.js';
import { rng } from './helpers/data.js';
import { quantParams, tempDir } from './helpers/disk.js';

// Disk-mode shards (alwaysRam: false) against a plain model, a Map from id
// to vector, with the real FREEZE_AT: batches of up to 600 vectors make
// most cases cross the spill. Small integer coordinates make every distance
// an exact integer in f32 (and make ties and duplicates). A search with ef
// and the re-rank as wide as the shard visits every node and re-ranks every
// live one, so it must return the model's k nearest distances exactly, from
// the file once spilled; get returns the model's vector bit for bit.

const DIM = 8;
const SPILL = LAYOUT.FREEZE_AT;
const ID_SPACE = 3000;

type Op =
  | { kind: 'add'; from: number; count: number; seed: number }
  | { kind: 'remove'; from: number; count: number; step: number }
  | { kind: 'search'; seed: number; k: number }
  | { kind: 'compact' }
  | { kind: 'image' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), from: fc.integer({ min: 0, max: ID_SPACE - 1 }), count: fc.integer({ min: 1, max: 600 }), seed: fc.integer() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), from: fc.integer({ min: 0, max: ID_SPACE - 1 }), count: fc.integer({ min: 1, max: 200 }), step: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('search' as const), seed: fc.integer(), k: fc.integer({ min: 1, max: 12 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'image' as const }) },
);

function vectors(seed: number, n: number): Float32Array {
  const rand = rng(seed);
  return Float32Array.from({ length: n * DIM }, () => Math.floor(rand() * 13) - 6);
}

t.test('random add / upsert / remove / search / compact / image on disk-mode shards against a model, across the spill', async (t) => {
  const dir = tempDir(t);
  const ids = packIds(Array.from({ length: ID_SPACE }, (_, i) => i), true);
  let runs = 0;
  let crossed = 0;
  let compactedSpilled = 0;
  let searched = 0;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 4, maxLength: 24 }), (ops) => {
      runs++;
      let gen = 1;
      let file = dir.file(`run${runs}-originals-${gen}.f32`, DIM);
      let shard = Shard.create(quantParams(false, DIM, 'l2', { M: 4, efConstruction: 16, ef: 16, build: 'debug' }), 0, { originals: file });
      const model = new Map<number, Float32Array>();
      const fail = (why: string): never => { throw new Error(`${why} (ops ${JSON.stringify(ops)})`); };
      try {
        for (const op of ops) {
          if (op.kind === 'add') {
            const data = vectors(op.seed, op.count);
            for (let j = 0; j < op.count; j++) {
              const id = (op.from + j) % ID_SPACE;
              if (!shard.insert(ids, id, data, j * DIM)) fail('insert out of memory');
              model.set(id, data.slice(j * DIM, (j + 1) * DIM));
            }
          } else if (op.kind === 'remove') {
            for (let j = 0; j < op.count; j++) {
              const id = (op.from + j * op.step) % ID_SPACE;
              if (shard.remove(ids, id) !== model.delete(id)) fail(`remove ${id} disagrees with the model`);
            }
          } else if (op.kind === 'search') {
            searched++;
            const q = vectors(op.seed, 1);
            const live = model.size;
            // a beam and a re-rank over every node: exact
            const width = shard.stats().slots + 1;
            const hits = shard.search(q, 0, op.k, width, false, undefined, { oversampling: Math.ceil(width / op.k) });
            const want = [...model.values()].map((v) => { let d = 0; for (let x = 0; x < DIM; x++) d += (v[x]! - q[x]!) ** 2; return d; }).sort((a, b) => a - b).slice(0, op.k);
            if (hits.ids.length !== Math.min(op.k, live)) fail(`search returned ${hits.ids.length} of ${Math.min(op.k, live)}`);
            hits.ids.forEach((id, j) => {
              const v = model.get(id as number);
              if (v === undefined) fail(`search returned ${String(id)}, not live`);
              let d = 0;
              for (let x = 0; x < DIM; x++) d += (v![x]! - q[x]!) ** 2;
              if (hits.distances[j] !== d) fail(`id ${String(id)}: distance ${hits.distances[j]}, exact ${d}`);
            });
            if (JSON.stringify(Array.from(hits.distances)) !== JSON.stringify(want)) fail(`distances ${JSON.stringify(Array.from(hits.distances))}, model ${JSON.stringify(want)}`);
          } else if (op.kind === 'compact') {
            if (shard.spilled) {
              compactedSpilled++;
              const next = dir.file(`run${runs}-originals-${shard.originalsGeneration + 1}.f32`, DIM);
              compactNow(shard, { originals: next });
              if (shard.originalsGeneration !== gen + 1) fail('generation + 1');
              gen++;
              file = next;
            } else {
              compactNow(shard);
            }
          } else {
            file.sync();
            const copy = Shard.fromImage(shard.toImage(), 'debug', { originals: file });
            shard.dispose();
            shard = copy;
          }
          if (shard.spilled !== (shard.originalsGeneration !== 0)) fail('spilled is generation != 0');
        }
        if (shard.spilled) crossed++;
        else if (model.size >= SPILL) fail(`${model.size} live and not spilled`);
        if (shard.stats().live !== model.size || shard.listIds().length / 5 !== model.size) fail('live count');
        for (const [id, v] of model) {
          const got = shard.get(ids, id);
          if (got === undefined || !got.vector.every((x, j) => x === v[j])) fail(`get ${id}`);
        }
        for (let id = 0; id < ID_SPACE; id += 97) if (!model.has(id) && shard.get(ids, id) !== undefined) fail(`get ${id}: removed or never added`);
        const report = shard.integrity();
        if (!report.ok) fail(`integrity ${JSON.stringify(report)}`);
      } finally {
        shard.dispose();
      }
    }),
    { numRuns: 150, seed: 11 },
  );
  t.comment(`${runs} runs: ${crossed} ended spilled, ${compactedSpilled} spilled compactions, ${searched} searches`);
  t.ok(crossed >= 40, 'enough cases cross the spill point');
  t.ok(compactedSpilled >= 20, 'and compact spilled shards');
});
