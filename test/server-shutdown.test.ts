// Graceful shutdown of a real `quiver serve` child: SIGTERM under load lets
// accepted requests finish and exits 0; a hung worker makes it exit 1 after
// the shutdown timeout with a warning; a second signal exits at once.
import t from 'tap';
import { call, rng, startServer, type ServerChild } from './helpers/server.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// start the three children together: each takes a few seconds under the test loaders
const [graceful, hung, impatient] = await Promise.all([
  startServer(['--threads', '2', '--shutdown-timeout', '20000']),
  startServer(['--threads', '1', '--shutdown-timeout', '1500'], { QUIVER_TEST_HOOKS: '1' }),
  startServer(['--threads', '1', '--shutdown-timeout', '30000'], { QUIVER_TEST_HOOKS: '1' }),
]);
t.teardown(async () => {
  for (const s of [graceful, hung, impatient]) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
});

async function fill(server: ServerChild, name: string, dim: number, n: number): Promise<void> {
  const created = await call(`${server.url}/collections/${name}`, 'PUT', { vectors: { size: dim, distance: 'Euclid' } });
  if (created.status !== 200) throw new Error(created.text);
  const r = rng(3);
  for (let from = 0; from < n; from += 2000) {
    const ids = Array.from({ length: Math.min(2000, n - from) }, (_, i) => from + i);
    const up = await call(`${server.url}/collections/${name}/points?wait=true`, 'PUT', { batch: { ids, vectors: ids.map(() => Array.from({ length: dim }, r)) } });
    if (up.status !== 200) throw new Error(up.text);
  }
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => {
    throw new Error(`${what} did not happen within ${ms} ms`);
  })]);
}

t.test('SIGTERM under load: accepted requests complete, exit 0', async (t) => {
  const dim = 64;
  await fill(graceful, 'load', dim, 4000);
  const r = rng(9);
  const body = JSON.stringify({ searches: Array.from({ length: 16 }, () => ({ query: Array.from({ length: dim }, r), limit: 10, params: { hnsw_ef: 400 } })) });
  interface Outcome { started: number; ended: number; status?: number; error?: string }
  const outcomes: Outcome[] = [];
  let signalAt = Infinity;
  const inFlight = new Set<number>();
  const loop = async (): Promise<void> => {
    for (;;) {
      const started = performance.now();
      inFlight.add(started);
      try {
        const res = await fetch(`${graceful.url}/collections/load/points/query/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const json = (await res.json()) as { result?: { points: unknown[] }[] };
        outcomes.push({ started, ended: performance.now(), status: res.status });
        if (res.status === 200 && json.result?.length !== 16) outcomes[outcomes.length - 1]!.error = 'short result';
        if (res.status !== 200) return;
      } catch (err) {
        outcomes.push({ started, ended: performance.now(), error: String((err as { cause?: { code?: string } }).cause?.code ?? err) });
        return;
      } finally {
        inFlight.delete(started);
      }
      if (started > signalAt) return;
    }
  };
  const loops = Array.from({ length: 6 }, loop);
  await sleep(1500);
  // signal while a request has been in flight long enough to be surely
  // accepted (concurrent searches are batched, so requests move in step)
  while (![...inFlight].some((s) => performance.now() - s >= 60)) await sleep(2);
  signalAt = performance.now();
  graceful.proc.kill('SIGTERM');
  const exit = await within(graceful.exited, 25_000, 'exit after SIGTERM');
  await Promise.all(loops);

  const took = outcomes.filter((o) => o.status === 200).map((o) => o.ended - o.started).sort((a, b) => a - b);
  t.comment(`${outcomes.length} requests; 200s took ${Math.round(took[0] ?? 0)}..${Math.round(took[took.length - 1] ?? 0)} ms, median ${Math.round(took[took.length >> 1] ?? 0)} ms`);
  t.equal(exit.code, 0, 'exit code 0');
  t.match(graceful.stderr(), /SIGTERM: shutting down/);
  t.match(graceful.stderr(), /stopped cleanly/);
  const before = outcomes.filter((o) => o.started < signalAt - 50);
  t.ok(before.length >= 6, `requests sent before the signal: ${before.length}`);
  t.same(before.filter((o) => o.status !== 200 || o.error !== undefined), [], 'every request accepted before the signal completed with 200 (no reset)');
  const spanning = before.filter((o) => o.ended > signalAt);
  t.ok(spanning.length >= 1, `requests in flight at the signal finished after it: ${spanning.length}`);
  const after = outcomes.filter((o) => o.started >= signalAt);
  t.ok(after.every((o) => o.status === 503 || o.status === 200 || /ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed/.test(o.error ?? '')),
    `requests sent after the signal are refused, not broken: ${JSON.stringify(after.map((o) => o.status ?? o.error))}`);
});

t.test('a hung worker: exit 1 after the shutdown timeout, naming what still ran', async (t) => {
  await fill(hung, 'h', 4, 10);
  const hang = await call(`${hung.url}/_test/hang`, 'POST', {});
  t.equal(hang.status, 202, 'the test hook is mounted with QUIVER_TEST_HOOKS=1');
  const stuck = call(`${hung.url}/collections/h/points/query`, 'POST', { query: [1, 2, 3, 4] }).then((r) => r.status, (err: Error) => err.message);
  await sleep(300);
  const started = performance.now();
  hung.proc.kill('SIGTERM');
  const exit = await within(hung.exited, 15_000, 'exit after SIGTERM with a hung worker');
  const took = performance.now() - started;
  t.equal(exit.code, 1, 'exit code 1');
  t.ok(took >= 1400, `waited for the shutdown timeout (${Math.round(took)} ms)`);
  t.match(hung.stderr(), /warning: shutdown timed out after 1500 ms/);
  t.match(hung.stderr(), /Still running: POST \/collections\/h\/points\/query \(running \d+ ms\)/);
  t.ok(await within(stuck, 5000, 'the hung request settling'), 'the hung request was answered or dropped, not left hanging');
});

t.test('a second signal exits at once', async (t) => {
  await fill(impatient, 'i', 4, 10);
  await call(`${impatient.url}/_test/hang`, 'POST', {});
  void call(`${impatient.url}/collections/i/points/query`, 'POST', { query: [1, 2, 3, 4] }).catch(() => {});
  await sleep(300);
  const started = performance.now();
  impatient.proc.kill('SIGTERM');
  await sleep(300);
  t.equal(impatient.proc.exitCode, null, 'still draining after the first signal (timeout 30 s)');
  impatient.proc.kill('SIGTERM');
  const exit = await within(impatient.exited, 5000, 'exit after the second signal');
  t.equal(exit.code, 143, 'exit code 128 + SIGTERM');
  t.ok(performance.now() - started < 5000);
  t.match(impatient.stderr(), /SIGTERM again: exiting now/);
});
