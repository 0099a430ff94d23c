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
  CLASS_SCRATCH, ERR_OUT_OF_MEMORY, FLAG_UUID, H_DELETED, H_ENTRY, H_IDMAP_LIVE, H_LIVE,
  H_MAX_LEVEL, H_SLOTS, H_VISITED, NONE, hget,
} from "./layout";
import { runAlloc, runFree, slabsFor } from "./arena";
import {
  countAt, idOf, isDeleted, pinnedOf, levelOf, linksAt, maxLinks, metaOf, nodePtr,
} from "./node";
import { ensureVisited, nextGen, visit } from "./hnsw";
import { idmapEntries, idmapFind } from "./idmap";

// @ts-ignore: decorator
@inline const PROBLEM_KINDS: u32 = 10;

function bump(out: usize, kind: u32): void {
  store<u32>(out + (<usize>kind << 2), load<u32>(out + (<usize>kind << 2)) + 1);
}

export function checkIntegrity(out: usize): i32 {
  memory.fill(out, 0, PROBLEM_KINDS * 4);
  const slots = hget(H_SLOTS);
  if (!ensureVisited(slots)) return ERR_OUT_OF_MEMORY;
  const indeg = runAlloc(slabsFor(slots * 4 + 4), CLASS_SCRATCH);
  if (indeg == 0) return ERR_OUT_OF_MEMORY;
  memory.fill(indeg, 0, <usize>slots << 2);
  let live: u32 = 0;
  let dead: u32 = 0;
  for (let s: u32 = 0; s < slots; s++) {
    const p = nodePtr(s);
    const meta = metaOf(p);
    if (isDeleted(meta)) dead++; else live++;
    const level = levelOf(meta);
    for (let l: u32 = 0; l <= level; l++) {
      const count = countAt(p, l);
      if (count > maxLinks(l)) { bump(out, 3); continue; }
      const links = linksAt(p, l);
      for (let j: u32 = 0; j < count; j++) {
        const n = load<u32>(links + (<usize>j << 2));
        if (n >= slots) { bump(out, 0); continue; }
        if (n == s) bump(out, 1);
        for (let i: u32 = 0; i < j; i++) {
          if (load<u32>(links + (<usize>i << 2)) == n) { bump(out, 2); break; }
        }
        if (levelOf(metaOf(nodePtr(n))) < l) bump(out, 4);
        if (l == 0 && j < pinnedOf(p)) store<u32>(indeg + (<usize>n << 2), load<u32>(indeg + (<usize>n << 2)) + 1);
      }
    }
  }
  const root = hget(H_ENTRY);
  for (let s: u32 = 0; s < slots; s++) {
    const p = nodePtr(s);
    if (pinnedOf(p) > countAt(p, 0)) bump(out, 9);
    const pins = load<u32>(indeg + (<usize>s << 2));
    if (s == root ? pins != 0 : (isDeleted(metaOf(p)) ? pins > 1 : pins != 1)) bump(out, 9);
  }
  if (live != hget(H_LIVE) || dead != hget(H_DELETED)) bump(out, 6);
  // id map: every live node is found under its own id, and nothing else is
  if (idmapEntries() != live || hget(H_IDMAP_LIVE) != live) bump(out, 7);
  for (let s: u32 = 0; s < slots; s++) {
    const p = nodePtr(s);
    const meta = metaOf(p);
    if (isDeleted(meta)) continue;
    const id = idOf(p);
    if (idmapFind(load<u64>(id), load<u64>(id, 8), meta & FLAG_UUID) != s) bump(out, 7);
  }
  const entry = hget(H_ENTRY);
  if (entry == NONE) {
    if (slots != 0 && live != 0) bump(out, 8);
  } else if (entry >= slots || <i32>levelOf(metaOf(nodePtr(entry))) != <i32>hget(H_MAX_LEVEL)) {
    bump(out, 8);
  } else {
    // reachability, reusing the in-degree run as the queue
    const visited = <usize>hget(H_VISITED);
    const gen = nextGen();
    visit(visited, entry, gen);
    store<u32>(indeg, entry);
    let head: u32 = 0;
    let tail: u32 = 1;
    while (head < tail) {
      const p = nodePtr(load<u32>(indeg + (<usize>head << 2)));
      head++;
      const count = min<u32>(countAt(p, 0), maxLinks(0));
      const links = linksAt(p, 0);
      for (let j: u32 = 0; j < count; j++) {
        const n = load<u32>(links + (<usize>j << 2));
        if (n >= slots || !visit(visited, n, gen)) continue;
        store<u32>(indeg + (<usize>tail << 2), n);
        tail++;
      }
    }
    for (let s: u32 = 0; s < slots; s++) {
      if (isDeleted(metaOf(nodePtr(s)))) continue;
      if (<u32>load<u16>(visited + (<usize>s << 1)) != gen) bump(out, 5);
    }
  }
  runFree(indeg, slabsFor(slots * 4 + 4), CLASS_SCRATCH);
  let total: u32 = 0;
  for (let k: u32 = 0; k < PROBLEM_KINDS; k++) total += load<u32>(out + (<usize>k << 2));
  return <i32>total;
}
