import t from 'tap';
import { Store } from '../host/index.js';
import { rng } from './helpers/data.js';

// A shard whose compaction wins back less than the policy's floor must not
// be picked again while it has not changed: payload-heavy shards (520-byte
// payloads in power-of-two blocks) look fragmented before and after, and
// the scheduler used to compact them on every pass, reclaiming nothing.

const DIM = 8;
const N = 6000;

t.test('dim 8, M 16, 520-byte payloads: several scheduler passes compact at most once', async (t) => {
  const store = await Store.open({ threads: 2, compaction: { intervalMs: 0 }, tuner: { tunerIntervalMs: 0 } });
  t.teardown(() => store.close());
  await store.createDataset('docs', { dim: DIM, M: 16, efConstruction: 32, shards: 1 });
  const r = rng(7);
  const text = 'x'.repeat(518); // JSON.stringify adds the two quotes: 520 bytes
  for (let at = 0; at < N; at += 1000) {
    const ids = Uint32Array.from({ length: 1000 }, (_, i) => at + i);
    await store.insert('docs', ids, Float32Array.from({ length: 1000 * DIM }, () => r()), { payloads: Array.from(ids, () => text) });
  }
  const events: { reclaimedBytes: number }[] = [];
  store.on('compaction', (e: { reclaimedBytes: number }) => events.push(e));
  let ran = 0;
  for (let pass = 0; pass < 5; pass++) ran += await store.runCompactionScheduler();
  t.comment(`compactions: ${ran}, reclaimed ${events.map((e) => e.reclaimedBytes).join(', ') || 'none'}`);
  t.ok(ran <= 1, `at most one compaction in five passes (ran ${ran})`);
  t.equal((await store.count('docs')), N, 'nothing was lost');

  // a change to the shard makes it a candidate again
  await store.delete('docs', Uint32Array.from({ length: 2000 }, (_, i) => i));
  const after = await store.runCompactionScheduler();
  t.equal(after, 1, 'after deletes the shard is compacted again');
  t.equal((await store.datasetInfo('docs')).deleted, 0);
});
