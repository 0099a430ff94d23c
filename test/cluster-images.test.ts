// Shard images (host/cluster/images.ts) in the object store of a real 3-node
// nats-server cluster (R=3): a streamed round trip of 12 MiB, newest-image
// lookup, pruning, and corrupted objects (a flipped byte, a lost chunk).
import t from 'tap';
import { createHash } from 'node:crypto';
import { DeliverPolicy } from '@nats-io/jetstream';
import { NatsCluster } from './helpers/nats-cluster.js';
import { ClusterClient } from '../host/cluster/connect.js';
import { ImageStore, type ImageRead } from '../host/cluster/images.js';
import { imageName } from '../host/cluster/names.js';

const MiB = 1024 * 1024;
const cluster = await NatsCluster.start();
t.teardown(() => cluster.stop());
const client = await ClusterClient.connect({ servers: cluster.servers, name: 'images' });
t.teardown(() => client.close());
const images = await ImageStore.open(client);

/** Deterministic pseudo-random bytes, `size` in all, in parts of `part` bytes. */
async function* bytes(size: number, part: number, seed = 1): AsyncGenerator<Uint8Array> {
  let x = seed;
  for (let off = 0; off < size; off += part) {
    const b = new Uint8Array(Math.min(part, size - off));
    for (let i = 0; i < b.length; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
    yield b;
  }
}

async function sha(chunks: AsyncIterable<Uint8Array>): Promise<{ hex: string; size: number; parts: number }> {
  const h = createHash('sha256');
  let size = 0, parts = 0;
  for await (const c of chunks) { h.update(c); size += c.length; parts++; }
  return { hex: h.digest('hex'), size, parts };
}

async function drain(read: ImageRead): Promise<void> {
  for await (const _ of read.chunks) { /* consume */ }
}

t.test('a 12 MiB image streams in and out unchanged, with its lsn and seq', async (t) => {
  const size = 12 * MiB + 12345;
  const want = await sha(bytes(size, MiB));
  const info = await images.put('big', 0, 5000, 4321, bytes(size, MiB));
  t.same({ lsn: info.lsn, seq: info.seq, size: info.size, shard: info.shard, dataset: info.dataset }, { lsn: 5000, seq: 4321, size, shard: 0, dataset: 'big' }, 'the stored image\'s info');
  t.match(info.digest, /^SHA-256=/, 'the object store recorded its SHA-256');
  const read = await images.get('big', 0, 5000);
  t.equal(read.info.seq, 4321, 'get reports the seq to replay after');
  const got = await sha(read.chunks);
  t.equal(got.size, size, 'every byte came back');
  t.equal(got.hex, want.hex, 'the same bytes');
  t.ok(got.parts > 50, `streamed in ${got.parts} chunks, not one buffer`);
  const small = await images.put('big', 1, 1, 1, new Uint8Array([1, 2, 3]));
  t.equal(small.size, 3, 'a Uint8Array source works too');
  const parts: Uint8Array[] = [];
  for await (const c of (await images.get('big', 1, 1)).chunks) parts.push(c);
  t.same(Buffer.concat(parts), Buffer.from([1, 2, 3]), 'and reads back');
});

t.test('the newest image is the highest lsn; list is ordered; prune keeps the newest', async (t) => {
  for (const lsn of [10, 30, 20]) await images.put('pick', 0, lsn, lsn * 2, new Uint8Array(100).fill(lsn));
  await images.put('pick', 1, 99, 1, new Uint8Array(10));
  await images.put('pick.x', 0, 500, 1, new Uint8Array(10));
  t.equal((await images.newest('pick', 0))?.lsn, 30, 'newest of shard 0 is lsn 30');
  t.same((await images.list('pick', 0)).map((i) => i.lsn), [10, 20, 30], 'list is oldest first and holds only that shard');
  t.equal((await images.newest('pick', 1))?.lsn, 99, 'another shard has its own newest');
  t.equal(await images.newest('pick', 2), null, 'a shard with no image has none');
  t.same(await images.prune('pick', 0, 1), [10, 20], 'prune deletes all but the newest');
  t.same((await images.list('pick', 0)).map((i) => i.lsn), [30], 'one left');
  await t.rejects(images.get('pick', 0, 10), { code: 'QUIVER_ERR_NOT_FOUND' }, 'a pruned image is gone');
  t.equal(await images.delete('pick', 0, 10), false, 'deleting it again finds nothing');
  const again = await images.put('pick', 0, 30, 77, new Uint8Array(5));
  t.equal(again.seq, 77, 'a second put at the same lsn replaces the image');
  t.equal((await images.get('pick', 0, 30)).info.size, 5, 'with its new bytes');
});

t.test('deleted images leave nothing for list() to read: the bucket\'s meta subjects stay as many as the images kept', async (t) => {
  const metas = async (): Promise<number> => Object.keys((await client.jsm.streams.info(`OBJ_${images.bucket}`, { subjects_filter: `$O.${images.bucket}.M.>` })).state.subjects ?? {}).length;
  const before = await metas();
  for (let lsn = 1; lsn <= 12; lsn++) {
    await images.put('churn', 0, lsn, lsn, new Uint8Array(64).fill(lsn));
    await images.prune('churn', 0, 2);
  }
  t.same((await images.list('churn', 0)).map((i) => i.lsn), [11, 12], 'the two newest kept');
  t.equal(await metas(), before + 2, '12 images put and 10 deleted: 2 meta subjects more, not 12');
  t.equal(await images.delete('churn', 0, 11), true);
  t.equal(await images.delete('churn', 0, 11), false, 'deleting it again finds nothing');
  t.equal(await metas(), before + 1);
});

/** The chunk messages of an image, in order, from the bucket's stream. */
async function chunkMessages(name: string): Promise<{ stream: string; subject: string; msgs: { seq: number; data: Uint8Array }[] }> {
  const os = await client.objm.open(images.bucket);
  const info = (await os.info(name))!;
  const stream = `OBJ_${images.bucket}`;
  const subject = `$O.${images.bucket}.C.${info.nuid}`;
  const consumer = await client.js.consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
  const msgs: { seq: number; data: Uint8Array }[] = [];
  const it = await consumer.consume();
  for await (const m of it) {
    msgs.push({ seq: m.seq, data: m.data.slice() });
    if (m.info.pending === 0) break;
  }
  await it.close();
  return { stream, subject, msgs };
}

t.test('a corrupted image is detected: a flipped byte, a lost chunk', async (t) => {
  await images.put('bad', 0, 1, 1, bytes(2 * MiB, MiB, 7));
  const { stream, subject, msgs } = await chunkMessages(imageName('bad', 0, 1));
  t.ok(msgs.length > 4, `the image is ${msgs.length} chunks`);
  await client.jsm.streams.purge(stream, { filter: subject });
  for (const [i, m] of msgs.entries()) {
    const data = i === 3 ? Uint8Array.from(m.data, (b, j) => (j === 100 ? b ^ 1 : b)) : m.data;
    await client.js.publish(subject, data);
  }
  await t.rejects(drain(await images.get('bad', 0, 1)), { code: 'QUIVER_ERR_CORRUPT_IMAGE', message: /SHA-256/ }, 'one flipped bit fails the read');

  await images.put('bad', 0, 2, 1, bytes(2 * MiB, MiB, 8));
  const lost = await chunkMessages(imageName('bad', 0, 2));
  await client.jsm.streams.deleteMessage(lost.stream, lost.msgs[5]!.seq);
  await t.rejects(drain(await images.get('bad', 0, 2)), { code: 'QUIVER_ERR_CORRUPT_IMAGE' }, 'a lost chunk fails the read');

  await images.put('bad', 0, 3, 1, bytes(MiB, MiB, 9));
  t.equal((await sha((await images.get('bad', 0, 3)).chunks)).size, MiB, 'an intact image next to them still reads');
});

t.test('bad input is refused with a coded error', async (t) => {
  const I = { code: 'QUIVER_ERR_INVALID_ARGUMENT' };
  await t.rejects(images.put('x', 0, -1, 0, new Uint8Array(1)), I, 'negative lsn');
  await t.rejects(images.put('x', 0, 1, 1.5, new Uint8Array(1)), I, 'fractional seq');
  await t.rejects(images.put('x', 0, 1, 0, 'text' as unknown as Uint8Array), I, 'a string source');
  await t.rejects(images.put('x', 99999, 1, 0, new Uint8Array(1)), I, 'shard out of range');
  await t.rejects(images.prune('x', 0, 0), I, 'keep 0');
  await t.rejects(ImageStore.open(client, { replicas: 9 }), I, '9 replicas');
  t.same(await images.list('x', 0), [], 'nothing was stored');
  await t.rejects(images.get('x', 0, 1), { code: 'QUIVER_ERR_NOT_FOUND' }, 'a missing image is NOT_FOUND');
});
