// Graceful shutdown of a real `quiver serve` child: SIGTERM under load lets
// accepted requests finish and exits 0; a hung worker makes it exit 1 after
// the shutdown timeout with a warning; a second signal exits at once.
//
// What the shutdown does, never how fast: a loaded machine stretches every
// duration (bench/lifecycle.ts measures close and abort delays); the
// deadlines of `within` only turn a hang into a failure.
import t from 'tap';
import { Agent, request } from 'node:http';
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

/**
 * POST `body` with `Expect: 100-continue`: the server answers "100 Continue"
 * once it has parsed the request head, which is when the request is its to
 * finish. `accepted` is called then, before the body goes out.
 */
function post(url: URL, body: string, agent: Agent, accepted: () => void): Promise<{ status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' } });
    req.on('continue', () => {
      accepted();
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

t.test('SIGTERM under load: accepted requests complete, exit 0', async (t) => {
  const dim = 64;
  await fill(graceful, 'load', dim, 4000);
  const r = rng(9);
  const body = JSON.stringify({ searches: Array.from({ length: 16 }, () => ({ query: Array.from({ length: dim }, r), limit: 10, params: { hnsw_ef: 400 } })) });
  const url = new URL(`${graceful.url}/collections/load/points/query/batch`);
  const agent = new Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  interface Outcome {
    sentAfterSignal: boolean;
    acceptedBeforeSignal: boolean;
    inFlightAtSignal: boolean;
    accepted: boolean;
    status?: number;
    error?: string;
  }
  const outcomes: Outcome[] = [];
  const inFlight = new Set<Outcome>();
  let signalled = false;
  const loop = async (): Promise<void> => {
    for (;;) {
      const o: Outcome = { sentAfterSignal: signalled, acceptedBeforeSignal: false, inFlightAtSignal: false, accepted: false };
      outcomes.push(o);
      inFlight.add(o);
      const res = await post(url, body, agent, () => {
        o.accepted = true;
        o.acceptedBeforeSignal = !signalled;
      });
      inFlight.delete(o);
      Object.assign(o, res.error === undefined ? { status: res.status } : { error: res.error });
      if (res.status === 200 && (JSON.parse(res.body!) as { result?: unknown[] }).result?.length !== 16) o.error = 'short result';
      if (res.status !== 200 || o.sentAfterSignal) return;
    }
  };
  const loops = Array.from({ length: 6 }, loop);
  await sleep(1500);
  // signal while the server has accepted a request it has not answered yet
  while (![...inFlight].some((o) => o.accepted)) await sleep(2);
  signalled = true;
  for (const o of inFlight) o.inFlightAtSignal = o.accepted;
  graceful.proc.kill('SIGTERM');
  const exit = await within(graceful.exited, 25_000, 'exit after SIGTERM');
  await Promise.all(loops);

  t.comment(`${outcomes.length} requests: ${outcomes.filter((o) => o.acceptedBeforeSignal).length} accepted before the signal, ${outcomes.filter((o) => o.inFlightAtSignal).length} of them in flight at it`);
  t.equal(exit.code, 0, 'exit code 0');
  t.match(graceful.stderr(), /SIGTERM: shutting down/);
  t.match(graceful.stderr(), /stopped cleanly/);
  const before = outcomes.filter((o) => !o.sentAfterSignal);
  t.ok(before.length >= 6, `requests sent before the signal: ${before.length}`);
  const accepted = outcomes.filter((o) => o.acceptedBeforeSignal);
  t.same(accepted.filter((o) => o.status !== 200 || o.error !== undefined), [], 'every request accepted before the signal completed with 200 (no reset)');
  const spanning = accepted.filter((o) => o.inFlightAtSignal);
  t.ok(spanning.length >= 1, `requests in flight at the signal finished after it: ${spanning.length}`);
  // sent after the signal, or sent before it but not yet taken by the server
  const rest = outcomes.filter((o) => !o.acceptedBeforeSignal);
  t.ok(rest.every((o) => o.status === 503 || o.status === 200 || /ECONNREFUSED|ECONNRESET|EPIPE|socket hang up/.test(o.error ?? '')),
    `requests the server had not accepted at the signal are refused, not broken: ${JSON.stringify(rest.map((o) => o.status ?? o.error))}`);
});

t.test('a hung worker: exit 1 after the shutdown timeout, naming what still ran', async (t) => {
  await fill(hung, 'h', 4, 10);
  const hang = await call(`${hung.url}/_test/hang`, 'POST', {});
  t.equal(hang.status, 202, 'the test hook is mounted with QUIVER_TEST_HOOKS=1');
  const stuck = call(`${hung.url}/collections/h/points/query`, 'POST', { query: [1, 2, 3, 4] }).then((r) => r.status, (err: Error) => err.message);
  await sleep(300);
  hung.proc.kill('SIGTERM');
  const exit = await within(hung.exited, 15_000, 'exit after SIGTERM with a hung worker');
  t.equal(exit.code, 1, 'exit code 1');
  t.match(hung.stderr(), /warning: shutdown timed out after 1500 ms/, 'it waited out the shutdown timeout');
  t.match(hung.stderr(), /Still running: POST \/collections\/h\/points\/query \(running \d+ ms\)/);
  t.ok(await within(stuck, 5000, 'the hung request settling'), 'the hung request was answered or dropped, not left hanging');
});

t.test('a second signal exits at once', async (t) => {
  await fill(impatient, 'i', 4, 10);
  await call(`${impatient.url}/_test/hang`, 'POST', {});
  void call(`${impatient.url}/collections/i/points/query`, 'POST', { query: [1, 2, 3, 4] }).catch(() => {});
  await sleep(300);
  impatient.proc.kill('SIGTERM');
  await sleep(300);
  t.equal(impatient.proc.exitCode, null, 'still draining after the first signal (timeout 30 s)');
  impatient.proc.kill('SIGTERM');
  // well inside the 30 s drain, so only the second signal can end it in time
  const exit = await within(impatient.exited, 20_000, 'exit after the second signal');
  t.equal(exit.code, 143, 'exit code 128 + SIGTERM: the second signal, not the drain, ended it');
  t.match(impatient.stderr(), /SIGTERM again: exiting now/);
});
