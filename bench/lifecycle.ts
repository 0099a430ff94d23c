/**
 * bench:lifecycle — how fast do cancellation and shutdown act?
 *
 *   npm run bench:lifecycle -- [--runs 5] [--json FILE] [--small]
 *
 * The timings the tests do not assert (a test asserts what happens, never
 * how fast; test/store-cancel, store-lifecycle and store-hang check the
 * behaviour). On one Store with 2 threads, each measurement repeated
 * `runs` times:
 *   - insert abort: a batch insert (dim 16, M 16, efConstruction 64) is
 *     aborted once part of it is in; the delay from abort() to the rejection;
 *   - compaction abort: a compaction of a dataset with half its vectors
 *     deleted is aborted ABORT_COMPACT_AFTER_MS after it starts; the delay
 *     from abort() to the rejection;
 *   - search beside a long insert: a search on a dataset owned by the other
 *     thread, and one on the inserting dataset itself (it runs between the
 *     insert's steps), issued while a long insert runs;
 *   - close: a graceful close() waiting for an insert in flight, and a
 *     close({ timeoutMs: FORCED_TIMEOUT_MS }) that a long insert forces;
 *     how long close() took, and for the forced one how far past its timeout.
 * The design's bars (its Cancellation section): an abort acts within one step,
 * target under 100 ms, the plan's limit 1 s; a forced close resolves soon
 * after its timeout.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Store } from '../host/index.js';
import { clustered } from './lib/random.js';
import { table } from './lib/table.js';

const DIM = 16;
const ABORT_INSERT_AFTER_MS = 400;
const ABORT_COMPACT_AFTER_MS = 30; // well inside a compaction of N_COMPACT, which runs for hundreds of ms
const FORCED_TIMEOUT_MS = 200;
const ABORT_TARGET_MS = 100;
const ABORT_LIMIT_MS = 1000;

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    json: { type: 'string' },
    small: { type: 'boolean', default: false },
  },
});
const small = values.small;
const runs = Number(values.runs ?? (small ? 2 : 5));
if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`--runs must be a positive integer (got ${values.runs})`);
const N_INSERT = small ? 100_000 : 200_000;
const N_COMPACT = small ? 50_000 : 100_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** When a promise settles (performance.now()), and whether it rejected. */
function timed<T>(p: Promise<T>): Promise<{ at: number; ok: boolean; value?: T; err?: unknown }> {
  return p.then((value) => ({ at: performance.now(), ok: true, value }), (err: unknown) => ({ at: performance.now(), ok: false, err }));
}

interface Row {
  measure: string;
  /** Milliseconds, one per run; a run that did not happen as planned is left out and counted in `missed`. */
  ms: number[];
  missed: number;
  bar: string;
}

const rows: Row[] = [];
const row = (measure: string, bar = ''): Row => {
  const r: Row = { measure, ms: [], missed: 0, bar };
  rows.push(r);
  return r;
};

const data = clustered(N_INSERT, DIM, 64, 3);
const ids = Array.from({ length: N_INSERT }, (_, i) => i);
const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 }, tuner: { tunerIntervalMs: 0 } });

async function insertAbort(out: Row, applied: number[]): Promise<void> {
  await store.createDataset('abort', { dim: DIM, M: 16, efConstruction: 64 });
  await store.count('abort'); // both threads up
  const controller = new AbortController();
  const insert = timed(store.insert('abort', ids, data, { signal: controller.signal }));
  await sleep(ABORT_INSERT_AFTER_MS);
  const at = performance.now();
  controller.abort();
  const r = await insert;
  if (r.ok) out.missed++;
  else {
    out.ms.push(r.at - at);
    applied.push((r.err as { applied?: number }).applied ?? 0);
  }
  await store.dropDataset('abort');
}

async function compactionAbort(out: Row): Promise<void> {
  await store.createDataset('cmp', { dim: DIM, M: 16, efConstruction: 64 });
  await store.insert('cmp', ids.slice(0, N_COMPACT), data.subarray(0, N_COMPACT * DIM));
  await store.delete('cmp', ids.slice(0, N_COMPACT).filter((i) => i % 2 === 1));
  const controller = new AbortController();
  const compaction = timed(store.compact('cmp', { signal: controller.signal }));
  await sleep(ABORT_COMPACT_AFTER_MS);
  const at = performance.now();
  controller.abort();
  const r = await compaction;
  if (r.ok) out.missed++;
  else out.ms.push(r.at - at);
  await store.dropDataset('cmp');
}

async function besideInsert(other: Row, same: Row): Promise<void> {
  await store.createDataset('A', { dim: DIM, shards: 1, M: 8, efConstruction: 16 });
  await store.createDataset('B', { dim: DIM, shards: 1, M: 8, efConstruction: 16 });
  await store.insert('B', ids.slice(0, 2000), data.subarray(0, 2000 * DIM));
  const q = data.subarray(5 * DIM, 6 * DIM);
  await store.search('B', q, 10); // warm
  const long = timed(store.insert('A', ids, data));
  await sleep(200);
  const s0 = performance.now();
  const [onB, onA, done] = await Promise.all([timed(store.search('B', q, 10)), timed(store.search('A', q, 10)), long]);
  // only while the insert still ran is the search "beside" it
  if (onB.at < done.at) other.ms.push(onB.at - s0);
  else other.missed++;
  if (onA.at < done.at) same.ms.push(onA.at - s0);
  else same.missed++;
  await store.dropDataset('A');
  await store.dropDataset('B');
}

async function closeDuring(graceful: Row, forced: Row, overshoot: Row): Promise<void> {
  for (const timeoutMs of [undefined, FORCED_TIMEOUT_MS]) {
    const s = await Store.open({ threads: 2 });
    await s.createDataset('d', { dim: DIM, M: 8, efConstruction: 16 });
    await s.count('d');
    const n = timeoutMs === undefined ? 60_000 : N_INSERT;
    const insert = timed(s.insert('d', ids.slice(0, n), data.subarray(0, n * DIM)));
    await sleep(100);
    const started = performance.now();
    const report = await s.close(timeoutMs === undefined ? {} : { timeoutMs });
    const took = performance.now() - started;
    await insert;
    if (timeoutMs === undefined) graceful.ms.push(took);
    else if (!report.forced) forced.missed++;
    else {
      forced.ms.push(took);
      overshoot.ms.push(took - timeoutMs);
    }
  }
}

const abortInsert = row(`insert of ${N_INSERT} x ${DIM}: abort() -> rejection`, `< ${ABORT_TARGET_MS} (limit ${ABORT_LIMIT_MS})`);
const abortCompact = row(`compaction of ${N_COMPACT} (half deleted): abort() -> rejection`, `< ${ABORT_TARGET_MS} (limit ${ABORT_LIMIT_MS})`);
const searchOther = row(`search on the other thread's dataset during an insert of ${N_INSERT}`);
const searchSame = row(`search on the inserting dataset (between steps)`);
const closeGraceful = row('close() waiting for an insert of 60000 in flight');
const closeForced = row(`close({ timeoutMs: ${FORCED_TIMEOUT_MS} }) forced by an insert in flight`);
const closeOvershoot = row('  of which past the timeout');
const applied: number[] = [];
const started = performance.now();
for (let r = 0; r < runs; r++) {
  process.stderr.write(`[lifecycle] run ${r + 1} of ${runs}...\n`);
  await insertAbort(abortInsert, applied);
  await compactionAbort(abortCompact);
  await besideInsert(searchOther, searchSame);
  await closeDuring(closeGraceful, closeForced, closeOvershoot);
}
await store.close();

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ms = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(1));
console.log(`\nCancellation and shutdown, 2 threads, ${runs} run(s) each (ms)`);
console.log(table(['measure', 'runs', 'median', 'max', 'bar', 'missed'],
  rows.map((r) => [r.measure, String(r.ms.length), ms(median(r.ms)), ms(r.ms.length === 0 ? NaN : Math.max(...r.ms)), r.bar, r.missed === 0 ? '' : String(r.missed)])));
console.log(`\napplied before the insert abort: ${applied.join(', ') || '-'} of ${N_INSERT}; ` +
  `missed = the run did not go as planned (the call finished before the abort, the search after the insert, the close was not forced)`);
console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ runs, rows: rows.map((r) => ({ ...r, medianMs: median(r.ms) })), applied }, null, 2));
