import t from 'tap';
import { Store, collectGarbage, type SearchHits } from '../host/index.js';
import { bruteForce, clustered, recallAt, rng } from './helpers/data.js';
import { wasmMemories } from './helpers/memory.js';

// A fragmented dataset: 100,000 x 128 (M 16, efConstruction 32, 2 shards on
// 2 threads), a random half deleted, then one compact(). Committed arena
// bytes must fall by >= 45%, process RSS must fall by >= 40% of the arenas'
// share of it, and the survivors must be found as well as by a fresh build
// over them.
//
// "The arenas' share" of RSS is what the shards' WebAssembly memories have
// resident before the delete. Committed memory is resident only where it
// was touched (the growth headroom above the used prefix never is), so it
// is read from /proc/self/smaps: V8 maps each Memory as a read-write
// committed prefix followed by a reservation of >= 4 GiB (the guard
// regions); the Rss of those prefixes is exactly the arenas' share. Where
// smaps is not readable, committed bytes stand in. A perfect compaction
// gives back about half of it (the nodes go; the id map and scratch stay).
// The test asserts both: process RSS (what the promise is about, noisy by
// the V8 heaps of three threads) and the arenas' resident bytes (exact).

const MiB = 1024 * 1024;
const N = 100_000;
const DIM = 128;
const Q = 100;
const PARAMS = { dim: DIM, M: 16, efConstruction: 32, ef: 64, shards: 2 };
const rss = (): number => process.memoryUsage.rss();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (b: number): string => (b / MiB).toFixed(1);

/** Lowest RSS once it stops falling (no new low by > 1 MiB for 2 s; at most `deadlineMs`), or as soon as `ok`. */
async function settle(ok: (rss: number) => boolean, deadlineMs: number): Promise<number> {
  const end = Date.now() + deadlineMs;
  let low = rss();
  let lowAt = Date.now();
  while (Date.now() < end && Date.now() - lowAt < 2000) {
    collectGarbage();
    await sleep(200);
    const now = rss();
    if (now < low - MiB) lowAt = Date.now();
    low = Math.min(low, now);
    if (ok(low)) break;
  }
  return low;
}

async function searchAll(store: Store, name: string, queries: Float32Array, ef: number): Promise<SearchHits[]> {
  return (await store.search(name, queries, 10, { ef })) as unknown as SearchHits[];
}

t.test(`${N} x ${DIM}, half deleted at random, compact(): bytes, RSS and recall`, async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  const events: { dataset: string; trigger: string; result: string }[] = [];
  store.on('compaction', (e: { dataset: string; trigger: string; result: string }) => events.push(e));

  // one draw: the first N rows are the data, the last Q the queries
  const all = clustered(N + Q, DIM, 100, 2024);
  const data = all.subarray(0, N * DIM);
  const queries = all.slice(N * DIM);
  await store.createDataset('frag', PARAMS);
  const CHUNK = 10_000;
  for (let at = 0; at < N; at += CHUNK) {
    await store.insert('frag', Uint32Array.from({ length: CHUNK }, (_, i) => at + i), data.subarray(at * DIM, (at + CHUNK) * DIM));
  }
  t.equal(await store.count('frag'), N);

  // a GC in every worker (the transferred insert buffers are garbage there),
  // so "before" holds no garbage. Nothing is compacted yet: a fresh build has
  // no tombstones, and its growth headroom (at most 1/16, untouched, not in
  // RSS) does not make it due.
  const grown = await store.datasetInfo('frag');
  await store.releaseMemory();
  const before = (await store.stats()).datasets.find((d) => d.name === 'frag')!;
  const usedBefore = before.shardStats.reduce((a, s) => a + s.usedBytes, 0);
  t.ok(usedBefore <= before.committedBytes && before.committedBytes <= usedBefore * 1.07 + 2 * 65536 * 17,
    `after releaseMemory committed ${before.committedBytes} is the used prefix ${usedBefore} plus at most 1/16 headroom`);
  const rssBefore = await settle(() => false, 8000);
  // the smaps reading only where it recognises the memories of the 2 shards
  let seen = wasmMemories();
  for (let i = 0; i < 30 && seen !== undefined && seen.count > 2; i++) {
    collectGarbage(); // memories replaced by releaseMemory's shrink, still being unmapped
    await sleep(100);
    seen = wasmMemories();
  }
  const wasmBefore = seen !== undefined && seen.count === 2 ? seen : undefined;
  const share = wasmBefore?.resident ?? before.committedBytes;

  const r = rng(77);
  const deleted: number[] = [];
  const survivors: number[] = [];
  for (let i = 0; i < N; i++) (r() < 0.5 ? deleted : survivors).push(i);
  t.same(await store.delete('frag', deleted), { deleted: deleted.length });
  events.length = 0;

  // recall of the survivors, against brute force over the survivors only
  const truth = Array.from({ length: Q }, (_, q) => bruteForce(data, DIM, queries, q * DIM, 10, survivors));
  const gone = new Set(deleted);
  const recallOf = async (name: string, ef: number): Promise<number> => {
    const hits = await searchAll(store, name, queries, ef);
    let sum = 0;
    hits.forEach((h, q) => {
      for (const id of h.ids) if (gone.has(id as number)) t.fail(`${name}: deleted id ${String(id)} returned`);
      sum += recallAt(h.ids, truth[q]!, 10);
    });
    return sum / Q;
  };
  const EFS = [64, 128];
  const tombstoned: number[] = [];
  for (const ef of EFS) tombstoned.push(await recallOf('frag', ef));

  const started = performance.now();
  const report = await store.compact('frag');
  const compactMs = performance.now() - started;
  const after = await store.datasetInfo('frag');
  t.match(after, { count: survivors.length, deleted: 0 }, 'survivors live, no tombstones left');
  t.equal(report.removedTombstones, deleted.length, 'every tombstone removed');
  // the searches above grew the scratch heaps (ef 128), which commits growth
  // headroom again; "before" stays the tighter figure from releaseMemory
  t.ok(report.committedBefore >= before.committedBytes, 'the report starts from what the shards held');
  t.equal(report.committedAfter, after.committedBytes);
  t.same(events.map((e) => [e.dataset, e.trigger, e.result]), [['frag', 'manual', 'ok'], ['frag', 'manual', 'ok']], 'one manual compaction per shard');

  const fall = 1 - after.committedBytes / before.committedBytes;
  const rssAfter = await settle((now) => rssBefore - now >= 0.4 * share, 10_000);
  let wasmAfter = wasmMemories();
  for (let i = 0; i < 20 && wasmBefore !== undefined && wasmAfter !== undefined && wasmAfter.count > wasmBefore.count; i++) {
    collectGarbage(); // the replaced memories are unmapped a little after the workers' GC
    await sleep(100);
    wasmAfter = wasmMemories();
  }
  const rssFall = (rssBefore - rssAfter) / share;
  t.comment(`committed ${mib(grown.committedBytes)} MiB after the build, ${mib(before.committedBytes)} MiB after releaseMemory, ` +
    `${mib(after.committedBytes)} MiB after compact (-${(fall * 100).toFixed(1)}%); live ${mib(after.liveBytes)} MiB; compact took ${compactMs.toFixed(0)} ms`);
  t.comment(`arenas' share of RSS before: ${mib(share)} MiB (${wasmBefore === undefined ? 'committed bytes; no smaps' : `resident in ${wasmBefore.count} WebAssembly memories`})` +
    (wasmBefore !== undefined && wasmAfter !== undefined ? `, after: ${mib(wasmAfter.resident)} MiB in ${wasmAfter.count}` : ''));
  t.comment(`process RSS ${mib(rssBefore)} MiB before, ${mib(rssAfter)} MiB after: fell ${mib(rssBefore - rssAfter)} MiB = ${(rssFall * 100).toFixed(1)}% of the arenas' share`);
  t.ok(fall >= 0.45, 'committed arena bytes fall by at least 45%');
  t.ok(rssFall >= 0.4, 'process RSS falls by at least 40% of the arenas\' share');
  if (wasmBefore !== undefined && wasmAfter !== undefined) {
    t.equal(wasmAfter.count, 2, 'two WebAssembly memories left: the replaced ones were unmapped');
    t.ok(wasmAfter.resident <= 0.55 * wasmBefore.resident, 'the arenas\' resident bytes fall by at least 45%');
  }

  const fresh = new Float32Array(survivors.length * DIM);
  survivors.forEach((id, j) => fresh.set(data.subarray(id * DIM, (id + 1) * DIM), j * DIM));
  await store.createDataset('fresh', PARAMS);
  for (let at = 0; at < survivors.length; at += CHUNK) {
    const ids = survivors.slice(at, at + CHUNK);
    await store.insert('fresh', ids, fresh.subarray(at * DIM, (at + ids.length) * DIM));
  }
  for (const [i, ef] of EFS.entries()) {
    const compacted = await recallOf('frag', ef);
    const rebuilt = await recallOf('fresh', ef);
    t.comment(`recall@10 at ef ${ef} over ${Q} queries: tombstoned (before compact) ${tombstoned[i]!.toFixed(3)}, ` +
      `compacted ${compacted.toFixed(3)}, fresh build ${rebuilt.toFixed(3)}`);
    t.ok(compacted >= rebuilt - 0.01, `ef ${ef}: compacted recall within 0.01 of a fresh build (or better)`);
  }
});
