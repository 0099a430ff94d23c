import t from 'tap';
import { Index } from '../host/index.js';
import { bruteForce, recallAt, rng, sift } from './helpers/data.js';

function recallOf(index: Index, base: Float32Array, dim: number, queries: Float32Array, rows: number[], ef: number): number {
  const nq = queries.length / dim;
  let sum = 0;
  for (let q = 0; q < nq; q++) {
    const exact = bruteForce(base, dim, queries, q * dim, 10, rows);
    sum += recallAt(index.search(queries.subarray(q * dim, (q + 1) * dim), 10, { ef }).ids, exact, 10);
  }
  return sum / nq;
}

t.test('delete 50% at random and compact: recall, bytes, image', async (t) => {
  const { base, query } = sift();
  const dim = base.dim;
  const ids = Array.from({ length: base.n }, (_, i) => i);
  const index = new Index({ dim, build: 'debug', seed: 1 });
  index.add(ids, base.data);
  const r = rng(99);
  const removed = ids.filter(() => r() < 0.5);
  const gone = new Set(removed);
  const survivors = ids.filter((i) => !gone.has(i));
  t.equal(index.remove(removed), removed.length);
  const before = index.stats();
  t.equal(before.deletedNodes, removed.length);

  const report = index.compact();
  const after = index.stats();
  t.equal(after.liveNodes, survivors.length);
  t.equal(after.deletedNodes, 0);
  t.equal(report.removedTombstones, removed.length);
  t.comment(`committed ${before.committedBytes} -> ${after.committedBytes} bytes; live ${after.liveBytes}, fixed overhead ${after.fixedOverheadBytes}`);
  t.ok(after.committedBytes <= 1.15 * (after.liveBytes + after.fixedOverheadBytes), 'committed <= 1.15 x (live + fixed overhead)');
  t.ok(after.committedBytes < 0.6 * before.committedBytes, 'about half the memory is gone');
  t.ok(index.checkIntegrity().ok, 'integrity after compaction');

  // every survivor is still found by id, no removed id comes back
  for (const id of survivors) if (!index.has(id)) t.fail(`survivor ${id} lost`);
  for (const id of removed.slice(0, 200)) if (index.has(id)) t.fail(`removed ${id} came back`);

  const fresh = new Index({ dim, build: 'debug', seed: 1 });
  fresh.add(survivors, survivors.map((i) => base.data.subarray(i * dim, (i + 1) * dim)));
  for (const ef of [16, 64, 128]) {
    const compacted = recallOf(index, base.data, dim, query.data, survivors, ef);
    const rebuilt = recallOf(fresh, base.data, dim, query.data, survivors, ef);
    t.comment(`ef ${ef}: recall@10 compacted ${compacted.toFixed(3)}, fresh build ${rebuilt.toFixed(3)}`);
    t.ok(compacted >= rebuilt - 0.01, `ef ${ef}: within 0.01 of a fresh build`);
  }

  const image = index.toImage();
  t.equal(image.byteLength, after.usedBytes, 'the image is the used prefix');
  const loaded = Index.fromImage(image, { build: 'debug' });
  t.same(loaded.toImage(), image, 'the image round-trips byte for byte');
  t.same(loaded.search(query.data.subarray(0, dim), 10), index.search(query.data.subarray(0, dim), 10));
  for (const i of [index, fresh, loaded]) i.dispose();
});

t.test('compaction keeps upserts, reuses nothing stale, and survives growth afterwards', async (t) => {
  const index = new Index({ dim: 8, M: 8, efConstruction: 50, build: 'debug', seed: 4 });
  const vec = (i: number, v: number): number[] => Array.from({ length: 8 }, (_, j) => ((i * 31 + j * 7 + v) % 23) - 11);
  const ids = Array.from({ length: 3000 }, (_, i) => i);
  index.add(ids, ids.map((i) => vec(i, 0)));
  index.add(ids.slice(0, 1000), ids.slice(0, 1000).map((i) => vec(i, 5))); // upsert a third
  index.remove(ids.slice(2000));
  index.compact();
  t.equal(index.size, 2000);
  for (const i of [0, 999, 1000, 1999]) t.same(Array.from(index.get(i)!), vec(i, i < 1000 ? 5 : 0));
  t.equal(index.get(2500), undefined);
  index.add(ids.slice(2000), ids.slice(2000).map((i) => vec(i, 1)));
  t.equal(index.size, 3000);
  t.ok(index.checkIntegrity().ok);
  // compacting everything away leaves a valid empty index
  index.remove(ids);
  index.compact();
  t.equal(index.size, 0);
  t.same(index.search(vec(1, 0), 5).ids, []);
  index.add([7], [vec(7, 0)]);
  t.same(index.search(vec(7, 0), 1).ids, [7]);
  t.ok(index.checkIntegrity().ok);
  index.dispose();
});
