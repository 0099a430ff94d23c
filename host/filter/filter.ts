/**
 * The one filter type of the public API: Qdrant's JSON filter, as the
 * library takes it (`index.search(q, k, { filter })`, `store.search(...)`)
 * and the server reads it from request bodies. `compileFilter` checks it
 * (parse.ts: a coded error naming what is wrong or unsupported) and turns it
 * into the core's program (compile.ts), once per call, whatever the number
 * of shards it runs on. Semantics: docs/filtering.md.
 */
import { compile, isCompiledFilter, type CompiledFilter } from './compile.js';
import { parseFilter } from './parse.js';
import type { Id } from '../ids.js';

export type { CompiledFilter };

export interface Filter {
  /** Every condition holds. */
  must?: Condition | Condition[] | null;
  /** At least one condition holds (no constraint when empty). */
  should?: Condition | Condition[] | null;
  /** No condition holds. */
  must_not?: Condition | Condition[] | null;
  /** At least `min_count` of the conditions hold. */
  min_should?: { conditions: Condition[]; min_count: number } | null;
}

export type Condition = FieldCondition | HasIdCondition | IsEmptyCondition | IsNullCondition | Filter;

export interface Bounds {
  gt?: number | null;
  gte?: number | null;
  lt?: number | null;
  lte?: number | null;
}

export interface FieldCondition {
  /** A payload path: `a.b`, `a[].b`, `a[0]`, `"key.with.dots"`. */
  key: string;
  match?: { value: string | number | boolean } | { any: string[] | number[] } | { except: string[] | number[] } | { text: string };
  range?: Bounds;
  values_count?: Bounds;
}

export interface HasIdCondition { has_id: Id[] }
export interface IsEmptyCondition { is_empty: { key: string } }
export interface IsNullCondition { is_null: { key: string } }

/** A filter checked and compiled for the core; `where` names it in error messages. */
/**
 * Checks and compiles a filter; a filter compiled before is returned as it
 * is, so a caller that runs one filter many times (or the server, which
 * checks a request's filter before it runs) compiles it once.
 */
export function compileFilter(filter: Filter | CompiledFilter | unknown, where = 'filter'): CompiledFilter {
  if (isCompiledFilter(filter)) return filter;
  return compile(parseFilter(filter, where));
}

/** As compileFilter; undefined and null (no filter) give undefined. */
export function compileOptionalFilter(filter: unknown, where = 'filter'): CompiledFilter | undefined {
  return filter === undefined || filter === null ? undefined : compileFilter(filter, where);
}
