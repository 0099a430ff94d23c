// Payload indexes through the Store (issue 10): create, retype, drop and
// list on a durable dataset of 3 shards over 2 threads; bad input is a coded
// error that logs nothing; the indexes survive a graceful close (the image),
// a SIGKILL (the log replayed) and a compaction; their point counts follow
// upserts, deletes and payload updates (by ids and by filter) as a plain-JS
// model of the payloads says; a filtered count, scroll or search answers the
// same with indexes as without.
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Index, QuiverError, Store, type Filter, type PayloadIndexInfo, type PayloadIndexType, type PayloadUpdate } from '../host/index.js';
import { matches, resolvePath } from '../host/filter/model.js';
import { parseFilter, parsePath } from '../host/filter/parse.js';
import { MAX_PAYLOAD_INDEXES } from '../host/core/payload-index.js';
import { Wal } from '../host/storage/wal.js';
import { encodeIndex } from '../host/storage/bodies.js';
import { Op } from '../host/storage/record.js';
import { rng } from './helpers/data.js';
import { buildDist, DurableChild } from './fixtures/durable-driver.js';
import { UUID_TEXT } from './helpers/filter-arbs.js';

type Tap = Pick<typeof t, 'teardown' | 'ok' | 'match'>;

const DIM = 4;
const SHARDS = 3;
const N = 600;
const IDS = Array.from({ length: N }, (_, i) => i);
const vec = (id: number): number[] => [Math.sin(id + 1), Math.cos(id * 3 + 1), (id % 7) / 7 + 0.1, 1];
const VECTORS = IDS.map(vec);

type Obj = Record<string, unknown>;

const uuidOf = (i: number): string => `${(0x10000000 + i).toString(16)}-aaaa-4bbb-8ccc-${i.toString(16).padStart(12, '0')}`;

/** Mixed types at every field, so each index type counts some points and not others. */
function payloadOf(id: number, salt = 0): Obj | undefined {
  const r = rng(id * 7919 + 11 + salt * 104729);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  if (r() < 0.06) return undefined;
  const p: Obj = {};
  if (r() < 0.9) p.kind = pick(['a', 'b', 'c', 'a', 1, null, ['a', 'b'], [], true]);
  if (r() < 0.8) p.n = r() < 0.7 ? Math.floor(r() * 10) : pick([2.5, -1.5, 'x', null, [1, 2.5], true]);
  if (r() < 0.7) p.tags = Array.from({ length: Math.floor(r() * 4) }, () => pick(['x', 'y', 'z', 1, false]));
  if (r() < 0.6) p.obj = r() < 0.9 ? { k: pick(['a', 'b', 1, true, null, 3.5]) } : pick([[{ k: 'a' }, { k: 2 }], 'flat']);
  if (r() < 0.5) p.flag = pick([true, false, 'true', 0]);
  if (r() < 0.5) p.uid = pick([uuidOf(id), uuidOf(id % 5), 'not-a-uuid', 7]);
  return p;
}

const FIELDS: [string, PayloadIndexType][] = [
  ['kind', 'keyword'], ['n', 'integer'], ['tags', 'keyword'], ['obj.k', 'float'], ['obj[].k', 'keyword'], ['flag', 'bool'], ['uid', 'uuid'], ['tags[]', 'bool'],
];

// ------------------------------------------------------------------ the model

const IS_TYPE: Record<PayloadIndexType, (v: unknown) => boolean> = {
  keyword: (v) => typeof v === 'string',
  integer: (v) => typeof v === 'number' && Number.isSafeInteger(v),
  float: (v) => typeof v === 'number',
  bool: (v) => typeof v === 'boolean',
  // a uuid index counts UUID text in the forms ids take (its records take every string)
  uuid: (v) => typeof v === 'string' && UUID_TEXT.test(v),
};

/** Live points with at least one value of `type` at `field` (an array: any element). */
function modelPoints(payloads: Map<number, Obj | undefined>, field: string, type: PayloadIndexType): number {
  const path = parsePath(field, 'field');
  let n = 0;
  for (const p of payloads.values()) {
    if (resolvePath(p, path).some((v) => (Array.isArray(v) ? v.some(IS_TYPE[type]) : IS_TYPE[type](v)))) n++;
  }
  return n;
}

function modelIndexes(payloads: Map<number, Obj | undefined>, defs: Map<string, PayloadIndexType>): PayloadIndexInfo[] {
  return [...defs].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([field, type]) => ({ field, type, points: modelPoints(payloads, field, type) }));
}

const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)) as T);

// ------------------------------------------------------------------ helpers

function tmp(t: Tap): string {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-pindex-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function records(store: Store): Promise<number> {
  return (await store.stats()).durability!.records;
}

async function rejects(t: Tap, p: Promise<unknown>, code: string, message: RegExp, what: string): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof QuiverError, `${what}: a QuiverError`);
  t.match(err, { code, message }, what);
}

async function filled(store: Store, name: string): Promise<Map<number, Obj | undefined>> {
  await store.createDataset(name, { dim: DIM, M: 8, efConstruction: 32, shards: SHARDS });
  const payloads = IDS.map((id) => payloadOf(id));
  await store.insert(name, IDS, VECTORS, { payloads });
  return new Map(IDS.map((id, i) => [id, payloads[i]]));
}

// ------------------------------------------------------------------ tests

t.test('create, retype, drop and list on a durable store; the same again logs nothing', async (t) => {
  const dir = tmp(t);
  const store = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  const payloads = await filled(store, 'd');
  t.same(await store.payloadIndexes('d'), [], 'no indexes at first');

  const defs = new Map<string, PayloadIndexType>();
  for (const [field, type] of FIELDS) {
    t.same(await store.createPayloadIndex('d', field, type), {}, `create ${field} ${type}: resolves once applied`);
    defs.set(field, type);
  }
  t.same(await store.payloadIndexes('d'), modelIndexes(payloads, defs), 'listed sorted by field, points summed over the shards as the payloads say');

  const before = await records(store);
  await store.createPayloadIndex('d', 'kind', 'keyword');
  t.equal(await records(store), before, 'the same field and type again: nothing logged');
  t.same(await store.payloadIndexes('d'), modelIndexes(payloads, defs), 'and nothing changed');

  await store.createPayloadIndex('d', 'n', 'float');
  defs.set('n', 'float');
  t.equal(await records(store), before + SHARDS, 'another type: one record per shard');
  t.same(await store.payloadIndexes('d'), modelIndexes(payloads, defs), 'retyped: n is a float index, counting 2.5 and -1.5 too');

  t.same(await store.dropPayloadIndex('d', 'kind'), {}, 'drop resolves once applied');
  defs.delete('kind');
  t.same(await store.payloadIndexes('d'), modelIndexes(payloads, defs), 'dropped');
  const afterDrop = await records(store);
  t.same(await store.dropPayloadIndex('d', 'kind'), {}, 'dropping it again is no error');
  t.same(await store.dropPayloadIndex('d', 'never.indexed'), {}, 'nor is dropping a field never indexed');
  t.equal(await records(store), afterDrop, 'and neither logs anything');

  const ack = await store.createPayloadIndex('d', 'kind', 'keyword', { wait: false });
  t.same(ack, { acknowledged: true }, 'wait false: acknowledged once logged');
  defs.set('kind', 'keyword');
  await store.insert('d', [N], [vec(N)], { payloads: [{ kind: 'late' }] });
  payloads.set(N, { kind: 'late' });
  t.same(await store.payloadIndexes('d'), modelIndexes(payloads, defs), 'applied in order before the next write');
  t.same(await store.dropPayloadIndex('d', 'kind', { wait: false }), { acknowledged: true }, 'drop with wait false');
  defs.delete('kind');
  await store.delete('d', [N]);
  payloads.delete(N);
  t.same(await store.payloadIndexes('d'), modelIndexes(payloads, defs), 'the drop applied before the delete after it');
});

t.test('bad input is a coded error that logs nothing and changes nothing', async (t) => {
  const dir = tmp(t);
  let store = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 } });
  const payloads = await filled(store, 'd');
  await store.createPayloadIndex('d', 'kind', 'keyword');
  const want = modelIndexes(payloads, new Map([['kind', 'keyword']]));
  const before = await records(store);

  await rejects(t, store.createPayloadIndex('nope', 'kind', 'keyword'), 'QUIVER_ERR_NOT_FOUND', /nope/, 'create on an unknown dataset');
  await rejects(t, store.dropPayloadIndex('nope', 'kind'), 'QUIVER_ERR_NOT_FOUND', /nope/, 'drop on an unknown dataset');
  await rejects(t, store.payloadIndexes('nope'), 'QUIVER_ERR_NOT_FOUND', /nope/, 'list on an unknown dataset');
  for (const field of [42, null, '', 'a..b', 'a[', 'a[x]', '.a', undefined]) {
    await rejects(t, store.createPayloadIndex('d', field as string, 'keyword'), 'QUIVER_ERR_INVALID_ARGUMENT', /./, `create on field ${JSON.stringify(field)}`);
    await rejects(t, store.dropPayloadIndex('d', field as string), 'QUIVER_ERR_INVALID_ARGUMENT', /./, `drop on field ${JSON.stringify(field)}`);
  }
  await rejects(t, store.createPayloadIndex('d', '"a\uD800"', 'keyword'), 'QUIVER_ERR_INVALID_ARGUMENT', /./, 'a quoted key that is not well-formed Unicode (the log holds UTF-8)');
  for (const type of ['text', 'geo', 'datetime', 'Keyword', 'nope', 5, null, undefined, { type: 'keyword' }]) {
    await rejects(t, store.createPayloadIndex('d', 'n', type as PayloadIndexType), 'QUIVER_ERR_INVALID_ARGUMENT', /./, `type ${JSON.stringify(type)}`);
  }
  await rejects(t, store.createPayloadIndex('d', 'n', 'integer', { wait: 'yes' as unknown as boolean }), 'QUIVER_ERR_INVALID_ARGUMENT', /wait/, 'a bad wait');
  t.equal(await records(store), before, 'nothing logged');
  t.same(await store.payloadIndexes('d'), want, 'nothing changed');

  // up to the limit, then one more
  for (let i = 1; i < MAX_PAYLOAD_INDEXES; i++) await store.createPayloadIndex('d', `f${String(i).padStart(2, '0')}`, 'integer');
  t.equal((await store.payloadIndexes('d')).length, MAX_PAYLOAD_INDEXES, `${MAX_PAYLOAD_INDEXES} indexes`);
  const full = await records(store);
  await rejects(t, store.createPayloadIndex('d', 'one.more', 'keyword'), 'QUIVER_ERR_INVALID_ARGUMENT', new RegExp(String(MAX_PAYLOAD_INDEXES)), 'one index past the limit');
  t.equal(await records(store), full, 'past the limit: nothing logged');
  await store.createPayloadIndex('d', 'f01', 'float');
  t.equal((await store.payloadIndexes('d')).find((i) => i.field === 'f01')?.type, 'float', 'at the limit an existing field may still change type');
  const listed = await store.payloadIndexes('d');

  await store.close();
  store = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  t.same(await store.payloadIndexes('d'), listed, 'reopened: the same indexes');
  await rejects(t, store.createPayloadIndex('d', 'one.more', 'keyword'), 'QUIVER_ERR_INVALID_ARGUMENT', /limit|most/, 'the limit holds after a reopen');
});

t.test('under maxMemoryBytes a new index asks for its bytes first: past the limit, MEMORY_LIMIT and nothing logged', async (t) => {
  const dir = tmp(t);
  let store = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 } });
  const payloads = await filled(store, 'd');
  await store.createPayloadIndex('d', 'kind', 'keyword');
  await store.close();
  // a limit the process is already past: every write that asks is refused
  store = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 }, maxMemoryBytes: 1024 * 1024 });
  t.teardown(() => store.close());
  const before = await records(store);
  await rejects(t, store.createPayloadIndex('d', 'n', 'integer'), 'QUIVER_ERR_MEMORY_LIMIT', /maxMemoryBytes/, 'a new index past the limit');
  t.equal(await records(store), before, 'nothing logged');
  t.same(await store.payloadIndexes('d'), modelIndexes(payloads, new Map([['kind', 'keyword']])), 'nothing changed');
  await store.createPayloadIndex('d', 'kind', 'keyword');
  t.same(await store.dropPayloadIndex('d', 'kind'), {}, 'a no-op create and a drop (which frees memory) need no room');
});

t.test('indexes survive a SIGKILL (the log replayed), a compaction, and a graceful close (the image)', async (t) => {
  buildDist();
  const dir = tmp(t);
  const opened = await DurableChild.open(dir, 2, 'always');
  if (!('recovery' in opened)) throw new Error(opened.message);
  const child = opened.child;
  await child.call('createDataset', 'd', { dim: DIM, M: 8, efConstruction: 32, shards: SHARDS });
  const payloads = new Map(IDS.map((id) => [id, payloadOf(id)]));
  await child.call('insert', 'd', IDS, VECTORS, { payloads: [...payloads.values()] });
  const defs = new Map<string, PayloadIndexType>();
  for (const [field, type] of FIELDS.slice(0, 4)) {
    await child.call('createPayloadIndex', 'd', field, type);
    defs.set(field, type);
  }
  // the image holds these; the log after it the rest
  await child.call('checkpoint', 'd');
  await child.call('dropPayloadIndex', 'd', 'tags');
  defs.delete('tags');
  await child.call('createPayloadIndex', 'd', 'n', 'float');
  defs.set('n', 'float');
  for (const [field, type] of FIELDS.slice(4)) {
    await child.call('createPayloadIndex', 'd', field, type);
    defs.set(field, type);
  }
  const gone = IDS.filter((id) => id % 4 === 0);
  await child.call('delete', 'd', gone);
  for (const id of gone) payloads.delete(id);
  await child.call('updatePayload', 'd', { ids: [1, 2, 3] }, { overwrite: { kind: 'z', n: 4, flag: true } });
  for (const id of [1, 2, 3]) payloads.set(id, { kind: 'z', n: 4, flag: true });
  const want = modelIndexes(payloads, defs);
  t.same(await child.call('payloadIndexes', 'd'), want, 'before the kill');
  await child.kill();

  let store = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 } });
  t.ok((store.recovery[0]?.replayed ?? 0) > 0, 'records were replayed after the image');
  t.same(await store.payloadIndexes('d'), want, 'after the SIGKILL: the image and the replayed creates, drop and retype');
  const report = await store.compact('d');
  t.ok(report.removedTombstones > 0, 'the compaction removed the deleted points');
  t.same(await store.payloadIndexes('d'), want, 'after a compaction: the same indexes and counts');
  await store.insert('d', [N + 1], [vec(N + 1)], { payloads: [{ kind: 'after', n: 1, flag: false }] });
  payloads.set(N + 1, { kind: 'after', n: 1, flag: false });
  const after = modelIndexes(payloads, defs);
  t.same(await store.payloadIndexes('d'), after, 'and kept up to date by writes after it');
  await store.close();

  store = await Store.open({ path: dir, threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  t.equal(store.recovery[0]?.replayed, 0, 'a graceful close left nothing to replay');
  t.same(await store.payloadIndexes('d'), after, 'after a graceful close: from the image alone');
});

t.test('a logged index of a type this version does not know refuses that dataset, coded', async (t) => {
  const dir = tmp(t);
  let store = await Store.open({ path: dir, threads: 1, compaction: { intervalMs: 0 } });
  await store.createDataset('d', { dim: DIM, shards: 1 });
  await store.createDataset('ok', { dim: DIM, shards: 1 });
  await store.createPayloadIndex('ok', 'kind', 'keyword');
  await store.close();
  const wal = await Wal.open({ dir: join(dir, 'datasets', '1', 'shard-0', 'wal') });
  await wal.append(Op.CREATE_INDEX, encodeIndex({ field: 'where', type: 'geo' }));
  await wal.close();
  store = await Store.open({ path: dir, threads: 1, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  t.match(store.recovery.find((r) => r.dataset === 'd'), { error: /record \d+ names the index type "geo"/ }, 'the recovery report names the record and the type');
  await rejects(t, store.payloadIndexes('d'), 'QUIVER_ERR_CORRUPT', /geo/, 'the dataset refuses calls');
  t.same((await store.payloadIndexes('ok')).map((i) => i.field), ['kind'], 'the other dataset opens');
});

t.test('a snapshot carries the indexes; a dataset recovered from it over an indexed one has the snapshot\'s', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 }, snapshotsPath: tmp(t) });
  t.teardown(() => store.close());
  const payloads = await filled(store, 's');
  const defs = new Map<string, PayloadIndexType>([['kind', 'keyword'], ['n', 'integer']]);
  for (const [field, type] of defs) await store.createPayloadIndex('s', field, type);
  const snap = await store.createSnapshot('s');
  await store.dropPayloadIndex('s', 'kind');
  await store.createPayloadIndex('s', 'flag', 'bool');
  const file = await store.snapshotPath('s', snap.name);
  await store.recoverSnapshot('copy', file);
  t.same(await store.payloadIndexes('copy'), modelIndexes(payloads, defs), 'a new dataset from the snapshot: its indexes');
  await store.recoverSnapshot('s', file);
  t.same(await store.payloadIndexes('s'), modelIndexes(payloads, defs), 'recovered over the dataset: the snapshot\'s indexes, not the ones made since');
  await store.dropPayloadIndex('s', 'kind');
  t.same((await store.payloadIndexes('s')).map((i) => i.field), ['n'], 'dropping one the snapshot brought drops it (the host knows the recovered set, not the one before)');
});

t.test('the single-thread Index: the same three, synchronous; bad input throws and changes nothing', async (t) => {
  const index = new Index({ dim: DIM, M: 8, efConstruction: 32 });
  t.teardown(() => index.dispose());
  const payloads = new Map(IDS.map((id) => [id, payloadOf(id)]));
  index.add(IDS, VECTORS, [...payloads.values()]);
  const defs = new Map<string, PayloadIndexType>([['kind', 'keyword'], ['n', 'integer'], ['uid', 'uuid']]);
  for (const [field, type] of defs) index.createPayloadIndex(field, type);
  t.same(index.payloadIndexes(), modelIndexes(payloads, defs), 'listed with their points');
  t.throws(() => index.createPayloadIndex('a..b', 'keyword'), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'a bad field');
  t.throws(() => index.createPayloadIndex('flag', 'geo' as PayloadIndexType), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'a bad type');
  t.throws(() => index.dropPayloadIndex(7 as unknown as string), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'a bad field to drop');
  t.same(index.payloadIndexes(), modelIndexes(payloads, defs), 'nothing changed');
  t.equal(index.dropPayloadIndex('kind'), true, 'dropped');
  t.equal(index.dropPayloadIndex('kind'), false, 'false when there is none');
  defs.delete('kind');
  index.remove(IDS.filter((id) => id % 3 === 0));
  for (const id of IDS.filter((id) => id % 3 === 0)) payloads.delete(id);
  index.compact();
  t.same(index.payloadIndexes(), modelIndexes(payloads, defs), 'after deletes and a compaction');
  const restored = Index.fromImage(index.toImage());
  t.teardown(() => restored.dispose());
  t.same(restored.payloadIndexes(), modelIndexes(payloads, defs), 'carried by the image');
  const filter: Filter = { must: [{ key: 'n', range: { gte: 3, lt: 7 } }] };
  const ast = parseFilter(filter);
  t.equal(restored.count(filter), [...payloads].filter(([id, p]) => matches(ast, id, p)).length, 'a filtered count on an indexed field');
});

// ------------------------------------------------------------------ points counts under writes

type Step =
  | { kind: 'upsert'; ids: number[]; salt: number }
  | { kind: 'delete'; ids: number[] }
  | { kind: 'update'; select: 'ids' | 'filter'; ids: number[]; filterValue: string; update: PayloadUpdate }
  | { kind: 'compact' };

const idsArb = fc.uniqueArray(fc.nat(N + 40), { minLength: 1, maxLength: 40 });
const updateArb: fc.Arbitrary<PayloadUpdate> = fc.oneof(
  fc.record({ set: fc.record({ kind: fc.constantFrom<unknown>('q', 3, null, ['q', 1]), n: fc.constantFrom<unknown>(5, 5.5, 'n', null) }, { requiredKeys: [] }) }),
  fc.record({ overwrite: fc.record({ kind: fc.constantFrom<unknown>('w', true), uid: fc.constantFrom<unknown>(uuidOf(9), 'no') }, { requiredKeys: [] }) }),
  fc.record({ deleteKeys: fc.subarray(['kind', 'n', 'obj.k', 'tags', 'flag']) }),
  fc.constant({ clear: true as const }),
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('upsert' as const), ids: idsArb, salt: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), ids: idsArb }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('update' as const), select: fc.constantFrom('ids' as const, 'filter' as const), ids: idsArb, filterValue: fc.constantFrom('a', 'b', 'q'), update: updateArb }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
);

/** Qdrant's set/overwrite/delete/clear on top-level keys only (what updateArb makes). */
function applyModel(old: Obj | undefined, u: PayloadUpdate): Obj | undefined {
  let next: Obj | undefined;
  if ('set' in u) {
    next = clone(old) ?? {};
    for (const [k, v] of Object.entries(u.set)) {
      if (v === null) delete next[k];
      else next[k] = clone(v);
    }
  } else if ('overwrite' in u) next = clone(u.overwrite);
  else if ('deleteKeys' in u) {
    next = clone(old);
    for (const key of u.deleteKeys) {
      const path = key.split('.');
      let at: unknown = next;
      for (const step of path.slice(0, -1)) at = typeof at === 'object' && at !== null && !Array.isArray(at) ? (at as Obj)[step] : undefined;
      if (typeof at === 'object' && at !== null && !Array.isArray(at)) delete (at as Obj)[path.at(-1)!];
    }
  } else next = undefined;
  return next === undefined || Object.keys(next).length === 0 ? undefined : next;
}

t.test('points counts follow upserts, deletes, payload updates by ids and by filter, and compactions', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  let round = 0;
  await fc.assert(fc.asyncProperty(fc.array(stepArb, { minLength: 4, maxLength: 12 }), async (steps) => {
    const name = `p${round++}`;
    const payloads = await filled(store, name);
    const defs = new Map(FIELDS);
    for (const [field, type] of FIELDS) await store.createPayloadIndex(name, field, type);
    try {
      for (const s of steps) {
        if (s.kind === 'upsert') {
          const ps = s.ids.map((id) => payloadOf(id, s.salt));
          await store.insert(name, s.ids, s.ids.map(vec), { payloads: ps });
          s.ids.forEach((id, i) => payloads.set(id, ps[i]));
        } else if (s.kind === 'delete') {
          await store.delete(name, s.ids);
          for (const id of s.ids) payloads.delete(id);
        } else if (s.kind === 'compact') {
          await store.compact(name);
        } else if (s.select === 'ids') {
          const present = s.ids.filter((id) => payloads.has(id));
          if (present.length === 0) continue;
          await store.updatePayload(name, { ids: present }, s.update);
          for (const id of present) payloads.set(id, applyModel(payloads.get(id), s.update));
        } else {
          const filter: Filter = { must: [{ key: 'kind', match: { value: s.filterValue } }] };
          const ast = parseFilter(filter);
          const hit = [...payloads].filter(([id, p]) => matches(ast, id, p)).map(([id]) => id);
          await store.updatePayload(name, { filter }, s.update);
          for (const id of hit) payloads.set(id, applyModel(payloads.get(id), s.update));
        }
        const got = await store.payloadIndexes(name);
        const want = modelIndexes(payloads, defs);
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          t.same(got, want, `after ${JSON.stringify(s)}`);
          return false;
        }
      }
      return true;
    } finally {
      await store.dropDataset(name);
    }
  }), { numRuns: 12, seed: 17 });
  t.pass('every step agreed with the model');
});

// ------------------------------------------------------------------ answers with and without indexes

const keyArb = fc.constantFrom('kind', 'n', 'tags', 'tags[]', 'obj.k', 'obj[].k', 'flag', 'uid');
const leafArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ key: keyArb, match: fc.record({ value: fc.constantFrom<string | number | boolean>('a', 'b', 'x', 1, 3, true, false, uuidOf(2)) }) }),
  fc.record({ key: keyArb, match: fc.record({ any: fc.oneof(fc.subarray(['a', 'b', 'x', 'z']), fc.subarray([1, 2, 3])) }) }),
  fc.record({ key: keyArb, match: fc.record({ except: fc.oneof(fc.subarray(['a', 'b', 'x']), fc.subarray([1, 2])) }) }),
  fc.record({ key: keyArb, range: fc.record({ gte: fc.integer({ min: -2, max: 9 }), lt: fc.double({ min: -1, max: 11, noNaN: true }) }, { requiredKeys: [] }) }),
  fc.record({ is_empty: fc.record({ key: keyArb }) }),
  fc.record({ is_null: fc.record({ key: keyArb }) }),
);
const filterArb: fc.Arbitrary<Filter> = fc.record({
  must: fc.array(leafArb, { maxLength: 3 }),
  should: fc.array(leafArb, { maxLength: 2 }),
  must_not: fc.array(leafArb, { maxLength: 2 }),
}, { requiredKeys: [] }) as fc.Arbitrary<Filter>;

async function scrollAll(store: Store, name: string, filter: Filter): Promise<number[]> {
  const out: number[] = [];
  let offset: number | undefined;
  for (;;) {
    const p = await store.scroll(name, { filter, limit: 200, withVector: false, withPayload: false, ...(offset === undefined ? {} : { offset }) });
    out.push(...p.points.map((r) => r.id as number));
    if (p.nextOffset === undefined) return out;
    offset = p.nextOffset as number;
  }
}

t.test('a filtered count, scroll and search answer the same with indexes as without', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  const payloads = await filled(store, 'plain');
  await filled(store, 'indexed');
  for (const [field, type] of FIELDS) await store.createPayloadIndex('indexed', field, type);
  await store.createPayloadIndex('indexed', 'n', 'integer');
  await fc.assert(fc.asyncProperty(filterArb, fc.nat(N - 1), async (filter, q) => {
    const ast = parseFilter(filter);
    const want = [...payloads].filter(([id, p]) => matches(ast, id, p)).map(([id]) => id);
    const [plain, indexed] = [await store.count('plain', { filter }), await store.count('indexed', { filter })];
    if (plain !== want.length || indexed !== want.length) {
      t.fail(`count: plain ${plain}, indexed ${indexed}, model ${want.length}: ${JSON.stringify(filter)}`);
      return false;
    }
    const scrolled = await scrollAll(store, 'indexed', filter);
    if (JSON.stringify(scrolled) !== JSON.stringify(await scrollAll(store, 'plain', filter))) {
      t.fail(`scroll differs: ${JSON.stringify(filter)}`);
      return false;
    }
    const k = 10;
    const a = await store.search('plain', VECTORS[q]!, k, { filter, ef: 64 });
    const b = await store.search('indexed', VECTORS[q]!, k, { filter, ef: 64 });
    const wanted = new Set(want);
    if (b.ids.length !== Math.min(k, want.length) || !b.ids.every((id) => wanted.has(id as number))) {
      t.fail(`indexed search: ${b.ids.length} hits, ${want.length} match: ${JSON.stringify(filter)}`);
      return false;
    }
    // both exact on every shard: the exact filtered top k, so the same hits
    if (a.paths!.every((p) => p !== 'graph') && b.paths!.every((p) => p !== 'graph') && JSON.stringify(a.ids) !== JSON.stringify(b.ids)) {
      t.fail(`exact searches differ: ${JSON.stringify(a.ids)} vs ${JSON.stringify(b.ids)}: ${JSON.stringify(filter)}`);
      return false;
    }
    return true;
  }), { numRuns: 60, seed: 23 });
  t.pass('every filter answered alike');
});
