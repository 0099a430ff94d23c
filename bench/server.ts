/**
 * bench:server — what does the HTTP layer cost?
 *
 *   npm run bench:server -- [--json FILE] [--small] [--seconds S] [--connections C]
 *
 * On one generated 100,000 x 128 clustered set (--small: 10,000), L2,
 * M=16, efConstruction=200, ef=64, k=10: search requests per second and
 * p50/p99 latency
 *   - over HTTP: autocannon (in this process) with C connections, each
 *     sending POST /collections/x/points/query back to back, bodies cycling
 *     through 1,000 fixed query vectors;
 *   - through the library: Store.search in the server's own process, C
 *     callers issuing single-query searches back to back (what bench:store
 *     measures), with no HTTP;
 * for 1 and 2 worker threads (one shard per thread), each in its own child
 * process that builds the store, serves it with buildServer, and runs the
 * library measurement after the HTTP one. The ratio HTTP/library is the
 * share of throughput left once JSON, Fastify and the socket are in the way.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generate, generatedSpecs } from './datasets.js';
import { table } from './lib/table.js';

const K = 10;
const EF = 64;
const QUERY_BODIES = 1_000;

interface Measure {
  qps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
}

interface Row {
  threads: number;
  n: number;
  api: 'http' | 'library';
  qps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
}

type ToChild = { type: 'library'; seconds: number; concurrency: number } | { type: 'exit' };
type FromChild =
  | { type: 'ready'; url: string; bodies: string[]; insertSeconds: number }
  | { type: 'library'; result: Measure };

const { values } = parseArgs({
  options: {
    json: { type: 'string' },
    small: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    connections: { type: 'string' },
    child: { type: 'string' },
    n: { type: 'string' },
  },
});

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

// ------------------------------------------------------------------ child

async function child(threads: number, n: number): Promise<void> {
  const { Store } = await import('../host/index.js');
  const { buildServer } = await import('../host/server/app.js');
  const spec = { ...generatedSpecs(false)[0]!, n, nq: QUERY_BODIES };
  const { base, queries } = generate(spec);
  const dim = spec.dim;
  const store = await Store.open({ threads });
  await store.createDataset('x', { dim, shards: threads, M: 16, efConstruction: 200, ef: EF });
  const t0 = performance.now();
  let next = 0;
  const inserter = async (): Promise<void> => {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + 2_000);
      await store.insert('x', Array.from({ length: next - from }, (_, i) => from + i), base.slice(from * dim, next * dim));
    }
  };
  await Promise.all(Array.from({ length: threads * 2 }, inserter));
  const insertSeconds = (performance.now() - t0) / 1000;

  const app = buildServer(store);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const bodies = Array.from({ length: QUERY_BODIES }, (_, i) =>
    JSON.stringify({ query: Array.from(queries.subarray(i * dim, (i + 1) * dim)), limit: K, params: { hnsw_ef: EF } }));
  process.send!({ type: 'ready', url: `http://127.0.0.1:${port}`, bodies, insertSeconds } satisfies FromChild);

  process.on('message', (msg: ToChild) => {
    void (async () => {
      if (msg.type === 'exit') {
        await app.close();
        await store.close();
        process.exit(0);
      }
      // the library, same process, same concurrency, no HTTP
      const latencies: number[] = [];
      let q = 0;
      let errors = 0;
      const until = performance.now() + msg.seconds * 1000;
      const caller = async (): Promise<void> => {
        while (performance.now() < until) {
          const i = q++ % QUERY_BODIES;
          const started = performance.now();
          try {
            await store.search('x', queries.subarray(i * dim, (i + 1) * dim), K, { ef: EF });
          } catch {
            errors++;
          }
          latencies.push(performance.now() - started);
        }
      };
      const s0 = performance.now();
      await Promise.all(Array.from({ length: msg.concurrency }, caller));
      const seconds = (performance.now() - s0) / 1000;
      latencies.sort((a, b) => a - b);
      process.send!({
        type: 'library',
        result: { qps: latencies.length / seconds, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), requests: latencies.length, errors },
      } satisfies FromChild);
    })();
  });
}

// ------------------------------------------------------------------ parent

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;
// autocannon ships no types: load it as CommonJS with the shape used here
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

async function overHttp(url: string, bodies: string[], seconds: number, connections: number): Promise<Measure> {
  let i = 0;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [{
      method: 'POST',
      path: '/collections/x/points/query',
      headers: { 'content-type': 'application/json' },
      setupRequest: (req: Record<string, unknown>) => ({ ...req, body: bodies[i++ % bodies.length] }),
    }],
  });
  return {
    qps: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

function next<T extends FromChild['type']>(proc: ChildProcess, type: T): Promise<Extract<FromChild, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: FromChild): void => {
      if (msg.type !== type) return;
      proc.off('message', onMessage);
      proc.off('exit', onExit);
      resolve(msg as Extract<FromChild, { type: T }>);
    };
    const onExit = (code: number | null): void => reject(new Error(`bench child exited (${code}) before '${type}'`));
    proc.on('message', onMessage);
    proc.once('exit', onExit);
  });
}

async function parent(): Promise<void> {
  const n = Number(values.n ?? (values.small ? 10_000 : 100_000));
  const seconds = Number(values.seconds ?? (values.small ? 3 : 10));
  const connections = Number(values.connections ?? 16);
  const rows: Row[] = [];
  for (const threads of [1, 2]) {
    process.stderr.write(`[server] ${threads} thread(s): building ${n} x 128...\n`);
    const proc = fork(fileURLToPath(import.meta.url), ['--child', String(threads), '--n', String(n)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    try {
      const ready = await next(proc, 'ready');
      process.stderr.write(`[server] inserted in ${ready.insertSeconds.toFixed(1)} s; warm-up, then ${seconds} s over HTTP with ${connections} connections...\n`);
      await overHttp(ready.url, ready.bodies, Math.min(2, seconds), connections);
      const http = await overHttp(ready.url, ready.bodies, seconds, connections);
      rows.push({ threads, n, api: 'http', ...http });
      process.stderr.write(`[server] ${seconds} s through the library with ${connections} callers...\n`);
      proc.send({ type: 'library', seconds, concurrency: connections } satisfies ToChild);
      const lib = await next(proc, 'library');
      rows.push({ threads, n, api: 'library', ...lib.result });
      proc.send({ type: 'exit' } satisfies ToChild);
      await new Promise((r) => proc.once('exit', r));
    } finally {
      if (proc.exitCode === null) proc.kill();
    }
  }

  const head = ['threads', 'API', 'QPS', 'p50 ms', 'p99 ms', 'requests', 'errors', 'HTTP/library'];
  const cells = rows.map((r) => {
    const lib = rows.find((o) => o.threads === r.threads && o.api === 'library')!;
    return [String(r.threads), r.api === 'http' ? 'HTTP (query)' : 'library (search)', Math.round(r.qps).toLocaleString('en-US'),
      r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.requests.toLocaleString('en-US'), String(r.errors),
      r.api === 'http' ? `${(r.qps / lib.qps).toFixed(2)}x` : ''];
  });
  console.log(`\nSearch over HTTP vs the library, ${n.toLocaleString('en-US')} x 128 clustered (M=16, efConstruction=200, ef=${EF}, k=${K}, ${connections} concurrent, ${seconds} s each)`);
  console.log(table(head, cells));
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ n, seconds, connections, ef: EF, k: K, rows }, null, 2));
}

if (values.child !== undefined) await child(Number(values.child), Number(values.n));
else await parent();
