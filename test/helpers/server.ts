// Runs `quiver serve` as a child process, the way a user would, from the
// TypeScript source with the test process's own loaders (process.execArgv).
import { fileURLToPath } from 'node:url';
import { rng as uniform } from '../../bench/lib/random.js';
import { spawnServer, type ServerChild } from '../../scripts/crasher/server-child.js';

export { spawnServer, type ServerChild };

export const CLI = fileURLToPath(new URL('../../host/server/cli.ts', import.meta.url));

/**
 * Starts `quiver serve --port 0 ...args` and waits for its "listening" line;
 * in memory unless args name a --data-dir (tests never write ./quiver-data).
 */
export function startServer(args: string[] = [], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<ServerChild> {
  const storage = args.includes('--data-dir') || args.includes('--in-memory') ? [] : ['--in-memory'];
  return spawnServer({ cli: CLI, nodeArgs: process.execArgv, args: ['serve', '--port', '0', ...storage, ...args], env, timeoutMs });
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
