/**
 * RSS per vector of a durable store with int8 quantization, alwaysRam
 * false (originals in the shard files) or true, in a process of its own
 * (RSS is the process's): open on `path`, create the dataset (2 shards,
 * M 16), read the baseline, insert n x 128 clustered vectors, then poll RSS
 * (a GC in every thread between readings, which may compact: the memory a
 * restart would hold) until the delta per vector is at most `bound` bytes
 * or the deadline passes. A warm-up dataset is inserted and dropped before
 * the baseline. Also printed: the WebAssembly memories' resident bytes
 * (smaps) and the arena's bytes per vector by class. Prints one JSON line: the readings, the delta per
 * vector, and the shards' committed bytes (the accounting RSS is held to).
 * test/store-disk-rss.test.ts asserts on it.
 *
 *   node dist/scripts/disk-rss.js <path> <false|true> [n] [bound]
 */
import { clustered, ClusteredSource } from '../bench/lib/random.js';
import { settle } from '../bench/lib/rss.js';
import { residentByKind, wasmMemories } from '../bench/lib/smaps.js';
import { collectGarbage, Store } from '../host/index.js';
import { releaseIdleTransients } from '../host/memory/transient.js';

const [path, mode, nArg = '100000', boundArg = '300'] = process.argv.slice(2);
if (path === undefined || (mode !== 'false' && mode !== 'true')) throw new Error('usage: disk-rss.js <path> <false|true> [n] [bound]');
const N = Number(nArg);
const BOUND = Number(boundArg);
const DIM = 128;
const BATCH = 5000;

const store = await Store.open({ path, threads: 2, compaction: { intervalMs: 0 } });
const committed = async (): Promise<number> => (await store.stats()).datasets[0]!.shardStats.reduce((a, s) => a + s.committedBytes, 0);
const gc = async (): Promise<void> => {
  collectGarbage();
  await store.releaseMemory();
};
const PARAMS = { dim: DIM, M: 16, efConstruction: 64, shards: 2, quantization: { scalar: { type: 'int8' as const, alwaysRam: mode === 'true' } } };
// a warm-up dataset, inserted and dropped: the threads' heaps, the allocator and the compiled code settle before the baseline
await store.createDataset('warm', PARAMS);
await store.insert('warm', Array.from({ length: BATCH * 2 }, (_, i) => i), clustered(BATCH * 2, DIM, 50, 7));
await store.dropDataset('warm');
await store.createDataset('d', PARAMS);
// the data is generated batch by batch into one buffer, touched before the baseline, as a loader
// reading a file would: it never sits in this process whole, and the caller's own allocations
// (a fresh 2.5 MiB array a batch moved glibc's heap by 0.2-8.7 MiB) are not in the readings
const batch = new Float32Array(BATCH * DIM).fill(1);
const base = (await settle({ gc, until: { floor: { bytes: 0.5 * 1024 * 1024, quietMs: 3000 } }, deadlineMs: 15_000, pollMs: 200 })).rss;
const committedBase = await committed();
const wasmBase = wasmMemories()?.resident ?? 0;
const kindsBase = residentByKind();
for (let at = 0; at < N; at += BATCH) {
  const n = Math.min(BATCH, N - at);
  await store.insert('d', Array.from({ length: n }, (_, i) => at + i), new ClusteredSource(DIM, 50, 1000 + at).next(n, batch));
}
// the host's pool of idle insert buffers (host/memory/transient.ts) is let go 1 s after the last
// insert; an RSS bound met sooner (in 345 ms once) read its memories as the shards' (WebAssembly
// resident 344 B a vector against 318): let them go now, as a drop or a close does
releaseIdleTransients();
const t0 = performance.now();
const after = await settle({ gc, until: mode === 'false' ? { rss: (rss) => (rss - base) / N <= BOUND } : { floor: { bytes: 0.5 * 1024 * 1024, quietMs: 3000 } }, deadlineMs: 20_000, pollMs: 250 });
const committedAfter = await committed();
const wasmAfter = wasmMemories()?.resident ?? 0;
const kindsAfter = residentByKind();
const stats = (await store.stats()).datasets[0]!;
const out = {
  mode, n: N, baseRss: base, rss: after.rss, rssDelta: after.rss - base, perVector: (after.rss - base) / N, settleMs: Math.round(performance.now() - t0),
  committedBase, committed: committedAfter, committedDelta: committedAfter - committedBase, committedPerVector: (committedAfter - committedBase) / N,
  wasmResidentBase: wasmBase, wasmResident: wasmAfter, wasmResidentDelta: wasmAfter - wasmBase,
  arena: Object.fromEntries(['node', 'links', 'idmap', 'scratch'].map((k) => [k, stats.shardStats.reduce((a, x) => a + x.arena[k as 'node'].used, 0) / N])),
  fixedPerVector: stats.shardStats.reduce((a, x) => a + x.fixedOverheadBytes, 0) / N, usedPerVector: stats.shardStats.reduce((a, x) => a + x.usedBytes, 0) / N,
  // resident bytes per vector by mapping kind, after minus before (glibc's heap and arenas, V8's and the memories' anonymous maps, files)
  kinds: Object.fromEntries(Object.keys(kindsAfter).map((k) => [k, ((kindsAfter[k]! - (kindsBase[k] ?? 0)) * 1024) / N])),
  live: stats.count, heapUsed: after.usage.heapUsed, external: after.usage.external, arrayBuffers: after.usage.arrayBuffers,
};
await store.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
