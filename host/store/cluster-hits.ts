/**
 * A cluster search's hits (cluster-node.ts): how one node's answer for
 * some shards crosses the wire, and how the answers of several are merged.
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { ID_WORDS, packIds, unpackId, type Id } from '../ids.js';

export interface ClusterHits {
  ids: Id[];
  distances: number[];
}

/** Hits as bytes: [n u32][n packed ids, ID_WORDS u32 each][n f32 distances] (an id of any kind, a distance to the bit). */
export function encodeHits(h: ClusterHits): Uint8Array {
  const n = h.ids.length;
  const out = new Uint32Array(1 + n * ID_WORDS + n);
  out[0] = n;
  out.set(packIds(h.ids, false), 1);
  new Float32Array(out.buffer, (1 + n * ID_WORDS) * 4, n).set(h.distances);
  return new Uint8Array(out.buffer);
}

export function decodeHits(body: Uint8Array): ClusterHits {
  const u32 = new Uint32Array(new Uint8Array(body).buffer);
  const n = u32[0] ?? 0;
  if (body.byteLength !== (1 + n * ID_WORDS + n) * 4) throw new QuiverError(ErrorCode.CORRUPT, `a search answer of ${body.byteLength} bytes for ${n} hits`);
  const ids = Array.from({ length: n }, (_, i) => unpackId(u32, 1 + i * ID_WORDS, u32[1 + i * ID_WORDS + 4] === 1));
  return { ids, distances: Array.from(new Float32Array(u32.buffer, (1 + n * ID_WORDS) * 4, n)) };
}

/** The k nearest of several shards' answers (an id lives in one shard: no duplicates), ties by id. */
export function mergeTopK(parts: readonly ClusterHits[], k: number): ClusterHits {
  const all: { id: Id; d: number }[] = [];
  for (const p of parts) p.ids.forEach((id, i) => all.push({ id, d: p.distances[i]! }));
  all.sort((a, b) => a.d - b.d || (String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0));
  const top = all.slice(0, k);
  return { ids: top.map((x) => x.id), distances: top.map((x) => x.d) };
}
