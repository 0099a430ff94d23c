// Placement (host/cluster/placement.ts) against what it promises, on random
// clusters: every shard's copies distinct, alive and as many as wanted;
// copies balanced to one; the most leaderships any node has is the least
// any assignment among the copies allows (checked against every assignment
// on small inputs); a placement that meets the rules comes back with no
// moves; a joining node receives every copy that moves; the moves turn the
// old placement into the new one.
import t from 'tap';
import fc from 'fast-check';
import { plan, type Move, type PlacementShard, type ShardPlacement } from '../host/cluster/placement.js';

const NODES = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6'];

interface Case {
  shards: PlacementShard[];
  alive: string[];
  current: Map<string, ShardPlacement>;
}

// a current placement that may name dead nodes, repeat a node, or lack shards
const caseArb = (maxShards: number, maxReplicas: number): fc.Arbitrary<Case> => fc.record({
  shards: fc.array(fc.integer({ min: 1, max: maxReplicas }), { minLength: 0, maxLength: maxShards }),
  alive: fc.subarray(NODES, { minLength: 1 }),
  placed: fc.array(fc.option(fc.record({ leader: fc.constantFrom(...NODES), followers: fc.array(fc.constantFrom(...NODES), { maxLength: 4 }) })), { maxLength: maxShards }),
}).map(({ shards, alive, placed }) => {
  const list = shards.map((replicas, i) => ({ key: `ds.${i}`, replicas }));
  const current = new Map<string, ShardPlacement>();
  placed.forEach((p, i) => {
    if (p !== null && i < list.length) current.set(`ds.${i}`, p);
  });
  return { shards: list, alive, current };
});

const copiesOf = (p: ShardPlacement): string[] => [p.leader, ...p.followers];
const counts = (placement: Map<string, ShardPlacement>, alive: string[], f: (p: ShardPlacement) => string[]): number[] =>
  alive.map((n) => [...placement.values()].filter((p) => f(p).includes(n)).length);
const spread = (xs: number[]): number => Math.max(...xs) - Math.min(...xs);

function applyMoves(current: Map<string, ShardPlacement>, moves: Move[]): Map<string, Set<string>> {
  const held = new Map([...current].map(([k, p]) => [k, new Set(copiesOf(p))]));
  for (const m of moves) {
    if (m.kind === 'add-copy') held.set(m.key, (held.get(m.key) ?? new Set()).add(m.node));
    if (m.kind === 'drop-copy') held.get(m.key)!.delete(m.node);
  }
  return held;
}

t.test('every shard gets its copies on distinct alive nodes, balanced to one, leader among them', async () => {
  fc.assert(fc.property(caseArb(24, 4), ({ shards, alive, current }) => {
    const { placement } = plan(shards, alive, current);
    const nodes = [...new Set(alive)];
    for (const s of shards) {
      const p = placement.get(s.key)!;
      const c = copiesOf(p);
      if (new Set(c).size !== c.length) return false;
      if (c.length !== Math.min(s.replicas, nodes.length)) return false;
      if (!c.every((n) => nodes.includes(n))) return false;
    }
    if (placement.size !== shards.length) return false;
    return shards.length === 0 || spread(counts(placement, nodes, copiesOf)) <= 1;
  }), { numRuns: 500 });
});

// every leader choice among each shard's copies, for the least possible maximum
function bestMaxLeads(placement: Map<string, ShardPlacement>, nodes: string[]): number {
  const options = [...placement.values()].map(copiesOf);
  let best = Infinity;
  const leads = new Map(nodes.map((n) => [n, 0]));
  const walk = (i: number): void => {
    if (i === options.length) {
      best = Math.min(best, Math.max(...leads.values()));
      return;
    }
    for (const n of options[i]!) {
      leads.set(n, leads.get(n)! + 1);
      walk(i + 1);
      leads.set(n, leads.get(n)! - 1);
    }
  };
  walk(0);
  return best;
}

t.test('leaderships: the most any node has is the least its copies allow (every assignment tried)', async () => {
  fc.assert(fc.property(caseArb(7, 3), ({ shards, alive, current }) => {
    const { placement } = plan(shards, alive, current);
    const nodes = [...new Set(alive)];
    if (shards.length === 0) return true;
    const got = Math.max(...counts(placement, nodes, (p) => [p.leader]));
    return got === bestMaxLeads(placement, nodes);
  }), { numRuns: 400 });
});

t.test('with one copy a shard (or equal replicas and enough shards), leaderships balance to one', async () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 3 }), fc.subarray(NODES, { minLength: 1 }), (n, r, alive) => {
    const shards = Array.from({ length: n }, (_, i) => ({ key: `d.${i}`, replicas: r }));
    const { placement } = plan(shards, alive, new Map());
    return spread(counts(placement, alive, (p) => [p.leader])) <= 1;
  }), { numRuns: 300 });
});

t.test('a placement that meets the rules comes back unchanged, with no moves', async () => {
  fc.assert(fc.property(caseArb(24, 4), ({ shards, alive, current }) => {
    const first = plan(shards, alive, current);
    const again = plan(shards, alive, first.placement);
    return again.moves.length === 0 && JSON.stringify([...again.placement]) === JSON.stringify([...first.placement]);
  }), { numRuns: 300 });
});

t.test('the moves turn the old placement into the new one, in order: adds, leaderships, drops', async () => {
  fc.assert(fc.property(caseArb(24, 4), ({ shards, alive, current }) => {
    const { placement, moves } = plan(shards, alive, current);
    const held = applyMoves(current, moves);
    for (const s of shards) {
      const want = new Set(copiesOf(placement.get(s.key)!));
      const got = held.get(s.key) ?? new Set();
      if (want.size !== got.size || ![...want].every((n) => got.has(n))) return false;
    }
    const rank = { 'add-copy': 0, lead: 1, 'drop-copy': 2 } as const;
    for (let i = 1; i < moves.length; i++) if (rank[moves[i - 1]!.kind] > rank[moves[i]!.kind]) return false;
    // a new leader holds a copy once the adds before it ran
    return moves.filter((m) => m.kind === 'lead').every((m) => held.get(m.key)!.has(m.node));
  }), { numRuns: 300 });
});

t.test('a node joining a balanced cluster receives every copy that moves, about its share', async () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), (n, r, size) => {
    const before = NODES.slice(0, size);
    const shards = Array.from({ length: n }, (_, i) => ({ key: `d.${i}`, replicas: r }));
    const balanced = plan(shards, before, new Map()).placement;
    const joined = plan(shards, [...before, 'n6'], balanced);
    const adds = joined.moves.filter((m) => m.kind === 'add-copy');
    const total = n * Math.min(r, size + 1) - n * Math.min(r, size);
    if (!adds.every((m) => m.node === 'n6')) return false;
    // the newcomer ends within one of every other node, having received only what balance needs
    const c = counts(joined.placement, [...before, 'n6'], copiesOf);
    return spread(c) <= 1 && adds.length <= Math.ceil((n * Math.min(r, size + 1)) / (size + 1)) + total;
  }), { numRuns: 300 });
});

t.test('a node leaving: its copies are replaced on the others, the rest of the placement stays where it can', async (t) => {
  const shards = Array.from({ length: 12 }, (_, i) => ({ key: `d.${i}`, replicas: 2 }));
  const three = plan(shards, ['a', 'b', 'c'], new Map()).placement;
  t.same(counts(three, ['a', 'b', 'c'], copiesOf), [8, 8, 8], 'balanced copies on three nodes');
  t.same(counts(three, ['a', 'b', 'c'], (p) => [p.leader]), [4, 4, 4], 'balanced leaderships');
  const two = plan(shards, ['a', 'b'], three);
  t.same(counts(two.placement, ['a', 'b'], copiesOf), [12, 12], 'every shard on both survivors');
  t.same(counts(two.placement, ['a', 'b'], (p) => [p.leader]), [6, 6], 'leaderships balanced again');
  t.ok(two.moves.every((m) => m.kind !== 'drop-copy' || m.node === 'c'), 'only the leaver\'s copies are dropped');
  for (const [key, p] of three) {
    if (p.leader !== 'c') t.equal(two.placement.get(key)!.leader, p.leader, `${key} keeps its leader ${p.leader}`);
  }
  t.same(plan(shards, [], three).placement.size, 0, 'no node alive: nothing placed');
});
