/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * iSCSI, ext4, RocksDB and etcd's WAL. Slice-by-8: eight 256-entry tables
 * let the loop fold 8 input bytes per step with 8 lookups instead of 8
 * dependent shift/lookup rounds.
 *
 *   T[0][b]     = crc of the single byte b
 *   T[k][b]     = T[0][T[k-1][b] & 0xFF] ^ (T[k-1][b] >>> 8)
 *   step(c, 8 bytes b0..b7), with c ^= b0..b3 (little-endian):
 *     c = T[7][c&FF] ^ T[6][c>>8&FF] ^ T[5][c>>16&FF] ^ T[4][c>>>24]
 *       ^ T[3][b4] ^ T[2][b5] ^ T[1][b6] ^ T[0][b7]
 */

const POLY = 0x82f63b78;
const TABLES = buildTables();

function buildTables(): Uint32Array[] {
  const t: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[b] = c >>> 0;
  }
  t.push(t0);
  for (let k = 1; k < 8; k++) {
    const prev = t[k - 1]!;
    const next = new Uint32Array(256);
    for (let b = 0; b < 256; b++) next[b] = (t0[prev[b]! & 0xff]! ^ (prev[b]! >>> 8)) >>> 0;
    t.push(next);
  }
  return t;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/**
 * The CRC32C of `data`. Pass the result of a previous call as `crc` to
 * continue over more bytes: crc32c(b, crc32c(a)) === crc32c(a ++ b).
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc;
  let i = 0;
  const n = data.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    c =
      T7[c & 0xff]! ^
      T6[(c >>> 8) & 0xff]! ^
      T5[(c >>> 16) & 0xff]! ^
      T4[c >>> 24]! ^
      T3[data[i + 4]!]! ^
      T2[data[i + 5]!]! ^
      T1[data[i + 6]!]! ^
      T0[data[i + 7]!]!;
    i += 8;
  }
  while (i < n) c = T0[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
