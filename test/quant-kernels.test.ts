// int8 scalar quantization (assembly/quant.ts) through the debug build's
// hooks, over memory this test places in the core's io buffer: the quantile
// cut, the codes, the exact integer kernels (SIMD against scalar against an
// exact JS sum), the mapping back against float64 distances of the
// dequantized vectors, and the reconstruction error on SIFT10K.
//
// TOLERANCES of the mapping back (codeDistance), with u = 2^-24:
//  - l2: the kernel's integer L is exact; the core returns f32(alpha^2 * L)
//    with alpha^2 held in f64 (exact: alpha is an f32) and one f64 product
//    (relative 2^-53), then one f32 rounding (u). The float64 reference sums
//    (x^a_i - x^b_i)^2 over x^_i = o_i + alpha * c_i: each difference is
//    within 2^-52 * |o_i| of alpha * (ca_i - cb_i), and the sum adds dim * 2^-53
//    relative. We assert |got - ref| <= 2u * ref + dim * 2^-40 * (sum o_i^2 + ref),
//    about twice the first-order bound and far below one code step (alpha^2).
//  - ip / cosine: got = f32(1 - (bias_a + bias_b + alpha^2 * D)), the biases
//    are f32-rounded (u * |bias| each), the f64 sum and the final rounding add
//    u * |1 - dot|. We assert |got - ref| <= 2u * (|bias_a| + |bias_b| +
//    alpha^2 * D + |ref|) + dim * 2^-40 * (sum o_i^2 + sum |x^a_i x^b_i|).
//    One code step of one term (alpha * |o_i| or more) is far above it for
//    the data below, so a wrong integer cannot hide inside it.
// The integer itself is compared exactly everywhere.

import t from 'tap';
import fc from 'fast-check';
import { instantiateDebug } from '../host/core/module.js';
import type { DebugCoreExports } from '../host/core/abi.js';
import { clustered, rng, sift } from './helpers/data.js';

const U = 2 ** -24;
const METRIC_L2 = 0;
const METRIC_IP = 1;
const METRIC_COSINE = 2;
const ERR_INVALID = -1;
const EDGE_DIMS = [1, 3, 15, 16, 17, 31, 32, 33, 127, 128, 129, 2048];

// ---------------------------------------------------------------------------
// a core and regions of its io buffer
// ---------------------------------------------------------------------------

const memory = new WebAssembly.Memory({ initial: 1 });
const core: DebugCoreExports = instantiateDebug(memory);
if (core.init(16, 0, 4, 16, 1n, 0, 0, 0) !== 0) throw new Error('init failed');
const KiB = 1024;
const MiB = 1024 * KiB;
const IO = core.ioReserve(16 * MiB);
if (IO === 0) throw new Error('ioReserve failed');
const PARAMS = IO; //                       <= 32 + 4 * 65536 bytes
const CODE_A = IO + 512 * KiB; //          + shift, 65536 codes + guard
const CODE_B = IO + 640 * KiB;
const VEC = IO + 768 * KiB; //             one f32 vector
const OUT = IO + 1024 * KiB; //            one decoded vector
const SCRATCH = IO + 1280 * KiB; //        n f32, n <= 65536
const SAMPLE = IO + 2 * MiB; //            n * dim f32, <= 8 MiB
const CODES = IO + 10 * MiB; //            many code vectors, <= 6 MiB
const SAMPLE_MAX = 8 * MiB;
const GUARD_A = 255;
const GUARD_B = 1;

const u8 = (): Uint8Array => new Uint8Array(memory.buffer);
const f32 = (): Float32Array => new Float32Array(memory.buffer);
const dv = (): DataView => new DataView(memory.buffer);

interface Params {
  alpha: number;
  quantile: number;
  alpha2: number;
  halfOO: number;
  dim: number;
  offsets: Float32Array;
}

function readParams(): Params {
  const v = dv();
  const dim = v.getUint32(PARAMS + 24, true);
  return {
    alpha: v.getFloat32(PARAMS, true),
    quantile: v.getFloat32(PARAMS + 4, true),
    alpha2: v.getFloat64(PARAMS + 8, true),
    halfOO: v.getFloat64(PARAMS + 16, true),
    dim,
    offsets: new Float32Array(memory.buffer.slice(PARAMS + 32, PARAMS + 32 + 4 * dim)),
  };
}

function learn(sample: Float32Array, n: number, dim: number, quantile: number): number {
  if (sample.length * 4 > SAMPLE_MAX) throw new Error('sample too large for the region');
  f32().set(sample, SAMPLE >>> 2);
  return core.quantLearn(SAMPLE, n, dim, quantile, PARAMS, SCRATCH);
}

/** Encodes v into CODE_A or CODE_B (+ shift); returns the bias and the codes. */
function encode(v: Float32Array, at: number): { bias: number; codes: Uint8Array } {
  f32().set(v, VEC >>> 2);
  const bias = core.quantEncode(PARAMS, VEC, at);
  return { bias, codes: u8().slice(at, at + v.length) };
}

/** Places two code vectors with guard bytes after each: a kernel reading past dim sees them. */
function stageCodes(a: ArrayLike<number>, b: ArrayLike<number>, shiftA: number, shiftB: number): { pa: number; pb: number } {
  const m = u8();
  const pa = CODE_A + shiftA;
  const pb = CODE_B + shiftB;
  m.fill(GUARD_A, CODE_A, pa + a.length + 64);
  m.fill(GUARD_B, CODE_B, pb + b.length + 64);
  m.set(a, pa);
  m.set(b, pb);
  return { pa, pb };
}

// ---------------------------------------------------------------------------
// JS models
// ---------------------------------------------------------------------------

const fr = Math.fround;

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** The code quant.ts must give x in dimension i: f32 arithmetic, round half to even, clamp. */
function modelCode(p: Params, x: number, i: number): number {
  const inv = fr(1 / p.alpha);
  const r = roundHalfEven(fr(fr(x - p.offsets[i]!) * inv));
  if (!(r >= 0)) return 0;
  return r > 255 ? 255 : r;
}

/** Dequantized value in float64. */
function deq(p: Params, c: number, i: number): number {
  return p.offsets[i]! + p.alpha * c;
}

function exactL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

function exactDot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Qdrant's cut, per dimension: [lo_i, hi_i] and the number cut from each tail. */
function modelInterval(sample: Float32Array, n: number, dim: number, quantile: number): { lo: number[]; hi: number[]; cut: number } {
  let cut = Math.floor(n * (1 - fr(quantile)) * 0.5);
  cut = Math.min(cut, (n - 1) >> 1);
  const lo: number[] = [];
  const hi: number[] = [];
  for (let d = 0; d < dim; d++) {
    const col = Float64Array.from({ length: n }, (_, r) => sample[r * dim + d]!).sort();
    lo.push(col[cut]!);
    hi.push(col[n - 1 - cut]!);
  }
  return { lo, hi, cut };
}

class Mismatch extends Error {}
function same(name: string, got: number, want: number): void {
  if (got !== want) throw new Mismatch(`${name}: got ${got}, want ${want}`);
}
function within(name: string, got: number, want: number, tol: number): void {
  if (!(Math.abs(got - want) <= tol)) throw new Mismatch(`${name}: got ${got}, want ${want} (|diff| ${Math.abs(got - want)} > ${tol})`);
}

/** All four integer kernels on two staged code vectors, against the exact sums. */
function checkIntegerKernels(a: ArrayLike<number>, b: ArrayLike<number>, shiftA: number, shiftB: number): void {
  const dim = a.length;
  const { pa, pb } = stageCodes(a, b, shiftA, shiftB);
  const l2 = exactL2(a, b);
  const dot = exactDot(a, b);
  const at = `dim ${dim}, shifts ${shiftA}/${shiftB}`;
  same(`kernelCodeL2 (${at})`, core.kernelCodeL2(pa, pb, dim), l2);
  same(`kernelCodeL2Scalar (${at})`, core.kernelCodeL2Scalar(pa, pb, dim), l2);
  same(`kernelCodeDot (${at})`, core.kernelCodeDot(pa, pb, dim), dot);
  same(`kernelCodeDotScalar (${at})`, core.kernelCodeDotScalar(pa, pb, dim), dot);
}

/**
 * n sample vectors whose dimensions differ in centre and spread (what
 * per-dimension offsets are for), from a seed.
 */
function skewedSample(n: number, dim: number, seed: number): { sample: Float32Array; draw: () => Float32Array } {
  const rand = rng(seed);
  const centre = Float64Array.from({ length: dim }, () => rand() * 20 - 10);
  const spread = Float64Array.from({ length: dim }, () => 0.1 + rand() * 5);
  const draw = (): Float32Array => Float32Array.from({ length: dim }, (_, j) => centre[j]! + spread[j]! * (rand() * 2 - 1));
  const sample = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) sample.set(draw(), r * dim);
  return { sample, draw };
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

const dimArb = fc.oneof(fc.constantFrom(...EDGE_DIMS), fc.integer({ min: 1, max: 2048 }));
const codeArb = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 255));
const shiftArb = fc.integer({ min: 0, max: 15 });

t.test('integer kernels: exact sums, SIMD equal to scalar, any dim and alignment', async (t) => {
  fc.assert(
    fc.property(
      dimArb.chain((dim) => fc.tuple(
        fc.array(codeArb, { minLength: dim, maxLength: dim }),
        fc.array(codeArb, { minLength: dim, maxLength: dim }),
        shiftArb, shiftArb,
      )),
      ([a, b, sa, sb]) => checkIntegerKernels(a, b, sa, sb),
    ),
    { seed: 0x71383031, numRuns: 300 },
  );
  t.pass('300 random code pairs, dims 1..2048, shifts 0..15');
});

t.test('encode, decode and the mapping back against float64 distances of the dequantized vectors', async (t) => {
  fc.assert(
    fc.property(
      dimArb, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.constantFrom(0.5, 0.9, 0.99, 1), shiftArb, shiftArb,
      (dim, n, seed, quantile, sa, sb) => {
        const { sample, draw } = skewedSample(n, dim, seed);
        same('quantLearn', learn(sample, n, dim, quantile), 0);
        const p = readParams();
        same('params dim', p.dim, dim);
        // one vector of the sample and one fresh draw (which may fall outside the range)
        const va = sample.slice(0, dim);
        const vb = draw();
        const A = encode(va, CODE_A + sa);
        const B = encode(vb, CODE_B + sb);
        let oo = 0;
        for (let i = 0; i < dim; i++) {
          same(`code a[${i}]`, A.codes[i]!, modelCode(p, va[i]!, i));
          same(`code b[${i}]`, B.codes[i]!, modelCode(p, vb[i]!, i));
          oo += p.offsets[i]! ** 2;
        }
        // decode: f32(o_i + f32(alpha * c_i)), exactly
        core.quantDecode(PARAMS, CODE_A + sa, OUT);
        const decoded = new Float32Array(memory.buffer, OUT, dim);
        for (let i = 0; i < dim; i++) same(`decoded[${i}]`, decoded[i]!, fr(p.offsets[i]! + fr(p.alpha * A.codes[i]!)));
        // the biases are sum o^2 / 2 + alpha * sum o_i c_i
        for (const [name, X] of [['a', A], ['b', B]] as const) {
          let oc = 0;
          let ocAbs = 0;
          for (let i = 0; i < dim; i++) {
            oc += p.offsets[i]! * X.codes[i]!;
            ocAbs += Math.abs(p.offsets[i]! * X.codes[i]!);
          }
          within(`bias ${name}`, X.bias, oo / 2 + p.alpha * oc, 2 * U * (oo / 2 + p.alpha * ocAbs));
        }
        // the kernels, and the distances they map back to
        const raw = { l2: core.kernelCodeL2(CODE_A + sa, CODE_B + sb, dim), dot: core.kernelCodeDot(CODE_A + sa, CODE_B + sb, dim) };
        same('l2 integer', raw.l2, exactL2(A.codes, B.codes));
        same('dot integer', raw.dot, exactDot(A.codes, B.codes));
        let refL2 = 0;
        let refDot = 0;
        let dotAbs = 0;
        for (let i = 0; i < dim; i++) {
          const xa = deq(p, A.codes[i]!, i);
          const xb = deq(p, B.codes[i]!, i);
          refL2 += (xa - xb) ** 2;
          refDot += xa * xb;
          dotAbs += Math.abs(xa * xb);
        }
        const gotL2 = core.quantDistance(METRIC_L2, PARAMS, raw.l2, A.bias, B.bias);
        within(`l2 (dim ${dim})`, gotL2, refL2, 2 * U * refL2 + dim * 2 ** -40 * (oo + refL2));
        const tolDot = 2 * U * (Math.abs(A.bias) + Math.abs(B.bias) + p.alpha2 * raw.dot + Math.abs(1 - refDot)) + dim * 2 ** -40 * (oo + dotAbs);
        for (const metric of [METRIC_IP, METRIC_COSINE]) {
          within(`1 - dot, metric ${metric} (dim ${dim})`, core.quantDistance(metric, PARAMS, raw.dot, A.bias, B.bias), 1 - refDot, tolDot);
        }
        // and with itself: l2 exactly 0
        same('l2 of a code with itself', core.kernelCodeL2(CODE_A + sa, CODE_A + sa, dim), 0);
      },
    ),
    { seed: 0x656e63, numRuns: 150 },
  );
  t.pass('150 random samples and pairs, dims 1..2048, quantiles 0.5..1');
});

t.test("the quantizer: Qdrant's quantile cut per dimension, one scale, centred offsets, clipping", async (t) => {
  const valueArb = fc.oneof(
    fc.float({ min: -1000, max: 1000, noNaN: true }),
    fc.integer({ min: -3, max: 3 }), // ties: SIFT is full of equal values
  ).map((x) => fr(x));
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }).chain((dim) => fc.tuple(
        fc.constant(dim),
        fc.integer({ min: 1, max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.array(valueArb, { minLength: n * dim, maxLength: n * dim }))),
        fc.oneof(fc.constantFrom(0.5, 0.9, 0.99, 0.999, 1), fc.double({ min: 0.5, max: 1, noNaN: true })),
      )),
      ([dim, [n, values], quantile]) => {
        const sample = Float32Array.from(values);
        same('quantLearn', learn(sample, n, dim, quantile), 0);
        const p = readParams();
        const { lo, hi, cut } = modelInterval(sample, n, dim, quantile);
        let width = 0;
        let widest = 0;
        for (let d = 0; d < dim; d++) {
          if (hi[d]! - lo[d]! > width) {
            width = hi[d]! - lo[d]!;
            widest = d;
          }
        }
        // no width at all: centres on code 128, a step of 1/128 of the largest magnitude
        const mids = lo.map((l, d) => fr((l + hi[d]!) * 0.5));
        const maxAbs = Math.max(...mids.map(Math.abs));
        let alpha = width > 0 ? fr(width / 255) : maxAbs > 0 ? fr(maxAbs / 128) : 1;
        if (!(alpha >= 2 ** -126)) alpha = 2 ** -126; // never a step whose inverse overflows
        const centre = width > 0 ? 127.5 : 128;
        same('alpha', p.alpha, alpha);
        same('alpha^2', p.alpha2, alpha * alpha);
        same('quantile', p.quantile, fr(quantile));
        for (let d = 0; d < dim; d++) {
          same(`offset ${d}`, p.offsets[d]!, fr(mids[d]! - centre * alpha));
          if (width === 0) {
            const back = fr(p.offsets[d]! + fr(alpha * modelCode(p, mids[d]!, d)));
            within(`a constant dimension ${d} decodes within half a step`, back, mids[d]!, alpha / 2 + 4 * U * (Math.abs(mids[d]!) + 128 * alpha));
            if (Math.abs(mids[d]!) === maxAbs && maxAbs >= 2 ** -119) same(`the largest constant, dimension ${d}, decodes exactly`, back, mids[d]!);
          }
          // every dimension's quantile interval is inside what the codes represent
          const slack = alpha / 2 + 4 * U * (Math.abs(lo[d]!) + Math.abs(hi[d]!) + 255 * alpha);
          if (!(lo[d]! >= deq(p, 0, d) - slack && hi[d]! <= deq(p, 255, d) + slack)) {
            throw new Mismatch(`dim ${d}: [${lo[d]}, ${hi[d]}] not inside [${deq(p, 0, d)}, ${deq(p, 255, d)}]`);
          }
        }
        // the widest dimension's interval is the code range: its quantiles
        // are codes 0 and 255, and what lies beyond them is clipped there
        if (width > 0) {
          let clipped = 0;
          const v = new Float32Array(dim);
          for (let r = 0; r < n; r++) {
            const x = sample[r * dim + widest]!;
            v[widest] = x;
            const code = encode(v, CODE_A).codes[widest]!;
            same(`code of ${x}`, code, modelCode(p, x, widest));
            if (x < lo[widest]! - alpha) same(`clipped low: ${x}`, code, 0);
            if (x > hi[widest]! + alpha) same(`clipped high: ${x}`, code, 255);
            if (x < lo[widest]! - alpha || x > hi[widest]! + alpha) clipped++;
          }
          if (clipped > 2 * cut) throw new Mismatch(`${clipped} values clipped, more than the ${2 * cut} the quantile cuts`);
          v[widest] = lo[widest]!;
          same('the low quantile is code 0', encode(v, CODE_A).codes[widest]!, 0);
          v[widest] = hi[widest]!;
          same('the high quantile is code 255', encode(v, CODE_A).codes[widest]!, 255);
        }
      },
    ),
    { seed: 0x7175616e, numRuns: 200 },
  );
  t.pass('200 random samples, n 1..300, dims 1..40');
});

t.test('quantile selection equals sorting, on ties and adversarial orders', async (t) => {
  const select = (values: ArrayLike<number>, k: number): number => {
    f32().set(values as ArrayLike<number>, SCRATCH >>> 2);
    return core.quantSelectKth(SCRATCH, values.length, k);
  };
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.integer({ min: -5, max: 5 }), fc.float({ noNaN: true, noDefaultInfinity: true })).map((x) => fr(x)), { minLength: 1, maxLength: 3000 })
        .chain((xs) => fc.tuple(fc.constant(xs), fc.integer({ min: 0, max: xs.length - 1 }))),
      ([xs, k]) => {
        const got = select(xs, k);
        const sorted = Float64Array.from(xs).sort();
        same(`select(${k}) of ${xs.length}`, got, sorted[k]!);
        // the values were reordered, not changed, and split around k
        const after = new Float32Array(memory.buffer, SCRATCH, xs.length);
        const resorted = Float64Array.from(after).sort();
        for (let i = 0; i < xs.length; i++) same(`a permutation, element ${i}`, resorted[i]!, sorted[i]!);
        for (let i = 0; i < xs.length; i++) {
          if (i < k && !(after[i]! <= got)) throw new Mismatch(`element ${i} before k is ${after[i]} > ${got}`);
          if (i > k && !(after[i]! >= got)) throw new Mismatch(`element ${i} after k is ${after[i]} < ${got}`);
        }
      },
    ),
    { seed: 0x73656c, numRuns: 300 },
  );
  const n = 65536;
  const patterns: Record<string, (i: number) => number> = {
    'all equal': () => 7,
    ascending: (i) => i,
    descending: (i) => n - i,
    'organ pipe': (i) => Math.min(i, n - i),
    'two values': (i) => i & 1,
    'sawtooth': (i) => i % 17,
  };
  for (const [name, f] of Object.entries(patterns)) {
    const xs = Float32Array.from({ length: n }, (_, i) => f(i));
    const sorted = Float64Array.from(xs).sort();
    for (const k of [0, 327, n >> 1, n - 328, n - 1]) t.equal(select(xs, k), sorted[k], `${name}, k = ${k}`);
  }
});

t.test('bad input to quantLearn is ERR_INVALID and leaves the params as they were', async (t) => {
  const dim = 8;
  const n = 10;
  const good = Float32Array.from({ length: n * dim }, (_, i) => i % 13);
  t.equal(learn(good, n, dim, 0.99), 0, 'a good sample learns');
  const before = u8().slice(PARAMS, PARAMS + 32 + 4 * dim);
  const nan = good.slice();
  nan[n * dim - 1] = NaN; // the last value: everything before it is fine
  const inf = good.slice();
  inf[3 * dim + 5] = -Infinity;
  const cases: [string, () => number][] = [
    ['n = 0', () => learn(good, 0, dim, 0.99)],
    ['dim = 0', () => learn(good, n, 0, 0.99)],
    ['dim > 65536', () => core.quantLearn(SAMPLE, 1, 65537, 0.99, PARAMS, SCRATCH)],
    ['quantile 0.49', () => learn(good, n, dim, 0.49)],
    ['quantile 1.01', () => learn(good, n, dim, 1.01)],
    ['quantile NaN', () => learn(good, n, dim, NaN)],
    ['a NaN in the last dimension of the last vector', () => learn(nan, n, dim, 0.99)],
    ['an -Infinity', () => learn(inf, n, dim, 0.99)],
  ];
  for (const [name, run] of cases) {
    t.equal(run(), ERR_INVALID, name);
    t.same(u8().slice(PARAMS, PARAMS + 32 + 4 * dim), before, `${name}: params unchanged`);
  }
  // a constant sample still learns a positive scale and encodes exactly
  const flat = new Float32Array(n * dim).fill(3.5);
  t.equal(learn(flat, n, dim, 0.99), 0, 'a constant sample learns');
  const p = readParams();
  t.ok(p.alpha > 0, `alpha ${p.alpha} is positive`);
  const { codes } = encode(new Float32Array(dim).fill(3.5), CODE_A);
  core.quantDecode(PARAMS, CODE_A, OUT);
  t.same(Array.from(new Float32Array(memory.buffer, OUT, dim)), new Array(dim).fill(3.5), `decodes back to 3.5 (codes ${codes[0]})`);
});

t.test('edge dimensions, up to 65536 (where the sums need all 32 bits)', async (t) => {
  for (const dim of [1, 3, 15, 16, 17, 127, 128, 129, 2048, 65536]) {
    const n = dim >= 2048 ? 4 : 16;
    const { sample, draw } = skewedSample(n, dim, dim * 31 + 7);
    t.equal(learn(sample, n, dim, 0.99), 0, `dim ${dim}: learns`);
    const A = encode(draw(), CODE_A);
    const B = encode(draw(), CODE_B + 5);
    t.doesNotThrow(() => checkIntegerKernels(A.codes, B.codes, 3, 5), `dim ${dim}: kernels exact`);
    // the last code counts: change only it and the sums move by the exact amount
    const za = new Uint8Array(dim);
    const zb = new Uint8Array(dim);
    zb[dim - 1] = 200;
    za[dim - 1] = 1;
    const { pa, pb } = stageCodes(za, zb, 0, 0);
    t.equal(core.kernelCodeL2(pa, pb, dim), 199 * 199, `dim ${dim}: l2 sees code ${dim - 1}`);
    t.equal(core.kernelCodeDot(pa, pb, dim), 200, `dim ${dim}: dot sees code ${dim - 1}`);
  }
  // the largest sums there are: 65536 * 255^2 = 4,261,478,400 > 2^31
  const dim = 65536;
  const full = new Uint8Array(dim).fill(255);
  const zero = new Uint8Array(dim);
  const { pa, pb } = stageCodes(full, zero, 1, 2);
  for (const [name, got] of [
    ['kernelCodeL2', core.kernelCodeL2(pa, pb, dim)],
    ['kernelCodeL2Scalar', core.kernelCodeL2Scalar(pa, pb, dim)],
    ['kernelCodeDot (255s with themselves)', core.kernelCodeDot(pa, pa, dim)],
    ['kernelCodeDotScalar (255s with themselves)', core.kernelCodeDotScalar(pa, pa, dim)],
  ] as const) {
    t.equal(got, 4_261_478_400, `${name} at dim 65536`);
  }
});

t.test('SIFT10K: reconstruction error and the ranking on codes', async (t) => {
  const { base, query, truth } = sift();
  const dim = base.dim;
  // learn on every other base vector (5,000), encode all 10,000
  const n = base.n >> 1;
  const sample = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) sample.set(base.data.subarray(2 * r * dim, (2 * r + 1) * dim), r * dim);
  t.equal(learn(sample, n, dim, 0.99), 0, 'learns');
  const p = readParams();
  let sqErr = 0;
  let worstUnclipped = 0;
  const mean = new Float64Array(dim);
  for (let i = 0; i < base.n * dim; i++) mean[i % dim]! += base.data[i]! / base.n;
  let variance = 0;
  for (let r = 0; r < base.n; r++) {
    const v = base.data.subarray(r * dim, (r + 1) * dim);
    f32().set(v, VEC >>> 2);
    core.quantEncode(PARAMS, VEC, CODES + r * dim);
    core.quantDecode(PARAMS, CODES + r * dim, OUT);
    const back = new Float32Array(memory.buffer, OUT, dim);
    for (let i = 0; i < dim; i++) {
      const e = back[i]! - v[i]!;
      sqErr += e * e;
      variance += (v[i]! - mean[i]!) ** 2;
      if (v[i]! >= deq(p, 0, i) && v[i]! <= deq(p, 255, i)) worstUnclipped = Math.max(worstUnclipped, Math.abs(e));
    }
  }
  const relErr = sqErr / variance;
  // measured 5.8e-5 (docs/quantization.md); one scale per dimension and
  // per shard measured 2.8e-4; 1e-4 keeps the margin and tells them apart
  t.ok(relErr <= 1e-4, `squared reconstruction error ${relErr.toExponential(3)} of the variance <= 1e-4`);
  t.ok(worstUnclipped <= p.alpha * (0.5 + 1e-4), `an unclipped value is within half a step: ${worstUnclipped} <= ${p.alpha / 2}`);
  // exhaustive search on codes: symmetric l2 through the SIMD kernel
  const nq = 100;
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    f32().set(query.data.subarray(q * dim, (q + 1) * dim), VEC >>> 2);
    core.quantEncode(PARAMS, VEC, CODE_A);
    const d = new Float64Array(base.n);
    for (let r = 0; r < base.n; r++) d[r] = core.quantDistance(METRIC_L2, PARAMS, core.kernelCodeL2(CODE_A, CODES + r * dim, dim), 0, 0);
    const top = Array.from(d.keys()).sort((x, y) => d[x]! - d[y]! || x - y).slice(0, 10);
    const want = new Set(Array.from(truth.data.subarray(q * truth.k, q * truth.k + 10)));
    hits += top.filter((i) => want.has(i)).length;
  }
  const recall = hits / (nq * 10);
  // measured 0.985 (a float64 model of the same codes gave 0.985 too)
  t.ok(recall >= 0.97, `recall@10 of an exhaustive search on codes ${recall} >= 0.97`);
});

t.test('768-d normalised clustered vectors: the dot mapping ranks like the f32 vectors', async (t) => {
  const dim = 768;
  const nBase = 2000;
  const base = clustered(nBase, dim, 40, 0x768, 0.3);
  const queries = clustered(20, dim, 40, 0x769, 0.3);
  for (const set of [base, queries]) {
    for (let r = 0; r < set.length / dim; r++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += set[r * dim + j]! ** 2;
      const inv = 1 / Math.sqrt(s);
      for (let j = 0; j < dim; j++) set[r * dim + j]! *= inv;
    }
  }
  const n = 1000;
  t.equal(learn(base.subarray(0, n * dim), n, dim, 0.99), 0, 'learns');
  const bias = new Float32Array(nBase);
  for (let r = 0; r < nBase; r++) {
    f32().set(base.subarray(r * dim, (r + 1) * dim), VEC >>> 2);
    bias[r] = core.quantEncode(PARAMS, VEC, CODES + r * dim);
  }
  let hits = 0;
  let worst = 0;
  for (let q = 0; q < queries.length / dim; q++) {
    const qv = queries.subarray(q * dim, (q + 1) * dim);
    f32().set(qv, VEC >>> 2);
    const qb = core.quantEncode(PARAMS, VEC, CODE_A);
    const got = new Float64Array(nBase);
    const exact = new Float64Array(nBase);
    for (let r = 0; r < nBase; r++) {
      got[r] = core.quantDistance(METRIC_COSINE, PARAMS, core.kernelCodeDot(CODE_A, CODES + r * dim, dim), qb, bias[r]!);
      exact[r] = 1 - exactDot(qv, base.subarray(r * dim, (r + 1) * dim));
      worst = Math.max(worst, Math.abs(got[r]! - exact[r]!));
    }
    const top = (d: Float64Array) => Array.from(d.keys()).sort((x, y) => d[x]! - d[y]! || x - y).slice(0, 10);
    const want = new Set(top(exact));
    hits += top(got).filter((i) => want.has(i)).length;
  }
  const recall = hits / (queries.length / dim * 10);
  t.ok(worst <= 0.02, `|code distance - f32 distance| <= 0.02 (worst ${worst.toFixed(5)})`);
  t.ok(recall >= 0.9, `recall@10 on codes ${recall} >= 0.9`);
});
