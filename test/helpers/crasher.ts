// Runs the compiled crash harness (scripts/crasher.ts) under plain node (not
// tap's loaders or coverage) and reads its result line: test/crash.test.ts
// and test/store-disk-crash.test.ts.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { plainEnv, plainNode, ROOT } from './plain-node.js';
import type { CrashResult } from '../../scripts/crasher/run.js';

export const MARKER = 'CRASHER_RESULT ';
export const CRASHER = join(ROOT, 'dist', 'scripts', 'crasher.js');

export interface CrasherRun {
  code: number | null;
  result: CrashResult | undefined;
  stdout: string;
  stderr: string;
}

/** node SCRIPT ARGS; SIGKILLed after `timeoutMs`. */
export function runCrasher(args: string[], timeoutMs: number, script = CRASHER): Promise<CrasherRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(...plainNode(script, args), { cwd: ROOT, env: plainEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(MARKER));
      resolve({ code, result: line === undefined ? undefined : JSON.parse(line.slice(MARKER.length)) as CrashResult, stdout, stderr });
    });
  });
}
