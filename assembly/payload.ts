// Payloads: one QPB value per node (host/payload.ts encodes it, filter.ts reads it)
// stored next to the vectors, in the same arena, so they are counted, compacted and released with them.
//
//   PAYLOAD BLOB   0 len u32 | 4 bytes[len]
//
// A blob of total size t = len + 4 comes from payload size class
// ceil(log2(t)) - 5 (32 B .. 32 KiB blocks), or from a run of slabs when
// larger. Freed at delete: a tombstoned node never needs its payload.
//
// H_LIVE_PAYLOAD_BYTES counts what the blobs of live nodes hold: the whole
// block (or run), not len + 4. The slack past a blob is not reclaimable: a
// compaction puts the blob in a block of the same class again, so counting
// it as live keeps it out of the bytes the policy thinks a compaction wins.

import {
  ALL_SMALL_CLASSES, BLOB_BYTES, BLOB_LEN, CLASS_PAYLOAD, DEBUG, H_LIVE_PAYLOAD_BYTES, H_MAX_PAYLOAD,
  PAYLOAD_CLASS_BASE, PAYLOAD_MIN_SHIFT, SLAB_SHIFT, headerPtr, hget, hset,
} from "./layout";
import { runAlloc, runFree, slabsFor, smallAlloc, smallBlockBytes, smallFree, smallInit } from "./arena";
import { FLAG_UUID, H_IO, IO_ID_HI, IO_ID_LO, IO_KIND, IO_PAYLOAD_LEN, IO_VECTOR, MAX_PAYLOAD_BYTES, ERR_INVALID, ERR_NOT_FOUND, ERR_OUT_OF_MEMORY, NODE_PAYLOAD, NONE, OK } from "./layout";
import { idmapFind } from "./idmap";
import { nodePtr } from "./node";
import { pxAdd, pxMaintain, pxRemove, pxReserve } from "./pindex";

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

// Bytes a blob of `total` bytes occupies: its class's block, or its run.
function blockBytesFor(total: u32): u32 {
  const sc = classFor(total);
  return sc != 0 ? smallBlockBytes(sc) : slabsFor(total) << SLAB_SHIFT;
}

// @ts-ignore: decorator
@inline function addLive(delta: i64): void {
  const p = headerPtr() + H_LIVE_PAYLOAD_BYTES;
  store<u64>(p, <u64>(<i64>load<u64>(p) + delta));
}

// A blob holding `len` bytes copied from `src`, or 0 when out of memory.
export function payloadStore(src: usize, len: u32): usize {
  const total = BLOB_BYTES + len;
  const sc = classFor(total);
  const blob = sc != 0 ? smallAlloc(sc) : runAlloc(slabsFor(total), CLASS_PAYLOAD);
  if (blob == 0) return 0;
  store<u32>(blob, len, BLOB_LEN);
  memory.copy(blob + BLOB_BYTES, src, len);
  addLive(<i64>blockBytesFor(total));
  if (total > hget(H_MAX_PAYLOAD)) hset(H_MAX_PAYLOAD, total);
  return blob;
}

export function payloadFree(blob: usize): void {
  if (blob == 0) return;
  const total = payloadTotal(blob);
  const sc = classFor(total);
  if (sc != 0) smallFree(sc, blob); else runFree(blob, slabsFor(total), CLASS_PAYLOAD);
  addLive(-<i64>blockBytesFor(total));
  if (DEBUG) assert(<i64>livePayloadBytes() >= 0);
}

// len + BLOB_BYTES of the blob at `blob` (0 for none): what an export copies.
export function payloadTotal(blob: usize): u32 {
  return blob == 0 ? 0 : BLOB_BYTES + load<u32>(blob, BLOB_LEN);
}

// Pointer to the bytes of the blob at `blob`, and their length.
// @ts-ignore: decorator
@inline export function payloadBytesPtr(blob: usize): usize {
  return blob + BLOB_BYTES;
}
// @ts-ignore: decorator
@inline export function payloadLen(blob: usize): u32 {
  return load<u32>(blob, BLOB_LEN);
}

export function livePayloadBytes(): u64 {
  return load<u64>(headerPtr() + H_LIVE_PAYLOAD_BYTES);
}

// Replaces the payload of the live node of the staged id (io: the id, and
// IO_PAYLOAD_LEN bytes at IO_VECTOR; 0 = no payload) in place: vector and
// links untouched. The new blob is allocated before the old one is freed,
// so out of memory leaves the old payload as it was.
export function replacePayloadStaged(): i32 {
  const io = <usize>hget(H_IO);
  const len = load<u32>(io, IO_PAYLOAD_LEN);
  if (len > MAX_PAYLOAD_BYTES) return ERR_INVALID;
  const slot = idmapFind(load<u64>(io, IO_ID_LO), load<u64>(io, IO_ID_HI), load<u32>(io, IO_KIND) & FLAG_UUID);
  if (slot == NONE) return ERR_NOT_FOUND;
  const p = nodePtr(slot);
  const reserved = pxReserve(io + IO_VECTOR, len);
  if (reserved != OK) return reserved;
  let blob: usize = 0;
  if (len > 0) {
    blob = payloadStore(io + IO_VECTOR, len);
    if (blob == 0) return ERR_OUT_OF_MEMORY;
  }
  pxRemove(slot);
  payloadFree(<usize>load<u32>(p, NODE_PAYLOAD));
  store<u32>(p, <u32>blob, NODE_PAYLOAD);
  pxAdd(slot);
  pxMaintain();
  return OK;
}
