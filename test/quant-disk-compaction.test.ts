import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packIds } from '../host/ids.js';
import { Shard } from '../host/core/shard.js';
import { OriginalsFile } from '../host/core/originals.js';
import { compactInSteps, compactNow } from '../host/core/compaction.js';
import { LAYOUT } from '../host/core/abi.js';
import { bruteForce, recallAt, sift } from './helpers/data.js';
import { identical, pair, quantParams, tempDir } from './helpers/disk.js';

// Compaction and images of disk-mode shards (host/core/compaction.ts,
// host/core/originals.ts): a spilled shard's target learns its quantizer
// again from the survivors in its new file, as always_ram's does from RAM,
// takes generation + 1 and its own file in its slot order; the old file is
// only read; an image pairs with its file.

const DIM = 128;
const SPILL = LAYOUT.FREEZE_AT;

function recallOver(shard: Shard, base: Float32Array, query: Float32Array, nq: number, rows: number[], ef: number): number {
  let sum = 0;
  for (let q = 0; q < nq; q++) {
    const got = shard.search(query, q * DIM, 10, ef).ids as number[];
    sum += recallAt(got, bruteForce(base, DIM, query, q * DIM, 10, rows), 10);
  }
  return sum / nq;
}

t.test('a spilled shard compacts into generation + 1: learns again as always_ram does, identical answers, exact survivors, the old file untouched', async (t) => {
  const { base, query } = sift();
  const { ram, disk, file, dir } = pair(t, DIM);
  const ids = packIds(Array.from({ length: base.n }, (_, i) => i), true);
  for (let i = 0; i < base.n; i++) { ram.insert(ids, i, base.data, i * DIM); disk.insert(ids, i, base.data, i * DIM); }
  const removed = (i: number) => i % 10 < 3;
  for (let i = 0; i < base.n; i++) if (removed(i)) { ram.remove(ids, i); disk.remove(ids, i); }
  const survivors = Array.from({ length: base.n }, (_, i) => i).filter((i) => !removed(i));
  const learned = disk.stats().quantLearned;
  t.equal(learned, SPILL, 'the quantizer was learned once, at the spill');
  const oldBytes = readFileSync(file.path);
  const before = recallOver(disk, base.data, query.data, 50, survivors, 64);

  t.throws(() => compactNow(disk), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /needs a new originals file/ }, 'a spilled shard needs the target file');
  t.throws(() => compactNow(disk, { originals: file }), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /cannot be the shard's own/ });
  // a cancelled compaction changes nothing
  const cancelled = dir.file('originals-2-cancelled.f32', DIM);
  let steps = 0;
  const none = await compactInSteps(disk, async () => {}, () => ++steps > 12, { originals: cancelled });
  t.equal(none, undefined, 'cancelled');
  t.equal(disk.originalsGeneration, 1, 'still generation 1');
  t.equal(disk.originals, file, 'still its own file');

  const next = dir.file('originals-2.f32', DIM);
  const report = await compactInSteps(disk, async () => {}, () => false, { originals: next });
  t.ok(report !== undefined && report.removedTombstones === base.n - survivors.length, 'compacted');
  t.equal(disk.originalsGeneration, 2, 'generation + 1');
  t.ok(disk.spilled);
  t.equal(disk.originals, next, 'the shard now reads the new file');
  t.equal(next.slots, survivors.length, 'the new file holds the survivors, in the new slot order');
  t.ok(readFileSync(file.path).equals(oldBytes), 'the old file is byte-for-byte untouched');
  t.equal(disk.stats().quantLearned, survivors.length, 'learned again, from the survivors');
  compactNow(ram);
  t.equal(ram.stats().quantLearned, survivors.length, 'as always_ram\'s compaction did');
  let twins = 0;
  for (const quant of [undefined, { rescore: false }]) {
    for (let q = 0; q < query.n; q++) {
      if (identical(ram.search(query.data, q * DIM, 10, 64, false, undefined, quant), disk.search(query.data, q * DIM, 10, 64, false, undefined, quant))) twins++;
    }
  }
  t.equal(twins, 2 * query.n, 'identical ids and distances to always_ram after both compacted, re-ranked and on codes alone');
  t.equal(disk.stats().deleted, 0);
  t.ok(disk.integrity().ok, 'integrity');
  let exact = 0;
  for (const i of survivors) {
    const v = disk.get(ids, i)?.vector;
    if (v !== undefined && v.every((x, j) => x === base.data[i * DIM + j])) exact++;
  }
  t.equal(exact, survivors.length, 'every survivor\'s vector is exact via get');
  t.equal(disk.get(ids, 0), undefined, 'a removed id is gone');
  const after = recallOver(disk, base.data, query.data, 50, survivors, 64);
  t.comment(`recall@10 over the survivors at ef 64: before ${before.toFixed(3)}, after ${after.toFixed(3)}`);
  t.ok(after >= 0.95 && after >= before - 0.02, 'recall after compaction');
  // inserts go on into the new file
  disk.insert(ids, 0, base.data, 0);
  t.ok(disk.get(ids, 0)!.vector.every((x, j) => x === base.data[j]), 'an insert after the compaction reads back exactly');
  t.equal(next.slots, survivors.length + 1);

  // the image pairs with the file of its generation
  next.sync();
  const image = disk.toImage();
  const loaded = Shard.fromImage(image, 'release', { originals: next });
  t.teardown(() => loaded.dispose());
  t.equal(loaded.originalsGeneration, 2);
  let same = 0;
  for (let q = 0; q < query.n; q++) {
    if (identical(disk.search(query.data, q * DIM, 10, 64), loaded.search(query.data, q * DIM, 10, 64))) same++;
  }
  t.equal(same, query.n, 'image round trip: identical results on every query');
  t.ok(loaded.get(ids, 5)!.vector.every((x, j) => x === base.data[5 * DIM + j]), 'get from the loaded image');
  t.throws(() => Shard.fromImage(image, 'release'), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /needs its originals file/ });
  const short = join(dir.path, 'short.f32');
  writeFileSync(short, readFileSync(next.path).subarray(0, DIM * 4 * 10));
  const shortFile = OriginalsFile.open(short, DIM);
  t.teardown(() => shortFile.close());
  t.throws(() => Shard.fromImage(image, 'release', { originals: shortFile }), { code: 'QUIVER_ERR_CORRUPT', message: /holds 10 slots/ });
});

t.test('a disk-mode shard in its RAM phase compacts as a RAM shard, then spills into its file', async (t) => {
  const { base, query } = sift();
  const { disk, file, dir } = pair(t, DIM);
  const ids = packIds(Array.from({ length: base.n }, (_, i) => i), true);
  for (let i = 0; i < 600; i++) disk.insert(ids, i, base.data, i * DIM);
  for (let i = 0; i < 600; i += 2) disk.remove(ids, i);
  compactNow(disk);
  t.equal(disk.spilled, false, 'not spilled');
  t.equal(disk.originalsGeneration, 0);
  t.equal(disk.originals, file, 'keeps its file');
  t.equal(file.byteLength, 0, 'nothing written');
  const image = disk.toImage();
  for (let i = 600; i < 600 + SPILL; i++) disk.insert(ids, i, base.data, i * DIM);
  t.ok(disk.spilled, 'spilled on reaching the threshold after the compaction');
  t.equal(disk.originalsGeneration, 1);
  t.ok(disk.get(ids, 601)!.vector.every((x, j) => x === base.data[601 * DIM + j]));
  // a RAM-phase image (generation 0) loads with its file and spills on its own
  const other = dir.file('other-1.f32', DIM);
  const again = Shard.fromImage(image, 'debug', { originals: other });
  t.teardown(() => again.dispose());
  t.equal(again.originalsGeneration, 0);
  for (let i = 600; i < 600 + SPILL; i++) again.insert(ids, i, base.data, i * DIM);
  t.ok(again.spilled);
  let same = 0;
  for (let q = 0; q < 30; q++) if (identical(disk.search(query.data, q * DIM, 10, 64), again.search(query.data, q * DIM, 10, 64))) same++;
  t.equal(same, 30, 'the replayed copy answers identically (deterministic spill)');
  t.ok(readFileSync(file.path).equals(readFileSync(other.path)), 'and wrote the same file');
});

t.test('bad disk options are refused and change nothing', async (t) => {
  const dir = tempDir(t);
  const f = dir.file('x.f32', 8);
  t.throws(() => Shard.create(quantParams(false, 8)), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /needs an originals file/ });
  t.throws(() => Shard.create(quantParams(true, 8), 0, { originals: f }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  t.throws(() => Shard.create({ dim: 8, metric: 'l2', M: 8, efConstruction: 16, ef: 16 }, 0, { originals: f }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  const wrongDim = dir.file('y.f32', 9);
  t.throws(() => Shard.create(quantParams(false, 8), 0, { originals: wrongDim }), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /dim 9/ });
  const ram = Shard.create(quantParams(true, 8));
  t.teardown(() => ram.dispose());
  t.throws(() => compactNow(ram, { originals: f }), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /not in disk mode/ });
  t.throws(() => Shard.fromImage(ram.toImage(), 'release', { originals: f }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  const bad = join(dir.path, 'bad.f32');
  writeFileSync(bad, new Uint8Array(8 * 4 + 3));
  t.throws(() => OriginalsFile.open(bad, 8), { code: 'QUIVER_ERR_CORRUPT', message: /not a multiple of 32/ });
  t.throws(() => OriginalsFile.open(join(dir.path, 'absent.f32'), 8), { code: 'QUIVER_ERR_IO' });
  t.throws(() => OriginalsFile.create(join(dir.path, 'z.f32'), 0), RangeError);
  const g = OriginalsFile.open(f.path, 8);
  g.close();
  g.close();
  t.ok(g.closed, 'close is idempotent');
  t.throws(() => g.sync(), { code: 'QUIVER_ERR_CLOSED' });
  t.equal(f.byteLength, 0, 'the refusals wrote nothing');
});
