// Runs `quiver serve` as a child process, the way a user would, from the
// TypeScript source with the test process's own loaders (process.execArgv).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rng as uniform } from '../../bench/lib/random.js';

export const CLI = fileURLToPath(new URL('../../host/server/cli.ts', import.meta.url));

export interface ServerChild {
  url: string;
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `quiver serve --port 0 ...args` and waits for its "listening" line;
 * in memory unless args name a --data-dir (tests never write ./quiver-data).
 */
export async function startServer(args: string[] = [], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<ServerChild> {
  const storage = args.includes('--data-dir') || args.includes('--in-memory') ? [] : ['--in-memory'];
  const proc = spawn(process.execPath, [...process.execArgv, CLI, 'serve', '--port', '0', ...storage, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`quiver serve did not start within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`)), timeoutMs);
    const check = (): void => {
      const m = /quiver listening on (http:\/\/\S+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`quiver serve exited (${code}) before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return {
    url,
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** fetch with a JSON body (or a raw string), returning status, headers and the parsed body. */
export async function call(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Seeded uniform random numbers in [-1, 1): the shared generator, rescaled. */
export function rng(seed: number): () => number {
  const r = uniform(seed);
  return () => r() * 2 - 1;
}

/** A deterministic UUID for a number. */
export function uuidOf(i: number): string {
  const hex = (i * 2654435761 >>> 0).toString(16).padStart(8, '0') + i.toString(16).padStart(24, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
