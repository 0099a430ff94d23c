/**
 * The compaction driver: the one place that runs a shard's compaction from
 * start to report (repair, renumber and copy in bounded steps, then swap the
 * new memory in, shrink, GC). The single-thread Index drives it to the end
 * at once; a worker drives it with a pause between steps (so searches get
 * in) and a cancel check after each pause.
 */
import { collectGarbage } from './gc.js';
import type { Shard } from './shard.js';
import { statsOf } from './stats.js';

/** What a compaction did: of one shard, or summed over a dataset's shards. */
export interface CompactionReport {
  committedBefore: number;
  committedAfter: number;
  /** committedBefore - committedAfter (never negative). */
  reclaimedBytes: number;
  /** Live vectors, unchanged by the compaction. */
  liveNodes: number;
  removedTombstones: number;
  durationMs: number;
}

/**
 * The compaction as a generator: each `yield` is a point between two bounded
 * steps. Returning the generator early (a cancel) or a throw from a step
 * abandons the partial copy and leaves the shard as it was.
 */
function* compaction(shard: Shard): Generator<void, CompactionReport, void> {
  const started = performance.now();
  const before = statsOf(shard);
  const job = shard.startCompaction();
  let copied = false;
  try {
    while (!job.step()) yield;
    copied = true;
  } finally {
    if (!copied) job.abandon();
  }
  job.finish();
  collectGarbage();
  const after = shard.committedBytes;
  return {
    committedBefore: before.committedBytes,
    committedAfter: after,
    reclaimedBytes: Math.max(0, before.committedBytes - after),
    liveNodes: before.liveNodes,
    removedTombstones: before.deletedNodes,
    durationMs: performance.now() - started,
  };
}

/** Compacts `shard` now, synchronously (the single-thread Index). */
export function compactNow(shard: Shard): CompactionReport {
  const run = compaction(shard);
  for (;;) {
    const r = run.next();
    if (r.done === true) return r.value;
  }
}

/**
 * Compacts `shard` in steps, awaiting `pause()` between two steps and then
 * asking `cancelled()`. Resolves with the report, or with undefined when it
 * was cancelled (the shard is then unchanged).
 */
export async function compactInSteps(shard: Shard, pause: () => Promise<void>, cancelled: () => boolean): Promise<CompactionReport | undefined> {
  const run = compaction(shard);
  for (;;) {
    const r = run.next();
    if (r.done === true) return r.value;
    await pause();
    if (cancelled()) {
      run.return(undefined as never);
      return undefined;
    }
  }
}
