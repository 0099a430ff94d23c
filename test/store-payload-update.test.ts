// Payload updates (issue 10): Qdrant's set_payload (with `key`),
// overwrite_payload, delete_payload and clear_payload, by ids and by filter,
// through the Store on 3 shards over 2 threads, checked against a plain-JS
// model (retrieve, and filtered count with host/filter/model.ts selecting),
// after a compaction, and after a SIGKILL of a durable store mid-sequence.
// The worked cases are read from qdrant/qdrant 1.19.0 (docs/api.md,
// "Payload updates").
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QuiverError, Store, type Filter, type PayloadUpdate } from '../host/index.js';
import { matches } from '../host/filter/model.js';
import { parseFilter, parsePath } from '../host/filter/parse.js';
import type { Path } from '../host/filter/ast.js';
import { Shard } from '../host/core/shard.js';
import { replacePayload } from '../host/core/payload-replace.js';
import { encodePayload } from '../host/payload.js';
import { packIds } from '../host/ids.js';
import { buildDist, DurableChild } from './fixtures/durable-driver.js';

const DIM = 4;
const N = 120;
const SHARDS = 3;
const IDS = Array.from({ length: N }, (_, i) => i);
const vec = (id: number): number[] => [Math.sin(id + 1), Math.cos(id * 3 + 1), (id % 7) / 7 + 0.1, 1];

type Obj = Record<string, unknown>;
type Model = Map<number, Obj | undefined>;

// ------------------------------------------------------------------ the model (Qdrant's json_path value_set / value_remove, written out plainly)

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)) as T);

function merge(dest: Obj, src: Obj): Obj {
  for (const k of Object.keys(src)) {
    if (src[k] === null) delete dest[k];
    else dest[k] = clone(src[k]);
  }
  return dest;
}

function setAt(dest: unknown, path: Path, src: Obj): unknown {
  if (path.length === 0) return merge(isObj(dest) ? dest : {}, src);
  const [step, ...rest] = path as [Path[number], ...Path[number][]];
  if ('key' in step) {
    const d = isObj(dest) ? dest : {};
    d[step.key] = setAt(step.key in d ? d[step.key] : null, rest, src);
    return d;
  }
  if ('index' in step) {
    const d = Array.isArray(dest) ? dest : [];
    if (step.index < d.length) d[step.index] = setAt(d[step.index], rest, src);
    return d;
  }
  return Array.isArray(dest) ? dest.map((v) => setAt(v, rest, src)) : [];
}

function removeAt(value: unknown, path: Path): void {
  const [step, ...rest] = path as [Path[number], ...Path[number][]];
  if ('key' in step) {
    if (!isObj(value) || !(step.key in value)) return;
    if (rest.length === 0) delete value[step.key];
    else removeAt(value[step.key], rest);
  } else if ('index' in step) {
    if (rest.length > 0 && Array.isArray(value) && step.index < value.length) removeAt(value[step.index], rest);
  } else if (Array.isArray(value)) {
    if (rest.length === 0) value.splice(0);
    else value.forEach((v) => removeAt(v, rest));
  }
}

function modelApply(old: Obj | undefined, u: PayloadUpdate): Obj | undefined {
  let next: Obj | undefined;
  if ('set' in u) next = u.key === undefined || u.key === null ? merge(clone(old) ?? {}, u.set) : setAt(clone(old) ?? {}, parsePath(u.key, 'k'), u.set) as Obj;
  else if ('overwrite' in u) next = clone(u.overwrite);
  else if ('deleteKeys' in u) {
    next = clone(old);
    if (next !== undefined) for (const k of u.deleteKeys) removeAt(next, parsePath(k, 'k'));
  } else next = undefined;
  return next === undefined || Object.keys(next).length === 0 ? undefined : next;
}

/** JSON with sorted keys: key order is not part of the comparison. */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'undefined';
}

// ------------------------------------------------------------------ worked cases from Qdrant's source

t.test('the semantics read from Qdrant, case by case', async (t) => {
  const store = await Store.open({ threads: 1 });
  t.teardown(() => store.close());
  await store.createDataset('w', { dim: DIM, shards: 1 });
  const cases: [unknown, PayloadUpdate, unknown, string][] = [
    [{ b: 2, c: 3 }, { set: { a: 1, b: null } }, { c: 3, a: 1 }, 'merge_map: a null value removes the key'],
    [undefined, { set: { a: 1 } }, { a: 1 }, 'set on a point without payload'],
    [{ a: 1 }, { set: { b: { c: 1 } }, key: 'x.y' }, { a: 1, x: { y: { b: { c: 1 } } } }, 'key: missing objects are created on the way'],
    [{ x: 5 }, { set: { b: 1 }, key: 'x' }, { x: { b: 1 } }, 'key: a non-object at the path becomes an object'],
    [{ x: { b: 1, c: 2 } }, { set: { b: null, d: 4 }, key: 'x' }, { x: { c: 2, d: 4 } }, 'key: merged into the object there, nulls remove'],
    [{ arr: [{ k: 1 }, { k: 2 }] }, { set: { z: 0 }, key: 'arr[1]' }, { arr: [{ k: 1 }, { k: 2, z: 0 }] }, 'key a[1]: that element'],
    [{ arr: [{ k: 1 }] }, { set: { z: 0 }, key: 'arr[5]' }, { arr: [{ k: 1 }] }, 'key a[5] past the end: nothing'],
    [{ arr: [{ k: 1 }, 7] }, { set: { z: 0 }, key: 'arr[]' }, { arr: [{ k: 1, z: 0 }, { z: 0 }] }, 'key a[]: every element (a non-object becomes one)'],
    [{ arr: 5 }, { set: { z: 0 }, key: 'arr[]' }, { arr: [] }, 'key a[] on a non-array: an empty array'],
    [{ a: 1, b: { c: 2, d: 3 } }, { deleteKeys: ['b.c', 'missing'] }, { a: 1, b: { d: 3 } }, 'delete: a nested key; a missing one is no error'],
    [{ arr: [1, 2] }, { deleteKeys: ['arr[]'] }, { arr: [] }, 'delete a[]: the array is emptied, not removed'],
    [{ arr: [1, 2] }, { deleteKeys: ['arr[0]'] }, { arr: [1, 2] }, 'delete a[0]: indices are not deleted'],
    [{ arr: [{ k: 1, j: 2 }, { k: 3 }] }, { deleteKeys: ['arr[].k'] }, { arr: [{ j: 2 }, {}] }, 'delete a[].k: from every element'],
    [{ a: 1 }, { deleteKeys: ['a'] }, undefined, 'delete the last key: no payload left'],
    [{ a: 1, b: 2 }, { overwrite: { c: null } }, { c: null }, 'overwrite: replaced as given (nulls kept)'],
    [{ a: 1 }, { clear: true }, undefined, 'clear'],
  ];
  for (const [i, [before, update, after, what]] of cases.entries()) {
    await store.insert('w', [i], [vec(i)], { payloads: [before] });
    const r = await store.updatePayload('w', { ids: [i] }, update);
    t.equal(r.updated, 1, `${what}: one point updated`);
    const [rec] = await store.retrieve('w', [i], { withVector: false });
    t.equal(canon(rec!.payload), canon(after), what);
    t.equal(canon(modelApply(before as Obj | undefined, update)), canon(after), `${what} (the model agrees)`);
  }
});

t.test('an absent id: NOT_FOUND and nothing changed; bad updates: INVALID_ARGUMENT and nothing changed', async (t) => {
  const store = await Store.open({ threads: 1 });
  t.teardown(() => store.close());
  await store.createDataset('e', { dim: DIM, shards: 1 });
  await store.insert('e', [1, 2], [vec(1), vec(2)], { payloads: [{ a: 1 }, { a: 2 }] });
  const err = await store.updatePayload('e', { ids: [1, 99, 2] }, { set: { b: 1 } }).catch((e: unknown) => e);
  t.ok(err instanceof QuiverError && err.code === 'QUIVER_ERR_NOT_FOUND', 'NOT_FOUND');
  t.match((err as Error).message, /No point with id 99 found/);
  const bad: [unknown, unknown][] = [
    [{ ids: [1] }, { set: [1, 2] }], [{ ids: [1] }, { set: null }], [{ ids: [1] }, { set: { a: 1 }, key: 'a..b' }],
    [{ ids: [1] }, { overwrite: 'x' }], [{ ids: [1] }, { deleteKeys: 'a' }], [{ ids: [1] }, { deleteKeys: ['[0]'] }],
    [{ ids: [1] }, { clear: false }], [{ ids: [1] }, { set: {}, overwrite: {} }], [{ ids: [1] }, {}], [{ ids: [1] }, { set: {}, extra: 1 }],
    [{ filter: { must: [{ key: 'a', geo_radius: {} }] } }, { clear: true }], [{}, { clear: true }], [{ ids: [1], filter: {} }, { clear: true }],
    [{ ids: [-1] }, { clear: true }],
  ];
  for (const [select, update] of bad) {
    const e = await store.updatePayload('e', select as never, update as never).catch((x: unknown) => x);
    t.ok(e instanceof QuiverError && e.code === 'QUIVER_ERR_INVALID_ARGUMENT', `${JSON.stringify([select, update])}: ${(e as Error)?.message}`);
  }
  const recs = await store.retrieve('e', [1, 2], { withVector: false });
  t.same(recs.map((r) => r.payload), [{ a: 1 }, { a: 2 }], 'nothing changed');
});

t.test('the core swaps the blob in place: vector and graph untouched, payload bytes accounted', async (t) => {
  const shard = Shard.create({ dim: DIM, metric: 'l2', M: 4, efConstruction: 16, ef: 16, build: 'debug' });
  t.teardown(() => shard.dispose());
  const ids = packIds(IDS.slice(0, 50), false);
  const flat = Float32Array.from(IDS.slice(0, 50).flatMap(vec));
  for (let i = 0; i < 50; i++) shard.insert(ids, i, flat, i * DIM, encodePayload({ i }, 'p'));
  const base = shard.stats().payloadBytes;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 50; i++) t.ok(replacePayload(shard, ids, i, encodePayload({ i, big: 'x'.repeat(200 * round) }, 'p')) || t.fail('absent'));
  }
  t.ok(shard.stats().payloadBytes > base, 'bigger payloads hold more bytes');
  for (let i = 0; i < 50; i++) replacePayload(shard, ids, i, undefined);
  t.equal(shard.stats().payloadBytes, 0, 'no payload left: none counted');
  t.ok(shard.integrity().ok, 'the graph is intact');
  t.same(Array.from(shard.get(ids, 7)!.vector), Array.from(flat.subarray(7 * DIM, 8 * DIM)), 'the vector is untouched');
  t.equal(replacePayload(shard, packIds([999], false), 0, encodePayload({ a: 1 }, 'p')), false, 'an absent id: false');
});

// ------------------------------------------------------------------ random sequences

const keyArb = fc.constantFrom('a', 'b', 'c');
const leafArb = fc.oneof(fc.constantFrom<unknown>(null, 'x', 'y', 1, 2, true), fc.array(fc.constantFrom<unknown>('x', 1, null), { maxLength: 3 }));
const valueArb: fc.Arbitrary<unknown> = fc.oneof({ depthSize: 'small' }, leafArb,
  fc.dictionary(keyArb, leafArb, { maxKeys: 2 }), fc.array(fc.dictionary(keyArb, leafArb, { maxKeys: 2 }), { maxLength: 2 }));
const payloadArb = fc.dictionary(keyArb, valueArb, { maxKeys: 3 });
const pathArb = fc.constantFrom('a', 'b', 'a.b', 'a[]', 'a[0]', 'a[].c', 'c.a', 'b[1].a');
const updateArb: fc.Arbitrary<PayloadUpdate> = fc.oneof(
  fc.record({ set: payloadArb }),
  fc.record({ set: payloadArb, key: pathArb }),
  fc.record({ overwrite: payloadArb }),
  fc.record({ deleteKeys: fc.array(pathArb, { maxLength: 3 }) }),
  fc.constant({ clear: true as const }),
);
const filterArb: fc.Arbitrary<Filter> = fc.oneof(
  fc.record({ must: fc.tuple(fc.record({ key: fc.constantFrom('a', 'b', 'a[]', 'a.b', 'c'), match: fc.record({ value: fc.constantFrom<string | number | boolean>('x', 'y', 1, true) }) })) }),
  fc.record({ must: fc.tuple(fc.record({ is_empty: fc.record({ key: fc.constantFrom('a', 'b', 'c', 'a.b') }) })) }),
  fc.record({ must_not: fc.tuple(fc.record({ key: fc.constantFrom('a', 'b'), range: fc.record({ gte: fc.constantFrom(1, 2) }) })) }),
  fc.record({ must: fc.tuple(fc.record({ has_id: fc.array(fc.nat(N - 1), { maxLength: 20 }) })) }),
);
type Step = { kind: 'upsert'; ids: number[]; payloads: Obj[] } | { kind: 'update'; update: PayloadUpdate; ids?: number[]; filter?: Filter };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('upsert' as const), ids: fc.uniqueArray(fc.nat(N - 1), { minLength: 1, maxLength: 10 }) })
    .chain((s) => fc.array(payloadArb, { minLength: s.ids.length, maxLength: s.ids.length }).map((payloads) => ({ ...s, payloads }))),
  fc.record({ kind: fc.constant('update' as const), update: updateArb, ids: fc.uniqueArray(fc.nat(N - 1), { minLength: 1, maxLength: 15 }) }),
  fc.record({ kind: fc.constant('update' as const), update: updateArb, filter: filterArb }),
);

/** Applies a step to the model; by ids it uses only the ids present (what the store is then given). */
function modelStep(model: Model, s: Step): { select: { ids: number[] } | { filter: Filter }; updated: number } | undefined {
  if (s.kind === 'upsert') {
    // the library stores an upserted {} as given (the server maps {} to no payload)
    s.ids.forEach((id, i) => model.set(id, clone(s.payloads[i])));
    return undefined;
  }
  let chosen: number[];
  let select: { ids: number[] } | { filter: Filter };
  if (s.filter !== undefined) {
    const ast = parseFilter(s.filter);
    chosen = [...model.keys()].filter((id) => matches(ast, id, model.get(id)));
    select = { filter: s.filter };
  } else {
    chosen = s.ids!.filter((id) => model.has(id));
    select = { ids: chosen };
  }
  for (const id of chosen) model.set(id, modelApply(model.get(id), s.update));
  return { select, updated: chosen.length };
}

type Fails = { fail: (message: string) => unknown };
async function agree(t: Fails, call: (m: string, ...a: unknown[]) => Promise<unknown>, name: string, model: Model, filters: Filter[]): Promise<boolean> {
  const ids = [...model.keys()].sort((a, b) => a - b);
  const recs = await call('retrieve', name, ids, { withVector: false }) as { id: number; payload?: unknown }[];
  const got = new Map(recs.map((r) => [r.id, canon(r.payload)]));
  for (const id of ids) {
    if (got.get(id) !== canon(model.get(id))) {
      t.fail(`point ${id}: store ${got.get(id)}, model ${canon(model.get(id))}`);
      return false;
    }
  }
  for (const filter of filters) {
    const ast = parseFilter(filter);
    const want = ids.filter((id) => matches(ast, id, model.get(id))).length;
    const count = await call('count', name, { filter });
    if (count !== want) {
      t.fail(`count ${String(count)}, model ${want}: ${JSON.stringify(filter)}`);
      return false;
    }
  }
  return true;
}

t.test('random sequences of upserts and payload updates agree with the model, before and after a compaction', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  const call = (m: string, ...a: unknown[]): Promise<unknown> => (store as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>)[m]!(...a);
  let run = 0;
  await fc.assert(fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), fc.array(filterArb, { minLength: 3, maxLength: 3 }), async (steps, filters) => {
    const name = `m${run++}`;
    await store.createDataset(name, { dim: DIM, M: 4, efConstruction: 16, shards: SHARDS });
    const model: Model = new Map();
    const seed = IDS.slice(0, 60);
    await store.insert(name, seed, seed.map(vec), { payloads: seed.map((id) => ({ a: id % 3 === 0 ? 'x' : [{ c: 1 }], b: id % 2 })) });
    seed.forEach((id) => model.set(id, { a: id % 3 === 0 ? 'x' : [{ c: 1 }], b: id % 2 }));
    try {
      for (const s of steps) {
        const m = modelStep(model, s);
        if (s.kind === 'upsert') await store.insert(name, s.ids, s.ids.map(vec), { payloads: s.payloads });
        else {
          const r = await store.updatePayload(name, m!.select, s.update);
          if (r.updated !== m!.updated) {
            t.fail(`updated ${r.updated}, model ${m!.updated}`);
            return false;
          }
        }
      }
      if (!(await agree(t, call, name, model, filters))) return false;
      await store.compact(name);
      return await agree(t, call, name, model, filters);
    } finally {
      await store.dropDataset(name);
    }
  }), { numRuns: 25, seed: 42 });
});

t.test('a durable store killed with SIGKILL mid-sequence keeps every acknowledged update', async (t) => {
  buildDist();
  const dir = mkdtempSync(join(tmpdir(), 'quiver-pupdate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const opened = await DurableChild.open(dir, 2, 'always');
  if (!('recovery' in opened)) throw new Error(opened.message);
  const child = opened.child;
  await child.call('createDataset', 'd', { dim: DIM, M: 4, efConstruction: 16, shards: SHARDS });
  const model: Model = new Map();
  const steps = fc.sample(stepArb, { numRuns: 60, seed: 7 });
  let pending: Model | undefined;
  for (const [i, s] of steps.entries()) {
    const before = new Map([...model].map(([k, v]) => [k, clone(v)]));
    const m = modelStep(model, s);
    const sent = s.kind === 'upsert'
      ? child.call('insert', 'd', s.ids, s.ids.map(vec), { payloads: s.payloads })
      : child.call('updatePayload', 'd', m!.select, s.update);
    if (i === steps.length - 1) {
      // the last one is in flight when the process dies: either state is right
      sent.catch(() => {});
      pending = before;
      break;
    }
    await sent;
  }
  await child.kill();

  const store = await Store.open({ path: dir, threads: 2 });
  t.teardown(() => store.close());
  const call = (m: string, ...a: unknown[]): Promise<unknown> => (store as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>)[m]!(...a);
  const filters = fc.sample(filterArb, { numRuns: 6, seed: 8 });
  // the update in flight ran on each shard or not, independently: each point is in one of the two states
  const ids = [...new Set([...model.keys(), ...pending!.keys()])].sort((a, b) => a - b);
  const recs = await call('retrieve', 'd', ids, { withVector: false }) as { id: number; payload?: unknown }[];
  const got = new Map(recs.map((r) => [r.id, r.payload]));
  const wrong = ids.filter((id) => canon(got.get(id)) !== canon(model.get(id)) && canon(got.get(id)) !== canon(pending!.get(id)));
  t.same(wrong.map((id) => `point ${id}: store ${canon(got.get(id))}, model ${canon(model.get(id))} or ${canon(pending!.get(id))}`), [],
    'after the kill: every acknowledged update is there (the one in flight either is or is not, per shard)');
  for (const filter of filters) {
    const ast = parseFilter(filter);
    const want = [...got].filter(([id, payload]) => matches(ast, id, payload)).length;
    t.equal(await call('count', 'd', { filter }), want, `after the kill, a filtered count agrees with the points read back: ${JSON.stringify(filter)}`);
  }
  await store.close();
  // a filter-selected update replays where it stood: a point upserted after it is not touched
  const second = await DurableChild.open(dir, 2, 'always');
  if (!('recovery' in second)) throw new Error(second.message);
  await second.child.call('insert', 'd', [500], [vec(500)], { payloads: [{ a: 'x' }] });
  await second.child.call('updatePayload', 'd', { filter: { must: [{ key: 'a', match: { value: 'x' } }] } }, { set: { tagged: true } });
  await second.child.call('insert', 'd', [501], [vec(501)], { payloads: [{ a: 'x' }] });
  await second.child.kill();
  const again = await Store.open({ path: dir, threads: 2 });
  t.teardown(() => again.close());
  const [p500, p501] = await again.retrieve('d', [500, 501], { withVector: false });
  t.same([p500!.payload, p501!.payload], [{ a: 'x', tagged: true }, { a: 'x' }], 'the filter chose its points where the record stands in the log');
});
