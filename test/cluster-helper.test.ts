// The test cluster helper itself (test/helpers/nats-cluster.ts): kill and
// restart one node, and no nats-server outlives a test process that dies
// (a thrown error, a SIGTERM, a SIGKILL) before its teardown.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NatsCluster } from './helpers/nats-cluster.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pids: number[], ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pids.every((p) => !alive(p))) return true;
    await sleep(50);
  }
  return false;
}

t.test('kill one node and restart it on the same ports', async (t) => {
  const cluster = await NatsCluster.start();
  t.teardown(() => cluster.stop());
  t.equal(cluster.servers.length, 3, 'three client URLs');
  t.equal(new Set(cluster.nodes.flatMap((n) => [n.port, n.clusterPort, n.monitorPort])).size, 9, 'nine distinct ports');
  const pid = cluster.nodes[1]!.proc!.pid!;
  await cluster.kill(1);
  t.equal(cluster.running(1), false, 'node 1 is down');
  t.ok(await gone([pid]), 'its process is gone');
  await t.rejects(cluster.restart(0), /running/, 'a running node cannot be restarted');
  await cluster.restart(1);
  t.equal(cluster.running(1), true, 'node 1 is up again');
  const routes = await (await fetch(`http://127.0.0.1:${cluster.nodes[1]!.monitorPort}/routez`)).json() as { num_routes: number };
  t.equal(routes.num_routes, 2, 'and routed to both others');
  const pids = cluster.nodes.map((n) => n.proc!.pid!);
  await cluster.stop();
  t.ok(await gone(pids), 'stop() ends every process');
  t.equal(existsSync(cluster.root), false, 'and removes its directory');
});

const deaths = [
  ['throws', "throw new Error('boom')"],
  ['gets SIGTERM', "process.kill(process.pid, 'SIGTERM'); await new Promise((r) => setTimeout(r, 5000))"],
  ['gets SIGKILL', "process.kill(process.pid, 'SIGKILL')"],
] as const;
for (const [how, code] of deaths) {
  t.test(`a test process that ${how} before its teardown leaves no nats-server behind`, async (t) => {
    const script = `import { NatsCluster } from './test/helpers/nats-cluster.js';
const c = await NatsCluster.start();
console.log('CLUSTER ' + JSON.stringify({ pids: c.nodes.map((n) => n.proc.pid), root: c.root }));
${code};`;
    const child = spawnSync(process.execPath, ['--import', '@tapjs/typescript/import', '--input-type=module', '-e', script], {
      cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
    });
    const line = child.stdout.split('\n').find((l) => l.startsWith('CLUSTER '));
    t.ok(line, 'the child started a cluster');
    const { pids, root } = JSON.parse(line!.slice('CLUSTER '.length)) as { pids: number[]; root: string };
    t.ok(child.status !== 0 || child.signal !== null, `the child died (status ${child.status}, signal ${child.signal})`);
    t.equal(pids.length, 3, 'with three servers');
    t.ok(await gone(pids), 'none of them is running');
    // Nothing runs in a SIGKILLed process: its servers die by their parent-death signal, its directory stays.
    if (how === 'gets SIGKILL') rmSync(root, { recursive: true, force: true });
    else t.equal(existsSync(root), false, 'and the directory is gone');
  });
}
