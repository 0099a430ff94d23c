// The payload binary encoding (QPB, host/payload.ts): decode(encode(v)) is
// exactly JSON.parse(JSON.stringify(v)), key order included, and the bytes
// are the layout the core reads.
import tap from 'tap';
const t = tap;
import fc from 'fast-check';
import { decodePayload, encodePayload, payloadStringBytes } from '../host/payload.js';

const roundTrip = (v: unknown): unknown => decodePayload(encodePayload(v, 'payload'));

function same(t: Pick<typeof tap, 'strictSame' | 'equal'>, v: unknown, msg = 'round trip'): void {
  const expected = JSON.parse(JSON.stringify(v));
  const got = roundTrip(v);
  t.strictSame(got, expected, msg);
  // strictSame ignores key order; the text does not
  t.equal(JSON.stringify(got), JSON.stringify(expected), `${msg} (text)`);
}

const hex = (b: Uint8Array | undefined): string => Buffer.from(b!).toString('hex');

t.test('arbitrary JSON values round-trip exactly', async (t) => {
  const prop = (v: unknown): boolean => {
    if (v === null) return encodePayload(v, 'p') === undefined; // null is no payload
    const got = roundTrip(v);
    const expected = JSON.parse(JSON.stringify(v));
    return JSON.stringify(got) === JSON.stringify(expected) && sameValue(got, expected);
  };
  fc.assert(fc.property(fc.jsonValue(), prop), { numRuns: 2000 });
  // every UTF-16 unit, lone surrogates included
  fc.assert(fc.property(fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 }), prop), { numRuns: 1000 });
  fc.assert(fc.property(fc.jsonValue({ stringUnit: 'grapheme', maxDepth: 3 }), prop), { numRuns: 500 });
  // JS values JSON.stringify rewrites (undefined members, NaN, toJSON, Dates)
  fc.assert(fc.property(fc.anything({ withDate: true, withBoxedValues: true, withNullPrototype: true, withSparseArray: true, maxDepth: 3 }), (v) => {
    if (v === undefined || v === null) return encodePayload(v, 'p') === undefined;
    let text: string | undefined;
    try {
      text = JSON.stringify(v);
    } catch {
      return true;
    }
    if (text === undefined) return true;
    return JSON.stringify(roundTrip(v)) === text;
  }), { numRuns: 1000 });
});

/** Deep equality that tells 0 from -0 and checks key order. */
function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

t.test('edge cases', async (t) => {
  same(t, { z: -0, a: [-0] }, '-0 becomes 0');
  t.ok(Object.is((roundTrip({ z: -0 }) as { z: number }).z, 0), '-0 comes back +0, as from JSON');
  for (const n of [2 ** 53, 2 ** 53 - 1, -(2 ** 53) + 1, -(2 ** 53), 2 ** 63, 1e300, -1e-300, 5e-324, 0.1, -1, 4294967296, -4294967297, Number.MAX_VALUE]) {
    same(t, { n }, `number ${n}`);
  }
  same(t, { 'ключ': 'значение', '日本': '語', '🎉': '😀 emoji', '': 'empty key' }, 'unicode keys and strings');
  same(t, { s: 'a\ud800b', k: '\udfff', pair: '\ud83d\ude00' }, 'lone surrogates survive');
  same(t, { '\ud800': 1 }, 'a lone surrogate key');
  same(t, { s: '\ud800😀é\udc00x', t: 'é'.repeat(40) + '\udbff' }, 'lone surrogates next to pairs and multi-byte characters');
  same(t, [[[[[]]]], [[1, [2, [3, []]]]], [{}]], 'nested arrays');
  same(t, {}, 'empty object');
  same(t, [], 'empty array');
  same(t, { s: 'x'.repeat(100_000), u: 'é'.repeat(70_000) }, 'long strings');
  same(t, 'just a string');
  same(t, 42);
  same(t, false);
  same(t, { b: 1, a: 2, 10: 3, 2: 4 }, 'key order as JSON.stringify has it');
  const proto = JSON.parse('{"__proto__": {"x": 1}, "y": 2}');
  const got = roundTrip(proto) as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(got), Object.prototype, '__proto__ stays an own key');
  t.strictSame(Object.keys(got), ['__proto__', 'y']);
  same(t, proto);
  same(t, { d: new Date(0), u: undefined, f: () => 1, n: NaN, i: -Infinity, a: [undefined, NaN] }, 'JSON.stringify rewrites');
  same(t, { toJSON: () => ({ replaced: [1, 2] }) }, 'toJSON');
  same(t, [new Number(3), new String('s'), new Boolean(false)], 'boxed values');
  const deep: unknown[] = [];
  let cur = deep;
  for (let i = 0; i < 1000; i++) {
    const next: unknown[] = [];
    cur.push(next);
    cur = next;
  }
  same(t, deep, 'nested 1000 deep (past the fast path)');
});

t.test('errors and no payload', async (t) => {
  t.equal(encodePayload(undefined, 'p'), undefined);
  t.equal(encodePayload(null, 'p'), undefined);
  t.equal(decodePayload(undefined), undefined);
  t.throws(() => encodePayload({ big: 1n }, 'payloads[3]'), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /payloads\[3\] is not JSON-serialisable/ });
  const cyc: Record<string, unknown> = { a: 1 };
  cyc.self = cyc;
  t.throws(() => encodePayload(cyc, 'p'), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  const cycArr: unknown[] = [];
  cycArr.push({ inner: cycArr });
  t.throws(() => encodePayload(cycArr, 'p'), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  t.throws(() => encodePayload(() => 1, 'p'), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: 'p is not JSON-serialisable' });
  t.throws(() => encodePayload(Symbol('s'), 'p'), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  t.throws(() => encodePayload({ get x() { throw new Error('boom'); } }, 'p'), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /boom/ });
  // after a failure the next encode is clean
  t.equal(hex(encodePayload(true, 'p')), '02');
  t.throws(() => decodePayload(Uint8Array.of(9)), { code: 'QUIVER_ERR_CORRUPT' });
  t.throws(() => decodePayload(Uint8Array.of(3, 1, 2)), { code: 'QUIVER_ERR_CORRUPT' });
  t.throws(() => decodePayload(Uint8Array.of(0, 0)), { code: 'QUIVER_ERR_CORRUPT' });
  t.throws(() => decodePayload(Uint8Array.of(6, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0)), { code: 'QUIVER_ERR_CORRUPT' }, 'bodyBytes disagrees');
  t.throws(() => decodePayload(Uint8Array.of(5, 1, 0, 0, 0, 0xff)), { code: 'QUIVER_ERR_CORRUPT', message: /invalid UTF-8 byte/ });
  t.throws(() => decodePayload(Uint8Array.of(5, 2, 0, 0, 0, 0xc3, 0x41)), { code: 'QUIVER_ERR_CORRUPT', message: /continuation/ });
  t.throws(() => decodePayload(Uint8Array.of(5, 1, 0, 0, 0, 0xe2)), { code: 'QUIVER_ERR_CORRUPT', message: /truncated/ });
  t.throws(() => decodePayload(Uint8Array.of(5, 9, 0, 0, 0, 0x41)), { code: 'QUIVER_ERR_CORRUPT', message: /runs past the end/ });
  let deep: unknown = 1;
  for (let i = 0; i < 200_000; i++) deep = [deep];
  t.throws(() => encodePayload(deep, 'p'), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /^p is not JSON-serialisable/ }, 'nesting past the stack is a coded error');
});

t.test('a getter that encodes re-entrantly does not corrupt the outer value', async (t) => {
  const inner = { s: 'y'.repeat(2000) };
  const outer = { a: 'x'.repeat(3000), get b() { return encodePayload(inner, 'inner')!.length; }, c: 'z' };
  same(t, outer);
});

t.test('exact byte layouts', async (t) => {
  t.equal(hex(encodePayload(false, 'p')), '01');
  t.equal(hex(encodePayload(true, 'p')), '02');
  t.equal(hex(encodePayload(1, 'p')), '03' + '0100000000000000');
  t.equal(hex(encodePayload(-1, 'p')), '03' + 'ffffffffffffffff');
  t.equal(hex(encodePayload(-0, 'p')), '03' + '0000000000000000');
  t.equal(hex(encodePayload(2 ** 53 - 1, 'p')), '03' + 'ffffffffffff1f00');
  t.equal(hex(encodePayload(-(2 ** 32) - 1, 'p')), '03' + 'fffffffffeffffff');
  t.equal(hex(encodePayload(2 ** 53, 'p')), '04' + '0000000000004043', '2^53 is not a safe integer: float');
  t.equal(hex(encodePayload(1.5, 'p')), '04' + '000000000000f83f');
  t.equal(hex(encodePayload('é', 'p')), '05' + '02000000' + 'c3a9');
  t.equal(hex(encodePayload('a\ud800', 'p')), '05' + '04000000' + '61eda080', 'lone surrogate as WTF-8');
  t.equal(hex(encodePayload([null, 'ab'], 'p')), '06' + '02000000' + '08000000' + '00' + '05' + '02000000' + '6162');
  t.equal(hex(encodePayload({ a: { b: true } }, 'p')),
    '07' + '01000000' + '14000000' // 20 body bytes
    + '01000000' + '61' + '07' + '01000000' + '06000000' + '01000000' + '62' + '02');
  t.equal(hex(encodePayload({}, 'p')), '07' + '00000000' + '00000000');
  t.equal(hex(encodePayload([], 'p')), '06' + '00000000' + '00000000');
  t.equal(hex(payloadStringBytes('aé\ud800')), '61c3a9eda080');
});
