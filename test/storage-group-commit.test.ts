import t from 'tap';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SimFiles } from '../host/storage/sim-files.js';
import { Wal, MAX_GROUP_BYTES, MAX_UNSYNCED_BYTES } from '../host/storage/wal.js';
import { Op, RECORD_HEADER } from '../host/storage/record.js';
import { segmentName } from '../host/storage/segment.js';

const DIR = '/db/wal';
const SEG = join(DIR, segmentName(1));
const BODY = 40;

t.test("'always': concurrent appends share syncs, and each resolves only after the sync that covers it", async (t) => {
  const sim = new SimFiles();
  sim.latency.sync = 3;
  const wal = await Wal.open({ dir: DIR, files: sim });
  const WRITERS = 16;
  const EACH = 10;
  let early = 0;
  const writer = async (w: number): Promise<number[]> => {
    const lsns: number[] = [];
    for (let i = 0; i < EACH; i++) {
      const lsn = await wal.append(Op.UPSERT, new Uint8Array(BODY).fill(w));
      // Durable now: the bytes that survive a crash reach past this record.
      if ((sim.peekDurable(SEG)?.length ?? 0) < lsn * (RECORD_HEADER + BODY) || wal.durableLsn < lsn) early++;
      lsns.push(lsn);
    }
    return lsns;
  };
  const all = (await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)))).flat();
  const n = WRITERS * EACH;
  t.equal(early, 0, 'no append resolved before its record was synced');
  t.same([...all].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i + 1), 'every LSN once');
  t.equal(wal.stats.records, n);
  t.ok(wal.stats.fsyncs < n, `${wal.stats.fsyncs} fsyncs for ${n} appends`);
  t.ok(wal.stats.fsyncs <= EACH + 2, `about one sync per round of the ${WRITERS} writers (${wal.stats.fsyncs})`);
  t.equal(wal.stats.writes, wal.stats.fsyncs, 'one write per sync');
  t.equal(wal.stats.bytes, n * (RECORD_HEADER + BODY));
  await wal.close();
});

t.test('appends queued in one tick go out as one write and one fdatasync', async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: DIR, files: sim });
  const writesBefore = sim.counts.write;
  const syncsBefore = sim.counts.sync;
  const lsns = await Promise.all(Array.from({ length: 100 }, () => wal.append(Op.DELETE, new Uint8Array(8))));
  t.same(lsns, Array.from({ length: 100 }, (_, i) => i + 1), 'LSNs in call order');
  t.equal(sim.counts.write - writesBefore, 1, 'one write');
  t.equal(sim.counts.sync - syncsBefore, 1, 'one fdatasync');
  await wal.close();
});

t.test("'interval': acknowledged at write, synced by the timer within the interval", async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: DIR, files: sim, fsync: 'interval', intervalMs: 20 });
  const lsns = await Promise.all(Array.from({ length: 50 }, () => wal.append(Op.UPSERT, new Uint8Array(BODY))));
  t.equal(lsns.at(-1), 50);
  t.equal(wal.stats.fsyncs, 0, 'no sync on the write path');
  t.equal(wal.durableLsn, 0, 'not durable yet');
  await sleep(80);
  t.equal(wal.durableLsn, 50, 'the timer synced');
  t.equal(wal.stats.fsyncs, 1, 'once');
  await sleep(60);
  t.equal(wal.stats.fsyncs, 1, 'an idle log is not synced again');
  await wal.close();
});

t.test("'never': acknowledged at write; synced at rotation and close only", async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: DIR, files: sim, fsync: 'never', segmentBytes: 500 });
  for (let i = 0; i < 30; i++) await wal.append(Op.UPSERT, new Uint8Array(BODY));
  t.ok(wal.stats.rotations > 0, `${wal.stats.rotations} rotations`);
  t.equal(wal.stats.fsyncs, wal.stats.rotations, 'one sync per rotation, none per append');
  t.ok(wal.durableLsn < 30, 'the active segment is not durable');
  await wal.sync();
  t.equal(wal.durableLsn, 30, 'sync() makes it durable');
  await wal.close();
});

t.test('a backlog larger than MAX_GROUP_BYTES goes out in several writes, in order, and close() flushes all of it', async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: DIR, files: sim });
  const big = MAX_GROUP_BYTES / 2 - 100;
  const acks = Array.from({ length: 5 }, (_, i) => wal.append(Op.UPSERT, new Uint8Array(big).fill(i)));
  const closed = wal.close();
  t.same(await Promise.all(acks), [1, 2, 3, 4, 5], 'all acknowledged in order');
  await closed;
  t.equal(wal.stats.writes, 3, 'two records per write');
  t.equal(wal.stats.records, 5);
  const again = await Wal.open({ dir: DIR, files: sim });
  let good = 0;
  for await (const r of again.replay()) if (r.lsn === good + 1 && r.body.length === big && r.body[7] === good) good++;
  t.equal(good, 5, 'all five replay intact');
  await again.destroy();
});

t.test("'interval': past MAX_UNSYNCED_BYTES of unsynced records it syncs without waiting for the timer", async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: DIR, files: sim, fsync: 'interval', intervalMs: 1_000_000 });
  const chunk = 1024 * 1024;
  for (let i = 0; i < MAX_UNSYNCED_BYTES / chunk - 1; i++) await wal.append(Op.UPSERT, new Uint8Array(chunk));
  t.equal(wal.stats.fsyncs, 0, 'below the bound: the timer decides');
  await wal.append(Op.UPSERT, new Uint8Array(chunk));
  t.equal(wal.stats.fsyncs, 1, 'past it: synced at once');
  t.equal(wal.durableLsn, wal.lastLsn, 'everything durable');
  await wal.destroy();
});
