import t from 'tap';
import fc from 'fast-check';
import { Store, type Id } from '../host/index.js';
import { packIds } from '../host/ids.js';
import { compareIds, IdOrder, sortIds } from '../host/store/id-order.js';

// scroll pages through a dataset in id order (integers ascending, then
// UUIDs by bytes) from per-shard sorted id lists kept in the workers. The
// model: a sorted JS set of the live ids, after any mix of inserts,
// upserts, deletes and compactions between pages.

const DIM = 4;
const uuidOf = (n: number): string => {
  const hex = (n * 2654435761 >>> 0).toString(16).padStart(8, '0');
  return `${hex}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
};
/** The model's id order: what the store must reproduce. */
function modelOrder(a: Id, b: Id): number {
  const ka = typeof a === 'string' ? 1 : 0;
  const kb = typeof b === 'string' ? 1 : 0;
  if (ka !== kb) return ka - kb;
  if (ka === 1) return (a as string).toLowerCase() < (b as string).toLowerCase() ? -1 : a === b ? 0 : 1;
  return BigInt(a) < BigInt(b) ? -1 : BigInt(a) === BigInt(b) ? 0 : 1;
}
const keyOf = (id: Id): string => (typeof id === 'string' ? id : `#${String(id)}`);
const vec = (id: Id, version: number): number[] => {
  const h = [...keyOf(id)].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, version);
  return [h % 97, (h >>> 7) % 89, version, 1];
};

t.test('id order: sortIds and compareIds agree with the model order', async (t) => {
  fc.assert(fc.property(
    fc.uniqueArray(fc.oneof(
      fc.nat({ max: 1000 }),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.nat({ max: 1000 }).map(uuidOf),
    ), { selector: keyOf, maxLength: 200 }),
    (ids) => {
      const packed = packIds(ids, false);
      const sorted = sortIds(packed);
      for (let i = 1; i < ids.length; i++) {
        if (compareIds(sorted, i - 1, sorted, i) >= 0) return false;
      }
      const expected = [...ids].sort(modelOrder).map((id) => keyOf(typeof id === 'bigint' && id < 2n ** 53n ? Number(id) : id));
      const back = packIds(expected.map((k) => (k.startsWith('#') ? BigInt(k.slice(1)) : k)), false);
      t.same(Array.from(sorted), Array.from(back));
      return true;
    },
  ), { numRuns: 200 });
});

t.test('IdOrder: a delta of inserts merges on read and folds in when it grows', async (t) => {
  const order = new IdOrder(packIds([5, 1, 9], false));
  const seen = (): number[] => {
    const out: number[] = [];
    order.walk(undefined, 0, (ids, row) => {
      out.push(ids[row * 5]!);
      return true;
    });
    return out;
  };
  order.inserted(packIds([7, 1, 3], false), 0, 3);
  t.same(seen(), [1, 3, 5, 7, 9], 'a re-inserted id is listed once');
  const many = Array.from({ length: 5000 }, (_, i) => 100 + i);
  order.inserted(packIds(many, false), 0, many.length);
  const all = seen();
  t.equal(all.length, 5 + 5000);
  t.same(all.slice(0, 6), [1, 3, 5, 7, 9, 100]);
  const from: number[] = [];
  order.walk(packIds([6], false), 0, (ids, row) => {
    from.push(ids[row * 5]!);
    return from.length < 3;
  });
  t.same(from, [7, 9, 100], 'a seek lands on the first id not below the offset');
});

t.test('scroll matches a sorted model through inserts, upserts, deletes and compactions', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 }, tuner: { tunerIntervalMs: 0 } });
  t.teardown(() => store.close());
  let run = 0;
  const idArb = fc.oneof(fc.nat({ max: 300 }), fc.constant(2n ** 63n + 5n), fc.nat({ max: 60 }).map(uuidOf));
  const step = fc.oneof(
    fc.record({ kind: fc.constant('insert' as const), ids: fc.uniqueArray(idArb, { selector: keyOf, minLength: 1, maxLength: 40 }) }),
    fc.record({ kind: fc.constant('delete' as const), ids: fc.array(idArb, { maxLength: 30 }) }),
    fc.record({ kind: fc.constant('compact' as const) }),
    fc.record({ kind: fc.constant('page' as const), limit: fc.integer({ min: 1, max: 25 }) }),
  );
  await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 3 }), async (steps, shards) => {
    const name = `m${run++}`;
    await store.createDataset(name, { dim: DIM, M: 4, efConstruction: 16, shards });
    const model = new Map<string, { id: Id; version: number }>();
    let version = 0;
    // one scroll in progress: its next offset, and the last id it returned
    let cursor: Id | undefined;
    let last: Id | undefined;
    try {
      for (const s of steps) {
        if (s.kind === 'insert') {
          version++;
          await store.insert(name, s.ids, s.ids.map((id) => vec(id, version)), { payloads: s.ids.map(() => ({ v: version })) });
          for (const id of s.ids) model.set(keyOf(id), { id, version });
        } else if (s.kind === 'delete') {
          await store.delete(name, s.ids);
          for (const id of s.ids) model.delete(keyOf(id));
        } else if (s.kind === 'compact') {
          await store.compact(name);
        } else {
          const page = await store.scroll(name, { limit: s.limit, ...(cursor === undefined ? {} : { offset: cursor }) });
          const sorted = [...model.values()].sort((a, b) => modelOrder(a.id, b.id));
          const from = cursor === undefined ? 0 : sorted.findIndex((e) => modelOrder(e.id, cursor!) >= 0);
          const start = from < 0 ? sorted.length : from;
          const want = sorted.slice(start, start + s.limit);
          t.same(page.points.map((p) => keyOf(p.id)), want.map((e) => keyOf(e.id)), 'the page holds the next live ids in order');
          t.same(page.points.map((p) => (p.payload as { v: number }).v), want.map((e) => e.version), 'each with its latest payload');
          t.same(page.points.map((p) => Array.from(p.vector!)), want.map((e) => vec(e.id, e.version)), 'and its latest vector');
          const next = sorted[start + s.limit];
          t.same(page.nextOffset === undefined ? undefined : keyOf(page.nextOffset), next === undefined ? undefined : keyOf(next.id));
          if (last !== undefined && page.points.length > 0) t.ok(modelOrder(page.points[0]!.id, last) > 0, 'pages move forward');
          last = page.points.at(-1)?.id ?? last;
          cursor = page.nextOffset;
          if (cursor === undefined) last = undefined;
        }
      }
      // a full scroll from the start returns every live point once
      const seen: string[] = [];
      let offset: Id | undefined;
      do {
        const page = await store.scroll(name, { limit: 7, withVector: false, withPayload: false, ...(offset === undefined ? {} : { offset }) });
        seen.push(...page.points.map((p) => keyOf(p.id)));
        offset = page.nextOffset;
      } while (offset !== undefined);
      t.same(seen, [...model.values()].sort((a, b) => modelOrder(a.id, b.id)).map((e) => keyOf(e.id)));
    } finally {
      await store.dropDataset(name);
    }
  }), { numRuns: 40 });
});

t.test('a full scroll of a dataset larger than the delta threshold, across a compaction', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  await store.createDataset('big', { dim: DIM, M: 4, efConstruction: 8, shards: 3 });
  const n = 20_000;
  const ids = Uint32Array.from({ length: n }, (_, i) => (i * 7919) % n);
  await store.insert('big', ids, new Float32Array(n * DIM).map((_, i) => i % 13));
  const first = await store.scroll('big', { limit: 100, withVector: false });
  t.same(first.points.map((p) => p.id), Array.from({ length: 100 }, (_, i) => i));
  // the lists are built now: later inserts go through the delta
  const more = Uint32Array.from({ length: 6000 }, (_, i) => n + 6000 - i);
  await store.insert('big', more, new Float32Array(6000 * DIM).fill(1));
  await store.delete('big', Uint32Array.from({ length: n / 2 }, (_, i) => i * 2));
  const mid = await store.scroll('big', { offset: 19_990, limit: 10, withVector: false, withPayload: false });
  t.same(mid.points.map((p) => p.id), [19_991, 19_993, 19_995, 19_997, 19_999, 20_001, 20_002, 20_003, 20_004, 20_005]);
  await store.compact('big');
  let count = 0;
  let prev = -1;
  let offset: Id | undefined;
  do {
    const page = await store.scroll('big', { limit: 500, withVector: false, withPayload: false, ...(offset === undefined ? {} : { offset }) });
    for (const p of page.points) {
      if ((p.id as number) <= prev) t.fail(`out of order at ${String(p.id)}`);
      prev = p.id as number;
    }
    count += page.points.length;
    offset = page.nextOffset;
  } while (offset !== undefined);
  t.equal(count, n / 2 + 6000, 'every live point once, none deleted');
});

t.test('close() between pages: a page in flight completes, the next call is CLOSED', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  await store.createDataset('c', { dim: DIM, M: 4, efConstruction: 8 });
  await store.insert('c', [1, 2, 3, 4, 5], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]]);
  const first = await store.scroll('c', { limit: 2 });
  const page = store.scroll('c', { offset: first.nextOffset!, limit: 2 });
  const closed = store.close();
  const got = await page;
  t.same(got.points.map((p) => p.id), [3, 4], 'the page started before close() finishes with its points');
  t.equal(got.nextOffset, 5);
  await t.rejects(store.scroll('c', { offset: got.nextOffset!, limit: 2 }), { code: 'QUIVER_ERR_CLOSED' });
  t.equal((await closed).forced, false);
});
