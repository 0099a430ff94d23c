// Memory readings for the tests: RSS after a GC (the shared settle), and the
// WebAssembly memories mapped in the process.
import { readFileSync } from 'node:fs';
import { collectGarbage } from '../../host/index.js';
import { settle } from '../../bench/lib/rss.js';

const GiB = 1024 * 1024 * 1024;

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

/**
 * WebAssembly memories mapped in this process (every thread) and their
 * resident bytes, or undefined without /proc/self/smaps: V8 maps each as a
 * read-write committed prefix directly followed by a reservation of >= 4 GiB
 * (its guard regions). Exact where RSS is not: the mappings themselves.
 */
export function wasmMemories(): { count: number; resident: number } | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return undefined;
  }
  const vmas: { start: number; end: number; perm: string; rss: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) /.exec(line);
    if (m !== null) {
      vmas.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perm: m[3]!, rss: 0 });
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r !== null && vmas.length > 0) vmas[vmas.length - 1]!.rss = Number(r[1]) * 1024;
  }
  let count = 0;
  let resident = 0;
  vmas.forEach((v, i) => {
    if (v.perm !== '---p' || v.end - v.start < 4 * GiB) return;
    const prefix = vmas[i - 1];
    if (prefix === undefined || prefix.perm !== 'rw-p' || prefix.end !== v.start) return;
    count++;
    resident += prefix.rss;
  });
  return { count, resident };
}
