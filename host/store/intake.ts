import { ErrorCode, QuiverError } from '../errors.js';

/**
 * The Store's front door: every public call runs through `run`, which
 * refuses it once the store is closing and tracks it until it settles, so
 * close() can drain what is running. A call never nests a second tracked
 * call: a close() between the two would cut it in half.
 */
export class Intake {
  readonly #inflight = new Set<Promise<unknown>>();
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new QuiverError(ErrorCode.CLOSED, 'the store is closed'));
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      return Promise.reject(err);
    }
    this.#inflight.add(p);
    const done = (): void => {
      this.#inflight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /**
   * Closes the door, then waits for the calls running now and then for
   * `after` (the memory manager's own work), all within `timeoutMs`.
   * Resolves true when the time ran out first.
   */
  async drain(after: Promise<unknown>, timeoutMs: number): Promise<boolean> {
    this.#closed = true;
    const started = performance.now();
    if (!(await settlesWithin(Promise.allSettled([...this.#inflight]), timeoutMs))) return true;
    return !(await settlesWithin(after, Math.max(0, timeoutMs - (performance.now() - started))));
  }
}

/** Whether `p` settles within `ms` (the timer is cleared either way). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(() => true, () => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
