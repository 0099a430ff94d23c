/**
 * The Store's lifecycle, 100 times in a process of its own: open (2
 * threads), create, insert 500 x 16, search, drop, close. Prints one JSON
 * line: the resource snapshot and settled RSS before the cycles (after one
 * warm-up cycle) and after them, and how many closed stores a GC could not
 * collect. test/store-lifecycle.test.ts runs it under plain node: under
 * tap's loaders each worker thread takes ~0.9 s of CPU to start, which made
 * the 100 cycles the slowest test by minutes.
 *
 *   node dist/scripts/lifecycle-cycles.js [cycles=100]
 */
import { settle } from '../bench/lib/rss.js';
import { snapshot, waitForSnapshot } from '../bench/lib/resources.js';
import { clustered } from '../bench/lib/random.js';
import { Store, collectGarbage } from '../host/index.js';

const CYCLES = Number(process.argv[2] ?? 100);
const DIM = 16;
const DATA = clustered(500, DIM, 10, 1);
const IDS = Array.from({ length: 500 }, (_, i) => i);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One open/use/close cycle; returns a weak reference to the closed store. */
async function cycle(): Promise<WeakRef<Store>> {
  const store = await Store.open({ threads: 2 });
  await store.createDataset('leak', { dim: DIM, M: 8, efConstruction: 16 });
  await store.insert('leak', IDS, DATA);
  const hits = await store.search('leak', DATA.subarray(DIM * 3, DIM * 4), 5);
  if (hits.ids[0] !== 3) throw new Error(`search found ${String(hits.ids[0])}, not 3`);
  await store.dropDataset('leak');
  const report = await store.close();
  if (report.forced) throw new Error('an idle close was forced');
  return new WeakRef(store);
}

// modules, the libuv pool and the V8 platform threads come up once per process
await cycle();
const before = snapshot();
const rssBefore = (await settle({ gc: collectGarbage, deadlineMs: 2000 })).rss;
const started = performance.now();
const closed: WeakRef<Store>[] = [];
for (let c = 0; c < CYCLES; c++) closed.push(await cycle());
const seconds = (performance.now() - started) / 1000;
const after = await waitForSnapshot(before, 5000);
const rssAfter = (await settle({ gc: collectGarbage, until: { rss: (r) => r <= rssBefore * 1.1 }, deadlineMs: 4000 })).rss;
const end = Date.now() + 3000;
let alive = closed.filter((r) => r.deref() !== undefined).length;
while (alive > 0 && Date.now() < end) {
  collectGarbage();
  await sleep(100);
  alive = closed.filter((r) => r.deref() !== undefined).length;
}
process.stdout.write(`${JSON.stringify({ cycles: CYCLES, seconds, before, after, rssBefore, rssAfter, alive })}\n`);
