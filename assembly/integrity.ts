// checkIntegrity: a full walk that property tests run after every step.
// Writes one u32 counter per kind of problem to `out` and returns the sum:
//
//   0 links out of range     1 self links         2 duplicate links
//   3 over-full lists        4 level violations   5 unreachable live nodes
//   6 count mismatches       7 id map mismatches  8 bad entry point
//   9 spanning-tree faults: a pinned count over the list length, or a live
//     node other than the entry point without exactly one pinned in-link
//
// Reachability is over level 0 from the entry point through any node,
// tombstoned or not, because that is the graph a search walks.

import {
  CLASS_SCRATCH, ERR_OUT_OF_MEMORY, FLAG_UUID, H_DELETED, H_ENTRY, H_IDMAP_LIVE, H_LIVE, H_MAX_LEVEL,
  H_SLOTS, H_VISITED, ID_HI, ID_LO, LINK_BYTES, NONE, PROBLEM_COUNTS, PROBLEM_DUPLICATE, PROBLEM_ENTRY,
  PROBLEM_IDMAP, PROBLEM_KINDS, PROBLEM_LEVEL, PROBLEM_LINK_RANGE, PROBLEM_OVERFULL, PROBLEM_SELF_LINK,
  PROBLEM_TREE, PROBLEM_UNREACHABLE, hget, setU32At, u32At,
} from "./layout";
import { runAlloc, runFree, slabsFor } from "./arena";
import {
  countAt, idOf, isDeleted, pinnedOf, levelOf, linksAt, maxLinks, metaOf, nodePtr,
} from "./node";
import { ensureVisited, nextGen, seen } from "./hnsw";
import { idmapEntries, idmapFind } from "./idmap";
import { WALK_ANY, walkLevel0 } from "./walk";

function bump(out: usize, kind: u32): void {
  setU32At(out, kind, u32At(out, kind) + 1);
}

export function checkIntegrity(out: usize): i32 {
  memory.fill(out, 0, PROBLEM_KINDS * sizeof<u32>());
  const slots = hget(H_SLOTS);
  if (!ensureVisited(slots)) return ERR_OUT_OF_MEMORY;
  // in-degree over pinned links, one u32 per slot; later the walk's queue
  const indegSlabs = slabsFor((slots + 1) * LINK_BYTES);
  const indeg = runAlloc(indegSlabs, CLASS_SCRATCH);
  if (indeg == 0) return ERR_OUT_OF_MEMORY;
  memory.fill(indeg, 0, <usize>slots * LINK_BYTES);
  let live: u32 = 0;
  let dead: u32 = 0;
  for (let s: u32 = 0; s < slots; s++) {
    const p = nodePtr(s);
    const meta = metaOf(p);
    if (isDeleted(meta)) dead++; else live++;
    const level = levelOf(meta);
    for (let l: u32 = 0; l <= level; l++) {
      const count = countAt(p, l);
      if (count > maxLinks(l)) { bump(out, PROBLEM_OVERFULL); continue; }
      const links = linksAt(p, l);
      for (let j: u32 = 0; j < count; j++) {
        const n = u32At(links, j);
        if (n >= slots) { bump(out, PROBLEM_LINK_RANGE); continue; }
        if (n == s) bump(out, PROBLEM_SELF_LINK);
        for (let i: u32 = 0; i < j; i++) {
          if (u32At(links, i) == n) { bump(out, PROBLEM_DUPLICATE); break; }
        }
        if (levelOf(metaOf(nodePtr(n))) < l) bump(out, PROBLEM_LEVEL);
        if (l == 0 && j < pinnedOf(p)) setU32At(indeg, n, u32At(indeg, n) + 1);
      }
    }
  }
  const root = hget(H_ENTRY);
  for (let s: u32 = 0; s < slots; s++) {
    const p = nodePtr(s);
    if (pinnedOf(p) > countAt(p, 0)) bump(out, PROBLEM_TREE);
    const pins = u32At(indeg, s);
    if (s == root ? pins != 0 : (isDeleted(metaOf(p)) ? pins > 1 : pins != 1)) bump(out, PROBLEM_TREE);
  }
  if (live != hget(H_LIVE) || dead != hget(H_DELETED)) bump(out, PROBLEM_COUNTS);
  // id map: every live node is found under its own id, and nothing else is
  if (idmapEntries() != live || hget(H_IDMAP_LIVE) != live) bump(out, PROBLEM_IDMAP);
  for (let s: u32 = 0; s < slots; s++) {
    const p = nodePtr(s);
    const meta = metaOf(p);
    if (isDeleted(meta)) continue;
    const id = idOf(p);
    if (idmapFind(load<u64>(id, ID_LO), load<u64>(id, ID_HI), meta & FLAG_UUID) != s) bump(out, PROBLEM_IDMAP);
  }
  const entry = hget(H_ENTRY);
  if (entry == NONE) {
    if (slots != 0 && live != 0) bump(out, PROBLEM_ENTRY);
  } else if (entry >= slots || <i32>levelOf(metaOf(nodePtr(entry))) != <i32>hget(H_MAX_LEVEL)) {
    bump(out, PROBLEM_ENTRY);
  } else {
    // reachability, reusing the in-degree run as the queue
    const gen = nextGen();
    walkLevel0(entry, gen, indeg, WALK_ANY);
    const visited = <usize>hget(H_VISITED);
    for (let s: u32 = 0; s < slots; s++) {
      if (isDeleted(metaOf(nodePtr(s)))) continue;
      if (!seen(visited, s, gen)) bump(out, PROBLEM_UNREACHABLE);
    }
  }
  runFree(indeg, indegSlabs, CLASS_SCRATCH);
  let total: u32 = 0;
  for (let k: u32 = 0; k < PROBLEM_KINDS; k++) total += u32At(out, k);
  return <i32>total;
}
