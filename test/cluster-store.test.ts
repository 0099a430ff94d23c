// Store.open({ path, cluster }) (host/store/cluster-store.ts): two library
// nodes on a real 3-node nats-server cluster, checked against a
// single-process Store as the model. Random sequences of upserts (with
// payloads), deletes by id and by filter, payload updates by id (an absent
// id refused alike) and by filter, and a payload index go through one node; then
// every read through the other (count with and without a filter, every
// page of a filtered scroll with vectors and payloads, retrieve, filtered
// search with payloads), after every write, answers exactly as the model does.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { ErrorCode } from '../host/errors.js';
import { statsOf } from '../host/core/stats.js';
import { Store } from '../host/store/store.js';
import type { ClusterStore } from '../host/store/cluster-store.js';

const DIM = 8;
const SHARDS = 3;
const { cluster } = await clusterAndClient(t, 'cluster-store');
const dir = mkdtempSync(join(tmpdir(), 'quiver-cstore-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const open = (id: string): Promise<ClusterStore> => Store.open({ path: join(dir, id), cluster: { servers: cluster.servers, nodeId: id, ttlMs: 1500, imageEvery: 0 } });
const writer = await open('w');
const reader = await open('r');
t.teardown(async () => {
  await writer.close();
  await reader.close();
});
const model = await Store.open({ threads: 1 });
t.teardown(() => model.close());

t.test('bad options are coded errors', async (t) => {
  await t.rejects(Store.open({ cluster: { servers: cluster.servers, nodeId: 'x' } } as never), { code: ErrorCode.INVALID_ARGUMENT }, 'no path');
  await t.rejects(Store.open({ path: join(dir, 'x'), threads: 2, cluster: { servers: cluster.servers, nodeId: 'x' } } as never), { code: ErrorCode.INVALID_ARGUMENT }, 'an option a cluster store does not use');
  await t.rejects(writer.createDataset('bad name!', { dim: DIM }), { code: ErrorCode.INVALID_ARGUMENT }, 'a bad dataset name');
  await t.rejects(reader.count('none'), { code: ErrorCode.NOT_FOUND }, 'a dataset that is not there');
});

type Op =
  | { kind: 'upsert'; ids: number[]; g: number[]; seed: number }
  | { kind: 'delete'; ids: number[] }
  | { kind: 'deleteWhere'; g: number }
  | { kind: 'setPayload'; ids: number[]; tag: string }
  | { kind: 'setWhere'; g: number; tag: string }
  | { kind: 'index' };

const ID = fc.integer({ min: 0, max: 299 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('upsert' as const), ids: fc.uniqueArray(ID, { minLength: 1, maxLength: 120 }), g: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 120, maxLength: 120 }), seed: fc.integer() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), ids: fc.uniqueArray(ID, { minLength: 1, maxLength: 60 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteWhere' as const), g: fc.integer({ min: 0, max: 4 }) }) },
  // by ids: an absent one is NOT_FOUND on its shard, in both
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('setPayload' as const), ids: fc.uniqueArray(ID, { minLength: 1, maxLength: 20 }), tag: fc.constantFrom('a', 'b') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setWhere' as const), g: fc.integer({ min: 0, max: 4 }), tag: fc.constantFrom('a', 'b') }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'index' as const }) },
);

/** Both calls resolve, or both reject with the same code. */
async function alike(a: Promise<unknown>, b: Promise<unknown>): Promise<boolean> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status !== y.status) return false;
  return x.status === 'fulfilled' || (x.reason as { code?: string }).code === ((y as PromiseRejectedResult).reason as { code?: string }).code;
}

function vectors(n: number, seed: number): Float32Array {
  const v = new Float32Array(n * DIM);
  let x = seed | 1;
  for (let i = 0; i < v.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    v[i] = (x % 1000) / 100;
  }
  return v;
}

let run = 0;
t.test('random writes through one node; every read through the other equals the single-process model', async (t) => {
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 4 }), async (ops, g) => {
    const name = `p${run++}`;
    await writer.createDataset(name, { dim: DIM, shards: SHARDS, replicas: 1, M: 8, efConstruction: 32 });
    await model.createDataset(name, { dim: DIM, shards: SHARDS, M: 8, efConstruction: 32 });
    const filter = { must_not: [{ key: 'g', match: { value: g } }] };
    // every read through the other node, after every write: the copy's cached id order must follow the writes
    const same = async (): Promise<boolean> => {
      if (await reader.count(name) !== await model.count(name)) return false;
      if (await reader.count(name, { filter }) !== await model.count(name, { filter })) return false;
      let offset: number | undefined;
      for (;;) {
        const got = await reader.scroll(name, { filter, limit: 23, ...(offset === undefined ? {} : { offset }) });
        const want = await model.scroll(name, { filter, limit: 23, ...(offset === undefined ? {} : { offset }) });
        if (JSON.stringify(got) !== JSON.stringify(want)) return false;
        if (want.nextOffset === undefined) break;
        offset = want.nextOffset as number;
      }
      const ask = [5, 299, 0, 17, 5];
      if (JSON.stringify(await reader.retrieve(name, ask)) !== JSON.stringify(await model.retrieve(name, ask))) return false;
      const q = vectors(1, g + 7);
      const got = await reader.search(name, q, 10, { ef: 300, filter, withPayload: true });
      const want = await model.search(name, q, 10, { ef: 300, filter, withPayload: true });
      return JSON.stringify([got.ids, Array.from(got.distances), got.payloads]) === JSON.stringify([want.ids, Array.from(want.distances), want.payloads]);
    };
    for (const o of ops) {
      if (o.kind === 'upsert') {
        const v = vectors(o.ids.length, o.seed);
        const payloads = o.ids.map((id, i) => ({ g: o.g[i]!, id }));
        await writer.insert(name, o.ids, v, { payloads });
        await model.insert(name, o.ids, v, { payloads });
      } else if (o.kind === 'delete') {
        await writer.delete(name, o.ids);
        await model.delete(name, o.ids);
      } else if (o.kind === 'deleteWhere') {
        await writer.deleteWhere(name, { must: [{ key: 'g', match: { value: o.g } }] });
        await model.deleteWhere(name, { must: [{ key: 'g', match: { value: o.g } }] });
      } else if (o.kind === 'setPayload') {
        if (!await alike(writer.updatePayload(name, { ids: o.ids }, { set: { tag: o.tag } }), model.updatePayload(name, { ids: o.ids }, { set: { tag: o.tag } }))) return false;
      } else if (o.kind === 'setWhere') {
        const select = { filter: { must: [{ key: 'g', match: { value: o.g } }] } };
        if (!await alike(writer.updatePayload(name, select, { set: { tag: o.tag } }), model.updatePayload(name, select, { set: { tag: o.tag } }))) return false;
      } else {
        await writer.createPayloadIndex(name, 'g', 'integer');
        await model.createPayloadIndex(name, 'g', 'integer');
        const [got, want] = [await reader.payloadIndexes(name), await model.payloadIndexes(name)];
        if (JSON.stringify(got) !== JSON.stringify(want)) return false;
      }
      if (!await same()) return false;
    }
    return true;
  }), { numRuns: 10, interruptAfterTimeLimit: 180_000, markInterruptAsFailure: true });
  t.pass(`${run} random histories: counts, scroll pages, retrieve and filtered search all equal the model`);
});

t.test('reads with consistency any: the other node\'s own copy answers once it has caught up', async (t) => {
  await writer.createDataset('any', { dim: DIM, shards: 2, replicas: 2 });
  await writer.insert('any', [1, 2, 3], vectors(3, 9), { payloads: [{ a: 1 }, { a: 2 }, { a: 3 }] });
  await until('both copies on the reader', () => [0, 1].every((s) => reader.node.replica('any', s) !== null), 20_000);
  await until('the reader caught up', async () => (await reader.count('any', { consistency: 'any' })) === 3, 20_000);
  t.same((await reader.retrieve('any', [3], { consistency: 'any', withVector: false })).map((p) => p.payload), [{ a: 3 }], 'its own copy has the payloads');
  await t.rejects(reader.count('any', { consistency: 'all' as never }), { code: ErrorCode.INVALID_ARGUMENT }, 'an unknown consistency is refused');
});

t.test('an int8-quantized dataset: every copy quantized alike, answers as a quantized single-process Store', async (t) => {
  const n = 2600;
  const opts = { dim: DIM, shards: 2, M: 8, efConstruction: 32, quantization: { scalar: { type: 'int8' as const, quantile: 0.98 } } };
  await t.rejects(writer.createDataset('q-bad', { ...opts, quantization: { scalar: { type: 'int4' as 'int8' } } }), { code: ErrorCode.INVALID_ARGUMENT }, 'an unknown quantization is refused, nothing created');
  t.notOk((await reader.listDatasets()).includes('q-bad'), 'and it is not in the catalog');
  await writer.createDataset('q', { ...opts, replicas: 2 });
  await model.createDataset('q', opts);
  t.same((await reader.datasetInfo('q')).quantization, (await model.datasetInfo('q')).quantization, 'datasetInfo: the quantization as the Store reports it');
  const v = vectors(n, 77);
  // past 1,024 live points a shard, so each shard's quantizer is learned and frozen
  for (let at = 0; at < n; at += 500) {
    const ids = Array.from({ length: Math.min(500, n - at) }, (_, i) => at + i);
    await writer.insert('q', ids, v.subarray(at * DIM, (at + ids.length) * DIM));
    await model.insert('q', ids, v.subarray(at * DIM, (at + ids.length) * DIM));
  }
  await until('the reader\'s copies caught up', async () => (await reader.count('q', { consistency: 'any' })) === n, 20_000);
  let same = 0;
  for (let q = 0; q < 20; q++) {
    const query = vectors(1, 1000 + q);
    const want = await model.search('q', query, 10, { ef: n });
    for (const consistency of ['leader', 'any'] as const) {
      const got = await reader.search('q', query, 10, { ef: n, consistency });
      if (JSON.stringify(got.ids) === JSON.stringify(want.ids) && got.distances.every((d, i) => d === want.distances[i])) same++;
    }
  }
  t.equal(same, 40, 'exhaustive searches through the leaders and through the reader\'s own copies: the ids and distances of the quantized Store');
  const stats = statsOf(reader.node.replica('q', 0)!.shard);
  t.ok(stats.quantization !== undefined && stats.quantization.learnedFrom >= 1024, `the reader's copy of shard 0 is quantized, its quantizer learned from ${stats.quantization?.learnedFrom} points`);
});
