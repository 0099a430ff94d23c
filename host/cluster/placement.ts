/**
 * Placement: which nodes hold a copy of each shard and which of them leads
 * it, decided from what is placed now and which nodes are alive. A pure
 * function: whoever computes it writes the result with a compare-and-set
 * (two nodes computing from the same input get the same answer, so a lost
 * race costs nothing).
 *
 * What it keeps, in this order:
 *   1. every shard has min(replicas, alive nodes) copies, on distinct alive
 *      nodes; a copy on a node that left is replaced, a surplus one dropped
 *      from the most loaded node;
 *   2. copies are balanced: the most and least loaded nodes differ by at
 *      most one copy (always possible: a node holding more shards than
 *      another holds one the other does not);
 *   3. leaders are as balanced as the copies allow: leadership moves only
 *      among a shard's copies (a leader change is cheap, a copy move is a
 *      rebuild), along paths "X leads a shard that has a copy on Y" from the
 *      most loaded node to one that leads at least two fewer, until no such
 *      path is left (that is the least possible maximum);
 *   4. as little as possible moves: a placement that already meets 1-3
 *      comes back unchanged, a copy or a leadership stays where it is unless
 *      a rule above moves it, and a node that joins a balanced cluster
 *      receives every copy that moves.
 *
 * Ties go to the node id that sorts first, so the answer depends only on
 * the input. The moves are ordered as a move must run: copies added (the new
 * owner rebuilds from image + log and catches up), then leaderships (the new
 * leader takes the lease), then copies dropped (the old owner lets its
 * memory go).
 */

export interface ShardPlacement {
  leader: string;
  followers: string[];
}

export interface PlacementShard {
  /** The shard's key (names.ts: leaseKey), any string unique per shard. */
  key: string;
  /** Copies wanted, leader included (the replication factor), >= 1. */
  replicas: number;
}

export type Move =
  | { kind: 'add-copy'; key: string; node: string }
  | { kind: 'lead'; key: string; node: string; from: string | null }
  | { kind: 'drop-copy'; key: string; node: string };

export interface Plan {
  placement: Map<string, ShardPlacement>;
  moves: Move[];
}

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function plan(shards: readonly PlacementShard[], alive: readonly string[], current: ReadonlyMap<string, ShardPlacement>): Plan {
  const nodes = [...new Set(alive)].sort(byId);
  const live = new Set(nodes);
  const order = [...shards].sort((a, b) => byId(a.key, b.key));
  const copies = new Map<string, Set<string>>();
  const load = new Map(nodes.map((n) => [n, 0]));
  const bump = (n: string, d: number): void => {
    load.set(n, load.get(n)! + d);
  };
  // the least (or most) loaded node satisfying `ok`, ties by id
  const pick = (ok: (n: string) => boolean, most: boolean): string | undefined => {
    let best: string | undefined;
    for (const n of nodes) {
      if (!ok(n)) continue;
      if (best === undefined || (most ? load.get(n)! > load.get(best)! : load.get(n)! < load.get(best)!)) best = n;
    }
    return best;
  };

  // 1. the surviving copies, then the missing ones, surplus dropped
  for (const s of order) {
    const was = current.get(s.key);
    const held = new Set<string>();
    for (const n of was === undefined ? [] : [was.leader, ...was.followers]) if (live.has(n)) held.add(n);
    copies.set(s.key, held);
    for (const n of held) bump(n, 1);
  }
  for (const s of order) {
    const held = copies.get(s.key)!;
    const want = Math.min(Math.max(1, s.replicas), nodes.length);
    while (held.size > want) {
      const n = pick((x) => held.has(x), true)!;
      held.delete(n);
      bump(n, -1);
    }
    while (held.size < want) {
      const n = pick((x) => !held.has(x), false)!;
      held.add(n);
      bump(n, 1);
    }
  }

  // 2. copies balanced: move one from the most loaded node to the least loaded one that lacks it
  for (;;) {
    const hi = pick(() => true, true);
    const lo = pick(() => true, false);
    if (hi === undefined || lo === undefined || load.get(hi)! - load.get(lo)! <= 1) break;
    const s = order.find((x) => copies.get(x.key)!.has(hi) && !copies.get(x.key)!.has(lo))!;
    copies.get(s.key)!.delete(hi);
    copies.get(s.key)!.add(lo);
    bump(hi, -1);
    bump(lo, 1);
  }

  // 3. leaders: kept where still a copy, else the copy leading fewest; then balanced along paths
  const leader = new Map<string, string>();
  const leads = new Map(nodes.map((n) => [n, 0]));
  const lead = (key: string, n: string): void => {
    const old = leader.get(key);
    if (old !== undefined) leads.set(old, leads.get(old)! - 1);
    leader.set(key, n);
    leads.set(n, leads.get(n)! + 1);
  };
  const unled: PlacementShard[] = [];
  for (const s of order) {
    const was = current.get(s.key)?.leader;
    if (was !== undefined && copies.get(s.key)!.has(was)) lead(s.key, was);
    else unled.push(s);
  }
  for (const s of unled) {
    const held = copies.get(s.key)!;
    let best: string | undefined;
    for (const n of nodes) if (held.has(n) && (best === undefined || leads.get(n)! < leads.get(best)!)) best = n;
    if (best !== undefined) lead(s.key, best);
  }
  while (shiftLeadership(nodes, order, copies, leader, leads, lead));

  const placement = new Map<string, ShardPlacement>();
  for (const s of order) {
    const l = leader.get(s.key);
    if (l === undefined) continue; // no node alive
    placement.set(s.key, { leader: l, followers: nodes.filter((n) => n !== l && copies.get(s.key)!.has(n)) });
  }
  return { placement, moves: movesBetween(current, placement) };
}

/**
 * One leadership shift along a path from a most-leading node to one leading
 * at least two fewer (breadth first, so the path is short and the same for
 * the same input). False when there is none.
 */
function shiftLeadership(
  nodes: string[], order: PlacementShard[], copies: Map<string, Set<string>>, leader: Map<string, string>,
  leads: Map<string, number>, lead: (key: string, n: string) => void,
): boolean {
  const max = Math.max(...nodes.map((n) => leads.get(n)!));
  for (const start of nodes) {
    if (leads.get(start)! !== max) continue;
    const via = new Map<string, { from: string; key: string }>();
    const queue = [start];
    const seen = new Set([start]);
    while (queue.length > 0) {
      const x = queue.shift()!;
      if (leads.get(x)! <= max - 2) {
        // walk back, moving each shard's leadership one step along the path
        for (let at = x; at !== start;) {
          const step = via.get(at)!;
          lead(step.key, at);
          at = step.from;
        }
        return true;
      }
      for (const s of order) {
        if (leader.get(s.key) !== x) continue;
        for (const y of nodes) {
          if (seen.has(y) || !copies.get(s.key)!.has(y)) continue;
          seen.add(y);
          via.set(y, { from: x, key: s.key });
          queue.push(y);
        }
      }
    }
  }
  return false;
}

function movesBetween(current: ReadonlyMap<string, ShardPlacement>, next: ReadonlyMap<string, ShardPlacement>): Move[] {
  const adds: Move[] = [];
  const leads: Move[] = [];
  const drops: Move[] = [];
  const keys = [...new Set([...current.keys(), ...next.keys()])].sort(byId);
  for (const key of keys) {
    const was = current.get(key);
    const now = next.get(key);
    const before = new Set(was === undefined ? [] : [was.leader, ...was.followers]);
    const after = new Set(now === undefined ? [] : [now.leader, ...now.followers]);
    for (const n of [...after].sort(byId)) if (!before.has(n)) adds.push({ kind: 'add-copy', key, node: n });
    if (now !== undefined && now.leader !== was?.leader) leads.push({ kind: 'lead', key, node: now.leader, from: was?.leader ?? null });
    for (const n of [...before].sort(byId)) if (!after.has(n)) drops.push({ kind: 'drop-copy', key, node: n });
  }
  return [...adds, ...leads, ...drops];
}
