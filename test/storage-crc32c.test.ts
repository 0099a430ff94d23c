import t from 'tap';
import fc from 'fast-check';
import { crc32c } from '../host/storage/crc32c.js';

/** Bit-at-a-time reference: the definition, with no tables. */
function reference(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

t.test('known vectors', async (t) => {
  t.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283, 'check value of "123456789"');
  t.equal(crc32c(new Uint8Array(0)), 0, 'empty input');
  // RFC 3720, appendix B.4
  t.equal(crc32c(new Uint8Array(32)), 0x8a9136aa, '32 bytes of zeros');
  t.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43, '32 bytes of ones');
  t.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e, '32 incrementing bytes');
  t.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c, '32 decrementing bytes');
  const pdu = Uint8Array.from([
    0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
    0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  ]);
  t.equal(crc32c(pdu), 0xd9963a56, 'iSCSI read command PDU');
});

t.test('slice-by-8 equals the bitwise definition, at every length and alignment', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(7), (bytes, skip) => {
      const view = bytes.subarray(Math.min(skip, bytes.length));
      return crc32c(view) === reference(view);
    }),
    { numRuns: 500 },
  );
  t.pass('500 random inputs');
});

t.test('continuing a crc over a split equals one pass', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(200), (bytes, cut) => {
      const at = Math.min(cut, bytes.length);
      return crc32c(bytes.subarray(at), crc32c(bytes.subarray(0, at))) === crc32c(bytes);
    }),
    { numRuns: 300 },
  );
  t.pass('300 random splits');
});
