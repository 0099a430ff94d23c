/**
 * The directory lock: one writer per data directory, for the life of the store.
 *
 *   <dir>/LOCK            {"pid":1234,"start":"98765","host":"box","token":"…"}
 *   <dir>/LOCK.takeover   exists only while a process replaces a stale LOCK
 *
 * Acquire creates LOCK exclusively (O_EXCL). If it exists, its holder is
 * checked: a live holder (same host, `kill(pid, 0)` succeeds or says EPERM,
 * and, on Linux, the boot id and /proc/<pid>/stat start time match what it
 * recorded) means QUIVER_ERR_LOCKED at once, naming the directory and the
 * pid. A lock this process holds is refused too (a second open in the same
 * process); our own pid with another start time is a previous incarnation
 * (a container restarted as pid 1) and is stale. A dead holder (SIGKILLed, crashed) left a stale LOCK: the
 * taker creates LOCK.takeover exclusively, re-reads LOCK to check it is
 * still the same stale one, deletes it, removes LOCK.takeover, and retries
 * the exclusive create. Only one process can hold LOCK.takeover, so two
 * processes cannot both delete the stale lock and each think they won.
 *
 * Limits: a lock written on another host (a shared file system) is never
 * taken over (liveness cannot be checked there): an operator removes it.
 * Without /proc (macOS, Windows) a dead holder whose pid was reused by an
 * unrelated live process (or by this one) looks alive: the error says which
 * pid and file to check. Another worker thread of this process that holds
 * the lock is recognised only by the start time, so it is refused too. A process that dies while holding LOCK.takeover leaves it behind;
 * the next taker removes it if its pid is dead, with a narrow race if two
 * takers do so at the same instant.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';
import { errorCode } from './files.js';

export const LOCK_FILE = 'LOCK';
const TAKEOVER_FILE = 'LOCK.takeover';
const ATTEMPTS = 5;

interface Holder {
  pid: number;
  start: string;
  host: string;
  token: string;
}

/** Lock files this module instance holds (a second open in this process is refused by this). */
const heldHere = new Set<string>();

/**
 * Which incarnation of a pid this is: the boot id and the process start
 * time (field 22 of /proc/<pid>/stat, in ticks since boot); '' without /proc.
 */
async function startTime(pid: number): Promise<string> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const boot = (await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] === undefined ? '' : `${boot}/${fields[19]}`;
  } catch {
    return '';
  }
}

async function alive(h: Holder, path: string, me: Holder): Promise<boolean> {
  if (h.host !== me.host) return true;
  if (h.pid === process.pid) {
    if (heldHere.has(path)) return true;
    // Our own pid but another start time: a previous incarnation (a container restarted as pid 1 again).
    // The same start time, or none known: maybe another thread of this process; count it as live.
    return !(h.start !== '' && me.start !== '' && h.start !== me.start);
  }
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if (errorCode(err) === 'ESRCH') return false;
  }
  if (h.start === '') return true;
  const now = await startTime(h.pid);
  return now === '' || now === h.start;
}

async function readHolder(path: string): Promise<Holder | null | 'unreadable'> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return null;
    throw err;
  }
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    if (typeof h.pid === 'number' && typeof h.host === 'string' && typeof h.start === 'string' && typeof h.token === 'string') return h as Holder;
  } catch {
    // fall through: a half-written lock file (its writer died between create and write)
  }
  return 'unreadable';
}

async function createExclusive(path: string, content: string): Promise<boolean> {
  let h: fs.FileHandle;
  try {
    h = await fs.open(path, 'wx');
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  }
  try {
    await h.writeFile(content);
    await h.sync();
  } finally {
    await h.close();
  }
  return true;
}

function locked(dir: string, why: string): QuiverError {
  return new QuiverError(ErrorCode.LOCKED, `data directory ${dir} is in use: ${why}`);
}

export class DirLock {
  private released = false;

  private constructor(
    readonly dir: string,
    readonly path: string,
    private readonly token: string,
  ) {}

  /** Takes the lock on `dir` (created if missing) or fails at once with QUIVER_ERR_LOCKED. */
  static async acquire(dir: string): Promise<DirLock> {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('dir must be a non-empty string');
    const path = join(dir, LOCK_FILE);
    const me: Holder = { pid: process.pid, start: await startTime(process.pid), host: hostname(), token: randomUUID() };
    try {
      await fs.mkdir(dir, { recursive: true });
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        if (await createExclusive(path, JSON.stringify(me))) {
          heldHere.add(path);
          return new DirLock(dir, path, me.token);
        }
        const holder = await readHolder(path);
        if (holder === null) continue; // released meanwhile: try again
        if (holder === 'unreadable') throw locked(dir, `${path} exists but cannot be read as a lock (remove it if no quiver process uses ${dir})`);
        if (await alive(holder, path, me)) {
          const where = holder.host === me.host ? '' : ` on host ${holder.host}`;
          throw locked(dir, `held by process ${holder.pid}${where} (${path})`);
        }
        await takeOver(dir, path, holder, me);
      }
      throw locked(dir, `${path} kept changing hands; try again`);
    } catch (err) {
      if (err instanceof QuiverError) throw err;
      throw new QuiverError(ErrorCode.IO, `locking data directory ${dir} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Gives the lock up (only if it is still ours). Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.path);
    const holder = await readHolder(this.path);
    if (holder !== null && holder !== 'unreadable' && holder.token === this.token) {
      await fs.unlink(this.path).catch((err: unknown) => {
        if (errorCode(err) !== 'ENOENT') throw err;
      });
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** Removes a stale LOCK under LOCK.takeover, so only one process can remove a given stale lock. */
async function takeOver(dir: string, path: string, stale: Holder, me: Holder): Promise<void> {
  const takeover = join(dir, TAKEOVER_FILE);
  if (!(await createExclusive(takeover, JSON.stringify(me)))) {
    const other = await readHolder(takeover);
    if (other !== null && other !== 'unreadable' && (await alive(other, takeover, me))) {
      throw locked(dir, `process ${other.pid} is taking over the stale lock of process ${stale.pid}`);
    }
    // A taker died mid-takeover (or its file is unreadable): clear it; the caller retries.
    await fs.unlink(takeover).catch(() => undefined);
    return;
  }
  try {
    const again = await readHolder(path);
    if (again !== null && again !== 'unreadable' && again.token === stale.token) await fs.unlink(path);
  } finally {
    await fs.unlink(takeover).catch(() => undefined);
  }
}
