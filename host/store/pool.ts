import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { collectGarbage } from '../core/gc.js';
import type { Reply, Task } from './protocol.js';

/**
 * Tasks in flight per thread. piscina's balancer may only hand a task to
 * its owner, and a balancer that returns null for a busy owner stalls the
 * whole queue, so the host keeps each thread under this cap and queues the
 * rest itself, per thread: a busy thread never delays another one.
 */
export const TASKS_PER_THREAD = 4;

const workerFile = fileURLToPath(new URL(`./worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));
const OWNER = Piscina.queueOptionsSymbol;

interface Queued {
  task: Task;
  transfer: Transferable[];
  resolve: (reply: Reply<unknown>) => void;
  reject: (err: unknown) => void;
}

interface Thread {
  inFlight: number;
  queue: Queued[];
}

/**
 * A fixed set of worker threads with task affinity: `run(thread, task)`
 * runs on that thread or not at all. Emits 'threadLost' (threadId) when a
 * thread dies on its own.
 */
export class ThreadPool extends EventEmitter {
  readonly #pool: Piscina;
  readonly #threads = new Map<number, Thread>();
  #closing = false;

  /** `testHooks`: the workers honour the test-only `hang` and `exit` tasks. */
  constructor(threads: number, cancel: SharedArrayBuffer, testHooks = false) {
    super();
    this.#pool = new Piscina({
      filename: workerFile,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 0,
      concurrentTasksPerWorker: TASKS_PER_THREAD,
      // workers wait on their port, not with Atomics.wait: a worker with a
      // long task yielding between steps must keep its event loop turning
      atomics: 'disabled',
      workerData: { cancel, testHooks },
      loadBalancer: (task, workers) => {
        const owner = ((task as unknown as Record<symbol, { thread?: number } | null>)[OWNER])?.thread;
        // An owner that is gone: any worker answers that it lacks the shard.
        return workers.find((w) => w.id === owner) ?? workers[0] ?? null;
      },
    });
    this.#pool.on('workerCreate', (worker: { id: number }) => {
      if (this.#closing) return;
      this.#threads.set(worker.id, { inFlight: 0, queue: [] });
    });
    // A destroyed worker's threadId reads -1 by the time piscina reports it,
    // so the lost thread is whichever known id no live thread has any more.
    this.#pool.on('workerDestroy', () => {
      if (this.#closing) return;
      const alive = new Set(this.#pool.threads.map((w) => w.threadId));
      for (const [id, thread] of this.#threads) {
        if (alive.has(id)) continue;
        this.#threads.delete(id);
        for (const q of thread.queue) q.reject(lostError(id));
        this.emit('threadLost', id);
      }
    });
    // piscina reports worker errors with no task to fail here; the thread
    // itself is reported through workerDestroy
    this.#pool.on('error', () => {});
  }

  /** Waits until the initial threads have announced themselves. */
  async ready(threads: number): Promise<void> {
    while (this.#threads.size < threads) await new Promise((r) => setImmediate(r));
  }

  get threadIds(): number[] {
    return [...this.#threads.keys()];
  }

  /** Worker threads alive right now. */
  get size(): number {
    return this.#threads.size;
  }

  run<T>(threadId: number, task: Task, transfer: Transferable[] = []): Promise<Reply<T>> {
    const thread = this.#threads.get(threadId);
    if (thread === undefined) return Promise.reject(lostError(threadId));
    return new Promise<Reply<unknown>>((resolve, reject) => {
      thread.queue.push({ task, transfer, resolve, reject });
      this.#pump(threadId, thread);
    }) as Promise<Reply<T>>;
  }

  #pump(threadId: number, thread: Thread): void {
    while (thread.inFlight < TASKS_PER_THREAD && thread.queue.length > 0) {
      const q = thread.queue.shift()!;
      thread.inFlight++;
      const routed = Object.assign(Object.create(null) as object, q.task, { [OWNER]: { thread: threadId } });
      this.#pool
        .run(routed, { transferList: q.transfer as never })
        .then(q.resolve, (err: unknown) => q.reject(this.#closing ? err : lostError(threadId, err)))
        .finally(() => {
          thread.inFlight--;
          if (this.#threads.get(threadId) === thread) this.#pump(threadId, thread);
        });
    }
  }

  /** Terminates every thread; resolves when they have exited. */
  async destroy(): Promise<void> {
    this.#closing = true;
    for (const thread of this.#threads.values()) {
      for (const q of thread.queue) q.reject(new Error('pool destroyed'));
      thread.queue.length = 0;
    }
    this.#threads.clear();
    await this.#pool.destroy();
    // piscina objects can outlive the pool in Node's internals; nothing of
    // ours (or of the Store listening to us) should hang off them
    this.#pool.removeAllListeners();
    this.removeAllListeners();
    // What this pool's tasks left on the main thread (the packed ids of every
    // insert, piscina's task records, the workers' handles) survived young
    // GCs while the tasks ran, so it waits in old space for a full GC that a
    // small main-thread heap may not run for hundreds of cycles; meanwhile
    // the next store's buffers are malloc'ed above it and the freed bytes
    // are holes glibc never trims (0.3-0.5 MiB per open/insert/close cycle,
    // measured in test/store-leak.test.ts). Collect it while it is the top
    // of the heap.
    collectGarbage();
  }
}

function lostError(threadId: number, cause?: unknown): Error {
  const err = new Error(`worker thread ${threadId} was lost`, cause === undefined ? undefined : { cause });
  (err as Error & { threadLost: number }).threadLost = threadId;
  return err;
}
