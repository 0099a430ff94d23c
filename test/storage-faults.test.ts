// I/O faults: a write that cannot be made durable is rejected with a coded
// error, nothing after it is acknowledged, and the log works again once the
// fault clears, holding exactly the acknowledged records.
import t from 'tap';
import { SimFiles } from '../host/storage/sim-files.js';
import { Wal, type FsyncPolicy } from '../host/storage/wal.js';
import { Op, type LogRecord } from '../host/storage/record.js';
import { QuiverError } from '../host/errors.js';

const DIR = '/db/wal';
type Tap = Pick<typeof import('tap').default, 'same'>;

async function collect(it: AsyncIterable<LogRecord>): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

const tagOf = (r: LogRecord): number => r.body[0]! | (r.body[1]! << 8);
const body = (tag: number): Uint8Array => Uint8Array.from([tag & 0xff, tag >> 8, 1, 2, 3, 4, 5, 6, 7, 8]);

/** Appends tags concurrently; returns [tag, lsn | error] per append. */
async function burst(wal: Wal, tags: number[]): Promise<[number, number | QuiverError][]> {
  return Promise.all(tags.map(async (tag) => [tag, await wal.append(Op.UPSERT, body(tag)).catch((e: QuiverError) => e)] as [number, number | QuiverError]));
}

/** Replays the log, after a crash too: exactly the acknowledged tags, in LSN order. */
async function check(t: Tap, sim: SimFiles, wal: Wal, acked: Map<number, number>, msg: string): Promise<void> {
  const want = [...acked].sort((a, b) => a[1] - b[1]).map(([tag, lsn]) => [lsn, tag]);
  t.same((await collect(wal.replay())).map((r) => [r.lsn, tagOf(r)]), want, `${msg}: replay = acknowledged`);
  await wal.sync();
  sim.crash();
  await wal.destroy();
  const again = await Wal.open({ dir: DIR, files: sim });
  t.same((await collect(again.replay())).map((r) => [r.lsn, tagOf(r)]), want, `${msg}: after a crash too`);
  await again.destroy();
}

for (const [op, code, partial] of [
  ['write', 'ENOSPC', 25],
  ['write', 'EIO', 0],
  ['sync', 'EIO', 0],
] as const) {
  t.test(`${code} on ${op}: the group and what queued behind it are rejected; then appends succeed again`, async (t) => {
    const sim = new SimFiles();
    sim.latency.sync = 2;
    const wal = await Wal.open({ dir: DIR, files: sim });
    const acked = new Map<number, number>();
    for (const [tag, r] of await burst(wal, [1, 2, 3])) if (typeof r === 'number') acked.set(tag, r);
    t.equal(acked.size, 3);
    sim.failNext(op, code, 1, partial);
    const failing = burst(wal, [10, 11, 12, 13]);
    await Promise.resolve();
    const behind = burst(wal, [20, 21]); // queued while the failing group is in flight
    const results = [...(await failing), ...(await behind)];
    for (const [tag, r] of results) {
      t.ok(r instanceof QuiverError && r.code === 'QUIVER_ERR_IO' && r.message.includes(code), `append ${tag} rejected with QUIVER_ERR_IO (${code})`);
    }
    t.equal(wal.nextLsn, 4, 'no LSN was used up');
    for (const [tag, r] of await burst(wal, [30, 31, 32])) {
      t.type(r, 'number', `append ${tag} succeeds after the fault`);
      if (typeof r === 'number') acked.set(tag, r);
    }
    t.same([acked.get(30), acked.get(31), acked.get(32)], [4, 5, 6], 'with the next LSNs');
    await check(t, sim, wal, acked, `${code} on ${op}`);
  });
}

for (const policy of ['always', 'interval', 'never'] as FsyncPolicy[]) {
  t.test(`${policy}: a fault that lasts refuses every append until it clears`, async (t) => {
    const sim = new SimFiles();
    const wal = await Wal.open({ dir: DIR, files: sim, fsync: policy, intervalMs: 1_000_000 });
    const acked = new Map<number, number>();
    for (const [tag, r] of await burst(wal, [1, 2])) if (typeof r === 'number') acked.set(tag, r);
    sim.failAlways('write', 'ENOSPC', 7);
    sim.failAlways('sync', 'EIO');
    for (let round = 0; round < 3; round++) {
      for (const [tag, r] of await burst(wal, [100 + round * 10, 101 + round * 10])) {
        t.ok(r instanceof QuiverError && r.code === 'QUIVER_ERR_IO', `round ${round}: append ${tag} rejected`);
      }
    }
    const err = await wal.sync().catch((e: QuiverError) => e);
    t.ok(err instanceof QuiverError && err.code === 'QUIVER_ERR_IO', 'sync() reports the fault too');
    t.ok((err as Error).message.length < 600 && ((err as Error).message.match(/repairing/g)?.length ?? 0) <= 1, `a repeated fault does not pile up messages: ${(err as Error).message}`);
    sim.clearFaults();
    for (const [tag, r] of await burst(wal, [200, 201, 202])) {
      t.type(r, 'number', `append ${tag} succeeds once the disk is back`);
      if (typeof r === 'number') acked.set(tag, r);
    }
    t.equal(acked.get(200), 3, 'continuing right after the last acknowledged record');
    await check(t, sim, wal, acked, `${policy}, lasting fault`);
  });
}

t.test('a fault during rotation leaves the log consistent', async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: DIR, files: sim, segmentBytes: 100 });
  const acked = new Map<number, number>();
  let tag = 0;
  for (let i = 0; i < 8; i++) for (const [tg, r] of await burst(wal, [++tag])) if (typeof r === 'number') acked.set(tg, r);
  for (const op of ['open', 'syncDir'] as const) {
    const before = wal.stats.rotations;
    let refused = 0;
    // Fill the active segment so the next append rotates, with the fault armed.
    while (wal.stats.rotations === before) {
      sim.failNext(op, 'EIO');
      const [[tg, r]] = (await burst(wal, [++tag])) as [[number, number | QuiverError]];
      if (typeof r === 'number') acked.set(tg, r);
      else {
        t.equal(r.code, 'QUIVER_ERR_IO', `${op} failing at rotation rejects the append`);
        refused++;
        sim.clearFaults();
        const [[tg2, r2]] = (await burst(wal, [++tag])) as [[number, number | QuiverError]];
        t.type(r2, 'number', 'the next append succeeds');
        if (typeof r2 === 'number') acked.set(tg2, r2);
        break;
      }
      sim.clearFaults();
    }
    t.equal(refused, 1, `the ${op} fault hit the rotation`);
  }
  await check(t, sim, wal, acked, 'rotation faults');
});
