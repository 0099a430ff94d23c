/**
 * Scatter/gather over a dataset's shards: route ids to their shards, run a
 * task on the thread that owns a shard (turning its reply or its thread's
 * death into a coded error), and merge what the shards send back (the top k
 * of a search, the next page of a scroll).
 */
import type { SearchHits } from '../core/shard.js';
import type { IndexStats } from '../core/stats.js';
import { ErrorCode, QuiverError } from '../errors.js';
import { unpackId, type Id } from '../ids.js';
import { decodePayload } from '../payload.js';
import { compareIds } from './id-order.js';
import type { ThreadPool } from './pool.js';
import { ID_WORDS, type Reply, type ScrollResult, type SearchResult, type ShardKey, type Task } from './protocol.js';
import { shardOf } from './routing.js';
import { transientU32 } from '../memory/transient.js';
import type { PointRecord, ScrollPage } from './types.js';

/** A shard as the host addresses it: its key and the thread that owns it. */
export interface ShardRef {
  key: ShardKey;
  thread: number;
}

export function abortError(signal: AbortSignal, applied?: number): QuiverError {
  return new QuiverError(ErrorCode.ABORTED, 'the operation was aborted', { cause: signal.reason, ...(applied === undefined ? {} : { applied }) });
}

function unwrap<T>(reply: Reply<T>): T {
  if (reply.ok) return reply.value;
  throw new QuiverError(reply.code as ErrorCode, reply.message, reply.applied === undefined ? {} : { applied: reply.applied });
}

/** Runs tasks on the threads that own their shards. */
export class Scatter {
  readonly #pool: ThreadPool;
  readonly #closing: () => boolean;

  /** `closing`: whether the store is closing (a terminated thread then means CLOSED, not WORKER_LOST). */
  constructor(pool: ThreadPool, closing: () => boolean) {
    this.#pool = pool;
    this.#closing = closing;
  }

  async run<T>(ref: ShardRef, task: Task, transfer: Transferable[] = []): Promise<T> {
    try {
      return unwrap(await this.#pool.run<T>(ref.thread, task, transfer));
    } catch (err) {
      if (err instanceof QuiverError) throw err;
      if (this.#closing()) {
        // a forced close terminated the thread under this call
        throw new QuiverError(ErrorCode.CLOSED, 'the store closed before this call finished', { cause: err });
      }
      if ((err as { threadLost?: number }).threadLost !== undefined) {
        throw new QuiverError(ErrorCode.WORKER_LOST, 'the worker thread that owns this shard was lost', { cause: err });
      }
      throw new QuiverError(ErrorCode.CORE_TRAP, `the worker failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  stats(shards: ShardRef[]): Promise<IndexStats[]> {
    return Promise.all(shards.map((s) => this.run<IndexStats>(s, { op: 'stats', shard: s.key })));
  }

  /** Drops shards, one task per owning thread; a lost thread is skipped. */
  async drop(shards: ShardRef[]): Promise<void> {
    const byThread = new Map<number, ShardKey[]>();
    for (const s of shards) byThread.set(s.thread, [...(byThread.get(s.thread) ?? []), s.key]);
    await Promise.all([...byThread].map(([thread, keys]) =>
      this.#pool.run(thread, { op: 'drop', shards: keys }).catch(() => undefined)));
  }
}

/** Groups packed ids (their row numbers) by the shard each lives in. */
export function route(shards: number, packed: Uint32Array): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < packed.length / ID_WORDS; i++) {
    const s = shardOf(packed, i, shards);
    let g = groups.get(s);
    if (g === undefined) groups.set(s, (g = []));
    g.push(i);
  }
  return groups;
}

/**
 * The packed ids at `rows`, in a transient buffer (transient.ts): a big one
 * is shared with the worker, never malloc'd, never copied.
 */
export function pick(packed: Uint32Array, rows: number[], u32: (length: number) => Uint32Array = transientU32): Uint32Array {
  const out = u32(rows.length * ID_WORDS);
  rows.forEach((row, j) => out.set(packed.subarray(row * ID_WORDS, (row + 1) * ID_WORDS), j * ID_WORDS));
  return out;
}

const idAt = (ids: Uint32Array, row: number): Id => unpackId(ids, row * ID_WORDS, ids[row * ID_WORDS + 4] === 1);

/** Merges every shard's hits for query q into the global top k. */
export function mergeTopK(parts: SearchResult[], q: number, k: number, withPayload = false): SearchHits {
  const all: { d: number; part: number; at: number }[] = [];
  parts.forEach((p, part) => {
    for (let i = 0; i < p.counts[q]!; i++) all.push({ d: p.distances[q * k + i]!, part, at: q * k + i });
  });
  all.sort((a, b) => a.d - b.d);
  const top = all.slice(0, k);
  return {
    ids: top.map((h) => idAt(parts[h.part]!.ids, h.at)),
    distances: Float32Array.from(top, (h) => h.d),
    ...(withPayload ? { payloads: top.map((h) => decodePayload(parts[h.part]!.payloads?.[h.at])) } : {}),
    ...(parts[0]?.paths === undefined ? {} : { paths: parts.map((p) => p.paths![q]!) }),
  };
}

/**
 * One scroll page from each shard's next `limit + 1` points (each list in id
 * order): the first `limit` of their merge, and the id after them.
 */
export function mergeScroll(parts: ScrollResult[], limit: number, dim: number): ScrollPage {
  const heads = parts.map(() => 0);
  const points: PointRecord[] = [];
  for (;;) {
    let best = -1;
    parts.forEach((p, s) => {
      if (heads[s]! * ID_WORDS >= p.ids.length) return;
      if (best < 0 || compareIds(p.ids, heads[s]!, parts[best]!.ids, heads[best]!) < 0) best = s;
    });
    if (best < 0) return { points, nextOffset: undefined };
    const p = parts[best]!;
    const row = heads[best]!++;
    if (points.length === limit) return { points, nextOffset: idAt(p.ids, row) };
    const rec: PointRecord = { id: idAt(p.ids, row) };
    if (p.vectors !== undefined) rec.vector = p.vectors.slice(row * dim, (row + 1) * dim);
    if (p.payloads !== undefined) rec.payload = decodePayload(p.payloads[row]);
    points.push(rec);
  }
}
