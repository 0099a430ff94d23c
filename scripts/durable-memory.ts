/**
 * The memory promise on a durable store, in a process of its own (RSS is
 * the process's, so tap's loaders must not share it):
 *   1. a dataset's drop gives its memory back: its WebAssembly memories
 *      unmapped, malloc's share and RSS back near the baseline;
 *   2. insert N x 64 and close; delete half, compact, checkpoint, close: a
 *      restart (a fresh process opening the directory, `reopen` mode) after
 *      the delete holds what the live half needs (committed bytes as a fresh
 *      in-memory store holding only that half), and its RSS is below that of
 *      a restart before the delete.
 * Prints one JSON line; test/store-durable-lifecycle.test.ts asserts on it.
 *
 *   node dist/scripts/durable-memory.js <path> [n]
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { clustered } from '../bench/lib/random.js';
import { settle } from '../bench/lib/rss.js';
import { residentByKind, wasmMemories } from '../bench/lib/smaps.js';
import { Store, collectGarbage } from '../host/index.js';

const MiB = 1024 * 1024;
const [path, nArg = '50000', mode] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: durable-memory.js <path> [n]');
const N = Number(nArg);
const DIM = 64;
const DATA = clustered(N, DIM, 50, 11);
const IDS = Array.from({ length: N }, (_, i) => i);
const GRAPH = { dim: DIM, M: 16, efConstruction: 64, shards: 2 };

/**
 * The lowest RSS once it stops falling (GCs in this thread and the store's
 * between readings): V8 hands heap pages back a few seconds after a quiet
 * period, so an early reading would be a lenient baseline.
 */
async function rss(store: Store | undefined): Promise<number> {
  const gc = async (): Promise<void> => {
    collectGarbage();
    await store?.releaseMemory();
  };
  return (await settle({ gc, until: { floor: { bytes: 0.5 * MiB, quietMs: 2000 } }, deadlineMs: 12_000, pollMs: 200 })).rss;
}

async function insertAll(store: Store, name: string, ids: number[], rows: (i: number) => number): Promise<void> {
  for (let at = 0; at < ids.length; at += 5000) {
    const part = ids.slice(at, at + 5000);
    const vectors = new Float32Array(part.length * DIM);
    part.forEach((_, j) => vectors.set(DATA.subarray(rows(at + j) * DIM, (rows(at + j) + 1) * DIM), j * DIM));
    await store.insert(name, part, vectors);
  }
}

interface Restart {
  rss: number;
  info: { count: number; deleted: number; committedBytes: number; liveBytes: number };
  recovery: Store['recovery'];
}

if (mode === 'reopen') {
  // a restart: this fresh process opens the directory and reports what it holds
  const store = await Store.open({ path, threads: 2 });
  const { count, deleted, committedBytes, liveBytes } = await store.datasetInfo('half');
  const out: Restart = { rss: await rss(store), info: { count, deleted, committedBytes, liveBytes }, recovery: store.recovery };
  await store.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

function restart(): Restart {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), path!, String(N), 'reopen'], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Restart;
}

const store = await Store.open({ path, threads: 2 });
// a warm-up drop: the threads' heaps, the allocator and the modules settle
await store.createDataset('warm', GRAPH);
await insertAll(store, 'warm', IDS, (i) => i);
await store.dropDataset('warm');
// no GC in the store's threads from here to the end of the drop: the drop's own must give the memory back
const dropBase = await rss(undefined);
const wasmBase = wasmMemories();
const kindsBase = residentByKind();
await store.createDataset('dropped', GRAPH);
await insertAll(store, 'dropped', IDS, (i) => i);
const dropPeak = process.memoryUsage.rss();
await store.dropDataset('dropped');
// polled until back within 2 MiB of the baseline, or 10 s
const afterDrop = (await settle({
  gc: collectGarbage,
  until: { rss: (r) => r <= dropBase + 2 * MiB }, deadlineMs: 10_000, pollMs: 200,
})).rss;
const wasmAfter = wasmMemories();
const kindsAfter = residentByKind();
// malloc's share: the [heap] mapping and glibc's thread arenas (KiB)
const mallocChange = ((kindsAfter.heap! + kindsAfter.arenas!) - (kindsBase.heap! + kindsBase.arenas!)) * 1024;

await store.createDataset('half', GRAPH);
await insertAll(store, 'half', IDS, (i) => i);
const infoFull = await store.datasetInfo('half');
await store.close();
const full = restart();
const beforeDelete = full.rss;

const again = await Store.open({ path, threads: 2 });
const odd = IDS.filter((i) => i % 2 === 1);
for (let at = 0; at < odd.length; at += 5000) await again.delete('half', odd.slice(at, at + 5000));
await again.compact('half');
await again.checkpoint('half');
await again.close();
const half = restart();
const afterReopen = half.rss;
const infoReopened = half.info;
const recovery = half.recovery;

const fresh = await Store.open({ threads: 2 });
await fresh.createDataset('half', GRAPH);
const even = IDS.filter((i) => i % 2 === 0);
await insertAll(fresh, 'half', even, (j) => even[j]!);
const infoFresh = await fresh.datasetInfo('half');
await fresh.close();

process.stdout.write(`${JSON.stringify({
  dropBase, dropPeak, afterDrop, beforeDelete, afterReopen, recovery, wasmBase, wasmAfter, mallocChange,
  full: { count: infoFull.count, committedBytes: infoFull.committedBytes },
  reopened: { count: infoReopened.count, deleted: infoReopened.deleted, committedBytes: infoReopened.committedBytes, liveBytes: infoReopened.liveBytes },
  fresh: { count: infoFresh.count, committedBytes: infoFresh.committedBytes, liveBytes: infoFresh.liveBytes },
})}\n`);
