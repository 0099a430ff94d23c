import t from 'tap';
import { Worker } from 'node:worker_threads';
import { CANCEL_SLOTS, CancelSlots, isCancelled, NO_CANCEL } from '../host/store/cancel.js';

// One cancel slot per running cancellable task. Past the first 4,096 the
// slots grow (the shared buffer is growable and workers' views track it);
// past the maximum a task is refused loudly, never run uncancellable.

t.test('more cancellable tasks than the initial slots: every one can still be cancelled', async (t) => {
  const slots = new CancelSlots();
  const workerView = new Int32Array(slots.buffer); // made before growth, as a worker's is
  const controllers = Array.from({ length: CANCEL_SLOTS + 10 }, () => new AbortController());
  const held = controllers.map((c) => slots.acquire(c.signal));
  t.equal(new Set(held.map((h) => h.slot)).size, held.length, 'every task has its own slot');
  t.notOk(held.some((h) => h.slot === NO_CANCEL), 'none is left uncancellable');
  t.ok(slots.capacity > CANCEL_SLOTS, `the slots grew to ${slots.capacity}`);
  const last = held.at(-1)!;
  t.notOk(isCancelled(workerView, last.slot));
  controllers.at(-1)!.abort();
  t.ok(isCancelled(workerView, last.slot), 'an abort past the 4,096th slot reaches a view made before the growth');
  t.notOk(isCancelled(workerView, held[0]!.slot), 'and only that task');
  for (const h of held) h.release();
});

t.test('another thread sees the grown slots', async (t) => {
  const slots = new CancelSlots(4, 64);
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const flags = new Int32Array(workerData);
    parentPort.on('message', (slot) => parentPort.postMessage(Atomics.load(flags, slot)));
  `, { eval: true, workerData: slots.buffer });
  t.teardown(() => worker.terminate());
  const c = Array.from({ length: 20 }, () => new AbortController());
  const held = c.map((x) => slots.acquire(x.signal));
  c[19]!.abort();
  worker.postMessage(held[19]!.slot);
  const [seen] = await new Promise<number[]>((resolve) => worker.once('message', (v: number) => resolve([v])));
  t.equal(seen, 1, `slot ${held[19]!.slot} (past the first 4) reads as cancelled in the worker`);
});

t.test('past the maximum: a loud MEMORY_LIMIT error, and released slots are reused', async (t) => {
  const slots = new CancelSlots(2, 4);
  const held = Array.from({ length: 4 }, () => slots.acquire(new AbortController().signal));
  t.throws(() => slots.acquire(new AbortController().signal), { code: 'QUIVER_ERR_MEMORY_LIMIT', message: /cancel slots/ });
  t.equal(slots.acquire(undefined).slot, NO_CANCEL, 'a task without a signal needs no slot');
  held[1]!.release();
  const again = slots.acquire(new AbortController().signal);
  t.equal(again.slot, held[1]!.slot, 'a released slot is handed out again');
});
