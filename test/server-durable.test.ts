// `quiver serve --data-dir`: what a Qdrant user sees of durability. Data
// survives a graceful restart and a SIGKILL; wait=false answers
// `acknowledged` and is applied in order; a second server on the same
// directory refuses to start; --in-memory keeps nothing.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { call, startServer } from './helpers/server.js';

const DIM = 8;
const vec = (i: number): number[] => Array.from({ length: DIM }, (_, j) => Math.fround(Math.sin(i * 13 + j * 7)));

t.test('data written over HTTP survives a restart and a SIGKILL', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-serve-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let server = await startServer(['--data-dir', dir, '--threads', '2']);
  t.teardown(() => server.stop());
  const base = server.url;
  t.equal((await call(`${base}/collections/docs`, 'PUT', { vectors: { size: DIM, distance: 'Euclid' }, shard_number: 3 })).status, 200);
  const points = Array.from({ length: 300 }, (_, i) => ({ id: i, vector: vec(i), payload: { i, tag: `t${i % 3}` } }));
  const up = await call(`${base}/collections/docs/points?wait=true`, 'PUT', { points });
  t.equal(up.body.result.status, 'completed', 'wait=true: completed');
  const del = await call(`${base}/collections/docs/points/delete?wait=true`, 'POST', { points: [0, 1, 2] });
  t.equal(del.body.result.status, 'completed');
  const ack = await call(`${base}/collections/docs/points?wait=false`, 'PUT', { points: [{ id: 1000, vector: vec(1000), payload: { late: true } }] });
  t.equal(ack.status, 200);
  t.equal(ack.body.result.status, 'acknowledged', 'wait=false: acknowledged');
  const ackDel = await call(`${base}/collections/docs/points/delete?wait=false`, 'POST', { points: [3] });
  t.equal(ackDel.body.result.status, 'acknowledged');
  // a later wait=true write to every shard lands after them: they are applied by then
  await call(`${base}/collections/docs/points?wait=true`, 'PUT', { points: [{ id: 2000, vector: vec(2000) }, { id: 2001, vector: vec(2001) }, { id: 2002, vector: vec(2002) }] });

  const expectCount = 300 - 4 + 1 + 3;
  t.equal((await call(`${base}/collections/docs/points/count`, 'POST', {})).body.result.count, expectCount);

  // a second server on the same directory refuses at once
  const second = await startServer(['--data-dir', dir]).then(() => 'started', (err: Error) => err.message);
  t.match(second, /cannot start.*(lock|LOCKED)/is, 'a second server on the directory refuses to start');

  // graceful restart
  await server.stop();
  server = await startServer(['--data-dir', dir, '--threads', '2']);
  t.match(server.stderr(), /recovered collection docs/);
  const check = async (label: string): Promise<void> => {
    const count = (await call(`${server.url}/collections/docs/points/count`, 'POST', {})).body.result.count;
    t.equal(count, expectCount, `${label}: count`);
    const got = await call(`${server.url}/collections/docs/points`, 'POST', { ids: [4, 1000, 0, 3, 299], with_vector: true, with_payload: true });
    const byId = new Map<number, { vector: number[]; payload: unknown }>(got.body.result.map((p: { id: number; vector: number[]; payload: unknown }) => [p.id, p]));
    t.notOk(byId.has(0), `${label}: a deleted point stays deleted`);
    t.notOk(byId.has(3), `${label}: an acknowledged delete stays`);
    t.same(byId.get(4)?.vector, vec(4), `${label}: the vector, exactly`);
    t.same(byId.get(299)?.payload, { i: 299, tag: 't2' }, `${label}: the payload`);
    t.same(byId.get(1000)?.payload, { late: true }, `${label}: the acknowledged upsert`);
    const hit = await call(`${server.url}/collections/docs/points/query`, 'POST', { query: vec(150), limit: 1 });
    t.equal(hit.body.result.points[0].id, 150, `${label}: a self-query finds the point`);
  };
  await check('after a graceful restart');

  // writes after the restart, then SIGKILL: the log is replayed
  await call(`${server.url}/collections/docs/points?wait=true`, 'PUT', { points: [{ id: 5000, vector: vec(5000), payload: { after: 'restart' } }] });
  server.proc.kill('SIGKILL');
  await server.exited;
  server = await startServer(['--data-dir', dir, '--threads', '2']);
  const got = await call(`${server.url}/collections/docs/points`, 'POST', { ids: [5000], with_payload: true });
  t.same(got.body.result[0]?.payload, { after: 'restart' }, 'a write acknowledged just before SIGKILL is there');
  t.equal((await call(`${server.url}/collections/docs/points/count`, 'POST', {})).body.result.count, expectCount + 1);

  // a dropped collection stays dropped, and its files go
  t.equal((await call(`${server.url}/collections/docs`, 'DELETE')).status, 200);
  server.proc.kill('SIGKILL');
  await server.exited;
  server = await startServer(['--data-dir', dir]);
  t.equal((await call(`${server.url}/collections/docs`, 'GET')).status, 404, 'dropped before the kill: gone after it');
  t.notOk(existsSync(join(dir, 'datasets', '1')), "the dropped collection's files are removed");
});

t.test('--in-memory keeps nothing on disk', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'quiver-mem-'));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const server = await startServer(['--in-memory']);
  t.teardown(() => server.stop());
  await call(`${server.url}/collections/m`, 'PUT', { vectors: { size: DIM, distance: 'Dot' } });
  const up = await call(`${server.url}/collections/m/points?wait=false`, 'PUT', { points: [{ id: 1, vector: vec(1) }] });
  t.equal(up.body.result.status, 'acknowledged');
  t.notOk(existsSync(join(process.cwd(), 'quiver-data')), 'no ./quiver-data was created');
});
