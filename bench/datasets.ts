// Datasets for the ANN benchmark: SIFT10K from .fvecs/.ivecs files and two
// generated sets whose data and brute-force ground truth are cached on disk.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gaussian, rng } from './lib/random.js';
import { readFvecs, readIvecs } from './lib/vecs.js';

export type Metric = 'l2' | 'cosine';

export const K = 10;

export interface Dataset {
  name: string;
  metric: Metric;
  n: number;
  dim: number;
  nq: number;
  base: Float32Array; // n * dim, row-major
  queries: Float32Array; // nq * dim
  gt: Int32Array; // nq * K, exact neighbours, nearest first
}

/** What a child process needs to load a dataset; small enough to pass on the command line. */
export type DatasetRef =
  | { name: string; kind: 'fvecs'; dir: string }
  | { name: string; kind: 'cache'; file: string };

export interface GeneratedSpec {
  name: string;
  metric: Metric;
  n: number;
  nq: number;
  dim: number;
  clusters: number;
  /** Rank of each cluster's low-rank covariance part (0: isotropic clusters). */
  rank: number;
  /** Standard deviation of the isotropic noise added to every coordinate (centres are N(0, 1)). */
  noise: number;
  seed: number;
}

// Bump when the generator changes so stale caches are not reused.
const GENERATOR_VERSION = 2; // 2: the shared generator of bench/lib/random.ts (was sfc32)

export function generatedSpecs(small: boolean): GeneratedSpec[] {
  return [
    // Isotropic gaussian clusters: no low-dimensional structure to exploit, so it is
    // harder than SIFT at the same size (recall@10 0.95 needs ef≈64 at 100k).
    {
      name: small ? 'clustered-5k-128' : 'clustered-100k-128',
      metric: 'l2',
      n: small ? 5_000 : 100_000,
      nq: small ? 200 : 1_000,
      dim: 128,
      clusters: small ? 20 : 100,
      rank: 0,
      noise: 0.5,
      seed: 42,
    },
    // Embedding-like: each cluster spans a random 64-d subspace plus some noise, unit length.
    {
      name: small ? 'cosine-2k-768' : 'cosine-20k-768',
      metric: 'cosine',
      n: small ? 2_000 : 20_000,
      nq: small ? 100 : 200,
      dim: 768,
      clusters: small ? 10 : 50,
      rank: 64,
      noise: 0.5,
      seed: 7,
    },
  ];
}

export const SIFT_NAME = 'sift10k';

export function siftRef(dir: string): DatasetRef {
  return { name: SIFT_NAME, kind: 'fvecs', dir };
}

export function loadDataset(ref: DatasetRef): Dataset {
  return ref.kind === 'fvecs' ? loadSift(ref.dir) : readCache(ref.file);
}

export function siftFiles(dir: string): string[] {
  return ['siftsmall_base.fvecs', 'siftsmall_query.fvecs', 'siftsmall_groundtruth.ivecs'].map((f) => join(dir, f));
}

function loadSift(dir: string): Dataset {
  const [baseFile, queryFile, gtFile] = siftFiles(dir) as [string, string, string];
  const base = readFvecs(baseFile);
  const queries = readFvecs(queryFile);
  const truth = readIvecs(gtFile);
  if (queries.dim !== base.dim) throw new Error('SIFT query and base dimensions differ');
  if (truth.n !== queries.n || truth.dim < K) throw new Error('SIFT ground truth does not match the queries');
  const gt = new Int32Array(queries.n * K);
  for (let q = 0; q < queries.n; q++) gt.set(truth.data.subarray(q * truth.dim, q * truth.dim + K), q * K);
  return { name: SIFT_NAME, metric: 'l2', n: base.n, dim: base.dim, nq: queries.n, base: base.data, queries: queries.data, gt };
}

// ---------------------------------------------------------------- generation

/**
 * Mixture of `clusters` gaussians, each with a random rank-`rank` covariance plus a
 * little isotropic noise. Queries come from the same mixture but a different stream,
 * so they are near the data without being copies of it.
 */
export function generate(spec: GeneratedSpec): { base: Float32Array; queries: Float32Array } {
  const { dim, clusters, rank, noise } = spec;
  const g = gaussian(rng(spec.seed));
  const centers = new Float32Array(clusters * dim);
  for (let i = 0; i < centers.length; i++) centers[i] = g();
  // Scaling by 1/sqrt(rank) keeps a cluster's spread comparable to the distance between centres.
  const axes = new Float32Array(clusters * rank * dim);
  for (let i = 0; i < axes.length; i++) axes[i] = g() / Math.sqrt(rank);

  const sample = (count: number, seed: number): Float32Array => {
    const rand = rng(seed);
    const gs = gaussian(rand);
    const out = new Float32Array(count * dim);
    const z = new Float64Array(rank);
    const row = new Float64Array(dim);
    for (let i = 0; i < count; i++) {
      const c = Math.floor(rand() * clusters);
      for (let r = 0; r < rank; r++) z[r] = gs();
      for (let j = 0; j < dim; j++) row[j] = centers[c * dim + j]! + noise * gs();
      for (let r = 0; r < rank; r++) {
        const zr = z[r]!;
        const ax = (c * rank + r) * dim;
        for (let j = 0; j < dim; j++) row[j] = row[j]! + zr * axes[ax + j]!;
      }
      if (spec.metric === 'cosine') {
        let norm = 0;
        for (let j = 0; j < dim; j++) norm += row[j]! * row[j]!;
        norm = Math.sqrt(norm) || 1;
        for (let j = 0; j < dim; j++) row[j] = row[j]! / norm;
      }
      out.set(row, i * dim);
    }
    return out;
  };
  return { base: sample(spec.n, spec.seed + 1), queries: sample(spec.nq, spec.seed + 2) };
}

/**
 * Exact top-K by brute force. For cosine the vectors are already unit length, so the
 * nearest neighbour is the largest dot product.
 */
export function bruteForce(base: Float32Array, queries: Float32Array, dim: number, metric: Metric): Int32Array {
  const n = base.length / dim;
  const nq = queries.length / dim;
  const gt = new Int32Array(nq * K);
  const bestD = new Float64Array(K);
  const bestI = new Int32Array(K);
  for (let q = 0; q < nq; q++) {
    bestD.fill(Infinity);
    bestI.fill(-1);
    const qo = q * dim;
    for (let i = 0; i < n; i++) {
      const bo = i * dim;
      let d = 0;
      if (metric === 'l2') {
        for (let j = 0; j < dim; j++) {
          const t = base[bo + j]! - queries[qo + j]!;
          d += t * t;
        }
      } else {
        for (let j = 0; j < dim; j++) d -= base[bo + j]! * queries[qo + j]!;
      }
      if (d >= bestD[K - 1]!) continue;
      let p = K - 1;
      while (p > 0 && bestD[p - 1]! > d) {
        bestD[p] = bestD[p - 1]!;
        bestI[p] = bestI[p - 1]!;
        p--;
      }
      bestD[p] = d;
      bestI[p] = i;
    }
    gt.set(bestI, q * K);
  }
  return gt;
}

// ---------------------------------------------------------------- cache file
// Layout: [u32 header bytes][JSON header][pad to 4][base f32][queries f32][gt i32]

export function cacheKey(spec: GeneratedSpec): string {
  const { name, metric, n, nq, dim, clusters, rank, noise, seed } = spec;
  return `${name}-${metric}-n${n}-q${nq}-d${dim}-c${clusters}-r${rank}-z${noise}-s${seed}-k${K}-v${GENERATOR_VERSION}`;
}

/** Returns the cache file for `spec`, generating data and ground truth first if needed. */
export function ensureCached(spec: GeneratedSpec, dir: string, log: (msg: string) => void): DatasetRef {
  const file = join(dir, `${cacheKey(spec)}.bin`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const t0 = performance.now();
    const { base, queries } = generate(spec);
    log(`${spec.name}: generated ${spec.n} x ${spec.dim} in ${((performance.now() - t0) / 1000).toFixed(1)} s; computing ground truth...`);
    const t1 = performance.now();
    const gt = bruteForce(base, queries, spec.dim, spec.metric);
    log(`${spec.name}: ground truth for ${spec.nq} queries in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    const header = Buffer.from(JSON.stringify({ name: spec.name, metric: spec.metric, n: spec.n, nq: spec.nq, dim: spec.dim }));
    const pad = (4 - ((4 + header.length) % 4)) % 4;
    const tmp = `${file}.${process.pid}.tmp`;
    const len = Buffer.alloc(4);
    len.writeUInt32LE(header.length);
    writeFileSync(tmp, Buffer.concat([len, header, Buffer.alloc(pad), bytesOf(base), bytesOf(queries), bytesOf(gt)]));
    renameSync(tmp, file); // an interrupted run must not leave a truncated cache behind
  }
  return { name: spec.name, kind: 'cache', file };
}

function bytesOf(a: Float32Array | Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function readCache(file: string): Dataset {
  const bytes = readFileSync(file);
  const headerLen = bytes.readUInt32LE(0);
  const h = JSON.parse(bytes.subarray(4, 4 + headerLen).toString('utf8')) as Omit<Dataset, 'base' | 'queries' | 'gt'>;
  let off = 4 + headerLen;
  off += (4 - (off % 4)) % 4;
  // Copy out of the file buffer so the arrays are aligned and the buffer can be freed.
  const take = (count: number): ArrayBuffer => {
    const ab = bytes.buffer.slice(bytes.byteOffset + off, bytes.byteOffset + off + count * 4);
    off += count * 4;
    return ab;
  };
  const base = new Float32Array(take(h.n * h.dim));
  const queries = new Float32Array(take(h.nq * h.dim));
  const gt = new Int32Array(take(h.nq * K));
  return { ...h, base, queries, gt };
}
