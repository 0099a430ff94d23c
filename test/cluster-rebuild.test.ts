// Rebuilding a shard from the cluster (host/store/cluster-rebuild.ts) on a
// real 3-node nats-server cluster: node A writes upserts (some replacing
// earlier ones), deletes and an upsert cut short (PARTIAL) through its
// ReplicatedLog, applying each to its own shard, and puts an image of that
// shard in the object store half way; node B rebuilds the shard from the
// newest image plus the stream after it, and from the stream alone for a
// shard with no image. Both must equal A's shard exactly: the same live
// count, the same vector for every id, the same answers (ids and
// distances) to every query; an image that does not fit the dataset is
// refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { clusterAndClient } from './helpers/cluster-setup.js';
import { clustered } from './helpers/data.js';
import { ImageStore } from '../host/cluster/images.js';
import { ReplicatedLog } from '../host/cluster/replicated-log.js';
import { ensureDatasetLog } from '../host/cluster/shard-stream.js';
import { Shard, type ShardParams } from '../host/core/shard.js';
import { ErrorCode } from '../host/errors.js';
import { packIds } from '../host/ids.js';
import { encodeDelete, encodePartial, encodeUpsert, Op } from '../host/storage/index.js';
import { applyRecord } from '../host/store/apply.js';
import { rebuildShard } from '../host/store/cluster-rebuild.js';

const DIM = 24;
const BATCH = 250;
const BATCHES = 12;
const PARAMS: ShardParams = { dim: DIM, metric: 'l2', M: 12, efConstruction: 64, ef: 64 };

const { client } = await clusterAndClient(t, 'rebuild');
const dir = mkdtempSync(join(tmpdir(), 'quiver-rebuild-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
await ensureDatasetLog(client, 'rb', { replicas: 3 });
const images = await ImageStore.open(client);
const queries = clustered(40, DIM, 6, 99);

interface Written {
  ref: Shard;
}

/** Node A's writes to shard `n` through its log, applied to its own shard; an image put after batch `imageAfter` (or none). */
async function write(n: number, imageAfter: number | null): Promise<Written> {
  const log = await ReplicatedLog.open({ client, dataset: 'rb', shard: n, dir: join(dir, `a-${n}`), nodeId: 'node.a', term: 1 });
  const ref = Shard.create(PARAMS);
  const append = async (op: number, body: Uint8Array, applied?: number) => {
    const a = await log.append(op, body);
    if (op !== Op.PARTIAL) applyRecord(ref, op, body, applied, `ref ${a.lsn}`);
    return a;
  };
  let lastSeq = 0;
  for (let b = 0; b < BATCHES; b++) {
    // batch b covers ids [b * 200, b * 200 + 250): 50 of them replace the previous batch's
    const ids = Array.from({ length: BATCH }, (_, i) => b * 200 + i);
    const body = encodeUpsert({ count: BATCH, dim: DIM, ids: packIds(ids, true), vectors: clustered(BATCH, DIM, 6, 1000 + n * 100 + b), payloads: Array(BATCH).fill(null) });
    if (b === 5) {
      // cut short after 100 rows: the PARTIAL names it by A's local lsn
      const up = await log.append(Op.UPSERT, body);
      applyRecord(ref, Op.UPSERT, body, 100, 'ref cut');
      lastSeq = (await append(Op.PARTIAL, encodePartial({ lsn: up.lsn, applied: 100 }))).seq;
    } else lastSeq = (await append(Op.UPSERT, body)).seq;
    if (b % 3 === 2) {
      const gone = ids.filter((_, i) => i % 7 === 0);
      lastSeq = (await append(Op.DELETE, encodeDelete({ count: gone.length, ids: packIds(gone, true) }))).seq;
    }
    if (b === imageAfter) await images.put('rb', n, log.lastLsn, lastSeq, ref.toImage());
  }
  await log.close();
  return { ref };
}

function sameShard(t: Test, got: Shard, want: Written, what: string): void {
  t.equal(got.stats().live, want.ref.stats().live, `${what}: the same live count (${want.ref.stats().live})`);
  let vectors = 0;
  for (let id = 0; id < BATCHES * 200 + 50; id++) {
    const w = want.ref.get(packIds([id], true), 0);
    const g = got.get(packIds([id], true), 0);
    if ((w === undefined) !== (g === undefined) || (w !== undefined && !w.vector.every((x, i) => x === g!.vector[i]))) {
      t.fail(`${what}: id ${id} differs`);
      return;
    }
    if (w !== undefined) vectors++;
  }
  t.ok(vectors > 1500, `${what}: every id's vector is A's (${vectors} present)`);
  let same = 0;
  for (let q = 0; q < 40; q++) {
    const w = want.ref.search(queries, q * DIM, 10, 64);
    const g = got.search(queries, q * DIM, 10, 64);
    if (JSON.stringify(w.ids) === JSON.stringify(g.ids) && w.distances.every((d, i) => d === g.distances[i])) same++;
  }
  t.equal(same, 40, `${what}: the same answers, ids and distances, to all 40 queries`);
}

t.test('from the newest image and the stream after it: exactly the writer\'s shard', async (t) => {
  const a = await write(0, 6);
  const r = await rebuildShard({ client, images, dataset: 'rb', shard: 0, params: PARAMS });
  t.ok(r.imageLsn !== null && r.imageLsn > 0, `started from the image at lsn ${r.imageLsn}`);
  t.ok(r.replayed > 0 && r.replayed < 20, `then replayed the ${r.replayed} records after it`);
  sameShard(t, r.shard, a, 'image + stream');
  r.shard.dispose();
  a.ref.dispose();
});

t.test('from the stream alone (no image yet), the cut-short upsert cut as it was', async (t) => {
  const a = await write(1, null);
  const r = await rebuildShard({ client, images, dataset: 'rb', shard: 1, params: PARAMS });
  t.equal(r.imageLsn, null, 'no image');
  t.equal(r.replayed, BATCHES + 4, 'every upsert and delete replayed');
  sameShard(t, r.shard, a, 'stream only');
  r.shard.dispose();
  a.ref.dispose();
});

t.test('an image that does not fit the dataset, or a disk-mode dataset, is refused', async (t) => {
  await t.rejects(rebuildShard({ client, images, dataset: 'rb', shard: 0, params: { ...PARAMS, dim: DIM + 1 } }), { code: ErrorCode.CORRUPT }, 'another dim');
  await t.rejects(rebuildShard({ client, images, dataset: 'rb', shard: 0, params: { ...PARAMS, quantization: { type: 'int8', quantile: 0.99, alwaysRam: false } } }), { code: ErrorCode.INVALID_ARGUMENT, message: /directory for its originals/ }, 'alwaysRam false without a directory for the originals');
});
