/**
 * The filter AST: what host/filter/parse.ts makes of
 * Qdrant's JSON filter, what host/filter/compile.ts turns into the core's
 * program, and what host/filter/model.ts evaluates in plain JS. Semantics:
 * docs/filtering.md.
 */

/** One step of a payload path: an object key, every array element (`[]`), or one element (`[n]`). */
export type PathStep = { key: string } | { each: true } | { index: number };
/** `"a.b[].c"` -> `[{key:'a'},{key:'b'},{each:true},{key:'c'}]` */
export type Path = readonly PathStep[];
export interface Bounds { gt?: number; gte?: number; lt?: number; lte?: number }
export type Cond =
  | { kind: 'and'; of: readonly Cond[] }         // empty: true
  | { kind: 'or'; of: readonly Cond[] }          // empty: false (the parser maps an empty `should` to no clause)
  | { kind: 'not'; of: Cond }
  | { kind: 'atLeast'; min: number; of: readonly Cond[] }  // min_should
  | { kind: 'keyword'; path: Path; any: readonly string[] }     // match value (string) / match any (strings)
  | { kind: 'integer'; path: Path; any: readonly number[] }     // match value (int) / any (ints); safe integers
  | { kind: 'bool'; path: Path; value: boolean }
  | { kind: 'exceptKeyword'; path: Path; none: readonly string[] }
  | { kind: 'exceptInteger'; path: Path; none: readonly number[] }
  | { kind: 'text'; path: Path; text: string }                  // substring of a string value
  | { kind: 'range'; path: Path; bounds: Bounds }               // on int and float values
  | { kind: 'valuesCount'; path: Path; bounds: Bounds }
  | { kind: 'isEmpty'; path: Path }
  | { kind: 'isNull'; path: Path }
  | { kind: 'hasId'; ids: readonly (number | string)[] };       // ids as the store takes them (u32-range ints or UUID strings, normalised lower-case)
