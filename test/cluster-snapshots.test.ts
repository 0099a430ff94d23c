// Snapshots on a cluster (host/store/cluster-snapshots.ts): three library
// nodes (ClusterStore) in this process on a real 3-node nats-server
// cluster. A snapshot made through one node holds every shard, whichever
// node leads it, and stays on that node; recovered through another under a
// new name, or into a single-process Store, it answers exactly as the
// dataset did (every point with its vector and payload, searches, payload
// indexes); a Store's snapshot recovers into the cluster the same way.
// Recovered over an existing dataset it replaces it on every node: the
// writes made after the snapshot are gone, the old incarnation's stream and
// copies are gone, and writes go on. A snapshot taken under concurrent
// writers holds every write acknowledged before it began. A bad snapshot (corrupt, a dim that
// is not its images') changes nothing and leaves no
// stream behind. A snapshot asked for while a node that leads shards
// leaves holds every shard all the same. Random upsert / delete / snapshot / recover sequences
// answer as a Map whose state a snapshot saves and a recovery restores.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { rng } from './helpers/data.js';
import { datasetToken, streamName } from '../host/cluster/names.js';
import { ErrorCode } from '../host/errors.js';
import type { Id } from '../host/ids.js';
import { readSnapshot, writeSnapshot } from '../host/storage/snapshot.js';
import type { ClusterStore } from '../host/store/cluster-store.js';
import { Store } from '../host/store/store.js';

const DIM = 16;
const N = 6000;
const { cluster, client } = await clusterAndClient(t, 'cluster-snapshots');
const dir = mkdtempSync(join(tmpdir(), 'quiver-csnap-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const open = (id: string): Promise<ClusterStore> => Store.open({ path: join(dir, id), cluster: { servers: cluster.servers, nodeId: id, ttlMs: 1500, imageEvery: 0 } });
const nodes: ClusterStore[] = [];
for (const id of ['n1', 'n2', 'n3']) nodes.push(await open(id));
t.teardown(() => Promise.all(nodes.map((n) => n.close())));
const [n1, n2, n3] = nodes as [ClusterStore, ClusterStore, ClusterStore];

function vectors(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * DIM }, () => r() * 2 - 1);
}

const queries = Array.from({ length: 20 }, (_, i) => vectors(1, 1000 + i));
const ids: Id[] = Array.from({ length: N }, (_, i) => (i % 5 === 0 ? `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` : i));
const payloads = ids.map((id, i) => ({ i, tag: `p${i % 7}`, id: String(id) }));

type Reader = Pick<ClusterStore, 'scroll' | 'search' | 'payloadIndexes' | 'count'>;

/** Everything a reader sees of a dataset: every point in id order, the queries' answers, its payload indexes. */
async function view(s: Reader, name: string): Promise<unknown> {
  const points = [];
  for (let offset: Id | undefined, first = true; first || offset !== undefined; first = false) {
    const page = await s.scroll(name, { limit: 1000, withVector: true, withPayload: true, ...(offset === undefined ? {} : { offset }) });
    points.push(...page.points.map((p) => ({ id: p.id, vector: Array.from(p.vector!), payload: p.payload })));
    offset = page.nextOffset;
  }
  const hits = [];
  for (const q of queries) {
    const h = await s.search(name, q, 10, { withPayload: true, filter: { must: [{ key: 'tag', match: { value: 'p3' } }] } });
    hits.push({ ids: h.ids, distances: Array.from(h.distances, (d) => Math.round(d * 1e5) / 1e5), payloads: h.payloads });
  }
  return { points, hits, indexes: await s.payloadIndexes(name) };
}

/** The streams of quiver's shard logs in NATS now. */
async function streams(): Promise<string[]> {
  const out: string[] = [];
  for await (const n of client.jsm.streams.names()) if (!n.startsWith('KV_') && !n.startsWith('OBJ_')) out.push(n);
  return out.sort();
}

async function fill(s: Pick<ClusterStore, 'insert' | 'createPayloadIndex'> & { delete(name: string, ids: Id[]): Promise<unknown> }, name: string): Promise<void> {
  const v = vectors(N, 1);
  for (let at = 0; at < N; at += 1000) await s.insert(name, ids.slice(at, at + 1000), v.subarray(at * DIM, (at + 1000) * DIM), { payloads: payloads.slice(at, at + 1000) });
  await s.delete(name, ids.slice(0, 400).filter((_, i) => i % 2 === 0));
  await s.createPayloadIndex(name, 'tag', 'keyword');
}

let file = '';
let before: unknown;

t.test('a snapshot through one node holds every shard; it recovers under a new name, and into a Store, answering the same', async (t) => {
  await n1.createDataset('docs', { dim: DIM, metric: 'cosine', M: 12, efConstruction: 80, ef: 50, shards: 3, replicas: 2 });
  await fill(n1, 'docs');
  before = await view(n3, 'docs');
  t.equal((before as { points: unknown[] }).points.length, N - 200, 'the dataset as written');

  const snap = await n2.createSnapshot('docs');
  t.match(snap.name, /^docs-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.snapshot$/);
  file = await n2.snapshotPath('docs', snap.name);
  t.equal(file, join(dir, 'n2', 'snapshots', 'docs', snap.name), 'kept in the node\'s directory');
  const bytes = await readFile(file);
  t.equal(snap.checksum, createHash('sha256').update(bytes).digest('hex'));
  t.same((await n2.listSnapshots('docs')).map((s) => s.name), [snap.name]);
  t.same(await n1.listSnapshots('docs').catch(() => []), [], 'another node has no snapshot of it: a snapshot stays where it was made');
  const { entry, shards } = await readSnapshot(file);
  t.same({ shards: entry.shards, dim: entry.dim, metric: entry.metric, M: entry.M }, { shards: 3, dim: DIM, metric: 'cosine', M: 12 }, 'every shard, the dataset\'s options');
  t.equal(shards.length, 3);

  const started = performance.now();
  const info = await n3.recoverSnapshot('copy', file);
  t.comment(`recovered 3 shards x ${N / 3} points through another node in ${Math.round(performance.now() - started)} ms`);
  t.same({ shards: info.shards, replicas: info.replicas, dim: info.dim }, { shards: 3, replicas: 1, dim: DIM }, 'a new name: one copy of each shard unless asked');
  t.same(await view(n1, 'copy'), before, 'the recovered dataset answers exactly as the original (read through a third node)');

  const store = await Store.open({ threads: 1 });
  t.teardown(() => store.close());
  await store.recoverSnapshot('docs', file);
  t.same(await view(store, 'docs'), before, 'a cluster\'s snapshot recovers into a Store');

  await store.createDataset('local', { dim: DIM, metric: 'cosine', M: 12, efConstruction: 80, ef: 50, shards: 2 });
  await fill(store, 'local');
  const local = await view(store, 'local');
  const fromStore = await store.snapshotPath('local', (await store.createSnapshot('local')).name);
  await n1.recoverSnapshot('fromstore', fromStore, { replicas: 2 });
  t.same((await n2.datasetInfo('fromstore')).shards, 2);
  t.same(await view(n2, 'fromstore'), local, 'a Store\'s snapshot recovers into the cluster');
  t.ok(await n1.dropDataset('fromstore'));
  t.ok(await n1.dropDataset('copy'));

  await n2.deleteSnapshot('docs', snap.name);
  t.same(await n2.listSnapshots('docs'), []);

  // always_ram false: each image part carries its originals file, and the cluster's copies keep theirs
  const durable = await Store.open({ path: join(dir, 'durable'), threads: 1 });
  t.teardown(() => durable.close());
  await durable.createDataset('disk', { dim: DIM, shards: 2, M: 12, efConstruction: 80, ef: 50, metric: 'cosine', quantization: { scalar: { type: 'int8', alwaysRam: false } } });
  await fill(durable, 'disk');
  const diskView = await view(durable, 'disk');
  const diskFile = await durable.snapshotPath('disk', (await durable.createSnapshot('disk')).name);
  await n3.recoverSnapshot('disk', diskFile);
  t.match((await n1.datasetInfo('disk')).quantization, { scalar: { alwaysRam: false } });
  t.same(await view(n1, 'disk'), diskView, 'a durable Store\'s alwaysRam false snapshot recovers into the cluster: its vectors are the originals');
  const back = await Store.open({ path: join(dir, 'back'), threads: 1 });
  t.teardown(() => back.close());
  await back.recoverSnapshot('disk', await n2.snapshotPath('disk', (await n2.createSnapshot('disk')).name));
  t.same(await view(back, 'disk'), diskView, 'and the cluster\'s snapshot of it back into a durable Store');
  t.ok(await n1.dropDataset('disk'));
  await t.rejects(n2.snapshotPath('docs', snap.name), { code: ErrorCode.NOT_FOUND }, 'deleted');
  await writeFile(file, bytes);
});

t.test('recovered over an existing dataset it replaces it on every node; the old incarnation goes; writes go on', async (t) => {
  const old = await n1.node.dataset('docs');
  await n1.insert('docs', Array.from({ length: 500 }, (_, i) => 100_000 + i), vectors(500, 7), { payloads: Array.from({ length: 500 }, () => ({ tag: 'p3' })) });
  await n1.delete('docs', ids.slice(1000, 1100));
  t.equal(await n3.count('docs'), N - 200 + 500 - 100, 'written after the snapshot');

  const info = await n2.recoverSnapshot('docs', file);
  t.equal(info.replicas, 2, 'the replaced dataset\'s copies per shard');
  const now = await n1.node.dataset('docs');
  t.not(now.id, old.id, 'a new incarnation');
  for (const n of nodes) t.same(await view(n, 'docs'), before, `${n.nodeId} answers as the snapshot: the later writes are gone`);
  await until('the old incarnation off every node and out of NATS', async () => nodes.every((n) => !n.node.roles().copies.some((c) => c.dataset === old.id))
    && !(await streams()).includes(streamName(old.id))
    && !['n1', 'n2', 'n3'].some((n) => existsSync(join(dir, n, datasetToken(old.id)))), 20_000);

  await n3.insert('docs', [7_000_001, 7_000_002], vectors(2, 9), { payloads: [{ tag: 'p3' }, { tag: 'p3' }] });
  t.equal(await n1.count('docs'), N - 200 + 2, 'a write after the recovery');
  await until('every copy has it', async () => (await Promise.all(nodes.map((n) => n.count('docs', { consistency: 'any' })))).every((c) => c === N - 200 + 2), 20_000);
});

t.test('a snapshot taken while writes go on holds every write acknowledged before it began, and none never made', async (t) => {
  await n1.createDataset('busy', { dim: DIM, shards: 3, replicas: 2, M: 8, efConstruction: 32 });
  const acked = new Set<number>();
  const tried = new Set<number>();
  let stop = false;
  const writer = async (via: ClusterStore, from: number): Promise<void> => {
    for (let b = 0; !stop; b++) {
      const batch = Array.from({ length: 50 }, (_, i) => from + b * 50 + i);
      for (const id of batch) tried.add(id);
      await via.insert('busy', batch, vectors(50, from + b));
      for (const id of batch) acked.add(id);
    }
  };
  const writers = [writer(n1, 0), writer(n3, 1_000_000)];
  await until('writes under way', () => acked.size >= 1000, 30_000);
  const before = new Set(acked);
  const snap = await n2.createSnapshot('busy');
  stop = true;
  await Promise.all(writers);
  await n2.recoverSnapshot('busy-then', await n2.snapshotPath('busy', snap.name));
  const page = await n3.scroll('busy-then', { limit: 100_000, withVector: false });
  const got = new Set(page.points.map((p) => p.id as number));
  t.same([...before].filter((id) => !got.has(id)), [], `all ${before.size} writes acknowledged before it began are in it (${got.size} in all)`);
  t.same([...got].filter((id) => !tried.has(id)), [], 'nothing that was never written');
  t.equal(got.size, page.points.length, 'no id twice');
  await n1.dropDataset('busy');
  await n1.dropDataset('busy-then');
});

t.test('a bad snapshot changes nothing and leaves nothing behind', async (t) => {
  const id = (await n1.node.dataset('docs')).id;
  const count = await n1.count('docs');
  const had = await streams();
  const bytes = await readFile(file);

  const flipped = Buffer.from(bytes);
  flipped[Math.floor(flipped.length / 2)]! ^= 0x40;
  const bad = join(dir, 'flipped.snapshot');
  await writeFile(bad, flipped);
  await t.rejects(n1.recoverSnapshot('docs', bad), { code: ErrorCode.CORRUPT }, 'a flipped byte');

  // a valid file whose entry says another dim than its images hold
  const { entry, shards } = await readSnapshot(file);
  const parts = await Promise.all(shards.map(async (s, i) => {
    const path = join(dir, `part-${i}`);
    await writeFile(path, bytes.subarray(s.offset, s.offset + s.length));
    return { lsn: s.lsn, path };
  }));
  const lying = join(dir, 'lying.snapshot');
  await writeSnapshot({ file: lying, entry: { ...entry, dim: DIM * 2 }, parts });
  await t.rejects(n2.recoverSnapshot('docs', lying), { code: ErrorCode.CORRUPT, message: /holds dim 16/ }, 'an entry that is not its images\'');

  await t.rejects(n3.recoverSnapshot('docs', join(dir, 'none.snapshot')), { code: ErrorCode.IO }, 'a file that is not there');

  t.equal((await n1.node.dataset('docs')).id, id, 'the same incarnation');
  t.equal(await n2.count('docs'), count, 'the same points');
  t.same(await streams(), had, 'no stream left behind');

  await t.rejects(n1.createSnapshot('none'), { code: ErrorCode.NOT_FOUND }, 'a dataset that is not there');
  await t.rejects(n1.createSnapshot('bad name!'), { code: ErrorCode.INVALID_ARGUMENT });
  await t.rejects(n1.snapshotPath('docs', '../x.snapshot'), { code: ErrorCode.INVALID_ARGUMENT }, 'a path is not a snapshot name');
  await t.rejects(n1.snapshotPath('docs', 'docs-none.snapshot'), { code: ErrorCode.NOT_FOUND });
  await t.rejects(Store.open({ path: join(dir, 'x'), snapshotsPath: '', cluster: { servers: cluster.servers, nodeId: 'x' } }), { code: ErrorCode.INVALID_ARGUMENT });
});

t.test('random upsert / delete / snapshot / recover sequences answer as a Map', async (t) => {
  type Op = { kind: 'upsert'; ids: number[]; seed: number } | { kind: 'delete'; ids: number[] } | { kind: 'snapshot' } | { kind: 'recover'; pick: number };
  const ID = fc.integer({ min: 0, max: 199 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('upsert' as const), ids: fc.uniqueArray(ID, { minLength: 1, maxLength: 60 }), seed: fc.integer({ min: 1, max: 1e6 }) }),
    fc.record({ kind: fc.constant('delete' as const), ids: fc.uniqueArray(ID, { minLength: 1, maxLength: 30 }) }),
    fc.constant({ kind: 'snapshot' as const }),
    fc.record({ kind: fc.constant('recover' as const), pick: fc.nat() }),
  );
  let run = 0;
  await fc.assert(fc.asyncProperty(fc.array(fc.tuple(op, fc.nat(2)), { minLength: 2, maxLength: 6 }), async (steps) => {
    const name = `prop${run++}`;
    await n1.createDataset(name, { dim: DIM, shards: 2, replicas: 2, M: 8, efConstruction: 32 });
    let model = new Map<number, number[]>();
    const saved: { file: string; model: Map<number, number[]> }[] = [];
    for (const [o, via] of steps) {
      const n = nodes[via]!;
      if (o.kind === 'upsert') {
        const v = vectors(o.ids.length, o.seed);
        await n.insert(name, o.ids, v);
        o.ids.forEach((id, i) => model.set(id, Array.from(v.subarray(i * DIM, (i + 1) * DIM))));
      } else if (o.kind === 'delete') {
        await n.delete(name, o.ids);
        for (const id of o.ids) model.delete(id);
      } else if (o.kind === 'snapshot') {
        saved.push({ file: await n.snapshotPath(name, (await n.createSnapshot(name)).name), model: new Map(model) });
      } else if (saved.length > 0) {
        const s = saved[o.pick % saved.length]!;
        await n.recoverSnapshot(name, s.file);
        model = new Map(s.model);
      }
    }
    const page = await nodes[(steps.length) % 3]!.scroll(name, { limit: 1000, withVector: true });
    const got = new Map(page.points.map((p) => [p.id as number, Array.from(p.vector!)]));
    const want = new Map([...model].map(([id, v]) => [id, Array.from(Float32Array.from(v))]));
    await n1.dropDataset(name);
    t.same([...got].sort((a, b) => a[0] - b[0]), [...want].sort((a, b) => a[0] - b[0]), `${name}: ${steps.map(([o]) => o.kind).join(', ')}`);
    return true;
  }), { numRuns: 6 });
});

t.test('a snapshot asked for while a node that leads shards leaves is taken from the new leaders', async (t) => {
  await n1.createDataset('moving', { dim: DIM, shards: 3, replicas: 2, M: 8, efConstruction: 32 });
  const n = 3000;
  await n1.insert('moving', Array.from({ length: n }, (_, i) => i), vectors(n, 21));
  await until('n3 leads a shard', () => n3.node.roles().leading.some((l) => l.dataset === 'moving'), 20_000);
  const led = n3.node.roles().leading.filter((l) => l.dataset === 'moving').map((l) => l.shard);
  const [snap] = await Promise.all([n2.createSnapshot('moving'), n3.close()]);
  await n2.recoverSnapshot('moving-then', await n2.snapshotPath('moving', snap.name));
  t.equal(await n1.count('moving-then'), n, `every point, n3 having led shard(s) ${led.join(', ')} when it left`);
});
