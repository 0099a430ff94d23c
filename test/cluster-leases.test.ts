// Shard leases (host/cluster/leases.ts) in a KV bucket of a real 3-node
// nats-server cluster. Lease time in these tests: TTL_MS = 800 ms (a short
// lease to keep the run short; a deployment would use seconds).
import t from 'tap';
import { NatsCluster } from './helpers/nats-cluster.js';
import { ClusterClient } from '../host/cluster/connect.js';
import { LeaseTable, type Lease } from '../host/cluster/leases.js';

const TTL_MS = 800;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const cluster = await NatsCluster.start();
t.teardown(() => cluster.stop());
const client = await ClusterClient.connect({ servers: cluster.servers, name: 'leases' });
t.teardown(() => client.close());
const table = (nodeId: string, ttlMs = TTL_MS) => LeaseTable.open(client, { nodeId, ttlMs });

async function acquire(tb: LeaseTable, dataset: string, shard: number): Promise<Lease> {
  const r = await tb.tryAcquire(dataset, shard);
  if (!r.acquired) throw new Error(`${tb.nodeId} did not get ${dataset}/${shard}: held by ${r.holder.holder}`);
  return r.lease;
}

t.test('acquire a free shard; another node sees the holder and does not get it', async (t) => {
  const [a, b] = [await table('node-a'), await table('node-b')];
  const before = Date.now();
  const lease = await acquire(a, 'ds', 0);
  t.equal(lease.holder, 'node-a', 'held by node-a');
  t.equal(lease.term, 1, 'first term');
  t.ok(lease.valid && lease.remainingMs > 0 && lease.remainingMs <= TTL_MS, 'valid, for at most the ttl');
  const held = await b.holderOf('ds', 0);
  t.equal(held?.record.holder, 'node-a', 'the record names its holder');
  t.ok(held!.record.deadline >= before + TTL_MS, 'and carries a deadline (the holder\'s clock + ttl)');
  const r = await b.tryAcquire('ds', 0);
  t.equal(r.acquired, false, 'node-b does not get a held shard');
  t.equal(r.acquired ? '' : r.holder.holder, 'node-a', 'and is told who holds it');
  t.equal(await b.holderOf('ds', 1), null, 'an untouched shard has no holder');
});

t.test('renewals keep a lease past many ttls; another node watching never takes it', async (t) => {
  const [a, b] = [await table('renew-a'), await table('renew-b')];
  const lease = await acquire(a, 'ds', 2);
  const revisions = [lease.revision];
  const end = performance.now() + 3 * TTL_MS;
  let taken = false;
  while (performance.now() < end) {
    await sleep(TTL_MS / 4);
    await a.renew(lease);
    revisions.push(lease.revision);
    if ((await b.tryAcquire('ds', 2)).acquired) taken = true;
  }
  t.equal(taken, false, 'node-b never acquired it');
  t.ok(lease.valid, 'the lease is still valid');
  t.ok(revisions.every((r, i) => i === 0 || r > revisions[i - 1]!), 'each renewal is a new revision');
});

t.test('expiry and takeover: an unrenewed lease passes to a watcher only once the holder considers it invalid', async (t) => {
  const [a, b] = [await table('exp-a'), await table('exp-b')];
  const lease = await acquire(a, 'ds', 3);
  let taken: Lease | null = null;
  let holderValidAtTakeover = true;
  let polls = 0;
  while (taken === null && polls++ < 100) {
    const r = await b.tryAcquire('ds', 3);
    if (r.acquired) {
      taken = r.lease;
      holderValidAtTakeover = lease.valid;
    } else {
      await sleep(50);
    }
  }
  t.ok(taken, `node-b took the shard over (after ${polls} polls)`);
  t.equal(holderValidAtTakeover, false, 'node-a\'s lease had already run out by its own clock');
  t.equal(taken!.term, 2, 'the takeover is the next term');
  t.equal((await a.holderOf('ds', 3))?.record.holder, 'exp-b', 'the record names the new holder');

  // The CAS loser: the old holder's renewal finds the revision moved on.
  await t.rejects(a.renew(lease), { code: 'QUIVER_ERR_FENCED' }, 'the old holder\'s renewal is refused: lost ownership');
  t.equal(lease.lost, true, 'its lease is lost');
  t.equal(lease.valid, false, 'and not valid');
  await t.rejects(a.renew(lease), { code: 'QUIVER_ERR_FENCED' }, 'for good');
  t.equal(await a.release(lease), false, 'releasing a lost lease does nothing');
  await b.renew(taken!);
  t.equal((await a.holderOf('ds', 3))?.record.holder, 'exp-b', 'the new holder keeps it');
});

t.test('a renewal that landed unheard (a timeout) is recognised: the next renewal is not a false FENCED', async (t) => {
  const a = await table('unheard');
  const lease = await acquire(a, 'ds', 5);
  const kv = await client.kvm.open('quiver-leases');
  const record = { holder: 'unheard', term: lease.term, ttlMs: TTL_MS, deadline: Date.now() + TTL_MS };
  const landed = await kv.update(lease.key, JSON.stringify(record), lease.revision);
  await a.renew(lease);
  t.ok(lease.revision > landed, 'renewed past the landed revision');
  t.equal(lease.lost, false, 'the lease is not lost');
  const other = { holder: 'someone-else', term: lease.term + 1, ttlMs: TTL_MS, deadline: 0 };
  await kv.update(lease.key, JSON.stringify(other), lease.revision);
  await t.rejects(a.renew(lease), { code: 'QUIVER_ERR_FENCED' }, 'a record of another holder is still a loss');
});

t.test('of nodes racing for a free shard exactly one wins', async (t) => {
  const tables = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((n) => table(n)));
  for (let shard = 10; shard < 15; shard++) {
    const results = await Promise.all(tables.map((tb) => tb.tryAcquire('race', shard)));
    const winners = results.filter((r) => r.acquired);
    t.equal(winners.length, 1, `shard ${shard}: one winner`);
    const holder = (await tables[0]!.holderOf('race', shard))?.record.holder;
    t.equal(winners[0]!.acquired ? winners[0]!.lease.holder : '', holder, `shard ${shard}: the winner is the recorded holder`);
    t.ok(results.filter((r) => !r.acquired).every((r) => !r.acquired && r.holder.holder === holder), `shard ${shard}: the losers are told who won`);
  }
});

t.test('release: another node may take the shard at once, with a higher term', async (t) => {
  const [a, b] = [await table('rel-a'), await table('rel-b')];
  const lease = await acquire(a, 'ds', 4);
  t.equal(await a.release(lease), true, 'released');
  t.equal(lease.valid, false, 'a released lease is not valid');
  t.equal(await b.holderOf('ds', 4), null, 'nobody holds it');
  const next = await acquire(b, 'ds', 4);
  t.equal(next.term, lease.term + 1, 'the term still grows');
  await t.rejects(a.renew(lease), { code: 'QUIVER_ERR_FENCED' }, 'the released lease cannot be renewed');
});

t.test('bad options are refused with a coded error', async (t) => {
  const I = { code: 'QUIVER_ERR_INVALID_ARGUMENT' };
  await t.rejects(LeaseTable.open(client, { nodeId: '', ttlMs: 1000 }), I, 'empty node id');
  await t.rejects(LeaseTable.open(client, { nodeId: 'a b', ttlMs: 1000 }), I, 'node id with a space');
  await t.rejects(LeaseTable.open(client, { nodeId: 'n', ttlMs: 50 }), I, 'ttl under 100 ms');
  await t.rejects(LeaseTable.open(client, { nodeId: 'n', ttlMs: 1000, bucket: 'a.b' }), I, 'bucket with a dot');
  await t.rejects(LeaseTable.open(client, { nodeId: 'n', ttlMs: 1000, replicas: 0 }), I, '0 replicas');
  const tb = await table('n');
  await t.rejects(tb.tryAcquire('ds', -1), I, 'negative shard');
  await t.rejects(tb.tryAcquire('', 0), I, 'empty dataset');
});
