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
 * Recovery (wal-dir.ts). open() cuts a torn tail off the last segment and
 * refuses any other bad record; replay() refuses a bad record or a gap.
 * Options, counters and limits are in wal-options.ts.
 */
import { join } from 'node:path';
import { ErrorCode, QuiverError } from '../errors.js';
import { transientU8 } from '../memory/transient.js';
import { ioError, type FileHandle, type Files } from './files.js';
import { encodeRecord, MAX_BODY, MAX_LSN, RECORD_HEADER, type LogRecord } from './record.js';
import { segmentName } from './segment.js';
import { deleteSegmentsBefore, openLogDir, replaySegments, type LogDir, type Segment } from './wal-dir.js';
import { MAX_GROUP_BYTES, MAX_UNSYNCED_BYTES, resolveOptions, type FsyncPolicy, type ResolvedWalOptions, type WalOptions, type WalRecovery, type WalStats } from './wal-options.js';

export { DEFAULT_INTERVAL_MS, DEFAULT_SEGMENT_BYTES, MAX_GROUP_BYTES, MAX_UNSYNCED_BYTES, type FsyncPolicy, type WalOptions, type WalRecovery, type WalStats } from './wal-options.js';

interface Pending {
  op: number;
  body: Uint8Array;
  resolve: (lsn: number) => void;
  reject: (err: unknown) => void;
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

  private constructor(o: ResolvedWalOptions, d: LogDir) {
    this.dir = o.dir;
    this.files = o.files;
    this.policy = o.fsync;
    this.intervalMs = o.intervalMs;
    this.segmentBytes = o.segmentBytes;
    this.segments = d.segments;
    this.active = d.active;
    this.end = d.end;
    this.last = d.last;
    this.durable = d.last;
    this.recovery = d.recovery;
  }

  /** Opens (or creates) the log in `options.dir`, truncating a torn tail. */
  static async open(options: WalOptions): Promise<Wal> {
    const { o, startLsn } = resolveOptions(options);
    const { files, dir } = o;
    try {
      const wal = new Wal(o, await openLogDir(files, dir, startLsn));
      if (wal.last + 1 < startLsn) {
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
    yield* replaySegments(this.files, this.dir, [...this.segments], this.end, from);
  }

  /**
   * Deletes the segments whose records all come before `lsn` (a checkpoint
   * covers them). The active segment is kept. Resolves with how many went.
   */
  truncateBefore(lsn: number): Promise<number> {
    if (!Number.isSafeInteger(lsn) || lsn < 1) return Promise.reject(new QuiverError(ErrorCode.INVALID_ARGUMENT, `truncateBefore: lsn must be a positive integer, got ${String(lsn)}`));
    if (this.state === 'closed') return Promise.reject(new QuiverError(ErrorCode.CLOSED, `the write-ahead log in ${this.dir} is closed`));
    return this.serial(() => deleteSegmentsBefore(this.files, this.dir, this.segments, lsn, this.stats));
  }

  /**
   * Syncs and starts a new segment at the next LSN (unless the active one is
   * empty). A checkpoint at the last LSN calls this, so that recovery from
   * that image starts reading at a segment's first record instead of
   * scanning the records the image already holds.
   */
  startSegment(): Promise<void> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    return this.serial(async () => {
      if (this.end === 0) return;
      try {
        if (this.broken) await this.repair();
        await this.rotate(this.last + 1);
      } catch (err) {
        // as for a failed append: the log repairs (a directory entry not yet
        // durable included) before it acknowledges anything again
        const e = ioError(`starting a new segment of the write-ahead log in ${this.dir}`, err);
        if (!this.broken) this.broken = e;
        await this.repair().catch(() => undefined);
        throw e;
      }
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
      // V8-mapped from 128 KiB, never malloc's: a freed multi-MiB group would raise glibc's mmap threshold (memory/transient.ts)
      const buf = transientU8(size);
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
