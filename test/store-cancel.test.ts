import t from 'tap';
import { QuiverError, Store, type SearchHits } from '../host/index.js';
import { bruteForce, clustered, recallAt, rng } from './helpers/data.js';
import { track, watch } from './helpers/outcome.js';

// What cancellation and scheduling do; how fast (the delay from an abort to
// the rejection, how long a search waits beside a long insert) is measured
// by bench/lifecycle.ts.

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const DIM = 16;
const N = 200_000;
const data = clustered(N, DIM, 64, 3);
const ids = Array.from({ length: N }, (_, i) => i);

// no background compaction or tuner: the tests count tombstones
const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 }, tuner: { tunerIntervalMs: 0 } });
t.teardown(() => store.close());

t.test('an aborted insert stops; what it applied is in and searchable', async (t) => {
  // a graph good enough that every stored vector is found by a search for it
  // (M 8 / efConstruction 16 leaves ~9% of the nodes unreachable); it takes
  // longer to insert, and only the part before the abort is ever built
  await store.createDataset('big', { dim: DIM, M: 16, efConstruction: 64 });
  await store.count('big'); // both threads up before the insert starts

  const controller = new AbortController();
  const reason = new Error('enough');
  const insert = track(store.insert('big', ids, data, { signal: controller.signal }));
  // abort once part of the batch is in (a count runs between the insert's steps)
  await sleep(400);
  while (!insert.settled() && (await store.count('big')) === 0) await sleep(50);
  controller.abort(reason);
  const r = await insert.outcome;
  if (r.ok) {
    t.fail(`the insert finished before the abort (${r.value.inserted} vectors); make it bigger`);
    return;
  }
  t.ok(r.err instanceof QuiverError, 'a QuiverError');
  const err = r.err as QuiverError;
  t.equal(err.code, 'QUIVER_ERR_ABORTED');
  t.equal(err.cause, reason, "the cause is the signal's reason");
  const applied = err.applied;
  t.type(applied, 'number', 'the error says how many vectors went in');
  t.ok(applied! > 0 && applied! < N, `part of the batch went in (${applied} of ${N})`);
  t.comment(`applied before the abort: ${applied} of ${N}`);

  // fresh ids, so the count is what was applied, and exactly those ids are there
  t.equal(await store.count('big'), applied, 'count == applied');
  const got = await store.get('big', ids);
  const present = ids.filter((i) => got[i] !== undefined);
  t.equal(present.length, applied, 'get finds exactly `applied` of the ids');
  const pick = rng(17);
  let found = 0;
  let same = 0;
  for (let s = 0; s < 100; s++) {
    const id = present[Math.floor(pick() * present.length)]!;
    const v = data.subarray(id * DIM, (id + 1) * DIM);
    if (Array.from(got[id]!).every((x, j) => x === v[j])) same++;
    const hit = await store.search('big', v, 10);
    if (hit.ids.includes(id)) found++;
  }
  t.equal(same, 100, 'the applied vectors are stored as given (100 sampled)');
  t.comment(`a search for an applied vector finds its id: ${found}/100`);
  t.equal(found, 100, 'a search for an applied vector finds its id');

  // the store stays healthy: searches work, and another insert goes in
  const probe = await store.search('big', data.subarray(present[0]! * DIM, (present[0]! + 1) * DIM), 10);
  t.equal(probe.ids.length, 10, 'a search returns k hits');
  const more = ids.slice(N - 1000);
  t.ok(more.every((id) => got[id] === undefined), 'fresh ids for the next insert');
  t.same(await store.insert('big', more, data.subarray((N - 1000) * DIM)), { inserted: 1000 }, 'another insert works');
  t.equal(await store.count('big'), applied! + 1000);
  const last = await store.search('big', data.subarray((N - 1) * DIM), 1);
  t.same(last.ids, [N - 1], 'and what it inserted is found');
  await store.dropDataset('big');
});

t.test('an aborted compaction stops and leaves the dataset working', async (t) => {
  // a better graph than 'big' so that recall is a sharp check: 100k, half deleted
  const n = 100_000;
  const all = clustered(n + 50, DIM, 64, 8);
  const vectors = all.subarray(0, n * DIM);
  const queries = all.subarray(n * DIM); // held out from the same draw
  const own = ids.slice(0, n);
  await store.createDataset('cmp', { dim: DIM, M: 16, efConstruction: 64 });
  await store.insert('cmp', own, vectors);
  const gone = own.filter((i) => i % 2 === 1);
  const live = own.filter((i) => i % 2 === 0);
  t.same(await store.delete('cmp', gone), { deleted: gone.length });
  const truth = Array.from({ length: 50 }, (_, q) => bruteForce(vectors, DIM, queries, q * DIM, 10, live));
  const measure = async (): Promise<{ recall: number; deletedHits: number }> => {
    const hits = (await store.search('cmp', queries, 10)) as unknown as SearchHits[];
    let recall = 0;
    let deletedHits = 0;
    hits.forEach((h, q) => {
      recall += recallAt(h.ids, truth[q]!, 10);
      deletedHits += h.ids.filter((id) => (id as number) % 2 === 1).length;
    });
    return { recall: recall / 50, deletedHits };
  };
  const before = await measure();
  const infoBefore = await store.datasetInfo('cmp');
  t.equal(infoBefore.count, live.length);
  t.equal(infoBefore.deleted, gone.length);

  const controller = new AbortController();
  const outcome = watch(store.compact('cmp', { signal: controller.signal }));
  await sleep(300);
  controller.abort();
  const r = await outcome;
  if (r.ok) {
    t.fail('the compaction finished before the abort; make the data bigger');
    return;
  }
  t.ok(r.err instanceof QuiverError, 'a QuiverError');
  t.equal((r.err as QuiverError).code, 'QUIVER_ERR_ABORTED');

  const infoAfter = await store.datasetInfo('cmp');
  t.equal(infoAfter.count, infoBefore.count, 'count unchanged');
  t.equal(infoAfter.deleted, infoBefore.deleted, 'the tombstones are still there: nothing was half-compacted');
  const after = await measure();
  t.comment(`recall@10 over the live half: ${before.recall} before, ${after.recall} after the aborted compaction`);
  t.equal(after.deletedHits, 0, 'no deleted id comes back');
  t.ok(after.recall >= before.recall - 0.02, 'searches are as good as before the compaction started');
  const [v0, v1] = await store.get('cmp', [0, 1]);
  t.same(Array.from(v0!), Array.from(vectors.subarray(0, DIM)), 'a live vector is still there');
  t.equal(v1, undefined, 'a deleted one is still gone');

  // healthy: a compaction without a signal completes and changes no answer's quality
  const report = await store.compact('cmp');
  t.equal(report.removedTombstones, gone.length);
  t.equal(await store.count('cmp'), live.length, 'count unchanged by the compaction');
  const compacted = await measure();
  t.comment(`recall@10 after a full compaction: ${compacted.recall}`);
  t.ok(compacted.recall >= before.recall - 0.05, 'and it still answers well after a full compaction');
  await store.dropDataset('cmp');
});

t.test('no head-of-line blocking: a long insert on one thread does not hold up another dataset', async (t) => {
  await store.createDataset('A', { dim: DIM, shards: 1, M: 8, efConstruction: 16 });
  await store.createDataset('B', { dim: DIM, shards: 1, M: 8, efConstruction: 16 });
  const [threadA] = store._shardThreads('A');
  const [threadB] = store._shardThreads('B');
  t.not(threadA, threadB, `A (thread ${threadA}) and B (thread ${threadB}) live on different threads`);
  await store.insert('B', ids.slice(0, 2000), data.subarray(0, 2000 * DIM));
  const q = data.subarray(5 * DIM, 6 * DIM);
  await store.search('B', q, 10); // warm

  const n = 120_000;
  const long = track(store.insert('A', ids.slice(0, n), data.subarray(0, n * DIM)));
  await sleep(200);
  // whether the long insert had settled when each search did
  const during = <T>(p: Promise<T>): Promise<{ value: T; longSettled: boolean }> => p.then((value) => ({ value, longSettled: long.settled() }));
  const onB = watch(during(store.search('B', q, 10)));
  const onA = watch(during(store.search('A', q, 10)));
  const [rB, rA, rLong] = await Promise.all([onB, onA, long.outcome]);
  t.ok(rLong.ok, 'the long insert completes');
  t.ok(rB.ok, 'the search on B completes');
  t.ok(rA.ok, 'the search on A completes');
  t.ok(rB.ok && !rB.value.longSettled, 'the search on B finished while the long insert on A was still running');
  t.ok(rA.ok && !rA.value.longSettled, 'a search on A itself got in between the insert steps');
  if (rB.ok) t.same(rB.value.value.ids[0], 5, 'and found the right vector');
  t.equal(await store.count('A'), n);
});

t.test('no head-of-line blocking behind a compaction or a queue of writes', async (t) => {
  // A holds 120k from the last test; delete most, compact, and pile more writes behind it
  await store.delete('A', ids.slice(0, 100_000));
  const q = data.subarray(7 * DIM, 8 * DIM);
  const work = [track<unknown>(store.compact('A'))];
  for (let w = 0; w < 8; w++) {
    const from = N - (w + 1) * 2000;
    work.push(track<unknown>(store.insert('A', ids.slice(from, from + 2000), data.subarray(from * DIM, (from + 2000) * DIM))));
  }
  await sleep(50);
  const onB = await watch(store.search('B', q, 10).then((hits) => ({ hits, aSettled: work.every((w) => w.settled()) })));
  const done = await Promise.all(work.map((w) => w.outcome));
  t.ok(done.every((d) => d.ok), 'the work on A completes');
  t.ok(onB.ok, 'the search on B completes');
  t.ok(onB.ok && !onB.value.aSettled, 'the search on B finished before the work queued on A');
  t.equal(await store.count('A'), 20_000 + 16_000);
});
