/**
 * Payload updates: Qdrant's set_payload (with `key`), overwrite_payload,
 * delete_payload (keys) and clear_payload, by ids or by filter. Semantics
 * read from qdrant/qdrant 1.19.0 (docs/api.md, "Payload updates"):
 * lib/shard/src/update/payload.rs, lib/segment/src/types.rs (Payload::merge,
 * merge_by_key, remove), lib/segment/src/common/utils.rs (merge_map) and
 * lib/segment/src/json_path/mod.rs (value_set, value_remove).
 *
 * The host validates and encodes an update once (checkUpdate); each shard
 * logs it and applies it in log order (applyPayloadUpdate, also what replay
 * runs): read the payload, decode it, change it in JS, encode, replace.
 */
import { MAX_PAYLOAD_BYTES } from '../core/abi.js';
import { replacePayload } from '../core/payload-replace.js';
import type { Shard } from '../core/shard.js';
import { ErrorCode, QuiverError } from '../errors.js';
import type { Path } from '../filter/ast.js';
import { parsePath } from '../filter/parse.js';
import { ID_WORDS, unpackId } from '../ids.js';
import { decodePayload, encodePayload } from '../payload.js';
import { Op, type PayloadUpdateBody } from '../storage/index.js';

export type { PayloadUpdate, PointSelection } from './types.js';
import type { PayloadUpdate } from './types.js';

export type PayloadOp = typeof Op.SET_PAYLOAD | typeof Op.OVERWRITE_PAYLOAD | typeof Op.DELETE_PAYLOAD | typeof Op.CLEAR_PAYLOAD;

/** An update checked and encoded: the log op and its argument (QPB). */
export interface EncodedUpdate {
  op: PayloadOp;
  arg: Uint8Array;
}

const invalid = (m: string): QuiverError => new QuiverError(ErrorCode.INVALID_ARGUMENT, m);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function objectArg(v: unknown, where: string): Record<string, unknown> {
  if (!isObject(v)) throw invalid(`${where} must be an object (a payload), got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  return v;
}

const qpb = (v: unknown, where: string): Uint8Array => encodePayload(v, where) ?? new Uint8Array(0);

/** Checks an update and encodes its argument; a bad one is INVALID_ARGUMENT naming the field. */
export function checkUpdate(update: PayloadUpdate): EncodedUpdate {
  if (!isObject(update)) throw invalid('update must be an object: { set, key? }, { overwrite }, { deleteKeys } or { clear: true }');
  const kinds = ['set', 'overwrite', 'deleteKeys', 'clear'].filter((k) => k in update);
  if (kinds.length !== 1) throw invalid(`update must have exactly one of set, overwrite, deleteKeys, clear (got ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
  const u = update as Record<string, unknown>;
  for (const k of Object.keys(u)) {
    if (k !== kinds[0] && !(kinds[0] === 'set' && k === 'key')) throw invalid(`update.${k} is not a member of a ${kinds[0]} update`);
  }
  switch (kinds[0]) {
    case 'set': {
      const payload = objectArg(u.set, 'update.set');
      const key = u.key ?? null;
      if (key !== null) parsePath(key, 'update.key');
      return { op: Op.SET_PAYLOAD, arg: qpb([payload, key], 'update.set') };
    }
    case 'overwrite':
      return { op: Op.OVERWRITE_PAYLOAD, arg: qpb(objectArg(u.overwrite, 'update.overwrite'), 'update.overwrite') };
    case 'deleteKeys': {
      const keys = u.deleteKeys;
      if (!Array.isArray(keys)) throw invalid('update.deleteKeys must be an array of key paths');
      keys.forEach((k, i) => parsePath(k, `update.deleteKeys[${i}]`));
      return { op: Op.DELETE_PAYLOAD, arg: qpb(keys, 'update.deleteKeys') };
    }
    default:
      if (u.clear !== true) throw invalid('update.clear must be true');
      return { op: Op.CLEAR_PAYLOAD, arg: new Uint8Array(0) };
  }
}

/** Sets an own property (a key named "__proto__" included) without touching the prototype. */
function put(map: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(map, key, { value, writable: true, enumerable: true, configurable: true });
}

const has = (map: Record<string, unknown>, key: string): boolean => Object.prototype.hasOwnProperty.call(map, key);

/** Qdrant's merge_map: each key of src replaces dest's; a null value removes it. */
function mergeMap(dest: Record<string, unknown>, src: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(src)) {
    if (v === null) delete dest[k];
    else put(dest, k, v);
  }
}

/** Qdrant's json_path value_set: returns what `dest` becomes. */
function valueSet(path: Path, i: number, dest: unknown, src: Record<string, unknown>): unknown {
  const step = path[i];
  if (step === undefined) {
    const d = isObject(dest) ? dest : {};
    mergeMap(d, src);
    return d;
  }
  if ('key' in step) {
    const d = isObject(dest) ? dest : {};
    setIn(d, step.key, path, i + 1, src);
    return d;
  }
  if ('index' in step) {
    const d = Array.isArray(dest) ? dest : [];
    if (step.index < d.length) d[step.index] = valueSet(path, i + 1, d[step.index], src);
    return d;
  }
  if (!Array.isArray(dest)) return [];
  for (let j = 0; j < dest.length; j++) dest[j] = valueSet(path, i + 1, dest[j], src);
  return dest;
}

/** Qdrant's value_set_map: a missing key starts as null (so it becomes an object, or an array, as the path says). */
function setIn(map: Record<string, unknown>, key: string, path: Path, i: number, src: Record<string, unknown>): void {
  put(map, key, valueSet(path, i, has(map, key) ? map[key] : null, src));
}

/** Qdrant's value_remove: the last step removes a key, or empties an array (`a[]`); `a[n]` last removes nothing. */
function valueRemove(path: Path, i: number, value: unknown): void {
  const step = path[i]!;
  const last = i === path.length - 1;
  if ('key' in step) {
    if (!isObject(value) || !has(value, step.key)) return;
    if (last) delete value[step.key];
    else valueRemove(path, i + 1, value[step.key]);
  } else if ('index' in step) {
    if (!last && Array.isArray(value) && step.index < value.length) valueRemove(path, i + 1, value[step.index]);
  } else if (Array.isArray(value)) {
    if (last) value.length = 0;
    else for (const v of value) valueRemove(path, i + 1, v);
  }
}

/** An update decoded from its log argument, as a function of the old payload (a fresh copy it may change). */
export function updateFunction(op: number, arg: Uint8Array): (old: Record<string, unknown> | undefined) => Record<string, unknown> | undefined {
  const value = arg.length === 0 ? undefined : decodePayload(arg);
  switch (op) {
    case Op.SET_PAYLOAD: {
      const [src, key] = value as [Record<string, unknown>, string | null];
      if (key === null) {
        return (old) => {
          const d = old ?? {};
          mergeMap(d, src);
          return d;
        };
      }
      const path = parsePath(key, 'key');
      const first = (path[0] as { key: string }).key;
      return (old) => {
        const d = old ?? {};
        setIn(d, first, path, 1, src);
        return d;
      };
    }
    case Op.OVERWRITE_PAYLOAD:
      return () => ({ ...(value as Record<string, unknown>) });
    case Op.DELETE_PAYLOAD: {
      const paths = (value as string[]).map((k) => parsePath(k, 'key'));
      return (old) => {
        if (old !== undefined) for (const p of paths) valueRemove(p, 0, old);
        return old;
      };
    }
    case Op.CLEAR_PAYLOAD:
      return () => undefined;
    default:
      throw new QuiverError(ErrorCode.CORRUPT, `operation ${op} is not a payload update`);
  }
}

/** What a shard did with an update: how many points changed, or why none did. */
export type UpdateOutcome = { updated: number } | { error: QuiverError };

/**
 * Applies an update to the points `rows` of packed `ids` (by ids: every one
 * must exist, or none changes: NOT_FOUND naming the first missing), at most
 * `limit` of them (a PARTIAL record's count). Every new payload is encoded
 * and checked before the first is replaced, so a payload past the limit
 * changes nothing; out of memory part-way stops there (`applied` says how
 * many changed). Deterministic in the shard's state: replay runs the same.
 */
export function applyPayloadUpdate(shard: Shard, op: number, arg: Uint8Array, ids: Uint32Array, byIds: boolean, limit = Infinity): UpdateOutcome {
  const fn = updateFunction(op, arg);
  const n = ids.length / ID_WORDS;
  const rows: number[] = [];
  const next: (Uint8Array | undefined)[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n && rows.length < limit; i++) {
    const key = ids.subarray(i * ID_WORDS, (i + 1) * ID_WORDS).join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    const point = shard.get(ids, i);
    if (point === undefined) {
      if (!byIds) continue;
      const id = unpackId(ids, i * ID_WORDS, ids[i * ID_WORDS + 4] === 1);
      return { error: new QuiverError(ErrorCode.NOT_FOUND, `No point with id ${String(id)} found`) };
    }
    rows.push(i);
    const old = decodePayload(point.payload);
    // a library payload that is not an object has no keys to delete
    if (!isObject(old) && op === Op.DELETE_PAYLOAD) {
      next.push(point.payload);
      continue;
    }
    const result = fn(isObject(old) ? old : undefined);
    // {} and no payload are one thing (as an upsert stores them)
    const empty = result === undefined || Object.keys(result).length === 0;
    try {
      const bytes = empty ? undefined : encodePayload(result, 'the updated payload');
      if ((bytes?.byteLength ?? 0) > MAX_PAYLOAD_BYTES) {
        return { error: invalid(`the updated payload of a point would be ${bytes!.byteLength} bytes; the limit is ${MAX_PAYLOAD_BYTES}`) };
      }
      next.push(bytes);
    } catch (error) {
      return { error: error as QuiverError };
    }
  }
  let updated = 0;
  try {
    for (let j = 0; j < rows.length; j++) {
      if (replacePayload(shard, ids, rows[j]!, next[j])) updated++;
    }
  } catch (error) {
    const err = error as QuiverError;
    return { error: new QuiverError(err.code, err.message, { applied: updated, cause: err }) };
  }
  return { updated };
}

/** The live ids of a shard that the compiled filter `program` matches now, packed. */
export function matchingIds(shard: Shard, program: Uint8Array): Uint32Array {
  const filter = { kind: 'quiver-filter', bytes: program } as const;
  const live = shard.listIds();
  const out = new Uint32Array(live.length);
  let n = 0;
  for (let i = 0; i < live.length / ID_WORDS; i++) {
    if (shard.matches(live, i, filter)) out.set(live.subarray(i * ID_WORDS, (i + 1) * ID_WORDS), n++ * ID_WORDS);
  }
  return out.subarray(0, n * ID_WORDS);
}

export const isPayloadOp = (op: number): op is PayloadOp =>
  op === Op.SET_PAYLOAD || op === Op.OVERWRITE_PAYLOAD || op === Op.DELETE_PAYLOAD || op === Op.CLEAR_PAYLOAD;

/** Applies a logged update (live, or on replay: a filter selects where the record stands in the log). */
export function applyLoggedUpdate(shard: Shard, op: number, body: PayloadUpdateBody, limit = Infinity): UpdateOutcome {
  if (body.by === 'ids') return applyPayloadUpdate(shard, op, body.arg, body.ids, true, limit);
  return applyPayloadUpdate(shard, op, body.arg, matchingIds(shard, body.program), false, limit);
}
