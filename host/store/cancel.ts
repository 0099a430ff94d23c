import { ErrorCode, QuiverError } from '../errors.js';

/**
 * Cancel flags shared with every worker: one Int32 slot per running long
 * task. The host sets a slot on abort; the worker reads it between steps.
 * Nothing is cancelled by terminating a thread: that would destroy every
 * shard the thread owns.
 *
 * The buffer is a growable SharedArrayBuffer: when every slot is taken it
 * grows (workers' length-tracking views see the new slots), up to
 * MAX_CANCEL_SLOTS; past that a task under a signal is refused, never run
 * uncancellable.
 */
export const CANCEL_SLOTS = 4096;
export const MAX_CANCEL_SLOTS = 1 << 20;
export const NO_CANCEL = -1;

/** A growable SharedArrayBuffer (ES2024; Node 20 has it, this project's TypeScript lib predates it). */
type GrowableBuffer = SharedArrayBuffer & { grow(byteLength: number): void };
const GrowableBuffer = SharedArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => GrowableBuffer;

export class CancelSlots {
  readonly buffer: GrowableBuffer;
  readonly #flags: Int32Array;
  readonly #max: number;
  #free: number[];

  constructor(initial = CANCEL_SLOTS, max = MAX_CANCEL_SLOTS) {
    this.#max = max;
    this.buffer = new GrowableBuffer(initial * 4, { maxByteLength: max * 4 });
    this.#flags = new Int32Array(this.buffer);
    this.#free = Array.from({ length: initial }, (_, i) => initial - 1 - i);
  }

  /** Slots the buffer holds now. */
  get capacity(): number {
    return this.buffer.byteLength / 4;
  }

  /** A slot for a task under `signal`, or NO_CANCEL when there is no signal. */
  acquire(signal: AbortSignal | undefined): { slot: number; release: () => void } {
    if (signal === undefined) return { slot: NO_CANCEL, release: () => {} };
    if (this.#free.length === 0) this.#grow();
    const slot = this.#free.pop()!;
    Atomics.store(this.#flags, slot, signal.aborted ? 1 : 0);
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

  #grow(): void {
    const had = this.capacity;
    const next = Math.min(this.#max, had * 2);
    if (next === had) {
      throw new QuiverError(ErrorCode.MEMORY_LIMIT, `all ${had} cancel slots are taken: too many cancellable tasks in flight`);
    }
    this.buffer.grow(next * 4);
    for (let slot = next - 1; slot >= had; slot--) this.#free.push(slot);
  }
}

/** The worker side: is the task in `slot` cancelled? */
export function isCancelled(flags: Int32Array, slot: number): boolean {
  return slot !== NO_CANCEL && Atomics.load(flags, slot) !== 0;
}
