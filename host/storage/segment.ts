/**
 * A log segment: a file of back-to-back records (record.ts), named by the
 * LSN of its first record, zero-padded so names sort as numbers:
 *
 *   00000000000000000001.wal   records 1 .. 4711
 *   00000000000000004712.wal   records 4712 .. (the active segment)
 *
 *   +----------+----------+-----+----------+
 *   | record   | record   | ... | record   |   no header, no padding, no footer
 *   +----------+----------+-----+----------+
 *
 * A segment is read through a bounded window (1 MiB, grown only for a
 * larger record), so replay never holds a whole segment in memory.
 */
import type { FileHandle } from './files.js';
import { decodeHeader, MAX_BODY, RECORD_HEADER, recordCrcOk, type LogRecord } from './record.js';

const NAME = /^(\d{20})\.wal$/;
/**
 * The read window's starting size: under glibc's 128 KiB mmap threshold, so
 * it comes from an arena and freeing it does not raise the threshold (which
 * would leave later medium buffers in arenas that are never trimmed: every
 * open of a store cost ~100 KiB of RSS with 1 MiB). A bigger record grows it.
 */
const WINDOW = 64 << 10;

export function segmentName(firstLsn: number): string {
  return `${String(firstLsn).padStart(20, '0')}.wal`;
}

/** The first LSN a segment file name stands for, or undefined if it is not a segment. */
export function parseSegmentName(name: string): number | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const lsn = Number(m[1]);
  return Number.isSafeInteger(lsn) && lsn >= 1 ? lsn : undefined;
}

/** A record that does not parse where one should start. */
export class BadRecord extends Error {
  constructor(
    readonly offset: number,
    readonly why: string,
    /** The record's checksum holds: it is whole, so it cannot be a torn write. */
    readonly whole = false,
  ) {
    super(`byte ${offset}: ${why}`);
  }
}

/** Reads `[offset, offset + n)` of a file through a reusable buffer. */
export class Window {
  private buf = new Uint8Array(WINDOW);
  private start = 0;
  private len = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  /** The bytes, valid until the next call; null if they run past `size`. */
  async get(offset: number, n: number): Promise<Uint8Array | null> {
    if (offset + n > this.size) return null;
    if (offset < this.start || offset + n > this.start + this.len) {
      if (n > this.buf.length) this.buf = new Uint8Array(Math.max(n, this.buf.length * 2));
      const want = Math.min(this.buf.length, this.size - offset);
      let got = 0;
      while (got < want) {
        const r = await this.handle.read(this.buf.subarray(got), offset + got, want - got);
        if (r === 0) break;
        got += r;
      }
      this.start = offset;
      this.len = got;
      if (got < n) return null;
    }
    return this.buf.subarray(offset - this.start, offset - this.start + n);
  }
}

export interface ScannedRecord extends LogRecord {
  /** Byte offset of the record in its segment, and of the byte after it. */
  offset: number;
  end: number;
}

/**
 * The records of a segment in order, starting at byte 0 with LSN `expected`.
 * Throws BadRecord at the first record that is short, fails its checksum or
 * breaks the LSN sequence. Bodies are copies unless `bodies` is false
 * (then they are empty: a scan that only finds the end).
 */
export async function* scanSegment(w: Window, expected: number, bodies = true): AsyncGenerator<ScannedRecord> {
  let at = 0;
  while (at < w.size) {
    const head = await w.get(at, RECORD_HEADER);
    if (!head) throw new BadRecord(at, `${w.size - at} byte(s) at the end, less than a record header`);
    const h = decodeHeader(head, 0);
    if (h.length > MAX_BODY) throw new BadRecord(at, `record length ${h.length} exceeds the largest record (${MAX_BODY})`);
    const end = at + RECORD_HEADER + h.length;
    const rec = await w.get(at, RECORD_HEADER + h.length);
    if (!rec) throw new BadRecord(at, `record of ${end - at} bytes runs past the end of the file (${w.size} bytes)`);
    if (!recordCrcOk(rec, 0, h)) throw new BadRecord(at, 'checksum mismatch');
    if (h.lsn !== expected) throw new BadRecord(at, `LSN ${h.lsn} where LSN ${expected} belongs`, true);
    if (h.op === 0) throw new BadRecord(at, 'op 0 is not an operation', true);
    yield { lsn: h.lsn, op: h.op, body: bodies ? rec.slice(RECORD_HEADER) : new Uint8Array(0), offset: at, end };
    at = end;
    expected++;
  }
}

/**
 * Whether a whole record (checksum valid, LSN at least `expected`) starts
 * anywhere after byte `offset`: the proof that a bad record is damage in
 * the middle of the log and not the torn end of the last write.
 */
export async function wholeRecordAfter(w: Window, offset: number, expected: number): Promise<number> {
  const maxLsn = expected + Math.ceil((w.size - offset) / RECORD_HEADER);
  for (let p = offset + 1; p + RECORD_HEADER <= w.size; p++) {
    const head = await w.get(p, RECORD_HEADER);
    if (!head) break;
    const h = decodeHeader(head, 0);
    if (!(h.lsn >= expected && h.lsn <= maxLsn) || h.op === 0 || h.length > w.size - p - RECORD_HEADER) continue;
    const rec = await w.get(p, RECORD_HEADER + h.length);
    if (rec && recordCrcOk(rec, 0, h)) return p;
  }
  return -1;
}
