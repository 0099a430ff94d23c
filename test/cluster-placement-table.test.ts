// The placement table (host/cluster/placement-table.ts) in a KV bucket of a
// real 3-node nats-server cluster: a first rebalance writes a balanced
// placement, a second finds nothing to do; a joining node gets copies and
// nothing else moves; two nodes rebalancing at once after a node left end on
// one placement (compare-and-set: one write wins, the other plans again
// from it); a write from a stale revision is refused and changes nothing; a
// record that is not a placement is CORRUPT.
import t from 'tap';
import { clusterAndClient } from './helpers/cluster-setup.js';
import { PlacementTable } from '../host/cluster/placement-table.js';
import type { ShardPlacement } from '../host/cluster/placement.js';
import { ErrorCode } from '../host/errors.js';

const { client } = await clusterAndClient(t, 'placement-table');

const copies = (p: ShardPlacement): string[] => [p.leader, ...p.followers];
const perNode = (shards: Map<number, ShardPlacement>, nodes: string[], f: (p: ShardPlacement) => string[]): number[] =>
  nodes.map((n) => [...shards.values()].filter((p) => f(p).includes(n)).length);

t.test('6 shards, replication 2 on 3 nodes: balanced, stored, and a second rebalance writes nothing', async (t) => {
  const table = await PlacementTable.open(client);
  t.equal((await table.read('coll')).revision, 0, 'nothing placed yet');
  const first = await table.rebalance('coll', 6, 2, ['q1', 'q2', 'q3']);
  t.equal(first.written, true, 'written');
  t.same(perNode(first.shards, ['q1', 'q2', 'q3'], copies), [4, 4, 4], 'four copies a node');
  t.same(perNode(first.shards, ['q1', 'q2', 'q3'], (p) => [p.leader]), [2, 2, 2], 'two leaderships a node');
  t.equal(first.moves.filter((m) => m.kind === 'add-copy').length, 12, 'every copy is a move from nothing');
  const read = await table.read('coll');
  t.same([...read.shards], [...first.shards], 'read back as written');
  t.equal(read.revision, first.revision, 'at its revision');
  const again = await table.rebalance('coll', 6, 2, ['q3', 'q1', 'q2']);
  t.equal(again.written, false, 'the same nodes in another order: nothing to write');
  t.same(again.moves, [], 'no moves');
});

t.test('a fourth node joins: copies move to it and nowhere else', async (t) => {
  const table = await PlacementTable.open(client);
  const before = await table.rebalance('join', 6, 2, ['q1', 'q2', 'q3']);
  const after = await table.rebalance('join', 6, 2, ['q1', 'q2', 'q3', 'q4']);
  const adds = after.moves.filter((m) => m.kind === 'add-copy');
  t.ok(adds.length >= 3 && adds.every((m) => m.node === 'q4'), `${adds.length} copies added, all on q4`);
  const c = perNode(after.shards, ['q1', 'q2', 'q3', 'q4'], copies);
  t.ok(Math.max(...c) - Math.min(...c) <= 1, `copies balanced: ${c}`);
  const l = perNode(after.shards, ['q1', 'q2', 'q3', 'q4'], (p) => [p.leader]);
  t.ok(Math.max(...l) - Math.min(...l) <= 1, `leaderships balanced: ${l}`);
  t.ok(after.revision > before.revision, 'a newer revision');
});

t.test('two nodes rebalancing at once after a node left end on one placement', async (t) => {
  const [a, b] = [await PlacementTable.open(client), await PlacementTable.open(client)];
  await a.rebalance('race', 6, 2, ['q1', 'q2', 'q3']);
  const [ra, rb] = await Promise.all([a.rebalance('race', 6, 2, ['q1', 'q2']), b.rebalance('race', 6, 2, ['q1', 'q2'])]);
  t.same([...ra.shards], [...rb.shards], 'both computed the same placement');
  t.ok(ra.written || rb.written, 'one of them wrote it');
  const stored = await a.read('race');
  t.same([...stored.shards], [...ra.shards], 'and that is what is stored');
  t.ok([...stored.shards.values()].every((p) => copies(p).every((n) => n === 'q1' || n === 'q2')), 'nothing left on the node that left');
});

t.test('a write from a stale revision is refused and changes nothing', async (t) => {
  const table = await PlacementTable.open(client);
  const first = await table.rebalance('stale', 2, 1, ['q1', 'q2']);
  const moved = await table.rebalance('stale', 2, 1, ['q2', 'q3']);
  const stale = new Map([[0, { leader: 'q1', followers: [] }], [1, { leader: 'q1', followers: [] }]]);
  t.equal(await table.write('stale', stale, first.revision), null, 'refused');
  t.same([...(await table.read('stale')).shards], [...moved.shards], 'the newer placement stands');
  t.equal(await table.write('stale', stale, 0), null, 'a create over an existing one is refused too');
});

t.test('a record that is not a placement is CORRUPT; bad arguments are refused', async (t) => {
  const table = await PlacementTable.open(client);
  const kv = await client.kvm.open('quiver-placement');
  await kv.put('garbage', new TextEncoder().encode('{"shards": {"0": {"leader": 7}}}'));
  await t.rejects(table.read('garbage'), { code: ErrorCode.CORRUPT }, 'a leader that is not a node id');
  await kv.put('notjson', new TextEncoder().encode('nope'));
  await t.rejects(table.read('notjson'), { code: ErrorCode.CORRUPT }, 'not JSON');
  await t.rejects(table.rebalance('x', 0, 1, ['q1']), { code: ErrorCode.INVALID_ARGUMENT }, 'no shards');
  await t.rejects(table.rebalance('x', 2, 0, ['q1']), { code: ErrorCode.INVALID_ARGUMENT }, 'no copies');
  await t.rejects(PlacementTable.open(client, { bucket: 'bad name' }), { code: ErrorCode.INVALID_ARGUMENT }, 'a bucket name with a space');
});
