// The one RSS `settle`: a GC, a pause, a reading, again, until the readings
// say what the caller waits for or a deadline passes. V8 gives a dropped
// WebAssembly.Memory back to the OS only after a GC finds it, and then
// asynchronously (~0.2 s later); heap pages go back a few seconds after a
// quiet period. One reading is never enough.

const MiB = 1024 * 1024;

/** When to stop polling. */
export type Until =
  /** at the first reading that passes (the caller's bound, e.g. "within 10% of the baseline") */
  | { rss: (rss: number) => boolean }
  /** when two readings `windowMs` apart differ by less than `bytes`, but not before `minMs` */
  | { stable: { bytes: number; windowMs: number; minMs: number } }
  /** at the lowest reading once no reading has beaten it by `bytes` for `quietMs` */
  | { floor: { bytes: number; quietMs: number } };

export interface SettleOptions {
  /** A GC in every thread that may hold the memory (a Store's workers too). */
  gc: () => void | Promise<void>;
  until?: Until;
  /** Pause between a GC and its reading. */
  pollMs?: number;
  /** Run the GC only this often (a reading at every poll), to time a release finely. */
  gcEveryMs?: number;
  /** Give up after this long and return what there is. */
  deadlineMs?: number;
}

export interface Settled {
  /** The last reading (the lowest, for `floor`). */
  rss: number;
  /** process.memoryUsage() at the end, to tell the JS heap from the rest. */
  usage: NodeJS.MemoryUsage;
  /** From the call until RSS first came within 0.5 MiB of `rss`. */
  reachedMs: number;
  tookMs: number;
}

export const STABLE = { bytes: 0.5 * MiB, windowMs: 100, minMs: 300 } as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function settle(options: SettleOptions): Promise<Settled> {
  const { gc, until = { stable: STABLE }, pollMs = 100, gcEveryMs = 0, deadlineMs = 3000 } = options;
  const t0 = performance.now();
  const samples: { t: number; rss: number }[] = [];
  let lastGc = -Infinity;
  let low = { t: 0, rss: Infinity };
  for (;;) {
    if (performance.now() - lastGc >= gcEveryMs) {
      await gc();
      lastGc = performance.now();
    }
    await sleep(pollMs);
    const cur = { t: performance.now() - t0, rss: process.memoryUsage.rss() };
    samples.push(cur);
    if (cur.rss < low.rss - ('floor' in until ? until.floor.bytes : 0)) low = cur;
    if (cur.t >= deadlineMs || done(until, samples, low)) break;
  }
  const rss = 'floor' in until ? Math.min(...samples.map((s) => s.rss)) : samples[samples.length - 1]!.rss;
  const reached = samples.find((s) => Math.abs(s.rss - rss) < 0.5 * MiB) ?? samples[samples.length - 1]!;
  return { rss, usage: process.memoryUsage(), reachedMs: reached.t, tookMs: performance.now() - t0 };
}

function done(until: Until, samples: { t: number; rss: number }[], low: { t: number }): boolean {
  const cur = samples[samples.length - 1]!;
  if ('rss' in until) return until.rss(cur.rss);
  if ('floor' in until) return cur.t - low.t >= until.floor.quietMs;
  const { bytes, windowMs, minMs } = until.stable;
  if (cur.t < minMs) return false;
  for (let i = samples.length - 2; i >= 0; i--) {
    if (samples[i]!.t <= cur.t - windowMs + 1) return Math.abs(cur.rss - samples[i]!.rss) < bytes;
  }
  return false;
}
