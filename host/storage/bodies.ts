/**
 * Encodings of log record bodies for the operations that carry points. The
 * log itself treats a body as opaque bytes; these are the shapes the host
 * writes and replays. All integers little-endian; sections are 4-byte
 * aligned so the id and vector sections can be viewed in place.
 *
 * UPSERT
 *   0       4     8           12
 *   +-------+-----+-----------+----------------------+----------------------+----------------------+
 *   | count | dim | idWords   | ids: u32 x idWords   | vectors: f32 x       | payloads: count x    |
 *   |  u32  | u32 | u32       | (packed id words)    |   count * dim        | [u32 len][bytes][pad]|
 *   +-------+-----+-----------+----------------------+----------------------+----------------------+
 *   A payload length of 0xFFFFFFFF means "no payload"; each payload's bytes
 *   are padded with zeros to a multiple of 4.
 *
 * DELETE
 *   +-------+-----------+----------------------+
 *   | count | idWords   | ids: u32 x idWords   |
 *   +-------+-----------+----------------------+
 *
 * SET_PAYLOAD, OVERWRITE_PAYLOAD, DELETE_PAYLOAD, CLEAR_PAYLOAD (one shape)
 *   0          4        8         12
 *   +----------+--------+---------+--------------------------+--------+---------------+
 *   | selector | count  | idWords | ids u32 x idWords, or    | argLen | arg bytes     |
 *   | u32 0/1  | u32    | u32     | the filter program [pad] | u32    | (opaque)      |
 *   +----------+--------+---------+--------------------------+--------+---------------+
 *   selector 0: by ids (count ids in idWords words); 1: by filter (count =
 *   the program's bytes, idWords 0), evaluated where the record stands in
 *   the log. `arg` is the update's argument as the host encodes it.
 *
 * CREATE_INDEX                              DELETE_INDEX
 *   0          4         8                    0          4
 *   +----------+---------+-------+------+     +----------+-------+
 *   | fieldLen | typeLen | field | type |     | fieldLen | field |
 *   | u32      | u32     | UTF-8 | UTF-8|     | u32      | UTF-8 |
 *   +----------+---------+-------+------+     +----------+-------+
 *   A payload index on a field (a key path as filters write it) and its type
 *   by name ("keyword", "integer", ...): names, not numbers, so the log reads
 *   the same whatever order the core lists its types in.
 *
 * `ids` is whatever packing of ids into u32 words the host uses (it knows
 * how many words each id takes); only `count` and the word count are checked.
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { transientU8 } from '../memory/transient.js';

const NO_PAYLOAD = 0xffffffff;

export interface UpsertBody {
  count: number;
  dim: number;
  ids: Uint32Array;
  vectors: Float32Array;
  /** One entry per point; null = no payload. */
  payloads: readonly (Uint8Array | null)[];
}

export interface DeleteBody {
  count: number;
  ids: Uint32Array;
}

const pad4 = (n: number): number => (n + 3) & ~3;

/**
 * bytes[from, to) in a new ArrayBuffer of its own. Not `bytes.slice`: on a
 * Node Buffer (a NATS message's data, an fs read) that is a view sharing the
 * pool, whose `.buffer` is the whole pool (a body from a JetStream message
 * decoded 16,384 id words from its 64 KiB pool).
 */
function copyOf(bytes: Uint8Array, from: number, to = bytes.length): Uint8Array {
  const out = new Uint8Array(Math.max(0, Math.min(to, bytes.length) - from));
  out.set(bytes.subarray(from, from + out.length));
  return out;
}

function bad(why: string): QuiverError {
  return new QuiverError(ErrorCode.CORRUPT, `not a valid log record body: ${why}`);
}

export function encodeUpsert(b: UpsertBody): Uint8Array {
  if (b.vectors.length !== b.count * b.dim) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `upsert body: ${b.vectors.length} vector values for ${b.count} x ${b.dim}`);
  }
  if (b.payloads.length !== b.count) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `upsert body: ${b.payloads.length} payloads for ${b.count} points`);
  }
  let size = 12 + b.ids.length * 4 + b.vectors.length * 4;
  for (const p of b.payloads) size += 4 + (p === null ? 0 : pad4(p.length));
  // a big part's body out of malloc, as the log's group buffer (memory/transient.ts)
  const out = transientU8(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, b.count, true);
  view.setUint32(4, b.dim, true);
  view.setUint32(8, b.ids.length, true);
  let at = 12;
  out.set(new Uint8Array(b.ids.buffer, b.ids.byteOffset, b.ids.byteLength), at);
  at += b.ids.byteLength;
  out.set(new Uint8Array(b.vectors.buffer, b.vectors.byteOffset, b.vectors.byteLength), at);
  at += b.vectors.byteLength;
  for (const p of b.payloads) {
    view.setUint32(at, p === null ? NO_PAYLOAD : p.length, true);
    at += 4;
    if (p !== null) {
      out.set(p, at);
      at += pad4(p.length);
    }
  }
  return out;
}

/** Decodes an upsert body; the typed arrays are copies (the body's buffer may be reused). */
export function decodeUpsert(body: Uint8Array): UpsertBody {
  if (body.length < 12) throw bad(`upsert body of ${body.length} bytes`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const count = view.getUint32(0, true);
  const dim = view.getUint32(4, true);
  const idWords = view.getUint32(8, true);
  let at = 12;
  const fixed = at + idWords * 4 + count * dim * 4;
  if (fixed + count * 4 > body.length) throw bad(`upsert body of ${body.length} bytes cannot hold ${count} x ${dim} and ${idWords} id words`);
  const ids = new Uint32Array(copyOf(body, at, at + idWords * 4).buffer);
  at += idWords * 4;
  const vectors = new Float32Array(copyOf(body, at, at + count * dim * 4).buffer);
  at += count * dim * 4;
  const payloads: (Uint8Array | null)[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.length) throw bad(`upsert body ends inside payload ${i}`);
    const len = view.getUint32(at, true);
    at += 4;
    if (len === NO_PAYLOAD) {
      payloads.push(null);
      continue;
    }
    if (at + len > body.length) throw bad(`payload ${i} of ${len} bytes runs past the body`);
    payloads.push(copyOf(body, at, at + len));
    at += pad4(len);
  }
  if (at !== body.length) throw bad(`${body.length - at} bytes after the last payload`);
  return { count, dim, ids, vectors, payloads };
}

export function encodeDelete(b: DeleteBody): Uint8Array {
  const out = new Uint8Array(8 + b.ids.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, b.count, true);
  view.setUint32(4, b.ids.length, true);
  out.set(new Uint8Array(b.ids.buffer, b.ids.byteOffset, b.ids.byteLength), 8);
  return out;
}

export function decodeDelete(body: Uint8Array): DeleteBody {
  if (body.length < 8) throw bad(`delete body of ${body.length} bytes`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const count = view.getUint32(0, true);
  const idWords = view.getUint32(4, true);
  if (8 + idWords * 4 !== body.length) throw bad(`delete body of ${body.length} bytes for ${idWords} id words`);
  return { count, ids: new Uint32Array(copyOf(body, 8).buffer) };
}

/** Of the record at `lsn`, only the first `applied` rows took effect. */
export interface PartialBody {
  lsn: number;
  applied: number;
}

export function encodePartial(b: PartialBody): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setUint32(0, b.lsn % 4294967296, true);
  view.setUint32(4, Math.floor(b.lsn / 4294967296), true);
  view.setUint32(8, b.applied, true);
  return out;
}

export function decodePartial(body: Uint8Array): PartialBody {
  if (body.length !== 12) throw bad(`partial body of ${body.length} bytes`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return { lsn: view.getUint32(4, true) * 4294967296 + view.getUint32(0, true), applied: view.getUint32(8, true) };
}

/** A payload update: which points (ids, or a filter program) and the update's argument. */
export type PayloadUpdateBody =
  | { by: 'ids'; count: number; ids: Uint32Array; arg: Uint8Array }
  | { by: 'filter'; program: Uint8Array; arg: Uint8Array };

export function encodePayloadUpdate(b: PayloadUpdateBody): Uint8Array {
  const sel = b.by === 'ids' ? new Uint8Array(b.ids.buffer, b.ids.byteOffset, b.ids.byteLength) : b.program;
  const out = new Uint8Array(12 + pad4(sel.length) + 4 + b.arg.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, b.by === 'ids' ? 0 : 1, true);
  view.setUint32(4, b.by === 'ids' ? b.count : b.program.length, true);
  view.setUint32(8, b.by === 'ids' ? b.ids.length : 0, true);
  out.set(sel, 12);
  const at = 12 + pad4(sel.length);
  view.setUint32(at, b.arg.length, true);
  out.set(b.arg, at + 4);
  return out;
}

/** Decodes a payload update body; the arrays are copies. */
export function decodePayloadUpdate(body: Uint8Array): PayloadUpdateBody {
  if (body.length < 16) throw bad(`payload update body of ${body.length} bytes`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const selector = view.getUint32(0, true);
  const count = view.getUint32(4, true);
  const idWords = view.getUint32(8, true);
  if (selector > 1) throw bad(`payload update selector ${selector}`);
  const selBytes = selector === 0 ? idWords * 4 : count;
  if (selector === 1 && idWords !== 0) throw bad(`a payload update by filter with ${idWords} id words`);
  const at = 12 + pad4(selBytes);
  if (at + 4 > body.length) throw bad(`payload update body of ${body.length} bytes cannot hold a selector of ${selBytes} bytes`);
  const argLen = view.getUint32(at, true);
  if (at + 4 + argLen !== body.length) throw bad(`payload update body of ${body.length} bytes for an argument of ${argLen} bytes`);
  const arg = copyOf(body, at + 4);
  if (selector === 0) return { by: 'ids', count, ids: new Uint32Array(copyOf(body, 12, 12 + selBytes).buffer), arg };
  return { by: 'filter', program: copyOf(body, 12, 12 + selBytes), arg };
}

/** A payload index created (CREATE_INDEX: field and type) or dropped (DELETE_INDEX: field only). */
export interface IndexBody {
  field: string;
  type?: string;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function text(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw bad(`the ${what} of an index record is not UTF-8`);
  }
}

/** CREATE_INDEX with a type, DELETE_INDEX without. */
export function encodeIndex(b: IndexBody): Uint8Array {
  const field = utf8.encode(b.field);
  const type = b.type === undefined ? undefined : utf8.encode(b.type);
  const head = type === undefined ? 4 : 8;
  const out = new Uint8Array(head + field.length + (type?.length ?? 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, field.length, true);
  if (type !== undefined) view.setUint32(4, type.length, true);
  out.set(field, head);
  if (type !== undefined) out.set(type, head + field.length);
  return out;
}

/** Decodes a CREATE_INDEX body (`withType`) or a DELETE_INDEX body. */
export function decodeIndex(body: Uint8Array, withType: boolean): IndexBody {
  const head = withType ? 8 : 4;
  if (body.length < head) throw bad(`index body of ${body.length} bytes`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const fieldLen = view.getUint32(0, true);
  const typeLen = withType ? view.getUint32(4, true) : 0;
  if (head + fieldLen + typeLen !== body.length) throw bad(`index body of ${body.length} bytes for a field of ${fieldLen} and a type of ${typeLen} bytes`);
  const field = text(body.subarray(head, head + fieldLen), 'field');
  return withType ? { field, type: text(body.subarray(head + fieldLen), 'type') } : { field };
}
