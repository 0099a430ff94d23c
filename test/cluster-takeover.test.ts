// The foundation's pieces together, the way a takeover will use them, on a
// real 3-node nats-server cluster: node A leads a shard (lease, log, image),
// stops renewing (a pause); node B sees the lease expire, takes it, claims
// the log, rebuilds from A's newest image plus the log after it; A wakes up
// and is refused everywhere. Lease time TTL_MS = 600 ms.
import t from 'tap';
import { NatsCluster } from './helpers/nats-cluster.js';
import { ClusterClient } from '../host/cluster/connect.js';
import { ensureDatasetLog, ShardLog } from '../host/cluster/shard-stream.js';
import { LeaseTable, type Lease } from '../host/cluster/leases.js';
import { ImageStore } from '../host/cluster/images.js';

const TTL_MS = 600;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const cluster = await NatsCluster.start();
t.teardown(() => cluster.stop());
// One connection per node, each to a different nats-server first.
const [ca, cb] = [
  await ClusterClient.connect({ servers: [cluster.servers[0]!, ...cluster.servers], name: 'node-a' }),
  await ClusterClient.connect({ servers: [cluster.servers[1]!, ...cluster.servers], name: 'node-b' }),
];
t.teardown(async () => { await ca.close(); await cb.close(); });

t.test('a paused leader is taken over and fenced; the new owner rebuilds image + log exactly', async (t) => {
  await ensureDatasetLog(ca, 'col', { replicas: 3 });
  const [la, lb] = [await LeaseTable.open(ca, { nodeId: 'a', ttlMs: TTL_MS }), await LeaseTable.open(cb, { nodeId: 'b', ttlMs: TTL_MS })];
  const [ia, ib] = [await ImageStore.open(ca), await ImageStore.open(cb)];

  // A leads: lease, claim, 20 records, an image after the 12th, 8 more.
  const got = await la.tryAcquire('col', 0);
  t.ok(got.acquired, 'A acquires the shard');
  const leaseA = (got as { lease: Lease }).lease;
  const logA = new ShardLog(ca, 'col', 0);
  const { writer: wa } = await logA.claim(enc('claim a'), `a:${leaseA.term}:claim`);
  const applied: string[] = [];
  let imageSeq = 0;
  for (let i = 1; i <= 20; i++) {
    await wa.append(enc(`rec${i}`), `a:${leaseA.term}:${i}`);
    applied.push(`rec${i}`);
    if (i === 12) {
      imageSeq = wa.lastSeq;
      await ia.put('col', 0, i, imageSeq, enc(JSON.stringify(applied)));
    }
  }

  // A pauses (no renewals). B watches the lease until it expires, then takes it.
  let leaseB: Lease | null = null;
  for (let polls = 0; leaseB === null && polls < 100; polls++) {
    const r = await lb.tryAcquire('col', 0);
    if (r.acquired) leaseB = r.lease;
    else await sleep(50);
  }
  t.ok(leaseB, 'B takes the shard over once A\'s lease has expired');
  t.equal(leaseA.valid, false, 'by then A\'s own clock says its lease ran out');

  // B: claim the log first (fences A), then rebuild from the newest image and the log between.
  const logB = new ShardLog(cb, 'col', 0);
  const { writer: wb, markerSeq } = await logB.claim(enc('claim b'), `b:${leaseB!.term}:claim`);
  const image = (await ib.newest('col', 0))!;
  t.equal(image.lsn, 12, 'the newest image is A\'s, at lsn 12');
  const read = await ib.get('col', 0, image.lsn);
  const parts: Uint8Array[] = [];
  for await (const c of read.chunks) parts.push(c);
  const state = JSON.parse(dec(Buffer.concat(parts))) as string[];
  for await (const e of logB.read(image.seq + 1, markerSeq - 1)) state.push(dec(e.data));
  t.same(state, applied, 'image + replayed log = every record A wrote, each once');
  await wb.append(enc('rec21'), `b:${leaseB!.term}:21`);

  // A wakes up: its renewal and its next append are both refused.
  await t.rejects(la.renew(leaseA), { code: 'QUIVER_ERR_FENCED' }, 'A\'s renewal: lost ownership');
  await t.rejects(wa.append(enc('late'), `a:${leaseA.term}:21`), { code: 'QUIVER_ERR_FENCED' }, 'A\'s append: fenced');
  const log = [];
  for await (const e of logB.read()) log.push(dec(e.data));
  t.same(log, ['claim a', ...applied, 'claim b', 'rec21'], 'the log: A\'s records once, B\'s claim, B\'s write, nothing from A after the takeover');
  t.ok(leaseB!.term > leaseA.term, 'B\'s term is higher');
});
