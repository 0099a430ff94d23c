// Lost page cache: SimFiles.crash() drops everything not synced, which a
// kill -9 (page cache kept) cannot show.
import t from 'tap';
import fc from 'fast-check';
import { setTimeout as sleep } from 'node:timers/promises';
import { SimFiles } from '../host/storage/sim-files.js';
import { Wal, type FsyncPolicy } from '../host/storage/wal.js';
import { Op, type LogRecord } from '../host/storage/record.js';

const DIR = '/db/wal';

function body(tag: number, size: number): Uint8Array {
  const b = new Uint8Array(size + 4);
  new DataView(b.buffer).setUint32(0, tag, true);
  return b.fill(tag & 0xff, 4);
}

async function collect(it: AsyncIterable<LogRecord>): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

t.test("'always': every acknowledged append survives a crash, even with appends in flight", async (t) => {
  for (let round = 0; round < 20; round++) {
    const sim = new SimFiles();
    sim.latency.sync = 1;
    const wal = await Wal.open({ dir: DIR, files: sim, segmentBytes: 2000 });
    const acked = new Map<number, number>();
    let tag = 0;
    let stop = false;
    const writer = async (): Promise<void> => {
      while (!stop) {
        const mine = ++tag;
        try {
          acked.set(await wal.append(Op.UPSERT, body(mine, mine % 50)), mine);
        } catch {
          return; // the crash
        }
      }
    };
    const writers = Array.from({ length: 8 }, writer);
    // crash once some appends are acknowledged (more each round) while others are in flight;
    // counted, not timed, so a loaded machine still crashes mid-stream
    const deadline = Date.now() + 10_000;
    while (acked.size < 1 + 3 * round && Date.now() < deadline) await sleep(1);
    sim.crash();
    await wal.destroy();
    stop = true;
    await Promise.all(writers);
    const again = await Wal.open({ dir: DIR, files: sim });
    const got = new Map((await collect(again.replay())).map((r) => [r.lsn, new DataView(r.body.buffer, r.body.byteOffset).getUint32(0, true)]));
    const lost = [...acked].filter(([lsn, tg]) => got.get(lsn) !== tg);
    if (lost.length) t.fail(`round ${round}: ${lost.length} acknowledged appends lost, e.g. LSN ${lost[0]![0]}`);
    t.ok(acked.size > 0 && again.nextLsn > Math.max(...acked.keys()), `round ${round}: ${acked.size} acknowledged, all recovered (${got.size} in the log)`);
    await again.destroy();
  }
});

t.test("'interval': a crash loses at most the window since the last timed sync", async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: DIR, files: sim, fsync: 'interval', intervalMs: 25 });
  for (let i = 1; i <= 40; i++) await wal.append(Op.UPSERT, body(i, 10));
  await sleep(100);
  t.equal(wal.durableLsn, 40, 'older than the window: synced');
  for (let i = 41; i <= 60; i++) await wal.append(Op.UPSERT, body(i, 10));
  const durableAtCrash = wal.durableLsn;
  sim.crash();
  await wal.destroy();
  const again = await Wal.open({ dir: DIR, files: sim, fsync: 'interval', intervalMs: 25 });
  const got = await collect(again.replay());
  t.ok(got.length >= 40 && got.length >= durableAtCrash, `${got.length} of 60 recovered; everything synced (${durableAtCrash}) kept`);
  t.ok(got.length <= 60);
  t.ok(got.every((r, i) => r.lsn === i + 1 && new DataView(r.body.buffer, r.body.byteOffset).getUint32(0, true) === i + 1), 'a prefix of what was written');
  t.equal(got.length, durableAtCrash, 'what was lost is exactly what was written after the last sync');
  await again.destroy();
});

t.test("'interval': a failed timed sync does not lose acknowledged records (dirty pages dropped by the OS are re-written)", async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: DIR, files: sim, fsync: 'interval', intervalMs: 15 });
  for (let i = 1; i <= 20; i++) await wal.append(Op.UPSERT, body(i, 10));
  sim.failNext('sync', 'EIO');
  await sleep(80);
  t.equal(sim.counts.sync >= 2, true, 'the timer retried after the failure');
  t.equal(wal.durableLsn, 20, 'durable after the retry');
  sim.crash();
  await wal.destroy();
  const again = await Wal.open({ dir: DIR, files: sim });
  t.equal((await collect(again.replay())).length, 20, 'all 20 acknowledged records survive');
  await again.destroy();
});

/** A command of the model test. */
type Cmd =
  | { kind: 'append'; sizes: number[] }
  | { kind: 'appendThenCrash'; sizes: number[]; ticks: number }
  | { kind: 'sync' }
  | { kind: 'crash' }
  | { kind: 'reopen' }
  | { kind: 'truncate'; back: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('append' as const), sizes: fc.array(fc.nat(90), { minLength: 1, maxLength: 6 }) }), weight: 5 },
  { arbitrary: fc.record({ kind: fc.constant('appendThenCrash' as const), sizes: fc.array(fc.nat(90), { minLength: 1, maxLength: 6 }), ticks: fc.nat(6) }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'sync' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'crash' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'reopen' as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('truncate' as const), back: fc.nat(10) }), weight: 1 },
);

t.test('model: random append / sync / crash / reopen / truncateBefore against an array', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.constantFrom<FsyncPolicy>('always', 'interval', 'never'), fc.array(cmd, { minLength: 1, maxLength: 25 }), async (policy, cmds) => {
      runs++;
      const sim = new SimFiles();
      const open = (startLsn: number): Promise<Wal> => Wal.open({ dir: DIR, files: sim, fsync: policy, intervalMs: 1_000_000, segmentBytes: 300, startLsn });
      /** model[lsn - 1] = the tag of the record with that LSN; entries before `checkpoint` are "in the image". */
      let model: number[] = [];
      let checkpoint = 1;
      let tag = 0;
      let wal = await open(1);
      const crash = async (issued: number[]): Promise<void> => {
        // What may survive: everything durable; what was written but not synced may or may not.
        const durable = wal.durableLsn;
        sim.crash();
        await wal.destroy();
        wal = await open(checkpoint);
        const recovered = wal.lastLsn;
        const all = [...model, ...issued];
        if (recovered < Math.max(durable, checkpoint - 1) || recovered > all.length) {
          throw new Error(`${policy}: recovered up to ${recovered}, durable was ${durable}, written ${all.length}, checkpoint ${checkpoint}`);
        }
        model = all.slice(0, Math.max(recovered, checkpoint - 1));
      };
      try {
        for (const c of cmds) {
          if (c.kind === 'append') {
            const tags = c.sizes.map(() => ++tag);
            const lsns = await Promise.all(c.sizes.map((s, i) => wal.append(Op.UPSERT, body(tags[i]!, s))));
            lsns.forEach((lsn, i) => {
              if (lsn !== model.length + 1 + i) throw new Error(`append got LSN ${lsn}, model expects ${model.length + 1 + i}`);
            });
            model.push(...tags);
          } else if (c.kind === 'appendThenCrash') {
            const tags = c.sizes.map(() => ++tag);
            const acks = c.sizes.map((s, i) => wal.append(Op.UPSERT, body(tags[i]!, s)).then((lsn) => lsn, () => 0));
            for (let i = 0; i < c.ticks; i++) await Promise.resolve();
            const before = model.length;
            await crash(tags);
            const acked = (await Promise.all(acks)).filter((lsn) => lsn > 0);
            if (policy === 'always' && acked.some((lsn) => lsn > model.length)) throw new Error(`acknowledged LSN ${Math.max(...acked)} lost (recovered ${model.length}, had ${before})`);
          } else if (c.kind === 'sync') {
            await wal.sync();
          } else if (c.kind === 'crash') {
            await crash([]);
          } else if (c.kind === 'reopen') {
            await wal.close();
            wal = await open(checkpoint);
          } else {
            const lsn = Math.max(1, model.length + 1 - c.back);
            if (lsn > checkpoint) checkpoint = lsn;
            await wal.truncateBefore(checkpoint);
          }
          if (wal.nextLsn !== Math.max(model.length + 1, checkpoint)) throw new Error(`next LSN ${wal.nextLsn}, model ${model.length + 1}, checkpoint ${checkpoint}`);
        }
        const from = Math.min(checkpoint, wal.nextLsn);
        const got = await collect(wal.replay(from));
        const want = model.slice(from - 1);
        const tags = got.map((r) => new DataView(r.body.buffer, r.body.byteOffset).getUint32(0, true));
        if (JSON.stringify(tags) !== JSON.stringify(want) || got.some((r, i) => r.lsn !== from + i)) {
          throw new Error(`${policy}: replay ${JSON.stringify(tags)} != model ${JSON.stringify(want)}`);
        }
      } finally {
        await wal.destroy();
      }
    }),
    { numRuns: 150 },
  );
  t.equal(runs >= 150, true, `${runs} random sequences agree with the model`);
});
