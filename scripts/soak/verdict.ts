// The soak's verdict: least-squares slopes of RSS and arena committed over
// the last half of the churn, the settled committed/live bound, threads and
// errors, each a check with its value, its limit and pass/FAIL.
import type { CloseReport, StoreStats } from '../../host/index.js';
import { DEFAULT_POLICY } from '../../host/memory/policy.js';
import { table } from '../../bench/lib/table.js';
import type { Sample } from './sampler.js';
import type { Counters } from './workload.js';

const MB = 1024 * 1024;

/**
 * Limits (docs/soak.md has the reasoning). A least-squares slope over a
 * window of T minutes moves by about 1.5 * A / T when the series makes one
 * step of A MB in the middle of it, so each slope limit is the larger of a
 * share of the mean per minute (what matters in a long run) and a noise
 * allowance of 1.5 * A / T (what keeps a one-minute run from flaking).
 */
const RSS_SLOPE_SHARE = 0.02; // of mean RSS, per minute
const RSS_NOISE_MB = 16; // V8 heap and allocator swings seen in RSS
const ARENA_SLOPE_SHARE = 0.02; // of mean arena committed, per minute
const ARENA_NOISE_MB = 8; // compaction saw-tooth plus a short-lived dataset or two
const SLOPE_MIN_SAMPLES = 10;

export interface Check {
  name: string;
  value: string;
  limit: string;
  result: 'pass' | 'FAIL' | 'info';
}

export const fmt = (n: number, digits = 1): string => n.toFixed(digits);
const mb = (b: number): string => `${fmt(b / MB)} MB`;

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): { slope: number; intercept: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  const s = sxx === 0 ? 0 : sxy / sxx;
  return { slope: s, intercept: my - s * mx };
}

export interface SlopeResult {
  mbPerMin: number;
  limit: number;
  meanMb: number;
  fit: { slope: number; intercept: number }; // MB over seconds
  window: [number, number]; // seconds
  n: number;
}

function slopeCheck(rows: Sample[], pick: (s: Sample) => number, share: number, noiseMb: number): SlopeResult {
  const churn = rows.filter((r) => r.phase === 'churn');
  const end = churn.length > 0 ? churn[churn.length - 1]!.t : 0;
  const start = end / 2;
  const win = churn.filter((r) => r.t >= start);
  const xs = win.map((r) => r.t);
  const ys = win.map((r) => pick(r) / MB);
  const fit = win.length >= 2 ? slope(xs, ys) : { slope: 0, intercept: 0 };
  const meanMb = ys.length > 0 ? ys.reduce((a, b) => a + b, 0) / ys.length : 0;
  const minutes = Math.max((end - start) / 60, 1e-9);
  return { mbPerMin: fit.slope * 60, limit: Math.max(share * meanMb, (1.5 * noiseMb) / minutes), meanMb, fit, window: [start, end], n: win.length };
}

/** What the run measured besides the per-second rows. */
export interface RunFacts {
  threads: number;
  rows: Sample[];
  /** store.stats() once background compaction settled after the churn. */
  settled: StoreStats;
  /** store.stats() after every dataset was dropped. */
  afterDrop: StoreStats;
  closeReport: CloseReport;
  counters: Counters;
  missedSamples: number;
  rssBeforeOpen: number;
  rssAtOpen: number;
  rssAfterClose: number;
}

export interface Verdict {
  checks: Check[];
  pass: boolean;
  rssSlope: SlopeResult;
  arenaSlope: SlopeResult;
  peak: Sample;
  /** Settled committed / live (NaN with nothing live). */
  settledRatio: number;
}

export function verdict(f: RunFacts): Verdict {
  const { rows, counters, threads } = f;
  const open = rows.filter((r) => r.phase !== 'closed');
  const churn = open.filter((r) => r.phase === 'churn');
  const rssSlope = slopeCheck(rows, (r) => r.rss, RSS_SLOPE_SHARE, RSS_NOISE_MB);
  const arenaSlope = slopeCheck(rows, (r) => r.committed, ARENA_SLOPE_SHARE, ARENA_NOISE_MB);
  const peak = open.reduce((a, r) => (r.rss > a.rss ? r : a), open[0]!);
  const threadCounts = open.map((r) => r.threads);
  const maxThreads = Math.max(...threadCounts);
  const minThreads = Math.min(...threadCounts);
  const firstThreads = threadCounts[0]!;
  const lastThreads = f.afterDrop.threads;
  const enough = rssSlope.n >= SLOPE_MIN_SAMPLES;
  const lastChurn = churn[churn.length - 1];

  const finalCommitted = f.settled.datasets.reduce((a, d) => a + d.committedBytes, 0);
  const finalLive = f.settled.datasets.reduce((a, d) => a + d.liveBytes, 0);
  const shardStats = f.settled.datasets.flatMap((d) => d.shardStats);
  // the compaction policy's own bound: a shard is left alone while committed <= ratio * (live + fixed)
  // or it has less than minReclaimableBytes to give back
  const ratioLimit = shardStats.reduce((a, s) => a + DEFAULT_POLICY.fragmentationRatio * (s.liveBytes + s.fixedOverheadBytes) + DEFAULT_POLICY.minReclaimableBytes, 0);
  const perShardOverhead = shardStats.length === 0 ? 0 : (ratioLimit - DEFAULT_POLICY.fragmentationRatio * finalLive) / shardStats.length;

  const info = (name: string, value: string): Check => ({ name, value, limit: '', result: 'info' });
  const checks: Check[] = [
    {
      name: 'RSS slope, last half',
      value: `${fmt(rssSlope.mbPerMin, 2)} MB/min`,
      limit: `< ${fmt(rssSlope.limit, 2)} MB/min`,
      result: enough && rssSlope.mbPerMin < rssSlope.limit ? 'pass' : 'FAIL',
    },
    {
      name: 'arena committed slope, last half',
      value: `${fmt(arenaSlope.mbPerMin, 2)} MB/min`,
      limit: `< ${fmt(arenaSlope.limit, 2)} MB/min`,
      result: enough && arenaSlope.mbPerMin < arenaSlope.limit ? 'pass' : 'FAIL',
    },
    {
      name: 'arena committed / live, settled',
      value: `${fmt(finalCommitted / MB)} / ${fmt(finalLive / MB)} MB = ${finalLive > 0 ? fmt(finalCommitted / finalLive, 2) : '-'}x`,
      limit: `<= ${mb(ratioLimit)} (${DEFAULT_POLICY.fragmentationRatio}x live + ${shardStats.length} x ${fmt(perShardOverhead / MB, 2)} MB)`,
      result: finalLive > 0 && finalCommitted <= ratioLimit ? 'pass' : 'FAIL',
    },
    {
      name: 'worker threads',
      value: minThreads === maxThreads ? `${minThreads} (start ${firstThreads}, end ${lastThreads})` : `${minThreads}..${maxThreads} (start ${firstThreads}, end ${lastThreads})`,
      limit: `${threads} throughout`,
      result: firstThreads === threads && lastThreads === threads && maxThreads <= threads && minThreads === threads ? 'pass' : 'FAIL',
    },
    { name: 'errors in churn', value: `${counters.errors}`, limit: '0', result: counters.errors === 0 ? 'pass' : 'FAIL' },
    info('samples in the slope window', `${rssSlope.n} (${fmt(rssSlope.window[0], 0)}-${fmt(rssSlope.window[1], 0)} s)`),
    info('mean RSS / arena, slope window', `${fmt(rssSlope.meanMb)} / ${fmt(arenaSlope.meanMb)} MB`),
    info('peak RSS', `${mb(peak.rss)} at ${fmt(peak.t, 0)} s`),
    info('committed / live, end of churn', lastChurn === undefined || lastChurn.live === 0 ? '-'
      : `${fmt(lastChurn.committed / MB)} / ${fmt(lastChurn.live / MB)} MB = ${fmt(lastChurn.committed / lastChurn.live, 2)}x`),
    info('RSS before open / at open', `${mb(f.rssBeforeOpen)} / ${mb(f.rssAtOpen)}`),
    info('RSS at end of churn', lastChurn === undefined ? '-' : mb(lastChurn.rss)),
    info('RSS after drop', mb(f.afterDrop.rssBytes)),
    info('RSS after close', `${mb(f.rssAfterClose)} (${f.rssAfterClose >= f.rssAtOpen ? '+' : ''}${fmt((f.rssAfterClose - f.rssAtOpen) / MB)} MB vs open)`),
    info('compactions', `${counters.compactions} ok (${mb(counters.reclaimed)} back), ${counters.compactionErrors} failed`),
  ];
  if (f.missedSamples > 0) checks.push(info('samples missed', `${f.missedSamples}`));
  if (f.closeReport.forced) checks.push(info('close', 'forced: work still running at the timeout'));
  return {
    checks,
    pass: checks.every((c) => c.result !== 'FAIL'),
    rssSlope,
    arenaSlope,
    peak,
    settledRatio: finalLive > 0 ? finalCommitted / finalLive : NaN,
  };
}

export function checksTable(checks: Check[]): string {
  return table(['check', 'value', 'limit', 'result'], checks.map((c) => [c.name, c.value, c.limit, c.result]), 'left');
}
