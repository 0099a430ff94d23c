// The reference evaluator against Qdrant's semantics: the examples of
// Qdrant's filtering docs and of its own condition-checker test
// (lib/segment/src/payload_storage/query_checker.rs), every condition kind on
// arrays, nested objects, missing keys, nulls and mixed types, and the
// algebra (not not f = f, empty must is true, ...) as properties.
import tap from 'tap';
import fc from 'fast-check';
import type { Cond } from '../host/filter/ast.js';
import { matches, resolvePath } from '../host/filter/model.js';
import { parseFilter, parsePath } from '../host/filter/parse.js';

const t = tap;

/** The ids of `points` the JSON filter matches. */
function select(points: readonly { id: number | string; payload?: unknown }[], filter: unknown): (number | string)[] {
  const ast = parseFilter(filter);
  return points.filter((p) => matches(ast, p.id, p.payload)).map((p) => p.id);
}

/** Whether one payload matches one JSON condition. */
const one = (payload: unknown, cond: unknown, id: number | string = 1): boolean => matches(parseFilter({ must: [cond] }), id, payload);

t.test("the docs' city/color examples", async (t) => {
  const pts = [
    { id: 1, payload: { city: 'London', color: 'green' } },
    { id: 2, payload: { city: 'London', color: 'red' } },
    { id: 3, payload: { city: 'London', color: 'blue' } },
    { id: 4, payload: { city: 'Berlin', color: 'red' } },
    { id: 5, payload: { city: 'Moscow', color: 'green' } },
    { id: 6, payload: { city: 'Moscow', color: 'blue' } },
  ];
  const london = { key: 'city', match: { value: 'London' } };
  const red = { key: 'color', match: { value: 'red' } };
  t.strictSame(select(pts, { must: [london, red] }), [2], 'must');
  t.strictSame(select(pts, { should: [london, red] }), [1, 2, 3, 4], 'should');
  t.strictSame(select(pts, { must_not: [london, red] }), [5, 6], 'must_not');
  t.strictSame(select(pts, { must: [london], must_not: [red] }), [1, 3], 'must + must_not');
  t.strictSame(select(pts, { must_not: [{ must: [london, red] }] }), [1, 3, 4, 5, 6], 'a nested clause');
  t.strictSame(select(pts, { min_should: { conditions: [london, red, { key: 'color', match: { value: 'green' } }], min_count: 2 } }), [1, 2], 'min_should');
  t.strictSame(select(pts, { must: [{ key: 'city', match: { any: ['Berlin', 'Moscow'] } }] }), [4, 5, 6], 'match any');
  t.strictSame(select(pts, { must: [{ key: 'color', match: { except: ['red', 'green'] } }] }), [3, 6], 'match except');
  t.strictSame(select(pts, { must: [{ has_id: [1, 3, 5, 7, 9, 11] }] }), [1, 3, 5], 'has_id');
  t.strictSame(select(pts, {}), [1, 2, 3, 4, 5, 6], 'the empty filter');
  t.strictSame(select(pts, { should: [] }), [1, 2, 3, 4, 5, 6], 'an empty should');
});

t.test("the docs' nested-object examples", async (t) => {
  const pts = [
    { id: 1, payload: { country: { name: 'Germany', cities: [{ name: 'Berlin', population: 3.7, sightseeing: ['Brandenburg Gate', 'Reichstag'] }, { name: 'Munich', population: 1.5, sightseeing: ['Marienplatz', 'Olympiapark'] }] } } },
    { id: 2, payload: { country: { name: 'Japan', cities: [{ name: 'Tokyo', population: 9.3, sightseeing: ['Tokyo Tower', 'Tokyo Skytree'] }, { name: 'Osaka', population: 2.7, sightseeing: ['Osaka Castle', 'Universal Studios Japan'] }] } } },
    { id: 3, payload: { country: { name: 'Brazil', cities: [{ name: 'Brasilia', population: 4.7, sightseeing: ['Praça dos Três Poderes'] }] } } },
  ];
  t.strictSame(select(pts, { must: [{ key: 'country.name', match: { value: 'Germany' } }] }), [1]);
  t.strictSame(select(pts, { must: [{ key: 'country.cities[].population', range: { gte: 9.0 } }] }), [2]);
  t.strictSame(select(pts, { must: [{ key: 'country.cities[].sightseeing', match: { value: 'Osaka Castle' } }] }), [2], 'a leaf array is matched through its elements');
  t.strictSame(select(pts, { must: [{ key: 'country.cities[0].name', match: { value: 'Tokyo' } }] }), [2], '[0] takes one element');
  t.strictSame(select(pts, { must: [{ key: 'country.cities[1].name', match: { any: ['Munich', 'Brasilia'] } }] }), [1], 'Brazil has no [1]');
  t.strictSame(select(pts, { must: [{ key: 'country.cities', values_count: { gt: 1 } }] }), [1, 2], 'values_count counts an array');
  t.strictSame(select(pts, { must: [{ key: 'country.cities[].sightseeing', values_count: { lt: 2 } }] }), [3]);
  t.strictSame(select(pts, { must: [{ key: 'country.cities.name', match: { value: 'Berlin' } }] }), [], 'a key step does not enter an array');
  t.strictSame(select(pts, { must: [{ key: 'country.cities[].name', match: { text: 'o' } }] }), [2], 'text is a substring');
  t.strictSame(select(pts, { must: [{ key: 'country.cities[].name', match: { text: 'O' } }] }), [2]);
  t.strictSame(select(pts, { must: [{ key: 'country.cities[].name', match: { text: 'B' } }] }), [1, 3]);
});

t.test("Qdrant's own test_condition_checker payload", async (t) => {
  const payload = {
    location: { lon: 13.404954, lat: 52.520008 },
    price: 499.9,
    amount: 10,
    rating: [3, 7, 9, 9],
    color: 'red',
    has_delivery: true,
    shipped_at: '2020-02-15T00:00:00Z',
    parts: [],
    packaging: null,
    not_null: [null],
  };
  t.equal(one(payload, { is_empty: { key: 'price' } }), false);
  t.equal(one(payload, { is_empty: { key: 'something_new' } }), true);
  t.equal(one(payload, { is_empty: { key: 'parts' } }), true);
  t.equal(one(payload, { is_empty: { key: 'not_null' } }), false, '[null] is not empty');
  t.equal(one(payload, { is_null: { key: 'amount' } }), false);
  t.equal(one(payload, { is_null: { key: 'parts' } }), false);
  t.equal(one(payload, { is_null: { key: 'something_else' } }), false);
  t.equal(one(payload, { is_null: { key: 'packaging' } }), true);
  t.equal(one(payload, { is_null: { key: 'not_null' } }), false, '[null] is not null');
  t.equal(one(payload, { key: 'rating', values_count: { gte: 10 } }), false);
  t.equal(one(payload, { key: 'rating', values_count: { lt: 5 } }), true);
  t.equal(one(payload, { key: 'color', match: { value: 'red' } }), true);
  t.equal(one(payload, { key: 'color', match: { value: 'blue' } }), false);
  t.equal(matches(parseFilter({ must_not: [{ key: 'color', match: { value: 'blue' } }] }), 0, payload), true);
  t.equal(matches(parseFilter({ must_not: [{ key: 'color', match: { value: 'red' } }] }), 0, payload), false);
  t.equal(matches(parseFilter({ must_not: [{ key: 'rating', range: { lte: 5 } }] }), 0, payload), false, 'one rating (3) is <= 5');
  t.equal(one(payload, { key: 'has_delivery', match: { value: true } }), true);
  t.equal(matches(parseFilter({ must_not: [{ has_id: [1, 2, 3] }] }), 2, payload), false);
  t.equal(matches(parseFilter({ must_not: [{ has_id: [1, 2, 3] }] }), 10, payload), true);
  t.equal(matches(parseFilter({ must: [{ has_id: [1, 2, 3] }] }), 2, payload), true);
});

t.test('paths resolve to values; a final array stays one value', async (t) => {
  const doc = { a: [{ b: 1 }, { b: [2, 3] }, { c: 4 }, 5], o: { 'x.y': 'dot', n: null }, e: [] };
  t.strictSame(resolvePath(doc, parsePath('a', 'k')), [doc.a]);
  t.strictSame(resolvePath(doc, parsePath('a[]', 'k')), doc.a);
  t.strictSame(resolvePath(doc, parsePath('a[].b', 'k')), [1, [2, 3]]);
  t.strictSame(resolvePath(doc, parsePath('a[1].b', 'k')), [[2, 3]]);
  t.strictSame(resolvePath(doc, parsePath('a[9].b', 'k')), []);
  t.strictSame(resolvePath(doc, parsePath('a[].b[]', 'k')), [2, 3]);
  t.strictSame(resolvePath(doc, parsePath('a.b', 'k')), [], 'a key on an array is nothing');
  t.strictSame(resolvePath(doc, parsePath('o[]', 'k')), [], '[] on an object is nothing');
  t.strictSame(resolvePath(doc, parsePath('o[0]', 'k')), []);
  t.strictSame(resolvePath(doc, parsePath('o."x.y"', 'k')), ['dot']);
  t.strictSame(resolvePath(doc, parsePath('o.x.y', 'k')), []);
  t.strictSame(resolvePath(doc, parsePath('o.n', 'k')), [null]);
  t.strictSame(resolvePath(doc, parsePath('e[]', 'k')), []);
  t.strictSame(resolvePath(undefined, parsePath('a', 'k')), [], 'no payload');
  t.strictSame(resolvePath([1, 2], parsePath('a', 'k')), [], 'a non-object payload resolves nothing');
  t.strictSame(resolvePath('a', parsePath('a', 'k')), []);
});

t.test('match value / any: arrays, nested arrays, types', async (t) => {
  const kw = { key: 'a', match: { value: 'x' } };
  t.equal(one({ a: 'x' }, kw), true);
  t.equal(one({ a: ['y', 'x'] }, kw), true, 'any element');
  t.equal(one({ a: [['x']] }, kw), false, 'one level only');
  t.equal(one({ a: 'X' }, kw), false, 'case-sensitive');
  t.equal(one({ a: 'xx' }, kw), false);
  t.equal(one({ a: null }, kw), false);
  t.equal(one({}, kw), false);
  t.equal(one(undefined, kw), false);
  t.equal(one({ a: { x: 1 } }, kw), false);
  t.equal(one({ a: 1 }, { key: 'a', match: { value: 'x' } }), false, 'a number is not a keyword');
  t.equal(one({ a: '1' }, { key: 'a', match: { value: 1 } }), false, 'a string is not an integer');
  const i5 = { key: 'a', match: { value: 5 } };
  t.equal(one({ a: 5 }, i5), true);
  t.equal(one({ a: 5.5 }, i5), false);
  t.equal(one({ a: [1, 5] }, i5), true);
  t.equal(one({ a: 5.0 }, i5), true, '5.0 is 5 in JS (QPB int): the one place JSON text cannot be told apart');
  t.equal(one({ a: 5.5 }, { key: 'a', match: { any: [5] } }), false, 'a float never matches an integer');
  t.equal(one({ a: 2 ** 60 }, { key: 'a', match: { any: [0] } }), false);
  t.equal(one({ a: true }, i5), false);
  t.equal(one({ a: true }, { key: 'a', match: { value: true } }), true);
  t.equal(one({ a: [false, true] }, { key: 'a', match: { value: true } }), true);
  t.equal(one({ a: 1 }, { key: 'a', match: { value: true } }), false, '1 is not true');
  t.equal(one({ a: 'true' }, { key: 'a', match: { value: true } }), false);
  t.equal(one({ a: 'b' }, { key: 'a', match: { any: ['a', 'b'] } }), true);
  t.equal(one({ a: 'c' }, { key: 'a', match: { any: ['a', 'b'] } }), false);
  t.equal(one({ a: 'c' }, { key: 'a', match: { any: [] } }), false, 'any [] matches nothing');
  t.equal(one({ a: -3 }, { key: 'a', match: { any: [-3, 4] } }), true);
  t.equal(one({ a: [{ b: 'x' }, { b: 'y' }] }, { key: 'a[].b', match: { value: 'y' } }), true);
  t.equal(one({ a: 'naïve 😀' }, { key: 'a', match: { value: 'naïve 😀' } }), true);
});

t.test('match except: missing, null, arrays, other types', async (t) => {
  const ex = { key: 'a', match: { except: ['x', 'y'] } };
  t.equal(one({ a: 'z' }, ex), true);
  t.equal(one({ a: 'x' }, ex), false);
  t.equal(one({ a: ['x', 'y'] }, ex), false, 'every element excluded');
  t.equal(one({ a: ['x', 'z'] }, ex), true, 'one element not excluded is enough');
  t.equal(one({}, ex), false, 'a missing key does not match except');
  t.equal(one(undefined, ex), false);
  t.equal(one({ a: null }, ex), false, 'null does not match except');
  t.equal(one({ a: [] }, ex), false, 'an empty array does not');
  t.equal(one({ a: [null] }, ex), false);
  t.equal(one({ a: [null, 'z'] }, ex), true);
  t.equal(one({ a: 5 }, ex), true, 'another type always does');
  t.equal(one({ a: true }, ex), true);
  t.equal(one({ a: { b: 1 } }, ex), true);
  t.equal(one({ a: [['x']] }, ex), true, 'a nested array does');
  const exi = { key: 'a', match: { except: [1, 2] } };
  t.equal(one({ a: 3 }, exi), true);
  t.equal(one({ a: 1 }, exi), false);
  t.equal(one({ a: 1.5 }, exi), true, 'a float is not one of the integers');
  t.equal(one({ a: 'x' }, exi), true);
  t.equal(one({ a: null }, exi), false);
  t.equal(one({}, exi), false);
  t.equal(one({ a: [1, 2] }, exi), false);
  t.equal(one({ a: [1, 2, 3] }, exi), true);
  t.equal(one({ a: 'x' }, { key: 'a', match: { except: [] } }), true, 'except [] matches any non-null value');
  t.equal(one({ a: 7 }, { key: 'a', match: { except: [] } }), true);
  t.equal(one({ a: null }, { key: 'a', match: { except: [] } }), false);
  t.equal(one({}, { key: 'a', match: { except: [] } }), false);
  // must_not any vs except differ exactly on missing, null and empty
  const notAny = (p: unknown): boolean => matches(parseFilter({ must_not: [{ key: 'a', match: { any: ['x', 'y'] } }] }), 1, p);
  t.equal(notAny({}), true);
  t.equal(notAny({ a: null }), true);
  t.equal(notAny({ a: ['x', 'z'] }), false);
});

t.test('text', async (t) => {
  const tx = { key: 'a', match: { text: 'cheap' } };
  t.equal(one({ a: 'good and cheap' }, tx), true);
  t.equal(one({ a: 'Cheap' }, tx), false, 'case-sensitive without a full-text index');
  t.equal(one({ a: 'cheaper' }, tx), true, 'a substring, not a token');
  t.equal(one({ a: ['dear', 'very cheap'] }, tx), true);
  t.equal(one({ a: 5 }, tx), false);
  t.equal(one({}, tx), false);
  t.equal(one({ a: '' }, { key: 'a', match: { text: '' } }), true, 'the empty text is in every string');
  t.equal(one({ a: 1 }, { key: 'a', match: { text: '' } }), false);
  t.equal(one({ a: 'x😀y' }, { key: 'a', match: { text: '😀' } }), true);
  t.equal(one({ a: 'x😀y' }, { key: 'a', match: { text: '\ud83d' } }), false, 'half a surrogate pair is not in the stored bytes');
  t.equal(one({ a: 'x\ud83dy' }, { key: 'a', match: { text: '\ud83d' } }), true, 'a lone surrogate is');
});

t.test('range', async (t) => {
  const r = (range: unknown, payload: unknown): boolean => one(payload, { key: 'a', range });
  t.equal(r({ gt: 1 }, { a: 1 }), false);
  t.equal(r({ gte: 1 }, { a: 1 }), true);
  t.equal(r({ lt: 1 }, { a: 1 }), false);
  t.equal(r({ lte: 1 }, { a: 1 }), true);
  t.equal(r({ gt: 1, lt: 2 }, { a: 1.5 }), true, 'floats');
  t.equal(r({ gt: 1.5 }, { a: 2 }), true, 'integers against a float bound');
  t.equal(r({ gt: 1, lt: 2 }, { a: 2 }), false);
  t.equal(r({ gte: 10 }, { a: [1, 20] }), true, 'any element');
  t.equal(r({ gte: 10, lte: 15 }, { a: [1, 20] }), false, 'one element must satisfy every bound');
  t.equal(r({ gte: 0 }, { a: [[5]] }), false, 'nested arrays do not');
  t.equal(r({ gte: 0 }, { a: '5' }), false, 'strings never match a range');
  t.equal(r({ gte: 0 }, { a: true }), false);
  t.equal(r({ gte: 0 }, { a: null }), false);
  t.equal(r({ gte: 0 }, {}), false);
  t.equal(r({}, { a: -7.25 }), true, 'no bounds: any number');
  t.equal(r({}, { a: 'x' }), false);
  t.equal(r({ lt: 0 }, { a: -1e300 }), true);
  t.equal(r({ gt: -1 }, { a: -0 }), true);
});

t.test('values_count counts per resolved value', async (t) => {
  const vc = (values_count: unknown, payload: unknown, key = 'a'): boolean => one(payload, { key, values_count });
  t.equal(vc({ gte: 3 }, { a: [1, 2, 3] }), true);
  t.equal(vc({ gt: 3 }, { a: [1, 2, 3] }), false);
  t.equal(vc({ lte: 1 }, { a: 5 }), true, 'a scalar counts 1');
  t.equal(vc({ gte: 1 }, { a: 5 }), true);
  t.equal(vc({ gte: 1 }, { a: { x: 1, y: 2 } }), true, 'an object counts 1');
  t.equal(vc({ lt: 1 }, { a: null }), true, 'null counts 0');
  t.equal(vc({ lt: 1 }, { a: [] }), true);
  t.equal(vc({ lt: 1 }, {}), true, 'a missing key counts 0');
  t.equal(vc({ gte: 1 }, {}), false);
  t.equal(vc({ lt: 1 }, undefined), true);
  t.equal(vc({ gte: 2 }, { a: [null, null] }), true, 'nulls in an array count');
  t.equal(vc({ gte: 2 }, { a: [1, 2, 3] }, 'a[]'), false, 'through [] each element is one value of count 1');
  t.equal(vc({ gte: 2 }, { a: [[1, 2], [3]] }, 'a[]'), true, 'an element array counts its length');
  t.equal(vc({ gte: 2, lte: 2 }, { a: [{ b: [1, 2] }, { b: [1, 2, 3] }] }, 'a[].b'), true, 'any value whose count fits');
  t.equal(vc({ gte: 4 }, { a: [{ b: [1, 2] }, { b: [1, 2, 3] }] }, 'a[].b'), false, 'counts are not summed');
  t.equal(vc({}, {}), true);
});

t.test('is_empty and is_null', async (t) => {
  const e = (payload: unknown, key = 'a'): boolean => one(payload, { is_empty: { key } });
  const n = (payload: unknown, key = 'a'): boolean => one(payload, { is_null: { key } });
  t.equal(e({}), true);
  t.equal(e(undefined), true);
  t.equal(e({ a: [] }), true);
  t.equal(e({ a: null }), true);
  t.equal(e({ a: [null] }), false);
  t.equal(e({ a: [[]] }), false);
  t.equal(e({ a: '' }), false);
  t.equal(e({ a: {} }), false);
  t.equal(e({ a: 0 }), false);
  t.equal(e({ a: false }), false);
  t.equal(e({ a: [null] }, 'a[]'), true, 'through [] the elements are tested');
  t.equal(e({ a: [] }, 'a[]'), true);
  t.equal(e({ a: [{ b: null }, { b: [] }] }, 'a[].b'), true, 'every value empty');
  t.equal(e({ a: [{ b: null }, { b: 1 }] }, 'a[].b'), false);
  t.equal(e({ a: [{ c: 1 }] }, 'a[].b'), true);
  t.equal(n({ a: null }), true);
  t.equal(n({}), false);
  t.equal(n(undefined), false);
  t.equal(n({ a: [] }), false);
  t.equal(n({ a: [null] }), false);
  t.equal(n({ a: 0 }), false);
  t.equal(n({ a: '' }), false);
  t.equal(n({ a: [null] }, 'a[]'), true);
  t.equal(n({ a: [{ b: null }, { b: 1 }] }, 'a[].b'), true, "Qdrant's comment: any value null");
  t.equal(n({ a: [{ b: 1 }, { b: null }] }, 'a[].b'), true);
  t.equal(n({ a: [{ b: 1 }, { b: 2 }] }, 'a[].b'), false);
  t.equal(n({ a: { b: null } }, 'a.b'), true);
});

t.test('has_id', async (t) => {
  const uuid = 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6';
  const f = parseFilter({ must: [{ has_id: [1, uuid.toUpperCase()] }] });
  t.equal(matches(f, 1, {}), true);
  t.equal(matches(f, 1n, {}), true, 'a bigint id');
  t.equal(matches(f, 2, {}), false);
  t.equal(matches(f, uuid, {}), true);
  t.equal(matches(f, uuid.toUpperCase(), {}), true, 'uuids compare as ids');
  t.equal(matches(f, uuid.replace(/-/g, ''), {}), true);
  t.equal(matches(f, 2n ** 60n, {}), false);
  t.equal(matches(parseFilter({ must: [{ has_id: [] }] }), 1, {}), false);
});

// ------------------------------------------------------------------ algebra

const paths = ['a', 'b', 'a.b', 'a[]', 'a[0]', 'a[].b'].map((s) => parsePath(s, 'k'));
const pathArb = fc.constantFrom(...paths);
const strArb = fc.constantFrom('x', 'y', '');
const intArb = fc.integer({ min: -2, max: 2 });
const boundsArb = fc.record({ gt: fc.integer({ min: -2, max: 2 }), lte: fc.double({ min: -2, max: 3, noNaN: true }) }, { requiredKeys: [] });
const leafArb: fc.Arbitrary<Cond> = fc.oneof(
  fc.record({ kind: fc.constant('keyword' as const), path: pathArb, any: fc.array(strArb, { maxLength: 2 }) }),
  fc.record({ kind: fc.constant('integer' as const), path: pathArb, any: fc.array(intArb, { maxLength: 2 }) }),
  fc.record({ kind: fc.constant('bool' as const), path: pathArb, value: fc.boolean() }),
  fc.record({ kind: fc.constant('exceptKeyword' as const), path: pathArb, none: fc.array(strArb, { maxLength: 2 }) }),
  fc.record({ kind: fc.constant('exceptInteger' as const), path: pathArb, none: fc.array(intArb, { maxLength: 2 }) }),
  fc.record({ kind: fc.constant('text' as const), path: pathArb, text: strArb }),
  fc.record({ kind: fc.constant('range' as const), path: pathArb, bounds: boundsArb }),
  fc.record({ kind: fc.constant('valuesCount' as const), path: pathArb, bounds: fc.record({ gte: fc.nat(2), lt: fc.nat(3) }, { requiredKeys: [] }) }),
  fc.record({ kind: fc.constant('isEmpty' as const), path: pathArb }),
  fc.record({ kind: fc.constant('isNull' as const), path: pathArb }),
  fc.record({ kind: fc.constant('hasId' as const), ids: fc.array(fc.nat(4), { maxLength: 3 }) }),
);
const { cond: condArb } = fc.letrec<{ cond: Cond }>((tie) => ({
  cond: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    leafArb,
    leafArb,
    fc.record({ kind: fc.constant('and' as const), of: fc.array(tie('cond'), { maxLength: 3 }) }),
    fc.record({ kind: fc.constant('or' as const), of: fc.array(tie('cond'), { maxLength: 3 }) }),
    fc.record({ kind: fc.constant('not' as const), of: tie('cond') }),
    fc.record({ kind: fc.constant('atLeast' as const), min: fc.integer({ min: 1, max: 3 }), of: fc.array(tie('cond'), { maxLength: 3 }) })),
}));
const valueArb: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), intArb, fc.double({ min: -2, max: 3, noNaN: true }), strArb, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('a', 'b'), tie('v'), { maxKeys: 2 })),
})).v;
const pointArb = fc.record({ id: fc.nat(4), payload: fc.oneof(fc.dictionary(fc.constantFrom('a', 'b'), valueArb, { maxKeys: 2 }), fc.constant(undefined)) });
const prop = (f: (c: Cond, id: number, payload: unknown) => boolean): void => {
  fc.assert(fc.property(condArb, pointArb, (c, pt) => f(c, pt.id, pt.payload)), { numRuns: 2000 });
};

t.test('algebra of the clauses', async () => {
  prop((c, id, p) => matches({ kind: 'not', of: { kind: 'not', of: c } }, id, p) === matches(c, id, p));
  prop((c, id, p) => matches({ kind: 'and', of: [c] }, id, p) === matches(c, id, p));
  prop((c, id, p) => matches({ kind: 'or', of: [c] }, id, p) === matches(c, id, p));
  prop((_c, id, p) => matches({ kind: 'and', of: [] }, id, p) && !matches({ kind: 'or', of: [] }, id, p));
  prop((c, id, p) => matches({ kind: 'and', of: [c, { kind: 'not', of: c }] }, id, p) === false);
  prop((c, id, p) => matches({ kind: 'atLeast', min: 1, of: [c, c] }, id, p) === matches(c, id, p));
  prop((c, id, p) => matches({ kind: 'atLeast', min: 3, of: [c, c] }, id, p) === false);
  fc.assert(fc.property(condArb, condArb, pointArb, (a, b, pt) => {
    const m = (x: Cond): boolean => matches(x, pt.id, pt.payload);
    return m({ kind: 'not', of: { kind: 'and', of: [a, b] } }) === m({ kind: 'or', of: [{ kind: 'not', of: a }, { kind: 'not', of: b }] })
      && m({ kind: 'atLeast', min: 2, of: [a, b] }) === m({ kind: 'and', of: [a, b] })
      && m({ kind: 'atLeast', min: 1, of: [a, b] }) === m({ kind: 'or', of: [a, b] });
  }), { numRuns: 1000 });
});

t.test('leaf relations that follow from the semantics', async () => {
  // on a single scalar string value, except is exactly "not any"
  fc.assert(fc.property(pathArb, fc.array(strArb, { maxLength: 2 }), strArb, (_path, list, s) => {
    const payload = { a: s };
    const path = parsePath('a', 'k');
    return matches({ kind: 'exceptKeyword', path, none: list }, 0, payload) === !matches({ kind: 'keyword', path, any: list }, 0, payload);
  }));
  // is_empty on a path equals "values_count < 1" when the path resolves at most one value
  fc.assert(fc.property(valueArb, (v) => {
    const path = parsePath('a', 'k');
    return matches({ kind: 'isEmpty', path }, 0, { a: v }) === (v === null || (Array.isArray(v) && v.length === 0))
      && matches({ kind: 'isEmpty', path }, 0, { a: v }) === matches({ kind: 'valuesCount', path, bounds: { lt: 1 } }, 0, { a: v });
  }), { numRuns: 1000 });
  // a leaf on a missing key: only values_count (against 0) and is_empty can be true
  fc.assert(fc.property(leafArb, (c) => {
    if (c.kind === 'hasId') return true;
    const got = matches(c, 0, {});
    if (c.kind === 'isEmpty') return got;
    if (c.kind === 'valuesCount') return got === matches(c, 0, { a: null, b: null });
    return !got;
  }), { numRuns: 1000 });
});
