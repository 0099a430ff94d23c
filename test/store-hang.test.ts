import t from 'tap';
import { readdirSync } from 'node:fs';
import { QuiverError, Store } from '../host/index.js';

// _testHook (a hung or dying worker) is honoured only with this set when a store opens
process.env.QUIVER_TEST_HOOKS = '1';

// A close that never settles leaves a spinning worker with tasks pending, and
// the process cannot exit: the root timeout turns that into a failure in
// seconds instead of tap's file timeout.
t.setTimeout(45_000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** OS threads of this process: the main thread, libuv, V8 and every worker. */
const osThreads = (): number => readdirSync('/proc/self/task').length;

/** Active handles and requests by type (workers show up as their MessagePorts). */
function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

type Asserts = Pick<typeof t, 'same' | 'equal'>;

interface Snapshot {
  threads: number;
  resources: Record<string, number>;
}

const snapshot = (): Snapshot => ({ threads: osThreads(), resources: resources() });

/** Polls until the threads and resources are back to `base`, then asserts. */
async function backTo(t: Asserts, base: Snapshot, label: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  let now = snapshot();
  while (Date.now() < end && (now.threads !== base.threads || JSON.stringify(now.resources) !== JSON.stringify(base.resources))) {
    await sleep(25);
    now = snapshot();
  }
  t.equal(now.threads, base.threads, `${label}: the same number of threads as before (${base.threads})`);
  t.same(now.resources, base.resources, `${label}: the same active resources as before`);
}

type Outcome<T> = { ok: true; value: T; at: number } | { ok: false; err: unknown; at: number };

function watch<T>(p: Promise<T>): Promise<Outcome<T>> {
  return p.then((value) => ({ ok: true as const, value, at: performance.now() }), (err: unknown) => ({ ok: false as const, err, at: performance.now() }));
}

const codeOf = (err: unknown): unknown => (err instanceof QuiverError ? err.code : `not a QuiverError: ${String(err)}`);

// modules, the libuv pool and the V8 platform threads come up once per process
{
  const warm = await Store.open({ threads: 2 });
  await warm.createDataset('w', { dim: 2 });
  await warm.close();
}

t.test('a hung worker: close({ timeoutMs: 2000 }) is forced within 3 s and leaves no thread', async (t) => {
  const base = snapshot();
  const store = await Store.open({ threads: 2 });
  await store.createDataset('stuck', { dim: 4, shards: 1 });
  await store.createDataset('fine', { dim: 4, shards: 1 });
  const [hungThread] = store._shardThreads('stuck');
  t.not(hungThread, store._shardThreads('fine')[0], 'the two datasets are on different threads');
  await store.insert('stuck', [1], [[1, 2, 3, 4]]);
  await store.insert('fine', [1], [[1, 2, 3, 4]]);
  const hang = watch(store._testHook('hang', hungThread));
  await sleep(100);
  // work on the other thread goes on
  const other = await watch(store.search('fine', [1, 2, 3, 4], 1));
  t.ok(other.ok, 'a dataset on the other thread still answers');
  // a search on the hung thread never gets an answer
  const stuck = watch(store.search('stuck', [1, 2, 3, 4], 1));
  await sleep(100);
  const started = performance.now();
  const report = await store.close({ timeoutMs: 2000 });
  const took = performance.now() - started;
  t.comment(`close with a hung worker took ${took.toFixed(0)} ms (report: forced ${report.forced}, ${report.durationMs.toFixed(0)} ms)`);
  t.ok(took < 3000, 'close resolved in under 3 s');
  t.ok(took >= 1900, 'after waiting out its timeout for the search in flight');
  t.equal(report.forced, true, 'the report says forced');
  const s = await stuck;
  t.notOk(s.ok, 'the search stuck on the hung thread rejects');
  if (!s.ok) {
    t.comment(`the stuck search rejected with: ${String(s.err)}`);
    t.equal(codeOf(s.err), 'QUIVER_ERR_CLOSED', 'with QUIVER_ERR_CLOSED');
  }
  t.notOk((await hang).ok, 'the hook settles too');
  await backTo(t, base, 'after closing a store with a hung worker');
});

t.test('a hung worker with no call in flight: close still ends the thread within 3 s', async (t) => {
  const base = snapshot();
  const store = await Store.open({ threads: 2 });
  await store.createDataset('h', { dim: 4 }); // a shard on each thread
  const hang = watch(store._testHook('hang'));
  // long enough for the memory tuner's 2 s tick to ask the hung thread for stats
  await sleep(2500);
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([
    watch(store.close({ timeoutMs: 2000 })),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), 8000);
    }),
  ]);
  clearTimeout(timer);
  const took = performance.now() - started;
  t.ok(closed !== undefined, `close settles (${closed === undefined ? 'still pending after 8 s' : `after ${took.toFixed(0)} ms`})`);
  if (closed !== undefined) {
    t.comment(`close with only a hung worker took ${took.toFixed(0)} ms (${closed.ok ? `forced ${closed.value.forced}` : String(closed.err)})`);
    t.ok(closed.ok, 'close resolves');
    t.ok(took < 3000, 'in under 3 s');
    t.notOk((await hang).ok, 'the hook settles');
    await backTo(t, base, 'after closing a store with a hung worker');
  }
});

