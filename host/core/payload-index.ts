/**
 * Payload indexes of one shard (assembly/pindex.ts): create, drop, list.
 * The core keeps them in the shard's arena and maintains them on every
 * write; a filtered search or count uses one by itself when it answers a
 * condition of the filter (docs/filtering.md, "Payload indexes"). Kept out
 * of shard.ts, through the Shard's public core() and bytes() hooks.
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { compilePath } from '../filter/compile.js';
import { parsePath } from '../filter/parse.js';
import { ERR_CORRUPT, ERR_INVALID, ERR_OUT_OF_MEMORY, LAYOUT, OK } from './abi.js';
import type { Shard } from './shard.js';
import { coreStatusError } from './status.js';

/** The field types an index can have (Qdrant's PayloadSchemaType, less text, geo and datetime). */
export type PayloadIndexType = 'keyword' | 'integer' | 'float' | 'bool' | 'uuid';
export const PAYLOAD_INDEX_TYPES: readonly PayloadIndexType[] = ['keyword', 'integer', 'float', 'bool', 'uuid'];
const TYPE_CODES: Record<PayloadIndexType, number> = {
  keyword: LAYOUT.PX_KEYWORD, integer: LAYOUT.PX_INTEGER, float: LAYOUT.PX_FLOAT, bool: LAYOUT.PX_BOOL, uuid: LAYOUT.PX_UUID,
};

/** One index: its field, its type, and the live points with a value of that type at the field. */
export interface PayloadIndexInfo {
  field: string;
  type: PayloadIndexType;
  points: number;
}

/** Indexes one shard (so one dataset) holds at most. */
export const MAX_PAYLOAD_INDEXES = LAYOUT.PX_MAX;
/** Longest field name, in UTF-8 bytes. */
export const MAX_FIELD_BYTES = LAYOUT.PX_NAME_MAX;

const invalid = (m: string): QuiverError => new QuiverError(ErrorCode.INVALID_ARGUMENT, m);
const utf8 = new TextEncoder();

/** A field name in the filter key syntax ("a.b", "tags[]", "a[0].b"); INVALID_ARGUMENT naming what is wrong. */
export function checkPayloadIndexField(field: unknown): string {
  parsePath(field, 'field');
  const bytes = utf8.encode(field as string).byteLength;
  if (bytes > MAX_FIELD_BYTES) throw invalid(`field: a field name is at most ${MAX_FIELD_BYTES} bytes (got ${bytes})`);
  return field as string;
}

export function checkPayloadIndexType(type: unknown): PayloadIndexType {
  if (typeof type === 'string' && (PAYLOAD_INDEX_TYPES as readonly string[]).includes(type)) return type as PayloadIndexType;
  throw invalid(`type: a payload index is one of ${PAYLOAD_INDEX_TYPES.join(', ')} (got ${JSON.stringify(type) ?? String(type)})`);
}

/** Stages [name bytes u32 | steps bytes u32 | steps u32 | name | steps] at io (pindex.ts stagedName). */
function stage(shard: Shard, field: string, withPath: boolean): void {
  const name = utf8.encode(field);
  const path = withPath ? compilePath(parsePath(field, 'field'), 'field') : { bytes: new Uint8Array(0), steps: 0 };
  const total = 12 + name.byteLength + path.bytes.byteLength;
  const io = shard.core((c) => c.ioReserve(total));
  if (io === 0) throw new QuiverError(ErrorCode.MEMORY_LIMIT, 'out of WASM memory (the 4 GiB limit of one shard)');
  const staged = shard.bytes(io, total);
  const view = new DataView(staged.buffer, staged.byteOffset, total);
  view.setUint32(0, name.byteLength, true);
  view.setUint32(4, path.bytes.byteLength, true);
  view.setUint32(8, path.steps, true);
  staged.set(name, 12);
  staged.set(path.bytes, 12 + name.byteLength);
}

/**
 * Creates the index on `field` and fills it from the stored payloads.
 * The same field and type again changes nothing; another type replaces
 * it. INVALID_ARGUMENT for a bad field or type or past
 * MAX_PAYLOAD_INDEXES, MEMORY_LIMIT when the shard's memory is out (the
 * indexes as they were), CORRUPT for a payload that is not QPB.
 */
export function createPayloadIndex(shard: Shard, field: string, type: PayloadIndexType): void {
  checkPayloadIndexField(field);
  const code = TYPE_CODES[checkPayloadIndexType(type)];
  stage(shard, field, true);
  const status = shard.core((c) => c.createPayloadIndex(code));
  if (status === OK) return;
  if (status === ERR_INVALID) {
    throw invalid(`a dataset has at most ${MAX_PAYLOAD_INDEXES} payload indexes`);
  }
  if (status === ERR_OUT_OF_MEMORY) throw new QuiverError(ErrorCode.MEMORY_LIMIT, `out of WASM memory for the index on ${JSON.stringify(field)}`);
  if (status === ERR_CORRUPT) throw coreStatusError(status, `indexing ${JSON.stringify(field)}`);
  throw coreStatusError(status, 'createPayloadIndex');
}

/** Drops the index on `field`; false when there was none. */
export function dropPayloadIndex(shard: Shard, field: string): boolean {
  checkPayloadIndexField(field);
  stage(shard, field, false);
  return shard.core((c) => c.dropPayloadIndex()) === 1;
}

/** The shard's indexes, sorted by field. */
export function payloadIndexes(shard: Shard): PayloadIndexInfo[] {
  const out: PayloadIndexInfo[] = [];
  const decoder = new TextDecoder();
  for (let i = 0; ; i++) {
    const e = shard.core((c) => c.payloadIndexEntry(i));
    if (e === 0) break;
    const head = shard.bytes(e, LAYOUT.PX_NAME);
    const view = new DataView(head.buffer, head.byteOffset, LAYOUT.PX_NAME);
    const code = view.getUint32(LAYOUT.PX_TYPE, true);
    const nameLen = view.getUint32(LAYOUT.PX_NAME_LEN, true);
    const points = view.getUint32(LAYOUT.PX_POINTS, true);
    const field = decoder.decode(shard.bytes(e + LAYOUT.PX_NAME, nameLen));
    const type = PAYLOAD_INDEX_TYPES.find((t) => TYPE_CODES[t] === code);
    if (type === undefined) throw new QuiverError(ErrorCode.CORRUPT, `payload index ${i} has an unknown type ${code}`);
    out.push({ field, type, points });
  }
  return out.sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
}
