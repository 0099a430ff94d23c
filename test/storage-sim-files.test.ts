// The simulated file system the durability tests rely on: what it keeps
// across crash() must be exactly what POSIX promises, and its visible
// behaviour must match the real file system's.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimFiles } from '../host/storage/sim-files.js';
import { nodeFiles, readWhole, replaceFile, type Files } from '../host/storage/files.js';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

t.test('crash keeps only what was synced: file data at datasync, entries at syncDir', async (t) => {
  const sim = new SimFiles();
  await sim.mkdir('/d');
  const a = await sim.open('/d/a', 'w');
  await a.write(bytes(1, 2, 3), 0);
  await a.datasync();
  sim.crash();
  t.same(await sim.readdir('/d'), [], 'a synced file whose entry was never synced is gone');

  const b = await sim.open('/d/b', 'w');
  await b.write(bytes(1, 2, 3), 0);
  await b.datasync();
  await sim.syncDir('/d');
  await b.write(bytes(4, 5), 3);
  t.same(await readWhole(sim, '/d/b'), bytes(1, 2, 3, 4, 5), 'reads see unsynced bytes');
  sim.crash();
  await t.rejects(b.write(bytes(9), 0), { code: 'EBADF' }, 'handles die in a crash');
  t.same(await readWhole(sim, '/d/b'), bytes(1, 2, 3), 'unsynced bytes are lost');

  await sim.rename('/d/b', '/d/c');
  sim.crash();
  t.same(await sim.readdir('/d'), ['b'], 'an unsynced rename is undone');
  await sim.rename('/d/b', '/d/c');
  await sim.syncDir('/d');
  await sim.unlink('/d/c');
  sim.crash();
  t.same(await sim.readdir('/d'), ['c'], 'an unsynced unlink is undone');
  await replaceFile(sim, '/d/c', bytes(7));
  sim.crash();
  t.same(await readWhole(sim, '/d/c'), bytes(7), 'replaceFile is durable');
});

t.test('faults: injected errors, partial writes, dirty pages dropped by a failed sync, power cut', async (t) => {
  const sim = new SimFiles();
  await sim.mkdir('/d');
  const h = await sim.open('/d/f', 'w');
  await sim.syncDir('/d');
  sim.failNext('write', 'ENOSPC', 1, 2);
  await t.rejects(h.write(bytes(1, 2, 3, 4), 0), { code: 'ENOSPC' });
  t.same(await readWhole(sim, '/d/f'), bytes(1, 2), 'a short write landed its prefix');
  await h.write(bytes(1, 2, 3, 4), 0);
  sim.failNext('sync', 'EIO');
  await t.rejects(h.datasync(), { code: 'EIO' });
  await h.write(bytes(9), 3);
  await h.datasync();
  sim.crash();
  t.same(await readWhole(sim, '/d/f'), bytes(0, 0, 0, 9), 'pages dirty at the failed sync never reach the disk; a re-written byte does');

  const g = await sim.open('/d/f', 'r+');
  sim.powerCutAfter(1);
  await g.write(bytes(5), 0);
  await t.rejects(g.datasync(), { code: 'EIO', message: /power cut/ });
  await t.rejects(sim.rename('/d/f', '/d/g'), { code: 'EIO' });
  sim.crash();
  t.same(await readWhole(sim, '/d/f'), bytes(0, 0, 0, 9), 'nothing after the cut');
  t.equal(sim.counts.sync >= 3, true, 'operations are counted');
});

/** The same operations must look the same on both file systems. */
async function script(files: Files, dir: string): Promise<unknown[]> {
  const out: unknown[] = [];
  await files.mkdir(join(dir, 'x', 'y'));
  const h = await files.open(join(dir, 'x', 'y', 'f'), 'wx');
  await h.write(bytes(1, 2, 3, 4, 5), 0);
  await h.write(bytes(8), 7);
  out.push(await h.size());
  await h.truncate(6);
  out.push(await h.size());
  out.push(await h.read(new Uint8Array(1), 0).then(() => 'read', (e: { code: string }) => e.code));
  await h.datasync();
  await h.close();
  const r = await files.open(join(dir, 'x', 'y', 'f'), 'r+');
  const into = new Uint8Array(10);
  out.push(await r.read(into, 2, 10), [...into]);
  await r.sync();
  await r.close();
  out.push(await files.open(join(dir, 'x', 'y', 'f'), 'wx').then(() => 'opened', (e: { code: string }) => e.code));
  out.push(await files.open(join(dir, 'nope'), 'r').then(() => 'opened', (e: { code: string }) => e.code));
  await files.rename(join(dir, 'x', 'y', 'f'), join(dir, 'x', 'y', 'g'));
  await files.syncDir(join(dir, 'x', 'y'));
  out.push(await files.readdir(join(dir, 'x', 'y')), await files.readdir(join(dir, 'missing')));
  await replaceFile(files, join(dir, 'x', 'm'), bytes(3, 2, 1));
  out.push([...(await readWhole(files, join(dir, 'x', 'm')))]);
  const w = await files.open(join(dir, 'x', 'm'), 'w');
  out.push(await w.size());
  await w.close();
  await files.unlink(join(dir, 'x', 'm'));
  out.push((await files.readdir(join(dir, 'x'))).sort());
  return out;
}

t.test('the simulated and the real file system behave alike', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'quiver-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const real = await script(nodeFiles, dir);
  const sim = await script(new SimFiles(), '/root');
  t.same(sim, real);
  t.same(real[0], 8, 'sanity: a write past the end fills the gap');
});
