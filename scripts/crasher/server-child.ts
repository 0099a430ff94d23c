// `quiver serve` as a child process, the way a user runs it: started with
// whatever node flags the caller needs (tap's loaders for the TypeScript
// source, none for dist/), ready once it prints its "listening" line. Shared
// by the server tests (test/helpers/server.ts) and the crash test.
import { spawn, type ChildProcess } from 'node:child_process';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerChild {
  url: string;
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  /** SIGTERM, then the exit. */
  stop(): Promise<Exit>;
  /** SIGKILL (no shutdown code runs), then the exit. */
  kill(): Promise<Exit>;
}

export interface SpawnOptions {
  /** The CLI to run: host/server/cli.ts (with loaders) or dist/host/server/cli.js. */
  cli: string;
  /** quiver's arguments, `serve ...` included. */
  args: string[];
  /** node flags before the CLI. */
  nodeArgs?: string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
}

const alive = (proc: ChildProcess): boolean => proc.exitCode === null && proc.signalCode === null;

/** Spawns the CLI and waits for "quiver listening on URL"; rejects if it exits or times out first. */
export async function spawnServer(options: SpawnOptions): Promise<ServerChild> {
  const { cli, args, nodeArgs = [], env = {}, cwd, timeoutMs = 90_000 } = options;
  const proc = spawn(process.execPath, [...nodeArgs, cli, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd }),
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const exited = new Promise<Exit>((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`quiver serve did not start within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
    }, timeoutMs);
    const check = (): void => {
      const m = /quiver listening on (http:\/\/\S+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`quiver serve exited (${signal ?? code}) before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return {
    url,
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: () => {
      if (alive(proc)) proc.kill('SIGTERM');
      return exited;
    },
    kill: () => {
      if (alive(proc)) proc.kill('SIGKILL');
      return exited;
    },
  };
}
