/**
 * The loop a new user writes, in a process of its own: open a Store, insert
 * 5,000 x 64, search, drop, close, with no GC of the caller's, `cycles`
 * times after a warm-up. Prints one JSON line: the footprint (RSS minus the
 * main thread's JS heap) settled before and after, and after every cycle.
 * test/store-leak.test.ts runs it under plain node, outside tap's coverage
 * loaders, whose own allocations hide a leak of this size.
 *
 *   node dist/scripts/store-cycles.js [cycles]
 */
import v8 from 'node:v8';
import { clustered } from '../bench/lib/random.js';
import { Store, collectGarbage } from '../host/index.js';

const MiB = 1024 * 1024;
const DIM = 64;
const N = 5000;
const WARMUP = 5;
const CYCLES = Number(process.argv[2] ?? 30);
const DATA = clustered(N, DIM, 20, 8);
const IDS = Array.from({ length: N }, (_, i) => i);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * RSS outside the main thread's own JS heap: V8 grows and shrinks its young
 * generation by several MiB on its own schedule, which is no leak and would
 * swamp the signal; everything else (malloc heap and arenas, worker
 * leftovers, WASM memories) is counted.
 */
function footprint(): number {
  const heap = v8.getHeapSpaceStatistics().reduce((a, s) => a + s.physical_space_size, 0);
  return process.memoryUsage.rss() - heap;
}

/** The footprint after GC, polled until it stops moving (or the deadline). */
async function settled(ms = 4000): Promise<number> {
  const end = Date.now() + ms;
  let last = Infinity;
  let now = footprint();
  while (Date.now() < end && Math.abs(now - last) > MiB / 4) {
    collectGarbage();
    await sleep(100);
    last = now;
    now = footprint();
  }
  return now;
}

async function cycle(): Promise<void> {
  const store = await Store.open({ threads: 2 });
  await store.createDataset('leak', { dim: DIM });
  await store.insert('leak', IDS, DATA);
  const hits = await store.search('leak', DATA.subarray(DIM * 7, DIM * 8), 5);
  if (hits.ids[0] !== 7) throw new Error(`search found ${String(hits.ids[0])}, not 7`);
  await store.dropDataset('leak');
  const report = await store.close();
  if (report.forced) throw new Error('an idle close was forced');
}

// modules, the libuv pool, V8's platform threads and the allocator's arenas
// come up in the first cycles of a process
for (let i = 0; i < WARMUP; i++) await cycle();
const start = await settled();
const samples: number[] = [];
for (let c = 0; c < CYCLES; c++) {
  await cycle();
  samples.push(footprint());
}
const end = await settled();
process.stdout.write(`${JSON.stringify({ start, end, samples })}\n`);
