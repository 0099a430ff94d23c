/**
 * soak — does memory come back to the OS under sustained churn?
 *
 *   npm run soak -- [--minutes 20] [--out soak-results] [--threads 2] [--seed 1]
 *
 * One Store (background compaction every COMPACTION_INTERVAL_MS) takes, all
 * at once and until the deadline: inserts of new ids and deletes of the
 * oldest ids on two long-lived datasets (their live size held steady),
 * searches on both, and create/fill/search/drop cycles of short-lived
 * datasets. Every second it samples RSS, V8 heap, arena committed and live
 * bytes, worker threads, live vectors and compactions into
 * OUT/memory-soak.csv, and draws OUT/memory-soak.svg. At the end it stops
 * the churn, lets background compaction settle, drops everything, closes the
 * store and prints a verdict: exit 0 if every check passes, 1 if not.
 * docs/soak.md says how to read the chart and why the limits are what they are.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Store, collectGarbage, type StoreStats } from '../host/index.js';
import { DEFAULT_POLICY } from '../host/memory/policy.js';

const MB = 1024 * 1024;

/** Background compaction looks for work this often (the default is 30 s). */
const COMPACTION_INTERVAL_MS = 2_000;
const SAMPLE_MS = 1_000;

/**
 * The long-lived datasets: filled at full speed, then churned at a steady
 * rate. soak-a's vectors carry JSON payloads of varied sizes (stored in the
 * arena, freed on delete, rewritten by upserts).
 */
const LONG_LIVED = [
  { name: 'soak-a', dim: 64, size: 30_000, efConstruction: 48, payloads: true },
  { name: 'soak-b', dim: 128, size: 20_000, efConstruction: 48, payloads: false },
] as const;
/** Payload text length: uniform in 0..PAYLOAD_MAX_CHARS, so blobs land in several size classes. */
const PAYLOAD_MAX_CHARS = 300;
const M = 16;
const FILL_BATCH = 1_000;
/** Churn: a batch of new ids in and as many of the oldest out, CHURN_PER_SECOND vectors a second per dataset. */
const CHURN_BATCH = 250;
const CHURN_PER_SECOND = 1_000;
/** Every UPSERT_EVERY-th churn batch also rewrites UPSERT_COUNT live ids with new vectors. */
const UPSERT_EVERY = 4;
const UPSERT_COUNT = 50;
/** Searches: per long-lived dataset, one batch of SEARCH_BATCH queries plus SEARCH_SINGLES single ones every SEARCH_EVERY_MS. */
const SEARCH_BATCH = 8;
const SEARCH_SINGLES = 4;
const SEARCH_EVERY_MS = 50;
const K = 10;
/** Short-lived datasets: one every EPHEMERAL_EVERY_MS, EPHEMERAL_SIZE vectors, a quarter deleted before the drop. */
const EPHEMERAL_EVERY_MS = 2_000;
const EPHEMERAL_SIZE = 4_000;
const EPHEMERAL_DIMS = [32, 96, 128] as const;
const EPHEMERAL_EF_CONSTRUCTION = 32;

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
/** After churn stops: background compaction alone gets this long to catch up. */
const SETTLE_MIN_MS = 2.5 * COMPACTION_INTERVAL_MS;
const SETTLE_QUIET_MS = 1.5 * COMPACTION_INTERVAL_MS;
const SETTLE_MAX_MS = 30_000;
/** A dropped WebAssembly.Memory is unmapped a little after the GC that finds it. */
const UNMAP_WAIT_MS = 1_000;

type Phase = 'churn' | 'settle' | 'drop' | 'closed';

interface Sample {
  t: number; // seconds since the store opened
  phase: Phase;
  rss: number;
  heapUsed: number;
  committed: number;
  live: number;
  threads: number;
  osThreads: number;
  datasets: number;
  liveVectors: number;
  deletedVectors: number;
  compactions: number;
  inserted: number;
  deleted: number;
  searches: number;
  errors: number;
}

interface Check {
  name: string;
  value: string;
  limit: string;
  result: 'pass' | 'FAIL' | 'info';
}

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

// ---------------------------------------------------------------- data

/** mulberry32: a small seeded PRNG, so a run's data can be had again. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Clustered vectors: one of 32 centres plus noise. */
class VectorSource {
  readonly #rand: () => number;
  readonly #centres: Float32Array[];
  constructor(readonly dim: number, seed: number) {
    this.#rand = prng(seed);
    this.#centres = Array.from({ length: 32 }, () => Float32Array.from({ length: dim }, () => this.#rand() * 2 - 1));
  }
  next(n: number): Float32Array {
    const out = new Float32Array(n * this.dim);
    for (let i = 0; i < n; i++) {
      const c = this.#centres[Math.floor(this.#rand() * this.#centres.length)]!;
      for (let j = 0; j < this.dim; j++) out[i * this.dim + j] = c[j]! + (this.#rand() - 0.5) * 0.5;
    }
    return out;
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function payloadsFor(ids: readonly number[], rand: () => number): { id: number; note: string }[] {
  return ids.map((id) => ({ id, note: 'x'.repeat(Math.floor(rand() * (PAYLOAD_MAX_CHARS + 1))) }));
}

// ---------------------------------------------------------------- churn

const counters = { inserted: 0, deleted: 0, searches: 0, errors: 0, compactions: 0, compactionErrors: 0, reclaimed: 0, tuner: 0, created: 0, dropped: 0 };
const errorMessages: string[] = [];
let churning = true;
let deadline = 0;

function noteError(where: string, err: unknown): void {
  counters.errors++;
  if (errorMessages.length < 10) errorMessages.push(`${where}: ${(err as Error)?.message ?? String(err)}`);
}

/** Sleeps until `ms` after `since`, or until the churn stops. */
async function pace(since: number, ms: number): Promise<void> {
  const left = Math.min(since + ms, deadline) - performance.now();
  if (left > 0 && churning) await sleep(left);
}

async function writer(store: Store, spec: (typeof LONG_LIVED)[number], src: VectorSource, rand: () => number): Promise<void> {
  let lo = 0; // live ids are lo..hi-1
  let hi = 0;
  let batch = 0;
  const put = async (ids: number[]): Promise<number> => {
    const options = spec.payloads ? { payloads: payloadsFor(ids, rand) } : {};
    return (await store.insert(spec.name, ids, src.next(ids.length), options)).inserted;
  };
  while (churning) {
    const started = performance.now();
    try {
      if (hi - lo < spec.size) {
        // fill at full speed: churn (searches, short-lived datasets) runs alongside from the first second
        const n = Math.min(FILL_BATCH, spec.size - (hi - lo));
        counters.inserted += await put(range(hi, hi + n));
        hi += n;
        continue;
      }
      counters.inserted += await put(range(hi, hi + CHURN_BATCH));
      hi += CHURN_BATCH;
      counters.deleted += (await store.delete(spec.name, range(lo, lo + CHURN_BATCH))).deleted;
      lo += CHURN_BATCH;
      if (++batch % UPSERT_EVERY === 0) {
        const ids = new Set<number>();
        while (ids.size < UPSERT_COUNT) ids.add(lo + Math.floor(rand() * (hi - lo)));
        await put([...ids]);
      }
    } catch (err) {
      noteError(`${spec.name} write`, err);
    }
    await pace(started, (CHURN_BATCH / CHURN_PER_SECOND) * 1000);
  }
}

async function searcher(store: Store, spec: (typeof LONG_LIVED)[number], src: VectorSource): Promise<void> {
  while (churning) {
    const started = performance.now();
    try {
      const singles = Array.from({ length: SEARCH_SINGLES }, () => store.search(spec.name, src.next(1), K));
      await Promise.all([store.search(spec.name, src.next(SEARCH_BATCH), K, { withPayload: spec.payloads }), ...singles]);
      counters.searches += SEARCH_BATCH + SEARCH_SINGLES;
    } catch (err) {
      noteError(`${spec.name} search`, err);
    }
    await pace(started, SEARCH_EVERY_MS);
  }
}

async function ephemeral(store: Store, seed: number): Promise<void> {
  const rand = prng(seed);
  let n = 0;
  while (churning) {
    const started = performance.now();
    const name = `soak-tmp-${++n}`;
    const dim = EPHEMERAL_DIMS[n % EPHEMERAL_DIMS.length]!;
    const src = new VectorSource(dim, Math.floor(rand() * 2 ** 31));
    let created = false;
    try {
      await store.createDataset(name, { dim, M, efConstruction: EPHEMERAL_EF_CONSTRUCTION, shards: THREADS });
      created = true;
      counters.created++;
      const half = EPHEMERAL_SIZE / 2;
      // odd-numbered ones carry payloads in their first half
      const payloads = n % 2 === 1 ? { payloads: payloadsFor(range(0, half), rand) } : {};
      counters.inserted += (await store.insert(name, range(0, half), src.next(half), payloads)).inserted;
      counters.inserted += (await store.insert(name, range(half, EPHEMERAL_SIZE), src.next(half))).inserted;
      await store.search(name, src.next(SEARCH_BATCH), K);
      counters.searches += SEARCH_BATCH;
      counters.deleted += (await store.delete(name, range(0, EPHEMERAL_SIZE / 4))).deleted;
    } catch (err) {
      noteError(`${name}`, err);
    }
    if (created) {
      try {
        await store.dropDataset(name);
        counters.dropped++;
      } catch (err) {
        noteError(`${name} drop`, err);
      }
    }
    await pace(started, EPHEMERAL_EVERY_MS);
  }
}

// ---------------------------------------------------------------- sampling

/** Threads of the whole process (Linux): informative, workers plus V8's and libuv's own. */
function osThreads(): number {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m === null ? -1 : Number(m[1]);
  } catch {
    return -1;
  }
}

/** store.stats(), retried: a short-lived dataset dropped while its shards are asked about fails that one call. */
async function stats(store: Store): Promise<StoreStats | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await store.stats();
    } catch {
      await sleep(20);
    }
  }
  return undefined;
}

let missedSamples = 0;

function toSample(st: StoreStats, t: number, phase: Phase): Sample {
  return {
    t, phase,
    rss: st.rssBytes,
    heapUsed: st.heapUsedBytes,
    committed: st.datasets.reduce((a, d) => a + d.committedBytes, 0),
    live: st.datasets.reduce((a, d) => a + d.liveBytes, 0),
    threads: st.threads,
    osThreads: osThreads(),
    datasets: st.datasets.length,
    liveVectors: st.datasets.reduce((a, d) => a + d.count, 0),
    deletedVectors: st.datasets.reduce((a, d) => a + d.deleted, 0),
    compactions: counters.compactions,
    inserted: counters.inserted,
    deleted: counters.deleted,
    searches: counters.searches,
    errors: counters.errors,
  };
}

/** Samples once a second (a late sample is stamped with when it was taken; missed ticks are skipped). */
function startSampler(store: Store, t0: number, phase: () => Phase, rows: Sample[]): { stop: () => Promise<void> } {
  let running = true;
  let wake: (() => void) | undefined;
  const done = (async () => {
    let tick = 0;
    while (running) {
      const st = await stats(store);
      if (st === undefined) missedSamples++;
      else rows.push(toSample(st, (performance.now() - t0) / 1000, phase()));
      tick = Math.max(tick + 1, Math.ceil((performance.now() - t0) / SAMPLE_MS));
      const wait = t0 + tick * SAMPLE_MS - performance.now();
      if (running && wait > 0) {
        await new Promise<void>((r) => {
          const timer = setTimeout(r, wait);
          wake = () => {
            clearTimeout(timer);
            r();
          };
        });
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      wake?.();
      await done;
    },
  };
}

// ---------------------------------------------------------------- analysis

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

interface SlopeResult {
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

// ---------------------------------------------------------------- chart

function niceStep(span: number, ticks: number): number {
  const raw = span / Math.max(1, ticks);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

/** A white outline behind text that sits over the lines. */
const HALO = 'paint-order="stroke" stroke="#ffffff" stroke-width="3" stroke-linejoin="round"';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}

interface ChartInfo {
  title: string;
  subtitle: string[];
  pass: boolean;
  threads: number;
  rssSlope: SlopeResult;
  churnEnd: number;
  dropAt: number | undefined;
}

/**
 * The chart: memory in MB over time (RSS, arena committed and live, V8 heap)
 * with the slope window shaded and the fitted RSS line drawn over it; under
 * it a strip with the worker threads and the live vectors.
 */
function chart(rows: Sample[], info: ChartInfo): string {
  const W = 1000;
  const H = 612;
  const L = 70;
  const R = 70;
  const T = 104; // main panel
  const ph = 350;
  const T2 = T + ph + 28; // threads and vectors strip
  const ph2 = 70;
  const pw = W - L - R;
  const open = rows.filter((r) => r.phase !== 'closed');
  const tMax = Math.max(1, ...rows.map((r) => r.t));
  const yTop = Math.max(1, ...rows.map((r) => Math.max(r.rss, r.committed, r.heapUsed) / MB)) * 1.05;
  const inMinutes = tMax > 180;
  const xStep = niceStep(inMinutes ? tMax / 60 : tMax, 10) * (inMinutes ? 60 : 1);
  const yStep = niceStep(yTop, 8);
  const yMax = Math.ceil(yTop / yStep) * yStep;
  const x = (t: number): number => L + (t / tMax) * pw;
  const y = (mb: number): number => T + ph - (mb / yMax) * ph;
  const path = (data: Sample[], pick: (s: Sample) => number, yy: (v: number) => number, step = false): string =>
    data.map((r, i) => {
      const px = fmt(x(r.t));
      const py = fmt(yy(pick(r)));
      if (i === 0) return `M${px},${py}`;
      return step ? `H${px} V${py}` : `L${px},${py}`;
    }).join(' ');
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${L}" y="26" font-size="17" font-weight="bold" fill="#222">${esc(info.title)}</text>`);
  info.subtitle.forEach((line, i) => out.push(`<text x="${L}" y="${46 + i * 16}" fill="#555">${esc(line)}</text>`));
  out.push(`<rect x="${W - R - 70}" y="10" width="70" height="26" rx="4" fill="${info.pass ? '#1a7f37' : '#cf222e'}"/>`);
  out.push(`<text x="${W - R - 35}" y="28" text-anchor="middle" font-size="14" font-weight="bold" fill="#fff">${info.pass ? 'PASS' : 'FAIL'}</text>`);

  const series = [
    { label: 'process RSS', color: '#0969da', width: 2.4, dash: '', pick: (s: Sample) => s.rss, data: rows },
    { label: 'arena committed', color: '#d4731a', width: 2, dash: '', pick: (s: Sample) => s.committed, data: open },
    { label: 'arena live', color: '#2da44e', width: 2, dash: '', pick: (s: Sample) => s.live, data: open },
    { label: 'V8 heap used', color: '#9aa5b1', width: 1.2, dash: '4 3', pick: (s: Sample) => s.heapUsed, data: open },
  ];

  // legend: one row above the plot, never over the data
  const legend = [
    ...series.map((s) => ({ label: s.label, color: s.color, dash: s.dash, width: s.width, tick: false })),
    { label: `RSS fit ${fmt(info.rssSlope.mbPerMin, 2)} MB/min`, color: '#cf222e', dash: '6 4', width: 1.6, tick: false },
    { label: 'compaction', color: '#8250df', dash: '', width: 1.5, tick: true },
  ];
  let lx = L;
  const ly = T - 16;
  for (const e of legend) {
    if (e.tick) out.push(`<line x1="${lx + 11}" x2="${lx + 11}" y1="${ly - 9}" y2="${ly + 3}" stroke="${e.color}" stroke-width="${e.width}"/>`);
    else out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${e.color}" stroke-width="${e.width}"${e.dash ? ` stroke-dasharray="${e.dash}"` : ''}/>`);
    out.push(`<text x="${lx + 28}" y="${ly}" fill="#222">${esc(e.label)}</text>`);
    lx += 28 + e.label.length * 6.8 + 18;
  }

  // slope window
  const [w0, w1] = info.rssSlope.window;
  out.push(`<rect x="${fmt(x(w0))}" y="${T}" width="${fmt(Math.max(0, x(w1) - x(w0)))}" height="${ph}" fill="#eef2f8"/>`);
  out.push(`<text x="${fmt((x(w0) + x(w1)) / 2)}" y="${T + 24}" text-anchor="middle" fill="#777" font-size="11" ${HALO}>slope window: last half of the churn</text>`);

  // grid, axes, labels
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${fmt(y(v))}" y2="${fmt(y(v))}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${L - 8}" y="${fmt(y(v) + 4)}" text-anchor="end" fill="#444">${Number(v.toFixed(3))}</text>`);
  }
  for (let v = 0; v <= tMax + 1e-9; v += xStep) {
    out.push(`<line x1="${fmt(x(v))}" x2="${fmt(x(v))}" y1="${T}" y2="${T + ph}" stroke="#f0f0f0"/>`);
    out.push(`<line x1="${fmt(x(v))}" x2="${fmt(x(v))}" y1="${T2}" y2="${T2 + ph2 + 5}" stroke="#e8e8e8"/>`);
    out.push(`<line x1="${fmt(x(v))}" x2="${fmt(x(v))}" y1="${T + ph}" y2="${T + ph + 5}" stroke="#444"/>`);
    out.push(`<line x1="${fmt(x(v))}" x2="${fmt(x(v))}" y1="${T2 + ph2}" y2="${T2 + ph2 + 5}" stroke="#444"/>`);
    const label = inMinutes ? `${Number((v / 60).toFixed(2))}` : `${Number(v.toFixed(1))}`;
    out.push(`<text x="${fmt(x(v))}" y="${T2 + ph2 + 19}" text-anchor="middle" fill="#444">${label}</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 12}" text-anchor="middle" fill="#222">${inMinutes ? 'time since the store opened (min)' : 'time since the store opened (s)'}</text>`);
  out.push(`<text transform="translate(20 ${T + ph / 2}) rotate(-90)" text-anchor="middle" fill="#222">memory (MB)</text>`);

  // compactions: a tick at the top for each second in which one finished
  for (let i = 1; i < open.length; i++) {
    if (open[i]!.compactions > open[i - 1]!.compactions) {
      out.push(`<line x1="${fmt(x(open[i]!.t))}" x2="${fmt(x(open[i]!.t))}" y1="${T}" y2="${T + 8}" stroke="#8250df" stroke-width="1.5"/>`);
    }
  }

  for (const s of series.slice().reverse()) {
    if (s.data.length === 0) continue;
    out.push(`<path d="${path(s.data, s.pick, (v) => y(v / MB))}" fill="none" stroke="${s.color}" stroke-width="${s.width}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} stroke-linejoin="round"/>`);
  }
  const closed = rows.find((r) => r.phase === 'closed');
  if (closed !== undefined) {
    out.push(`<circle cx="${fmt(x(closed.t))}" cy="${fmt(y(closed.rss / MB))}" r="4" fill="#0969da"/>`);
    out.push(`<text x="${fmt(x(closed.t) + 8)}" y="${fmt(y(closed.rss / MB) + 4)}" fill="#0969da" font-size="11">closed</text>`);
    out.push(`<text x="${fmt(x(closed.t) + 8)}" y="${fmt(y(closed.rss / MB) + 17)}" fill="#0969da" font-size="11">${fmt(closed.rss / MB, 0)} MB</text>`);
  }
  const f = info.rssSlope.fit;
  out.push(`<line x1="${fmt(x(w0))}" y1="${fmt(y(f.intercept + f.slope * w0))}" x2="${fmt(x(w1))}" y2="${fmt(y(f.intercept + f.slope * w1))}" stroke="#cf222e" stroke-width="1.8" stroke-dasharray="6 4"/>`);

  // the strip: worker threads (left axis) and live vectors (right axis)
  const thrMax = Math.max(info.threads, ...open.map((r) => r.threads)) + 1;
  const vecTop = Math.max(1, ...open.map((r) => r.liveVectors));
  const vStep = niceStep(vecTop, 2);
  const vMax = Math.ceil(vecTop / vStep) * vStep;
  const yt = (n: number): number => T2 + ph2 - (n / thrMax) * ph2;
  const yv = (n: number): number => T2 + ph2 - (n / vMax) * ph2;
  out.push(`<rect x="${L}" y="${T2}" width="${pw}" height="${ph2}" fill="none" stroke="#444"/>`);
  const thrStep = Math.max(1, Math.ceil(thrMax / 4));
  for (let v = 0; v <= thrMax; v += thrStep) out.push(`<text x="${L - 8}" y="${fmt(yt(v) + 4)}" text-anchor="end" fill="#8250df">${v}</text>`);
  for (let v = 0; v <= vMax + 1e-9; v += vStep) out.push(`<text x="${L + pw + 8}" y="${fmt(yv(v) + 4)}" fill="#2b7a78">${v >= 1000 ? `${Number((v / 1000).toFixed(1))}k` : v}</text>`);
  out.push(`<line x1="${L}" x2="${L + pw}" y1="${fmt(yt(info.threads))}" y2="${fmt(yt(info.threads))}" stroke="#d8cdf5" stroke-dasharray="2 3"/>`);
  if (open.length > 0) {
    out.push(`<path d="${path(open, (s) => s.liveVectors, yv)}" fill="none" stroke="#2b7a78" stroke-width="1.4"/>`);
    out.push(`<path d="${path(open, (s) => s.threads, yt, true)}" fill="none" stroke="#8250df" stroke-width="2.2"/>`);
  }
  out.push(`<text x="${L + 6}" y="${T2 - 6}" fill="#8250df">worker threads (left, configured ${info.threads})</text>`);
  out.push(`<text x="${L + pw - 6}" y="${T2 - 6}" text-anchor="end" fill="#2b7a78">live vectors (right)</text>`);

  // phase markers across both panels, labels left of the line on their own rows
  const marker = (t: number, label: string, row: number): void => {
    out.push(`<line x1="${fmt(x(t))}" x2="${fmt(x(t))}" y1="${T}" y2="${T2 + ph2}" stroke="#777" stroke-dasharray="3 3"/>`);
    out.push(`<text x="${fmt(x(t) - 4)}" y="${T + ph - 8 - row * 14}" text-anchor="end" fill="#555" font-size="11" ${HALO}>${esc(label)}</text>`);
  };
  marker(info.churnEnd, 'churn stops', 1);
  if (info.dropAt !== undefined) marker(info.dropAt, 'drop all', 0);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- output

function csv(rows: Sample[]): string {
  const head = 'elapsed_s,phase,rss_bytes,heap_used_bytes,arena_committed_bytes,arena_live_bytes,worker_threads,os_threads,datasets,live_vectors,deleted_vectors,compactions,inserted,deleted,searches,errors';
  const lines = rows.map((r) => [
    r.t.toFixed(3), r.phase, r.rss, r.heapUsed, r.committed, r.live, r.threads, r.osThreads, r.datasets,
    r.liveVectors, r.deletedVectors, r.compactions, r.inserted, r.deleted, r.searches, r.errors,
  ].join(','));
  return [head, ...lines].join('\n') + '\n';
}

function table(checks: Check[]): string {
  const head = ['check', 'value', 'limit', 'result'];
  const cells = checks.map((c) => [c.name, c.value, c.limit, c.result]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const rssBeforeOpen = process.memoryUsage.rss();
  const store = await Store.open({ threads: THREADS, compaction: { intervalMs: COMPACTION_INTERVAL_MS } });
  store.on('compaction', (e: { result: string; reclaimedBytes: number }) => {
    if (e.result === 'ok') {
      counters.compactions++;
      counters.reclaimed += e.reclaimedBytes;
    } else if (e.result === 'error') {
      counters.compactionErrors++;
    }
  });
  store.on('tuner', () => counters.tuner++);
  store.on('error', (err: unknown) => noteError('store', err));
  let lastCompaction = performance.now();
  store.on('compaction', () => {
    lastCompaction = performance.now();
  });

  const t0 = performance.now();
  deadline = t0 + MINUTES * 60_000;
  process.once('SIGINT', () => {
    console.log('soak: interrupted, finishing up');
    deadline = performance.now();
  });
  let phase: Phase = 'churn';
  const rows: Sample[] = [];
  const sampler = startSampler(store, t0, () => phase, rows);
  const rssAtOpen = process.memoryUsage.rss();

  console.log(`soak: ${MINUTES} min, ${THREADS} threads, compaction every ${COMPACTION_INTERVAL_MS} ms, seed ${SEED}; writing to ${OUT}`);
  const rand = prng(SEED);
  const loops: Promise<void>[] = [];
  for (const [i, spec] of LONG_LIVED.entries()) {
    await store.createDataset(spec.name, { dim: spec.dim, M, efConstruction: spec.efConstruction, shards: THREADS });
    const src = new VectorSource(spec.dim, SEED * 1000 + i);
    loops.push(writer(store, spec, src, prng(SEED * 1000 + 100 + i)));
    loops.push(searcher(store, spec, new VectorSource(spec.dim, SEED * 1000 + 500 + i)));
  }
  loops.push(ephemeral(store, Math.floor(rand() * 2 ** 31)));

  // progress, once a minute (or at half time in a short run)
  const every = Math.min(60_000, (MINUTES * 60_000) / 2);
  const progress = setInterval(() => {
    const r = rows[rows.length - 1];
    if (r === undefined) return;
    console.log(`  ${fmt(r.t, 0)} s: RSS ${fmt(r.rss / MB)} MB, arena ${fmt(r.committed / MB)}/${fmt(r.live / MB)} MB committed/live, ${r.liveVectors} vectors, ${r.compactions} compactions, ${r.errors} errors`);
  }, every);
  while (performance.now() < deadline) await sleep(Math.min(250, Math.max(1, deadline - performance.now())));
  churning = false;
  await Promise.all(loops);
  clearInterval(progress);
  const churnEnd = (performance.now() - t0) / 1000;

  // background compaction alone catches up: no manual compact or releaseMemory
  phase = 'settle';
  const settleStart = performance.now();
  while (true) {
    const now = performance.now();
    if (now - settleStart >= SETTLE_MAX_MS) break;
    if (now - settleStart >= SETTLE_MIN_MS && now - lastCompaction >= SETTLE_QUIET_MS) break;
    await sleep(100);
  }
  const final = await store.stats();
  const finalCommitted = final.datasets.reduce((a, d) => a + d.committedBytes, 0);
  const finalLive = final.datasets.reduce((a, d) => a + d.liveBytes, 0);
  const shardStats = final.datasets.flatMap((d) => d.shardStats);
  // the compaction policy's own bound: a shard is left alone while committed <= ratio * (live + fixed)
  // or it has less than minReclaimableBytes to give back
  const ratioLimit = shardStats.reduce((a, s) => a + DEFAULT_POLICY.fragmentationRatio * (s.liveBytes + s.fixedOverheadBytes) + DEFAULT_POLICY.minReclaimableBytes, 0);
  const perShardOverhead = shardStats.length === 0 ? 0 : (ratioLimit - DEFAULT_POLICY.fragmentationRatio * finalLive) / shardStats.length;

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

  // ------------------------------------------------------------ verdict
  const open = rows.filter((r) => r.phase !== 'closed');
  const churn = open.filter((r) => r.phase === 'churn');
  const rssSlope = slopeCheck(rows, (r) => r.rss, RSS_SLOPE_SHARE, RSS_NOISE_MB);
  const arenaSlope = slopeCheck(rows, (r) => r.committed, ARENA_SLOPE_SHARE, ARENA_NOISE_MB);
  const peak = open.reduce((a, r) => (r.rss > a.rss ? r : a), open[0]!);
  const threadCounts = open.map((r) => r.threads);
  const maxThreads = Math.max(...threadCounts);
  const minThreads = Math.min(...threadCounts);
  const firstThreads = threadCounts[0]!;
  const lastThreads = afterDrop.threads;
  const enough = rssSlope.n >= SLOPE_MIN_SAMPLES;
  const mb = (b: number): string => `${fmt(b / MB)} MB`;
  const lastChurn = churn[churn.length - 1];

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
      limit: `${THREADS} throughout`,
      result: firstThreads === THREADS && lastThreads === THREADS && maxThreads <= THREADS && minThreads === THREADS ? 'pass' : 'FAIL',
    },
    { name: 'errors in churn', value: `${counters.errors}`, limit: '0', result: counters.errors === 0 ? 'pass' : 'FAIL' },
    info('samples in the slope window', `${rssSlope.n} (${fmt(rssSlope.window[0], 0)}-${fmt(rssSlope.window[1], 0)} s)`),
    info('mean RSS / arena, slope window', `${fmt(rssSlope.meanMb)} / ${fmt(arenaSlope.meanMb)} MB`),
    info('peak RSS', `${mb(peak.rss)} at ${fmt(peak.t, 0)} s`),
    info('committed / live, end of churn', lastChurn === undefined || lastChurn.live === 0 ? '-'
      : `${fmt(lastChurn.committed / MB)} / ${fmt(lastChurn.live / MB)} MB = ${fmt(lastChurn.committed / lastChurn.live, 2)}x`),
    info('RSS before open / at open', `${mb(rssBeforeOpen)} / ${mb(rssAtOpen)}`),
    info('RSS at end of churn', lastChurn === undefined ? '-' : mb(lastChurn.rss)),
    info('RSS after drop', mb(afterDrop.rssBytes)),
    info('RSS after close', `${mb(rssAfterClose)} (${rssAfterClose >= rssAtOpen ? '+' : ''}${fmt((rssAfterClose - rssAtOpen) / MB)} MB vs open)`),
    info('compactions', `${counters.compactions} ok (${mb(counters.reclaimed)} back), ${counters.compactionErrors} failed`),
  ];
  if (missedSamples > 0) checks.push(info('samples missed', `${missedSamples}`));
  if (closeReport.forced) checks.push(info('close', 'forced: work still running at the timeout'));
  const pass = checks.every((c) => c.result !== 'FAIL');

  mkdirSync(OUT, { recursive: true });
  const csvPath = join(OUT, 'memory-soak.csv');
  const svgPath = join(OUT, 'memory-soak.svg');
  writeFileSync(csvPath, csv(rows));
  writeFileSync(svgPath, chart(rows, {
    title: `quiver memory soak: ${MINUTES} min, ${THREADS} threads, compaction every ${COMPACTION_INTERVAL_MS / 1000} s, seed ${SEED}`,
    subtitle: [
      `${LONG_LIVED.map((d) => `${d.name} ${d.size / 1000}k x ${d.dim}${d.payloads ? ' + payloads' : ''}`).join(', ')}, M ${M}, efC ${LONG_LIVED[0].efConstruction}, `
        + `each replacing ${CHURN_PER_SECOND} vectors/s; a ${EPHEMERAL_SIZE / 1000}k dataset created and dropped every ${EPHEMERAL_EVERY_MS / 1000} s`,
      `peak RSS ${fmt(peak.rss / MB, 0)} MB; RSS slope ${fmt(rssSlope.mbPerMin, 2)} MB/min (limit ${fmt(rssSlope.limit, 1)}); arena slope ${fmt(arenaSlope.mbPerMin, 2)} MB/min (limit ${fmt(arenaSlope.limit, 1)}); `
        + `${counters.compactions} compactions; settled committed/live ${finalLive > 0 ? fmt(finalCommitted / finalLive, 2) : '-'}x`,
    ],
    pass, threads: THREADS, rssSlope, churnEnd, dropAt,
  }));

  console.log(`\n${table(checks)}\n`);
  console.log(`work: ${counters.inserted} inserted, ${counters.deleted} deleted, ${counters.searches} queries, `
    + `${counters.created} short-lived datasets created and dropped, ${counters.tuner} tuner decisions\n`);
  if (errorMessages.length > 0) console.log(`errors (first ${errorMessages.length}):\n  ${errorMessages.join('\n  ')}\n`);
  console.log(`verdict: ${pass ? 'PASS' : 'FAIL'}`);
  console.log(`csv: ${csvPath}`);
  console.log(`svg: ${svgPath}`);
  return pass ? 0 : 1;
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
