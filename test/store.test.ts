import t from 'tap';
import { readdirSync } from 'node:fs';
import { Index, QuiverError, Store, type Id, type SearchHits } from '../host/index.js';
import { bruteForce, clustered, recallAt, sift } from './helpers/data.js';

/** Threads of this process (main, libuv, V8 platform and worker threads). */
const osThreads = (): number => readdirSync('/proc/self/task').length;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** search() is typed for one query; a batch resolves with one SearchHits per query. */
async function searchMany(store: Store, name: string, queries: Float32Array | number[][], k: number): Promise<SearchHits[]> {
  return (await store.search(name, queries, k)) as unknown as SearchHits[];
}

// one store serves every test but the dispose one: a worker thread takes
// about a second to start under the test loaders
const store = await Store.open({ threads: 2 });
t.teardown(() => store.close());

t.test('scatter-gather over 4 shards on 2 threads: same recall@10 as one Index', async (t) => {
  const { base, query, truth } = sift();
  const dim = base.dim;
  const params = { M: 16, efConstruction: 100, ef: 64 };
  const ids = Array.from({ length: base.n }, (_, i) => i);

  t.equal(store.threads, 2);
  const info = await store.createDataset('sift', { dim, shards: 4, ...params });
  t.match(info, { name: 'sift', dim, shards: 4, count: 0, metric: 'l2', ...params });
  const owners = store._shardThreads('sift');
  t.equal(owners.length, 4, 'four shards');
  t.equal(new Set(owners).size, 2, 'spread over both threads');

  t.same(await store.insert('sift', ids, base.data), { inserted: base.n });
  t.equal(await store.count('sift'), base.n);
  const stats = await store.stats();
  const perShard = stats.datasets.find((d) => d.name === 'sift')!.shardStats.map((s) => s.liveNodes);
  t.comment(`vectors per shard: ${perShard.join(', ')}`);
  t.equal(perShard.reduce((a, b) => a + b, 0), base.n);
  for (const c of perShard) t.ok(c > base.n / 4 * 0.8 && c < base.n / 4 * 1.2, `a shard holds ${c}, about a quarter`);

  const index = new Index({ dim, ...params });
  index.add(ids, base.data);

  // Each shard is searched with the same beam over a quarter of the data, so
  // at a narrow beam the store may do better than one index; it must never
  // do worse, and once the beam is wide enough both reach the same recall.
  const recall: Record<number, { store: number; index: number }> = {};
  for (const ef of [16, 64, 256]) {
    const hits = (await store.search('sift', query.data, 10, { ef })) as unknown as SearchHits[];
    t.equal(hits.length, query.n, 'one result per query');
    let storeSum = 0;
    let indexSum = 0;
    for (let q = 0; q < query.n; q++) {
      const gt = truth.data.subarray(q * truth.k, (q + 1) * truth.k);
      const h = hits[q]!;
      storeSum += recallAt(h.ids, gt, 10);
      indexSum += recallAt(index.search(query.data.subarray(q * dim, (q + 1) * dim), 10, { ef }).ids, gt, 10);
      if (new Set(h.ids).size !== h.ids.length) t.fail(`ef ${ef}, query ${q}: an id twice in a merged result`);
      for (let i = 1; i < h.distances.length; i++) {
        if (!(h.distances[i - 1]! <= h.distances[i]!)) t.fail(`ef ${ef}, query ${q}: merged hits not sorted by distance`);
      }
    }
    recall[ef] = { store: storeSum / query.n, index: indexSum / query.n };
    t.ok(recall[ef]!.store >= recall[ef]!.index - 0.01, `ef ${ef}: the store's recall@10 is not below the single Index's (${recall[ef]!.store} vs ${recall[ef]!.index})`);
  }
  t.comment(`recall@10 by ef, store (4 shards / 2 threads) vs single Index: ${JSON.stringify(recall)}`);
  t.ok(Math.abs(recall[256]!.store - recall[256]!.index) <= 0.01, 'ef 256: recall@10 within 0.01 of the single Index');
  t.ok(recall[64]!.store >= 0.9, 'and the recall is real');
  index.dispose();
});

t.test('a batch of queries gives one result per query, equal to single searches', async (t) => {
  const dim = 16;
  const n = 3000;
  const data = clustered(n + 20, dim, 20, 5);
  await store.createDataset('b', { dim, shards: 3, M: 8, efConstruction: 32 });
  await store.insert('b', Array.from({ length: n }, (_, i) => i), data.subarray(0, n * dim));
  const queries = data.subarray(n * dim);
  const singles: SearchHits[] = [];
  for (let q = 0; q < 20; q++) singles.push(await store.search('b', queries.subarray(q * dim, (q + 1) * dim), 7));
  const flat = await searchMany(store, 'b', queries, 7);
  const nested = await searchMany(store, 'b', Array.from({ length: 20 }, (_, q) => Array.from(queries.subarray(q * dim, (q + 1) * dim))), 7);
  t.equal(flat.length, 20);
  t.equal(nested.length, 20);
  for (let q = 0; q < 20; q++) {
    t.same(flat[q]!.ids, singles[q]!.ids, `flat batch, query ${q}: ids`);
    t.same(Array.from(flat[q]!.distances), Array.from(singles[q]!.distances), `flat batch, query ${q}: distances`);
    t.same(nested[q]!.ids, singles[q]!.ids, `array batch, query ${q}: ids`);
    t.equal(singles[q]!.ids.length, 7, `query ${q}: seven hits`);
    t.ok(recallAt(singles[q]!.ids, bruteForce(data, dim, queries, q * dim, 7), 7) >= 0.7, `query ${q}: the hits are near neighbours`);
  }
  // a single query as number[] is one result, not a batch
  const one = await store.search('b', Array.from(queries.subarray(0, dim)), 7);
  t.same(one.ids, singles[0]!.ids);
  t.notOk(Array.isArray(one), 'one query: one SearchHits');
});

t.test('concurrent searches (coalesced into shared tasks) each get their own answer', async (t) => {
  const dim = 8;
  const n = 2000;
  const data = clustered(n + 60, dim, 12, 13);
  const queries = data.subarray(n * dim);
  await store.createDataset('c1', { dim, shards: 2, M: 8, efConstruction: 32 });
  await store.createDataset('c2', { dim, shards: 3, M: 8, efConstruction: 32 });
  await store.createDataset('tiny', { dim, shards: 2 });
  const ids = Array.from({ length: n }, (_, i) => i);
  await store.insert('c1', ids, data.subarray(0, n * dim));
  // c2 holds the same vectors under other ids
  await store.insert('c2', ids.map((i) => i + 1_000_000), data.subarray(0, n * dim));
  await store.insert('tiny', [1, 2, 3], [Array.from(queries.subarray(0, dim)), Array.from(queries.subarray(dim, 2 * dim)), Array.from(queries.subarray(2 * dim, 3 * dim))]);
  const q = (i: number): Float32Array => queries.subarray(i * dim, (i + 1) * dim);
  // one at a time first
  const expect: { name: string; i: number; k: number; ef?: number; hits: SearchHits }[] = [];
  for (let i = 0; i < 60; i++) {
    const name = i % 3 === 0 ? 'c1' : i % 3 === 1 ? 'c2' : 'tiny';
    const k = [1, 5, 10][i % 3]!;
    const ef = i % 4 === 0 ? 100 : undefined;
    expect.push({ name, i, k, ef, hits: await store.search(name, q(i), k, ef === undefined ? {} : { ef }) });
  }
  // then all in one turn of the event loop
  const together = await Promise.all(expect.map((e) => store.search(e.name, q(e.i), e.k, e.ef === undefined ? {} : { ef: e.ef })));
  for (let j = 0; j < expect.length; j++) {
    const e = expect[j]!;
    t.same(together[j]!.ids, e.hits.ids, `${e.name} query ${e.i} k ${e.k}: the same ids as alone`);
    t.same(Array.from(together[j]!.distances), Array.from(e.hits.distances), `${e.name} query ${e.i}: the same distances`);
    t.equal(together[j]!.ids.length, e.name === 'tiny' ? Math.min(3, e.k) : e.k, 'k hits, or all there are');
  }
  // c2 is c1 under other ids: the same neighbours, shifted
  for (let j = 0; j + 1 < expect.length; j += 3) {
    const a = together[j]!;
    const b = await store.search('c2', q(expect[j]!.i), expect[j]!.k);
    t.same(Array.from(b.distances), Array.from(a.distances), 'c2 finds what c1 finds');
  }
  await Promise.all(['c1', 'c2', 'tiny'].map((name) => store.dropDataset(name)));
});

t.test('get: vectors in input order, undefined for missing ids', async (t) => {
  const dim = 4;
  await store.createDataset('g', { dim, shards: 3, M: 8 });
  const vec = (i: number): number[] => [i, i + 0.5, -i, i * 2];
  const ids = Array.from({ length: 60 }, (_, i) => i * 3);
  await store.insert('g', ids, ids.map(vec));
  const ask: Id[] = [57, 1, 0, 999, 177, 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 30n, 2, 57];
  const got = await store.get('g', ask);
  t.equal(got.length, ask.length, 'one entry per id asked');
  ask.forEach((id, i) => {
    const n = Number(id);
    const present = typeof id !== 'string' && n % 3 === 0 && n < 180;
    if (present) t.same(Array.from(got[i]!), vec(n), `get[${i}] (${String(id)}) is its vector`);
    else t.equal(got[i], undefined, `get[${i}] (${String(id)}) is missing`);
  });
  t.ok(got[0] instanceof Float32Array);
  t.not(got[0], got[8], 'a repeated id gets its own copy');
  t.same(await store.get('g', []), [], 'no ids, no vectors');
});

t.test('upsert: an existing id is replaced and the count stays', async (t) => {
  const dim = 8;
  const n = 500;
  const data = clustered(n, dim, 10, 9);
  await store.createDataset('u', { dim, M: 8, efConstruction: 32 });
  await store.insert('u', Array.from({ length: n }, (_, i) => i), data);
  t.equal(await store.count('u'), n);
  const fresh = [[9, 9, 9, 9, 9, 9, 9, 9], [-9, -9, -9, -9, -9, -9, -9, -9]];
  t.same(await store.insert('u', [17, 400n], fresh), { inserted: 2 });
  t.equal(await store.count('u'), n, 'count unchanged after replacing two vectors');
  const got = await store.get('u', [17, 400]);
  t.same(Array.from(got[0]!), fresh[0]);
  t.same(Array.from(got[1]!), fresh[1]);
  const near = await store.search('u', fresh[0]!, 1);
  t.same(near.ids, [17], 'the new vector is found under the old id');
  t.equal(near.distances[0], 0);
  const old = await store.search('u', data.subarray(17 * dim, 18 * dim), 3);
  t.notOk(old.ids.includes(17) && old.distances[old.ids.indexOf(17)] === 0, 'the old vector of 17 is gone');
  const info = await store.datasetInfo('u');
  t.equal(info.count, n);
});

t.test('UUID and bigint ids round-trip through the workers', async (t) => {
  const dim = 4;
  await store.createDataset('ids', { dim, shards: 4, M: 8 });
  const given: Id[] = [
    '123e4567-e89b-12d3-a456-426614174000',
    'F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6',
    '0123456789abcdef0123456789abcdef',
    '00000000-0000-0000-0000-000000000000',
    0,
    Number.MAX_SAFE_INTEGER,
    2n ** 53n,
    2n ** 64n - 1n,
    123n,
    4294967296,
  ];
  // how each id comes back: UUIDs lowercase and hyphenated, integers below 2^53 as numbers
  const canonical: Id[] = [
    '123e4567-e89b-12d3-a456-426614174000',
    'f81d4fae-7dec-11d0-a765-00a0c91e6bf6',
    '01234567-89ab-cdef-0123-456789abcdef',
    '00000000-0000-0000-0000-000000000000',
    0,
    Number.MAX_SAFE_INTEGER,
    2n ** 53n,
    2n ** 64n - 1n,
    123,
    4294967296,
  ];
  const vectors = given.map((_, i) => [i * 10, 1, 0, -i]);
  await store.insert('ids', given, vectors);
  t.equal(await store.count('ids'), given.length, 'UUID 0 and integer 0 are different ids');
  for (let i = 0; i < given.length; i++) {
    const hit = await store.search('ids', vectors[i]!, 1);
    t.same(hit.ids, [canonical[i]], `search finds ${String(given[i])} as ${String(canonical[i])}`);
    t.equal(typeof hit.ids[0], typeof canonical[i]);
  }
  const got = await store.get('ids', canonical);
  got.forEach((v, i) => t.same(Array.from(v ?? []), vectors[i], `get by canonical form of ${String(given[i])}`));
  t.same(await store.delete('ids', [2n ** 64n - 1n, 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 123]), { deleted: 3 });
  t.equal(await store.count('ids'), given.length - 3);
  t.same((await store.get('ids', [2n ** 64n - 1n]))[0], undefined);
});

t.test('Symbol.asyncDispose closes the store', async (t) => {
  const before = osThreads();
  let kept: Store | undefined;
  {
    await using store = await Store.open({ threads: 2 });
    kept = store;
    await store.createDataset('x', { dim: 2 });
    await store.insert('x', [1], [[1, 2]]);
    t.equal(await store.count('x'), 1);
    t.ok(osThreads() >= before + 2, 'two worker threads while open');
  }
  const err = await kept.count('x').then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof QuiverError, 'a call after dispose rejects with a QuiverError');
  t.equal((err as QuiverError).code, 'QUIVER_ERR_CLOSED');
  t.same(await kept.close().then((r) => typeof r.durationMs), 'number', 'close after dispose resolves (idempotent)');
  const end = Date.now() + 3000;
  while (osThreads() > before && Date.now() < end) await sleep(50);
  t.equal(osThreads(), before, 'the worker threads are gone');
});
