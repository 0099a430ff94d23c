// The one resource snapshot: what a process has running besides its heap.
// After Store.close() the process must have the same threads and handles
// as before Store.open() (docs: Lifecycle); a worker's exit and its port's
// close land a little after close() resolves, so comparisons poll.
import { readdirSync } from 'node:fs';

export interface Snapshot {
  /** OS threads of the process: the main thread, libuv, V8 and every worker (Linux; -1 elsewhere). */
  threads: number;
  /** Active handles and requests by type, sorted by type (workers show up as their MessagePorts). */
  resources: Record<string, number>;
}

export function osThreads(): number {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return -1;
  }
}

export function activeResources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export const snapshot = (): Snapshot => ({ threads: osThreads(), resources: activeResources() });

export function sameSnapshot(a: Snapshot, b: Snapshot): boolean {
  return a.threads === b.threads && JSON.stringify(a.resources) === JSON.stringify(b.resources);
}

/** Polls until the process is back to `base` or `ms` pass; returns the last snapshot. */
export async function waitForSnapshot(base: Snapshot, ms = 5000): Promise<Snapshot> {
  const end = Date.now() + ms;
  let now = snapshot();
  while (!sameSnapshot(now, base) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 25));
    now = snapshot();
  }
  return now;
}
