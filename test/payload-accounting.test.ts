// Payload blobs sit in power-of-two blocks: live bytes must count the block,
// not the blob, or the slack looks reclaimable, survives every compaction,
// and the fragmentation trigger fires every interval reclaiming nothing.
import t from 'tap';
import { Index } from '../host/index.js';
import { needsCompaction } from '../host/memory/policy.js';
import { rng } from './helpers/data.js';

t.test('after compacting a payload-heavy index, nothing reclaimable is left to trigger another', async (t) => {
  const dim = 8;
  const n = 20_000;
  const index = new Index({ dim, M: 16, efConstruction: 32, seed: 7 });
  // JSON of {"s":"xxx..."} is 520 bytes: a 524-byte blob in a 1 KiB block
  const payload = { s: 'x'.repeat(520 - 8) };
  t.equal(Buffer.byteLength(JSON.stringify(payload)), 520);
  const rand = rng(12345);
  const batch = 1000;
  for (let b = 0; b < n; b += batch) {
    const ids = Array.from({ length: batch }, (_, i) => b + i);
    const vecs = ids.map(() => Array.from({ length: dim }, rand));
    index.add(ids, vecs, ids.map(() => payload));
  }
  index.compact();
  const s = index.stats();
  t.equal(s.liveNodes, n);
  t.ok(s.liveBytes >= n * 1024, `live bytes count each payload's 1 KiB block (${s.liveBytes})`);
  t.ok(s.reclaimableBytes < 1 << 20, `reclaimable after compaction is under the 1 MiB floor (${s.reclaimableBytes})`);
  t.equal(needsCompaction(s), undefined, 'the policy does not call for another compaction');
  const again = index.compact();
  t.ok(again.reclaimedBytes < 1 << 20, `a second compaction has little to give back (${again.reclaimedBytes})`);
  t.ok(index.checkIntegrity().ok);
  index.dispose();
});
