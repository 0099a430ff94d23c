import t from 'tap';
import fc from 'fast-check';
import { encodeUpsert, decodeUpsert, encodeDelete, decodeDelete } from '../host/storage/bodies.js';
import { SimFiles } from '../host/storage/sim-files.js';
import { Wal } from '../host/storage/wal.js';
import { Op } from '../host/storage/record.js';

const upsertArb = fc
  .record({ count: fc.nat(8), dim: fc.integer({ min: 1, max: 6 }), wordsPerId: fc.integer({ min: 1, max: 4 }) })
  .chain(({ count, dim, wordsPerId }) =>
    fc.record({
      count: fc.constant(count),
      dim: fc.constant(dim),
      ids: fc.array(fc.nat({ max: 0xffffffff }), { minLength: count * wordsPerId, maxLength: count * wordsPerId }).map((a) => Uint32Array.from(a)),
      vectors: fc.array(fc.float({ noNaN: true }), { minLength: count * dim, maxLength: count * dim }).map((a) => Float32Array.from(a)),
      payloads: fc.array(fc.option(fc.uint8Array({ maxLength: 13 }), { nil: null }), { minLength: count, maxLength: count }),
    }),
  );

t.test('upsert and delete bodies round trip, through the log too', async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: '/w', files: sim });
  const written: ReturnType<typeof decodeUpsert>[] = [];
  await fc.assert(
    fc.asyncProperty(upsertArb, async (u) => {
      const enc = encodeUpsert(u);
      if (enc.length % 4 !== 0) throw new Error('not 4-byte aligned');
      const back = decodeUpsert(enc);
      t.same({ ...back, ids: [...back.ids], vectors: [...back.vectors] }, { ...u, ids: [...u.ids], vectors: [...u.vectors] });
      await wal.append(Op.UPSERT, enc);
      written.push(u);
      const d = decodeDelete(encodeDelete({ count: u.count, ids: u.ids }));
      t.same([d.count, ...d.ids], [u.count, ...u.ids]);
    }),
    { numRuns: 100 },
  );
  let i = 0;
  for await (const r of wal.replay()) {
    const u = decodeUpsert(r.body);
    t.same([...u.vectors], [...written[i]!.vectors]);
    i++;
  }
  t.equal(i, written.length, 'every body replayed');
  await wal.close();
});

t.test('inconsistent or damaged bodies get coded errors', async (t) => {
  t.throws(() => encodeUpsert({ count: 2, dim: 3, ids: new Uint32Array(2), vectors: new Float32Array(5), payloads: [null, null] }), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /5 vector values for 2 x 3/ });
  t.throws(() => encodeUpsert({ count: 2, dim: 1, ids: new Uint32Array(2), vectors: new Float32Array(2), payloads: [null] }), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /1 payloads for 2 points/ });
  const good = encodeUpsert({ count: 2, dim: 2, ids: Uint32Array.of(1, 2), vectors: Float32Array.of(1, 2, 3, 4), payloads: [Uint8Array.of(9), null] });
  for (let cut = 0; cut < good.length; cut++) t.throws(() => decodeUpsert(good.subarray(0, cut)), { code: 'QUIVER_ERR_CORRUPT' }, `cut at ${cut}`);
  const longer = new Uint8Array(good.length + 4);
  longer.set(good);
  t.throws(() => decodeUpsert(longer), { code: 'QUIVER_ERR_CORRUPT', message: /4 bytes after the last payload/ });
  t.throws(() => decodeDelete(new Uint8Array(3)), { code: 'QUIVER_ERR_CORRUPT' });
  t.throws(() => decodeDelete(new Uint8Array(12)), { code: 'QUIVER_ERR_CORRUPT' });
});
