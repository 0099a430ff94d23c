import t from 'tap';
import { Index, QuiverError } from '../host/index.js';
import { HEADER_PTR, LAYOUT } from '../host/core/abi.js';

const DIM = 4;

function seeded(): Index {
  const index = new Index({ dim: DIM, M: 4, build: 'debug', seed: 3 });
  index.add([1, 2, 3, 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'], [[0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]]);
  return index;
}

/** Everything observable about an index, to prove a failed call changed nothing. */
function snapshot(index: Index): unknown {
  const { committedBytes: _c, ...stats } = index.stats();
  return { stats, search: index.search([0.1, 0.2, 0.3, 0.4], 10), image: Buffer.from(index.toImage()).toString('base64').length };
}

function rejects(t: Test, index: Index, fn: () => unknown, code: string, pattern: RegExp, name: string): void {
  const before = snapshot(index);
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof QuiverError, `${name}: throws a QuiverError`);
  t.equal((caught as QuiverError).code, code, `${name}: ${code}`);
  t.match((caught as Error).message, pattern, `${name}: message`);
  t.same(snapshot(index), before, `${name}: index unchanged`);
}

type Test = Pick<typeof t, "ok" | "equal" | "match" | "same">;

t.test('bad input gets a coded error and changes nothing', async (t) => {
  const index = seeded();
  const D = 'QUIVER_ERR_DIMENSION';
  const I = 'QUIVER_ERR_INVALID_ARGUMENT';
  rejects(t, index, () => index.add([9], [[1, 2, 3]]), D, /dimension 3, expected 4/, 'short vector');
  rejects(t, index, () => index.add([9, 10], new Float32Array(7)), D, /7 values/, 'flat batch of the wrong length');
  rejects(t, index, () => index.add([9, 10], [[1, 2, 3, 4]]), D, /1 entries for 2 ids/, 'fewer vectors than ids');
  rejects(t, index, () => index.add([9, 10], [[1, 2, 3, 4], [1, NaN, 3, 4]]), I, /NaN/, 'NaN in the second vector');
  rejects(t, index, () => index.add([9], [[1, 2, Infinity, 4]]), I, /Infinity/, 'Infinity');
  rejects(t, index, () => index.add([9], [[1, 2, 1e300, 4]]), I, /Infinity/, 'a number out of float32 range');
  rejects(t, index, () => index.add([9], [[1, 2, '3' as unknown as number, 4]]), I, /must be a number/, 'a string coordinate');
  rejects(t, index, () => index.add([9, 10, 9], [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]), I, /repeats an id/, 'duplicate ids in one batch');
  rejects(t, index, () => index.add([1, 1n], [[1, 1, 1, 1], [2, 2, 2, 2]]), I, /repeats an id/, '1 and 1n are the same id');
  rejects(t, index, () => index.add([-1], [[1, 1, 1, 1]]), I, /non-negative/, 'negative id');
  rejects(t, index, () => index.add([1.5], [[1, 1, 1, 1]]), I, /non-negative safe integer/, 'fractional id');
  rejects(t, index, () => index.add([2 ** 60], [[1, 1, 1, 1]]), I, /safe integer/, 'unsafe integer id');
  rejects(t, index, () => index.add([2n ** 64n], [[1, 1, 1, 1]]), I, /unsigned 64-bit/, 'bigint id too large');
  rejects(t, index, () => index.add(['not-a-uuid'], [[1, 1, 1, 1]]), I, /UUID/, 'string id that is not a UUID');
  rejects(t, index, () => index.add([{} as unknown as number], [[1, 1, 1, 1]]), I, /number, bigint or UUID/, 'object id');
  rejects(t, index, () => index.add(null as unknown as number[], [[1, 1, 1, 1]]), I, /ids must be/, 'ids not a list');
  rejects(t, index, () => index.search([1, 2, 3], 3), D, /dimension 3/, 'query of the wrong dimension');
  rejects(t, index, () => index.search([1, 2, NaN, 3], 3), I, /NaN/, 'NaN query');
  rejects(t, index, () => index.search([1, 2, 3, 4], 0), I, /k must be/, 'k = 0');
  rejects(t, index, () => index.search([1, 2, 3, 4], -2), I, /k must be/, 'negative k');
  rejects(t, index, () => index.search([1, 2, 3, 4], 2.5), I, /k must be/, 'fractional k');
  rejects(t, index, () => index.search([1, 2, 3, 4], 2, { ef: 0 }), I, /ef must be/, 'ef = 0');
  rejects(t, index, () => index.searchBatch(new Float32Array(6), 2), D, /multiple of dim/, 'ragged batch');
  rejects(t, index, () => index.remove([-5]), I, /non-negative/, 'remove with a bad id');
  t.equal(index.remove([12345, 'a81d4fae-7dec-11d0-a765-00a0c91e6bf6']), 0, 'removing unknown ids removes nothing');
  index.dispose();
});

t.test('options are validated with TypeError / RangeError', async (t) => {
  t.throws(() => new Index(undefined as unknown as { dim: number }), TypeError);
  t.throws(() => new Index({ dim: 0 }), { message: /options.dim must be an integer from 1/ });
  t.throws(() => new Index({ dim: 4.5 }), RangeError);
  t.throws(() => new Index({ dim: 4, M: 1 }), { message: /options.M must be an integer from 2 to 127/ });
  t.throws(() => new Index({ dim: 4, M: 128 }), RangeError);
  t.throws(() => new Index({ dim: 4, metric: 'hamming' as 'l2' }), { message: /options.metric must be one of l2, ip, cosine/ });
  t.throws(() => new Index({ dim: 4, efConstruction: 0 }), RangeError);
  t.throws(() => new Index({ dim: 4, seed: 1.5 }), RangeError);
  t.throws(() => new Index({ dim: 4, build: 'fast' as 'release' }), RangeError);
});

t.test('cosine rejects a zero vector; a zero query too', async (t) => {
  const index = new Index({ dim: DIM, metric: 'cosine', build: 'debug' });
  index.add([1], [[1, 2, 3, 4]]);
  rejects(t, index, () => index.add([2], [[0, 0, 0, 0]]), 'QUIVER_ERR_INVALID_ARGUMENT', /zero under the cosine/, 'zero vector');
  t.throws(() => index.search([0, 0, 0, 0], 1), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  index.dispose();
});

t.test('corrupt images are refused with QUIVER_ERR_CORRUPT_IMAGE', async (t) => {
  const index = seeded();
  const image = index.toImage();
  const corrupt = { code: 'QUIVER_ERR_CORRUPT_IMAGE' };
  t.throws(() => Index.fromImage(image.subarray(0, 100)), { ...corrupt, message: /too short/ });
  t.throws(() => Index.fromImage(image.subarray(0, image.byteLength - 8)), { ...corrupt, message: /length/ });
  t.throws(() => Index.fromImage('x' as unknown as Uint8Array), corrupt);
  const badMagic = image.slice();
  badMagic[HEADER_PTR + LAYOUT.H_MAGIC] ^= 0xff;
  t.throws(() => Index.fromImage(badMagic), { ...corrupt, message: /magic/ });
  const badVersion = image.slice();
  badVersion[HEADER_PTR + LAYOUT.H_VERSION] = 9;
  t.throws(() => Index.fromImage(badVersion), { ...corrupt, message: /layout version 9/ });
  // one flipped bit anywhere in the body: the checksum catches it
  for (const at of [HEADER_PTR + 40, 70_000, image.byteLength - 3]) {
    const flipped = image.slice();
    flipped[at] ^= 0x10;
    t.throws(() => Index.fromImage(flipped), { ...corrupt, message: /checksum|header/ }, `bit flip at ${at}`);
  }
  t.equal(Index.fromImage(image).size, 4, 'the untouched image still loads');
  index.dispose();
});

t.test('a trap in the core is a coded error, never a crash, and the index refuses further calls', async (t) => {
  const index = seeded();
  const image = index.toImage();
  // Point the node directory (header field H_NODE_DIR) far outside memory, then
  // re-seal: a valid image whose contents make the core read out of bounds.
  const loaded = Index.fromImage(image);
  const hacked = loaded.toImage();
  new DataView(hacked.buffer).setUint32(HEADER_PTR + LAYOUT.H_NODE_DIR, 0xfff00000, true);
  const reloaded = Index.fromImage(resealed(hacked));
  t.throws(() => reloaded.search([1, 0, 0, 0], 1), { code: 'QUIVER_ERR_CORE_TRAP' });
  t.throws(() => reloaded.add([5], [[1, 1, 1, 1]]), { code: 'QUIVER_ERR_CORE_TRAP', message: /refuses further calls/ });
  t.equal(index.search([1, 0, 0, 0], 1).ids.length, 1, 'other indexes are unaffected');
  loaded.dispose();
  reloaded.dispose();
  index.dispose();
  t.throws(() => index.search([1, 0, 0, 0], 1), { code: 'QUIVER_ERR_CLOSED' });
});

/** Recomputes the image checksum the way assembly/index.ts does. */
function resealed(image: Uint8Array): Uint8Array {
  const h = HEADER_PTR;
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const mask = (1n << 64n) - 1n;
  let acc = 0xcbf29ce484222325n;
  for (let p = h; p + 8 <= image.byteLength; p += 8) {
    let w = view.getBigUint64(p, true);
    if (p === h + LAYOUT.H_CHECKSUM - 4) w &= 0xffffffffn; // the checksum is the high half
    acc = ((acc ^ w) * 0x100000001b3n) & mask;
    acc ^= acc >> 29n;
  }
  view.setUint32(h + LAYOUT.H_CHECKSUM, Number((acc ^ (acc >> 32n)) & 0xffffffffn), true);
  return image;
}
