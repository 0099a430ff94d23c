import t from 'tap';
import { Store, type SearchHits } from '../host/index.js';
import { DEFAULT_POLICY, needsCompaction } from '../host/memory/policy.js';
import { bruteForce, clustered, recallAt, rng } from './helpers/data.js';

// Churn: 50 cycles of deleting a random 10% of the live vectors and
// inserting as many new ones, with the background compaction scheduler on
// (every 200 ms) and the default compaction policy. After every cycle the
// scheduler is also run by hand and the test waits until no shard is due
// (runCompactionScheduler() skips a thread whose background pass is still
// running, so one call alone may return before that compaction is done).
//
// "Live" is what the live data needs: liveBytes (node records and link
// blocks of live nodes) plus each shard's fixedOverheadBytes (header, id
// map, scratch, io buffer, node directory). Committed bytes must stay under
// 1.3x that at the end of every cycle, and the final graph must be as good
// as a fresh build of the same vectors.
//
// Dataset: 25,000 x 64, M 16, efConstruction 64, 2 shards on 2 threads.

const N = 25_000;
const DIM = 64;
const CYCLES = 50;
const Q = 100;
const PARAMS = { dim: DIM, M: 16, efConstruction: 64, ef: 64, shards: 2 };
const POLICY = { ...DEFAULT_POLICY };
const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test(`${CYCLES} cycles of 10% deletes and 10% inserts on ${N} x ${DIM}, background compaction on`, async (t) => {
  // deletedRatio 0.15, not the default 0.2: with 10% of the vectors churned
  // per cycle, a shard can sit just under the threshold and then take another
  // 10% before the next pass, so tombstones reach ~0.2 + 0.1 of the slots and
  // committed ~1 / (1 - 0.27) = 1.37x live before growth headroom. The bound
  // 1.3x needs the threshold at 0.15 (measured: ~1.2x). docs/memory-architecture.md
  // says the same to operators.
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 200, deletedRatio: 0.15 } });
  t.teardown(() => store.close());
  const events: { trigger: string; result: string }[] = [];
  store.on('compaction', (e: { trigger: string; result: string }) => events.push(e));

  // rows 0..Q-1 are the queries; the rest are handed out in order as new vectors
  const pool = clustered(Q + N * 7, DIM, 50, 31);
  const queries = pool.slice(0, Q * DIM);
  const row = (id: number): Float32Array => pool.subarray((Q + id) * DIM, (Q + id + 1) * DIM);
  let next = 0;
  const live = new Set<number>();
  const failures: string[] = [];
  const insertNew = async (n: number): Promise<void> => {
    const ids = Uint32Array.from({ length: n }, (_, i) => next + i);
    const { inserted } = await store.insert('churn', ids, pool.subarray((Q + next) * DIM, (Q + next + n) * DIM));
    if (inserted !== n) failures.push(`inserted ${inserted} of ${n}`);
    ids.forEach((id) => live.add(id));
    next += n;
  };

  await store.createDataset('churn', PARAMS);
  await insertNew(N);
  const r = rng(12);
  const ratios: { cycle: number; committed: number; used: number; deleted: number }[] = [];
  const started = performance.now();
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const doomed = [...live].filter(() => r() < 0.1);
    const { deleted } = await store.delete('churn', doomed);
    if (deleted !== doomed.length) failures.push(`cycle ${cycle}: deleted ${deleted} of ${doomed.length}`);
    doomed.forEach((id) => live.delete(id));
    await insertNew(doomed.length);

    // the scheduler, until no shard is due any more; the deadline only turns
    // a scheduler that never catches up into a failure (a loaded machine is slow)
    await store.runCompactionScheduler();
    let stats = await store.stats();
    const due = (): number => stats.datasets.find((d) => d.name === 'churn')!.shardStats.filter((s) => needsCompaction(s, POLICY) !== undefined).length;
    for (const end = Date.now() + 60_000; due() > 0 && Date.now() < end;) {
      await sleep(20);
      await store.runCompactionScheduler();
      stats = await store.stats();
    }
    if (due() > 0) failures.push(`cycle ${cycle}: ${due()} shard(s) still due for compaction after 60 s`);
    // every figure from shardStats: the dataset totals of stats() come from a
    // separate read of the shards, which a compaction may finish in between
    const shards = stats.datasets.find((d) => d.name === 'churn')!.shardStats;
    const sum = (f: (s: (typeof shards)[number]) => number): number => shards.reduce((a, s) => a + f(s), 0);
    if (sum((s) => s.liveNodes) !== live.size) failures.push(`cycle ${cycle}: ${sum((s) => s.liveNodes)} live nodes, expected ${live.size}`);
    const needed = sum((s) => s.liveBytes + s.fixedOverheadBytes);
    ratios.push({ cycle, committed: sum((s) => s.committedBytes) / needed, used: sum((s) => s.usedBytes) / needed, deleted: sum((s) => s.deletedNodes) });
  }
  const seconds = (performance.now() - started) / 1000;
  t.same(failures, [], 'every insert, delete and count as expected');

  const worst = ratios.reduce((a, b) => (b.committed > a.committed ? b : a));
  const worstUsed = Math.max(...ratios.map((x) => x.used));
  const over = ratios.filter((x) => x.committed > 1.3);
  const final = (await store.stats()).datasets.find((d) => d.name === 'churn')!;
  t.comment(`${CYCLES} cycles in ${seconds.toFixed(1)} s; ${events.length} compactions (${events.filter((e) => e.trigger === 'auto').length} auto); ` +
    `final: ${final.count} live, ${final.deleted} tombstones, committed ${(final.committedBytes / MiB).toFixed(2)} MiB, live ${(final.liveBytes / MiB).toFixed(2)} MiB`);
  t.comment(`committed / (live + fixed) after each cycle: ${ratios.map((x) => x.committed.toFixed(2)).join(' ')}`);
  t.comment(`max ${worst.committed.toFixed(3)} at cycle ${worst.cycle} (${worst.deleted} tombstones); ` +
    `max used prefix / (live + fixed) ${worstUsed.toFixed(3)}; cycles over 1.3: ${over.length}`);
  t.ok(events.length > 0 && events.every((e) => e.trigger === 'auto' && e.result === 'ok'), 'the scheduler compacted, every compaction ok');
  t.ok(worst.committed <= 1.3, 'committed <= 1.3 x (live + fixed overhead) after every cycle');

  // recall@10 of the churned graph against a fresh build of the same vectors
  const finalIds = [...live].sort((a, b) => a - b);
  const rowsOf = (ids: number[]): number[] => ids.map((id) => Q + id);
  const truth = Array.from({ length: Q }, (_, q) => bruteForce(pool, DIM, queries, q * DIM, 10, rowsOf(finalIds)).map((x) => x - Q));
  const flat = new Float32Array(finalIds.length * DIM);
  finalIds.forEach((id, j) => flat.set(row(id), j * DIM));
  await store.createDataset('fresh', PARAMS);
  t.same(await store.insert('fresh', finalIds, flat), { inserted: finalIds.length });
  const recallOf = async (name: string): Promise<number> => {
    const hits = (await store.search(name, queries, 10)) as unknown as SearchHits[];
    let sum = 0;
    hits.forEach((h, q) => {
      for (const id of h.ids) if (!live.has(id as number)) t.fail(`${name}: returned ${String(id)}, which is not live`);
      sum += recallAt(h.ids, truth[q]!, 10);
    });
    return sum / Q;
  };
  const churned = await recallOf('churn');
  const rebuilt = await recallOf('fresh');
  t.comment(`recall@10 at ef 64 over ${Q} queries: churned ${churned.toFixed(3)}, fresh build ${rebuilt.toFixed(3)}`);
  t.ok(churned >= rebuilt - 0.02, 'churned recall within 0.02 of a fresh build (or better)');
});
