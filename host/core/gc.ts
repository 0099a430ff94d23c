import v8 from 'node:v8';
import vm from 'node:vm';

let gcFn: (() => void) | undefined;

/**
 * Runs a full GC in this thread. A dropped WebAssembly.Memory goes back to
 * the OS only after a GC, and Node rejects --expose-gc in a worker's
 * execArgv, so the flag is set at run time and `gc` taken from a new context.
 */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') {
      gcFn = g;
    } else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}
