import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, readFile, writeFile, access } from 'node:fs/promises';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirLock, LOCK_FILE } from '../host/storage/lock.js';
import { QuiverError } from '../host/errors.js';

// Child mode: this same file, run with QUIVER_LOCK_CHILD=hold|try <dir>.
const mode = process.env.QUIVER_LOCK_CHILD;
if (mode) {
  const dir = process.env.QUIVER_LOCK_DIR!;
  try {
    await DirLock.acquire(dir);
    process.stdout.write(`locked ${process.pid}\n`);
    if (mode === 'hold') setInterval(() => undefined, 1000);
    else process.exit(0);
  } catch (err) {
    process.stdout.write(`${(err as QuiverError).code} ${(err as Error).message}\n`);
    process.exit(3);
  }
} else {
  const self = fileURLToPath(import.meta.url);

  const child = (which: 'hold' | 'try', dir: string): { proc: ChildProcess; line: Promise<string>; exit: Promise<number | null> } => {
    const proc = spawn(process.execPath, [...process.execArgv, self], {
      env: { ...process.env, QUIVER_LOCK_CHILD: which, QUIVER_LOCK_DIR: dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const line = new Promise<string>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(out.slice(0, nl));
      });
      proc.once('exit', () => reject(new Error(`child exited before answering: ${out}`)));
    });
    line.catch(() => undefined);
    const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    return { proc, line, exit };
  };

  const tempDir = async (t: { teardown(fn: () => unknown): void }): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-lock-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    return join(dir, 'data');
  };

  t.test('a second open in the same process fails at once, naming the directory and the pid', async (t) => {
    const dir = await tempDir(t);
    const lock = await DirLock.acquire(dir);
    await t.rejects(DirLock.acquire(dir), { code: 'QUIVER_ERR_LOCKED', message: `data directory ${dir} is in use: held by process ${process.pid} (${join(dir, LOCK_FILE)})` });
    await lock.release();
    await lock.release();
    await t.rejects(access(join(dir, LOCK_FILE)), { code: 'ENOENT' }, 'released: the file is gone');
    const again = await DirLock.acquire(dir);
    await again.release();
  });

  t.test('another process holding the lock: refused; SIGKILLed: taken over', async (t) => {
    const dir = await tempDir(t);
    const holder = child('hold', dir);
    const line = await holder.line;
    t.equal(line, `locked ${holder.proc.pid}`, 'the child holds the lock');
    await t.rejects(DirLock.acquire(dir), { code: 'QUIVER_ERR_LOCKED', message: new RegExp(`held by process ${holder.proc.pid} `) });
    holder.proc.kill('SIGKILL');
    await holder.exit;
    t.match(await readFile(join(dir, LOCK_FILE), 'utf8'), `"pid":${holder.proc.pid}`, 'the dead process left its lock behind');
    const lock = await DirLock.acquire(dir);
    t.match(await readFile(join(dir, LOCK_FILE), 'utf8'), `"pid":${process.pid}`, 'taken over');
    await t.rejects(access(join(dir, 'LOCK.takeover')), { code: 'ENOENT' }, 'no takeover file left');
    const other = child('try', dir);
    t.equal(await other.exit, 3, 'a child cannot take it from a live holder');
    t.match(await other.line, `QUIVER_ERR_LOCKED data directory ${dir} is in use: held by process ${process.pid}`);
    await lock.release();
    const next = child('try', dir);
    t.equal(await next.exit, 0, 'released: a child takes it');
  });

  t.test('stale, foreign and unreadable lock files', async (t) => {
    const dir = await tempDir(t);
    const lock = await DirLock.acquire(dir);
    const path = join(dir, LOCK_FILE);
    const mine = await readFile(path, 'utf8');
    await lock.release();

    // A holder on another host cannot be checked: never taken over.
    await writeFile(path, JSON.stringify({ pid: 1, start: '', host: `not-${hostname()}`, token: 'x' }));
    await t.rejects(DirLock.acquire(dir), { code: 'QUIVER_ERR_LOCKED', message: /held by process 1 on host not-/ });

    // A half-written lock file.
    await writeFile(path, '{"pid":');
    await t.rejects(DirLock.acquire(dir), { code: 'QUIVER_ERR_LOCKED', message: /cannot be read as a lock \(remove it if no quiver process uses/ });

    // Our own pid with another start time: a previous incarnation of this pid (a restarted container's pid 1).
    const reused = { ...(JSON.parse(mine) as object), start: 'other-boot/1', token: 'old' };
    await writeFile(path, JSON.stringify(reused));
    if (process.platform === 'linux') {
      const own = await DirLock.acquire(dir);
      t.notMatch(await readFile(path, 'utf8'), '"token":"old"', 'our pid from an earlier incarnation is stale: taken over');
      await own.release();
    } else {
      await t.rejects(DirLock.acquire(dir), { code: 'QUIVER_ERR_LOCKED' }, 'without /proc our own pid counts as live');
    }
    await writeFile(path, JSON.stringify(reused));
    if (process.platform === 'linux') {
      // Our pid is always live to us, so use a live child's pid with a start time that is not its own.
      const holder = child('hold', join(dir, 'elsewhere'));
      await holder.line;
      await writeFile(path, JSON.stringify({ ...reused, pid: holder.proc.pid }));
      const taken = await DirLock.acquire(dir);
      t.match(await readFile(path, 'utf8'), `"pid":${process.pid}`, 'a reused pid is recognised by its start time');
      await taken.release();
      holder.proc.kill('SIGKILL');
      await holder.exit;
    } else {
      await t.rejects(DirLock.acquire(dir), { code: 'QUIVER_ERR_LOCKED' }, 'without /proc a live pid counts as the holder');
    }

    // release() never deletes a lock that is not ours.
    const l2 = await DirLock.acquire(dir);
    await writeFile(path, JSON.stringify({ pid: 1, start: '', host: 'h', token: 'someone-else' }));
    await l2.release();
    t.match(await readFile(path, 'utf8'), 'someone-else', 'a foreign lock is left alone');
    await t.rejects(DirLock.acquire(''), TypeError);
  });
}
