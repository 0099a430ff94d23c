/**
 * Cancel flags shared with every worker: one Int32 slot per running long
 * task. The host sets a slot on abort; the worker reads it between steps.
 * Nothing is cancelled by terminating a thread: that would destroy every
 * shard the thread owns.
 */
export const CANCEL_SLOTS = 4096;
export const NO_CANCEL = -1;

export class CancelSlots {
  readonly buffer = new SharedArrayBuffer(CANCEL_SLOTS * 4);
  readonly #flags = new Int32Array(this.buffer);
  #free: number[] = Array.from({ length: CANCEL_SLOTS }, (_, i) => CANCEL_SLOTS - 1 - i);

  /** A slot for a task under `signal`, or NO_CANCEL when there is no signal. */
  acquire(signal: AbortSignal | undefined): { slot: number; release: () => void } {
    if (signal === undefined) return { slot: NO_CANCEL, release: () => {} };
    const slot = this.#free.pop();
    if (slot === undefined) return { slot: NO_CANCEL, release: () => {} };
    Atomics.store(this.#flags, slot, 0);
    const onAbort = (): void => {
      Atomics.store(this.#flags, slot, 1);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return {
      slot,
      release: () => {
        signal.removeEventListener('abort', onAbort);
        Atomics.store(this.#flags, slot, 0);
        this.#free.push(slot);
      },
    };
  }
}

/** The worker side: is the task in `slot` cancelled? */
export function isCancelled(flags: Int32Array, slot: number): boolean {
  return slot !== NO_CANCEL && Atomics.load(flags, slot) !== 0;
}
