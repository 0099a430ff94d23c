/**
 * The write-ahead log of one shard: a directory of segments (segment.ts)
 * holding records (record.ts) with continuous LSNs 1, 2, 3, ...
 *
 *   <dir>/00000000000000000001.wal   full, read-only
 *   <dir>/00000000000000004712.wal   the active segment: appends go here
 *
 * Group commit. append() queues its record; one flush at a time writes
 * every queued record with one write() and (policy 'always') one
 * fdatasync(). Records queued while a flush is in flight go into the next
 * flush, so N concurrent writers share far fewer than N syncs.
 *
 * Policies (Redis's appendfsync meanings):
 *   'always'    an append resolves after the fdatasync that covers it;
 *   'interval'  it resolves after its write(); a timer syncs every
 *               intervalMs, so a power cut loses at most that window;
 *   'never'     it resolves after its write(); the OS decides (a segment
 *               is still synced when it is rotated and at close()).
 *
 * Failure. If a write or a sync fails, every append of that group and every
 * append queued behind it is rejected with QUIVER_ERR_IO; nothing after
 * them is acknowledged. The log then truncates the active segment back to
 * the end of the last acknowledged record and syncs it (re-writing, under
 * 'interval', the acknowledged-but-unsynced bytes, since Linux may drop
 * dirty pages after a failed fsync). Until that repair succeeds every new
 * append retries it first and is rejected if it fails again; once the fault
 * clears, appends succeed with the next LSN. Limit: if the disk refuses the
 * sync and then the repair, and the machine loses power before a repair
 * succeeds, the rejected group may reappear at recovery (only that group:
 * nothing was acknowledged after it).
 *
 * Recovery. open() scans the last segment: a bad record with no whole record
 * after it is the torn end of an interrupted write and is truncated; any
 * other bad record is corruption (QUIVER_ERR_CORRUPT with file and offset).
 * Only the last segment can be torn: a segment is synced before the next
 * one is created. replay(from) reads records from LSN `from` and refuses
 * any bad record or any gap in the LSNs.
 *
 * Segment size (default 64 MiB): recovery reads the log after the last
 * checkpoint, and a checkpoint can delete only whole segments, so up to one
 * segment of already-checkpointed records is re-read at startup; open +
 * replay of one full 64 MiB segment of 1 KiB records took ~0.7 s here
 * (Node 20, warm page cache, CRC32C in JS most of it). Smaller segments mean
 * more files and more rotations (a sync and a directory sync each); larger
 * ones keep more disk and more replay after a checkpoint. etcd uses 64 MB,
 * PostgreSQL 16 MiB.
 */
import { join } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';
import { errorCode, nodeFiles, type FileHandle, type Files } from './files.js';
import { encodeRecord, MAX_BODY, MAX_LSN, RECORD_HEADER, type LogRecord } from './record.js';
import { BadRecord, parseSegmentName, scanSegment, segmentName, wholeRecordAfter, Window } from './segment.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_INTERVAL_MS = 1000;
/**
 * Most bytes one group write carries: bounds the buffer a burst of large
 * appends concatenates into; a bigger backlog takes several writes.
 */
export const MAX_GROUP_BYTES = 8 * 1024 * 1024;
/**
 * 'interval' keeps the acknowledged-but-unsynced bytes to re-write them if a
 * sync fails; past this many it syncs at once rather than wait for the
 * timer, so that copy stays bounded (and a crash loses less, never more).
 */
export const MAX_UNSYNCED_BYTES = 16 * 1024 * 1024;

export interface WalOptions {
  /** The shard's log directory (created if missing). */
  dir: string;
  files?: Files;
  fsync?: FsyncPolicy;
  /** For 'interval': how often to sync, in ms. */
  intervalMs?: number;
  /** Rotate to a new segment once the active one holds this many bytes. */
  segmentBytes?: number;
  /**
   * The LSN the log continues at if it is empty or ends before it (records
   * before it are covered by a checkpoint image). Default 1.
   */
  startLsn?: number;
}

/** Counters for benchmarks and metrics. */
export interface WalStats {
  /** fdatasyncs of segment files. */
  fsyncs: number;
  /** fsyncs of the log directory. */
  dirSyncs: number;
  /** Group writes (one write() each). */
  writes: number;
  records: number;
  bytes: number;
  /** Segments rotated to. */
  rotations: number;
}

/** What open() repaired. */
export interface WalRecovery {
  /** Bytes of a torn tail that were cut off the last segment. */
  truncatedBytes: number;
  /** The segment that was cut, if any. */
  file: string | null;
}

interface Pending {
  op: number;
  body: Uint8Array;
  resolve: (lsn: number) => void;
  reject: (err: unknown) => void;
}

interface Segment {
  first: number;
  name: string;
}

const POLICIES: readonly FsyncPolicy[] = ['always', 'interval', 'never'];

function positiveInt(value: unknown, name: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`options.${name} must be an integer >= ${min}`);
  }
  return value;
}

export function corrupt(file: string, offset: number, why: string, cause?: unknown): QuiverError {
  return new QuiverError(ErrorCode.CORRUPT, `${file}: corrupt at byte ${offset}: ${why}`, cause === undefined ? {} : { cause });
}

export function ioError(what: string, err: unknown): QuiverError {
  if (err instanceof QuiverError) return err;
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return new QuiverError(ErrorCode.IO, `${what} failed${code ? ` (${code})` : ''}: ${message}`, { cause: err });
}

export class Wal {
  readonly dir: string;
  readonly policy: FsyncPolicy;
  readonly intervalMs: number;
  readonly segmentBytes: number;
  readonly stats: WalStats = { fsyncs: 0, dirSyncs: 0, writes: 0, records: 0, bytes: 0, rotations: 0 };
  readonly recovery: WalRecovery;

  private readonly files: Files;
  private segments: Segment[];
  private active: FileHandle;
  /** Bytes of the active segment that hold acknowledged records. */
  private end: number;
  private last: number;
  private durable: number;
  private dataDirty = false;
  private dirDirty = false;
  /** 'interval' only: acknowledged bytes not yet synced, to re-write if a sync fails. */
  private unsynced: { at: number; bytes: Uint8Array }[] = [];
  private unsyncedBytes = 0;
  private queue: Pending[] = [];
  private flushQueued = false;
  private lane: Promise<void> = Promise.resolve();
  private broken: QuiverError | null = null;
  /** The fault that first broke the log, for the messages of failed repairs. */
  private fault: string | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closing: Promise<void> | null = null;

  private constructor(o: Required<Omit<WalOptions, 'startLsn'>>, segments: Segment[], active: FileHandle, end: number, last: number, recovery: WalRecovery) {
    this.dir = o.dir;
    this.files = o.files;
    this.policy = o.fsync;
    this.intervalMs = o.intervalMs;
    this.segmentBytes = o.segmentBytes;
    this.segments = segments;
    this.active = active;
    this.end = end;
    this.last = last;
    this.durable = last;
    this.recovery = recovery;
  }

  /** Opens (or creates) the log in `options.dir`, truncating a torn tail. */
  static async open(options: WalOptions): Promise<Wal> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    if (typeof options.dir !== 'string' || options.dir === '') throw new TypeError('options.dir must be a non-empty string');
    const fsync = options.fsync ?? 'always';
    if (!POLICIES.includes(fsync)) throw new RangeError(`options.fsync must be one of ${POLICIES.join(', ')}`);
    const o = {
      dir: options.dir,
      files: options.files ?? nodeFiles,
      fsync,
      intervalMs: positiveInt(options.intervalMs ?? DEFAULT_INTERVAL_MS, 'intervalMs'),
      segmentBytes: positiveInt(options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, 'segmentBytes', 64),
    };
    const startLsn = positiveInt(options.startLsn ?? 1, 'startLsn');
    const { files, dir } = o;
    try {
      await files.mkdir(dir);
      const segments: Segment[] = [];
      for (const name of await files.readdir(dir)) {
        const first = parseSegmentName(name);
        if (first !== undefined) segments.push({ first, name });
      }
      segments.sort((a, b) => a.first - b.first);
      const recovery: WalRecovery = { truncatedBytes: 0, file: null };
      const tail = segments.at(-1);
      if (tail === undefined) {
        const seg = { first: startLsn, name: segmentName(startLsn) };
        const h = await files.open(join(dir, seg.name), 'w');
        await files.syncDir(dir);
        return new Wal(o, [seg], h, 0, startLsn - 1, recovery);
      }
      const path = join(dir, tail.name);
      const h = await files.open(path, 'r+');
      let end = 0;
      let last = tail.first - 1;
      try {
        const w = new Window(h, await h.size());
        try {
          for await (const r of scanSegment(w, tail.first, false)) {
            end = r.end;
            last = r.lsn;
          }
        } catch (err) {
          if (!(err instanceof BadRecord)) throw err;
          const whole = err.whole ? err.offset : await wholeRecordAfter(w, err.offset, last + 1);
          if (whole >= 0) throw corrupt(path, err.offset, `${err.why}, and a whole record follows at byte ${whole}`);
          recovery.truncatedBytes = w.size - err.offset;
          recovery.file = path;
          await h.truncate(err.offset);
        }
        // What a killed process left may still be only in the page cache: make it durable before appending after it.
        await h.datasync();
        await files.syncDir(dir);
      } catch (err) {
        await h.close();
        throw err;
      }
      const wal = new Wal(o, segments, h, end, last, recovery);
      if (last + 1 < startLsn) {
        try {
          await wal.rotate(startLsn);
        } catch (err) {
          await wal.destroy();
          throw err;
        }
      }
      return wal;
    } catch (err) {
      if (err instanceof QuiverError || err instanceof RangeError || err instanceof TypeError) throw err;
      throw ioError(`opening the write-ahead log in ${dir}`, err);
    }
  }

  /** The LSN the next append gets. */
  get nextLsn(): number {
    return this.last + 1;
  }

  /** The last LSN written (acknowledged, per the policy). */
  get lastLsn(): number {
    return this.last;
  }

  /** The last LSN known to be on disk (fdatasync done). */
  get durableLsn(): number {
    return this.durable;
  }

  /** The first LSN still in the log (the oldest segment's). */
  get firstLsn(): number {
    return this.segments[0]!.first;
  }

  /** Segment file names, oldest first. */
  get segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  /**
   * Appends one record; resolves with its LSN once it is written and (per
   * the policy) durable. `body` is read when its group is written: do not
   * change it before the promise settles.
   */
  append(op: number, body: Uint8Array): Promise<number> {
    if (this.state !== 'open') return Promise.reject(new QuiverError(ErrorCode.CLOSED, `the write-ahead log in ${this.dir} is closed`));
    if (!Number.isInteger(op) || op < 1 || op > 255) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, `op must be an integer in 1..255, got ${String(op)}`));
    if (!(body instanceof Uint8Array)) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, 'body must be a Uint8Array'));
    if (body.length > MAX_BODY) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, `body of ${body.length} bytes exceeds the largest record (${MAX_BODY})`));
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ op, body, resolve, reject });
      if (!this.flushQueued) {
        this.flushQueued = true;
        void this.serial(() => {
          this.flushQueued = false;
          return this.flushGroup();
        });
      }
    });
  }

  /** Makes everything appended before this call durable, whatever the policy. */
  sync(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new QuiverError(ErrorCode.CLOSED, `the write-ahead log in ${this.dir} is closed`));
    return this.serial(() => this.syncNow());
  }

  /**
   * The records from LSN `from` (default: the oldest kept) to the last one
   * written, in order. Refuses (QUIVER_ERR_CORRUPT, naming file and byte
   * offset) a bad record or a gap in the LSNs.
   */
  async *replay(from = this.firstLsn): AsyncGenerator<LogRecord> {
    if (!Number.isSafeInteger(from) || from < 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `replay: from must be a positive integer LSN, got ${String(from)}`);
    if (from > this.last + 1) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `replay: from LSN ${from} is past the end of the log (next LSN ${this.last + 1})`);
    const segments = [...this.segments];
    const activeName = segments.at(-1)!.name;
    const activeEnd = this.end;
    let i = segments.length - 1;
    while (i > 0 && segments[i]!.first > from) i--;
    if (segments[i]!.first > from) {
      throw corrupt(join(this.dir, segments[i]!.name), 0, `the log starts at LSN ${segments[i]!.first}; records ${from}..${segments[i]!.first - 1} are gone`);
    }
    let expected = segments[i]!.first;
    for (; i < segments.length; i++) {
      const seg = segments[i]!;
      const path = join(this.dir, seg.name);
      if (seg.first !== expected) throw corrupt(path, 0, `segment starts at LSN ${seg.first} where LSN ${expected} belongs (records ${expected}..${seg.first - 1} are missing)`);
      let h: FileHandle;
      try {
        h = await this.files.open(path, 'r');
      } catch (err) {
        throw ioError(`reading ${path}`, err);
      }
      try {
        const w = new Window(h, seg.name === activeName ? activeEnd : await h.size());
        for await (const r of scanSegment(w, expected)) {
          expected = r.lsn + 1;
          if (r.lsn >= from) yield { lsn: r.lsn, op: r.op, body: r.body };
        }
      } catch (err) {
        if (err instanceof BadRecord) throw corrupt(path, err.offset, err.why);
        throw ioError(`reading ${path}`, err);
      } finally {
        await h.close();
      }
    }
  }

  /**
   * Deletes the segments whose records all come before `lsn` (a checkpoint
   * covers them). The active segment is kept. Resolves with how many went.
   */
  truncateBefore(lsn: number): Promise<number> {
    if (!Number.isSafeInteger(lsn) || lsn < 1) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, `truncateBefore: lsn must be a positive integer, got ${String(lsn)}`));
    if (this.state === 'closed') return Promise.reject(new QuiverError(ErrorCode.CLOSED, `the write-ahead log in ${this.dir} is closed`));
    return this.serial(async () => {
      let removed = 0;
      try {
        while (this.segments.length > 1 && this.segments[1]!.first <= lsn) {
          const path = join(this.dir, this.segments[0]!.name);
          try {
            await this.files.unlink(path);
          } catch (err) {
            if (errorCode(err) !== 'ENOENT') throw err;
          }
          this.segments.shift();
          removed++;
        }
        if (removed > 0) {
          await this.files.syncDir(this.dir);
          this.stats.dirSyncs++;
        }
      } catch (err) {
        throw ioError(`deleting checkpointed segments in ${this.dir}`, err);
      }
      return removed;
    });
  }

  /** Writes what is queued, syncs, and closes. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.state = 'closing';
    this.closing = this.serial(async () => {
      while (this.queue.length > 0) await this.flushGroup();
      await this.syncNow();
    }).finally(() => this.destroy());
    return this.closing;
  }

  /**
   * Closes without a final sync: queued appends are rejected, the one write
   * in flight (if any) is let finish, and no file is created after this
   * call. For a log being abandoned. Idempotent.
   */
  async destroy(): Promise<void> {
    if (this.state === 'closed') return this.lane;
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const queued = this.queue;
    this.queue = [];
    const err = this.closedError();
    for (const p of queued) p.reject(err);
    await this.lane;
    await this.active.close().catch(() => undefined);
  }

  private closedError(): QuiverError {
    return new QuiverError(ErrorCode.CLOSED, `the write-ahead log in ${this.dir} is closed`);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lane.then(fn);
    this.lane = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private activePath(): string {
    return join(this.dir, this.segments.at(-1)!.name);
  }

  private async flushGroup(): Promise<void> {
    // Take what is queued, up to MAX_GROUP_BYTES (at least one record); the rest goes in the next flush.
    let take = 0;
    for (let bytes = 0; take < this.queue.length && (take === 0 || bytes + RECORD_HEADER + this.queue[take]!.body.length <= MAX_GROUP_BYTES); take++) {
      bytes += RECORD_HEADER + this.queue[take]!.body.length;
    }
    const group = this.queue.splice(0, take);
    if (this.queue.length > 0 && !this.flushQueued) {
      this.flushQueued = true;
      void this.serial(() => {
        this.flushQueued = false;
        return this.flushGroup();
      });
    }
    if (group.length === 0) return;
    if (this.state === 'closed') {
      const err = new QuiverError(ErrorCode.CLOSED, `the write-ahead log in ${this.dir} is closed`);
      for (const p of group) p.reject(err);
      return;
    }
    try {
      if (this.broken) await this.repair();
      if (this.end >= this.segmentBytes) await this.rotate(this.last + 1);
      let size = 0;
      for (const p of group) size += RECORD_HEADER + p.body.length;
      const first = this.last + 1;
      if (first + group.length - 1 > MAX_LSN) throw new QuiverError(ErrorCode.IO, `the write-ahead log in ${this.dir} ran out of LSNs`);
      const buf = new Uint8Array(size);
      let at = 0;
      for (let i = 0; i < group.length; i++) at = encodeRecord(buf, at, first + i, group[i]!.op, group[i]!.body);
      const pos = this.end;
      try {
        await this.active.write(buf, pos);
        if (this.policy === 'always') {
          await this.active.datasync();
          this.stats.fsyncs++;
        }
      } catch (err) {
        throw ioError(`appending ${group.length} record(s) to ${this.activePath()}`, err);
      }
      this.end = pos + size;
      this.last = first + group.length - 1;
      if (this.policy === 'always') {
        this.durable = this.last;
      } else {
        this.dataDirty = true;
        if (this.policy === 'interval') {
          this.unsynced.push({ at: pos, bytes: buf });
          this.unsyncedBytes += buf.length;
          if (this.unsyncedBytes > MAX_UNSYNCED_BYTES) await this.syncNow().catch(() => undefined);
          else this.armTimer();
        }
      }
      this.stats.writes++;
      this.stats.records += group.length;
      this.stats.bytes += size;
      for (let i = 0; i < group.length; i++) group[i]!.resolve(first + i);
    } catch (err) {
      const e = ioError(`appending to the write-ahead log in ${this.dir}`, err);
      // Nothing behind a failed group is acknowledged either.
      const behind = this.queue;
      this.queue = [];
      for (const p of group) p.reject(e);
      for (const p of behind) p.reject(e);
      if (!this.broken) this.broken = e;
      await this.repair().catch(() => undefined);
    }
  }

  /** Cuts the active segment back to its last acknowledged record and makes that durable. */
  private async repair(): Promise<void> {
    try {
      for (const u of this.unsynced) await this.active.write(u.bytes, u.at);
      await this.active.truncate(this.end);
      await this.active.datasync();
      this.stats.fsyncs++;
      if (this.dirDirty) {
        await this.files.syncDir(this.dir);
        this.stats.dirSyncs++;
        this.dirDirty = false;
      }
    } catch (err) {
      this.fault ??= this.broken?.message ?? null;
      this.broken = ioError(`repairing ${this.activePath()}${this.fault ? ` after: ${this.fault};` : ''}`, err);
      throw this.broken;
    }
    this.unsynced = [];
    this.unsyncedBytes = 0;
    this.dataDirty = false;
    this.durable = this.last;
    this.broken = null;
    this.fault = null;
  }

  private async syncNow(): Promise<void> {
    if (this.broken) return this.repair();
    if (!this.dataDirty && !this.dirDirty) return;
    try {
      if (this.dataDirty) {
        await this.active.datasync();
        this.stats.fsyncs++;
      }
      if (this.dirDirty) {
        await this.files.syncDir(this.dir);
        this.stats.dirSyncs++;
      }
    } catch (err) {
      this.broken = ioError(`syncing ${this.activePath()}`, err);
      throw this.broken;
    }
    this.dataDirty = false;
    this.dirDirty = false;
    this.unsynced = [];
    this.unsyncedBytes = 0;
    this.durable = this.last;
  }

  /** Syncs the active segment, then starts a new one at `first` and makes its entry durable. */
  private async rotate(first: number): Promise<void> {
    if (this.dataDirty) {
      await this.active.datasync();
      this.stats.fsyncs++;
      this.dataDirty = false;
      this.unsynced = [];
      this.unsyncedBytes = 0;
      this.durable = this.last;
    }
    if (this.state === 'closed') throw this.closedError();
    const seg = { first, name: segmentName(first) };
    // 'w', not 'wx': a file of this name can only be an empty leftover of a rotation that failed.
    const h = await this.files.open(join(this.dir, seg.name), 'w');
    await this.active.close().catch(() => undefined);
    this.active = h;
    this.segments.push(seg);
    this.end = 0;
    this.last = first - 1;
    this.durable = this.last;
    this.dirDirty = true;
    await this.files.syncDir(this.dir);
    this.stats.dirSyncs++;
    this.stats.rotations++;
    this.dirDirty = false;
  }

  private armTimer(): void {
    if (this.timer || this.state === 'closed') return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.state === 'closed') return;
      // A failed timed sync leaves the log broken; retry at the next tick so durability comes back when the disk does.
      this.serial(() => this.syncNow()).catch(() => this.armTimer());
    }, this.intervalMs);
    this.timer.unref();
  }
}
