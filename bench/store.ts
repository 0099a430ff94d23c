/**
 * bench:store — does the Store scale with threads?
 *
 *   npm run bench:store -- [--n 100000] [--json FILE] [--small]
 *
 * On one generated 100,000 x 128 clustered set: insert throughput with
 * concurrent batches, then search QPS and p50/p99 latency under concurrent
 * load (CONCURRENCY callers each issuing single-query searches back to
 * back), for three layouts, each in its own process, one after the other:
 *   1 thread, 1 shard     (the default layout for threads: 1)
 *   1 thread, 2 shards    (the data layout of the 2-thread run, on one core)
 *   2 threads, 2 shards   (the default layout for threads: 2)
 * Thread scaling (insertScaling, searchScaling) compares the last two: the
 * same shards, on one core or two. Scatter-gather makes a query cost one
 * search per shard, so against 1 thread / 1 shard the search gain is smaller;
 * that ratio is printed too.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { K, bruteForce, generate, generatedSpecs } from './datasets.js';
import { reportResult, runChild } from './lib/child.js';
import { table } from './lib/table.js';

const CONCURRENCY = 16;
const INSERT_BATCH = 2_000;
const MARK = '@@quiver-store-result@@ ';

interface Row {
  threads: number;
  shards: number;
  n: number;
  insertSeconds: number;
  insertPerSecond: number;
  searchQps: number;
  p50Ms: number;
  p99Ms: number;
  recallAt10: number;
}

const { values } = parseArgs({
  options: {
    n: { type: 'string' },
    json: { type: 'string' },
    small: { type: 'boolean', default: false },
    child: { type: 'string' },
    shards: { type: 'string' },
    seconds: { type: 'string' },
  },
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function child(threads: number, shards: number, n: number, seconds: number): Promise<Row> {
  const { Store } = await import('../host/index.js');
  const spec = { ...generatedSpecs(false)[0]!, n, nq: 1_000 };
  const { base, queries } = generate(spec);
  const dim = spec.dim;
  const store = await Store.open({ threads });
  await store.createDataset('bench', { dim, shards, M: 16, efConstruction: 200 });

  // insert: up to 2 batches per thread in flight
  const t0 = performance.now();
  let next = 0;
  const inserter = async (): Promise<void> => {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + INSERT_BATCH);
      const ids = Array.from({ length: next - from }, (_, i) => from + i);
      await store.insert('bench', ids, base.slice(from * dim, next * dim));
    }
  };
  await Promise.all(Array.from({ length: threads * 2 }, inserter));
  const insertSeconds = (performance.now() - t0) / 1000;

  // search under concurrent load for `seconds`
  const latencies: number[] = [];
  const nq = queries.length / dim;
  let q = 0;
  const until = performance.now() + seconds * 1000;
  const searcher = async (): Promise<void> => {
    while (performance.now() < until) {
      const i = q++ % nq;
      const started = performance.now();
      await store.search('bench', queries.subarray(i * dim, (i + 1) * dim), 10, { ef: 64 });
      latencies.push(performance.now() - started);
    }
  };
  const s0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, searcher));
  const searchSeconds = (performance.now() - s0) / 1000;

  // a recall check so a fast-but-wrong store cannot look good
  let hits = 0;
  const sample = Math.min(nq, 100);
  const truth = bruteForce(base, queries.subarray(0, sample * dim), dim, 'l2');
  for (let i = 0; i < sample; i++) {
    const exact = new Set(truth.subarray(i * K, (i + 1) * K));
    const found = (await store.search('bench', queries.subarray(i * dim, (i + 1) * dim), K, { ef: 64 })).ids;
    for (const id of found) if (exact.has(id as number)) hits++;
  }
  await store.close();
  latencies.sort((a, b) => a - b);
  return {
    threads, shards, n, insertSeconds, insertPerSecond: n / insertSeconds,
    searchQps: latencies.length / searchSeconds,
    p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99),
    recallAt10: hits / (sample * 10),
  };
}

if (values.child !== undefined) {
  const row = await child(Number(values.child), Number(values.shards), Number(values.n), Number(values.seconds));
  reportResult(MARK, row);
} else {
  const n = Number(values.n ?? (values.small ? 10_000 : 100_000));
  const seconds = values.small ? 2 : 10;
  const rows: Row[] = [];
  for (const [threads, shards] of [[1, 1], [1, 2], [2, 2]] as const) {
    process.stderr.write(`[store] ${threads} thread(s), ${shards} shard(s): inserting ${n} vectors, then searching for ${seconds} s...\n`);
    const out = await runChild<Row>({
      file: fileURLToPath(import.meta.url),
      args: ['--child', String(threads), '--shards', String(shards), '--n', String(n), '--seconds', String(seconds)],
      marker: MARK,
      verbose: true,
    });
    if (!out.ok) throw new Error(`child for ${threads} thread(s), ${shards} shard(s) failed: ${out.error}`);
    rows.push(out.value);
  }
  const [single, oneCore, two] = rows as [Row, Row, Row];
  const insertScaling = two.insertPerSecond / oneCore.insertPerSecond;
  const searchScaling = two.searchQps / oneCore.searchQps;
  const head = ['threads', 'shards', 'insert s', 'vectors/s', 'search QPS', 'p50 ms', 'p99 ms', 'recall@10'];
  const cells = rows.map((r) => [String(r.threads), String(r.shards), r.insertSeconds.toFixed(1), Math.round(r.insertPerSecond).toLocaleString('en-US'),
    Math.round(r.searchQps).toLocaleString('en-US'), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.recallAt10.toFixed(3)]);
  console.log(`\nStore on ${n} x 128 clustered (M=16, efConstruction=200, ef=64, ${CONCURRENCY} concurrent searchers)`);
  console.log(table(head, cells));
  console.log(`\n2 threads / 1 thread, same 2 shards: insert ${insertScaling.toFixed(2)}x (target >= 1.7), search ${searchScaling.toFixed(2)}x (target >= 1.6)`);
  console.log(`2 threads, 2 shards / 1 thread, 1 shard: insert ${(two.insertPerSecond / single.insertPerSecond).toFixed(2)}x, search ${(two.searchQps / single.searchQps).toFixed(2)}x`);
  if (values.json !== undefined) {
    writeFileSync(values.json, JSON.stringify({ rows, insertScaling, searchScaling }, null, 2));
  }
}
