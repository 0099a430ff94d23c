// Children under plain node: scripts that measure memory or run many worker
// threads run outside tap's loaders (which add ~0.9 s of CPU per worker
// start and their own allocations) and outside its coverage collection.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Compiles what is in the tree now into dist/, which the children run. */
export function buildDist(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
}

/** The environment without tap's loaders and coverage collection. */
export function plainEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && k !== 'NODE_V8_COVERAGE')), ...extra };
}

/** Runs `dist/<script>` under plain node and parses the last line it prints as JSON. */
export function runPlain<T>(script: string, args: readonly string[] = [], timeoutMs = 300_000, env: Record<string, string> = {}): T {
  const out = execFileSync(process.execPath, [script, ...args], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, env: plainEnv(env) });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}
