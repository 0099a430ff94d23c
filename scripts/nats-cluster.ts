// A real 3-node JetStream cluster on loopback for the cluster tests.
//
// Each node is a nats-server process with its own config, store directory
// and log file under one temp dir, on ports picked free on 127.0.0.1 (client,
// cluster route and HTTP monitor). kill(i) SIGKILLs one node; restart(i)
// starts it again on the same ports and store, so it rejoins and catches up
// by itself. Every process this file starts is SIGKILLed at stop(), and by a
// process 'exit' hook and SIGTERM/SIGINT/SIGHUP handlers if a test dies
// before its teardown runs; and each server is started through setpriv
// --pdeathsig KILL (util-linux, when present), so the kernel kills it when
// the test process dies in any way, a SIGKILL included.
//
// The binary is $NATS_SERVER, else nats-server on PATH, else
// /usr/sbin/nats-server (Debian's package). Missing binary = failing test.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsNode {
  name: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  dir: string;
  proc: ChildProcess | null;
}

const live = new Set<ChildProcess>();
const roots = new Set<string>();
function cleanup(): void {
  for (const p of live) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const r of roots) rmSync(r, { recursive: true, force: true });
}
process.on('exit', cleanup);
// A signal's default action skips 'exit': clean up, then raise the signal again with this
// listener gone, so it does what it would have done without it (the default action, or
// other listeners such as signal-exit's, which hold back while another listener exists).
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(sig, () => {
    cleanup();
    process.kill(process.pid, sig);
  });
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? null;

export function natsServerBinary(): string {
  if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
  try {
    return execFileSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).trim() || '/usr/sbin/nats-server';
  } catch {
    return '/usr/sbin/nats-server';
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function getJson(url: string): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.json();
}

export class NatsCluster {
  readonly root: string;
  readonly nodes: NatsNode[];
  readonly binary: string;
  private stopped = false;

  private constructor(root: string, nodes: NatsNode[], binary: string) {
    this.root = root;
    this.nodes = nodes;
    this.binary = binary;
  }

  /** Starts `size` nodes and resolves once every node is up and JetStream has a meta leader. */
  static async start(size = 3): Promise<NatsCluster> {
    const binary = natsServerBinary();
    if (!existsSync(binary)) throw new Error(`nats-server not found at ${binary} (apt-get install nats-server, or set NATS_SERVER)`);
    const root = mkdtempSync(join(tmpdir(), 'quiver-nats-'));
    roots.add(root);
    const used = new Set<number>();
    const port = async (): Promise<number> => {
      for (;;) {
        const p = await freePort();
        if (!used.has(p)) { used.add(p); return p; }
      }
    };
    const nodes: NatsNode[] = [];
    for (let i = 0; i < size; i++) {
      nodes.push({ name: `n${i + 1}`, port: await port(), clusterPort: await port(), monitorPort: await port(), dir: join(root, `n${i + 1}`), proc: null });
    }
    const cluster = new NatsCluster(root, nodes, binary);
    try {
      for (const n of nodes) cluster.writeConfig(n);
      for (let i = 0; i < size; i++) cluster.spawn(i);
      await cluster.waitReady();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Client URLs of every node (a client given all of them fails over between them). */
  get servers(): string[] {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`);
  }

  private writeConfig(n: NatsNode): void {
    mkdirSync(join(n.dir, 'js'), { recursive: true });
    const routes = this.nodes.filter((o) => o !== n).map((o) => `nats-route://127.0.0.1:${o.clusterPort}`);
    writeFileSync(join(n.dir, 'nats.conf'), [
      `server_name: ${n.name}`,
      `listen: 127.0.0.1:${n.port}`,
      `http: 127.0.0.1:${n.monitorPort}`,
      `log_file: "${join(n.dir, 'nats.log')}"`,
      `jetstream { store_dir: "${join(n.dir, 'js')}", max_memory_store: 64MB, max_file_store: 1GB }`,
      `cluster { name: quiver-test, listen: 127.0.0.1:${n.clusterPort}, routes: [${routes.join(', ')}] }`,
      '',
    ].join('\n'));
  }

  private spawn(i: number): void {
    if (this.stopped) throw new Error('the cluster was stopped');
    const n = this.nodes[i]!;
    const args = ['-c', join(n.dir, 'nats.conf')];
    // setpriv (util-linux) execs the server with PR_SET_PDEATHSIG: it dies with this process even on a SIGKILL.
    const proc = SETPRIV === null
      ? spawn(this.binary, args, { stdio: 'ignore' })
      : spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', this.binary, ...args], { stdio: 'ignore' });
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    n.proc = proc;
  }

  /** True while node i's process is running. */
  running(i: number): boolean {
    const p = this.nodes[i]!.proc;
    return p !== null && p.exitCode === null && p.signalCode === null;
  }

  /** SIGKILLs node i and waits for it to exit. */
  async kill(i: number): Promise<void> {
    const n = this.nodes[i]!;
    const p = n.proc;
    n.proc = null;
    if (p === null || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await exited;
  }

  /** Starts node i again on its ports and store; resolves when it answers and the others see it. */
  async restart(i: number, timeoutMs = 20_000): Promise<void> {
    if (this.running(i)) throw new Error(`node ${i} is running`);
    if (this.stopped) return;
    this.spawn(i);
    await this.waitReady(timeoutMs);
  }

  /**
   * Starts every stopped node of `indices` at once, then waits as restart()
   * does: after all of them died, one alone has no JetStream quorum to wait for.
   */
  async restartAll(indices: number[] = this.nodes.map((_, i) => i), timeoutMs = 30_000): Promise<void> {
    if (this.stopped) return;
    for (const i of indices) if (!this.running(i)) this.spawn(i);
    await this.waitReady(timeoutMs);
  }

  /** Waits until every running node answers /varz, is routed to every other running node, and JetStream has a meta leader. */
  async waitReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown = null;
    while (Date.now() < deadline) {
      try {
        const up = this.nodes.filter((_, i) => this.running(i));
        let ok = true;
        for (const n of up) {
          const routez = await getJson(`http://127.0.0.1:${n.monitorPort}/routez`);
          if ((routez.num_routes ?? 0) < up.length - 1) ok = false;
          const jsz = await getJson(`http://127.0.0.1:${n.monitorPort}/jsz`);
          if (!jsz.meta_cluster?.leader) ok = false;
        }
        if (ok) return;
      } catch (err) {
        last = err;
      }
      await sleep(100);
    }
    throw new Error(`nats cluster not ready in ${timeoutMs} ms (${String(last)}); logs under ${this.root}`);
  }

  /** The tail of node i's log, for failure messages. */
  log(i: number, lines = 30): string {
    try {
      return readFileSync(join(this.nodes[i]!.dir, 'nats.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Kills every node and removes the temp dir; idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (let i = 0; i < this.nodes.length; i++) await this.kill(i);
    rmSync(this.root, { recursive: true, force: true });
    roots.delete(this.root);
  }
}
