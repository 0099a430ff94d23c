import t from 'tap';
import { Store } from '../host/index.js';
import { codeOf, watch } from './helpers/outcome.js';
import { backTo, snapshot } from './helpers/resources.js';

// _testHook (a hung or dying worker) is honoured only with this set when a store opens
process.env.QUIVER_TEST_HOOKS = '1';

// A close that never settles leaves a spinning worker with tasks pending, and
// the process cannot exit: the root timeout turns that into a failure in
// seconds instead of tap's file timeout.
t.setTimeout(45_000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// modules, the libuv pool and the V8 platform threads come up once per process
{
  const warm = await Store.open({ threads: 2 });
  await warm.createDataset('w', { dim: 2 });
  await warm.close();
}

// How long these closes take is measured by bench/lifecycle.ts; here, what they do.
t.test('a hung worker: close({ timeoutMs: 2000 }) is forced and leaves no thread', async (t) => {
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
  const report = await store.close({ timeoutMs: 2000 });
  t.equal(report.forced, true, 'the report says forced: close waited out its timeout for the search in flight');
  const s = await stuck;
  t.notOk(s.ok, 'the search stuck on the hung thread rejects');
  if (!s.ok) {
    t.comment(`the stuck search rejected with: ${String(s.err)}`);
    t.equal(codeOf(s.err), 'QUIVER_ERR_CLOSED', 'with QUIVER_ERR_CLOSED');
  }
  t.notOk((await hang).ok, 'the hook settles too');
  await backTo(t, base, 'after closing a store with a hung worker');
});

t.test('a hung worker with no call in flight: close still ends the thread', async (t) => {
  const base = snapshot();
  const store = await Store.open({ threads: 2 });
  await store.createDataset('h', { dim: 4 }); // a shard on each thread
  const hang = watch(store._testHook('hang'));
  // long enough for the memory tuner's 2 s tick to ask the hung thread for stats
  await sleep(2500);
  // a close that never settles fails the file through its root timeout above
  const closed = await watch(store.close({ timeoutMs: 2000 }));
  t.ok(closed.ok, 'close resolves');
  if (closed.ok) t.equal(closed.value.forced, true, 'forced: the hung thread was terminated');
  t.notOk((await hang).ok, 'the hook settles');
  await backTo(t, base, 'after closing a store with a hung worker');
});

