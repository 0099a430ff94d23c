// One node's copy of a shard (host/store/cluster-replica.ts) on a real
// 3-node nats-server cluster: a leader's writes reach a follower, which then
// holds exactly the leader's shard (the same live count, the same vector for
// every id, the same answers bit for bit); the follower takes over with a
// higher term, the old leader's next write is FENCED and it follows the new
// one; a PARTIAL (an upsert cut short) makes a follower rebuild to the cut.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { clusterAndClient } from './helpers/cluster-setup.js';
import { clustered } from './helpers/data.js';
import { ImageStore } from '../host/cluster/images.js';
import { ReplicatedLog } from '../host/cluster/replicated-log.js';
import { ensureDatasetLog } from '../host/cluster/shard-stream.js';
import type { Shard, ShardParams } from '../host/core/shard.js';
import { ErrorCode } from '../host/errors.js';
import { packIds } from '../host/ids.js';
import { encodeDelete, encodePartial, encodeUpsert, Op } from '../host/storage/index.js';
import { ShardReplica } from '../host/store/cluster-replica.js';

const DIM = 24;
const PARAMS: ShardParams = { dim: DIM, metric: 'l2', M: 12, efConstruction: 64, ef: 64 };
const { client } = await clusterAndClient(t, 'replica');
const dir = mkdtempSync(join(tmpdir(), 'quiver-replica-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
await ensureDatasetLog(client, 'rp', { replicas: 3 });
const images = await ImageStore.open(client);
const queries = clustered(40, DIM, 6, 77);
const src = (shard: number) => ({ client, images, dataset: 'rp', shard, params: PARAMS });

const upsert = (first: number, n: number, seed: number) => encodeUpsert({
  count: n, dim: DIM, ids: packIds(Array.from({ length: n }, (_, i) => first + i), true), vectors: clustered(n, DIM, 6, seed), payloads: Array(n).fill(null),
});
const del = (ids: number[]) => encodeDelete({ count: ids.length, ids: packIds(ids, true) });

function sameShard(t: Test, got: Shard, want: Shard, maxId: number, what: string): void {
  t.equal(got.stats().live, want.stats().live, `${what}: the same live count (${want.stats().live})`);
  let differ = 0;
  for (let id = 0; id < maxId; id++) {
    const w = want.get(packIds([id], true), 0);
    const g = got.get(packIds([id], true), 0);
    if ((w === undefined) !== (g === undefined) || (w !== undefined && !w.vector.every((x, i) => x === g!.vector[i]))) differ++;
  }
  t.equal(differ, 0, `${what}: every id's vector is the leader's`);
  let same = 0;
  for (let q = 0; q < 40; q++) {
    const w = want.search(queries, q * DIM, 10, 64);
    const g = got.search(queries, q * DIM, 10, 64);
    if (JSON.stringify(w.ids) === JSON.stringify(g.ids) && w.distances.every((d, i) => d === g.distances[i])) same++;
  }
  t.equal(same, 40, `${what}: the same answers, ids and distances, to all 40 queries`);
}

t.test('a follower holds the leader\'s shard; a takeover fences the old leader, which then follows', async (t) => {
  const a = await ShardReplica.follow(src(0));
  const b = await ShardReplica.follow(src(0));
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await t.rejects(a.write(Op.UPSERT, upsert(0, 10, 1)), { code: ErrorCode.FENCED }, 'a follower does not write');
  await a.lead({ dir: join(dir, 'a'), nodeId: 'node.a', term: 1 });
  t.equal(a.role, 'leader');
  for (let batch = 0; batch < 8; batch++) {
    await a.write(Op.UPSERT, upsert(batch * 200, 250, 100 + batch));
    if (batch % 3 === 2) await a.write(Op.DELETE, del(Array.from({ length: 30 }, (_, i) => batch * 200 + i * 7)));
  }
  await b.caughtUp(a.lastSeq);
  t.equal(b.role, 'follower');
  sameShard(t, b.shard, a.shard, 1700, 'follower after 8 upserts and 2 deletes');

  // b takes over (the lease passed to it): its claim fences a
  await b.lead({ dir: join(dir, 'b'), nodeId: 'node.b', term: 2 });
  await t.rejects(a.write(Op.UPSERT, upsert(5000, 50, 9)), { code: ErrorCode.FENCED }, 'the old leader\'s next write is refused');
  t.equal(a.role, 'follower', 'and it stepped down to a follower');
  t.equal(a.shard.get(packIds([5000], true), 0), undefined, 'the refused write was not applied');
  await b.write(Op.UPSERT, upsert(1600, 300, 555));
  await b.write(Op.DELETE, del([0, 1, 2, 1601]));
  await a.caughtUp(b.lastSeq);
  sameShard(t, a.shard, b.shard, 2000, 'old leader following the new one');

  // a leads again with a later term: its old term's log directory goes
  await b.stepDown();
  await a.lead({ dir: join(dir, 'a'), nodeId: 'node.a', term: 3 });
  await a.write(Op.DELETE, del([3]));
  t.same(readdirSync(join(dir, 'a')), ['term-3'], 'only the current term\'s local log is kept');
  await b.caughtUp(a.lastSeq);
  sameShard(t, b.shard, a.shard, 2000, 'after a third term');
  // a second takeover while a is still leading: a is fenced at once, loses nothing acknowledged
  await b.lead({ dir: join(dir, 'b'), nodeId: 'node.b', term: 4 });
  await t.rejects(a.write(Op.DELETE, del([4])), { code: ErrorCode.FENCED }, 'fenced again by term 4');
  t.ok(b.shard.get(packIds([4], true), 0) !== undefined, 'the refused delete changed nothing on the new leader');
  await b.write(Op.DELETE, del([5]));
  await a.caughtUp(b.lastSeq);
  sameShard(t, a.shard, b.shard, 2000, 'after term 4');
});

t.test('a PARTIAL after an upsert makes a follower rebuild to the cut', async (t) => {
  const f = await ShardReplica.follow(src(1));
  t.teardown(() => f.close());
  const log = await ReplicatedLog.open({ client, dataset: 'rp', shard: 1, dir: join(dir, 'w1'), nodeId: 'node.w', term: 1 });
  await log.append(Op.UPSERT, upsert(0, 200, 1));
  const cut = await log.append(Op.UPSERT, upsert(200, 200, 2));
  await f.caughtUp(cut.seq);
  t.equal(f.shard.stats().live, 400, 'the follower applied the second upsert in full');
  const p = await log.append(Op.PARTIAL, encodePartial({ lsn: cut.lsn, applied: 50 }));
  await f.caughtUp(p.seq);
  t.equal(f.resyncs, 1, 'it rebuilt once');
  t.equal(f.shard.stats().live, 250, 'and holds the upsert as the leader applied it: 50 of 200 rows');
  const after = await log.append(Op.DELETE, del([0]));
  await f.caughtUp(after.seq);
  t.equal(f.shard.stats().live, 249, 'and goes on following');
  await log.close();
  await f.close();
  t.equal(f.role, 'closed');
  await t.rejects(f.caughtUp(after.seq + 1), { code: ErrorCode.UNAVAILABLE }, 'a closed copy waits for nothing');
});
