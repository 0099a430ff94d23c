/**
 * The rate limit on a cluster node's moves (cluster-node.ts): a copy placed
 * on the node is rebuilt (image + stream) only when one of `limit` slots is
 * free, in the order the copies came; one dropped while it waits leaves the
 * queue at once (a cancelled move costs nothing), and one dropped while it
 * rebuilds is closed when the rebuild ends. The counters are what `GET
 * /cluster` reports as `moves`.
 */
export interface MoveStats {
  running: number;
  queued: number;
  done: number;
  cancelled: number;
  /** The most rebuilds that ever ran at once (never above the limit). */
  maxRunning: number;
}

export class MoveGate {
  readonly limit: number;
  readonly #queue: { token: object; go: (run: boolean) => void }[] = [];
  readonly #stats: MoveStats = { running: 0, queued: 0, done: 0, cancelled: 0, maxRunning: 0 };

  constructor(limit: number) {
    this.limit = limit;
  }

  get stats(): MoveStats {
    return { ...this.#stats, queued: this.#queue.length };
  }

  /** Runs `rebuild` in a slot; null when `token` was cancelled before its turn. */
  async run<T>(token: object, rebuild: () => Promise<T>): Promise<T | null> {
    if (this.#stats.running >= this.limit) {
      const go = await new Promise<boolean>((resolve) => this.#queue.push({ token, go: resolve }));
      if (!go) return null;
    }
    this.#stats.running++;
    this.#stats.maxRunning = Math.max(this.#stats.maxRunning, this.#stats.running);
    try {
      return await rebuild();
    } finally {
      this.#stats.running--;
      this.#stats.done++;
      this.#queue.shift()?.go(true);
    }
  }

  /** Takes `token`'s move out of the queue if it is waiting there (its run resolves null). */
  cancel(token: object): void {
    const i = this.#queue.findIndex((w) => w.token === token);
    if (i < 0) return;
    const [w] = this.#queue.splice(i, 1);
    this.#stats.cancelled++;
    w!.go(false);
  }
}
