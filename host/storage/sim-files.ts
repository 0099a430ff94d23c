/**
 * TEST ONLY: a simulated file system that models what a power cut loses.
 *
 * Per file (inode) it keeps two byte arrays:
 *   current  what reads see (the page cache)
 *   durable  what survives a crash: set to a copy of `current` by datasync/sync
 * Per path it keeps two maps, `current` and `durable` (name -> inode): a
 * create, rename or unlink changes `current` at once and reaches `durable`
 * only at syncDir() of the parent directory, as on Linux.
 *
 * crash() drops everything not synced (a lost page cache) and invalidates
 * every open handle. failNext() injects an error (ENOSPC, EIO, ...) into the
 * next matching operation(s); a failing write may first land a prefix of its
 * bytes, as a real short write does. powerCutAfter(n) lets n more mutating
 * operations succeed and fails every later one, so a test can stop a
 * multi-step procedure after each step and then crash().
 *
 * A failed sync behaves as Linux after a writeback error: the dirty pages
 * stay readable but are marked clean, so a later successful sync does not
 * write them; only bytes written again after the failure reach the disk.
 *
 * Directories themselves always exist once made (mkdir is durable at once).
 */
import { dirname, basename } from 'node:path/posix';
import type { FileHandle, Files, OpenFlags } from './files.js';

export type SimOp = 'open' | 'read' | 'write' | 'sync' | 'truncate' | 'rename' | 'unlink' | 'syncDir' | 'readdir';

interface Inode {
  current: Uint8Array;
  durable: Uint8Array;
  /** Bytes that were dirty when a sync failed and not written since: marked clean, never to reach the disk. */
  lost: Uint8Array | null;
}

interface Fault {
  op: SimOp;
  code: string;
  remaining: number;
  /** For a write: how many of its bytes land before the error. */
  partial: number;
}

export class SimError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

export class SimFiles implements Files {
  private current = new Map<string, Inode>();
  private durable = new Map<string, Inode>();
  private readonly dirs = new Set<string>(['/']);
  private faults: Fault[] = [];
  private generation = 0;
  private cutAfter = Infinity;
  /** Mutating operations that succeeded (writes, syncs, truncates, creates, renames, unlinks, dir syncs). */
  mutations = 0;
  /** Milliseconds each operation of a kind takes (default 0), to let work queue behind a slow sync. */
  readonly latency: Partial<Record<SimOp, number>> = {};
  /** Per-operation counts, for tests that count fsyncs. */
  readonly counts: Record<SimOp, number> = { open: 0, read: 0, write: 0, sync: 0, truncate: 0, rename: 0, unlink: 0, syncDir: 0, readdir: 0 };

  /** Fails the next `times` operations of kind `op` with `code`; a write lands `partial` bytes first. */
  failNext(op: SimOp, code: string, times = 1, partial = 0): void {
    this.faults.push({ op, code, remaining: times, partial });
  }

  /** Fails every operation of kind `op` until clearFaults(). */
  failAlways(op: SimOp, code: string, partial = 0): void {
    this.failNext(op, code, Infinity, partial);
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Lets `n` more mutating operations succeed, then fails all of them with EIO until crash(). */
  powerCutAfter(n: number): void {
    this.cutAfter = this.mutations + n;
  }

  /** A power cut: everything not synced is gone, open handles are dead, faults are cleared. */
  crash(): void {
    this.generation++;
    this.cutAfter = Infinity;
    this.faults = [];
    this.current = new Map();
    for (const [path, inode] of this.durable) {
      inode.current = inode.durable.slice();
      inode.lost = null;
      this.current.set(path, inode);
    }
    // An unlinked-but-open inode's unsynced bytes are gone too: nothing refers to it any more.
  }

  /** The bytes a reader sees now at `path` (undefined if absent). */
  peek(path: string): Uint8Array | undefined {
    return this.current.get(path)?.current;
  }

  /** The bytes that would survive a crash now at `path` (undefined if its entry would not). */
  peekDurable(path: string): Uint8Array | undefined {
    return this.durable.get(path)?.durable;
  }

  /** Overwrites bytes of a file durably, as bit rot or a bad sector would. */
  corrupt(path: string, offset: number, xor = 0x10): void {
    const inode = this.current.get(path);
    if (!inode || offset >= inode.current.length) throw new Error(`corrupt: no byte ${offset} in ${path}`);
    inode.current[offset]! ^= xor;
    if (offset < inode.durable.length) inode.durable[offset]! ^= xor;
  }

  /** Cuts a file to `size` bytes durably (a test helper, not a modelled operation). */
  chop(path: string, size: number): void {
    const inode = this.current.get(path);
    if (!inode) throw new Error(`chop: no ${path}`);
    inode.current = inode.current.slice(0, size);
    inode.durable = inode.durable.slice(0, size);
  }

  /** Paths under `dir` (recursively), sorted. */
  list(dir = '/'): string[] {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    return [...this.current.keys()].filter((p) => p.startsWith(prefix)).sort();
  }

  /** @internal Throws the injected fault for `op`, if any; a partial write's fault is returned instead, to throw after its prefix lands. */
  check(op: SimOp, mutating: boolean, what: string): SimError & { partial: number } | undefined {
    this.counts[op]++;
    if (mutating && this.mutations >= this.cutAfter) throw new SimError('EIO', `power cut before ${op} ${what}`);
    const i = this.faults.findIndex((f) => f.op === op);
    if (i >= 0) {
      const f = this.faults[i]!;
      if (--f.remaining <= 0) this.faults.splice(i, 1);
      const err = Object.assign(new SimError(f.code, `injected on ${op} ${what}`), { partial: f.partial });
      if (op === 'write' && f.partial > 0) return err;
      throw err;
    }
    if (mutating) this.mutations++;
    return undefined;
  }

  /** @internal Waits the configured latency of `op`. */
  async wait(op: SimOp): Promise<void> {
    const ms = this.latency[op];
    if (ms) await new Promise((resolve) => setTimeout(resolve, ms));
  }

  isLive(generation: number): boolean {
    return generation === this.generation;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  async open(path: string, flags: OpenFlags): Promise<FileHandle> {
    const creates = flags === 'w' || flags === 'wx';
    this.check('open', creates, path);
    if (!this.dirs.has(dirname(path))) throw new SimError('ENOENT', `no directory ${dirname(path)}`);
    let inode = this.current.get(path);
    if (flags === 'wx' && inode) throw new SimError('EEXIST', path);
    if (!inode) {
      if (!creates) throw new SimError('ENOENT', path);
      inode = { current: new Uint8Array(0), durable: new Uint8Array(0), lost: null };
      this.current.set(path, inode);
    } else if (flags === 'w') {
      inode.current = new Uint8Array(0);
    }
    return new SimHandle(this, inode, path, this.generation, flags !== 'r', flags === 'r' || flags === 'r+');
  }

  async readdir(dir: string): Promise<string[]> {
    this.check('readdir', false, dir);
    const out: string[] = [];
    for (const p of this.current.keys()) if (dirname(p) === dir) out.push(basename(p));
    for (const d of this.dirs) if (d !== dir && dirname(d) === dir) out.push(basename(d));
    return out.sort();
  }

  async rename(from: string, to: string): Promise<void> {
    this.check('rename', true, `${from} -> ${to}`);
    const inode = this.current.get(from);
    if (!inode) throw new SimError('ENOENT', from);
    this.current.delete(from);
    this.current.set(to, inode);
  }

  async unlink(path: string): Promise<void> {
    this.check('unlink', true, path);
    if (!this.current.delete(path)) throw new SimError('ENOENT', path);
  }

  async mkdir(dir: string): Promise<void> {
    for (let d = dir; !this.dirs.has(d); d = dirname(d)) this.dirs.add(d);
  }

  async syncDir(dir: string): Promise<void> {
    this.check('syncDir', true, dir);
    for (const p of [...this.durable.keys()]) if (dirname(p) === dir && !this.current.has(p)) this.durable.delete(p);
    for (const [p, inode] of this.current) if (dirname(p) === dir) this.durable.set(p, inode);
  }
}

class SimHandle implements FileHandle {
  private closed = false;

  constructor(
    private readonly sim: SimFiles,
    private readonly inode: Inode,
    private readonly path: string,
    private readonly generation: number,
    private readonly writable: boolean,
    private readonly readable: boolean,
  ) {}

  private alive(): void {
    if (this.closed || !this.sim.isLive(this.generation)) throw new SimError('EBADF', `${this.path} (closed or lost in a crash)`);
  }

  async read(into: Uint8Array, position: number, length = into.length): Promise<number> {
    this.alive();
    if (!this.readable) throw new SimError('EBADF', `${this.path} is write-only`);
    this.sim.check('read', false, this.path);
    const src = this.inode.current;
    const n = Math.max(0, Math.min(length, src.length - position));
    into.set(src.subarray(position, position + n), 0);
    return n;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    await this.sim.wait('write');
    this.alive();
    if (!this.writable) throw new SimError('EBADF', `${this.path} is read-only`);
    const fault = this.sim.check('write', true, this.path);
    const n = fault === undefined ? data.length : Math.min(data.length, fault.partial);
    const end = position + n;
    if (end > this.inode.current.length) {
      const grown = new Uint8Array(end);
      grown.set(this.inode.current);
      this.inode.current = grown;
    }
    this.inode.current.set(data.subarray(0, n), position);
    this.inode.lost?.fill(0, position, end);
    if (fault !== undefined) throw fault;
  }

  async datasync(): Promise<void> {
    await this.sim.wait('sync');
    this.alive();
    const { inode } = this;
    try {
      this.sim.check('sync', true, this.path);
    } catch (err) {
      // Writeback error: whatever was dirty is now "clean" and will never be written.
      const lost = new Uint8Array(inode.current.length);
      for (let i = 0; i < lost.length; i++) {
        if (i >= inode.durable.length || inode.current[i] !== inode.durable[i] || inode.lost?.[i]) lost[i] = 1;
      }
      inode.lost = lost;
      throw err;
    }
    const next = inode.current.slice();
    if (inode.lost) {
      for (let i = 0; i < next.length && i < inode.lost.length; i++) if (inode.lost[i]) next[i] = inode.durable[i] ?? 0;
    }
    inode.durable = next;
    inode.lost = null;
  }

  sync(): Promise<void> {
    return this.datasync();
  }

  async truncate(size: number): Promise<void> {
    this.alive();
    this.sim.check('truncate', true, this.path);
    const next = new Uint8Array(size);
    next.set(this.inode.current.subarray(0, size));
    this.inode.current = next;
    if (this.inode.lost) {
      const lost = new Uint8Array(size);
      lost.set(this.inode.lost.subarray(0, size));
      this.inode.lost = lost;
    }
  }

  async size(): Promise<number> {
    this.alive();
    return this.inode.current.length;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
