import { ID_WORDS } from '../ids.js';

/**
 * The shard an id lives in. A pure function of the id and the shard count,
 * stable across processes and versions (a persisted dataset will rely on
 * it): FNV-1a over the id's packed words and kind.
 */
export function shardOf(ids: Uint32Array, i: number, shards: number): number {
  if (shards === 1) return 0;
  let h = 0x811c9dc5;
  for (let k = i * ID_WORDS; k < (i + 1) * ID_WORDS; k++) {
    const w = ids[k]!;
    for (let b = 0; b < 32; b += 8) {
      h ^= (w >>> b) & 0xff;
      h = Math.imul(h, 0x01000193);
    }
  }
  // final avalanche (murmur3's fmix32): FNV's low bits follow the input's
  // low bits, and a modulo by a power of two would see only those
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % shards;
}
