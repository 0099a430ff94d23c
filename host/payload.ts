import { ErrorCode, QuiverError } from './errors.js';

/**
 * Payloads are JSON values stored next to their vector in the shard's arena
 * (so they are counted, compacted and released with the vectors), in the
 * binary form below so the core can evaluate filters on them without a JSON
 * parser. null or undefined means no payload.
 *
 * QPB, one value; numbers little endian, unaligned:
 *
 *     value   := tag u8, body
 *     0 null | 1 false | 2 true                          no body
 *     3 int     i64                                      Number.isSafeInteger (so -0 is int 0)
 *     4 float   f64                                      any other finite number
 *     5 string  u32 byteLen, UTF-8 bytes
 *     6 array   u32 count, u32 bodyBytes, count values
 *     7 object  u32 count, u32 bodyBytes, count entries   entry := u32 keyLen, key UTF-8, value
 *
 * bodyBytes (the bytes after it) lets a reader skip a container in O(1).
 * Object keys keep JSON.stringify's order. A string holding a lone UTF-16
 * surrogate (JSON can carry one as "\ud800") is written as WTF-8, the
 * surrogate's 3-byte sequence, so it comes back exactly; well-formed strings
 * are plain UTF-8.
 */
export type Payload = unknown;

export const PayloadTag = {
  NULL: 0,
  FALSE: 1,
  TRUE: 2,
  INT: 3,
  FLOAT: 4,
  STRING: 5,
  ARRAY: 6,
  OBJECT: 7,
} as const;

const encoder = new TextEncoder();
const fatalDecoder = new TextDecoder('utf-8', { fatal: true });

/** Containers nested deeper than this go the slow path (JSON.stringify finds cycles there). */
const FAST_DEPTH = 256;

class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  number(n: number): void {
    this.ensure(9);
    if (Number.isSafeInteger(n)) {
      this.buf[this.pos] = PayloadTag.INT;
      const hi = Math.floor(n / 4294967296);
      this.view.setUint32(this.pos + 1, n - hi * 4294967296, true);
      this.view.setInt32(this.pos + 5, hi, true);
    } else {
      this.buf[this.pos] = PayloadTag.FLOAT;
      this.view.setFloat64(this.pos + 1, n, true);
    }
    this.pos += 9;
  }

  /** u32 byte length, then the bytes. */
  text(s: string): void {
    const n = s.length;
    this.ensure(4 + n * 3);
    const buf = this.buf;
    const start = this.pos + 4;
    let i = 0;
    // ASCII, the common case, without a call out
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + i] = c;
    }
    let len = i;
    if (i < n) {
      if (isWellFormed(s)) len = i + encoder.encodeInto(s.slice(i), buf.subarray(start + i)).written;
      else len = writeWtf8(s, i, buf, start + i) - start;
    }
    this.view.setUint32(this.pos, len, true);
    this.pos = start + len;
  }

  /** Reserves a container header; returns where it is, for `close`. */
  open(tag: number, count: number): number {
    this.ensure(9);
    const at = this.pos;
    this.buf[at] = tag;
    this.view.setUint32(at + 1, count, true);
    this.pos += 9;
    return at;
  }

  close(at: number): void {
    this.view.setUint32(at + 5, this.pos - (at + 9), true);
  }
}

/** String.prototype.isWellFormed (Node 20; not in the ES2022 lib types). */
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** UTF-16 code units from `from` as WTF-8 at `at`; returns the end. */
function writeWtf8(s: string, from: number, buf: Uint8Array, at: number): number {
  let p = at;
  for (let i = from; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) buf[p++] = c;
    else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 63);
    } else if (c < 0x10000) {
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 63);
      buf[p++] = 0x80 | (c & 63);
    } else {
      buf[p++] = 0xf0 | (c >> 18);
      buf[p++] = 0x80 | ((c >> 12) & 63);
      buf[p++] = 0x80 | ((c >> 6) & 63);
      buf[p++] = 0x80 | (c & 63);
    }
  }
  return p;
}

/** Thrown inside the fast path when a value needs JSON.stringify's rules. */
const SLOW = Symbol('slow');

/**
 * Writes a value that is already plain JSON (as from JSON.parse), or throws
 * SLOW on anything JSON.stringify would change: toJSON, undefined, functions,
 * symbols, bigints, non-finite numbers, boxed primitives, class instances,
 * holes, or nesting deeper than FAST_DEPTH (which is where cycles end up).
 */
function writeValue(w: Writer, v: unknown, depth: number): void {
  switch (typeof v) {
    case 'string':
      w.u8(PayloadTag.STRING);
      w.text(v);
      return;
    case 'number':
      if (!Number.isFinite(v)) throw SLOW;
      w.number(v);
      return;
    case 'boolean':
      w.u8(v ? PayloadTag.TRUE : PayloadTag.FALSE);
      return;
    case 'object': {
      if (v === null) {
        w.u8(PayloadTag.NULL);
        return;
      }
      if (depth >= FAST_DEPTH) throw SLOW;
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) throw SLOW;
        const n = v.length;
        const at = w.open(PayloadTag.ARRAY, n);
        for (let i = 0; i < n; i++) writeValue(w, v[i], depth + 1);
        w.close(at);
        return;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw SLOW;
      const o = v as Record<string, unknown>;
      if (typeof o.toJSON === 'function') throw SLOW;
      const keys = Object.keys(o);
      const at = w.open(PayloadTag.OBJECT, keys.length);
      for (const k of keys) {
        w.text(k);
        writeValue(w, o[k], depth + 1);
      }
      w.close(at);
      return;
    }
    default:
      throw SLOW;
  }
}

/** Writes a value JSON.parse produced; no limits but the stack. */
function writePlain(w: Writer, v: unknown): void {
  if (typeof v === 'string') {
    w.u8(PayloadTag.STRING);
    w.text(v);
  } else if (typeof v === 'number') w.number(v);
  else if (typeof v === 'boolean') w.u8(v ? PayloadTag.TRUE : PayloadTag.FALSE);
  else if (v === null) w.u8(PayloadTag.NULL);
  else if (Array.isArray(v)) {
    const at = w.open(PayloadTag.ARRAY, v.length);
    for (const e of v) writePlain(w, e);
    w.close(at);
  } else {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    const at = w.open(PayloadTag.OBJECT, keys.length);
    for (const k of keys) {
      w.text(k);
      writePlain(w, o[k]);
    }
    w.close(at);
  }
}

let scratch: Writer | undefined = new Writer(1024);

function notSerialisable(where: string, err?: unknown): QuiverError {
  return err === undefined
    ? new QuiverError(ErrorCode.INVALID_ARGUMENT, `${where} is not JSON-serialisable`)
    : new QuiverError(ErrorCode.INVALID_ARGUMENT, `${where} is not JSON-serialisable: ${(err as Error).message}`, { cause: err });
}

/**
 * The QPB bytes of `value` as JSON.stringify sees it (toJSON, dropped
 * undefined members, NaN as null, ...). undefined or null: no payload.
 */
export function encodePayload(value: Payload, where: string): Uint8Array | undefined {
  if (value === undefined || value === null) return undefined;
  // a getter inside the value could call back in here: take the scratch writer
  const w = scratch ?? new Writer(256);
  scratch = undefined;
  w.pos = 0;
  try {
    try {
      writeValue(w, value, 0);
    } catch (err) {
      if (err !== SLOW) throw notSerialisable(where, err);
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch (err2) {
        throw notSerialisable(where, err2);
      }
      if (text === undefined) throw notSerialisable(where);
      w.pos = 0;
      try {
        writePlain(w, JSON.parse(text));
      } catch (err2) {
        throw notSerialisable(where, err2);
      }
    }
    return w.buf.slice(0, w.pos);
  } finally {
    // keep a writer that grew for one huge payload from pinning its memory
    if (w.buf.length <= 1 << 16) scratch = w;
  }
}

/** A string's bytes exactly as QPB stores them (UTF-8, WTF-8 for lone surrogates). */
export function payloadStringBytes(s: string): Uint8Array {
  const w = new Writer(4 + s.length * 3);
  w.text(s);
  return w.buf.slice(4, w.pos);
}

function corrupt(message: string): QuiverError {
  return new QuiverError(ErrorCode.CORRUPT, `payload bytes are damaged: ${message}`);
}

class Reader {
  readonly view: DataView;
  pos = 0;

  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw corrupt(`value at ${this.pos} runs past the end (${this.buf.length} bytes)`);
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  text(): string {
    const len = this.u32();
    this.need(len);
    const start = this.pos;
    this.pos += len;
    const buf = this.buf;
    if (len <= 32) {
      let s = '';
      for (let i = start; i < start + len; i++) {
        const c = buf[i]!;
        if (c >= 0x80) return decodeText(buf, start, start + len);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return decodeText(buf, start, start + len);
  }

  value(): unknown {
    this.need(1);
    const tag = this.buf[this.pos++];
    switch (tag) {
      case PayloadTag.NULL:
        return null;
      case PayloadTag.FALSE:
        return false;
      case PayloadTag.TRUE:
        return true;
      case PayloadTag.INT: {
        this.need(8);
        const v = this.view.getInt32(this.pos + 4, true) * 4294967296 + this.view.getUint32(this.pos, true);
        this.pos += 8;
        return v;
      }
      case PayloadTag.FLOAT: {
        this.need(8);
        const v = this.view.getFloat64(this.pos, true);
        this.pos += 8;
        return v;
      }
      case PayloadTag.STRING:
        return this.text();
      case PayloadTag.ARRAY: {
        const n = this.u32();
        const end = this.body();
        const out = new Array<unknown>(n);
        for (let i = 0; i < n; i++) out[i] = this.value();
        this.ended(end);
        return out;
      }
      case PayloadTag.OBJECT: {
        const n = this.u32();
        const end = this.body();
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = this.text();
          const v = this.value();
          // JSON.parse makes "__proto__" an own key; an assignment would set the prototype
          if (k === '__proto__') Object.defineProperty(out, k, { value: v, writable: true, enumerable: true, configurable: true });
          else out[k] = v;
        }
        this.ended(end);
        return out;
      }
      default:
        throw corrupt(`unknown tag ${tag} at ${this.pos - 1}`);
    }
  }

  body(): number {
    const bytes = this.u32();
    this.need(bytes);
    return this.pos + bytes;
  }

  ended(end: number): void {
    if (this.pos !== end) throw corrupt(`container ends at ${this.pos}, its header says ${end}`);
  }
}

function decodeText(buf: Uint8Array, start: number, end: number): string {
  const bytes = buf.subarray(start, end);
  try {
    return fatalDecoder.decode(bytes);
  } catch {
    return decodeWtf8(bytes);
  }
}

/** UTF-8 that may hold surrogate code points (what writeWtf8 writes). */
function decodeWtf8(b: Uint8Array): string {
  const units: number[] = [];
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    let cp: number;
    let n: number;
    if (c < 0x80) [cp, n] = [c, 1];
    else if (c >= 0xc0 && c < 0xe0) [cp, n] = [c & 0x1f, 2];
    else if (c >= 0xe0 && c < 0xf0) [cp, n] = [c & 0x0f, 3];
    else if (c >= 0xf0 && c < 0xf8) [cp, n] = [c & 0x07, 4];
    else throw corrupt(`invalid UTF-8 byte ${c}`);
    if (i + n > b.length) throw corrupt('truncated UTF-8 sequence');
    for (let j = 1; j < n; j++) {
      const d = b[i + j]!;
      if ((d & 0xc0) !== 0x80) throw corrupt(`invalid UTF-8 continuation byte ${d}`);
      cp = (cp << 6) | (d & 63);
    }
    i += n;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else units.push(cp);
  }
  let s = '';
  for (let i = 0; i < units.length; i += 4096) s += String.fromCharCode(...units.slice(i, i + 4096));
  return s;
}

/** The value `encodePayload` wrote (undefined for no payload). */
export function decodePayload(bytes: Uint8Array | undefined): Payload {
  if (bytes === undefined) return undefined;
  const r = new Reader(bytes);
  const v = r.value();
  if (r.pos !== bytes.length) throw corrupt(`${bytes.length - r.pos} bytes after the value`);
  return v;
}

/** Encodes a batch of payloads for n items (all before anything is written). */
export function encodePayloads(payloads: readonly Payload[] | undefined, n: number): (Uint8Array | undefined)[] | undefined {
  if (payloads === undefined) return undefined;
  if (!Array.isArray(payloads) || payloads.length !== n) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `payloads must be an array with one entry per id (${n})`);
  }
  return payloads.map((p, i) => encodePayload(p, `payloads[${i}]`));
}
