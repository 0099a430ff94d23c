// Qdrant's snapshot routes through the app: the Qdrant JS client for what it
// has (create, list, delete, recover from a location), fetch for download
// and upload (multipart/form-data as Qdrant's clients send it, and raw).
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { QdrantClient } from '@qdrant/js-client-rest';
import { Store } from '../host/index.js';
import { buildServer } from '../host/server/app.js';
import { multipartField } from '../host/server/routes/snapshots.js';
import { rng } from './helpers/data.js';

const DIM = 8;
const N = 400;

const snapshots = await mkdtemp(join(tmpdir(), 'quiver-server-snap-'));
t.teardown(() => rm(snapshots, { recursive: true, force: true }));
const store = await Store.open({ threads: 2, snapshotsPath: snapshots });
const app = buildServer(store);
const url = await app.listen({ host: '127.0.0.1', port: 0 });
t.teardown(async () => {
  await app.close();
  await store.close();
});
const client = new QdrantClient({ url, checkCompatibility: false });

const random = rng(3);
const points = Array.from({ length: N }, (_, i) => ({ id: i, vector: Array.from({ length: DIM }, () => random() - 0.5), payload: { i, even: i % 2 === 0 } }));
const queries = Array.from({ length: 10 }, () => Array.from({ length: DIM }, () => random() - 0.5));

async function answers(name: string): Promise<unknown> {
  const hits = await Promise.all(queries.map((q) => client.query(name, { query: q, limit: 5, with_payload: true })));
  const got = await client.retrieve(name, { ids: [0, 7, 123, 399], with_vector: true, with_payload: true });
  return { hits, got, count: (await client.count(name)).count };
}

const body = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(bytes);

t.test('create, list, download, upload round trip, recover from a location, delete', async (t) => {
  t.equal(await client.createCollection('docs', { vectors: { size: DIM, distance: 'Cosine' }, shard_number: 2 }), true);
  await client.upsert('docs', { wait: true, points });
  const original = await answers('docs');

  const snap = await client.createSnapshot('docs');
  t.match(snap, { name: /^docs-.*\.snapshot$/, creation_time: /^\d{4}-\d\d-\d\dT[\d:.]+$/, size: Number, checksum: /^[0-9a-f]{64}$/ });
  t.same(await client.listSnapshots('docs'), [snap]);

  const download = await fetch(`${url}/collections/docs/snapshots/${snap!.name}`);
  t.equal(download.status, 200);
  t.equal(download.headers.get('content-type'), 'application/octet-stream');
  const bytes = new Uint8Array(await download.arrayBuffer());
  t.equal(bytes.length, snap!.size);
  t.equal(createHash('sha256').update(bytes).digest('hex'), snap!.checksum, 'the download is the file listed');

  // upload as Qdrant's clients do: multipart/form-data, the file in field `snapshot`, after another field
  const form = new FormData();
  form.append('note', 'not the snapshot\r\n--');
  form.append('snapshot', new Blob([body(bytes)]), snap!.name);
  const up = await fetch(`${url}/collections/restored/snapshots/upload?priority=snapshot&checksum=${snap!.checksum}`, { method: 'POST', body: form });
  t.same({ status: up.status, result: ((await up.json()) as { result: unknown }).result }, { status: 200, result: true });
  t.same(await answers('restored'), original, 'the uploaded snapshot answers as the original');
  t.match(await client.getCollection('restored'), { points_count: N, config: { params: { shard_number: 2, vectors: { size: DIM, distance: 'Cosine' } } } });

  // raw bytes over an existing collection that has changed since
  await client.delete('docs', { wait: true, points: [1, 2, 3] });
  const raw = await fetch(`${url}/collections/docs/snapshots/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: body(bytes) });
  t.equal(raw.status, 200);
  t.same(await answers('docs'), original);
  t.same((await readdir(snapshots)).filter((n) => n.startsWith('.')), [], 'no upload or part file is left');

  // recover from a location in the snapshots directory (the client's recoverSnapshot)
  const location = pathToFileURL(join(snapshots, 'docs', snap!.name)).href;
  t.equal(await client.recoverSnapshot('fromfile', { location }), true);
  t.same(await answers('fromfile'), original);

  t.equal(await client.deleteSnapshot('docs', snap!.name), true);
  t.same(await client.listSnapshots('docs'), []);
});

t.test('errors: absent snapshot or collection 404, damaged upload 400 and nothing changes', async (t) => {
  await client.createCollection('e', { vectors: { size: DIM, distance: 'Dot' } });
  await client.upsert('e', { wait: true, points: points.slice(0, 50) });
  const before = await answers('e');
  const snap = (await client.createSnapshot('e'))!;

  for (const [method, path] of [['GET', '/collections/e/snapshots/nope.snapshot'], ['DELETE', '/collections/e/snapshots/nope.snapshot'], ['GET', '/collections/gone/snapshots'], ['POST', '/collections/gone/snapshots']] as const) {
    const res = await fetch(`${url}${path}`, { method });
    const json = (await res.json()) as { status: { error: string } };
    t.equal(res.status, 404, `${method} ${path}`);
    t.match(json.status.error, path.includes('gone') ? /Collection `gone` doesn't exist/ : /Snapshot nope\.snapshot of collection `e` doesn't exist/);
  }
  const traversal = await fetch(`${url}/collections/e/snapshots/..%2F..%2Fetc`);
  t.equal(traversal.status, 400);

  const bytes = new Uint8Array(await (await fetch(`${url}/collections/e/snapshots/${snap.name}`)).arrayBuffer());
  const damaged = Uint8Array.from(bytes);
  damaged[Math.floor(damaged.length / 2)] ^= 4;
  const form = new FormData();
  form.append('snapshot', new Blob([body(damaged)]), 'x.snapshot');
  const bad = await fetch(`${url}/collections/e/snapshots/upload`, { method: 'POST', body: form });
  t.equal(bad.status, 400);
  t.match(((await bad.json()) as { status: { error: string } }).status.error, /not a valid quiver snapshot: .*corrupt at byte \d+/);
  const wrongSum = await fetch(`${url}/collections/e/snapshots/upload?checksum=${'0'.repeat(64)}`, {
    method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: body(bytes),
  });
  t.equal(wrongSum.status, 400);
  t.match(((await wrongSum.json()) as { status: { error: string } }).status.error, /checksum mismatch/);
  const noField = new FormData();
  noField.append('other', new Blob([body(bytes)]), 'x.snapshot');
  t.equal((await fetch(`${url}/collections/e/snapshots/upload`, { method: 'POST', body: noField })).status, 400);
  t.equal((await fetch(`${url}/collections/e/snapshots/upload`, { method: 'POST' })).status, 415);
  const status = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'resolved', (err: { status?: number }) => err.status);
  t.equal(await status(client.recoverSnapshot('e', { location: pathToFileURL('/etc/passwd').href })), 400, 'a file outside the snapshots directory');
  t.equal(await status(client.recoverSnapshot('e', { location: 'http://example.invalid/x.snapshot' })), 400, 'a URL');
  t.same(await answers('e'), before, 'the collection is unchanged');
  t.same((await client.getCollections()).collections.map((c) => c.name).includes('x'), false);
});

t.test('multipart parsing holds wherever the body is split into chunks', async (t) => {
  const content = Buffer.from('ab\r\n--notquite\r\n--BOUNDAR\r\n-\r\nyz\r');
  const whole = Buffer.concat([
    Buffer.from('preamble\r\n--BOUNDARY\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'),
    Buffer.from('--BOUNDARY\r\nContent-Disposition: form-data; name="snapshot"; filename="s.snapshot"\r\nContent-Type: application/octet-stream\r\n\r\n'),
    content,
    Buffer.from('\r\n--BOUNDARY--\r\nepilogue'),
  ]);
  async function parse(chunks: Buffer[]): Promise<Buffer> {
    const got: Buffer[] = [];
    const found = await multipartField((async function* () {
      yield* chunks;
    })(), 'BOUNDARY', 'snapshot', async (c) => {
      got.push(Buffer.from(c));
    });
    return found ? Buffer.concat(got) : Buffer.alloc(0);
  }
  let same = 0;
  for (let at = 0; at <= whole.length; at++) {
    if ((await parse([whole.subarray(0, at), whole.subarray(at)])).equals(content)) same++;
  }
  t.equal(same, whole.length + 1, 'every two-chunk split');
  t.ok((await parse([...whole].map((b) => Buffer.of(b)))).equals(content), 'one byte per chunk');
  await t.rejects(multipartField((async function* () {
    yield whole.subarray(0, whole.length - 20);
  })(), 'BOUNDARY', 'snapshot', async () => {}), { message: /ends before its closing boundary/ });
});
