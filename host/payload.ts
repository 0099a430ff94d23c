import { ErrorCode, QuiverError } from './errors.js';

/**
 * Payloads are JSON values stored next to their vector, as UTF-8 bytes in
 * the shard's arena (so they are counted, compacted and released with the
 * vectors). null or undefined means no payload.
 */
export type Payload = unknown;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodePayload(value: Payload, where: string): Uint8Array | undefined {
  if (value === undefined || value === null) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `${where} is not JSON-serialisable: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `${where} is not JSON-serialisable`);
  return encoder.encode(text);
}

export function decodePayload(bytes: Uint8Array | undefined): Payload {
  return bytes === undefined ? undefined : JSON.parse(decoder.decode(bytes));
}

/** Encodes a batch of payloads for n items (all before anything is written). */
export function encodePayloads(payloads: readonly Payload[] | undefined, n: number): (Uint8Array | undefined)[] | undefined {
  if (payloads === undefined) return undefined;
  if (!Array.isArray(payloads) || payloads.length !== n) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `payloads must be an array with one entry per id (${n})`);
  }
  return payloads.map((p, i) => encodePayload(p, `payloads[${i}]`));
}
