// Distance kernels (assembly/distance.ts): the v128 kernels and their scalar
// twins against a float64 reference computed from the same float32 inputs,
// plus cosine normalisation through the public Index API.
//
// TOLERANCE. With u = 2^-24 (float32 unit roundoff, round to nearest):
//  - each computed term carries a relative error of at most (1+u)^3 - 1 for
//    l2 (the subtraction, then d*d: (1+e1)^2 (1+e2)) and u for dot;
//  - the sum passes each term through at most h additions, where h is the
//    depth of the summation tree: scalar h <= dim - 1; SIMD h <= dim/16
//    (16-wide loop, one lane) + 3 (4-wide loop) + 2 (combining the four
//    accumulators) + 3 (horizontal sum) + 3 (scalar tail) <= dim + 11;
//  - the standard bound for floating point summation then gives
//      |got - exact| <= ((1+u)^(h+3) - 1) * sum_i |t_i|
//                    <= 1.01 * (dim + 14) * u * sum_i |t_i|
//    (first order, the 1.01 covers the higher order terms for dim <= 1024);
//  - underflow: a multiply whose result is subnormal adds at most 2^-150
//    absolute error (subnormal additions are exact), at most dim of them.
// We assert |got - ref| <= (dim + 16) * 2^-23 * sum_i |t_i| + (dim + 1) * 2^-149,
// about twice the proven bound. The float64 reference itself is off by about
// dim * 2^-53 relative, negligible next to it. SIMD vs scalar: both are within
// the bound of the exact value, so they agree within twice the bound.
// Dropping or repeating one term of a random vector is an error near 1/dim
// of sum |t_i|, far above (dim + 16) * 1.2e-7 for every dim up to 1024;
// the exact small-integer property catches it whatever the values.

import t from 'tap';
import fc from 'fast-check';
import { instantiateDebug } from '../host/core/module.js';
import type { DebugCoreExports } from '../host/core/abi.js';
import { Index, QuiverError } from '../host/index.js';
import { rng } from './helpers/data.js';

const U23 = 2 ** -23;
const SUBNORMAL_ULP = 2 ** -149;
const MAX_DIM = 1024;
const EDGE_DIMS = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1023, 1024];

// ---------------------------------------------------------------------------
// a core and two vectors in its io buffer
// ---------------------------------------------------------------------------

const memory = new WebAssembly.Memory({ initial: 1 });
const core: DebugCoreExports = instantiateDebug(memory);
const status = core.init(16, 0, 4, 16, 1n, 0, 0, 0);
if (status !== 0) throw new Error(`init returned ${status}`);
const IO = core.ioPtr();
const IO_BYTES = 65536;
// a at IO + 64 + 4*shiftA, b at IO + 8192 + 4*shiftB: the shifts move the
// vectors off 16-byte alignment (v128.load must not care)
const A_AT = 64;
const B_AT = 8192;
const GUARD_END = B_AT + 4 * (MAX_DIM + 4) + 64;

/** Writes a and b, with NaN everywhere around them: a kernel that reads past dim returns NaN. */
function stage(a: Float32Array, b: Float32Array, shiftA: number, shiftB: number): { pa: number; pb: number } {
  const f32 = new Float32Array(memory.buffer, IO, IO_BYTES >>> 2);
  f32.fill(NaN, 0, GUARD_END >>> 2);
  const pa = IO + A_AT + 4 * shiftA;
  const pb = IO + B_AT + 4 * shiftB;
  f32.set(a, (pa - IO) >>> 2);
  f32.set(b, (pb - IO) >>> 2);
  // the guard is in place: the first float after each vector is NaN
  if (!Number.isNaN(f32[((pa - IO) >>> 2) + a.length]!) || !Number.isNaN(f32[((pb - IO) >>> 2) + b.length]!)) {
    throw new Error('guard not in place');
  }
  return { pa, pb };
}

interface Ref {
  value: number;
  /** sum of |term| (float64), what the error bound scales with */
  abs: number;
}

function refL2(a: Float32Array, b: Float32Array): Ref {
  let value = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    value += d * d;
  }
  return { value, abs: value };
}

function refDot(a: Float32Array, b: Float32Array): Ref {
  let value = 0;
  let abs = 0;
  for (let i = 0; i < a.length; i++) {
    const p = a[i]! * b[i]!;
    value += p;
    abs += Math.abs(p);
  }
  return { value, abs };
}

function bound(dim: number, ref: Ref): number {
  return (dim + 16) * U23 * ref.abs + (dim + 1) * SUBNORMAL_ULP;
}

class Mismatch extends Error {}
function within(name: string, got: number, want: number, tol: number): void {
  if (!(Math.abs(got - want) <= tol)) {
    throw new Mismatch(`${name}: got ${got}, want ${want} (|diff| ${Math.abs(got - want)} > tolerance ${tol})`);
  }
}

/** Every kernel against the reference, and SIMD against scalar. */
function checkKernels(a: Float32Array, b: Float32Array, shiftA: number, shiftB: number): void {
  const dim = a.length;
  const { pa, pb } = stage(a, b, shiftA, shiftB);
  const l2 = refL2(a, b);
  const dot = refDot(a, b);
  const tl2 = bound(dim, l2);
  const tdot = bound(dim, dot);
  const got = {
    l2: core.kernelL2(pa, pb, dim),
    l2Scalar: core.kernelL2Scalar(pa, pb, dim),
    dot: core.kernelDot(pa, pb, dim),
    dotScalar: core.kernelDotScalar(pa, pb, dim),
  };
  const at = `dim ${dim}, shifts ${shiftA}/${shiftB}`;
  within(`kernelL2 (${at})`, got.l2, l2.value, tl2);
  within(`kernelL2Scalar (${at})`, got.l2Scalar, l2.value, tl2);
  within(`kernelDot (${at})`, got.dot, dot.value, tdot);
  within(`kernelDotScalar (${at})`, got.dotScalar, dot.value, tdot);
  within(`kernelL2 vs kernelL2Scalar (${at})`, got.l2, got.l2Scalar, 2 * tl2);
  within(`kernelDot vs kernelDotScalar (${at})`, got.dot, got.dotScalar, 2 * tdot);
  // squared distances are sums of squares: never negative
  if (!(got.l2 >= 0 && got.l2Scalar >= 0)) throw new Mismatch(`negative l2 (${at}): ${got.l2}, ${got.l2Scalar}`);
}

// ---------------------------------------------------------------------------
// generators
// ---------------------------------------------------------------------------

const dimArb = fc.oneof(fc.constantFrom(...EDGE_DIMS), fc.integer({ min: 1, max: MAX_DIM }));
const f32Arb = fc.float({ min: -100, max: 100, noNaN: true }).map((x) => Math.fround(x));
const shiftArb = fc.integer({ min: 0, max: 3 });

function vecArb(dim: number, el: fc.Arbitrary<number>): fc.Arbitrary<Float32Array> {
  return fc.array(el, { minLength: dim, maxLength: dim }).map((xs) => Float32Array.from(xs));
}

const pairArb = (el: fc.Arbitrary<number>) =>
  dimArb.chain((dim) => fc.tuple(vecArb(dim, el), vecArb(dim, el), shiftArb, shiftArb));

/** Deterministic float32 values in [-100, 100] for the fixed edge cases. */
function seededVector(dim: number, seed: number): Float32Array {
  const rand = rng(seed);
  return Float32Array.from({ length: dim }, () => rand() * 200 - 100);
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

t.test('SIMD and scalar kernels agree with the float64 reference', async (t) => {
  fc.assert(
    fc.property(pairArb(f32Arb), ([a, b, sa, sb]) => {
      checkKernels(a, b, sa, sb);
    }),
    { seed: 0x6b65726e, numRuns: 300 },
  );
  t.pass('300 random pairs, dims 1..1024');
});

t.test('kernels are exact where float32 arithmetic is exact', async (t) => {
  // integers in [-50, 50]: every product (<= 2500), squared difference
  // (<= 10^4) and partial sum (<= 1024 * 10^4 < 2^24) is an integer float32
  // holds exactly, so any order of summation gives the exact answer and a
  // dropped, repeated or misread element shows as a wrong integer
  const intArb = fc.integer({ min: -50, max: 50 });
  fc.assert(
    fc.property(pairArb(intArb), ([a, b, sa, sb]) => {
      const dim = a.length;
      const { pa, pb } = stage(a, b, sa, sb);
      const l2 = refL2(a, b).value;
      const dot = refDot(a, b).value;
      const at = `dim ${dim}, shifts ${sa}/${sb}`;
      within(`kernelL2 (${at})`, core.kernelL2(pa, pb, dim), l2, 0);
      within(`kernelL2Scalar (${at})`, core.kernelL2Scalar(pa, pb, dim), l2, 0);
      within(`kernelDot (${at})`, core.kernelDot(pa, pb, dim), dot, 0);
      within(`kernelDotScalar (${at})`, core.kernelDotScalar(pa, pb, dim), dot, 0);
    }),
    { seed: 0x65786163, numRuns: 200 },
  );
  t.pass('200 random integer pairs');
});

t.test('identical vectors are at l2 distance exactly 0', async (t) => {
  fc.assert(
    fc.property(
      dimArb.chain((dim) => fc.tuple(vecArb(dim, f32Arb), shiftArb)),
      ([a, s]) => {
        const { pa, pb } = stage(a, a, s, 3 - s);
        const dim = a.length;
        for (const [name, got] of [
          ['kernelL2', core.kernelL2(pa, pb, dim)],
          ['kernelL2Scalar', core.kernelL2Scalar(pa, pb, dim)],
          ['kernelL2 (same pointer)', core.kernelL2(pa, pa, dim)],
          ['kernelL2Scalar (same pointer)', core.kernelL2Scalar(pa, pa, dim)],
        ] as const) {
          if (got !== 0) throw new Mismatch(`${name} of a vector with itself, dim ${dim}: ${got}`);
        }
      },
    ),
    { seed: 0x7a65726f, numRuns: 100 },
  );
  t.pass('100 random vectors');
});

t.test('edge dimensions', async (t) => {
  for (const dim of [1, 3, 4, 15, 16, 17, 128, 1023]) {
    const a = seededVector(dim, dim * 7 + 1);
    const b = seededVector(dim, dim * 13 + 5);
    for (let shift = 0; shift < 4; shift++) {
      t.doesNotThrow(() => checkKernels(a, b, shift, (shift + 1) & 3), `dim ${dim}, shift ${shift}`);
    }
    // the last element counts: change only it and every kernel moves by the exact amount
    const ai = Float32Array.from({ length: dim }, () => 1);
    const bi = Float32Array.from({ length: dim }, () => 1);
    bi[dim - 1] = 4;
    const { pa, pb } = stage(ai, bi, 0, 0);
    t.equal(core.kernelL2(pa, pb, dim), 9, `kernelL2 sees element ${dim - 1}`);
    t.equal(core.kernelL2Scalar(pa, pb, dim), 9, `kernelL2Scalar sees element ${dim - 1}`);
    t.equal(core.kernelDot(pa, pb, dim), dim + 3, `kernelDot sees element ${dim - 1}`);
    t.equal(core.kernelDotScalar(pa, pb, dim), dim + 3, `kernelDotScalar sees element ${dim - 1}`);
    const { pa: qa } = stage(a, b, 0, 0);
    t.equal(core.kernelL2(qa, qa, dim), 0, `dim ${dim}: l2 to itself is 0`);
  }
});

// ---------------------------------------------------------------------------
// cosine normalisation, through the public API
// ---------------------------------------------------------------------------

function norm64(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

function cosineIndex(dim: number): Index {
  return new Index({ dim, metric: 'cosine', build: 'debug', M: 4, efConstruction: 8 });
}

t.test('cosine: a stored vector is the input scaled to unit length', async (t) => {
  // Bound for dim <= 64: the norm^2 is a float32 sum of positive terms through
  // a tree at most 15 deep, relative error <= 16u ~ 9.5e-7, so ~4.8e-7 on the
  // norm; the sqrt, 1/n and the per-component multiply add u each: under
  // 6.6e-7 in total, on the length and on each component of the direction.
  // Norms below ~1e-19 are excluded here: their squares underflow float32
  // (see the next test).
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 64 }).chain((dim) => vecArb(dim, f32Arb)),
      (v) => {
        const n = norm64(v);
        fc.pre(n * n >= 1e-30);
        const index = cosineIndex(v.length);
        try {
          index.add([7], [v]);
          const got = index.get(7);
          if (got === undefined) throw new Mismatch('get returned undefined');
          const len = norm64(got);
          within(`length of the stored vector (dim ${v.length})`, len, 1, 1e-6);
          for (let i = 0; i < v.length; i++) within(`component ${i}`, got[i]!, v[i]! / n, 1e-6);
        } finally {
          index.dispose();
        }
      },
    ),
    { seed: 0x636f73, numRuns: 100 },
  );
  t.pass('100 random vectors, dims 1..64');
});

t.test('cosine: a vector with a tiny (normal float32) norm is stored at unit length', async (t) => {
  // KNOWN BUG (distance.ts normalize): the squared norm is summed in float32,
  // so for norms below ~1.1e-19 (norm^2 below 2^-126) it is subnormal and
  // imprecise, yet normalize() accepts the vector and stores it off unit
  // length. Found by the property above without its norm precondition.
  for (const v of [[3e-23, 0], [1e-20], [2e-21, -5e-21, 1e-21]]) {
    const index = cosineIndex(v.length);
    index.add([1], [v]);
    const got = index.get(1)!;
    const len = norm64(got);
    t.ok(Math.abs(len - 1) <= 1e-6, `[${v.join(', ')}] is finite and non-zero: stored length ${len}, want 1 within 1e-6`);
    index.dispose();
  }
});

t.test('cosine: a zero vector is rejected', async (t) => {
  for (const dim of [1, 16, 100]) {
    const index = cosineIndex(dim);
    let caught: unknown;
    try {
      index.add([1], [new Float32Array(dim)]);
    } catch (err) {
      caught = err;
    }
    t.type(caught, QuiverError, `dim ${dim}: add threw a QuiverError`);
    t.equal((caught as QuiverError | undefined)?.code, 'QUIVER_ERR_INVALID_ARGUMENT', `dim ${dim}: code`);
    t.equal(index.size, 0, 'nothing was added');
    t.equal(index.get(1), undefined, 'the id is absent');
    const v = Float32Array.from({ length: dim }, (_, i) => i + 1);
    index.add([1], [v]);
    t.ok(Math.abs(norm64(index.get(1)!) - 1) <= 1e-6, 'the index still works after the rejection');
    index.dispose();
  }
});
