// scripts/cluster-up and scripts/cluster-down, as a newcomer runs them: up
// starts 3 nats-servers and 3 quiver nodes and prints where they listen; a
// collection created through one node is written through another and read
// through the third; down stops exactly the processes up started.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { call } from './helpers/server.js';
import { until } from './helpers/cluster-setup.js';

const run = promisify(execFile);
const scripts = fileURLToPath(new URL('../scripts/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'quiver-cup-'));
// ports below the kernel's ephemeral range (32768 up), where the other tests' free-port
// picks land: NATS client BASE..+2, routes +1000, monitor +4000; quiver +8000
const nats = 20_000 + Math.floor(Math.random() * 800) * 5;
const quiver = nats + 8000;
const env = { ...process.env, QUIVER_CLUSTER_DIR: dir, NATS_BASE_PORT: String(nats), QUIVER_BASE_PORT: String(quiver), PATH: `${process.env.PATH}:/usr/sbin` };
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
let pids: number[] = [];
t.teardown(async () => {
  await run(join(scripts, 'cluster-down'), [], { env }).catch(() => {});
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

t.test('cluster-up starts 3 + 3 processes and prints them; the nodes answer as one; cluster-down stops exactly those', async (t) => {
  const up = await run(join(scripts, 'cluster-up'), [], { env, timeout: 180_000 });
  const urls = [...up.stdout.matchAll(/quiver: (http:\/\/\S+)/g)].map((m) => m[1]!);
  t.equal(urls.length, 3, `three quiver URLs printed: ${urls.join(', ')}`);
  t.match(up.stdout, new RegExp(`NATS: +nats://127\\.0\\.0\\.1:${nats},`), 'and the NATS servers');
  pids = readFileSync(join(dir, 'pids'), 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[1]));
  t.equal(pids.length, 6, 'six pids written');
  t.ok(pids.every(alive), 'all running');
  const made = await call(`${urls[0]}/collections/c`, 'PUT', { vectors: { size: 3, distance: 'Cosine' }, shard_number: 3, replication_factor: 2 });
  t.equal(made.status, 200, 'a collection created through the first node');
  await until('written through the second', async () => (await call(`${urls[1]}/collections/c/points?wait=true`, 'PUT', { points: [{ id: 1, vector: [1, 0, 0] }, { id: 2, vector: [0, 1, 0] }] })).status === 200, 30_000);
  const got = await call(`${urls[2]}/collections/c/points/query`, 'POST', { query: [1, 0.1, 0], limit: 1 });
  t.same(got.body.result.points.map((p: { id: number }) => p.id), [1], 'and read through the third');
  const again = await run(join(scripts, 'cluster-up'), [], { env }).then(() => 0, (e: { code: number }) => e.code);
  t.equal(again, 1, 'a second cluster-up on the same directory refuses');
  const down = await run(join(scripts, 'cluster-down'), [], { env, timeout: 60_000 });
  t.match(down.stdout, /stopped/);
  await until('every process gone', () => pids.every((p) => !alive(p)), 15_000);
  t.pass('all six processes exited');
});
