// Every byte quiver keeps lives in linear memory, behind one header. Nothing
// lives in WASM globals: a byte copy of the used prefix (0 .. arena top)
// instantiated over the same module is a complete shard.
//
// Memory of one shard:
//
//   0 ............ __heap_base   module static data (abort messages)
//   HEADER_PTR (16 KiB) .......  header, HEADER_BYTES
//   ARENA_BASE ................  slabs of SLAB_BYTES, handed out by arena.ts
//   arena top .................  end of the used prefix (an image ends here)
//   memory.size() ..............  committed but unused pages (growth headroom)
//
// Status codes: every export returns 0 (or a count) on success and a
// negative ERR_* on failure. A user error never traps.

// @ts-ignore: decorator
@inline export const DEBUG: bool = !ASC_NO_ASSERT;

// @ts-ignore: decorator
@inline export const MAGIC: u32 = 0x31525651; // "QVR1", little-endian
// @ts-ignore: decorator
@inline export const LAYOUT_VERSION: u32 = 2;
// @ts-ignore: decorator
@inline export const NONE: u32 = 0xffffffff;

// @ts-ignore: decorator
@inline export const OK: i32 = 0;
// @ts-ignore: decorator
@inline export const ERR_INVALID: i32 = -1;
// @ts-ignore: decorator
@inline export const ERR_NOT_FOUND: i32 = -2;
// @ts-ignore: decorator
@inline export const ERR_OUT_OF_MEMORY: i32 = -3;
// @ts-ignore: decorator
@inline export const ERR_CORRUPT: i32 = -4;
// @ts-ignore: decorator
@inline export const ERR_EMPTY: i32 = -5;

// @ts-ignore: decorator
@inline export const METRIC_L2: u32 = 0;
// @ts-ignore: decorator
@inline export const METRIC_IP: u32 = 1;
// @ts-ignore: decorator
@inline export const METRIC_COSINE: u32 = 2;

// @ts-ignore: decorator
@inline export const SLAB_SHIFT: u32 = 16;
// @ts-ignore: decorator
@inline export const SLAB_BYTES: u32 = 1 << SLAB_SHIFT; // one WASM page
// @ts-ignore: decorator
@inline export const MAX_PAGES: u32 = 65536; // 4 GiB, the wasm32 ceiling
// @ts-ignore: decorator
@inline export const MAX_LEVEL: u32 = 15;
// @ts-ignore: decorator
@inline export const MAX_M: u32 = 127; // M0 = 2M must fit the 8-bit link count
// @ts-ignore: decorator
@inline export const MAX_DIM: u32 = 65536;

// ---------------------------------------------------------------------------
// HEADER
//
//   0  magic        4  version      8  dim          12 metric
//   16 M            20 M0           24 efConstruction 28 node stride
//   32 slots        36 live         40 deleted      44 entry slot
//   48 max level    52 checksum     56 rng state (u64)
//   64 level mult (f64)             72 vector off   76 id off
//   80 arena base   84 arena top    88 free runs    92 image bytes
//   96 node dir     100 dir cap     104 node slabs  108 nodes per slab
//   112 node slab bytes             116 (pad)       120 slot div magic (u64)
//   128 idmap       132 idmap cap   136 idmap used  140 idmap live
//   144 visited     148 visited cap 152 visit gen   156 candidates
//   160 cand cap    164 results     168 result cap  172 io buffer
//   176 io bytes    180 live link bytes             184 select buf
//   188 select cap  192 .. 255 accounting: per class {committed u64, used u64}
//   256 .. 511 small classes: per class {block bytes, free head, bump, bump end}
//   512 remap       516 order       520 plan slots  524 plan live
//   528 io used     532 exact growth  536 default ef
//   544 .. 719 payload size classes (11 x {block bytes, free head, bump, bump end})
//   720 payload accounting {committed u64, used u64}
//   736 live payload bytes (u64)        744 largest payload blob
//   .. 1023 reserved
// ---------------------------------------------------------------------------

// @ts-ignore: decorator
@inline export const H_MAGIC: u32 = 0;
// @ts-ignore: decorator
@inline export const H_VERSION: u32 = H_MAGIC + 4;
// @ts-ignore: decorator
@inline export const H_DIM: u32 = H_VERSION + 4;
// @ts-ignore: decorator
@inline export const H_METRIC: u32 = H_DIM + 4;
// @ts-ignore: decorator
@inline export const H_M: u32 = H_METRIC + 4;
// @ts-ignore: decorator
@inline export const H_M0: u32 = H_M + 4;
// @ts-ignore: decorator
@inline export const H_EFC: u32 = H_M0 + 4;
// @ts-ignore: decorator
@inline export const H_STRIDE: u32 = H_EFC + 4;
// @ts-ignore: decorator
@inline export const H_SLOTS: u32 = H_STRIDE + 4;
// @ts-ignore: decorator
@inline export const H_LIVE: u32 = H_SLOTS + 4;
// @ts-ignore: decorator
@inline export const H_DELETED: u32 = H_LIVE + 4;
// @ts-ignore: decorator
@inline export const H_ENTRY: u32 = H_DELETED + 4;
// @ts-ignore: decorator
@inline export const H_MAX_LEVEL: u32 = H_ENTRY + 4;
// @ts-ignore: decorator
@inline export const H_CHECKSUM: u32 = H_MAX_LEVEL + 4;
// @ts-ignore: decorator
@inline export const H_RNG: u32 = H_CHECKSUM + 4; // 56, u64
// @ts-ignore: decorator
@inline export const H_LEVEL_MULT: u32 = H_RNG + 8; // 64, f64
// @ts-ignore: decorator
@inline export const H_VEC_OFF: u32 = H_LEVEL_MULT + 8;
// @ts-ignore: decorator
@inline export const H_ID_OFF: u32 = H_VEC_OFF + 4;
// @ts-ignore: decorator
@inline export const H_ARENA_BASE: u32 = H_ID_OFF + 4; // 80
// @ts-ignore: decorator
@inline export const H_ARENA_TOP: u32 = H_ARENA_BASE + 4;
// @ts-ignore: decorator
@inline export const H_FREE_RUNS: u32 = H_ARENA_TOP + 4;
// @ts-ignore: decorator
@inline export const H_IMAGE_BYTES: u32 = H_FREE_RUNS + 4;
// @ts-ignore: decorator
@inline export const H_NODE_DIR: u32 = H_IMAGE_BYTES + 4; // 96
// @ts-ignore: decorator
@inline export const H_NODE_DIR_CAP: u32 = H_NODE_DIR + 4;
// @ts-ignore: decorator
@inline export const H_NODE_SLABS: u32 = H_NODE_DIR_CAP + 4;
// @ts-ignore: decorator
@inline export const H_PER_SLAB: u32 = H_NODE_SLABS + 4;
// @ts-ignore: decorator
@inline export const H_NODE_SLAB_BYTES: u32 = H_PER_SLAB + 4; // 112
// @ts-ignore: decorator
@inline export const H_DIV_MAGIC: u32 = H_NODE_SLAB_BYTES + 8; // 120, u64
// @ts-ignore: decorator
@inline export const H_IDMAP: u32 = H_DIV_MAGIC + 8; // 128
// @ts-ignore: decorator
@inline export const H_IDMAP_CAP: u32 = H_IDMAP + 4;
// @ts-ignore: decorator
@inline export const H_IDMAP_USED: u32 = H_IDMAP_CAP + 4;
// @ts-ignore: decorator
@inline export const H_IDMAP_LIVE: u32 = H_IDMAP_USED + 4;
// @ts-ignore: decorator
@inline export const H_VISITED: u32 = H_IDMAP_LIVE + 4; // 144
// @ts-ignore: decorator
@inline export const H_VISITED_CAP: u32 = H_VISITED + 4;
// @ts-ignore: decorator
@inline export const H_VISIT_GEN: u32 = H_VISITED_CAP + 4;
// @ts-ignore: decorator
@inline export const H_CAND: u32 = H_VISIT_GEN + 4; // 156
// @ts-ignore: decorator
@inline export const H_CAND_CAP: u32 = H_CAND + 4;
// @ts-ignore: decorator
@inline export const H_RES: u32 = H_CAND_CAP + 4;
// @ts-ignore: decorator
@inline export const H_RES_CAP: u32 = H_RES + 4;
// @ts-ignore: decorator
@inline export const H_IO: u32 = H_RES_CAP + 4; // 172
// @ts-ignore: decorator
@inline export const H_IO_BYTES: u32 = H_IO + 4;
// @ts-ignore: decorator
@inline export const H_LIVE_LINK_BYTES: u32 = H_IO_BYTES + 4; // 180
// @ts-ignore: decorator
@inline export const H_SEL: u32 = H_LIVE_LINK_BYTES + 4; // 184
// @ts-ignore: decorator
@inline export const H_SEL_CAP: u32 = H_SEL + 4;
// @ts-ignore: decorator
@inline export const H_ACCT: u32 = 192;
// @ts-ignore: decorator
@inline export const H_SMALL: u32 = 256;
// @ts-ignore: decorator
@inline export const H_REMAP: u32 = 512; // compaction plan: old slot -> new slot
// @ts-ignore: decorator
@inline export const H_ORDER: u32 = H_REMAP + 4; // compaction plan: new slot -> old slot
// @ts-ignore: decorator
@inline export const H_PLAN_SLOTS: u32 = H_ORDER + 4; // slots when the plan was made
// @ts-ignore: decorator
@inline export const H_PLAN_LIVE: u32 = H_PLAN_SLOTS + 4;
// @ts-ignore: decorator
@inline export const H_IO_USED: u32 = H_PLAN_LIVE + 4; // bytes an export wrote to io
// @ts-ignore: decorator
@inline export const H_EXACT_GROWTH: u32 = H_IO_USED + 4; // 1: grow memory without headroom
// @ts-ignore: decorator
@inline export const H_EF: u32 = H_EXACT_GROWTH + 4; // default search ef
// @ts-ignore: decorator
@inline export const H_PAYLOAD_CLASSES: u32 = 544; // payload size classes, SC_STRIDE each
// @ts-ignore: decorator
@inline export const H_PAYLOAD_ACCT: u32 = 720; // payload accounting: committed u64, used u64
// @ts-ignore: decorator
@inline export const H_LIVE_PAYLOAD_BYTES: u32 = 736; // payload bytes of live nodes (u64)
// @ts-ignore: decorator
@inline export const H_MAX_PAYLOAD: u32 = 744; // largest payload blob ever stored
// @ts-ignore: decorator
@inline export const HEADER_BYTES: u32 = 1024;

// Accounting classes: who owns committed slab bytes.
// @ts-ignore: decorator
@inline export const CLASS_NODE: u32 = 0;
// @ts-ignore: decorator
@inline export const CLASS_LINKS: u32 = 1;
// @ts-ignore: decorator
@inline export const CLASS_IDMAP: u32 = 2;
// @ts-ignore: decorator
@inline export const CLASS_SCRATCH: u32 = 3;
// @ts-ignore: decorator
@inline export const CLASS_PAYLOAD: u32 = 4;
// @ts-ignore: decorator
@inline export const ACCT_CLASSES: u32 = 5;
// @ts-ignore: decorator
@inline export const ACCT_COMMITTED: u32 = 0;
// @ts-ignore: decorator
@inline export const ACCT_USED: u32 = 8;
// @ts-ignore: decorator
@inline export const ACCT_STRIDE: u32 = 16;

// Small block classes: class L (1..MAX_LEVEL) holds the upper-level link
// block of a node of level L. Class 0 is unused. Classes PAYLOAD_CLASS_BASE
// and up hold payload blobs of 32 << (sc - base) bytes; larger blobs are runs.
// @ts-ignore: decorator
@inline export const SMALL_CLASSES: u32 = MAX_LEVEL + 1;
// @ts-ignore: decorator
@inline export const PAYLOAD_CLASS_BASE: u32 = SMALL_CLASSES;
// @ts-ignore: decorator
@inline export const PAYLOAD_CLASSES: u32 = 11; // 32 B .. 32 KiB
// @ts-ignore: decorator
@inline export const PAYLOAD_MIN_SHIFT: u32 = 5;
// @ts-ignore: decorator
@inline export const ALL_SMALL_CLASSES: u32 = PAYLOAD_CLASS_BASE + PAYLOAD_CLASSES;
// @ts-ignore: decorator
@inline export const MAX_PAYLOAD_BYTES: u32 = 16 << 20;
// @ts-ignore: decorator
@inline export const SC_BLOCK: u32 = 0;
// @ts-ignore: decorator
@inline export const SC_FREE: u32 = 4;
// @ts-ignore: decorator
@inline export const SC_BUMP: u32 = 8;
// @ts-ignore: decorator
@inline export const SC_END: u32 = 12;
// @ts-ignore: decorator
@inline export const SC_STRIDE: u32 = 16;

// ---------------------------------------------------------------------------
// NODE record (level 0), fixed stride, hnswlib-style:
//
//   0        meta u32: link count (bits 0..7) | level (8..12) | flags (13..15)
//                      | pinned level-0 links (16..23)
//   4        upper u32: pointer to the upper-level link block, 0 at level 0
//   8        payload u32: pointer to the payload blob, 0 for none
//   12       links u32[M0]: level-0 neighbours, by slot
//   VEC_OFF  vector f32[dim] (normalised for cosine)
//   ID_OFF   id: lo u64, hi u64 (an integer id is lo; a UUID is hi:lo)
//
// PINNED links: the first `pinned` level-0 links of a node are edges of a
// spanning tree rooted at the entry point, which pruning never drops. Every
// node but the entry point has exactly one pinned in-link, so every node,
// live or tombstoned, stays reachable at level 0 whatever the heuristic
// prunes (plain HNSW can strand nodes; with small M it often does).
//
// PAYLOAD blob: len u32, then len bytes (the host's JSON, as UTF-8). Blobs
// come from payload size classes, or from slab runs past 32 KiB.
//
// UPPER link block of a level-L node: L sub-blocks, level l at
// (l - 1) * (4 + 4M):  count u32, links u32[M]
// ---------------------------------------------------------------------------

// @ts-ignore: decorator
@inline export const NODE_META: u32 = 0;
// @ts-ignore: decorator
@inline export const NODE_UPPER: u32 = NODE_META + 4;
// @ts-ignore: decorator
@inline export const NODE_PAYLOAD: u32 = NODE_UPPER + 4;
// @ts-ignore: decorator
@inline export const NODE_LINKS: u32 = NODE_PAYLOAD + 4;
// @ts-ignore: decorator
@inline export const ID_BYTES: u32 = 16;

// @ts-ignore: decorator
@inline export const META_COUNT_MASK: u32 = 0xff;
// @ts-ignore: decorator
@inline export const META_LEVEL_SHIFT: u32 = 8;
// @ts-ignore: decorator
@inline export const META_LEVEL_MASK: u32 = 0x1f;
// @ts-ignore: decorator
@inline export const FLAG_DELETED: u32 = 1 << 13;
// @ts-ignore: decorator
@inline export const FLAG_UUID: u32 = 1 << 14;
// @ts-ignore: decorator
@inline export const META_PINNED_SHIFT: u32 = 16;
// @ts-ignore: decorator
@inline export const META_PINNED_MASK: u32 = 0xff;

// ---------------------------------------------------------------------------
// IO buffer: the host stages inputs here and reads outputs back.
//   insert:  id lo u64, id hi u64, kind u32 (FLAG_UUID or 0), payload len u32,
//            vector f32[dim], payload bytes
//   get:     in as insert; out: payload ptr at IO_KIND, payload len at
//            IO_PAYLOAD_LEN, vector at IO_VECTOR
//   search:  query f32[dim]; results go to a caller-given pointer
//   result:  dist f32, flags u32, id lo u64, id hi u64, payload ptr u32,
//            payload len u32 (RESULT_BYTES each)
// ---------------------------------------------------------------------------
// @ts-ignore: decorator
@inline export const IO_ID_LO: u32 = 0;
// @ts-ignore: decorator
@inline export const IO_ID_HI: u32 = 8;
// @ts-ignore: decorator
@inline export const IO_KIND: u32 = 16;
// @ts-ignore: decorator
@inline export const IO_PAYLOAD_LEN: u32 = 20;
// @ts-ignore: decorator
@inline export const IO_VECTOR: u32 = 24;
// @ts-ignore: decorator
@inline export const RESULT_DIST: u32 = 0;
// @ts-ignore: decorator
@inline export const RESULT_FLAGS: u32 = 4;
// @ts-ignore: decorator
@inline export const RESULT_ID_LO: u32 = 8;
// @ts-ignore: decorator
@inline export const RESULT_ID_HI: u32 = 16;
// @ts-ignore: decorator
@inline export const RESULT_PAYLOAD_PTR: u32 = 24;
// @ts-ignore: decorator
@inline export const RESULT_PAYLOAD_LEN: u32 = 28;
// @ts-ignore: decorator
@inline export const RESULT_BYTES: u32 = 32;

// Heap entries: dist f32, slot u32.
// @ts-ignore: decorator
@inline export const ENTRY_BYTES: u32 = 8;

// The header lives at a fixed address above the module's static data, so an
// image made by the release build loads in the debug build and back.
// @ts-ignore: decorator
@inline export const HEADER_PTR: usize = 16384;

// @ts-ignore: decorator
@inline export function headerPtr(): usize {
  return HEADER_PTR;
}

// @ts-ignore: decorator
@inline export function hget(off: u32): u32 {
  return load<u32>(headerPtr() + off);
}

// @ts-ignore: decorator
@inline export function hset(off: u32, v: u32): void {
  store<u32>(headerPtr() + off, v);
}
