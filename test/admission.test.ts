import t from 'tap';
import { QuiverError } from '../host/index.js';
import { DEFAULT_TUNER, MemoryManager, type ManagedStore } from '../host/memory/manager.js';
import { DEFAULT_POLICY } from '../host/memory/policy.js';
import { createMetrics, Registry } from '../host/metrics.js';

// Admission under maxMemoryBytes counts a write's bytes from admit() until
// the write settles. A large insert runs for seconds in bounded steps, and
// tuner ticks happen meanwhile: they must not forget it, or a second large
// insert is admitted next to the first and together they pass the limit.

const GiB = 1024 ** 3;

function manager(limit: number): MemoryManager {
  const store: ManagedStore = {
    shards: async () => [],
    compactShard: () => Promise.reject(new Error('no shards')),
    lruDatasets: () => [],
    evict: async () => 0,
    emit: () => {},
  };
  const metrics = createMetrics(new Registry(), {
    shards: async () => [],
    threads: () => 0,
    tuner: () => ({ rssBytes: 0, heapBytes: 0, arenaBytes: 0, reclaimableBytes: 0, pressure: false, limitBytes: limit }),
  });
  return new MemoryManager(store, DEFAULT_POLICY, {
    ...DEFAULT_TUNER, compactionIntervalMs: 0, tunerIntervalMs: 0, maxMemoryBytes: limit, evictionPolicy: 'reject',
  }, metrics);
}

t.test('two concurrent large writes: the second is refused while the first runs, through tuner ticks', async (t) => {
  // 2 GiB of headroom; each write would take 1.5 GiB: one fits, two do not
  const limit = process.memoryUsage.rss() + 2 * GiB;
  const m = manager(limit);
  t.teardown(() => m.stop());
  const releaseFirst = await m.admit('a', 1.5 * GiB);
  for (let i = 0; i < 3; i++) await m.tick(); // the first write is still in its steps
  const second = await m.admit('b', 1.5 * GiB).then(() => undefined, (err: unknown) => err);
  t.ok(second instanceof QuiverError && second.code === 'QUIVER_ERR_MEMORY_LIMIT', 'refused: the first write still counts');
  t.equal((second as QuiverError).applied, 0);
  releaseFirst();
  await m.tick();
  const releaseSecond = await m.admit('b', 1.5 * GiB);
  t.pass('once the first write settled, the second fits');
  releaseSecond();
});

t.test('a write that settles stops counting, whether or not a tick came', async (t) => {
  const limit = process.memoryUsage.rss() + 2 * GiB;
  const m = manager(limit);
  t.teardown(() => m.stop());
  for (let i = 0; i < 5; i++) {
    const release = await m.admit('a', 1.5 * GiB);
    release();
  }
  t.pass('five sequential writes of 1.5 GiB each were admitted under 2 GiB of headroom');
});
