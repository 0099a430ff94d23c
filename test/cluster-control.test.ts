// The control plane (host/cluster/control.ts) of four nodes on a real
// 3-node nats-server cluster, member and lease ttl TTL_MS = 600 ms, rounds
// every 150 ms: a dataset of 6 shards with replication 2 on three nodes is
// led 2 shards a node, each shard by exactly the node its placement names,
// with 4 copies a node; a node that crashes (no leave) has its leaderships
// taken over by the others, with the next term, within a stated bound;
// a fourth node joining receives copies and leaderships, which the old
// leaders hand over (release) rather than time out; a graceful leave moves
// its shards at once.
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { ControlNode } from '../host/cluster/control.js';
import { PlacementTable } from '../host/cluster/placement-table.js';
import { LeaseTable } from '../host/cluster/leases.js';
import { ErrorCode } from '../host/errors.js';

const TTL_MS = 600;
const ROUND_MS = 150;
// member ttl + a round to rebalance + the lease ttl + a round to take over, plus NATS round trips on a loaded machine
const FAILOVER_BOUND_MS = 2 * TTL_MS + 2 * ROUND_MS + 2000;

const { client } = await clusterAndClient(t, 'control');

interface Probe {
  node: ControlNode;
  copies: Set<string>;
  dropped: string[];
  lost: string[];
}

async function node(id: string): Promise<Probe> {
  const p: Probe = { node: undefined as never, copies: new Set(), dropped: [], lost: [] };
  p.node = await ControlNode.open(client, { nodeId: id, address: `http://${id}`, ttlMs: TTL_MS, roundMs: ROUND_MS }, {
    copy: (d, s) => p.copies.add(`${d}/${s}`),
    drop: (d, s) => {
      p.copies.delete(`${d}/${s}`);
      p.dropped.push(`${d}/${s}`);
    },
    lost: (d, s) => p.lost.push(`${d}/${s}`),
  });
  return p;
}

const leaders = (ps: Probe[]): Map<number, string> => {
  const out = new Map<number, string>();
  for (const p of ps) for (const l of p.node.roles().leading) if (l.dataset === 'docs') out.set(l.shard, p.node.nodeId);
  return out;
};

const [a, b, c] = [await node('q1'), await node('q2'), await node('q3')];
t.teardown(async () => {
  for (const p of [a, b, c]) await p.node.stop(false).catch(() => {});
});

t.test('6 shards, replication 2, three nodes: two leaderships and four copies a node, as placed', async (t) => {
  await a.node.createDataset({ name: 'docs', shards: 6, replicas: 2 });
  await b.node.createDataset({ name: 'docs', shards: 6, replicas: 2 });
  await t.rejects(c.node.createDataset({ name: 'docs', shards: 4, replicas: 2 }), { code: ErrorCode.EXISTS }, 'the same name with other parameters is EXISTS');
  await Promise.all([a, b, c].map((p) => p.node.start()));
  await until('every shard led', () => leaders([a, b, c]).size === 6, 4 * TTL_MS);
  // the first rounds may have placed on fewer nodes before all three had joined: wait for the balance
  await until('balanced', () => [a, b, c].every((p) => p.node.roles().leading.length === 2), 6 * TTL_MS);
  const placed = (await (await PlacementTable.open(client)).read('docs')).shards;
  for (const [shard, who] of leaders([a, b, c])) t.equal(who, placed.get(shard)!.leader, `shard ${shard} is led by its placed leader ${who}`);
  t.same([a, b, c].map((p) => p.copies.size), [4, 4, 4], 'four copies a node');
});

t.test('a node crashes: its leaderships move to the others, with the next term, within the bound', async (t) => {
  const before = leaders([a, b, c]);
  const moved = [...before].filter(([, who]) => who === 'q3').map(([s]) => s);
  const terms = new Map(c.node.roles().leading.map((l) => [l.shard, l.term]));
  await c.node.stop(false);
  const took = await until('failover', () => {
    const now = leaders([a, b]);
    return moved.every((s) => now.has(s));
  }, FAILOVER_BOUND_MS);
  t.comment(`failover: q3's ${moved.length} shards led again ${Math.round(took)} ms after it crashed (bound ${FAILOVER_BOUND_MS} ms)`);
  const after = [a, b].flatMap((p) => p.node.roles().leading);
  for (const s of moved) t.ok(after.find((l) => l.shard === s)!.term > terms.get(s)!, `shard ${s}: a higher term`);
  t.same([a, b].map((p) => p.node.roles().leading.length), [3, 3], 'three leaderships each');
  await until('every shard on both survivors', () => a.copies.size === 6 && b.copies.size === 6, 4 * TTL_MS);
  t.pass('every shard has a copy on both survivors');
});

t.test('a node joins: it receives copies and leaderships, handed over, not timed out', async (t) => {
  const d = await node('q4');
  t.teardown(() => d.node.stop(false));
  const lost = [...a.lost, ...b.lost].length;
  const started = performance.now();
  await d.node.start();
  await until('q4 leads', () => d.node.roles().leading.length >= 2, 4 * TTL_MS);
  const took = performance.now() - started;
  t.comment(`q4 led ${d.node.roles().leading.length} shards ${Math.round(took)} ms after joining`);
  await until('balanced leaderships', () => [a, b, d].every((p) => p.node.roles().leading.length === 2), 4 * TTL_MS);
  t.equal(leaders([a, b, d]).size, 6, 'every shard led once');
  t.equal([...a.lost, ...b.lost].length, lost, 'the old leaders released (no loss, no fencing)');
  t.ok(d.copies.size >= 3, `q4 holds ${d.copies.size} copies`);
  t.ok([...a.dropped, ...b.dropped].length >= 1, 'and the old owners were told to drop what moved');
  // a graceful leave: q4's shards move back at once (released, not waited out)
  const left = performance.now();
  await d.node.stop(true);
  await until('after the leave', () => leaders([a, b]).size === 6, 2 * TTL_MS + 1000);
  t.comment(`after q4 left gracefully its shards were led again in ${Math.round(performance.now() - left)} ms`);
  const table = await LeaseTable.open(client, { nodeId: 'observer', ttlMs: TTL_MS });
  for (let s = 0; s < 6; s++) t.not((await table.holderOf('docs', s))?.record.holder, 'q4', `shard ${s} not held by q4`);
});
