// The one breadth-first walk of the core: level 0, from a start slot,
// marking visited tags with `gen` (hnsw.ts nextGen). `queue` holds one u32
// per slot. Three walks use it, told apart by a constant `mode` that folds
// away when the function is inlined:
//
//   WALK_LIVE   through live nodes only (repair: what search can reach
//               once the tombstones are gone)
//   WALK_ANY    through every node, skipping links out of range (the
//               integrity check: the graph a search walks, even a broken one)
//   WALK_REPIN  as WALK_LIVE, and every tree edge is swapped into its
//               parent's pinned run: the walk's tree becomes the spanning tree

import { DEBUG, H_SLOTS, H_VISITED, hget, setU32At, u32At } from "./layout";
import { countAt, isDeleted, linksAt, maxLinks, metaOf, nodePtr, setPinned } from "./node";
import { visit } from "./hnsw";

// @ts-ignore: decorator
@inline export const WALK_LIVE: u32 = 0;
// @ts-ignore: decorator
@inline export const WALK_ANY: u32 = 1;
// @ts-ignore: decorator
@inline export const WALK_REPIN: u32 = 2;

// Returns how many nodes the walk reached (the queue holds them, in order).
// @ts-ignore: decorator
@inline export function walkLevel0(start: u32, gen: u32, queue: usize, mode: u32): u32 {
  const visited = <usize>hget(H_VISITED);
  const slots = hget(H_SLOTS);
  visit(visited, start, gen);
  setU32At(queue, 0, start);
  let head: u32 = 0;
  let tail: u32 = 1;
  while (head < tail) {
    const p = nodePtr(u32At(queue, head));
    head++;
    // a broken count must not walk off the list (WALK_ANY reads anything)
    const count = min<u32>(countAt(p, 0), maxLinks(0));
    const links = linksAt(p, 0);
    let pinned: u32 = 0;
    for (let j: u32 = 0; j < count; j++) {
      const n = u32At(links, j);
      if (mode == WALK_ANY) {
        if (n >= slots) continue;
      } else if (isDeleted(metaOf(nodePtr(n)))) {
        continue;
      }
      if (!visit(visited, n, gen)) continue;
      if (mode == WALK_REPIN) {
        // j >= pinned: swap the tree edge into the pinned run
        setU32At(links, j, u32At(links, pinned));
        setU32At(links, pinned, n);
        pinned++;
      }
      setU32At(queue, tail, n);
      tail++;
    }
    if (mode == WALK_REPIN) setPinned(p, pinned);
  }
  if (DEBUG) assert(tail <= slots);
  return tail;
}
