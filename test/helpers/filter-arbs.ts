// Arbitraries of payloads, key paths and filters (host/filter/ast.ts Cond)
// shared by the core's filter and payload index property tests.
import fc from 'fast-check';
import type { Cond } from '../../host/filter/ast.js';
import { matches } from '../../host/filter/model.js';
import { encodePayload } from '../../host/payload.js';
import type { Id } from '../../host/ids.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type PathStep = { key: string } | { each: true } | { index: number };
export interface Bounds { gt?: number; gte?: number; lt?: number; lte?: number }
export const encode = (v: Json): Uint8Array => encodePayload(v, 'payload')!;
export const model = (c: Cond, payload: Json | undefined, id: Id): boolean => matches(c, id, payload);

// ------------------------------------------------------------ arbitraries --
export const KEYS = ['a', 'b', 'c'];
export const WORDS = ['x', 'y', 'xy', '', 'é', '\ud800', 'x\udc00', 'b7e2f0a4-1111-4c3a-9d2e-0000000000aa', 'B7E2F0A411114C3A9D2E0000000000AB'];
/** UUID text in the forms ids take (host/ids.ts): what a uuid index counts. */
export const UUID_TEXT = /^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}|urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;
export const key = fc.constantFrom(...KEYS);
export const word = fc.constantFrom(...WORDS);
export const small = fc.integer({ min: -3, max: 3 });
export const scalar: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null), fc.boolean(), small, fc.constantFrom(0.5, -1.5, 2.25), word,
);
export const payloadArb: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(key, tie('v'), { maxKeys: 3 }) as fc.Arbitrary<Json>,
  ),
})).v;
export const pointPayload = fc.option(fc.dictionary(key, payloadArb, { maxKeys: 3 }) as fc.Arbitrary<Json>, { freq: 6, nil: undefined });

export const step: fc.Arbitrary<PathStep> = fc.oneof(
  { weight: 4, arbitrary: key.map((k) => ({ key: k })) },
  { weight: 2, arbitrary: fc.constant({ each: true as const }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 }).map((i) => ({ index: i })) },
);
export const pathArb = fc.tuple(key, fc.array(step, { maxLength: 2 })).map(([k, rest]) => [{ key: k }, ...rest] as PathStep[]);
export const boundsArb: fc.Arbitrary<Bounds> = fc.record(
  { gt: fc.integer({ min: -3, max: 3 }), gte: fc.double({ min: -3, max: 3, noNaN: true }), lt: fc.integer({ min: -2, max: 4 }), lte: fc.integer({ min: -3, max: 3 }) },
  { requiredKeys: [] },
);
export const ID_POOL: Id[] = [0, 1, 2, 3, 7, 40, 'b7e2f0a4-1111-4c3a-9d2e-0000000000aa', 'b7e2f0a4-1111-4c3a-9d2e-0000000000ab'];

export function idsOf(n: number): Id[] {
  return Array.from({ length: n }, (_, i) => (i % 5 === 4 ? `b7e2f0a4-1111-4c3a-9d2e-${(0xaa + i).toString(16).padStart(12, '0')}` : i));
}

export const leafArb: fc.Arbitrary<Cond> = fc.oneof(
  fc.record({ kind: fc.constant('keyword' as const), path: pathArb, any: fc.array(word, { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant('integer' as const), path: pathArb, any: fc.array(small, { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant('bool' as const), path: pathArb, value: fc.boolean() }),
  fc.record({ kind: fc.constant('exceptKeyword' as const), path: pathArb, none: fc.array(word, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('exceptInteger' as const), path: pathArb, none: fc.array(small, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('text' as const), path: pathArb, text: fc.constantFrom('x', 'y', '', 'é', '\udc00') }),
  fc.record({ kind: fc.constant('range' as const), path: pathArb, bounds: boundsArb }),
  fc.record({ kind: fc.constant('valuesCount' as const), path: pathArb, bounds: boundsArb }),
  fc.record({ kind: fc.constant('isEmpty' as const), path: pathArb }),
  fc.record({ kind: fc.constant('isNull' as const), path: pathArb }),
  fc.record({ kind: fc.constant('hasId' as const), ids: fc.subarray(ID_POOL.concat(idsOf(30).slice(20)) as (number | string)[]) }),
);
export const filterArb: fc.Arbitrary<Cond> = fc.letrec<{ c: Cond }>((tie) => ({
  c: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    fc.record({ kind: fc.constant('and' as const), of: fc.array(tie('c'), { maxLength: 3 }) }),
    fc.record({ kind: fc.constant('or' as const), of: fc.array(tie('c'), { maxLength: 3 }) }),
    fc.record({ kind: fc.constant('not' as const), of: tie('c') }),
    fc.record({ kind: fc.constant('atLeast' as const), min: fc.integer({ min: 0, max: 3 }), of: fc.array(tie('c'), { maxLength: 3 }) }),
  ),
})).c;

