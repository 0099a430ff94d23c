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
  CLASS_IDMAP, FLAG_UUID, H_IDMAP, H_IDMAP_CAP, H_IDMAP_LIVE, H_IDMAP_USED, NONE, hget, hset,
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
  return load<u64>(id) == lo && load<u64>(id, 8) == hi
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
  const table = runAlloc(slabsFor(cap * 4), CLASS_IDMAP);
  if (table == 0) return false;
  memory.fill(table, 0xff, <usize>cap << 2);
  hset(H_IDMAP, <u32>table);
  hset(H_IDMAP_CAP, cap);
  hset(H_IDMAP_USED, 0);
  hset(H_IDMAP_LIVE, 0);
  return true;
}

export function idmapFind(lo: u64, hi: u64, kind: u32): u32 {
  const table = <usize>hget(H_IDMAP);
  const mask = hget(H_IDMAP_CAP) - 1;
  let i = hashId(lo, hi, kind) & mask;
  while (true) {
    const s = load<u32>(table + (<usize>i << 2));
    if (s == EMPTY) return NONE;
    if (s != TOMB && matches(s, lo, hi, kind)) return s;
    i = (i + 1) & mask;
  }
  return NONE;
}

function placeRaw(table: usize, mask: u32, lo: u64, hi: u64, kind: u32, slot: u32): void {
  let i = hashId(lo, hi, kind) & mask;
  while (load<u32>(table + (<usize>i << 2)) != EMPTY) i = (i + 1) & mask;
  store<u32>(table + (<usize>i << 2), slot);
}

// Makes sure one more id fits without passing 3/4 load; rebuilds the table
// when it would. False (table unchanged) when out of memory.
export function idmapReserve(): bool {
  const cap = hget(H_IDMAP_CAP);
  if ((<u64>hget(H_IDMAP_USED) + 1) * 4 <= <u64>cap * 3) return true;
  return idmapRebuild(capFor(hget(H_IDMAP_LIVE) * 2));
}

function idmapRebuild(cap: u32): bool {
  const table = runAlloc(slabsFor(cap * 4), CLASS_IDMAP);
  if (table == 0) return false;
  memory.fill(table, 0xff, <usize>cap << 2);
  const old = <usize>hget(H_IDMAP);
  const oldCap = hget(H_IDMAP_CAP);
  const mask = cap - 1;
  for (let i: u32 = 0; i < oldCap; i++) {
    const s = load<u32>(old + (<usize>i << 2));
    if (s >= TOMB) continue;
    const n = nodePtr(s);
    const id = idOf(n);
    placeRaw(table, mask, load<u64>(id), load<u64>(id, 8), isUuid(metaOf(n)) ? FLAG_UUID : 0, s);
  }
  runFree(old, slabsFor(oldCap * 4), CLASS_IDMAP);
  hset(H_IDMAP, <u32>table);
  hset(H_IDMAP_CAP, cap);
  hset(H_IDMAP_USED, hget(H_IDMAP_LIVE));
  return true;
}

// Inserts a new id (the caller has checked it is absent and reserved room).
export function idmapInsert(lo: u64, hi: u64, kind: u32, slot: u32): void {
  const table = <usize>hget(H_IDMAP);
  const mask = hget(H_IDMAP_CAP) - 1;
  let i = hashId(lo, hi, kind) & mask;
  while (true) {
    const p = table + (<usize>i << 2);
    const s = load<u32>(p);
    if (s == EMPTY || s == TOMB) {
      store<u32>(p, slot);
      if (s == EMPTY) hset(H_IDMAP_USED, hget(H_IDMAP_USED) + 1);
      hset(H_IDMAP_LIVE, hget(H_IDMAP_LIVE) + 1);
      return;
    }
    i = (i + 1) & mask;
  }
}

// Points an existing id at a new slot (upsert).
export function idmapReplace(lo: u64, hi: u64, kind: u32, slot: u32): void {
  const table = <usize>hget(H_IDMAP);
  const mask = hget(H_IDMAP_CAP) - 1;
  let i = hashId(lo, hi, kind) & mask;
  while (true) {
    const p = table + (<usize>i << 2);
    const s = load<u32>(p);
    if (s == EMPTY) return;
    if (s != TOMB && matches(s, lo, hi, kind)) {
      store<u32>(p, slot);
      return;
    }
    i = (i + 1) & mask;
  }
}

export function idmapRemove(lo: u64, hi: u64, kind: u32): u32 {
  const table = <usize>hget(H_IDMAP);
  const mask = hget(H_IDMAP_CAP) - 1;
  let i = hashId(lo, hi, kind) & mask;
  while (true) {
    const p = table + (<usize>i << 2);
    const s = load<u32>(p);
    if (s == EMPTY) return NONE;
    if (s != TOMB && matches(s, lo, hi, kind)) {
      store<u32>(p, TOMB);
      hset(H_IDMAP_LIVE, hget(H_IDMAP_LIVE) - 1);
      return s;
    }
    i = (i + 1) & mask;
  }
  return NONE;
}

// Number of table entries that hold a slot (for the integrity walk).
export function idmapEntries(): u32 {
  const table = <usize>hget(H_IDMAP);
  const cap = hget(H_IDMAP_CAP);
  let n: u32 = 0;
  for (let i: u32 = 0; i < cap; i++) {
    if (load<u32>(table + (<usize>i << 2)) < TOMB) n++;
  }
  return n;
}

export function idmapBytes(): u64 {
  return <u64>slabsFor(hget(H_IDMAP_CAP) * 4) << 16;
}
