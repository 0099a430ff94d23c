/**
 * Reading a shard's log (shard-stream.ts): an ordered consumer on the
 * shard's subject from a sequence, and the recovery the client library did
 * not give us.
 *
 * Why our own recovery. With nats.js 3.4 and nats-server 2.9.10, SIGKILLing
 * the server that hosted an ordered consumer (and the client's connection)
 * left consume() silent for good: no message, no status notification after
 * 40 s. So a reader watches itself: whenever it has delivered nothing for
 * stallMs it asks the stream for the shard's last sequence, and if that is
 * past what it delivered, it drops its consumer and opens a new one from the
 * next sequence it needs. Deliveries are deduplicated by sequence, so a
 * restart never yields a record twice or out of order. An idle reader costs
 * one small request per stallMs.
 *
 * Opening a consumer retries through leader elections for up to timeoutMs;
 * past that the iteration throws QUIVER_ERR_UNAVAILABLE (the caller may
 * read again from the last sequence it got).
 */
import { DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import { natsError, retrying, type ClusterClient } from './connect.js';

export interface LogEntry {
  /** The stream sequence: this record's position in the shard's log. */
  seq: number;
  msgId: string;
  data: Uint8Array;
}

export interface ReaderOptions {
  /** Opening (and reopening) the consumer retries this long, ms. */
  timeoutMs: number;
  /** Idle time after which the reader checks it is not stuck, ms. */
  stallMs: number;
  /** Stop after the record at this sequence or the first one past it. */
  until?: number;
}

const MSG_ID = 'Nats-Msg-Id';

export class ShardReader implements AsyncIterable<LogEntry> {
  readonly client: ClusterClient;
  readonly stream: string;
  readonly subject: string;
  readonly #options: ReaderOptions;
  readonly #lastSeq: () => Promise<number>;
  #next: number;
  #messages: ConsumerMessages | null = null;
  #closed = false;
  #restarts = 0;

  constructor(client: ClusterClient, stream: string, subject: string, fromSeq: number, lastSeq: () => Promise<number>, options: ReaderOptions) {
    this.client = client;
    this.stream = stream;
    this.subject = subject;
    this.#next = fromSeq;
    this.#lastSeq = lastSeq;
    this.#options = options;
  }

  /** How many times the reader replaced a stuck or failed consumer. */
  get restarts(): number {
    return this.#restarts;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LogEntry> {
    const { until, stallMs } = this.#options;
    while (!this.#closed) {
      const messages = await this.open();
      if (this.#closed) {
        // closed while the consumer was being made: close() would wait for
        // an iteration that never starts (its promise resolves when one ends)
        messages.stop();
        break;
      }
      this.#messages = messages;
      let delivered = performance.now();
      const watchdog = setInterval(() => {
        if (performance.now() - delivered < stallMs) return;
        delivered = performance.now();
        this.#lastSeq().then((last) => {
          if (last >= this.#next && this.#messages === messages) {
            this.#restarts++;
            void messages.close().catch(() => {});
          }
        }, () => { /* unavailable: check again later */ });
      }, Math.max(50, Math.floor(stallMs / 2)));
      try {
        for await (const m of messages) {
          delivered = performance.now();
          if (m.seq < this.#next) continue;
          this.#next = m.seq + 1;
          if (until !== undefined && m.seq > until) return;
          yield { seq: m.seq, msgId: m.headers?.get(MSG_ID) ?? '', data: m.data.slice() };
          if (until !== undefined && m.seq >= until) return;
        }
      } catch {
        // The consumer failed: open a new one from #next (below), unless closed.
        this.#restarts++;
      } finally {
        clearInterval(watchdog);
        if (this.#messages === messages) this.#messages = null;
        await messages.close().catch(() => {});
      }
    }
  }

  private open(): Promise<ConsumerMessages> {
    return retrying(`reading ${this.subject}`, this.#options.timeoutMs, async () => {
      const consumer = await this.client.js.consumers.get(this.stream, {
        filter_subjects: this.subject, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.#next,
      });
      return consumer.consume();
    }).catch((err: unknown) => { throw natsError(err, `reading ${this.subject}`); });
  }

  /** Stops reading (idempotent); a loop over the reader ends. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#messages?.close().catch(() => {});
  }
}
