import t from 'tap';
import { Index, collectGarbage } from '../host/index.js';
import { rng } from './helpers/data.js';
import { settleRss } from './helpers/memory.js';

const MiB = 1024 * 1024;
const rss = (): number => process.memoryUsage.rss();

/** Grows an index past `bytes` of committed memory with cheap inserts. */
function grow(bytes: number): Index {
  const dim = 1024;
  const index = new Index({ dim, M: 4, efConstruction: 8, seed: 2 });
  const r = rng(5);
  const chunk = 1000;
  const vectors = new Float32Array(chunk * dim);
  let next = 0;
  while (index.stats().committedBytes < bytes) {
    for (let i = 0; i < vectors.length; i++) vectors[i] = r();
    index.add(Array.from({ length: chunk }, (_, i) => next + i), vectors);
    next += chunk;
  }
  return index;
}

t.test('an index of >= 256 MiB, disposed, gives its memory back to the OS', async (t) => {
  collectGarbage();
  const baseline = await settleRss(() => false, 500);
  const index = grow(256 * MiB);
  const committed = index.stats().committedBytes;
  const peak = rss();
  t.ok(committed >= 256 * MiB, `committed ${(committed / MiB).toFixed(0)} MiB`);
  t.ok(peak - baseline > 200 * MiB, 'the index really occupied memory');
  index.dispose();
  const after = await settleRss((now) => now <= baseline * 1.1, 5000);
  t.comment(`RSS baseline ${(baseline / MiB).toFixed(1)} MiB, with index ${(peak / MiB).toFixed(1)} MiB, after dispose ${(after / MiB).toFixed(1)} MiB`);
  t.ok(after <= baseline * 1.1, 'RSS within 10% of the baseline after dispose');
});

t.test('deleting most of a >= 256 MiB index and compacting shrinks RSS', async (t) => {
  collectGarbage();
  const baseline = await settleRss(() => false, 500);
  const index = grow(256 * MiB);
  const n = index.size;
  const peak = rss();
  const keep = Math.floor(n / 10);
  index.remove(Array.from({ length: n - keep }, (_, i) => keep + i));
  const report = index.compact();
  t.equal(index.size, keep);
  const target = baseline + (peak - baseline) * 0.2;
  const after = await settleRss((now) => now <= target, 5000);
  t.comment(`RSS baseline ${(baseline / MiB).toFixed(1)} MiB, full ${(peak / MiB).toFixed(1)} MiB, after deleting 90% + compact ${(after / MiB).toFixed(1)} MiB; committed ${(report.committedBefore / MiB).toFixed(1)} -> ${(report.committedAfter / MiB).toFixed(1)} MiB`);
  t.ok(report.committedAfter < report.committedBefore * 0.15, 'committed bytes follow the live data');
  t.ok(after <= target, 'RSS falls to within 20% of the index share (10% is live)');
  index.dispose();
});
