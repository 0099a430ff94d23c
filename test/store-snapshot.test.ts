import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store, type Id } from '../host/index.js';
import { rng } from './helpers/data.js';

const DIM = 16;
const N = 3000;

async function tmp(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'quiver-store-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function vectors(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * DIM }, () => r() * 2 - 1);
}

const queries = vectors(25, 99);
const ids: Id[] = Array.from({ length: N }, (_, i) => (i % 5 === 0 ? `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` : i));
const payloads = ids.map((id, i) => ({ i, tag: `p${i % 7}`, id: String(id) }));

/** A dataset with points, payloads and deletes. */
async function fill(store: Store, name: string): Promise<void> {
  await store.createDataset(name, { dim: DIM, metric: 'cosine', M: 12, efConstruction: 80, ef: 50, shards: 3 });
  await store.insert(name, ids, vectors(N, 1), { payloads });
  await store.delete(name, ids.slice(0, 200).filter((_, i) => i % 2 === 0));
}

/** Everything a reader can see of a dataset: options, every point in order, and the answers to the queries. */
async function view(store: Store, name: string): Promise<unknown> {
  const { committedBytes: _c, liveBytes: _l, ...info } = await store.datasetInfo(name);
  const points = [];
  for (let offset: Id | undefined, first = true; first || offset !== undefined; first = false) {
    const page = await store.scroll(name, { limit: 500, ...(offset === undefined ? {} : { offset }) });
    points.push(...page.points.map((p) => ({ id: p.id, vector: Array.from(p.vector!), payload: p.payload })));
    offset = page.nextOffset;
  }
  const hits = (await store.searchBatch(name, queries, 10, { withPayload: true })).map((h) => ({ ids: h.ids, distances: Array.from(h.distances), payloads: h.payloads }));
  const retrieved = await store.retrieve(name, ids.slice(150, 260));
  return { info: { ...info, name: undefined }, points, hits, retrieved: retrieved.map((p) => ({ ...p, vector: Array.from(p.vector!) })) };
}

t.test('in memory: create, list, path, recover into a new name and over an existing one, delete', async (t) => {
  const dir = await tmp(t);
  const store = await Store.open({ threads: 2, snapshotsPath: dir });
  t.teardown(() => store.close());
  t.equal(store.snapshotsPath, dir);
  await fill(store, 'docs');
  const before = await view(store, 'docs');
  // what a dead process left (pid 999999999 is past any pid_max) goes; this process's own stays
  await mkdir(join(dir, '.parts-999999999-1-abc'));
  await writeFile(join(dir, '.upload-999999999-abc.snapshot'), 'x');
  await writeFile(join(dir, `.upload-${process.pid}-abc.snapshot`), 'x');

  const snap = await store.createSnapshot('docs');
  t.same((await readdir(dir)).sort(), [`.upload-${process.pid}-abc.snapshot`, 'docs'], 'leftovers of a dead process are gone, the part files too');
  await rm(join(dir, `.upload-${process.pid}-abc.snapshot`));
  t.match(snap.name, /^docs-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.snapshot$/);
  t.match(snap.creationTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$/, 'ISO without the zone letter, as Qdrant');
  const file = await store.snapshotPath('docs', snap.name);
  t.equal(file, join(dir, 'docs', snap.name));
  const bytes = await readFile(file);
  t.equal(snap.size, bytes.length);
  t.equal(snap.checksum, createHash('sha256').update(bytes).digest('hex'));
  t.same(await store.listSnapshots('docs'), [snap]);

  // a second snapshot in the same millisecond still gets its own name
  const [a, b] = await Promise.all([store.createSnapshot('docs'), store.createSnapshot('docs')]);
  t.not(a.name, b.name);
  t.equal((await store.listSnapshots('docs')).length, 3);

  const copy = await store.recoverSnapshot('copy', file);
  t.match(copy, { name: 'copy', dim: DIM, metric: 'cosine', M: 12, efConstruction: 80, ef: 50, shards: 3, count: N - 100 });
  t.same(await view(store, 'copy'), before, 'the recovered dataset answers exactly as the original');

  // over an existing dataset: what was written after the snapshot is gone
  await store.insert('docs', [900_001, 900_002], vectors(2, 5));
  await store.delete('docs', ids.slice(1000, 1100));
  t.equal(await store.count('docs'), N - 200 + 2);
  const replaced = await store.recoverSnapshot('docs', file);
  t.equal(replaced.count, N - 100);
  t.same(await view(store, 'docs'), before);
  t.same((await store.get('docs', [900_001]))[0], undefined);

  // over one with other options: the snapshot's options and shard count win
  await store.createDataset('small', { dim: 4, shards: 1 });
  t.match(await store.recoverSnapshot('small', file), { dim: DIM, shards: 3, metric: 'cosine' });
  t.same(await view(store, 'small'), before);

  // the copies are independent
  await store.delete('copy', ids.slice(500, 600));
  t.same(await view(store, 'docs'), before);

  await store.deleteSnapshot('docs', snap.name);
  t.same((await store.listSnapshots('docs')).map((s) => s.name).sort(), [a.name, b.name].sort());
  t.notOk(existsSync(file) || existsSync(`${file}.sha256`), 'the file and its checksum are gone');
  await t.rejects(store.snapshotPath('docs', snap.name), { code: 'QUIVER_ERR_NOT_FOUND' });
  await t.rejects(store.deleteSnapshot('docs', snap.name), { code: 'QUIVER_ERR_NOT_FOUND' });
  await t.rejects(store.recoverSnapshot('docs', file), { code: 'QUIVER_ERR_IO', message: /ENOENT/ });
});

t.test('bad names and a damaged snapshot are refused and change nothing', async (t) => {
  const dir = await tmp(t);
  const store = await Store.open({ threads: 2, snapshotsPath: dir });
  t.teardown(() => store.close());
  await fill(store, 'docs');
  const before = await view(store, 'docs');
  const snap = await store.createSnapshot('docs');
  const file = await store.snapshotPath('docs', snap.name);

  for (const bad of ['../docs', 'a/b', '..', '', 'x\\y']) {
    await t.rejects(store.snapshotPath('docs', bad), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, JSON.stringify(bad));
    await t.rejects(store.deleteSnapshot('docs', bad), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  }
  await t.rejects(store.listSnapshots('../etc'), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  await t.rejects(store.createSnapshot('absent'), { code: 'QUIVER_ERR_NOT_FOUND' });
  await t.rejects(store.recoverSnapshot('a/b', file), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  t.same(await store.listSnapshots('never-was'), []);

  const whole = await readFile(file);
  for (const at of [3, 30, Math.floor(whole.length / 2), whole.length - 2]) {
    const bad = Buffer.from(whole);
    bad[at] ^= 0x10;
    const badFile = join(dir, `bad-${at}.snapshot`);
    await writeFile(badFile, bad);
    await t.rejects(store.recoverSnapshot('docs', badFile), { code: 'QUIVER_ERR_CORRUPT', message: new RegExp(`^${badFile}: corrupt at byte \\d+`) });
    await t.rejects(store.recoverSnapshot('ghost', badFile), { code: 'QUIVER_ERR_CORRUPT' });
  }
  await writeFile(join(dir, 'cut.snapshot'), whole.subarray(0, whole.length - 1000));
  await t.rejects(store.recoverSnapshot('docs', join(dir, 'cut.snapshot')), { code: 'QUIVER_ERR_CORRUPT' });
  t.same(store.listDatasets(), ['docs']);
  t.same(await view(store, 'docs'), before);
});

t.test('durable: snapshots under <path>/snapshots; recovered datasets survive close and reopen', async (t) => {
  const path = await tmp(t);
  let store = await Store.open({ threads: 2, path });
  t.equal(store.snapshotsPath, join(path, 'snapshots'));
  await fill(store, 'docs');
  // a write left to apply on its own still makes it into the snapshot (it is taken after every earlier write)
  await store.insert('docs', [777_777], vectors(1, 7), { wait: false });
  const before = await view(store, 'docs');
  const snap = await store.createSnapshot('docs');
  const file = await store.snapshotPath('docs', snap.name);
  t.ok(file.startsWith(join(path, 'snapshots', 'docs')));

  t.same(await view(store, 'docs'), before, 'taking the snapshot changed nothing');
  await store.recoverSnapshot('copy', file);
  t.same(await view(store, 'copy'), before);
  // over the durable original, after more writes
  await store.insert('docs', [888_888], vectors(1, 8));
  const datasetDirs = await readdir(join(path, 'datasets'));
  await store.recoverSnapshot('docs', file);
  t.same(await view(store, 'docs'), before);
  const after = await readdir(join(path, 'datasets'));
  t.equal(after.length, datasetDirs.length, 'the replaced dataset\'s directory is gone, the new one is there');
  t.not(after.sort().join(), datasetDirs.sort().join());
  // the restored copy takes writes, which are durable like any
  await store.insert('copy', [999_999], vectors(1, 9));
  await store.close();

  store = await Store.open({ threads: 2, path });
  t.teardown(() => store.close());
  t.same(store.listDatasets().sort(), ['copy', 'docs']);
  t.same(await view(store, 'docs'), before, 'the recovered dataset survived the restart');
  t.equal(await store.count('copy'), N - 100 + 2);
  t.ok((await store.get('copy', [999_999]))[0] instanceof Float32Array);
  t.same(await store.listSnapshots('docs'), [snap], 'the snapshot is still listed');
});

t.test('durable: a dataset that refuses to open (damaged images) is repaired from its snapshot', async (t) => {
  const path = await tmp(t);
  let store = await Store.open({ threads: 2, path });
  await fill(store, 'docs');
  const before = await view(store, 'docs');
  const file = await store.snapshotPath('docs', (await store.createSnapshot('docs')).name);
  await store.close();
  // every image of one shard damaged: no image to fall back to
  const [id] = await readdir(join(path, 'datasets'));
  const shardDir = join(path, 'datasets', id!, 'shard-0');
  for (const name of (await readdir(shardDir)).filter((n) => n.endsWith('.qvi'))) {
    const bytes = await readFile(join(shardDir, name));
    bytes[100] ^= 0xff;
    await writeFile(join(shardDir, name), bytes);
  }
  store = await Store.open({ threads: 2, path });
  t.teardown(() => store.close());
  t.match(store.recovery, [{ dataset: 'docs', error: /corrupt/ }], 'the dataset refuses to open');
  await t.rejects(store.count('docs'), { code: 'QUIVER_ERR_CORRUPT' });
  t.match(await store.recoverSnapshot('docs', file), { name: 'docs', count: N - 100 });
  t.same(await view(store, 'docs'), before);
  t.notOk(existsSync(join(path, 'datasets', id!)), 'the damaged files are gone');
});

t.test('a snapshot of an in-memory store recovers into a durable one, and back', async (t) => {
  const snaps = await tmp(t);
  const path = await tmp(t);
  const mem = await Store.open({ threads: 1, snapshotsPath: snaps });
  t.teardown(() => mem.close());
  await fill(mem, 'docs');
  const before = await view(mem, 'docs');
  const file = await mem.snapshotPath('docs', (await mem.createSnapshot('docs')).name);

  let durable = await Store.open({ threads: 2, path });
  await durable.recoverSnapshot('docs', file);
  t.same(await view(durable, 'docs'), before);
  await durable.close();
  durable = await Store.open({ threads: 2, path });
  t.teardown(() => durable.close());
  t.same(await view(durable, 'docs'), before);
  const back = await durable.snapshotPath('docs', (await durable.createSnapshot('docs')).name);
  t.ok((await stat(back)).size > 0);
  await mem.recoverSnapshot('again', back);
  t.same(await view(mem, 'again'), before);
});

t.test('recovery is a write under maxMemoryBytes: refused over the limit, nothing changes', async (t) => {
  const dir = await tmp(t);
  const source = await Store.open({ threads: 1, snapshotsPath: dir });
  t.teardown(() => source.close());
  await fill(source, 'docs');
  const file = await source.snapshotPath('docs', (await source.createSnapshot('docs')).name);
  // a limit below what the process holds already: every write is refused
  const tight = await Store.open({ threads: 1, snapshotsPath: dir, maxMemoryBytes: 1024 * 1024 });
  t.teardown(() => tight.close());
  await t.rejects(tight.recoverSnapshot('docs', file), { code: 'QUIVER_ERR_MEMORY_LIMIT' });
  t.same(tight.listDatasets(), []);
});

t.test('the default snapshots path in memory is in the OS temp dir', async (t) => {
  const store = await Store.open({ threads: 1 });
  t.teardown(() => store.close());
  t.equal(store.snapshotsPath, join(tmpdir(), `quiver-snapshots-${process.pid}`));
  await t.rejects(Store.open({ threads: 1, snapshotsPath: '' as string }), TypeError);
});
