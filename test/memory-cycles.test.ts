import t from 'tap';
import { Store, collectGarbage } from '../host/index.js';
import { clustered } from './helpers/data.js';
import { floorRss, settleRss, wasmMemories } from './helpers/memory.js';

// 100 create/fill/drop cycles of a 20,000 x 128 dataset must leave process
// RSS where the first cycle left it: a dropped dataset's WebAssembly.Memory
// (one per shard, owned by a worker thread) goes back to the OS.
//
// Parameters: M 8, efConstruction 8, 2 threads and 2 shards (one shard per
// thread, so both cores build). The graph's quality is beside the point
// here; at efConstruction 16 a cycle took 1-1.5 s under the test runner on
// a busy 2-core machine, too slow for 100 of them.

const MiB = 1024 * 1024;
const N = 20_000;
const DIM = 128;
const CYCLES = 100;
const rss = (): number => process.memoryUsage.rss();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (b: number): string => (b / MiB).toFixed(1);

t.test(`${CYCLES} create/drop cycles of ${N} x ${DIM}: RSS returns to the first cycle's baseline`, async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  // a GC in every worker (releaseMemory) and in this thread
  const gcEverywhere = async (): Promise<void> => {
    await store.releaseMemory();
    collectGarbage();
  };
  const data = clustered(N, DIM, 64, 101); // the one buffer every cycle inserts
  const ids = Uint32Array.from({ length: N }, (_, i) => i);
  const started = performance.now();

  let committed = 0;
  let peak = 0;
  let baseline = 0;
  let midpoint = 0;
  let wasmFull: ReturnType<typeof wasmMemories>;
  const failures: string[] = [];
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    await store.createDataset('cycle', { dim: DIM, M: 8, efConstruction: 8, shards: 2 });
    const { inserted } = await store.insert('cycle', ids, data);
    const info = await store.datasetInfo('cycle');
    if (inserted !== N || info.count !== N) failures.push(`cycle ${cycle}: inserted ${inserted}, count ${info.count}`);
    committed = Math.max(committed, info.committedBytes);
    peak = Math.max(peak, rss());
    if (cycle === 1) {
      // the shards' memories, once the insert's transient buffers (themselves
      // shared WebAssembly memories, host/memory/transient.ts) are collected
      wasmFull = wasmMemories();
      for (const until = Date.now() + 5000; wasmFull !== undefined && wasmFull.count > 2 && Date.now() < until;) {
        await gcEverywhere();
        await sleep(250);
        wasmFull = wasmMemories();
      }
    }
    await store.dropDataset('cycle');
    if (cycle === 1) {
      // the first cycle warms up code, heaps and thread stacks: the baseline
      // is what the process holds once that is done and the dataset is gone
      baseline = await floorRss(gcEverywhere);
    }
    if (cycle === CYCLES / 2) midpoint = await floorRss(gcEverywhere);
  }
  t.same(failures, [], 'every cycle inserted and counted all vectors');
  t.same(store.listDatasets(), [], 'no dataset left');

  const end = await settleRss((now) => now <= baseline * 1.05 && now - baseline <= 2 * committed && now - midpoint <= committed, 15_000, gcEverywhere, 250);
  let wasmEnd = wasmMemories();
  for (const until = Date.now() + 5000; wasmEnd !== undefined && wasmEnd.count > 0 && Date.now() < until;) {
    await gcEverywhere(); // an unmap lands a little after the GC that frees the Memory
    await sleep(250);
    wasmEnd = wasmMemories();
  }
  const seconds = (performance.now() - started) / 1000;
  t.comment(`dataset: ${N} x ${DIM}, M 8, efConstruction 8, 2 shards on 2 threads; committed ${mib(committed)} MiB per cycle`);
  t.comment(`RSS baseline after cycle 1 ${mib(baseline)} MiB, peak ${mib(peak)} MiB, after cycle ${CYCLES / 2} ${mib(midpoint)} MiB, ` +
    `after cycle ${CYCLES} ${mib(end)} MiB (${(((end - baseline) / baseline) * 100).toFixed(2)}% vs the baseline); ${CYCLES} cycles in ${seconds.toFixed(1)} s`);
  // only where smaps shows the layout wasmMemories() reads (64-bit V8 with guard regions)
  if (wasmFull !== undefined && wasmFull.count > 0 && wasmEnd !== undefined) {
    // exact, unlike RSS: the mappings of the dropped memories themselves
    t.comment(`WebAssembly memories mapped: ${wasmFull.count} (${mib(wasmFull.resident)} MiB resident) with a dataset, ${wasmEnd.count} (${mib(wasmEnd.resident)} MiB) after the last drop`);
    t.equal(wasmFull.count, 2, 'a dataset of 2 shards maps 2 WebAssembly memories');
    t.equal(wasmEnd.count, 0, `no WebAssembly memory of the ${CYCLES} dropped datasets is still mapped`);
  }
  t.ok(end <= baseline * 1.05, 'RSS after the last drop within 5% of the baseline');
  // 5% of a baseline this size is about two datasets: say it in bytes too
  t.ok(end - baseline <= 2 * committed, 'less than two datasets\' worth of RSS stayed behind after 99 more cycles');
  // The baseline still holds warm-up memory (the TypeScript loader in each
  // worker, young heaps) that V8 hands back over the next cycles, which makes
  // the checks above lenient; by mid-run that is done, so a leak shows as a
  // rise over the second half: 50 cycles must not leave one dataset behind.
  t.ok(end - midpoint <= committed, `cycles ${CYCLES / 2 + 1}-${CYCLES} left less than one dataset's worth (${mib(committed)} MiB) of RSS behind`);
});
