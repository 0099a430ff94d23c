// The one child-process runner of the benches: each measurement runs in a
// fresh `node` so engines, layouts and runs cannot disturb each other's
// memory or timings. The child prints one line, `marker` + JSON, on stdout
// (library chatter around it is ignored); a child that crashes, hangs past
// its timeout or prints no result becomes an error string, never a throw.
import { spawn } from 'node:child_process';

export type ChildResult<T> = { ok: true; value: T } | { ok: false; error: string };

export interface ChildOptions {
  /** The script to run (usually the bench's own file, in its child mode). */
  file: string;
  args: string[];
  /** Result line prefix, one per bench. */
  marker: string;
  /** node flags before the script (--expose-gc, ...). */
  nodeFlags?: string[];
  timeoutMs?: number;
  /** Pass the child's stderr through as it comes (it is always kept for the error). */
  verbose?: boolean;
}

export function runChild<T>(options: ChildOptions): Promise<ChildResult<T>> {
  const { file, args, marker, nodeFlags = [], timeoutMs = 20 * 60_000, verbose = false } = options;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeFlags, file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (verbose) process.stderr.write(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, error: `spawn failed: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(marker));
      if (line !== undefined) {
        try {
          resolve({ ok: true, value: JSON.parse(line.slice(marker.length)) as T });
          return;
        } catch {
          // fall through: report as a crash
        }
      }
      const tail = stderr.trim().split('\n').slice(-3).join(' | ');
      resolve({ ok: false, error: `child exited (${signal ?? `code ${code}`})${tail ? `: ${tail}` : ''}` });
    });
  });
}

/** The child side: prints the result line. */
export function reportResult(marker: string, value: unknown): void {
  process.stdout.write(`\n${marker}${JSON.stringify(value)}\n`);
}

/** The child's `key=value` positionals as an object. */
export function childArgs(positionals: string[]): Record<string, string> {
  return Object.fromEntries(positionals.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
}
