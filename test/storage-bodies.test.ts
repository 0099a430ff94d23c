import t from 'tap';
import fc from 'fast-check';
import {
  encodeUpsert, decodeUpsert, encodeDelete, decodeDelete, encodePayloadUpdate, decodePayloadUpdate, encodeIndex, decodeIndex, type PayloadUpdateBody, type IndexBody,
} from '../host/storage/bodies.js';
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

const payloadUpdateArb: fc.Arbitrary<PayloadUpdateBody> = fc.oneof(
  fc.record({ count: fc.nat(6), words: fc.integer({ min: 1, max: 5 }), arg: fc.uint8Array({ maxLength: 21 }) }).chain(({ count, words, arg }) =>
    fc.array(fc.nat({ max: 0xffffffff }), { minLength: count * words, maxLength: count * words })
      .map((a) => ({ by: 'ids' as const, count, ids: Uint32Array.from(a), arg }))),
  fc.record({ by: fc.constant('filter' as const), program: fc.uint8Array({ maxLength: 30 }), arg: fc.uint8Array({ maxLength: 21 }) }),
);

const plain = (b: PayloadUpdateBody): unknown => (b.by === 'ids' ? { ...b, ids: [...b.ids], arg: [...b.arg] } : { ...b, program: [...b.program], arg: [...b.arg] });

t.test('payload update bodies (by ids, by filter) round trip, through the log too', async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: '/p', files: sim });
  const written: PayloadUpdateBody[] = [];
  await fc.assert(
    fc.asyncProperty(payloadUpdateArb, async (b) => {
      const enc = encodePayloadUpdate(b);
      t.same(plain(decodePayloadUpdate(enc)), plain(b));
      await wal.append(Op.SET_PAYLOAD, enc);
      written.push(b);
    }),
    { numRuns: 100 },
  );
  let i = 0;
  for await (const r of wal.replay()) {
    t.equal(r.op, Op.SET_PAYLOAD);
    t.same(plain(decodePayloadUpdate(r.body)), plain(written[i]!));
    i++;
  }
  t.equal(i, written.length, 'every body replayed');
  await wal.close();
});

t.test('damaged payload update bodies get coded errors', async (t) => {
  for (const b of [
    { by: 'ids', count: 2, ids: Uint32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), arg: Uint8Array.of(7, 7, 7) },
    { by: 'filter', program: Uint8Array.of(1, 2, 3, 4, 5), arg: Uint8Array.of(9) },
  ] as PayloadUpdateBody[]) {
    const good = encodePayloadUpdate(b);
    for (let cut = 0; cut < good.length; cut++) t.throws(() => decodePayloadUpdate(good.subarray(0, cut)), { code: 'QUIVER_ERR_CORRUPT' }, `${b.by}: cut at ${cut}`);
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    t.throws(() => decodePayloadUpdate(longer), { code: 'QUIVER_ERR_CORRUPT' }, `${b.by}: a byte too many`);
  }
  const bad = encodePayloadUpdate({ by: 'filter', program: Uint8Array.of(1), arg: new Uint8Array(0) });
  bad[0] = 2;
  t.throws(() => decodePayloadUpdate(bad), { code: 'QUIVER_ERR_CORRUPT', message: /selector 2/ });
});

const indexArb: fc.Arbitrary<IndexBody> = fc.record(
  { field: fc.string({ unit: 'grapheme', maxLength: 20 }), type: fc.constantFrom('keyword', 'integer', 'float', 'bool', 'uuid') },
  { requiredKeys: ['field'] },
);

t.test('index bodies (CREATE_INDEX with a type, DELETE_INDEX without) round trip, through the log too', async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: '/i', files: sim });
  const written: IndexBody[] = [];
  await fc.assert(
    fc.asyncProperty(indexArb, async (b) => {
      const withType = b.type !== undefined;
      t.same(decodeIndex(encodeIndex(b), withType), b);
      await wal.append(withType ? Op.CREATE_INDEX : Op.DELETE_INDEX, encodeIndex(b));
      written.push(b);
    }),
    { numRuns: 100 },
  );
  let i = 0;
  for await (const r of wal.replay()) {
    const b = written[i++]!;
    t.equal(r.op, b.type === undefined ? Op.DELETE_INDEX : Op.CREATE_INDEX);
    t.same(decodeIndex(r.body, r.op === Op.CREATE_INDEX), b);
  }
  t.equal(i, written.length, 'every body replayed');
  await wal.close();
});

t.test('damaged index bodies get coded errors', async (t) => {
  for (const b of [{ field: 'city.name', type: 'keyword' }, { field: 'tags[]' }]) {
    const good = encodeIndex(b);
    const withType = b.type !== undefined;
    for (let cut = 0; cut < good.length; cut++) t.throws(() => decodeIndex(good.subarray(0, cut), withType), { code: 'QUIVER_ERR_CORRUPT' }, `${b.field}: cut at ${cut}`);
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    t.throws(() => decodeIndex(longer, withType), { code: 'QUIVER_ERR_CORRUPT' }, `${b.field}: a byte too many`);
  }
  const notUtf8 = encodeIndex({ field: 'ab' });
  notUtf8[4] = 0xff;
  t.throws(() => decodeIndex(notUtf8, false), { code: 'QUIVER_ERR_CORRUPT', message: /not UTF-8/ });
});
