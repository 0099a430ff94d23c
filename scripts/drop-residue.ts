/**
 * What a compacted dataset leaves behind after its drop (issue 8), in a
 * process of its own: open a Store (2 threads), insert 100,000 x 128,
 * delete a share of them, compact, drop; the caller runs no GC of its own
 * after the baseline, as a user would not. Prints one JSON line: RSS before
 * the insert (settled after a GC) and after the drop, polled until malloc's
 * resident share (`[heap]` plus the thread arenas, from /proc/self/smaps) is
 * within `--bound` MiB of where it was, or the deadline; the change split by
 * mapping kind; the footprint (RSS minus the main V8 heap) before and after;
 * and the ArrayBuffer bytes this (the main) thread still holds. test/memory-drop.test.ts runs it under plain
 * node, outside tap's loaders.
 *
 *   node dist/scripts/drop-residue.js [deleteFraction=0.5] [--warmup] [--bound=2]
 *
 * --warmup first runs a 2,000-vector dataset through the same calls: the
 * first large insert and compaction of a process page in node's own code
 * (about 2 MiB of file-backed pages, shared with every node process and no
 * leak), which would otherwise be counted against the dataset.
 */
import v8 from 'node:v8';
import { settle, STABLE } from '../bench/lib/rss.js';
import { residentByKind } from '../bench/lib/smaps.js';
import { clustered } from '../bench/lib/random.js';
import { Store, collectGarbage } from '../host/index.js';

const MiB = 1024 * 1024;
const DIM = 128;
const N = 100_000;
const args = process.argv.slice(2);
const fraction = Number(args.find((a) => !a.startsWith('--')) ?? 0.5);
const warmup = args.includes('--warmup');
const bound = Number(args.find((a) => a.startsWith('--bound='))?.slice('--bound='.length) ?? 2) * MiB;

/** RSS minus the main thread's V8 heap (as scripts/store-cycles.ts counts it): what V8's heap sizing does not move. */
function footprint(): number {
  return process.memoryUsage.rss() - v8.getHeapSpaceStatistics().reduce((a, sp) => a + sp.physical_space_size, 0);
}


/** The caller's arrays are made before the baseline and outlive the drop: only the Store's own leftovers count. */
function workload(n: number, seed: number): { ids: number[]; gone: number[]; data: Float32Array } {
  const ids = Array.from({ length: n }, (_, i) => i);
  return { ids, gone: ids.slice(0, Math.round(n * fraction)), data: clustered(n, DIM, 50, seed) };
}

async function cycle(store: Store, name: string, { ids, gone, data }: ReturnType<typeof workload>): Promise<void> {
  await store.createDataset(name, { dim: DIM });
  await store.insert(name, ids, data);
  await store.delete(name, gone);
  await store.compact(name);
  await store.dropDataset(name);
}

const store = await Store.open({ threads: 2 });
// kept to the end like `big`: its 1 MB of vectors freed after the baseline
// would itself raise glibc's mmap threshold (see host/memory/transient.ts)
const small = warmup ? workload(2000, 9) : undefined;
if (small !== undefined) await cycle(store, 'warmup', small);
const big = workload(N, 1);
const base = (await settle({ gc: collectGarbage, until: { stable: STABLE }, deadlineMs: 4000 })).rss;
const kindsBefore = residentByKind();
const footprintBefore = footprint();
const buffersBefore = process.memoryUsage().arrayBuffers;
await cycle(store, 'big', big);
// no GC of ours from here: whatever the Store left must go by itself. Polled
// until malloc's share (the main heap and the thread arenas) is back within
// the bound, or the deadline: that share is what the Store's own buffers
// decide, where RSS as a whole also moves with V8's sizing of its heaps.
let kindsAfter = kindsBefore;
const mallocKept = (): number => {
  kindsAfter = residentByKind();
  return (kindsAfter.heap! + kindsAfter.arenas! - kindsBefore.heap! - kindsBefore.arenas!) * 1024;
};
const after = await settle({ gc: () => {}, until: { rss: () => mallocKept() <= bound }, deadlineMs: 5000, pollMs: 200 });
const footprintAfter = footprint();
// ArrayBuffer bytes still allocated on this thread: exact, where RSS moves
// with V8's heap sizing and glibc's arenas
const buffersAfter = process.memoryUsage().arrayBuffers;
const change = Object.fromEntries(Object.keys(kindsAfter).map((k) => [k, +((kindsAfter[k]! - kindsBefore[k]!) / 1024).toFixed(2)]));
await store.close();
if (big.ids.length !== N || (small !== undefined && small.data.length === 0)) throw new Error('the workloads must outlive the drop');
process.stdout.write(`${JSON.stringify({ fraction, warmup, base, after: after.rss, buffersBefore, buffersAfter, footprintBefore, footprintAfter, tookMs: Math.round(after.tookMs), changeMiB: change })}\n`);
