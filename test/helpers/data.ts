import { fileURLToPath } from 'node:url';
import { readFvecs, readIvecs } from '../../bench/lib/vecs.js';

// the generator the benches and scripts use too
export { clustered, rng } from '../../bench/lib/random.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** SIFT10K (siftsmall) from test/fixtures, read by the benches' reader. */
export function sift() {
  const truth = readIvecs(FIXTURES + 'siftsmall_groundtruth.ivecs');
  return {
    base: readFvecs(FIXTURES + 'siftsmall_base.fvecs'),
    query: readFvecs(FIXTURES + 'siftsmall_query.fvecs'),
    truth: { k: truth.dim, n: truth.n, data: truth.data },
  };
}

/** Exact k nearest by squared L2 over rows `ids` of `data` (all rows if omitted). */
export function bruteForce(data: Float32Array, dim: number, query: Float32Array, qOff: number, k: number, rows?: ArrayLike<number>): number[] {
  const n = rows ? rows.length : data.length / dim;
  const best: { d: number; i: number }[] = [];
  for (let r = 0; r < n; r++) {
    const row = rows ? rows[r]! : r;
    let d = 0;
    for (let j = 0; j < dim; j++) {
      const x = data[row * dim + j]! - query[qOff + j]!;
      d += x * x;
    }
    if (best.length < k || d < best[best.length - 1]!.d) {
      best.push({ d, i: row });
      best.sort((a, b) => a.d - b.d);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => b.i);
}

export function recallAt(found: ArrayLike<unknown>, truth: ArrayLike<number>, k: number): number {
  const t = new Set(Array.from(truth).slice(0, k));
  let hit = 0;
  for (let i = 0; i < Math.min(k, found.length); i++) if (t.has(found[i] as number)) hit++;
  return hit / k;
}
