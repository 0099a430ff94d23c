// Memory readings for the tests: RSS after a GC (the shared settle), and the
// WebAssembly memories mapped in the process.
import { collectGarbage } from '../../host/index.js';
import { settle } from '../../bench/lib/rss.js';


/**
 * Polls RSS, a GC before each reading, until `ok` passes or `deadlineMs`
 * pass, and returns the last reading. `gc` defaults to this thread's; a
 * test with a Store passes one that also runs store.releaseMemory().
 */
export async function settleRss(ok: (rss: number) => boolean, deadlineMs: number, gc: () => void | Promise<void> = collectGarbage, pollMs = 100): Promise<number> {
  return (await settle({ gc, until: { rss: ok }, deadlineMs, pollMs })).rss;
}

/**
 * The lowest RSS once it has stopped falling (no new low by more than
 * 1 MiB for 3 s, at most 15 s): V8 hands back heap pages a few seconds
 * after a quiet period, so an early reading would be a lenient baseline.
 */
export async function floorRss(gc: () => void | Promise<void>, pollMs = 250): Promise<number> {
  return (await settle({ gc, until: { floor: { bytes: 1024 * 1024, quietMs: 3000 } }, deadlineMs: 15_000, pollMs })).rss;
}

export { wasmMemories } from '../../bench/lib/smaps.js';
