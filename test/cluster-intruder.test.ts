// A leader whose log refuses its append while its lease is still valid
// (host/store/cluster-node.ts, host/cluster/lease-keeper.ts `yield`).
// nats-server 2.9 checks a compare-and-set before its Raft proposal, not in
// it (nats-io/nats-server#4320): two nodes can be granted one lease, or have
// two appends stored, at once. Here the other writer is simulated: a record
// (an upsert of 30 new points, as a leader writes it) is published to the
// shard's subject behind the leader's back. The leader's next write is
// refused (FENCED); the node gives its lease back, takes it again under a
// new term, claims the log afresh, and writes go on; every copy has applied
// the record that got in, in the log's order.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { clustered } from './helpers/data.js';
import { shardSubject } from '../host/cluster/names.js';
import { ClusterNode } from '../host/store/cluster-node.js';
import { upsertRecords } from '../host/store/cluster-writes.js';

const DIM = 8;
const { cluster, client } = await clusterAndClient(t, 'cluster-intruder');
const dir = mkdtempSync(join(tmpdir(), 'quiver-cintr-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const nodes: ClusterNode[] = [];
for (const id of ['i1', 'i2']) nodes.push(await ClusterNode.open({ servers: cluster.servers, nodeId: id, dir: join(dir, id), ttlMs: 1500, imageEvery: 0, writeTimeoutMs: 20_000 }));
t.teardown(() => Promise.all(nodes.map((n) => n.close())));

t.test('a leader fenced while its lease is valid takes the lease again under a new term; the record that got in is on every copy', async (t) => {
  const [a, b] = nodes as [ClusterNode, ClusterNode];
  await a.createDataset('x', { shards: 1, replicas: 2, dim: DIM, M: 8, efConstruction: 16 });
  await until('led, and followed', () => nodes.some((n) => n.replica('x', 0)?.role === 'leader') && nodes.every((n) => n.replica('x', 0) !== null), 20_000);
  await a.upsert('x', Array.from({ length: 20 }, (_, i) => i), clustered(20, DIM, 2, 1));
  const leader = nodes.find((n) => n.replica('x', 0)?.role === 'leader')!;
  const term = leader.roles().leading.find((l) => l.dataset === 'x')!.term;
  const d = await a.dataset('x');
  const [record] = upsertRecords(d, Array.from({ length: 30 }, (_, i) => 1000 + i), clustered(30, DIM, 2, 2));
  const data = new Uint8Array(1 + record!.body.length);
  data[0] = record!.op;
  data.set(record!.body, 1);
  await client.js.publish(shardSubject(d.id, 0), data, { msgID: 'intruder.1.0.1' });
  t.equal(leader.fencedAppends, 0, 'no append refused yet');

  await b.upsert('x', [500], clustered(1, DIM, 1, 3));
  t.ok(leader.fencedAppends >= 1, `the leader's append was refused (${leader.fencedAppends}), and the write went through all the same`);
  const now = nodes.flatMap((n) => n.roles().leading.filter((l) => l.dataset === 'x'));
  t.equal(now.length, 1, 'one node leads');
  t.ok(now[0]!.term > term, `under a new term (${term} -> ${now[0]!.term})`);
  await until('the follower caught up', async () => (await b.count('x', { consistency: 'any' })) === 51 && (await a.count('x', { consistency: 'any' })) === 51, 20_000);
  for (const n of nodes) {
    t.equal(await n.count('x'), 51, `${n.nodeId}: 20 + the 30 that got in + 1, through the leader`);
    t.equal(await n.count('x', { consistency: 'any' }), 51, `${n.nodeId}: and its own copy`);
  }
  await a.upsert('x', [501, 502], clustered(2, DIM, 1, 4));
  t.equal(await b.count('x'), 53, 'writes go on');
});
