// Children under plain node: scripts that measure memory, run many worker
// threads or get killed run outside tap's loaders (which add ~0.9 s of CPU
// per worker start and their own allocations) and its coverage collection,
// from the compiled tree in dist/.
//
// dist/ is built once per change of the sources: by tap's `before` script
// (build-dist.ts) for a whole run, or by the first test that needs it. A
// rebuild while another test's child imports dist/ could hand it a file
// tsc is rewriting, so a build is taken under a lock and skipped when the
// stamp is newer than every source.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STAMP = join(ROOT, 'dist', '.build-stamp');
const LOCK = join(ROOT, 'dist', '.build-lock');
const SOURCES = ['host', 'bench', 'scripts'];

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function fresh(): boolean {
  try {
    const sources = Math.max(statSync(join(ROOT, 'tsconfig.build.json')).mtimeMs, ...SOURCES.map((d) => newest(join(ROOT, d))));
    return statSync(STAMP).mtimeMs > sources;
  } catch {
    return false;
  }
}

const sleep = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/** Compiles what is in the tree now into dist/, unless it already is. */
export function buildDist(): void {
  if (fresh()) return;
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // another test builds: wait for it (a lock older than three minutes is a dead builder's)
      if (Date.now() > deadline) rmdirSync(LOCK);
      sleep(200);
    }
  }
  try {
    if (fresh()) return;
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
    writeFileSync(STAMP, '');
  } finally {
    rmdirSync(LOCK);
  }
}

/**
 * `node SCRIPT ARGS` as a command that really runs plain: tap's processinfo
 * hooks every spawn and puts its own loader (and, in a covered run, its
 * coverage collection) back into NODE_OPTIONS whatever env the caller
 * passes, so the child is started through `env -u NODE_OPTIONS`. Measured:
 * a drop-residue child under the hook started 235 MiB resident against 159
 * plain, and its malloc residue moved with the hook's allocations.
 */
export function plainNode(script: string, args: readonly string[] = []): [string, string[]] {
  return ['/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, script, ...args]];
}

/** The environment without tap's loaders and coverage collection (spawn with plainNode: tap adds its loader back otherwise). */
export function plainEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && k !== 'NODE_V8_COVERAGE')), ...extra };
}

/** Runs `script` (a path in dist/) under plain node and parses the last line it prints as JSON. */
export function runPlain<T>(script: string, args: readonly string[] = [], timeoutMs = 300_000, env: NodeJS.ProcessEnv = plainEnv()): T {
  const [file, argv] = plainNode(script, args);
  const out = execFileSync(file, argv, { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, env });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}
