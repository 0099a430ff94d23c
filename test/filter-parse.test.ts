// Qdrant's JSON filter -> the AST: every condition kind, every error, the
// limits, and a property: parse is total on generated valid filters and
// means what the AST it was printed from means.
import tap from 'tap';
import fc from 'fast-check';
import type { Cond, Path } from '../host/filter/ast.js';
import { matches } from '../host/filter/model.js';
import { FILTER_LIMITS, parseFilter, parseOptionalFilter, parsePath } from '../host/filter/parse.js';

const t = tap;
const k = (key: string): { key: string } => ({ key });
const p = (key: string): Path => parsePath(key, 'key');
const bad = (tt: Pick<typeof tap, 'throws'>, filter: unknown, message: RegExp | string, name?: string): void => {
  tt.throws(() => parseFilter(filter), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message }, name ?? (typeof message === 'string' ? message : message.source));
};

t.test('paths', async (t) => {
  t.strictSame(parsePath('a', 'k'), [k('a')]);
  t.strictSame(parsePath('a.b[].c', 'k'), [k('a'), k('b'), { each: true }, k('c')]);
  t.strictSame(parsePath('a[0][12]', 'k'), [k('a'), { index: 0 }, { index: 12 }]);
  t.strictSame(parsePath('a.0', 'k'), [k('a'), k('0')], '.0 is a key, not an index');
  t.strictSame(parsePath('a."b.c"."d[]"', 'k'), [k('a'), k('b.c'), k('d[]')], 'quoted keys');
  t.strictSame(parsePath('"x y".z', 'k'), [k('x y'), k('z')], 'a quoted first key');
  t.strictSame(parsePath('""', 'k'), [k('')], 'the empty key, quoted');
  t.strictSame(parsePath('foo[1][50].bar-baz[]."qux[.]quux"', 'k'), [k('foo'), { index: 1 }, { index: 50 }, k('bar-baz'), { each: true }, k('qux[.]quux')], "Qdrant's own parse test");
  t.strictSame(parsePath('город.名前_1-x', 'k'), [k('город'), k('名前_1-x')], 'letters of any script');
  t.strictSame(parsePath('a[]', 'k'), [k('a'), { each: true }]);
  t.strictSame(parsePath('a[4294967295]', 'k'), [k('a'), { index: 4294967295 }]);
  for (const s of ['', 'a..b', '[0]', '[]', 'a[', 'a[x]', 'a b', 'a.', ' a', 'a ', '.a', 'a[0', 'a]', 'a."b', 'a."b\\"c"', 'a.b c', 'a[-1]', 'a[4294967296]', 'a$']) {
    t.throws(() => parsePath(s, 'filter.must[0].key'), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /^filter\.must\[0\]\.key/ }, `refuses ${JSON.stringify(s)}`);
  }
  t.throws(() => parsePath(5, 'filter.key'), { message: 'filter.key must be a string (got number 5)' });
});

t.test('clauses', async (t) => {
  const red = { key: 'color', match: { value: 'red' } };
  const london = { key: 'city', match: { value: 'London' } };
  const R: Cond = { kind: 'keyword', path: p('color'), any: ['red'] };
  const L: Cond = { kind: 'keyword', path: p('city'), any: ['London'] };
  t.strictSame(parseFilter({}), { kind: 'and', of: [] }, 'the empty filter is true');
  t.strictSame(parseFilter({ must: [red] }), R);
  t.strictSame(parseFilter({ must: red }), R, 'one condition instead of an array');
  t.strictSame(parseFilter({ must: [red, london] }), { kind: 'and', of: [R, L] });
  t.strictSame(parseFilter({ should: [red, london] }), { kind: 'or', of: [R, L] });
  t.strictSame(parseFilter({ should: [red] }), R);
  t.strictSame(parseFilter({ should: [] }), { kind: 'and', of: [] }, 'an empty should is no constraint');
  t.strictSame(parseFilter({ must: [], must_not: [] }), { kind: 'and', of: [] });
  t.strictSame(parseFilter({ must_not: [red, london] }), { kind: 'and', of: [{ kind: 'not', of: R }, { kind: 'not', of: L }] });
  t.strictSame(parseFilter({ must: null, should: null, must_not: null, min_should: null }), { kind: 'and', of: [] }, 'null clauses are absent');
  t.strictSame(parseFilter({ min_should: { conditions: [red, london], min_count: 2 } }), { kind: 'atLeast', min: 2, of: [R, L] });
  t.strictSame(parseFilter({ min_should: { conditions: [red], min_count: 3 } }), { kind: 'atLeast', min: 3, of: [R] }, 'min_count above the count is valid (never true)');
  t.strictSame(parseFilter({ should: [red, london], min_should: { conditions: [red], min_count: 1 }, must: [red], must_not: [london] }), {
    kind: 'and',
    of: [{ kind: 'or', of: [R, L] }, { kind: 'atLeast', min: 1, of: [R] }, R, { kind: 'not', of: L }],
  });
  t.strictSame(parseFilter({ must_not: [{ must: [london, red] }] }), { kind: 'not', of: { kind: 'and', of: [L, R] } }, 'nested filters');
  t.strictSame(parseFilter({ should: [{}, { should: [] }] }), { kind: 'or', of: [{ kind: 'and', of: [] }, { kind: 'and', of: [] }] });
  t.equal(parseOptionalFilter(undefined), undefined);
  t.equal(parseOptionalFilter(null), undefined);
  t.strictSame(parseOptionalFilter({ must: red }), R);
});

t.test('match, range, values_count, is_empty, is_null, has_id', async (t) => {
  const one = (c: unknown): Cond => parseFilter({ must: [c] });
  t.strictSame(one({ key: 'a', match: { value: 'x' } }), { kind: 'keyword', path: p('a'), any: ['x'] });
  t.strictSame(one({ key: 'a', match: { value: 5 } }), { kind: 'integer', path: p('a'), any: [5] });
  t.strictSame(one({ key: 'a', match: { value: -0 } }), { kind: 'integer', path: p('a'), any: [0] });
  t.ok(Object.is((one({ key: "a", match: { value: -0 } }) as unknown as { any: number[] }).any[0], 0), '-0 is 0');
  t.strictSame(one({ key: 'a', match: { value: true } }), { kind: 'bool', path: p('a'), value: true });
  t.strictSame(one({ key: 'a', match: { value: false } }), { kind: 'bool', path: p('a'), value: false });
  t.strictSame(one({ key: 'a.b[]', match: { any: ['x', 'y', 'x'] } }), { kind: 'keyword', path: p('a.b[]'), any: ['x', 'y'] }, 'duplicates dropped');
  t.strictSame(one({ key: 'a', match: { any: [1, 2, 2, 3] } }), { kind: 'integer', path: p('a'), any: [1, 2, 3] });
  t.strictSame(one({ key: 'a', match: { any: [] } }), { kind: 'keyword', path: p('a'), any: [] }, 'an empty list is strings, as in Qdrant');
  t.strictSame(one({ key: 'a', match: { except: ['x'] } }), { kind: 'exceptKeyword', path: p('a'), none: ['x'] });
  t.strictSame(one({ key: 'a', match: { except: [1, 2] } }), { kind: 'exceptInteger', path: p('a'), none: [1, 2] });
  t.strictSame(one({ key: 'a', match: { except: [] } }), { kind: 'exceptKeyword', path: p('a'), none: [] });
  t.strictSame(one({ key: 'a', match: { text: 'good cheap' } }), { kind: 'text', path: p('a'), text: 'good cheap' });
  t.strictSame(one({ key: 'a', range: { gt: 1, lte: 2.5 } }), { kind: 'range', path: p('a'), bounds: { gt: 1, lte: 2.5 } });
  t.strictSame(one({ key: 'a', range: { gte: null, lt: -3 } }), { kind: 'range', path: p('a'), bounds: { lt: -3 } }, 'a null bound is absent');
  t.strictSame(one({ key: 'a', range: {} }), { kind: 'range', path: p('a'), bounds: {} });
  t.strictSame(one({ key: 'a', values_count: { gte: 2, lt: 5 } }), { kind: 'valuesCount', path: p('a'), bounds: { gte: 2, lt: 5 } });
  t.strictSame(one({ key: 'a', match: { value: 'x' }, range: null }), { kind: 'keyword', path: p('a'), any: ['x'] }, 'a null member is absent');
  t.strictSame(one({ is_empty: { key: 'a.b' } }), { kind: 'isEmpty', path: p('a.b') });
  t.strictSame(one({ is_null: { key: 'a[]' } }), { kind: 'isNull', path: p('a[]') });
  t.strictSame(one({ has_id: [1, 5, 1, 'F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6', 'f81d4fae7dec11d0a76500a0c91e6bf6', '{f81d4fae-7dec-11d0-a765-00a0c91e6bf6}', 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 7n] }),
    { kind: 'hasId', ids: [1, 5, 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 7] }, 'ids normalised and de-duplicated');
  t.strictSame(one({ has_id: [] }), { kind: 'hasId', ids: [] });
});

t.test('unsupported conditions name themselves and where they are', async (t) => {
  bad(t, { must: [{ key: 'a', match: { value: 1 } }, { key: 'loc', geo_radius: { center: { lon: 0, lat: 0 }, radius: 1 } }] }, 'filter.must[1]: geo_radius is not supported');
  bad(t, { should: [{ key: 'loc', geo_bounding_box: {} }] }, 'filter.should[0]: geo_bounding_box is not supported');
  bad(t, { must_not: [{ key: 'loc', geo_polygon: {} }] }, 'filter.must_not[0]: geo_polygon is not supported');
  bad(t, { must: [{ nested: { key: 'a', filter: {} } }] }, 'filter.must[0]: nested is not supported');
  bad(t, { must: [{ has_vector: 'image' }] }, 'filter.must[0]: has_vector is not supported');
  bad(t, { must: [{ slice: { total: 2, index: 0 } }] }, 'filter.must[0]: slice is not supported');
  bad(t, { must: { key: 'd', range: { gte: '2024-01-01T00:00:00Z' } } }, 'filter.must.range: a datetime range (a range with string bounds) is not supported');
  bad(t, { must: [{ key: 'd', range: { gt: 1, lt: '2024-01-01' } }] }, /datetime range/);
  bad(t, { must: [{ key: 'a', match: { phrase: 'x y' } }] }, 'filter.must[0].match: phrase is not supported');
  bad(t, { must: [{ key: 'a', match: { text_any: 'x y' } }] }, 'filter.must[0].match: text_any is not supported');
  bad(t, { must: [{ key: 'a', match: { prefix: 'x' } }] }, 'filter.must[0].match: prefix is not supported');
  bad(t, { must: [{ key: 'a', is_empty: true }] }, /filter\.must\[0\]: "is_empty" inside a key condition .* is not supported/);
  bad(t, { must: [{ key: 'a', is_null: false }] }, /filter\.must\[0\]: "is_null" inside a key condition/);
  bad(t, { min_should: { conditions: [{ must: [{ key: 'x', geo_radius: {} }] }], min_count: 1 } }, 'filter.min_should.conditions[0].must[0]: geo_radius is not supported');
});

t.test('bad shapes name the field', async (t) => {
  for (const v of [null, 5, 'x', [], true]) {
    t.throws(() => parseFilter(v), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /^filter must be an object/ });
  }
  t.throws(() => parseFilter(5, 'body.filter'), { message: /^body\.filter must be an object/ });
  bad(t, { foo: [] }, 'filter: unknown member "foo" (a filter has must, should, must_not, min_should)');
  bad(t, { must: [{ foo: 1 }] }, /^filter\.must\[0\]: unknown condition "foo"/);
  bad(t, { must: [{ must: [], extra: 1 }] }, /^filter\.must\[0\]: unknown condition "extra"/);
  bad(t, { must: 5 }, 'filter.must must be a condition or an array of conditions (got number 5)');
  bad(t, { must: ['x'] }, /^filter\.must\[0\] must be a condition object/);
  bad(t, { must: [null] }, /^filter\.must\[0\] must be a condition object \(got null\)/);
  bad(t, { must: [{ key: 5, match: { value: 1 } }] }, 'filter.must[0].key must be a string (got number 5)');
  bad(t, { must: [{ key: 'a..b', match: { value: 1 } }] }, /^filter\.must\[0\]\.key: "a\.\.b" is not a valid key path/);
  bad(t, { must: [{ key: 'a' }] }, 'filter.must[0]: a key condition needs one of match, range, values_count');
  bad(t, { must: [{ key: 'a', match: { value: 1 }, range: { gt: 0 } }] }, /^filter\.must\[0\]: give one of match, range, values_count per condition \(got match and range\)/);
  bad(t, { must: [{ key: 'a', match: { value: 1 }, colour: 1 }] }, /^filter\.must\[0\]: unknown member "colour" in a key condition/);
  bad(t, { must: [{ key: 'a', match: 'x' }] }, /^filter\.must\[0\]\.match must be an object/);
  bad(t, { must: [{ key: 'a', match: {} }] }, 'filter.must[0].match needs one of value, any, except, text');
  bad(t, { must: [{ key: 'a', match: { value: 1, any: [1] } }] }, 'filter.must[0].match: give one of value, any, except, text (got value and any)');
  bad(t, { must: [{ key: 'a', match: { valeu: 1 } }] }, /^filter\.must\[0\]\.match: unknown member "valeu" in match/);
  bad(t, { must: [{ key: 'a', match: { value: 1.5 } }] }, /^filter\.must\[0\]\.match\.value must be a string, an integer or a boolean \(got number 1\.5\)/);
  bad(t, { must: [{ key: 'a', match: { value: null } }] }, /match\.value must be a string, an integer or a boolean \(got null\)/);
  bad(t, { must: [{ key: 'a', match: { value: 2 ** 60 } }] }, /match\.value: 1152921504606847000 is beyond/);
  bad(t, { must: [{ key: 'a', match: { value: [1] } }] }, /match\.value must be/);
  bad(t, { must: [{ key: 'a', match: { any: 'x' } }] }, /^filter\.must\[0\]\.match\.any must be an array of strings or of integers/);
  bad(t, { must: [{ key: 'a', match: { any: ['x', 1] } }] }, /^filter\.must\[0\]\.match\.any\[1\] must be a string/);
  bad(t, { must: [{ key: 'a', match: { any: [1, 'x'] } }] }, /^filter\.must\[0\]\.match\.any\[1\] must be an integer/);
  bad(t, { must: [{ key: 'a', match: { any: [true] } }] }, /match\.any\[0\] must be an integer/);
  bad(t, { must: [{ key: 'a', match: { any: [1, 2.5] } }] }, /match\.any\[1\] must be an integer/);
  bad(t, { must: [{ key: 'a', match: { except: [1, 2 ** 53] } }] }, /match\.except\[1\]: 9007199254740992 is beyond/);
  bad(t, { must: [{ key: 'a', match: { text: 5 } }] }, 'filter.must[0].match.text must be a string (got number 5)');
  bad(t, { must: [{ key: 'a', range: 5 }] }, /^filter\.must\[0\]\.range must be an object/);
  bad(t, { must: [{ key: 'a', range: { gt: true } }] }, 'filter.must[0].range.gt must be a finite number (got boolean true)');
  bad(t, { must: [{ key: 'a', range: { gt: NaN } }] }, /range\.gt must be a finite number/);
  bad(t, { must: [{ key: 'a', range: { from: 1 } }] }, /^filter\.must\[0\]\.range: unknown member "from"/);
  bad(t, { must: [{ key: 'a', values_count: { gt: -1 } }] }, 'filter.must[0].values_count.gt must be a non-negative integer (got number -1)');
  bad(t, { must: [{ key: 'a', values_count: { gt: 1.5 } }] }, /values_count\.gt must be a non-negative integer/);
  bad(t, { must: [{ key: 'a', values_count: { gt: '1' } }] }, /values_count\.gt must be a non-negative integer/);
  bad(t, { must: [{ is_empty: 'a' }] }, /^filter\.must\[0\]\.is_empty must be an object \{"key": \.\.\.\}/);
  bad(t, { must: [{ is_empty: { key: 'a', x: 1 } }] }, /^filter\.must\[0\]\.is_empty: unknown member "x"/);
  bad(t, { must: [{ is_null: { key: 1 } }] }, 'filter.must[0].is_null.key must be a string (got number 1)');
  bad(t, { must: [{ is_null: { key: 'a' }, key2: 1 }] }, /^filter\.must\[0\]: unknown member "key2" in an is_null condition/);
  bad(t, { must: [{ has_id: 5 }] }, /^filter\.must\[0\]\.has_id must be an array/);
  bad(t, { must: [{ has_id: [1, -1] }] }, /^filter\.must\[0\]\.has_id\[1\]: -1 is not a valid point id/);
  bad(t, { must: [{ has_id: [1.5] }] }, /has_id\[0\]: 1\.5 is not a valid point id/);
  bad(t, { must: [{ has_id: [2 ** 53] }] }, /has_id\[0\]: integer id 9007199254740992 is above 2\^53 - 1/);
  bad(t, { must: [{ has_id: [2n ** 60n] }] }, /has_id\[0\]: has_id does not support integer ids above 2\^53 - 1/);
  bad(t, { must: [{ has_id: ['5'] }] }, /has_id\[0\]: the string "5" is not a valid point id/);
  bad(t, { must: [{ has_id: [' f81d4fae-7dec-11d0-a765-00a0c91e6bf6'] }] }, /not a valid point id/);
  bad(t, { must: [{ has_id: [null] }] }, /has_id\[0\]: expected an unsigned integer or a UUID/);
  bad(t, { min_should: [] }, /^filter\.min_should must be an object/);
  bad(t, { min_should: { conditions: [], min_count: 0 } }, 'filter.min_should.min_count must be an integer of at least 1 (got number 0)');
  bad(t, { min_should: { conditions: [] } }, /min_should\.min_count must be an integer of at least 1 \(got undefined/);
  bad(t, { min_should: { conditions: {}, min_count: 1 } }, /^filter\.min_should\.conditions must be an array/);
  bad(t, { min_should: { conditions: [], min_count: 1, extra: 1 } }, /^filter\.min_should: unknown member "extra" in min_should/);
});

t.test('limits', async (t) => {
  const nest = (levels: number): unknown => {
    let f: unknown = { key: 'a', match: { value: 1 } };
    for (let i = 0; i < levels; i++) f = { must: [f] };
    return f;
  };
  t.doesNotThrow(() => parseFilter(nest(FILTER_LIMITS.depth)), `${FILTER_LIMITS.depth} levels`);
  bad(t, nest(FILTER_LIMITS.depth + 1), new RegExp(`filters are nested deeper than ${FILTER_LIMITS.depth} levels`));
  bad(t, nest(10_000), /nested deeper than/, 'a very deep filter is refused, not a stack overflow');
  const conds = (n: number): unknown => ({ must: Array.from({ length: n }, (_, i) => ({ key: 'a', match: { value: i } })) });
  t.doesNotThrow(() => parseFilter(conds(FILTER_LIMITS.conditions)));
  bad(t, conds(FILTER_LIMITS.conditions + 1), new RegExp(`^filter\\.must\\[${FILTER_LIMITS.conditions}\\]: the filter has more than ${FILTER_LIMITS.conditions} conditions`));
  const list = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  t.doesNotThrow(() => parseFilter({ must: [{ key: 'a', match: { any: list(FILTER_LIMITS.values) } }] }));
  bad(t, { must: [{ key: 'a', match: { any: list(FILTER_LIMITS.values + 1) } }] }, /^filter\.must\[0\]\.match\.any: the filter's any, except and has_id lists hold more than/);
  bad(t, { must: [{ key: 'a', match: { except: list(6000) } }, { has_id: list(6000) }] }, /^filter\.must\[1\]\.has_id: the filter's any/, 'the limit counts every list together');
});

// ------------------------------------------------------------------ property

const key = fc.constantFrom('a', 'b', 'c', 'a.b', 'a[]', 'a[0]', 'a[].b', 'a."x.y"');
const str = fc.constantFrom('x', 'y', 'z', '', 'é');
const int = fc.integer({ min: -3, max: 3 });
const bnds = fc.record({ gt: fc.option(fc.double({ min: -4, max: 4, noNaN: true })), lte: fc.option(fc.integer({ min: -4, max: 4 })) }, { requiredKeys: [] });
const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ key, match: fc.oneof(fc.record({ value: fc.oneof(str, int, fc.boolean()) }), fc.record({ any: fc.oneof(fc.array(str), fc.array(int, { minLength: 1 })) }), fc.record({ except: fc.oneof(fc.array(str), fc.array(int, { minLength: 1 })) }), fc.record({ text: str })) }),
  fc.record({ key, range: bnds }),
  fc.record({ key, values_count: fc.record({ gte: fc.option(fc.nat(3)), lt: fc.option(fc.nat(3)) }, { requiredKeys: [] }) }),
  fc.record({ is_empty: fc.record({ key }) }),
  fc.record({ is_null: fc.record({ key }) }),
  fc.record({ has_id: fc.array(fc.nat(5), { maxLength: 3 }) }),
);
const oneOrMany = (c: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> => fc.oneof(fc.array(c, { maxLength: 3 }), c, fc.constant(null));
const { filterArb } = fc.letrec<{ filterArb: unknown; cond: unknown }>((tie) => ({
  filterArb: fc.record({
    must: oneOrMany(tie('cond')),
    should: oneOrMany(tie('cond')),
    must_not: oneOrMany(tie('cond')),
    min_should: fc.record({ conditions: fc.array(tie('cond'), { maxLength: 3 }), min_count: fc.integer({ min: 1, max: 3 }) }),
  }, { requiredKeys: [] }),
  cond: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, leaf, tie('filterArb')),
}));

const payloadArb: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), int, fc.double({ min: -4, max: 4, noNaN: true }), str, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('a', 'b', 'c', 'x.y'), tie('v'), { maxKeys: 3 })),
})).v;
const pointArb = fc.record({ id: fc.nat(5), payload: fc.dictionary(fc.constantFrom('a', 'b', 'c'), payloadArb, { maxKeys: 3 }) });

/** Qdrant's meaning of a JSON filter, evaluated straight from the JSON (the clause rules only; leaves go through parse). */
function jsonMeaning(f: Record<string, unknown>, id: number, payload: unknown): boolean {
  const list = (v: unknown): unknown[] => (v === null || v === undefined ? [] : Array.isArray(v) ? v : [v]);
  const cond = (c: unknown): boolean => {
    const o = c as Record<string, unknown>;
    if ('key' in o || 'is_empty' in o || 'is_null' in o || 'has_id' in o) return matches(parseFilter({ must: [o] }), id, payload);
    return jsonMeaning(o, id, payload);
  };
  const should = list(f.should);
  const ms = f.min_should as { conditions: unknown[]; min_count: number } | undefined;
  return (should.length === 0 || should.some(cond))
    && (ms === undefined || ms.conditions.filter(cond).length >= ms.min_count)
    && list(f.must).every(cond)
    && !list(f.must_not).some(cond);
}

t.test('parse is total on generated valid filters and keeps their clause meaning', async () => {
  fc.assert(fc.property(filterArb, fc.array(pointArb, { minLength: 1, maxLength: 5 }), (f, points) => {
    const ast = parseFilter(f);
    return points.every((pt) => matches(ast, pt.id, pt.payload) === jsonMeaning(f as Record<string, unknown>, pt.id, pt.payload));
  }), { numRuns: 1500 });
});

t.test('parse is total on random paths made of valid steps', async (t) => {
  const step = fc.oneof(fc.stringMatching(/^[a-z0-9_-]{1,4}$/).map((s) => ({ text: `.${s}`, step: { key: s } })),
    fc.string({ maxLength: 4 }).filter((s) => !s.includes('"') && !s.includes('\\')).map((s) => ({ text: `."${s}"`, step: { key: s } })),
    fc.nat(1000).map((n) => ({ text: `[${n}]`, step: { index: n } })),
    fc.constant({ text: '[]', step: { each: true } }));
  fc.assert(fc.property(fc.stringMatching(/^[a-z0-9_-]{1,4}$/), fc.array(step, { maxLength: 5 }), (first, rest) => {
    const text = first + rest.map((s) => s.text).join('');
    t.strictSame(parsePath(text, 'k'), [{ key: first }, ...rest.map((s) => s.step)]);
  }), { numRuns: 300 });
});

tap.test('a filter compiled once runs as it is: compileFilter returns it, Index.search takes it', async (t) => {
  const { compileFilter, Index } = await import('../host/index.js');
  const filter = { must: [{ key: 'n', range: { lt: 5 } }] };
  const compiled = compileFilter(filter);
  t.equal(compileFilter(compiled), compiled, 'compiled: returned, not compiled again');
  t.same(compileFilter(filter).bytes, compiled.bytes, 'the same program as from the JSON');
  t.throws(() => compileFilter({ kind: 'quiver-filter', bytes: 'nope' }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'a lookalike is parsed as a filter, and refused');
  const index = new Index({ dim: 2, build: 'debug' });
  index.add([1, 2, 3, 4, 5, 6, 7, 8], Array.from({ length: 8 }, (_, i) => [i, 1]), Array.from({ length: 8 }, (_, i) => ({ n: i })));
  const q = [0, 1];
  t.same(index.search(q, 10, { filter: compiled }).ids, index.search(q, 10, { filter }).ids, 'the same hits');
  t.equal(index.count(compiled), 5);
  index.dispose();
});
