/**
 * Replacing one point's payload in place (assembly/payload.ts
 * `replacePayloadStaged`): the vector and the graph stay as they are; only
 * the payload blob changes. Kept out of shard.ts, through the Shard's
 * public core() and bytes() hooks.
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { ID_WORDS } from '../ids.js';
import { ERR_INVALID, ERR_NOT_FOUND, ERR_OUT_OF_MEMORY, FLAG_UUID, IO, MAX_PAYLOAD_BYTES, OK } from './abi.js';
import type { Shard } from './shard.js';
import { coreStatusError } from './status.js';

/** Word of a packed id (ids.ts) that holds its kind. */
const ID_KIND_WORD = 4;

/**
 * Makes `payload` (QPB bytes; undefined: none) the payload of id `i` of a
 * packed list. False when the id is not in the shard. Out of memory is
 * QUIVER_ERR_MEMORY_LIMIT and leaves the old payload as it was.
 */
export function replacePayload(shard: Shard, ids: Uint32Array, i: number, payload: Uint8Array | undefined): boolean {
  const len = payload?.byteLength ?? 0;
  if (len > MAX_PAYLOAD_BYTES) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `a payload is ${len} bytes; the limit is ${MAX_PAYLOAD_BYTES}`);
  const io = shard.core((c) => c.ioReserve(IO.VECTOR + len));
  if (io === 0) throw new QuiverError(ErrorCode.MEMORY_LIMIT, 'out of WASM memory (the 4 GiB limit of one shard)');
  const staged = shard.bytes(io, IO.VECTOR + len);
  const view = new DataView(staged.buffer, staged.byteOffset, staged.byteLength);
  const at = i * ID_WORDS;
  // the id's 16 bytes (lo u64, hi u64: ids.ts's first four words), then its kind
  for (let w = 0; w < ID_KIND_WORD; w++) view.setUint32(IO.ID_LO + w * 4, ids[at + w]!, true);
  view.setUint32(IO.KIND, ids[at + ID_KIND_WORD] === 1 ? FLAG_UUID : 0, true);
  view.setUint32(IO.PAYLOAD_LEN, len, true);
  if (len > 0) staged.set(payload!, IO.VECTOR);
  const status = shard.core((c) => c.replacePayload());
  if (status === ERR_NOT_FOUND) return false;
  if (status === ERR_OUT_OF_MEMORY) throw new QuiverError(ErrorCode.MEMORY_LIMIT, 'out of WASM memory for a payload (the old payload is unchanged)');
  if (status === ERR_INVALID) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `a payload is ${len} bytes; the limit is ${MAX_PAYLOAD_BYTES}`);
  if (status !== OK) throw coreStatusError(status, 'replacePayload');
  return true;
}
