// A checkpoint streams the shard's image straight from its linear memory
// (issue 9: "no second copy of the data in RAM; peak RSS during a checkpoint
// rises by no more than a few MiB"). scripts/checkpoint-peak.ts measures the
// kernel's high-water mark around store.checkpoint() of a 60,000 x 64 shard
// (~28 MiB image) in a plain node child, and around a copy of the image's
// size, which shows the measure sees a copy when there is one.
import t from 'tap';
import { buildDist, runPlain } from './helpers/plain-node.js';

const MiB = 1024 * 1024;
const BOUND = 4 * MiB;

t.test('peak RSS during a checkpoint stays within a few MiB of where it started', async (t) => {
  buildDist();
  const r = runPlain<{ imageBytes: number; checkpoint: number; control: number; checkpoints: number }>('dist/scripts/checkpoint-peak.js', ['60000']);
  t.comment(`image ${(r.imageBytes / MiB).toFixed(1)} MiB; peak RSS rise: checkpoint ${(r.checkpoint / MiB).toFixed(2)} MiB, a copy of the image ${(r.control / MiB).toFixed(2)} MiB`);
  t.ok(r.imageBytes > 20 * MiB, 'the shard is big enough that a copy would show');
  t.ok(r.checkpoints >= 1, 'a checkpoint was written');
  t.ok(r.control > r.imageBytes * 0.9, 'the measure sees a copy of the image');
  t.ok(r.checkpoint < BOUND, `the checkpoint raised peak RSS by under ${BOUND / MiB} MiB`);
});
