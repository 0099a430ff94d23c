import t from 'tap';
import fc from 'fast-check';
import { Registry, register } from 'prom-client';
import { Store, type SearchHits } from '../host/index.js';
import { clustered, rng } from './helpers/data.js';

// The Prometheus metrics against what the store reports and what the test
// did: a scripted sequence, then one scrape of store.metrics(), parsed here.

const SLAB = 65_536;
const DIM = 32;
const PARAMS = { dim: DIM, M: 16, efConstruction: 32, shards: 2 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition format: one sample per non-comment line. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line);
    if (m === null) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = m[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** Samples of `name` whose labels include `labels`. */
function select(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one value of `name` with `labels`; undefined when absent. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = select(samples, name, labels);
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

const quiverNames = (reg: Registry): string[] => reg.getMetricsAsArray().map((m) => m.name).filter((n) => n.startsWith('quiver_'));

t.test('metrics after a scripted sequence equal the store\'s own figures and the calls made', async (t) => {
  const registry = new Registry();
  const store = await Store.open({ threads: 2, registry, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  t.equal(store.registry, registry, 'the store uses the registry passed in');
  const events: { dataset: string; shard: number; trigger: string; result: string; reclaimedBytes: number }[] = [];
  store.on('compaction', (e: (typeof events)[number]) => events.push(e));

  const data = clustered(12_000, DIM, 30, 5);
  const rows = (from: number, n: number): Float32Array => data.subarray(from * DIM, (from + n) * DIM);
  const ids = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
  const inserted = { one: 0, two: 0 };
  const searches = { one: 0, two: 0 };

  await store.createDataset('one', PARAMS);
  await store.createDataset('two', PARAMS);
  for (let b = 0; b < 3; b++) inserted.one += (await store.insert('one', ids(b * 2000, 2000), rows(b * 2000, 2000))).inserted;
  inserted.one += (await store.insert('one', ids(0, 100), rows(6000, 100))).inserted; // upserts count as inserts
  for (let b = 0; b < 2; b++) inserted.two += (await store.insert('two', ids(b * 3000, 3000), rows(6000 + b * 3000, 3000))).inserted;
  t.same(inserted, { one: 6100, two: 6000 });

  const r = rng(3);
  const delOne = ids(0, 6000).filter(() => r() < 0.25);
  const delTwo = ids(0, 6000).filter(() => r() < 0.4);
  t.same(await store.delete('one', delOne), { deleted: delOne.length });
  t.same(await store.delete('two', delTwo), { deleted: delTwo.length });

  // one manual compaction of 'one'; the scheduler then finds only 'two' due
  await store.compact('one');
  t.equal(await store.runCompactionScheduler(), 2, 'the scheduler compacted both shards of \'two\', and nothing else');
  // a few tombstones left in 'one' (under the 20% that makes a shard due)
  const survivorsOne = ids(0, 6000).filter((i) => !delOne.includes(i));
  t.same(await store.delete('one', survivorsOne.slice(0, 150)), { deleted: 150 });

  // searches: single, batched (one call), concurrent (coalesced into one
  // task per shard, still one observation per call); a rejected call is no search
  for (let i = 0; i < 5; i++) {
    await store.search('one', rows(7000 + i, 1), 10);
    searches.one++;
  }
  const batch = (await store.search('two', rows(7100, 10), 10)) as unknown as SearchHits[];
  t.equal(batch.length, 10);
  searches.two++;
  await Promise.all(Array.from({ length: 8 }, (_, i) => store.search('two', rows(7200 + i, 1), 5)));
  searches.two += 8;
  await t.rejects(store.search('two', rows(7300, 1), 0), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });

  const stats = await store.stats();
  const samples = parse(await store.metrics());
  const byName = (n: string): (typeof stats.datasets)[number] => stats.datasets.find((d) => d.name === n)!;

  for (const name of ['one', 'two'] as const) {
    const ds = byName(name);
    const live = ds.shardStats.reduce((a, s) => a + s.liveNodes, 0);
    const deleted = ds.shardStats.reduce((a, s) => a + s.deletedNodes, 0);
    t.equal(value(samples, 'quiver_hnsw_nodes', { dataset: name, state: 'live' }), live, `${name}: live nodes = stats (${live})`);
    t.equal(value(samples, 'quiver_hnsw_nodes', { dataset: name, state: 'deleted' }), deleted, `${name}: deleted nodes = stats (${deleted})`);
    ds.shardStats.forEach((s, shard) => {
      const labels = { dataset: name, shard: String(shard) };
      const committed = value(samples, 'quiver_arena_memory_bytes', { ...labels, state: 'committed' });
      const liveBytes = value(samples, 'quiver_arena_memory_bytes', { ...labels, state: 'live' });
      t.ok(committed !== undefined && Math.abs(committed - s.committedBytes) <= SLAB,
        `${name}/${shard}: committed ${committed} within a slab of stats ${s.committedBytes}`);
      t.ok(liveBytes !== undefined && Math.abs(liveBytes - s.liveBytes) <= SLAB, `${name}/${shard}: live bytes ${liveBytes} ~ stats ${s.liveBytes}`);
      const frag = value(samples, 'quiver_slab_fragmentation_ratio', labels);
      t.ok(frag !== undefined && Math.abs(frag - s.reclaimableBytes / s.committedBytes) < 0.01, `${name}/${shard}: fragmentation ratio ${frag}`);
    });
    t.equal(value(samples, 'quiver_insert_vectors_total', { dataset: name }), inserted[name], `${name}: inserted ${inserted[name]}`);
    t.equal(value(samples, 'quiver_search_duration_seconds_count', { dataset: name }), searches[name], `${name}: ${searches[name]} searches`);
  }
  t.equal(byName('one').deleted, 150, 'the tombstones the metric reports are really there');

  // compactions: once per shard, with the right trigger
  const compactions = select(samples, 'quiver_compaction_events_total').filter((s) => s.value > 0)
    .map((s) => `${s.labels.dataset}/${s.labels.trigger}/${s.labels.result}=${s.value}`).sort();
  t.same(compactions, ['one/manual/ok=2', 'two/auto/ok=2'], 'quiver_compaction_events_total: 2 manual for one, 2 auto for two');
  t.same(events.map((e) => `${e.dataset}/${e.shard}/${e.trigger}/${e.result}`).sort(),
    ['one/0/manual/ok', 'one/1/manual/ok', 'two/0/auto/ok', 'two/1/auto/ok'], 'the same four as events');
  t.equal(value(samples, 'quiver_compaction_duration_seconds_count'), 4, 'one duration observation per compaction');
  const reclaimed = events.reduce((a, e) => a + e.reclaimedBytes, 0);
  t.equal(value(samples, 'quiver_reclaimed_bytes_total'), reclaimed, `quiver_reclaimed_bytes_total = the events' ${reclaimed} bytes`);

  t.equal(value(samples, 'quiver_worker_threads'), 2, 'quiver_worker_threads = threads');
  t.equal(stats.threads, 2);
  t.equal(value(samples, 'quiver_memory_limit_rejections_total'), 0);
  t.equal(value(samples, 'quiver_tuner_memory_limit_bytes'), 0, 'no limit set');
  const resident = value(samples, 'process_resident_memory_bytes');
  const rssNow = process.memoryUsage.rss();
  t.ok(resident !== undefined && resident > 0.5 * rssNow && resident < 2 * rssNow,
    `Node's default metrics: process_resident_memory_bytes ${resident} (RSS ${rssNow})`);
  t.ok(value(samples, 'nodejs_heap_size_used_bytes') !== undefined, 'nodejs_heap_size_used_bytes present');

  // a drop: its committed bytes are counted as reclaimed, its series go
  await sleep(300); // past the scrape snapshot's reuse window
  const committedTwo = byName('two').committedBytes;
  await store.dropDataset('two');
  const afterDrop = parse(await store.metrics());
  t.equal(value(afterDrop, 'quiver_reclaimed_bytes_total'), reclaimed + committedTwo, 'a drop adds the dataset\'s committed bytes to reclaimed');
  t.same(select(afterDrop, 'quiver_hnsw_nodes', { dataset: 'two' }), [], 'no node series for the dropped dataset');
  t.same(select(afterDrop, 'quiver_arena_memory_bytes', { dataset: 'two' }), [], 'no arena series for the dropped dataset');
  t.equal(value(afterDrop, 'quiver_hnsw_nodes', { dataset: 'one', state: 'live' }), byName('one').count);

  // the caller's registry has it all; prom-client's global one nothing of quiver
  t.ok(quiverNames(registry).includes('quiver_hnsw_nodes'), 'the user-supplied registry holds the quiver metrics');
  t.same(quiverNames(register), [], 'the global default registry holds no quiver_ metric');
  t.notMatch(await register.metrics(), /quiver_/, 'nor does its exposition text');
});

t.test('a store opened without a registry does not touch the global one either', async (t) => {
  const store = await Store.open({ threads: 1, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  await store.createDataset('x', { dim: 4, shards: 1 });
  await store.insert('x', [1, 2], [[1, 2, 3, 4], [4, 3, 2, 1]]);
  await store.search('x', [1, 2, 3, 4], 1);
  const samples = parse(await store.metrics());
  t.equal(value(samples, 'quiver_insert_vectors_total', { dataset: 'x' }), 2);
  t.ok(store.registry instanceof Registry && store.registry !== register, 'a registry of its own');
  t.same(quiverNames(register), [], 'the global default registry holds no quiver_ metric');
});

t.test('a scrape right after another reflects the writes made in between', async (t) => {
  const store = await Store.open({ threads: 1, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  await store.createDataset('s', { dim: 4, shards: 1 });
  await store.insert('s', [1, 2], [[1, 2, 3, 4], [4, 3, 2, 1]]);
  const first = parse(await store.metrics());
  t.equal(value(first, 'quiver_hnsw_nodes', { dataset: 's', state: 'live' }), 2);
  await store.insert('s', [3, 4], [[1, 1, 1, 1], [2, 2, 2, 2]]);
  await store.delete('s', [1]);
  const second = parse(await store.metrics()); // within a few ms of the first
  t.equal(value(second, 'quiver_insert_vectors_total', { dataset: 's' }), 4, 'the counter has the two new inserts');
  t.equal(value(second, 'quiver_hnsw_nodes', { dataset: 's', state: 'live' }), 3, 'live nodes: 4 inserted, 1 deleted');
  t.equal(value(second, 'quiver_hnsw_nodes', { dataset: 's', state: 'deleted' }), 1, 'deleted nodes: the one just deleted');
});

type Op =
  | { kind: 'insert'; n: number; upserts: number }
  | { kind: 'delete'; share: number }
  | { kind: 'search'; n: number }
  | { kind: 'compact' }
  | { kind: 'schedule' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('insert' as const), n: fc.integer({ min: 1, max: 400 }), upserts: fc.integer({ min: 0, max: 20 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), share: fc.double({ min: 0, max: 0.6, noNaN: true }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('search' as const), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'schedule' as const }) },
);

// Random scripts against a model of what they did: after each script the
// scrape must say exactly that. Each run has a dataset of its own (counters
// keep the series of dropped datasets), and waits out the scrape snapshot's
// reuse window before scraping, so only this property is tested here.
t.test('property: after any script of inserts, deletes, searches and compactions the metrics equal the model', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0, minSlots: 50 } });
  t.teardown(() => store.close());
  const events: { dataset: string; trigger: string; result: string }[] = [];
  store.on('compaction', (e: (typeof events)[number]) => events.push(e));
  const pool = clustered(4000, 8, 10, 77);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 3 }), async (ops, shards) => {
      const name = `p${run++}`;
      await store.createDataset(name, { dim: 8, M: 8, efConstruction: 16, shards });
      const live = new Set<number>();
      let next = 0;
      let inserted = 0;
      let searches = 0;
      let manual = 0;
      let auto = 0;
      const r = rng(run);
      for (const op of ops) {
        if (op.kind === 'insert') {
          const upserts = [...live].slice(0, op.upserts);
          const ids = [...upserts, ...Array.from({ length: op.n }, (_, i) => next + i)];
          next += op.n;
          const vectors = new Float32Array(ids.length * 8);
          ids.forEach((id, j) => vectors.set(pool.subarray((id % 4000) * 8, (id % 4000 + 1) * 8), j * 8));
          inserted += (await store.insert(name, ids, vectors)).inserted;
          ids.forEach((id) => live.add(id));
        } else if (op.kind === 'delete') {
          const doomed = [...live].filter(() => r() < op.share);
          await store.delete(name, doomed);
          doomed.forEach((id) => live.delete(id));
        } else if (op.kind === 'search') {
          await Promise.all(Array.from({ length: op.n }, (_, i) => store.search(name, pool.subarray(i * 8, i * 8 + 8), 3)));
          searches += op.n;
        } else if (op.kind === 'compact') {
          await store.compact(name);
          manual += shards;
        } else {
          auto += await store.runCompactionScheduler();
        }
      }
      await sleep(300);
      const samples = parse(await store.metrics());
      const shardStats = (await store.stats()).datasets.find((d) => d.name === name)!.shardStats;
      const mine = events.filter((e) => e.dataset === name);
      const got = {
        live: value(samples, 'quiver_hnsw_nodes', { dataset: name, state: 'live' }),
        deleted: value(samples, 'quiver_hnsw_nodes', { dataset: name, state: 'deleted' }),
        inserted: value(samples, 'quiver_insert_vectors_total', { dataset: name }) ?? 0,
        searches: value(samples, 'quiver_search_duration_seconds_count', { dataset: name }) ?? 0,
        manual: value(samples, 'quiver_compaction_events_total', { dataset: name, trigger: 'manual', result: 'ok' }) ?? 0,
        auto: value(samples, 'quiver_compaction_events_total', { dataset: name, trigger: 'auto', result: 'ok' }) ?? 0,
        committed: select(samples, 'quiver_arena_memory_bytes', { dataset: name, state: 'committed' }).reduce((a, x) => a + x.value, 0),
      };
      const want = {
        live: live.size,
        deleted: shardStats.reduce((a, x) => a + x.deletedNodes, 0),
        inserted,
        searches,
        manual,
        auto,
        committed: shardStats.reduce((a, x) => a + x.committedBytes, 0),
      };
      await store.dropDataset(name);
      if (JSON.stringify(got) !== JSON.stringify(want) || mine.length !== manual + auto || shardStats.reduce((a, x) => a + x.liveNodes, 0) !== live.size) {
        throw new Error(`metrics ${JSON.stringify(got)}, model ${JSON.stringify(want)}, ${mine.length} compaction events`);
      }
    }),
    { numRuns: 12, seed: 20260127 },
  );
  t.pass('12 random scripts: the metrics equal the model');
});
