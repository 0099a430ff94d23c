import t from 'tap';
import { Store, type SearchHits } from '../host/index.js';
import { bruteForce, clustered, recallAt, rng } from './helpers/data.js';

// Searches while compact() runs. A shard compacts in bounded steps on its
// own thread and yields between them; searches run in between, against the
// old memory (repaired links, tombstones still set) until the swap and the
// new one after it. Every search, before, during and after, must return
// only live ids, k of them, unique, sorted by distance, with the right
// distances, and keep its recall.
//
// Dataset: 50,000 x 64 (M 16, efConstruction 64, 2 shards on 2 threads),
// a random half deleted; searches at ef 32 (a narrow beam, so a damaged
// graph would show).

const N = 50_000;
const DIM = 64;
const Q = 20;
const K = 10;
const EF = 32;

/** Squared L2, as the store reports it. */
function l2(a: Float32Array, aOff: number, b: Float32Array, bOff: number): number {
  let d = 0;
  for (let j = 0; j < DIM; j++) {
    const x = a[aOff + j]! - b[bOff + j]!;
    d += x * x;
  }
  return d;
}

t.test(`searches during compact() of ${N} x ${DIM} with half deleted: only live ids, sorted, recall kept`, async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  const events: { trigger: string; result: string }[] = [];
  store.on('compaction', (e: { trigger: string; result: string }) => events.push(e));

  // rows 0..N-1 are the data; the next Q fixed queries, then a pool of random ones
  const POOL = 200;
  const all = clustered(N + Q + POOL, DIM, 50, 404);
  const data = all.subarray(0, N * DIM);
  const fixed = all.slice(N * DIM, (N + Q) * DIM);
  const pool = all.slice((N + Q) * DIM);
  await store.createDataset('cc', { dim: DIM, M: 16, efConstruction: 64, shards: 2 });
  for (let at = 0; at < N; at += 10_000) {
    await store.insert('cc', Uint32Array.from({ length: 10_000 }, (_, i) => at + i), data.subarray(at * DIM, (at + 10_000) * DIM));
  }
  const r = rng(8);
  const deleted: number[] = [];
  const survivors: number[] = [];
  for (let i = 0; i < N; i++) (r() < 0.5 ? deleted : survivors).push(i);
  t.same(await store.delete('cc', deleted), { deleted: deleted.length });
  const live = new Set(survivors);
  const truth = Array.from({ length: Q }, (_, q) => bruteForce(data, DIM, fixed, q * DIM, K, survivors));

  const problems: string[] = [];
  /** Checks one result; `query` at `qOff` is what was searched. */
  const check = (label: string, h: SearchHits, query: Float32Array, qOff: number): void => {
    if (h.ids.length !== K) problems.push(`${label}: ${h.ids.length} hits, expected ${K}`);
    if (new Set(h.ids).size !== h.ids.length) problems.push(`${label}: an id twice`);
    h.ids.forEach((id, i) => {
      if (!live.has(id as number)) problems.push(`${label}: returned ${String(id)}, which is deleted`);
      if (i > 0 && !(h.distances[i - 1]! <= h.distances[i]!)) problems.push(`${label}: not sorted at ${i}`);
      const exact = l2(query, qOff, data, (id as number) * DIM);
      if (Math.abs(exact - h.distances[i]!) > 1e-3 * Math.max(1, exact)) {
        problems.push(`${label}: id ${String(id)} at distance ${h.distances[i]}, its vector is at ${exact}`);
      }
    });
  };
  /** The fixed queries in one call: checked, and their mean recall@10. */
  const fixedRound = async (label: string): Promise<number> => {
    const hits = (await store.search('cc', fixed, K, { ef: EF })) as unknown as SearchHits[];
    let sum = 0;
    hits.forEach((h, q) => {
      check(`${label} fixed query ${q}`, h, fixed, q * DIM);
      sum += recallAt(h.ids, truth[q]!, K);
    });
    return sum / Q;
  };

  const before = await fixedRound('before');

  let done = false;
  const started = performance.now();
  const compaction = store.compact('cc').finally(() => {
    done = true;
  });
  let rounds = 0;
  let singles = 0;
  let gets = 0;
  const during: number[] = [];
  const probeDeleted = deleted.slice(0, 50);
  const probeLive = survivors.slice(0, 50);
  while (!done) {
    // the fixed batch, random single queries and gets, all in flight at once
    const [recall] = await Promise.all([
      fixedRound(`during round ${rounds}`),
      ...Array.from({ length: 4 }, async (_, i) => {
        const at = ((rounds * 4 + i) % POOL) * DIM;
        const h = await store.search('cc', pool.subarray(at, at + DIM), K, { ef: EF });
        check(`during round ${rounds} single ${i}`, h, pool, at);
        singles++;
      }),
      (async () => {
        const got = await store.get('cc', [...probeDeleted, ...probeLive]);
        got.forEach((v, i) => {
          const id = i < probeDeleted.length ? probeDeleted[i]! : probeLive[i - probeDeleted.length]!;
          if (i < probeDeleted.length && v !== undefined) problems.push(`during: get(${id}) found a deleted id`);
          if (i >= probeDeleted.length && (v === undefined || l2(v, 0, data, id * DIM) !== 0)) problems.push(`during: get(${id}) lost a live id`);
        });
        gets++;
      })(),
    ]);
    // a round that finished after the compaction is not "during"
    if (!done) during.push(recall);
    rounds++;
  }
  const report = await compaction;
  const compactMs = performance.now() - started;
  const after = await fixedRound('after');
  const info = await store.datasetInfo('cc');

  t.comment(`compact() took ${compactMs.toFixed(0)} ms (${report.removedTombstones} tombstones); ${rounds} rounds of searches ran meanwhile ` +
    `(${rounds * Q} batched queries, ${singles} single searches, ${gets} gets)`);
  t.comment(`recall@10 at ef ${EF} on ${Q} fixed queries: before ${before.toFixed(3)}, during min ${Math.min(...during).toFixed(3)} ` +
    `max ${Math.max(...during).toFixed(3)} over ${during.length} rounds, after ${after.toFixed(3)}`);
  t.same(problems.slice(0, 20), [], 'every search and get: only live ids, k unique hits, sorted, right distances');
  t.ok(during.length >= 3, 'searches completed while the compaction was running');
  t.ok(before >= 0.9, 'recall >= 0.9 before');
  t.ok(during.every((x) => x >= 0.9), 'recall >= 0.9 in every round during the compaction');
  t.ok(after >= 0.9, 'recall >= 0.9 after');
  t.match(info, { count: survivors.length, deleted: 0 });
  t.same(events.map((e) => `${e.trigger}/${e.result}`), ['manual/ok', 'manual/ok'], 'one compaction per shard, both ok');
});
