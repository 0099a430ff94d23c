/**
 * One write-ahead log record. All integers little-endian.
 *
 *   0        4        8                16   17
 *   +--------+--------+----------------+----+------------------+
 *   | length | crc32c |      lsn       | op | body (length B)  |
 *   |  u32   |  u32   |      u64       | u8 |  opaque bytes    |
 *   +--------+--------+----------------+----+------------------+
 *            \________ crc32c covers bytes 8 .. 17 + length ____/
 *
 * `length` is the body's length (0 allowed). The CRC covers the LSN, the
 * op and the body, so a record read at the wrong place or a flipped bit
 * anywhere but `length` fails it; a damaged `length` makes the CRC run
 * over the wrong bytes and fail as well (or run past the file's end, which
 * the log tells apart from a torn tail: see wal.ts).
 */
import { crc32c } from './crc32c.js';

export const REC_LENGTH = 0;
export const REC_CRC = REC_LENGTH + 4;
export const REC_LSN = REC_CRC + 4;
export const REC_OP = REC_LSN + 8;
export const REC_BODY = REC_OP + 1;
/** Header bytes before the body. */
export const RECORD_HEADER = REC_BODY;
/** Largest body a record may carry (a bigger `length` is damage, not data). */
export const MAX_BODY = 256 * 1024 * 1024;
/** LSNs stay exact JavaScript numbers. */
export const MAX_LSN = Number.MAX_SAFE_INTEGER;

/** Operations. 0 is never valid; numbers are never reused; later issues add more. */
export const Op = {
  UPSERT: 1,
  DELETE: 2,
  SET_PAYLOAD: 3,
  OVERWRITE_PAYLOAD: 4,
  DELETE_PAYLOAD: 5,
  CLEAR_PAYLOAD: 6,
  CREATE_INDEX: 7,
  DELETE_INDEX: 8,
  /** Of the record at `lsn`, only the first `applied` rows took effect (an insert cut short by a cancel or a memory limit). */
  PARTIAL: 9,
  /** Delete every live point a compiled filter matches (the program's bytes), evaluated where the record stands in the log. */
  DELETE_WHERE: 10,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

export interface LogRecord {
  lsn: number;
  op: number;
  body: Uint8Array;
}

const TWO_32 = 4294967296;

/** Encodes a record into `out` at `at`; returns the offset after it. */
export function encodeRecord(out: Uint8Array, at: number, lsn: number, op: number, body: Uint8Array): number {
  const view = new DataView(out.buffer, out.byteOffset + at, RECORD_HEADER);
  view.setUint32(REC_LENGTH, body.length, true);
  view.setUint32(REC_LSN, lsn % TWO_32, true);
  view.setUint32(REC_LSN + 4, Math.floor(lsn / TWO_32), true);
  view.setUint8(REC_OP, op);
  out.set(body, at + REC_BODY);
  const end = at + RECORD_HEADER + body.length;
  view.setUint32(REC_CRC, crc32c(out.subarray(at + REC_LSN, end)), true);
  return end;
}

/** What decodeHeader found at an offset. */
export interface RecordHeader {
  length: number;
  crc: number;
  lsn: number;
  op: number;
}

/** Reads the header at `bytes[at..at+17)`; lsn is NaN if it is not a safe integer. */
export function decodeHeader(bytes: Uint8Array, at: number): RecordHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, RECORD_HEADER);
  const hi = view.getUint32(REC_LSN + 4, true);
  return {
    length: view.getUint32(REC_LENGTH, true),
    crc: view.getUint32(REC_CRC, true),
    lsn: hi >= 0x200000 ? NaN : hi * TWO_32 + view.getUint32(REC_LSN, true),
    op: view.getUint8(REC_OP),
  };
}

/** The CRC check over a whole record at `bytes[at..]` whose header is `h`. */
export function recordCrcOk(bytes: Uint8Array, at: number, h: RecordHeader): boolean {
  return crc32c(bytes.subarray(at + REC_LSN, at + RECORD_HEADER + h.length)) === h.crc;
}
