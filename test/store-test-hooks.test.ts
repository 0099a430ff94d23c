import t from 'tap';
import { Store } from '../host/index.js';
import { CancelSlots } from '../host/store/cancel.js';
import { ThreadPool } from '../host/store/pool.js';

// The worker's test hooks (a thread that spins forever, or exits) are not
// reachable from a production store: the Store honours _testHook only with
// QUIVER_TEST_HOOKS=1 at open, and a worker honours the tasks only when its
// pool was started with testHooks.

t.setTimeout(60_000); // a hook that got through would spin: fail fast, not at tap's file timeout
delete process.env.QUIVER_TEST_HOOKS;

t.test('a store opened without QUIVER_TEST_HOOKS refuses _testHook and keeps working', async (t) => {
  const store = await Store.open({ threads: 1, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  await t.rejects(store._testHook('hang'), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /test hooks are off/ });
  await t.rejects(store._testHook('exit'), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  await store.createDataset('d', { dim: 2 });
  await store.insert('d', [1], [[1, 2]]);
  t.equal(await store.count('d'), 1, 'the thread is alive and answering');
  t.equal(store.threads, 1);
});

t.test('a worker of a pool started without testHooks refuses the hook tasks', async (t) => {
  const cancel = new CancelSlots();
  const pool = new ThreadPool(1, cancel.buffer);
  t.teardown(() => pool.destroy());
  await pool.ready(1);
  const thread = pool.threadIds[0]!;
  for (const op of ['hang', 'exit'] as const) {
    const reply = await pool.run(thread, { op });
    t.same(reply, { ok: false, code: 'QUIVER_ERR_INVALID_ARGUMENT', message: `unknown task ${op}` }, `${op} is refused`);
  }
  t.equal(pool.size, 1, 'the thread is still there');
});
