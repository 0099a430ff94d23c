// IdMap: external id -> slot. Open addressing with linear probing over a
// power-of-two table of u32 slots; the key itself is read from the node
// record, so an entry costs 4 bytes (the id is stored once, in the node).
//
//   IDMAP   slot u32 x cap     EMPTY = 0xffffffff, TOMB = 0xfffffffe
//
// Ids: an integer id is (lo, hi = 0, kind 0); a UUID is (lo, hi, FLAG_UUID).
// The table is kept at most 3/4 full counting tombstones, and is rebuilt
// (right-sized to the live ids) when it grows.

import {
  CLASS_IDMAP, DEBUG, FLAG_UUID, H_IDMAP, H_IDMAP_CAP, H_IDMAP_LIVE, H_IDMAP_USED, ID_HI, ID_LO, NONE, SLAB_SHIFT,
  hget, hset, u32At,
} from "./layout";
import { runAlloc, runFree, slabsFor } from "./arena";
import { idOf, isUuid, metaOf, nodePtr } from "./node";

// @ts-ignore: decorator
@inline const EMPTY: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const TOMB: u32 = 0xfffffffe;
// @ts-ignore: decorator
@inline const MIN_CAP: u32 = 1024;
// @ts-ignore: decorator
@inline const ENTRY: u32 = sizeof<u32>(); // bytes per table entry

// @ts-ignore: decorator
@inline function mix(x: u64): u64 {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccd;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53;
  x ^= x >> 33;
  return x;
}

// @ts-ignore: decorator
@inline function hashId(lo: u64, hi: u64, kind: u32): u32 {
  return <u32>mix(lo ^ mix(hi + <u64>kind));
}

// @ts-ignore: decorator
@inline function matches(slot: u32, lo: u64, hi: u64, kind: u32): bool {
  const n = nodePtr(slot);
  const id = idOf(n);
  return load<u64>(id, ID_LO) == lo && load<u64>(id, ID_HI) == hi
    && (isUuid(metaOf(n)) ? FLAG_UUID : 0) == kind;
}

function capFor(live: u32): u32 {
  let cap = MIN_CAP;
  while (<u64>cap * 3 < (<u64>live + 1) * 4) cap <<= 1;
  return cap;
}

// Allocates an empty table for `expected` ids; false when out of memory.
export function idmapInit(expected: u32): bool {
  const cap = capFor(expected);
  const table = runAlloc(slabsFor(cap * ENTRY), CLASS_IDMAP);
  if (table == 0) return false;
  memory.fill(table, 0xff, <usize>cap * ENTRY);
  hset(H_IDMAP, <u32>table);
  hset(H_IDMAP_CAP, cap);
  hset(H_IDMAP_USED, 0);
  hset(H_IDMAP_LIVE, 0);
  return true;
}

// @ts-ignore: decorator
@inline const PROBE_FIND: u32 = 0; // the entry holding the id, or 0 when absent
// @ts-ignore: decorator
@inline const PROBE_FREE: u32 = 1; // the first EMPTY or TOMB on the id's path
// @ts-ignore: decorator
@inline const PROBE_EMPTY: u32 = 2; // the first EMPTY on the id's path (a rebuild has no TOMBs)

// The one probe loop of the id map: walks the id's path from its hash and
// returns an entry pointer as `mode` says (a constant, so each use folds to
// its own loop). The table is never full (3/4 at most), so every walk
// reaches an EMPTY entry.
// @ts-ignore: decorator
@inline function probe(table: usize, mask: u32, lo: u64, hi: u64, kind: u32, mode: u32): usize {
  let i = hashId(lo, hi, kind) & mask;
  while (true) {
    const p = table + (<usize>i << alignof<u32>());
    const s = load<u32>(p);
    if (s == EMPTY) return mode == PROBE_FIND ? 0 : p;
    if (s == TOMB) {
      if (mode == PROBE_FREE) return p;
    } else if (mode == PROBE_FIND && matches(s, lo, hi, kind)) {
      return p;
    }
    i = (i + 1) & mask;
  }
}

function entryOf(lo: u64, hi: u64, kind: u32): usize {
  return probe(<usize>hget(H_IDMAP), hget(H_IDMAP_CAP) - 1, lo, hi, kind, PROBE_FIND);
}

export function idmapFind(lo: u64, hi: u64, kind: u32): u32 {
  const p = entryOf(lo, hi, kind);
  return p == 0 ? NONE : load<u32>(p);
}

// Makes sure one more id fits without passing 3/4 load; rebuilds the table
// when it would. False (table unchanged) when out of memory.
export function idmapReserve(): bool {
  const cap = hget(H_IDMAP_CAP);
  if ((<u64>hget(H_IDMAP_USED) + 1) * 4 <= <u64>cap * 3) return true;
  return idmapRebuild(capFor(hget(H_IDMAP_LIVE) * 2));
}

function idmapRebuild(cap: u32): bool {
  const table = runAlloc(slabsFor(cap * ENTRY), CLASS_IDMAP);
  if (table == 0) return false;
  memory.fill(table, 0xff, <usize>cap * ENTRY);
  const old = <usize>hget(H_IDMAP);
  const oldCap = hget(H_IDMAP_CAP);
  const mask = cap - 1;
  for (let i: u32 = 0; i < oldCap; i++) {
    const s = u32At(old, i);
    if (s >= TOMB) continue;
    const n = nodePtr(s);
    const id = idOf(n);
    const p = probe(table, mask, load<u64>(id, ID_LO), load<u64>(id, ID_HI), isUuid(metaOf(n)) ? FLAG_UUID : 0, PROBE_EMPTY);
    store<u32>(p, s);
  }
  runFree(old, slabsFor(oldCap * ENTRY), CLASS_IDMAP);
  hset(H_IDMAP, <u32>table);
  hset(H_IDMAP_CAP, cap);
  hset(H_IDMAP_USED, hget(H_IDMAP_LIVE));
  return true;
}

// Inserts a new id (the caller has checked it is absent and reserved room).
export function idmapInsert(lo: u64, hi: u64, kind: u32, slot: u32): void {
  if (DEBUG) assert(entryOf(lo, hi, kind) == 0);
  const p = probe(<usize>hget(H_IDMAP), hget(H_IDMAP_CAP) - 1, lo, hi, kind, PROBE_FREE);
  if (load<u32>(p) == EMPTY) hset(H_IDMAP_USED, hget(H_IDMAP_USED) + 1);
  store<u32>(p, slot);
  hset(H_IDMAP_LIVE, hget(H_IDMAP_LIVE) + 1);
}

// Points an existing id at a new slot (upsert).
export function idmapReplace(lo: u64, hi: u64, kind: u32, slot: u32): void {
  const p = entryOf(lo, hi, kind);
  if (DEBUG) assert(p != 0);
  if (p != 0) store<u32>(p, slot);
}

// Removes an id; returns the slot it mapped to, or NONE when absent.
export function idmapRemove(lo: u64, hi: u64, kind: u32): u32 {
  const p = entryOf(lo, hi, kind);
  if (p == 0) return NONE;
  const s = load<u32>(p);
  store<u32>(p, TOMB);
  hset(H_IDMAP_LIVE, hget(H_IDMAP_LIVE) - 1);
  return s;
}

// Number of table entries that hold a slot (for the integrity walk).
export function idmapEntries(): u32 {
  const table = <usize>hget(H_IDMAP);
  const cap = hget(H_IDMAP_CAP);
  let n: u32 = 0;
  for (let i: u32 = 0; i < cap; i++) {
    if (u32At(table, i) < TOMB) n++;
  }
  return n;
}

export function idmapBytes(): u64 {
  return <u64>slabsFor(hget(H_IDMAP_CAP) * ENTRY) << SLAB_SHIFT;
}
