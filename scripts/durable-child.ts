/**
 * A durable Store in a process of its own, driven over stdin/stdout, so a
 * test can kill it with SIGKILL (no graceful close, no checkpoint) and open
 * the directory again: test/store-durable.test.ts and
 * test/store-durable-lifecycle.test.ts.
 *
 *   node dist/scripts/durable-child.js <path> [threads] [fsync]
 *
 * First line out: {"ready":true,"recovery":[...]} or {"ready":false,"code","message"}
 * (then it exits). Then one JSON line in per call, {"seq","method","args"},
 * run one at a time in arrival order, and one line out per call:
 * {"seq","ok":true,"value"} or {"seq","ok":false,"code","message"}.
 * Float32Arrays go out as arrays. "close" closes the store and exits.
 */
import { createInterface } from 'node:readline';
import { Store } from '../host/index.js';

const [path, threads = '2', fsync = 'always'] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: durable-child.js <path> [threads] [fsync]');

const out = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o, (_, v: unknown) => (v instanceof Float32Array ? Array.from(v) : typeof v === 'bigint' ? String(v) : v))}\n`);
};

let store: Store;
try {
  store = await Store.open({ path, threads: Number(threads), fsync: fsync as 'always' | 'interval' | 'never' });
} catch (err) {
  out({ ready: false, code: (err as { code?: string }).code, message: (err as Error).message });
  process.exit(0);
}
out({ ready: true, recovery: store.recovery });

let lane: Promise<void> = Promise.resolve();
const rl = createInterface({ input: process.stdin });
// the parent went away without a word: close gracefully rather than linger holding the lock
rl.on('close', () => {
  lane = lane.then(async () => {
    await store.close();
    process.exit(0);
  });
});
rl.on('line', (line) => {
  const { seq, method, args } = JSON.parse(line) as { seq: number; method: string; args: unknown[] };
  lane = lane.then(async () => {
    try {
      if (method === 'close') {
        const report = await store.close();
        out({ seq, ok: true, value: report });
        process.exit(0);
      }
      const fn = (store as unknown as Record<string, (...a: unknown[]) => unknown>)[method];
      if (typeof fn !== 'function') throw new Error(`no method ${method}`);
      out({ seq, ok: true, value: await fn.apply(store, args) });
    } catch (err) {
      out({ seq, ok: false, code: (err as { code?: string }).code, message: (err as Error).message });
    }
  });
});
