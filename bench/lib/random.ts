// The one seeded generator of the tests, benches and scripts: the same seed
// gives the same data in every run, on every machine.

/** mulberry32: uniform numbers in [0, 1) from a 32-bit seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal numbers from `rand` (Box-Muller, one draw per pair of uniforms). */
export function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

/**
 * Points around `clusters` centres drawn uniformly in [-1, 1]^dim, each
 * coordinate off its centre by a normal number times `spread`. A stream:
 * every `next(n)` continues the same draw, so a long run can take its data
 * in batches and still be had again from the seed.
 */
export class ClusteredSource {
  readonly #rand: () => number;
  readonly #gauss: () => number;
  readonly #centres: Float32Array;
  constructor(readonly dim: number, readonly clusters: number, seed: number, readonly spread = 0.15) {
    this.#rand = rng(seed);
    this.#gauss = gaussian(this.#rand);
    this.#centres = new Float32Array(clusters * dim);
    for (let i = 0; i < this.#centres.length; i++) this.#centres[i] = this.#rand() * 2 - 1;
  }

  /** n points, into `into` (from its start) when given, else into a new array. */
  next(n: number, into?: Float32Array): Float32Array {
    const { dim } = this;
    const out = into?.subarray(0, n * dim) ?? new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      const c = Math.floor(this.#rand() * this.clusters);
      for (let j = 0; j < dim; j++) out[i * dim + j] = this.#centres[c * dim + j]! + this.#gauss() * this.spread;
    }
    return out;
  }
}

/** n points of a ClusteredSource, all at once. */
export function clustered(n: number, dim: number, clusters: number, seed: number, spread = 0.15): Float32Array {
  return new ClusteredSource(dim, clusters, seed, spread).next(n);
}

/** `k` distinct numbers of 0..n-1, in random order (a partial Fisher-Yates shuffle). */
export function sample(n: number, k: number, rand: () => number): Uint32Array {
  const all = new Uint32Array(n);
  for (let i = 0; i < n; i++) all[i] = i;
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = all[i]!;
    all[i] = all[j]!;
    all[j] = t;
  }
  return all.slice(0, k);
}
