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
@inline export const LAYOUT_VERSION: u32 = 5; // 5: int8 quantized shards (hot/cold records); 4: QPB payloads
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
// HEADER, HEADER_BYTES at HEADER_PTR. Scalars first, then the per-class
// regions; every offset is derived from the one before it, and the static
// checks at the end of this file fail the build if two regions overlap.
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
//   188 select cap
//   192 .. 255  ACCT: classes node, links, idmap, scratch: {committed u64, used u64}
//   256 .. 511  SMALL: link classes 0..15: {block bytes, free head, bump, bump end}
//   512 remap       516 order       520 plan slots  524 plan live
//   528 io used     532 exact growth  536 default ef  540 (pad)
//   544 .. 719  PAYLOAD CLASSES: 11 x {block bytes, free head, bump, bump end}
//   720 .. 735  payload accounting {committed u64, used u64}
//   736 live payload bytes (u64): the blocks live payloads occupy
//   744 largest payload blob (len + 4) ever stored
//   748 filter cache    752 filter cache cap  756 filter gen
//   760 filter path (of the last filtered search)  764 filter estimate
//   768 payload index directory  772 payload indexes  776 candidates  780 cand cap
//   784 .. 807  payload index visit context (pindex.ts)
//   808 quantization (0 none, 1 sq8)  812 quantile f32  816 quantizer run
//   820 live count the quantizer was learned from (0: not yet)  824 bias off
//   828 cold dir    832 cold dir cap  836 cold slabs  840 cold per slab
//   844 cold slab bytes  848 cold stride  852 (pad)  856 cold div magic (u64)
//   864 disk mode (1: always_ram false)  868 originals generation (0: not spilled)
//   872 quantizer frozen (1: built on codes from here on, qshard.ts)
//   876 .. 1023 reserved (zero)
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
@inline export const H_DIV_MAGIC: u32 = ((H_NODE_SLAB_BYTES + 4 + 7) & ~7); // 120, u64
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
@inline export const H_SCALARS_END: u32 = H_SEL_CAP + 4; // end of the scalar fields
// @ts-ignore: decorator
@inline export const H_ACCT: u32 = ((H_SCALARS_END + 7) & ~7); // 192: ACCT_STRIDE per class below CLASS_PAYLOAD
// @ts-ignore: decorator
@inline export const H_SMALL: u32 = H_ACCT + CLASS_PAYLOAD * ACCT_STRIDE; // 256: SC_STRIDE per link class
// @ts-ignore: decorator
@inline export const H_REMAP: u32 = H_SMALL + SMALL_CLASSES * SC_STRIDE; // 512, compaction plan: old slot -> new slot
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
@inline export const H_PAYLOAD_CLASSES: u32 = ((H_EF + 4 + 15) & ~15); // 544: SC_STRIDE per payload class
// @ts-ignore: decorator
@inline export const H_PAYLOAD_ACCT: u32 = H_PAYLOAD_CLASSES + PAYLOAD_CLASSES * SC_STRIDE; // 720: committed u64, used u64
// @ts-ignore: decorator
@inline export const H_LIVE_PAYLOAD_BYTES: u32 = H_PAYLOAD_ACCT + ACCT_STRIDE; // 736, u64: blocks of live payloads
// @ts-ignore: decorator
@inline export const H_MAX_PAYLOAD: u32 = H_LIVE_PAYLOAD_BYTES + 8; // 744: largest blob (len + 4) ever stored
// @ts-ignore: decorator
@inline export const H_FCACHE: u32 = H_MAX_PAYLOAD + 4; // 748: u16 per slot, (gen << 1) | matched
// @ts-ignore: decorator
@inline export const H_FCACHE_CAP: u32 = H_FCACHE + 4;
// @ts-ignore: decorator
@inline export const H_FGEN: u32 = H_FCACHE_CAP + 4; // 1 .. FGEN_MAX
// @ts-ignore: decorator
@inline export const H_FPATH: u32 = H_FGEN + 4; // 760: PATH_* of the last filtered search
// @ts-ignore: decorator
@inline export const H_FEST: u32 = H_FPATH + 4; // the planner's estimate of matching live points
// @ts-ignore: decorator
@inline export const H_PINDEX: u32 = H_FEST + 4; // 768: payload index directory run (pindex.ts), 0: none
// @ts-ignore: decorator
@inline export const H_PINDEX_N: u32 = H_PINDEX + 4; // payload indexes in the directory
// @ts-ignore: decorator
@inline export const H_PX_CAND: u32 = H_PINDEX_N + 4; // candidate slots an index gave (scratch run)
// @ts-ignore: decorator
@inline export const H_PX_CAND_CAP: u32 = H_PX_CAND + 4;
// @ts-ignore: decorator
@inline export const H_PX_CTX: u32 = H_PX_CAND_CAP + 4; // 784: the visit context, PX_CTX_BYTES
// @ts-ignore: decorator
@inline export const PX_CTX_BYTES: u32 = 24;
// Quantization (quant.ts; hnsw.ts wires it). A quantized shard's node record
// holds the codes where an f32 shard's holds the vector; the f32 originals
// live in cold slabs of their own, addressed by slot like node slabs (the
// five cold directory fields mirror H_NODE_DIR .. H_NODE_SLAB_BYTES).
// @ts-ignore: decorator
@inline export const H_QUANT: u32 = H_PX_CTX + PX_CTX_BYTES; // 808: QUANT_*
// @ts-ignore: decorator
@inline export const H_QUANTILE: u32 = H_QUANT + 4; // f32
// @ts-ignore: decorator
@inline export const H_QPARAMS: u32 = H_QUANTILE + 4; // run: params, then the query's codes
// @ts-ignore: decorator
@inline export const H_QLEARNED: u32 = H_QPARAMS + 4; // 820: live count at the last learn, 0: not learned
// @ts-ignore: decorator
@inline export const H_BIAS_OFF: u32 = H_QLEARNED + 4; // the code's dot bias (f32) in a node record
// @ts-ignore: decorator
@inline export const H_COLD_DIR: u32 = H_BIAS_OFF + 4; // 828
// @ts-ignore: decorator
@inline export const H_COLD_DIR_CAP: u32 = H_COLD_DIR + 4;
// @ts-ignore: decorator
@inline export const H_COLD_SLABS: u32 = H_COLD_DIR_CAP + 4;
// @ts-ignore: decorator
@inline export const H_COLD_PER_SLAB: u32 = H_COLD_SLABS + 4;
// @ts-ignore: decorator
@inline export const H_COLD_SLAB_BYTES: u32 = H_COLD_PER_SLAB + 4; // 844
// @ts-ignore: decorator
@inline export const H_COLD_STRIDE: u32 = H_COLD_SLAB_BYTES + 4; // 848
// @ts-ignore: decorator
@inline export const H_COLD_MAGIC: u32 = ((H_COLD_STRIDE + 4 + 7) & ~7); // 856, u64
// @ts-ignore: decorator
@inline export const H_COLD_END: u32 = H_COLD_MAGIC + 8; // 864
// Disk mode (always_ram: false, qshard.ts "DISK MODE"): a quantized shard
// whose f32 originals leave memory for a file once it has FREEZE_AT
// live vectors ("spilled"); the generation names the file an image pairs
// with (0: not spilled, the originals are in the cold slabs). An image of
// layout 5 made before these fields existed holds zeros here: not disk mode.
// @ts-ignore: decorator
@inline export const H_DISK: u32 = H_COLD_END; // 864: 1 in disk mode
// @ts-ignore: decorator
@inline export const H_ORIG_GEN: u32 = H_DISK + 4; // 868: originals generation, 0: not spilled
// Frozen (qshard.ts "FREEZING"): 1 once a quantized shard has had
// FREEZE_AT live vectors; from then on no insert re-learns the quantizer
// and the graph is built on codes, in both modes. A spilled shard is frozen
// whatever this says (an image of layout 5 made before it existed holds 0).
// @ts-ignore: decorator
@inline export const H_QFROZEN: u32 = H_ORIG_GEN + 4; // 872
// @ts-ignore: decorator
@inline export const H_END: u32 = H_QFROZEN + 4; // 876: first unused header byte
// @ts-ignore: decorator
@inline export const FREEZE_AT: u32 = 1024;
// @ts-ignore: decorator
@inline export const QUANT_NONE: u32 = 0;
// @ts-ignore: decorator
@inline export const QUANT_SQ8: u32 = 1;
// Directory fields relative to H_NODE_DIR / H_COLD_DIR (node.ts dirSlots).
// @ts-ignore: decorator
@inline export const DIR_PTR: u32 = 0;
// @ts-ignore: decorator
@inline export const DIR_CAP: u32 = 4;
// @ts-ignore: decorator
@inline export const DIR_SLABS: u32 = 8;
// @ts-ignore: decorator
@inline export const DIR_PER_SLAB: u32 = 12;
// @ts-ignore: decorator
@inline export const DIR_SLAB_BYTES: u32 = 16;
// @ts-ignore: decorator
@inline export const HEADER_BYTES: u32 = 1024;


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
// A QUANTIZED shard's record (H_QUANT != 0) has the same first 12 + 4 * M0
// bytes, then the codes and their dot bias instead of the vector; its f32
// originals live in cold slabs, dim f32 a slot (H_COLD_DIR, node.ts coldPtr):
//
//   VEC_OFF  codes u8[dim] (qshard.ts)
//   BIAS_OFF bias f32 (4-aligned after the codes)
//   ID_OFF   id (8-aligned)
//
// PINNED links: the first `pinned` level-0 links of a node are edges of a
// spanning tree rooted at the entry point, which pruning never drops. Every
// node but the entry point has exactly one pinned in-link, so every node,
// live or tombstoned, stays reachable at level 0 whatever the heuristic
// prunes (plain HNSW can strand nodes; with small M it often does).
//
// PAYLOAD blob (payload.ts): 0 len u32 | 4 bytes[len] (one QPB value,
// host/payload.ts; filter.ts reads it). Blobs come from payload size classes, or from slab runs past 32 KiB.
//
// UPPER link block of a level-L node: L lists, level l at
// (l - 1) * (UPPER_LINKS + M * LINK_BYTES):
//
//   UPPER LIST   0 count u32 | 4 links u32[M]
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
@inline export const LINK_BYTES: u32 = 4; // a link is a slot number, u32
// @ts-ignore: decorator
@inline export const ID_LO: u32 = 0; // at ID_OFF
// @ts-ignore: decorator
@inline export const ID_HI: u32 = ID_LO + 8;
// @ts-ignore: decorator
@inline export const ID_BYTES: u32 = ID_HI + 8;
// @ts-ignore: decorator
@inline export const NODE_ALIGN: u32 = 8; // the stride is a multiple of this
// @ts-ignore: decorator
@inline export const MIN_PER_SLAB: u32 = 32; // node records per node slab, at least

// Upper-level list of one level, inside an upper link block.
// @ts-ignore: decorator
@inline export const UPPER_COUNT: u32 = 0;
// @ts-ignore: decorator
@inline export const UPPER_LINKS: u32 = UPPER_COUNT + 4;

// Payload blob.
// @ts-ignore: decorator
@inline export const BLOB_LEN: u32 = 0;
// @ts-ignore: decorator
@inline export const BLOB_BYTES: u32 = BLOB_LEN + 4; // the bytes follow the length

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
//   get:     in as insert; out: payload ptr at IO_PAYLOAD (IO_KIND's
//            slot, reused), payload len at IO_PAYLOAD_LEN, vector at IO_VECTOR
//   search:  query f32[dim]; results go to a caller-given pointer
//   result:  dist f32, flags u32, id lo u64, id hi u64, payload ptr u32,
//            payload len u32 (RESULT_BYTES each)
// ---------------------------------------------------------------------------
//
//   IO ITEM   0 id lo u64 | 8 id hi u64 | 16 kind u32 | 20 payload len u32
//             24 vector f32[dim] | payload bytes
//   GET OUT   16 payload ptr u32 (IO_PAYLOAD, an alias of IO_KIND: the kind
//             is read before get() writes the pointer over it)
//   RESULT    0 dist f32 | 4 flags u32 | 8 id lo u64 | 16 id hi u64
//             24 payload ptr u32 | 28 payload len u32
//   LISTED ID 0 id lo u64 | 8 id hi u64 | 16 kind u32 (1: UUID)
// ---------------------------------------------------------------------------
// @ts-ignore: decorator
@inline export const IO_ID_LO: u32 = 0;
// @ts-ignore: decorator
@inline export const IO_ID_HI: u32 = IO_ID_LO + 8;
// @ts-ignore: decorator
@inline export const IO_KIND: u32 = IO_ID_HI + 8;
// @ts-ignore: decorator
@inline export const IO_PAYLOAD_LEN: u32 = IO_KIND + 4;
// @ts-ignore: decorator
@inline export const IO_PAYLOAD: u32 = IO_KIND; // get()'s out: the payload bytes pointer
// @ts-ignore: decorator
@inline export const IO_VECTOR: u32 = IO_PAYLOAD_LEN + 4;
// @ts-ignore: decorator
@inline export const RESULT_DIST: u32 = 0;
// @ts-ignore: decorator
@inline export const RESULT_FLAGS: u32 = RESULT_DIST + 4;
// @ts-ignore: decorator
@inline export const RESULT_ID_LO: u32 = RESULT_FLAGS + 4;
// @ts-ignore: decorator
@inline export const RESULT_ID_HI: u32 = RESULT_ID_LO + 8;
// @ts-ignore: decorator
@inline export const RESULT_PAYLOAD_PTR: u32 = RESULT_ID_HI + 8;
// @ts-ignore: decorator
@inline export const RESULT_PAYLOAD_LEN: u32 = RESULT_PAYLOAD_PTR + 4;
// @ts-ignore: decorator
@inline export const RESULT_BYTES: u32 = RESULT_PAYLOAD_LEN + 4;
// @ts-ignore: decorator
@inline export const LISTED_ID_LO: u32 = 0;
// @ts-ignore: decorator
@inline export const LISTED_ID_HI: u32 = LISTED_ID_LO + 8;
// @ts-ignore: decorator
@inline export const LISTED_KIND: u32 = LISTED_ID_HI + 8;
// @ts-ignore: decorator
@inline export const LISTED_BYTES: u32 = LISTED_KIND + 4;

// Heap entry (heap.ts):  0 dist f32 | 4 slot u32
// @ts-ignore: decorator
@inline export const ENTRY_DIST: u32 = 0;
// @ts-ignore: decorator
@inline export const ENTRY_SLOT: u32 = ENTRY_DIST + 4;
// @ts-ignore: decorator
@inline export const ENTRY_BYTES: u32 = ENTRY_SLOT + 4;
// @ts-ignore: decorator
@inline export const ENTRY_SHIFT: u32 = 3; // log2(ENTRY_BYTES)

// Visited tags: a u16 per slot.
// @ts-ignore: decorator
@inline export const TAG_SHIFT: u32 = 1;

// Filtered search (fsearch.ts): the path it took, at H_FPATH.
// @ts-ignore: decorator
@inline export const PATH_GRAPH: u32 = 1;
// @ts-ignore: decorator
@inline export const PATH_EXACT: u32 = 2;
// @ts-ignore: decorator
@inline export const PATH_GRAPH_EXACT: u32 = 3;
// @ts-ignore: decorator
@inline export const PATH_INDEX: u32 = 4; // the exact path over a payload index's candidates

// checkIntegrity's problem counters, one u32 each, in this order.
// @ts-ignore: decorator
@inline export const PROBLEM_LINK_RANGE: u32 = 0;
// @ts-ignore: decorator
@inline export const PROBLEM_SELF_LINK: u32 = 1;
// @ts-ignore: decorator
@inline export const PROBLEM_DUPLICATE: u32 = 2;
// @ts-ignore: decorator
@inline export const PROBLEM_OVERFULL: u32 = 3;
// @ts-ignore: decorator
@inline export const PROBLEM_LEVEL: u32 = 4;
// @ts-ignore: decorator
@inline export const PROBLEM_UNREACHABLE: u32 = 5;
// @ts-ignore: decorator
@inline export const PROBLEM_COUNTS: u32 = 6;
// @ts-ignore: decorator
@inline export const PROBLEM_IDMAP: u32 = 7;
// @ts-ignore: decorator
@inline export const PROBLEM_ENTRY: u32 = 8;
// @ts-ignore: decorator
@inline export const PROBLEM_TREE: u32 = 9;
// @ts-ignore: decorator
@inline export const PROBLEM_KINDS: u32 = 10;

// stats(out) writes this many f64s (the order is in index.ts and abi.ts).
// @ts-ignore: decorator
@inline export const STAT_COUNT: u32 = 40;

// The header lives at a fixed address above the module's static data, so an
// image made by the release build loads in the debug build and back.
// @ts-ignore: decorator
@inline export const HEADER_PTR: usize = 16384;

// Element i of a u32 / f32 array at `base` (links, slot tables, vectors).
// @ts-ignore: decorator
@inline export function u32At(base: usize, i: u32): u32 {
  return load<u32>(base + (<usize>i << alignof<u32>()));
}
// @ts-ignore: decorator
@inline export function setU32At(base: usize, i: u32, v: u32): void {
  store<u32>(base + (<usize>i << alignof<u32>()), v);
}
// @ts-ignore: decorator
@inline export function f32At(base: usize, i: u32): f32 {
  return load<f32>(base + (<usize>i << alignof<f32>()));
}
// @ts-ignore: decorator
@inline export function setF32At(base: usize, i: u32, v: f32): void {
  store<f32>(base + (<usize>i << alignof<f32>()), v);
}

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

// ---------------------------------------------------------------------------
// Static checks: a layout edit that makes two header regions overlap, or
// breaks an alignment the code relies on, fails the build here.
// ---------------------------------------------------------------------------

if (H_SCALARS_END > H_ACCT) ERROR("header: scalar fields overlap ACCT");
if (H_ACCT + CLASS_PAYLOAD * ACCT_STRIDE > H_SMALL) ERROR("header: ACCT overlaps SMALL");
if (H_SMALL + SMALL_CLASSES * SC_STRIDE > H_REMAP) ERROR("header: SMALL overlaps the plan fields");
if (H_EF + 4 > H_PAYLOAD_CLASSES) ERROR("header: plan fields overlap PAYLOAD CLASSES");
if (H_PAYLOAD_CLASSES + PAYLOAD_CLASSES * SC_STRIDE > H_PAYLOAD_ACCT) ERROR("header: PAYLOAD CLASSES overlap payload accounting");
if (H_PAYLOAD_ACCT + ACCT_STRIDE > H_LIVE_PAYLOAD_BYTES) ERROR("header: payload accounting overlaps live payload bytes");
if (H_LIVE_PAYLOAD_BYTES + 8 > H_MAX_PAYLOAD) ERROR("header: live payload bytes overlap max payload");
if (H_MAX_PAYLOAD + 4 > H_FCACHE) ERROR("header: max payload overlaps the filter fields");
if (H_END > HEADER_BYTES) ERROR("header: fields run past HEADER_BYTES");
if (H_NODE_DIR_CAP != H_NODE_DIR + DIR_CAP || H_NODE_SLABS != H_NODE_DIR + DIR_SLABS || H_PER_SLAB != H_NODE_DIR + DIR_PER_SLAB
  || H_NODE_SLAB_BYTES != H_NODE_DIR + DIR_SLAB_BYTES || H_COLD_DIR_CAP != H_COLD_DIR + DIR_CAP || H_COLD_SLABS != H_COLD_DIR + DIR_SLABS
  || H_COLD_PER_SLAB != H_COLD_DIR + DIR_PER_SLAB || H_COLD_SLAB_BYTES != H_COLD_DIR + DIR_SLAB_BYTES) ERROR("header: a slab directory's fields are out of order");
if (ACCT_USED + 8 > ACCT_STRIDE || SC_END + 4 > SC_STRIDE) ERROR("header: a class record overflows its stride");
// u64 / f64 fields are read with 8-byte loads
if (((HEADER_PTR + H_RNG) | (HEADER_PTR + H_LEVEL_MULT) | (HEADER_PTR + H_DIV_MAGIC) | (HEADER_PTR + H_ACCT)
  | (HEADER_PTR + H_PAYLOAD_ACCT) | (HEADER_PTR + H_LIVE_PAYLOAD_BYTES) | (HEADER_PTR + H_COLD_MAGIC)) & 7) ERROR("header: a 64-bit field is not 8-byte aligned");
// imageHash reads the image as u64 words from HEADER_PTR and clears the
// checksum as the high half of one word; the image ends on a slab boundary
if (HEADER_PTR & 7 || (H_CHECKSUM & 7) != 4) ERROR("imageHash: the checksum must be the high half of an aligned u64");
if (SLAB_BYTES & 7) ERROR("imageHash: the arena top must stay 8-byte aligned");
if (MAX_M * 2 > META_COUNT_MASK || MAX_LEVEL > META_LEVEL_MASK) ERROR("node: M0 or the level does not fit the meta word");
if (RESULT_BYTES & 7 || ENTRY_BYTES != 1 << ENTRY_SHIFT) ERROR("records: bad result or heap entry size");
if (NODE_LINKS != NODE_PAYLOAD + 4 || NODE_LINKS & 3) ERROR("node: links must follow the payload field, aligned");
