/**
 * Arrow ingest: an Arrow IPC stream (or file) with columns
 *   id       unsigned or non-negative signed integers (any width, 64-bit
 *            exactly), or UTF-8 UUID strings (plain or dictionary-encoded)
 *   vector   FixedSizeList<Float32> of the collection's dimension
 *   payload  optional UTF-8 JSON objects (null: no payload)
 * decoded into what Store.insert takes. Everything is checked before
 * anything is written.
 */
import { DataType, tableFromIPC, type Data, type Table, type Vector } from 'apache-arrow';
import type { Id } from '../ids.js';
import { HttpError, parseId, wrongInput, type QdrantPayload } from './qdrant.js';

export const ARROW_STREAM = 'application/vnd.apache.arrow.stream';
export const ARROW_FILE = 'application/vnd.apache.arrow.file';

export interface ArrowPoints {
  ids: Id[];
  /** n * dim, row-major. */
  vectors: Float32Array;
  /** Per row, or undefined when the table has no payload column. */
  payloads: (QdrantPayload | undefined)[] | undefined;
}

function arrowError(message: string): HttpError {
  return new HttpError(400, `Format error in Arrow body: ${message}`);
}

export function readTable(body: Uint8Array): Table {
  let table: Table;
  try {
    table = tableFromIPC(body);
  } catch (err) {
    throw arrowError(`not a readable Arrow IPC stream or file (${(err as Error).message})`);
  }
  // bytes that are not Arrow at all read as a table without a schema
  if (table.schema.fields.length === 0) throw arrowError('not a readable Arrow IPC stream or file (no schema)');
  return table;
}

function isStringType(type: DataType): boolean {
  if (DataType.isDictionary(type)) return isStringType(type.dictionary);
  return DataType.isUtf8(type) || DataType.isLargeUtf8(type) || DataType.isUtf8View(type);
}

function readIds(col: Vector): Id[] {
  if (col.nullCount > 0) throw arrowError('column `id` has nulls');
  const type = col.type as DataType;
  const n = col.length;
  if (DataType.isInt(type)) {
    const values = col.toArray() as ArrayLike<number | bigint>;
    const ids: Id[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (v < 0) throw arrowError(`id[${i}] is ${String(v)}; ids are unsigned`);
      // numbers where exact, like the Store returns them
      ids[i] = typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    return ids;
  }
  if (isStringType(type)) {
    const ids: Id[] = new Array(n);
    for (let i = 0; i < n; i++) {
      try {
        ids[i] = parseId(col.get(i), `id[${i}]`);
      } catch (err) {
        throw arrowError((err as Error).message.replace(/^Format error in JSON body: /, ''));
      }
    }
    return ids;
  }
  throw arrowError(`column \`id\` is ${String(type)}; expected integers (uint64 for the full range) or UTF-8 UUIDs`);
}

function readVectors(col: Vector, dim: number): Float32Array {
  const type = col.type as DataType;
  if (!DataType.isFixedSizeList(type) || !DataType.isFloat(type.children[0]!.type) || type.children[0]!.type.precision !== 1) {
    throw arrowError(`column \`vector\` is ${String(type)}; expected FixedSizeList<Float32>`);
  }
  if (type.listSize !== dim) throw wrongInput(`Vector dimension error: expected dim: ${dim}, got ${type.listSize}`);
  if (col.nullCount > 0) throw arrowError('column `vector` has null vectors');
  const chunks = col.data as Data[];
  const out = chunks.length === 1 ? undefined : new Float32Array(col.length * dim);
  let at = 0;
  for (const d of chunks) {
    const child = d.children[0]!;
    if (child.nullCount > 0) throw arrowError('column `vector` has null values inside vectors');
    // a primitive child's values start at its own first element (Data.slice subarrays them)
    const values = (child.values as Float32Array).subarray(0, d.length * dim);
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v - v !== 0) throw wrongInput(`vector[${Math.floor((at + i) / dim)}][${(at + i) % dim}] is ${v}; vectors must be finite`);
    }
    if (out === undefined) return values;
    out.set(values, at);
    at += values.length;
  }
  return out ?? new Float32Array(0);
}

function readPayloads(col: Vector): (QdrantPayload | undefined)[] {
  if (!isStringType(col.type as DataType)) throw arrowError(`column \`payload\` is ${String(col.type)}; expected UTF-8 JSON strings`);
  const out: (QdrantPayload | undefined)[] = new Array(col.length);
  for (let i = 0; i < col.length; i++) {
    const text = col.get(i) as string | null;
    if (text === null || text === undefined || text === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw arrowError(`payload[${i}] is not JSON (${(err as Error).message})`);
    }
    if (value === null) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw arrowError(`payload[${i}] must be a JSON object or null`);
    if (Object.keys(value).length > 0) out[i] = value as QdrantPayload;
  }
  return out;
}

/** The points of an Arrow table, checked against the collection's dimension. */
export function decodeArrow(table: Table, dim: number): ArrowPoints {
  const idCol = table.getChild('id');
  const vectorCol = table.getChild('vector');
  if (idCol === null || vectorCol === null) {
    throw arrowError(`expected columns \`id\` and \`vector\` (and optionally \`payload\`); got ${table.schema.fields.map((f) => f.name).join(', ') || 'none'}`);
  }
  const payloadCol = table.getChild('payload');
  return {
    ids: readIds(idCol),
    vectors: readVectors(vectorCol, dim),
    payloads: payloadCol === null ? undefined : readPayloads(payloadCol),
  };
}
