import t from 'tap';
import fc from 'fast-check';
import { join } from 'node:path';
import { mkdtemp, rm, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { SimFiles } from '../host/storage/sim-files.js';
import { Wal } from '../host/storage/wal.js';
import { Op, RECORD_HEADER, type LogRecord } from '../host/storage/record.js';
import { segmentName } from '../host/storage/segment.js';
import { QuiverError } from '../host/errors.js';

const DIR = '/db/wal';

function body(lsn: number, size = 5 + (lsn % 23)): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (lsn * 31 + i) & 0xff);
}

async function collect(it: AsyncIterable<LogRecord>): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

async function writeLog(sim: SimFiles, n: number, segmentBytes?: number): Promise<Wal> {
  const wal = await Wal.open({ dir: DIR, files: sim, ...(segmentBytes ? { segmentBytes } : {}) });
  for (let lsn = 1; lsn <= n; lsn++) await wal.append(Op.UPSERT, body(lsn));
  return wal;
}

/** A fresh simulated fs holding exactly `bytes` (durably) as the only segment. */
async function withSegment(bytes: Uint8Array, first = 1): Promise<SimFiles> {
  const sim = new SimFiles();
  await sim.mkdir(DIR);
  const h = await sim.open(join(DIR, segmentName(first)), 'w');
  await h.write(bytes, 0);
  await h.datasync();
  await sim.syncDir(DIR);
  return sim;
}

function expectRecords(t: Tap, got: LogRecord[], from: number, to: number, msg: string): void {
  t.same(got.map((r) => r.lsn), Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i), `${msg}: LSNs ${from}..${to}`);
  t.ok(got.every((r) => r.op === Op.UPSERT && Buffer.from(r.body).equals(Buffer.from(body(r.lsn)))), `${msg}: bodies intact`);
}

type Tap = Pick<typeof t, 'same' | 'ok' | 'equal' | 'match' | 'rejects'>;

t.test('append and replay, then reopen and continue', async (t) => {
  const sim = new SimFiles();
  const wal = await writeLog(sim, 50);
  t.equal(wal.lastLsn, 50);
  expectRecords(t, await collect(wal.replay()), 1, 50, 'before close');
  expectRecords(t, await collect(wal.replay(17)), 17, 50, 'from the middle');
  t.same(await collect(wal.replay(51)), [], 'from the next LSN: nothing');
  await t.rejects(collect(wal.replay(52)), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'past the end');
  await wal.close();
  await wal.close();
  await t.rejects(wal.append(Op.DELETE, new Uint8Array(1)), { code: 'QUIVER_ERR_CLOSED' }, 'append after close');
  const again = await Wal.open({ dir: DIR, files: sim });
  t.equal(again.nextLsn, 51, 'continues after the last record');
  t.equal(again.recovery.truncatedBytes, 0, 'nothing torn');
  t.equal(await again.append(Op.UPSERT, body(51)), 51);
  expectRecords(t, await collect(again.replay()), 1, 51, 'after reopen');
  await again.close();
});

t.test('bad arguments are refused with coded errors and change nothing', async (t) => {
  const sim = new SimFiles();
  const wal = await writeLog(sim, 3);
  await t.rejects(wal.append(0, new Uint8Array(1)), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'op 0');
  await t.rejects(wal.append(256, new Uint8Array(1)), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'op 256');
  await t.rejects(wal.append(1.5, new Uint8Array(1)), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'fractional op');
  await t.rejects(wal.append(1, [1, 2] as unknown as Uint8Array), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'body not bytes');
  await t.rejects(wal.truncateBefore(0), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'truncateBefore(0)');
  await t.rejects(collect(wal.replay(0)), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'replay(0)');
  t.equal(wal.nextLsn, 4, 'no LSN consumed');
  expectRecords(t, await collect(wal.replay()), 1, 3, 'log unchanged');
  await wal.close();
  await t.rejects(Wal.open({ dir: '', files: sim }), TypeError);
  await t.rejects(Wal.open({ dir: DIR, files: sim, fsync: 'sometimes' as 'always' }), { message: /options.fsync must be one of/ });
  await t.rejects(Wal.open({ dir: DIR, files: sim, intervalMs: 0 }), { message: 'options.intervalMs must be an integer >= 1' });
  await t.rejects(Wal.open({ dir: DIR, files: sim, segmentBytes: 10 }), { message: 'options.segmentBytes must be an integer >= 64' });
});

t.test('a record cut at every byte offset of the tail is dropped; everything before replays', async (t) => {
  const sim = new SimFiles();
  const wal = await writeLog(sim, 6);
  await wal.close();
  const full = sim.peek(join(DIR, segmentName(1)))!;
  const ends: number[] = [];
  for (let at = 0, lsn = 1; at < full.length; lsn++) ends.push((at += RECORD_HEADER + body(lsn).length));
  // Every cut through the last two records (a torn group write of two records).
  let checked = 0;
  for (let cut = ends[3]!; cut < full.length; cut++) {
    const cutSim = await withSegment(full.subarray(0, cut));
    const kept = ends.filter((e) => e <= cut).length;
    const w = await Wal.open({ dir: DIR, files: cutSim });
    if (w.nextLsn !== kept + 1 || w.recovery.truncatedBytes !== cut - ends[kept - 1]!) {
      t.fail(`cut at ${cut}: next LSN ${w.nextLsn}, truncated ${w.recovery.truncatedBytes}`);
    }
    const got = await collect(w.replay());
    if (got.length !== kept) t.fail(`cut at ${cut}: replayed ${got.length} records, expected ${kept}`);
    // The log is usable after the cut: the next append takes the next LSN and replays.
    t.equal(await w.append(Op.UPSERT, body(kept + 1)), kept + 1);
    await w.close();
    const again = await Wal.open({ dir: DIR, files: cutSim });
    expectRecords(t, await collect(again.replay()), 1, kept + 1, `cut at ${cut}, appended, reopened`);
    await again.destroy();
    checked++;
  }
  t.equal(checked, full.length - ends[3]!, 'every offset checked');
});

t.test('a torn tail that is whole-length garbage or zeros is dropped too', async (t) => {
  const sim = new SimFiles();
  (await writeLog(sim, 4)).destroy();
  const full = sim.peek(join(DIR, segmentName(1)))!;
  const lastStart = full.length - RECORD_HEADER - body(4).length;
  const garbled = full.slice();
  garbled.fill(0xab, lastStart + RECORD_HEADER);
  const w1 = await Wal.open({ dir: DIR, files: await withSegment(garbled) });
  t.equal(w1.nextLsn, 4, 'a last record with a bad checksum ending at EOF is torn');
  const zeros = new Uint8Array(full.length + 4096);
  zeros.set(full);
  const w2 = await Wal.open({ dir: DIR, files: await withSegment(zeros) });
  t.equal(w2.nextLsn, 5, 'a zero-filled tail is torn');
  t.equal(w2.recovery.truncatedBytes, 4096);
  expectRecords(t, await collect(w2.replay()), 1, 4, 'zero tail');
});

t.test('a bit flipped in any record before the tail refuses with the file and offset', async (t) => {
  const sim = new SimFiles();
  (await writeLog(sim, 5)).destroy();
  const path = join(DIR, segmentName(1));
  const full = sim.peek(path)!;
  const lastStart = full.length - RECORD_HEADER - body(5).length;
  let refused = 0;
  for (let at = 0; at < lastStart; at++) {
    const bad = full.slice();
    bad[at]! ^= 0x04;
    const s = await withSegment(bad);
    const err = await Wal.open({ dir: DIR, files: s }).then(
      async (w) => collect(w.replay()).then(() => undefined, (e: unknown) => e),
      (e: unknown) => e,
    );
    if (!(err instanceof QuiverError) || err.code !== 'QUIVER_ERR_CORRUPT' || !err.message.includes(path) || !/corrupt at byte \d+/.test(err.message)) {
      t.fail(`flip at byte ${at}: ${String(err)}`);
    } else refused++;
  }
  t.equal(refused, lastStart, `all ${lastStart} flipped bytes refused`);
  const mid = full.slice();
  const second = RECORD_HEADER + body(1).length;
  mid[second + RECORD_HEADER + 2]! ^= 1;
  await t.rejects(Wal.open({ dir: DIR, files: await withSegment(mid) }), {
    code: 'QUIVER_ERR_CORRUPT',
    message: `${path}: corrupt at byte ${second}: checksum mismatch, and a whole record follows at byte ${second + RECORD_HEADER + body(2).length}`,
  }, 'the message names the file, the offset and why');
});

t.test('a flip in an older segment is found by replay; a missing segment is a gap', async (t) => {
  const sim = new SimFiles();
  const wal = await writeLog(sim, 60, 200);
  const names = wal.segmentNames;
  t.ok(names.length >= 4, `${names.length} segments`);
  await wal.close();
  const victim = join(DIR, names[1]!);
  sim.corrupt(victim, 30);
  const w = await Wal.open({ dir: DIR, files: sim });
  await t.rejects(collect(w.replay()), { code: 'QUIVER_ERR_CORRUPT', message: new RegExp(`^${victim}: corrupt at byte \\d+: checksum mismatch`) });
  sim.corrupt(victim, 30);
  expectRecords(t, await collect(w.replay()), 1, 60, 'flipped back: whole again');
  await sim.unlink(join(DIR, names[2]!));
  await sim.syncDir(DIR);
  const w2 = await Wal.open({ dir: DIR, files: sim });
  await t.rejects(collect(w2.replay()), { code: 'QUIVER_ERR_CORRUPT', message: new RegExp(`${join(DIR, names[3]!)}: corrupt at byte 0: segment starts at LSN \\d+ where LSN \\d+ belongs`) });
  await w.destroy();
  await w2.destroy();
});

t.test('LSNs are continuous across rotation, truncation and reopen (property)', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ size: fc.nat(120), truncate: fc.boolean(), reopen: fc.boolean() }), { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 64, max: 400 }),
      async (steps, segmentBytes) => {
        const sim = new SimFiles();
        let wal = await Wal.open({ dir: DIR, files: sim, segmentBytes });
        let checkpoint = 1;
        const sizes = new Map<number, number>();
        for (const s of steps) {
          const lsn = await wal.append(Op.UPSERT, new Uint8Array(s.size).fill(s.size & 0xff));
          sizes.set(lsn, s.size);
          if (s.truncate) {
            checkpoint = lsn;
            await wal.truncateBefore(checkpoint);
          }
          if (s.reopen) {
            await wal.close();
            wal = await Wal.open({ dir: DIR, files: sim, segmentBytes });
          }
        }
        if (wal.firstLsn > checkpoint) throw new Error(`truncated past the checkpoint: first ${wal.firstLsn} > ${checkpoint}`);
        const got = await collect(wal.replay(checkpoint));
        const want = Array.from({ length: steps.length - checkpoint + 1 }, (_, i) => checkpoint + i);
        t.same(got.map((r) => r.lsn), want);
        for (const r of got) if (r.body.length !== sizes.get(r.lsn)) throw new Error(`LSN ${r.lsn}: wrong body`);
        await wal.close();
      },
    ),
    { numRuns: 60 },
  );
});

t.test('truncateBefore deletes only segments wholly covered, never the active one', async (t) => {
  const sim = new SimFiles();
  const wal = await writeLog(sim, 100, 300);
  const before = wal.segmentNames.length;
  t.equal(await wal.truncateBefore(1), 0, 'nothing covered');
  const removed = await wal.truncateBefore(50);
  t.ok(removed > 0 && removed < before, `${removed} of ${before} segments removed`);
  t.ok(wal.firstLsn <= 50, `first kept LSN ${wal.firstLsn} <= 50`);
  await t.rejects(collect(wal.replay(1)), { code: 'QUIVER_ERR_CORRUPT', message: /records 1\.\.\d+ are gone/ }, 'replaying what was truncated');
  expectRecords(t, await collect(wal.replay(50)), 50, 100, 'after truncation');
  await wal.truncateBefore(1000);
  t.equal(wal.segmentNames.length, 1, 'the active segment stays');
  t.equal(await wal.append(Op.UPSERT, body(101)), 101);
  await wal.close();
  sim.crash();
  const again = await Wal.open({ dir: DIR, files: sim });
  t.equal(again.nextLsn, 102, 'deletions and appends survived a crash');
  await again.destroy();
});

t.test('startLsn: an empty log, and a log that ends before a checkpoint', async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: DIR, files: sim, startLsn: 1000 });
  t.equal(await wal.append(Op.DELETE, new Uint8Array(3)), 1000);
  await wal.close();
  const w2 = await Wal.open({ dir: DIR, files: sim, startLsn: 5000 });
  t.equal(w2.nextLsn, 5000, 'jumps to the checkpoint');
  t.equal(await w2.append(Op.DELETE, new Uint8Array(3)), 5000);
  t.same((await collect(w2.replay(5000))).map((r) => r.lsn), [5000]);
  await t.rejects(collect(w2.replay(1000)), { code: 'QUIVER_ERR_CORRUPT', message: /records 1001\.\.4999 are missing/ }, 'the jump is a gap for an older reader');
  await w2.close();
  const w3 = await Wal.open({ dir: DIR, files: sim, startLsn: 10 });
  t.equal(w3.nextLsn, 5001, 'a startLsn behind the log changes nothing');
  await w3.close();
});

t.test('the real file system: segments on disk, reopen, torn tail', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'quiver-wal-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const wal = await Wal.open({ dir: join(dir, 'wal'), segmentBytes: 4096 });
  const acks = await Promise.all(Array.from({ length: 300 }, (_, i) => wal.append(Op.UPSERT, body(i + 1))));
  t.same(acks, Array.from({ length: 300 }, (_, i) => i + 1));
  for (let i = 301; i <= 700; i++) await wal.append(Op.UPSERT, body(i));
  t.ok(wal.stats.fsyncs < 700, `${wal.stats.fsyncs} fsyncs for 700 records`);
  await wal.close();
  const files = (await readdir(join(dir, 'wal'))).sort();
  t.ok(files.length > 3 && files.every((f) => /^\d{20}\.wal$/.test(f)), `${files.length} segment files`);
  const lastPath = join(dir, 'wal', files.at(-1)!);
  const { truncate } = await import('node:fs/promises');
  await truncate(lastPath, (await stat(lastPath)).size - 3);
  const again = await Wal.open({ dir: join(dir, 'wal') });
  t.equal(again.nextLsn, 700, 'the torn last record is dropped');
  t.equal(again.recovery.file, lastPath);
  expectRecords(t, await collect(again.replay()), 1, 699, 'replay from disk');
  await again.close();
});

t.test('startSegment: the log goes on in a new segment at the next LSN, so replay from there opens only it', async (t) => {
  const sim = new SimFiles();
  const wal = await writeLog(sim, 30);
  await wal.startSegment();
  t.same(wal.segmentNames, [segmentName(1), segmentName(31)], 'a new segment starting at LSN 31');
  await wal.startSegment();
  t.same(wal.segmentNames, [segmentName(1), segmentName(31)], 'an empty active segment is kept');
  for (let lsn = 31; lsn <= 40; lsn++) t.equal(await wal.append(Op.UPSERT, body(lsn)), lsn);
  await wal.close();
  const again = await Wal.open({ dir: DIR, files: sim });
  expectRecords(t, await collect(again.replay()), 1, 40, 'every record, across the new segment');
  // replay from 31 must not touch the first segment: damage it, and it still works
  const h = await sim.open(join(DIR, segmentName(1)), 'r+');
  await h.write(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 8);
  await h.datasync();
  await h.close();
  expectRecords(t, await collect(again.replay(31)), 31, 40, 'from the new segment, the old one unread');
  await t.rejects(collect(again.replay(1)), { code: 'QUIVER_ERR_CORRUPT' }, 'reading the old one does see the damage');
  await again.close();
  const closed = await Wal.open({ dir: join(DIR, 'other'), files: sim });
  await closed.close();
  await t.rejects(closed.startSegment(), { code: 'QUIVER_ERR_CLOSED' });
});
