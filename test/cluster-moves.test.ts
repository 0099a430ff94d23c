// The rate limit on a cluster node's moves (host/store/cluster-moves.ts),
// against a model: at most `limit` rebuilds at once, in arrival order; a
// move cancelled while it waits never runs and frees its place at once;
// the counters add up.
import t from 'tap';
import fc from 'fast-check';
import { MoveGate } from '../host/store/cluster-moves.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

t.test('limit, order, cancellation and counters, against a model', async (t) => {
  await fc.assert(fc.asyncProperty(
    fc.integer({ min: 1, max: 3 }),
    fc.array(fc.record({ cancelAt: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }), fails: fc.boolean() }), { minLength: 1, maxLength: 12 }),
    async (limit, moves) => {
      const gate = new MoveGate(limit);
      const started: number[] = [];
      const finish: (() => void)[] = [];
      let running = 0;
      let peak = 0;
      const tokens = moves.map(() => ({}));
      const runs = moves.map((m, i) => gate.run(tokens[i]!, async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => finish.push(r));
        running--;
        if (m.fails) throw new Error(`move ${i} failed`);
        return i;
      }).catch((e: Error) => e.message));
      // let a few rounds pass, cancelling and finishing as told
      const cancelled = new Set<number>();
      for (let round = 0; round < 5; round++) {
        await tick();
        moves.forEach((m, i) => {
          if (m.cancelAt === round && !started.includes(i)) {
            gate.cancel(tokens[i]!);
            cancelled.add(i);
          }
        });
        finish.shift()?.();
      }
      while (finish.length > 0 || started.length + cancelled.size < moves.length) {
        await tick();
        finish.shift()?.();
      }
      const results = await Promise.all(runs);
      if (peak > limit) throw new Error(`${peak} ran at once, limit ${limit}`);
      const notCancelled = moves.map((_, i) => i).filter((i) => !cancelled.has(i));
      if (JSON.stringify(started) !== JSON.stringify(notCancelled)) throw new Error(`started ${started} but arrival order without the cancelled is ${notCancelled}`);
      results.forEach((r, i) => {
        const want = cancelled.has(i) ? null : moves[i]!.fails ? `move ${i} failed` : i;
        if (r !== want) throw new Error(`move ${i}: ${r} instead of ${want}`);
      });
      const s = gate.stats;
      if (s.running !== 0 || s.queued !== 0 || s.done !== notCancelled.length || s.cancelled !== cancelled.size || s.maxRunning !== peak) {
        throw new Error(`stats ${JSON.stringify(s)}, peak ${peak}, cancelled ${cancelled.size}`);
      }
    },
  ), { numRuns: 300 });
  t.pass('300 random schedules held to the model');
});

t.test('cancelling a move that is not waiting changes nothing', async (t) => {
  const gate = new MoveGate(1);
  gate.cancel({});
  t.same(gate.stats, { running: 0, queued: 0, done: 0, cancelled: 0, maxRunning: 0 });
  t.equal(await gate.run({}, async () => 7), 7);
});
