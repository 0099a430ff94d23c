import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// the generator the benches and scripts use too
export { clustered, rng } from '../../bench/lib/random.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** Reads an .fvecs file: records [int32 d][float32 x d]. */
export function readFvecs(name: string): { dim: number; n: number; data: Float32Array } {
  const buf = readFileSync(FIXTURES + name);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dim = view.getInt32(0, true);
  const n = buf.byteLength / (4 + 4 * dim);
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const base = i * (4 + 4 * dim);
    for (let j = 0; j < dim; j++) data[i * dim + j] = view.getFloat32(base + 4 + 4 * j, true);
  }
  return { dim, n, data };
}

/** Reads an .ivecs file: records [int32 k][int32 x k]. */
export function readIvecs(name: string): { k: number; n: number; data: Int32Array } {
  const buf = readFileSync(FIXTURES + name);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const k = view.getInt32(0, true);
  const n = buf.byteLength / (4 + 4 * k);
  const data = new Int32Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) data[i * k + j] = view.getInt32(i * (4 + 4 * k) + 4 + 4 * j, true);
  }
  return { k, n, data };
}

export function sift() {
  return {
    base: readFvecs('siftsmall_base.fvecs'),
    query: readFvecs('siftsmall_query.fvecs'),
    truth: readIvecs('siftsmall_groundtruth.ivecs'),
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
