// Payloads: the host's JSON (as UTF-8 bytes) stored next to the vectors, in
// the same arena, so they are counted, compacted and released with them.
//
//   PAYLOAD BLOB   len u32 | bytes[len]
//
// A blob of total size t = len + 4 comes from payload size class
// ceil(log2(t)) - 5 (32 B .. 32 KiB blocks), or from a run of slabs when
// larger. Freed at delete: a tombstoned node never needs its payload.

import {
  ALL_SMALL_CLASSES, CLASS_PAYLOAD, H_LIVE_PAYLOAD_BYTES, H_MAX_PAYLOAD, PAYLOAD_CLASS_BASE,
  PAYLOAD_MIN_SHIFT, headerPtr, hget, hset,
} from "./layout";
import { runAlloc, runFree, slabsFor, smallAlloc, smallFree, smallInit } from "./arena";

export function payloadInit(): void {
  for (let sc = PAYLOAD_CLASS_BASE; sc < ALL_SMALL_CLASSES; sc++) {
    smallInit(sc, 1 << (PAYLOAD_MIN_SHIFT + sc - PAYLOAD_CLASS_BASE));
  }
}

// The payload class for a blob of `total` bytes, or 0 when it takes a run.
function classFor(total: u32): u32 {
  const shift = max<u32>(PAYLOAD_MIN_SHIFT, 32 - clz<u32>(total - 1));
  const sc = PAYLOAD_CLASS_BASE + shift - PAYLOAD_MIN_SHIFT;
  return sc < ALL_SMALL_CLASSES ? sc : 0;
}

// A blob holding `len` bytes copied from `src`, or 0 when out of memory.
export function payloadStore(src: usize, len: u32): usize {
  const total = len + 4;
  const sc = classFor(total);
  const blob = sc != 0 ? smallAlloc(sc) : runAlloc(slabsFor(total), CLASS_PAYLOAD);
  if (blob == 0) return 0;
  store<u32>(blob, len);
  memory.copy(blob + 4, src, len);
  const p = headerPtr() + H_LIVE_PAYLOAD_BYTES;
  store<u64>(p, load<u64>(p) + <u64>total);
  if (total > hget(H_MAX_PAYLOAD)) hset(H_MAX_PAYLOAD, total);
  return blob;
}

export function payloadFree(blob: usize): void {
  if (blob == 0) return;
  const total = load<u32>(blob) + 4;
  const sc = classFor(total);
  if (sc != 0) smallFree(sc, blob); else runFree(blob, slabsFor(total), CLASS_PAYLOAD);
  const p = headerPtr() + H_LIVE_PAYLOAD_BYTES;
  store<u64>(p, load<u64>(p) - <u64>total);
}

export function payloadTotal(blob: usize): u32 {
  return blob == 0 ? 0 : load<u32>(blob) + 4;
}

export function livePayloadBytes(): u64 {
  return load<u64>(headerPtr() + H_LIVE_PAYLOAD_BYTES);
}
