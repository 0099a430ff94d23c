import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Index, QuiverError, Store } from '../host/index.js';

// One validator serves the Index and the Store: the same fields give the
// same messages; the Index's constructor throws RangeError, a live Store
// rejects with QUIVER_ERR_INVALID_ARGUMENT. options.tuner is checked too.

t.test('graph options: the same message from the Index and the Store', async (t) => {
  const store = await Store.open({ threads: 1, compaction: { intervalMs: 0 } });
  t.teardown(() => store.close());
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ dim: 0 }, /^options\.dim must be an integer from 1 to 65536 \(got 0\)$/],
    [{ dim: 4, metric: 'hamming' }, /^options\.metric must be one of l2, ip, cosine \(got hamming\)$/],
    [{ dim: 4, M: 1 }, /^options\.M must be an integer from 2 to \d+ \(got 1\)$/],
    [{ dim: 4, efConstruction: 0 }, /^options\.efConstruction must be an integer from 1 to 100000 \(got 0\)$/],
    [{ dim: 4, ef: 100_001 }, /^options\.ef must be an integer from 1 to 100000 \(got 100001\)$/],
  ];
  for (const [options, message] of cases) {
    t.throws(() => new Index(options as never), { name: 'RangeError', message }, `Index ${JSON.stringify(options)}`);
    const err = await store.createDataset('x', options as never).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof QuiverError && err.code === 'QUIVER_ERR_INVALID_ARGUMENT', `Store ${JSON.stringify(options)}: coded`);
    t.match((err as Error).message, message);
  }
  t.same(store.listDatasets(), [], 'nothing was created');
});

t.test('options.tuner: wrong types are TypeErrors, out-of-range values RangeErrors, and no store opens', async (t) => {
  const bad: [unknown, string, RegExp][] = [
    [5, 'TypeError', /^options\.tuner must be an object$/],
    [{ arenaShare: 2 }, 'RangeError', /^options\.tuner\.arenaShare must be a number greater than 0 and at most 1 \(got 2\)$/],
    [{ arenaShare: 0 }, 'RangeError', /^options\.tuner\.arenaShare must be/],
    [{ cpuBudget: '0.5' }, 'TypeError', /^options\.tuner\.cpuBudget must be a number greater than 0 and at most 1 \(got string\)$/],
    [{ cpuBudget: Number.NaN }, 'RangeError', /^options\.tuner\.cpuBudget must be/],
    [{ lowWatermark: 1 }, 'RangeError', /^options\.tuner\.lowWatermark must be a number between 0 and 1 \(got 1\)$/],
    [{ tunerIntervalMs: -1 }, 'RangeError', /^options\.tuner\.tunerIntervalMs must be an integer from 0 \(off\)/],
    [{ tunerIntervalMs: 1.5 }, 'RangeError', /^options\.tuner\.tunerIntervalMs must be/],
    [{ pressureIntervalMs: 0 }, 'RangeError', /^options\.tuner\.pressureIntervalMs must be an integer from 1/],
    [{ reclaimFloorBytes: -1 }, 'RangeError', /^options\.tuner\.reclaimFloorBytes must be a non-negative number \(got -1\)$/],
    [{ reclaimFloorBytes: Infinity }, 'RangeError', /^options\.tuner\.reclaimFloorBytes must be/],
    [{ arenaShar: 0.5 }, 'TypeError', /^options\.tuner\.arenaShar is not a tuner option/],
    [{ maxMemoryBytes: 1e9 }, 'TypeError', /^options\.tuner\.maxMemoryBytes is not a tuner option/],
  ];
  for (const [tuner, name, message] of bad) {
    await t.rejects(Store.open({ threads: 1, tuner: tuner as never }), { name, message }, JSON.stringify(tuner));
  }
  const ok = await Store.open({ threads: 1, compaction: { intervalMs: 0 }, tuner: { tunerIntervalMs: 0, arenaShare: 1, cpuBudget: 0.1, lowWatermark: 0.5, reclaimFloorBytes: 0, pressureIntervalMs: 100 } });
  t.equal(ok.threads, 1, 'good tuner values open a store');
  await ok.close();
});

t.test('durability options: checked before anything is opened or written', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-opts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'data');
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ fsync: 'always' }, 'TypeError', /needs options.path/],
    [{ fsyncIntervalMs: 10 }, 'TypeError', /needs options.path/],
    [{ checkpointLogBytes: 1 }, 'TypeError', /needs options.path/],
    [{ path: '' }, 'TypeError', /options.path/],
    [{ path: 42 }, 'TypeError', /options.path/],
    [{ path, fsync: 'sometimes' }, 'RangeError', /options.fsync/],
    [{ path, fsyncIntervalMs: 0 }, 'RangeError', /fsyncIntervalMs/],
    [{ path, checkpointLogBytes: -1 }, 'RangeError', /checkpointLogBytes/],
    [{ path, maxMemoryBytes: 1e9, evictionPolicy: 'lru' }, 'TypeError', /durable store/],
  ];
  for (const [options, name, message] of cases) {
    await t.rejects(Store.open({ threads: 1, ...options } as never), { name, message }, JSON.stringify(options));
  }
  t.notOk(existsSync(path), 'no refused open created the data directory');
  const store = await Store.open({ threads: 1, path, fsync: 'interval', fsyncIntervalMs: 50, checkpointLogBytes: 1 << 20 });
  t.equal(store.path, path);
  t.equal((await store.stats()).durability?.fsync, 'interval');
  await t.rejects(store.insert('none', [1], [[1]], { wait: 'yes' as never }), { code: 'QUIVER_ERR_NOT_FOUND' }, 'the dataset is looked up first');
  await store.createDataset('d', { dim: 1 });
  await t.rejects(store.insert('d', [1], [[1]], { wait: 'yes' as never }), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /wait/ });
  await t.rejects(store.delete('d', [1], { wait: 1 as never }), { code: 'QUIVER_ERR_INVALID_ARGUMENT', message: /wait/ });
  t.equal(await store.count('d'), 0, 'nothing was written');
  await store.close();
});
