/**
 * soak — does memory come back to the OS under sustained churn?
 *
 *   npm run soak -- [--minutes 20] [--out soak-results] [--threads 2] [--seed 1]
 *
 * One Store (background compaction every COMPACTION_INTERVAL_MS) takes, all
 * at once and until the deadline, the load of soak/workload.ts: inserts of
 * new ids and deletes of the oldest ids on two long-lived datasets (their
 * live size held steady), searches on both, and create/fill/search/drop
 * cycles of short-lived datasets. Every second soak/sampler.ts samples RSS,
 * V8 heap, arena committed and live bytes, worker threads, live vectors and
 * compactions into OUT/memory-soak.csv, and soak/chart.ts draws
 * OUT/memory-soak.svg. At the end it stops the churn, lets background
 * compaction settle, drops everything, closes the store and prints the
 * verdict of soak/verdict.ts: exit 0 if every check passes, 1 if not.
 * docs/soak.md says how to read the chart and why the limits are what they are.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Store, collectGarbage } from '../host/index.js';
import { osThreads } from '../bench/lib/resources.js';
import { chart } from './soak/chart.js';
import { csv, startSampler, type Phase } from './soak/sampler.js';
import { checksTable, fmt, verdict } from './soak/verdict.js';
import { CHURN_PER_SECOND, EPHEMERAL_EVERY_MS, EPHEMERAL_SIZE, LONG_LIVED, M, Workload } from './soak/workload.js';

const MB = 1024 * 1024;

/** Background compaction looks for work this often (the default is 30 s). */
const COMPACTION_INTERVAL_MS = 2_000;
/** After churn stops: background compaction alone gets this long to catch up. */
const SETTLE_MIN_MS = 2.5 * COMPACTION_INTERVAL_MS;
const SETTLE_QUIET_MS = 1.5 * COMPACTION_INTERVAL_MS;
const SETTLE_MAX_MS = 30_000;
/** A dropped WebAssembly.Memory is unmapped a little after the GC that finds it. */
const UNMAP_WAIT_MS = 1_000;

// ---------------------------------------------------------------- arguments

function usage(message: string): never {
  console.error(`soak: ${message}\nusage: npm run soak -- [--minutes 20] [--out soak-results] [--threads 2] [--seed 1]`);
  process.exit(2);
}

const { values: args } = (() => {
  try {
    return parseArgs({
      options: {
        minutes: { type: 'string', default: '20' },
        out: { type: 'string', default: 'soak-results' },
        threads: { type: 'string', default: '2' },
        seed: { type: 'string', default: '1' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
})();

const MINUTES = Number(args.minutes);
if (!(Number.isFinite(MINUTES) && MINUTES > 0)) usage(`--minutes must be a positive number (got ${args.minutes})`);
const THREADS = Number(args.threads);
if (!(Number.isInteger(THREADS) && THREADS >= 1 && THREADS <= 64)) usage(`--threads must be an integer from 1 to 64 (got ${args.threads})`);
const SEED = Number(args.seed);
if (!Number.isSafeInteger(SEED)) usage(`--seed must be an integer (got ${args.seed})`);
const OUT = resolve(args.out);

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const rssBeforeOpen = process.memoryUsage.rss();
  const store = await Store.open({ threads: THREADS, compaction: { intervalMs: COMPACTION_INTERVAL_MS } });
  const t0 = performance.now();
  let deadline = t0 + MINUTES * 60_000;
  const work = new Workload(store, THREADS, SEED, () => deadline);
  const { counters } = work;
  let lastCompaction = performance.now();
  store.on('compaction', (e: { result: string; reclaimedBytes: number }) => {
    lastCompaction = performance.now();
    if (e.result === 'ok') {
      counters.compactions++;
      counters.reclaimed += e.reclaimedBytes;
    } else if (e.result === 'error') {
      counters.compactionErrors++;
    }
  });
  store.on('tuner', () => counters.tuner++);
  store.on('error', (err: unknown) => work.noteError('store', err));
  process.once('SIGINT', () => {
    console.log('soak: interrupted, finishing up');
    deadline = performance.now();
  });

  let phase: Phase = 'churn';
  const sampler = startSampler(store, t0, () => phase, counters);
  const { rows } = sampler;
  const rssAtOpen = process.memoryUsage.rss();

  console.log(`soak: ${MINUTES} min, ${THREADS} threads, compaction every ${COMPACTION_INTERVAL_MS} ms, seed ${SEED}; writing to ${OUT}`);
  await work.start();
  // progress, once a minute (or at half time in a short run)
  const progress = setInterval(() => {
    const r = rows[rows.length - 1];
    if (r === undefined) return;
    console.log(`  ${fmt(r.t, 0)} s: RSS ${fmt(r.rss / MB)} MB, arena ${fmt(r.committed / MB)}/${fmt(r.live / MB)} MB committed/live, ${r.liveVectors} vectors, ${r.compactions} compactions, ${r.errors} errors`);
  }, Math.min(60_000, (MINUTES * 60_000) / 2));
  while (performance.now() < deadline) await sleep(Math.min(250, Math.max(1, deadline - performance.now())));
  await work.stop();
  clearInterval(progress);
  const churnEnd = (performance.now() - t0) / 1000;

  // background compaction alone catches up: no manual compact or releaseMemory
  phase = 'settle';
  const settleStart = performance.now();
  for (;;) {
    const now = performance.now();
    if (now - settleStart >= SETTLE_MAX_MS) break;
    if (now - settleStart >= SETTLE_MIN_MS && now - lastCompaction >= SETTLE_QUIET_MS) break;
    await sleep(100);
  }
  const settled = await store.stats();

  phase = 'drop';
  const dropAt = (performance.now() - t0) / 1000;
  for (const name of store.listDatasets()) await store.dropDataset(name);
  await sleep(UNMAP_WAIT_MS);
  await sampler.stop();
  const afterDrop = await store.stats();
  const closeReport = await store.close();
  collectGarbage();
  await sleep(UNMAP_WAIT_MS);
  const rssAfterClose = process.memoryUsage.rss();
  rows.push({
    ...rows[rows.length - 1]!, t: (performance.now() - t0) / 1000, phase: 'closed', rss: rssAfterClose,
    heapUsed: process.memoryUsage().heapUsed, committed: 0, live: 0, threads: 0, osThreads: osThreads(), datasets: 0, liveVectors: 0, deletedVectors: 0,
  });

  const v = verdict({ threads: THREADS, rows, settled, afterDrop, closeReport, counters, missedSamples: sampler.missed(), rssBeforeOpen, rssAtOpen, rssAfterClose });
  mkdirSync(OUT, { recursive: true });
  const csvPath = join(OUT, 'memory-soak.csv');
  const svgPath = join(OUT, 'memory-soak.svg');
  writeFileSync(csvPath, csv(rows));
  writeFileSync(svgPath, chart(rows, {
    title: `quiver memory soak: ${MINUTES} min, ${THREADS} threads, compaction every ${COMPACTION_INTERVAL_MS / 1000} s, seed ${SEED}`,
    subtitle: [
      `${LONG_LIVED.map((d) => `${d.name} ${d.size / 1000}k x ${d.dim}${d.payloads ? ' + payloads' : ''}`).join(', ')}, M ${M}, efC ${LONG_LIVED[0].efConstruction}, `
        + `each replacing ${CHURN_PER_SECOND} vectors/s; a ${EPHEMERAL_SIZE / 1000}k dataset created and dropped every ${EPHEMERAL_EVERY_MS / 1000} s`,
      `peak RSS ${fmt(v.peak.rss / MB, 0)} MB; RSS slope ${fmt(v.rssSlope.mbPerMin, 2)} MB/min (limit ${fmt(v.rssSlope.limit, 1)}); arena slope ${fmt(v.arenaSlope.mbPerMin, 2)} MB/min (limit ${fmt(v.arenaSlope.limit, 1)}); `
        + `${counters.compactions} compactions; settled committed/live ${Number.isNaN(v.settledRatio) ? '-' : fmt(v.settledRatio, 2)}x`,
    ],
    pass: v.pass, threads: THREADS, rssSlope: v.rssSlope, churnEnd, dropAt,
  }));

  console.log(`\n${checksTable(v.checks)}\n`);
  console.log(`work: ${counters.inserted} inserted, ${counters.deleted} deleted, ${counters.searches} queries, `
    + `${counters.created} short-lived datasets created and dropped, ${counters.tuner} tuner decisions\n`);
  if (work.errorMessages.length > 0) console.log(`errors (first ${work.errorMessages.length}):\n  ${work.errorMessages.join('\n  ')}\n`);
  console.log(`verdict: ${v.pass ? 'PASS' : 'FAIL'}`);
  console.log(`csv: ${csvPath}`);
  console.log(`svg: ${svgPath}`);
  return v.pass ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
    // nothing should be left running; if something is, do not hang CI on it
    setTimeout(() => process.exit(code), 5_000).unref();
  },
  (err: unknown) => {
    console.error('soak: failed to run:', err);
    process.exit(1);
  },
);
