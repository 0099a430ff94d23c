/**
 * A cluster node's reads (cluster-node.ts) as the Store's read tasks
 * (protocol.ts, run by shard-tasks.ts): the same task a worker runs on its
 * shard runs on a node's copy of it, here or on the node a request is
 * routed to, so search, retrieve, scroll and count answer as a single
 * process does, and points.ts merges them unchanged.
 *
 * Over NATS a batch of tasks (one per shard asked of a node) and its
 * answers travel as V8's serialization (typed arrays, bigints and
 * undefined survive it, as they survive a worker's postMessage).
 */
import { deserialize, serialize } from 'node:v8';
import { ErrorCode, QuiverError } from '../errors.js';
import { IdOrder } from './id-order.js';
import type { ShardRef } from './scatter.js';
import { isReadTask, runRead, type ReadTask } from './shard-tasks.js';
import type { ShardReplica } from './cluster-replica.js';

/** One shard's answer in a batch: its value, or the error it raised (coded). */
export type TaskAnswer = { ok: true; value: unknown } | { ok: false; code: string; message: string };

export function encodeTasks(tasks: readonly ReadTask[]): Uint8Array {
  return serialize(tasks);
}

export function decodeTasks(body: Uint8Array): ReadTask[] {
  const tasks = deserialize(body) as unknown;
  if (!Array.isArray(tasks) || !tasks.every((t) => typeof t === 'object' && t !== null && isReadTask(t as { op: string }))) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'a cluster read request must hold a list of read tasks');
  }
  return tasks as ReadTask[];
}

export function encodeAnswers(answers: readonly TaskAnswer[]): Uint8Array {
  return serialize(answers);
}

export function decodeAnswers(body: Uint8Array, expected: number): TaskAnswer[] {
  const answers = deserialize(body) as unknown;
  if (!Array.isArray(answers) || answers.length !== expected) throw new QuiverError(ErrorCode.CORRUPT, `a cluster read answer must hold ${expected} answers`);
  return answers as TaskAnswer[];
}

export function answerOf(fn: () => unknown): TaskAnswer {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof QuiverError) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: ErrorCode.CORE_TRAP, message: `a read failed: ${(err as Error)?.message ?? String(err)}` };
  }
}

export function valueOf(a: TaskAnswer): unknown {
  if (a.ok) return a.value;
  throw new QuiverError(a.code as ErrorCode, a.message);
}

/** Worth asking again: no copy there yet, or not the leader (a failover or a move under way). */
const retryableCode = (code: string): boolean => code === ErrorCode.UNAVAILABLE || code === ErrorCode.FENCED;

/**
 * Runs one task per shard: `route` says which node answers which shards
 * now, `ask` asks a node for its batch. A shard whose answer is retryable
 * (or whose node did not answer), or a route that could not be read (NATS
 * unavailable), is routed and asked again after 100 ms, until `deadline`;
 * any other error is thrown.
 */
export async function runOnCopies(
  tasks: ReadonlyMap<number, ReadTask>, deadline: number,
  route: (shards: number[]) => Promise<Map<string, number[]>>,
  ask: (node: string, shards: number[], batch: ReadTask[]) => Promise<TaskAnswer[]>,
): Promise<Map<number, unknown>> {
  const out = new Map<number, unknown>();
  let pending = [...tasks.keys()];
  while (pending.length > 0) {
    let byNode: Map<string, number[]>;
    try {
      byNode = await route(pending);
    } catch (err) {
      // the placement unreadable for now (a nats-server died and the client reconnects): ask again
      if (!retryable(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const failed: number[] = [];
    await Promise.all([...byNode].map(async ([node, shards]) => {
      const answers = await ask(node, shards, shards.map((s) => tasks.get(s)!)).catch((err: unknown) => shards.map(() => answerOf(() => {
        throw err;
      })));
      answers.forEach((a, i) => {
        if (a.ok) out.set(shards[i]!, a.value);
        else if (retryableCode(a.code) && Date.now() <= deadline) failed.push(shards[i]!);
        else valueOf(a);
      });
    }));
    pending = failed;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 100));
  }
  return out;
}

/**
 * Runs read tasks on copies. A copy's ids in id order (for scroll) are
 * kept while it has applied nothing new, and listed again after.
 */
export class CopyReads {
  readonly #orders = new WeakMap<ShardReplica, { seq: number; order: IdOrder }>();

  run(replica: ShardReplica, task: ReadTask): unknown {
    return runRead(replica.shard, task, () => {
      const have = this.#orders.get(replica);
      if (have !== undefined && have.seq === replica.lastSeq) return have.order;
      const order = new IdOrder(replica.shard.listIds());
      this.#orders.set(replica, { seq: replica.lastSeq, order });
      return order;
    });
  }

  /** Read tasks on a node's copies, each shard's answer or the error it met: UNAVAILABLE without a copy, FENCED on a follower when `leaderOnly`. */
  runLocal(nodeId: string, dataset: string, shards: readonly number[], tasks: readonly ReadTask[], leaderOnly: boolean, copyOf: (shard: number) => ShardReplica | null): TaskAnswer[] {
    return shards.map((s, i) => answerOf(() => {
      const r = copyOf(s);
      if (r === null || r.role === 'broken' || r.role === 'closed') throw new QuiverError(ErrorCode.UNAVAILABLE, `${dataset}/${s}: no copy on ${nodeId} yet`);
      if (leaderOnly && r.role !== 'leader') throw new QuiverError(ErrorCode.FENCED, `${dataset}/${s}: ${nodeId} does not lead the shard (yet)`);
      return this.run(r, tasks[i]!);
    }));
  }
}

/** Worth another try: NATS unavailable, no leader yet, or the leader moved. */
export function retryable(err: unknown): boolean {
  return err instanceof QuiverError && retryableCode(err.code);
}

/**
 * A dataset's shards as points.ts addresses them (a ref per shard, its key
 * the shard's number) and the runner that sends each task to a copy, so
 * points.ts's retrieve, scroll and count run on a cluster unchanged.
 */
export function clusterShards(shards: number, dim: number): { shards: ShardRef[]; dim: number } {
  return { shards: Array.from({ length: shards }, (_, s) => ({ key: String(s), thread: -1 })), dim };
}

export function clusterRunner(run: (shard: number, task: ReadTask) => Promise<unknown>): { run<T>(ref: ShardRef, task: ReadTask): Promise<T> } {
  return { run: async <T>(ref: ShardRef, task: ReadTask) => (await run(Number(ref.key), task)) as T };
}
