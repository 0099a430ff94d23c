// Dropping a dataset on a cluster (host/store/cluster-datasets.ts), three
// cluster nodes in this process on a real 3-node nats-server cluster: the
// drop resolves once every node has closed its copies (their shards
// disposed) and deleted its local logs, with the stream, images, placement,
// leases and tombstone gone from NATS; the name created again is a new
// dataset that never meets the old one's points; a node that was down
// during the drop deletes its local logs of it when it opens; random
// create / upsert / drop sequences through random nodes answer as a Map.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { clusterAndClient, until } from './helpers/cluster-setup.js';
import { clustered } from './helpers/data.js';
import { openKvBucket } from '../host/cluster/connect.js';
import { ImageStore } from '../host/cluster/images.js';
import { checkDatasetName, datasetToken, incarnation, leaseKey, nameOf, streamName } from '../host/cluster/names.js';
import { ErrorCode, QuiverError } from '../host/errors.js';
import { ClusterNode } from '../host/store/cluster-node.js';
import type { Shard } from '../host/core/shard.js';

const TTL = 1500;
const { cluster, client } = await clusterAndClient(t, 'cluster-drop');
const images = await ImageStore.open(client);
const dir = mkdtempSync(join(tmpdir(), 'quiver-cdrop-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const open = (id: string) => ClusterNode.open({ servers: cluster.servers, nodeId: id, dir: join(dir, id), ttlMs: TTL, imageEvery: 0 });
const nodes: ClusterNode[] = [];
for (const id of ['n1', 'n2', 'n3']) nodes.push(await open(id));
t.teardown(() => Promise.all(nodes.map((n) => n.close())));
const placementKv = await openKvBucket(client, 'quiver-placement', 3, 'placement');
const leasesKv = await openKvBucket(client, 'quiver-leases', 3, 'leases');
const catalogKv = await openKvBucket(client, 'quiver-datasets', 3, 'datasets');
const appliedKv = await openKvBucket(client, 'quiver-applied', 3, 'applied');

const present = async (kv: typeof placementKv, key: string): Promise<boolean> => (await kv.get(key))?.operation === 'PUT';

function led(name: string, shards: number, among: readonly ClusterNode[]): boolean {
  const leading = among.flatMap((n) => n.roles().leading.filter((l) => l.dataset === name).map((l) => ({ n, shard: l.shard })));
  return new Set(leading.map((l) => l.shard)).size === shards && leading.every(({ n, shard }) => n.replica(name, shard)?.role === 'leader');
}

/** What NATS and the nodes' directories still hold of an incarnation. */
async function leftovers(id: string, shards: number): Promise<string[]> {
  const left: string[] = [];
  if (await client.jsm.streams.info(streamName(id)).then(() => true, () => false)) left.push('stream');
  for (let s = 0; s < shards; s++) {
    if ((await images.list(id, s)).length > 0) left.push(`images of ${s}`);
    if (await present(leasesKv, leaseKey(id, s))) left.push(`lease of ${s}`);
    for (const n of ['n1', 'n2', 'n3']) if (await present(appliedKv, `${datasetToken(id)}.${s}.${n}`)) left.push(`applied of ${s} on ${n}`);
  }
  if (await present(placementKv, datasetToken(id))) left.push('placement');
  if (await present(catalogKv, `dropped.${datasetToken(id)}`)) left.push('tombstone');
  for (const n of ['n1', 'n2', 'n3']) if (existsSync(join(dir, n, datasetToken(id)))) left.push(`local logs on ${n}`);
  return left;
}

t.test('an incarnation is the name and a uid: injective tokens, the name back, a user name with no uid', async (t) => {
  const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/);
  fc.assert(fc.property(name, name, fc.option(fc.stringMatching(/^[0-9a-f]{16}$/), { nil: undefined }), fc.option(fc.stringMatching(/^[0-9a-f]{16}$/), { nil: undefined }), (n1, n2, u1, u2) => {
    const [a, b] = [incarnation(n1, u1), incarnation(n2, u2)];
    if (nameOf(a) !== n1) return false;
    return (a === b) === (datasetToken(a) === datasetToken(b));
  }), { numRuns: 2000 });
  t.throws(() => checkDatasetName('a~0123'), { code: ErrorCode.INVALID_ARGUMENT }, 'a user\'s name cannot carry a uid');
  t.throws(() => checkDatasetName('a'.repeat(66).split('').join('.')), { code: ErrorCode.INVALID_ARGUMENT }, 'nor be too long once escaped with its uid');
  t.doesNotThrow(() => checkDatasetName('a.b_c-d'));
});

t.test('a drop takes the dataset off every node and out of NATS; the name created again is a new dataset', async (t) => {
  const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
  const DIM = 16;
  const N = 6000;
  await a.createDataset('gone', { shards: 3, replicas: 2, dim: DIM, M: 8, efConstruction: 32 });
  await until('every shard led', () => led('gone', 3, nodes), 20_000);
  await a.upsert('gone', Array.from({ length: N }, (_, i) => i), clustered(N, DIM, 6, 3));
  const { id } = await a.dataset('gone');
  t.equal(nameOf(id), 'gone', `its incarnation ${id}`);
  t.same((await Promise.all(nodes.map((n) => n.checkpoint('gone')))).flat().sort(), [0, 1, 2], 'each shard imaged by its leader');
  const shards: Shard[] = [];
  await until('every copy rebuilt', () => nodes.every((n) => n.roles().copies.filter((x) => x.dataset === 'gone').every((x) => n.replica('gone', x.shard) !== null)), 20_000);
  for (const n of nodes) for (const x of n.roles().copies) if (x.dataset === 'gone') shards.push(n.replica('gone', x.shard)!.shard);
  t.equal(shards.length, 6, 'six copies, 2 of each shard');
  const before = await leftovers(id, 3);
  t.same(before.filter((l) => !l.startsWith('local logs') && !l.startsWith('applied')), ['stream', 'images of 0', 'lease of 0', 'images of 1', 'lease of 1', 'images of 2', 'lease of 2', 'placement'],
    'before the drop: its stream, images, leases and placement (and no tombstone)');
  t.ok(before.some((l) => l.startsWith('local logs')), `and local logs (${before.filter((l) => l.startsWith('local logs')).join(', ')})`);

  const start = performance.now();
  t.equal(await b.dropDataset('gone'), true, 'dropped through n2');
  t.comment(`the drop took ${(performance.now() - start).toFixed(0)} ms (ttl ${TTL} ms: rounds every ${TTL / 4} ms)`);
  t.same(nodes.map((n) => n.roles().copies.filter((x) => x.dataset === 'gone').length), [0, 0, 0], 'no node holds a copy');
  t.ok(shards.every((s) => s.disposed), 'every copy\'s shard disposed (its memory unmapped)');
  t.same(await leftovers(id, 3), [], 'stream, images, applied reports, leases, placement, tombstone and every local log: gone');
  for (const n of nodes) await t.rejects(n.count('gone'), { code: ErrorCode.NOT_FOUND }, `${n.nodeId}: not found`);
  await t.rejects(c.upsert('gone', [1], new Float32Array(DIM)), { code: ErrorCode.NOT_FOUND }, 'a write is NOT_FOUND, not retried into nowhere');
  t.equal(await c.dropDataset('gone'), false, 'dropping it again: false');

  await c.createDataset('gone', { shards: 2, replicas: 1, dim: 8, M: 8, efConstruction: 32 });
  const again = await c.dataset('gone');
  t.not(again.id, id, `created again: a new incarnation ${again.id}`);
  await until('the new one led', () => led('gone', 2, nodes), 20_000);
  await b.upsert('gone', Array.from({ length: 50 }, (_, i) => 100_000 + i), clustered(50, 8, 2, 9));
  for (const n of nodes) t.equal(await n.count('gone'), 50, `${n.nodeId} counts the new dataset's 50 points only`);
  const hits = await a.search('gone', new Float32Array(8), 60);
  t.ok(hits.ids.length === 50 && hits.ids.every((x) => Number(x) >= 100_000), 'a search finds none of the old points');
  await t.rejects(a.upsert('gone', [7], new Float32Array(DIM)), { code: ErrorCode.DIMENSION }, 'the old dimension is refused');
  // nats-server 2.9 may store both compare-and-set deletes (nats-io/nats-server#4320): then both answer true
  const twice = await Promise.all([a.dropDataset('gone'), b.dropDataset('gone')]);
  t.ok(twice.includes(true), `two drops at once both resolve, at least one true (${twice.join(', ')})`);
  t.same(await leftovers(again.id, 2), []);
});

t.test('two creates of one name at once through two nodes: one incarnation stands everywhere, the other\'s stream is deleted', async (t) => {
  const [a, b] = nodes as [ClusterNode, ClusterNode];
  const opts = { shards: 1, replicas: 1, dim: 4, M: 8, efConstruction: 16 };
  const wrong: string[] = [];
  for (let i = 0; i < 8; i++) {
    const r = await Promise.allSettled([a.createDataset('twin', opts), b.createDataset('twin', opts)]);
    const ids = await Promise.all(nodes.map(async (n) => (await n.dataset('twin')).id));
    const streams: string[] = [];
    for await (const name of client.jsm.streams.names()) if (name.startsWith('QUIVER_twin')) streams.push(name);
    if (r.some((x) => x.status === 'rejected') || new Set(ids).size !== 1 || JSON.stringify(streams) !== JSON.stringify([streamName(ids[0]!)])) {
      wrong.push(`try ${i}: ${r.map((x) => x.status).join('/')}, ids ${ids.join(',')}, streams ${streams.join(',')}`);
    }
    await a.dropDataset('twin');
  }
  t.same(wrong, [], '8 tries: both creates resolve, every node sees one incarnation, only its stream is left');
});

t.test('a node down during the drop deletes its local logs of it when it opens again', async (t) => {
  const [a, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
  await a.createDataset('down', { shards: 3, replicas: 2, dim: 8, M: 8, efConstruction: 32 });
  await until('every shard led', () => led('down', 3, nodes), 20_000);
  await a.upsert('down', Array.from({ length: 300 }, (_, i) => i), clustered(300, 8, 3, 4));
  const { id } = await a.dataset('down');
  // n3 leads one of the 3 shards (each node leads one): it wrote local logs
  await until('n3 leads a shard of it', () => c.roles().leading.some((l) => l.dataset === 'down'), 20_000);
  const local = join(dir, 'n3', datasetToken(id));
  t.ok(existsSync(local), 'n3 has local logs of it');
  await c.close(false);
  nodes.splice(2, 1);
  const start = performance.now();
  t.equal(await a.dropDataset('down'), true, 'dropped while n3 is down');
  t.comment(`the drop took ${(performance.now() - start).toFixed(0)} ms (n3 still counted alive until its membership ran out)`);
  t.ok(existsSync(local), 'n3\'s local logs are still on its disk');
  const back = await open('n3');
  nodes.push(back);
  t.notOk(existsSync(local), 'n3 deleted them when it opened');
  t.same(back.roles().copies.filter((x) => x.dataset === 'down'), [], 'and placed nothing of it');
  t.same(await leftovers(id, 3), []);
});

t.test('random create / upsert / drop sequences through random nodes answer as a Map of name -> (dim, count)', async (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('create' as const), name: fc.constantFrom('p', 'q'), dim: fc.constantFrom(4, 6), node: fc.nat(2) }),
    fc.record({ kind: fc.constant('upsert' as const), name: fc.constantFrom('p', 'q'), n: fc.integer({ min: 1, max: 40 }), node: fc.nat(2) }),
    fc.record({ kind: fc.constant('drop' as const), name: fc.constantFrom('p', 'q'), node: fc.nat(2) }),
  );
  let runs = 0;
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 3, maxLength: 7 }), async (ops) => {
    runs++;
    const model = new Map<string, { dim: number; next: number }>();
    const code = (err: unknown): string => (err instanceof QuiverError ? err.code : String(err));
    for (const o of ops) {
      const n = nodes[o.node]!;
      const have = model.get(o.name);
      if (o.kind === 'create') {
        const r = await n.createDataset(o.name, { shards: 2, replicas: 2, dim: o.dim, M: 8, efConstruction: 16 }).then(() => 'ok', code);
        if (have === undefined) model.set(o.name, { dim: o.dim, next: 0 });
        if (r !== (have === undefined || have.dim === o.dim ? 'ok' : ErrorCode.EXISTS)) return false;
      } else if (o.kind === 'upsert') {
        const dim = have?.dim ?? 4;
        const ids = Array.from({ length: o.n }, (_, i) => (have?.next ?? 0) + i);
        const r = await n.upsert(o.name, ids, clustered(o.n, dim, 2, ids[0]!)).then(() => 'ok', code);
        if (r !== (have === undefined ? ErrorCode.NOT_FOUND : 'ok')) return false;
        if (have !== undefined) have.next += o.n;
      } else {
        if ((await n.dropDataset(o.name)) !== (have !== undefined)) return false;
        model.delete(o.name);
      }
      for (const name of ['p', 'q']) {
        const want = model.get(name);
        const got = await nodes[(o.node + 1) % 3]!.count(name).catch(code);
        if (got !== (want === undefined ? ErrorCode.NOT_FOUND : want.next)) return false;
      }
    }
    for (const name of model.keys()) await nodes[0]!.dropDataset(name);
    return true;
  }), { numRuns: 6 });
  t.equal(runs, 6, 'six sequences, each ending with its datasets dropped');
  t.same((await nodes[0]!.datasets()).map((d) => d.name), [], 'nothing left in the catalog');
});
