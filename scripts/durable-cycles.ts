/**
 * Open/write/close cycles on one data directory, in a process of its own:
 * each cycle opens the durable Store on `path` (recovering what the earlier
 * cycles wrote), checks the count, inserts a small batch with payloads,
 * deletes a few, and closes (checkpointing). Prints one JSON line: threads,
 * active resources, open file descriptors and RSS (settled) after a
 * warm-up and after the cycles, and the count every cycle found.
 * test/store-durable-lifecycle.test.ts runs it under plain node, outside
 * tap's loaders (which make every worker start slow and the heap noisy).
 *
 *   node dist/scripts/durable-cycles.js <path> [cycles]
 */
import { readdirSync } from 'node:fs';
import v8 from 'node:v8';
import { clustered } from '../bench/lib/random.js';
import { activeResources, osThreads } from '../bench/lib/resources.js';
import { settle } from '../bench/lib/rss.js';
import { Store, collectGarbage } from '../host/index.js';

const [path, cyclesArg = '100'] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: durable-cycles.js <path> [cycles]');
const CYCLES = Number(cyclesArg);
const WARMUP = 5;
const DIM = 16;
const BATCH = 40;
const DELETE = 5;
const DATA = clustered(BATCH * (CYCLES + WARMUP), DIM, 10, 5);

const fds = (): number => readdirSync('/proc/self/fd').length;
const footprint = (): number => process.memoryUsage.rss() - v8.getHeapSpaceStatistics().reduce((a, s) => a + s.physical_space_size, 0);

let expected = 0;
let cycle = 0;
const counts: number[] = [];

async function once(): Promise<void> {
  const store = await Store.open({ path: path!, threads: 2 });
  if (cycle === 0) await store.createDataset('cycles', { dim: DIM, M: 8, efConstruction: 32, shards: 2 });
  const count = await store.count('cycles');
  counts.push(count);
  if (count !== expected) throw new Error(`cycle ${cycle}: count ${count}, expected ${expected}`);
  const ids = Array.from({ length: BATCH }, (_, i) => cycle * BATCH + i);
  await store.insert('cycles', ids, DATA.subarray(cycle * BATCH * DIM, (cycle + 1) * BATCH * DIM), { payloads: ids.map((id) => ({ id, cycle })) });
  await store.delete('cycles', ids.slice(0, DELETE));
  expected += BATCH - DELETE;
  const report = await store.close();
  if (report.forced) throw new Error(`cycle ${cycle}: the close was forced`);
  cycle++;
}

async function measure(): Promise<{ threads: number; resources: Record<string, number>; fds: number; rss: number; footprint: number }> {
  // worker exits and port closes land a little after close() resolves
  const s = await settle({ gc: collectGarbage, until: { stable: { bytes: 256 * 1024, windowMs: 300, minMs: 1000 } }, deadlineMs: 6000 });
  return { threads: osThreads(), resources: activeResources(), fds: fds(), rss: s.rss, footprint: footprint() };
}

// modules, the libuv pool, V8's platform threads and the allocator's arenas come up in the first cycles
for (let i = 0; i < WARMUP; i++) await once();
const before = await measure();
/** RSS right after each cycle (unsettled): whether growth goes on or levels off. */
const samples: number[] = [];
/**
 * RSS settled (collected, stable) every SETTLE_EVERY cycles. Memory a cycle
 * leaks survives these collections and adds up; garbage does not. Without
 * them a hundred cycles' garbage piles up and the one collection at the end
 * leaves V8's heap pages and pending finalizers 2-4 MiB above a 70 MiB
 * baseline, under plain node, with no trend behind it.
 */
const settled: number[] = [];
const SETTLE_EVERY = 20;
for (let i = 0; i < CYCLES; i++) {
  await once();
  samples.push(process.memoryUsage.rss());
  if ((i + 1) % SETTLE_EVERY === 0 && i + 1 < CYCLES) settled.push((await measure()).rss);
}
const after = await measure();
settled.push(after.rss);
process.stdout.write(`${JSON.stringify({ before, after, samples, settled, counts: counts.slice(WARMUP), expected })}\n`);
