/**
 * Shutting a Store down (Store.close): intake stops, so new calls reject
 * with QUIVER_ERR_CLOSED, and the memory manager's timers with it; running
 * work drains for up to the timeout; a durable store then checkpoints every
 * shard in what is left of it; then the threads stop, the metrics go and
 * the directory's lock is let go. Past the timeout the threads are
 * terminated and the report says `forced`.
 */
import { releaseIdleTransients } from '../memory/transient.js';
import type { EventEmitter } from 'node:events';
import { removeMetrics } from '../metrics.js';
import type { StoreBase, StoreParts } from './store-parts.js';
import type { CloseReport } from './types.js';

export async function shutdown(
  parts: Pick<StoreParts, 'intake' | 'memory' | 'durable' | 'catalog' | 'registry' | 'pool'>, timeoutMs: number, events: EventEmitter,
): Promise<CloseReport> {
  const started = performance.now();
  // timers stop and scheduled compactions are cancelled at once; the
  // manager's own work (a tuner sample, a compaction) is drained too
  let forced = await parts.intake.drain(parts.memory.stop(), timeoutMs);
  const durable = parts.durable;
  // a graceful close checkpoints every shard within what is left of the timeout; past it the logs still hold everything
  const closed = durable === undefined || forced ? undefined : await durable.closeWithin(parts.catalog.all(), Math.max(0, timeoutMs - (performance.now() - started)));
  if (closed?.late === true) forced = true;
  parts.catalog.clear();
  await releaseStore({ registry: parts.registry, pool: parts.pool, dir: durable?.dir });
  if (closed?.error !== undefined && events.listenerCount('error') > 0) events.emit('error', closed.error);
  return { forced, durationMs: performance.now() - started };
}

/** What a Store that failed to open, or closed, lets go: its metrics, its threads, its directory's lock. */
export async function releaseStore(base: Pick<StoreBase, 'registry' | 'pool' | 'dir'>): Promise<void> {
  removeMetrics(base.registry);
  // pooled transient buffers go with the threads (destroy's GC unmaps them)
  releaseIdleTransients();
  await base.pool.destroy();
  await base.dir?.release();
}
