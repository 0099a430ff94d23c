import { ErrorCode, QuiverError } from '../errors.js';

/**
 * The WASM core's ABI, as the host sees it: the exported functions, and the
 * layout table (offsets, strides, record layouts, codes). The core exports
 * the same table (assembly/index.ts `layoutEntry`), and `instantiate`
 * checks the two agree before a shard touches memory (test/abi.test.ts).
 */
export interface CoreExports {
  memory: WebAssembly.Memory;
  layoutEntry(i: number): number;
  /** disk 1: always_ram false (qshard.ts "DISK MODE"); generation != 0: spilled from the start (a compaction's target). */
  init(dim: number, metric: number, m: number, efConstruction: number, seed: bigint, capacity: number, quant: number, quantile: number, disk?: number, generation?: number): number;
  attach(): number;
  setEf(ef: number): number;
  ioReserve(bytes: number): number;
  ioTrim(): void;
  ioPtr(): number;
  ioUsed(): number;
  header(): number;
  usedBytes(): number;
  sealImage(): number;
  verifyImage(bytes: number): number;
  stats(out: number): void;
  insert(): number;
  remove(): number;
  get(): number;
  /**
   * rescore (quantized shards): -1 walks the f32 originals, 0 returns code distances, n > 0 re-ranks n (assembly/qshard.ts).
   * A spilled shard with n > 0 writes its max(n, k) candidates' slots (u32) to `out` instead and returns how many: then `rerank`.
   */
  search(k: number, ef: number, rescore: number, out: number): number;
  /** A spilled shard's re-rank: n candidate slots at `slots`, their originals (dim f32 each) at `vecs`; k results to `out`. */
  rerank(k: number, n: number, slots: number, vecs: number, out: number): number;
  /** The spill (disk mode, once frozen): spillBegin (the slot count), originalAt(slot) for each, then spillFinish(generation). */
  spillBegin(): number;
  originalAt(slot: number): number;
  spillFinish(generation: number): number;
  /**
   * A spilled compaction target learns again (assembly/qshard.ts relearnBegin): a scratch run (0: none) with
   * relearnCount(run) sample slots at relearnSlots(run); dimension d of their originals written at
   * relearnColumn(run), then relearnDim(run, d), for each d; relearnFinish(run); then encodeRange over every slot.
   */
  relearnBegin(): number;
  relearnCount(run: number): number;
  relearnSlots(run: number): number;
  relearnColumn(run: number): number;
  relearnDim(run: number, d: number): number;
  relearnFinish(run: number): void;
  /** Slots [from, from + n) encoded from their originals at `vecs` (dim f32 each). */
  encodeRange(from: number, n: number, vecs: number): number;
  repairRange(from: number, to: number): number;
  repairFinish(): number;
  compactPlan(): number;
  compactDone(): void;
  planEntry(): number;
  exportNodes(from: number, maxNodes: number, maxBytes: number): number;
  importNodes(count: number): number;
  importFinish(entry: number, maxLevel: number): number;
  checkIntegrity(out: number): number;
  listIds(from: number, maxCount: number, out: number): number;
  /** Filtered search (assembly/fsearch.ts): the program at [prog, prog + len). */
  searchFiltered(k: number, ef: number, out: number, prog: number, len: number, exactBelow: number, exactFraction: number, twoHopBelow: number, indexFraction: number, rescore: number): number;
  countMatching(prog: number, len: number): number;
  /** The id staged at io as `remove` takes it: 1, 0, or NOT_FOUND. */
  matches(prog: number, len: number): number;
  /** The id staged at io gets the IO_PAYLOAD_LEN bytes at IO_VECTOR as its payload (0: none): OK, NOT_FOUND, OUT_OF_MEMORY (unchanged). */
  replacePayload(): number;
  /** Payload indexes (assembly/pindex.ts): the name and path staged at io; see host/core/payload-index.ts. */
  createPayloadIndex(type: number): number;
  dropPayloadIndex(): number;
  payloadIndexEntry(i: number): number;
}

/** The debug build (assembly/debug.ts) adds hooks the arena and kernel tests drive. */
export interface DebugCoreExports extends CoreExports {
  arenaRunAlloc(slabs: number, cls: number): number;
  arenaRunFree(ptr: number, slabs: number, cls: number): void;
  arenaSmallAlloc(sc: number): number;
  arenaSmallFree(sc: number, ptr: number): void;
  arenaSmallBlock(sc: number): number;
  arenaFreeRunBytes(): number;
  kernelL2(a: number, b: number, dim: number): number;
  kernelL2Scalar(a: number, b: number, dim: number): number;
  kernelDot(a: number, b: number, dim: number): number;
  kernelDotScalar(a: number, b: number, dim: number): number;
  /** int8 scalar quantization (assembly/quant.ts), over caller-placed memory. */
  quantLearn(sample: number, n: number, dim: number, quantile: number, params: number, scratch: number): number;
  quantEncode(params: number, vec: number, code: number): number;
  quantDecode(params: number, code: number, out: number): void;
  quantParamsSize(dim: number): number;
  quantSelectKth(ptr: number, n: number, k: number): number;
  kernelCodeL2(a: number, b: number, dim: number): number;
  kernelCodeL2Scalar(a: number, b: number, dim: number): number;
  kernelCodeDot(a: number, b: number, dim: number): number;
  kernelCodeDotScalar(a: number, b: number, dim: number): number;
  quantDistance(metric: number, params: number, raw: number, biasA: number, biasB: number): number;
}

/** Names of the exports only the debug build has. */
export const DEBUG_ONLY_EXPORTS = [
  'arenaRunAlloc', 'arenaRunFree', 'arenaSmallAlloc', 'arenaSmallFree', 'arenaSmallBlock', 'arenaFreeRunBytes',
  'kernelL2', 'kernelL2Scalar', 'kernelDot', 'kernelDotScalar',
  'quantLearn', 'quantEncode', 'quantDecode', 'quantParamsSize', 'quantSelectKth',
  'kernelCodeL2', 'kernelCodeL2Scalar', 'kernelCodeDot', 'kernelCodeDotScalar', 'quantDistance',
] as const;

/**
 * The layout table: every constant of assembly/layout.ts the host relies
 * on, in the order `layoutEntry(i)` returns them. Add an entry here and in
 * assembly/index.ts together; the check at instantiate names the first
 * entry that differs.
 */
export const LAYOUT = {
  LAYOUT_VERSION: 5,
  MAGIC: 0x31525651,
  HEADER_PTR: 16384,
  HEADER_BYTES: 1024,
  SLAB_BYTES: 65536,
  NONE: 0xffffffff,
  OK: 0,
  ERR_INVALID: -1,
  ERR_NOT_FOUND: -2,
  ERR_OUT_OF_MEMORY: -3,
  ERR_CORRUPT: -4,
  METRIC_L2: 0,
  METRIC_IP: 1,
  METRIC_COSINE: 2,
  MAX_DIM: 65536,
  MAX_M: 127,
  MAX_LEVEL: 15,
  MAX_PAYLOAD_BYTES: 16 << 20,
  FLAG_UUID: 1 << 14,
  H_MAGIC: 0,
  H_VERSION: 4,
  H_DIM: 8,
  H_METRIC: 12,
  H_MAX_LEVEL: 48,
  H_CHECKSUM: 52,
  H_RNG: 56,
  H_ARENA_TOP: 84,
  H_FREE_RUNS: 88,
  H_IMAGE_BYTES: 92,
  H_NODE_DIR: 96,
  H_SMALL: 256,
  H_EXACT_GROWTH: 532,
  SC_STRIDE: 16,
  SMALL_CLASSES: 16,
  CLASS_NODE: 0,
  CLASS_LINKS: 1,
  CLASS_IDMAP: 2,
  CLASS_SCRATCH: 3,
  CLASS_PAYLOAD: 4,
  IO_ID_LO: 0,
  IO_ID_HI: 8,
  IO_KIND: 16,
  IO_PAYLOAD: 16,
  IO_PAYLOAD_LEN: 20,
  IO_VECTOR: 24,
  RESULT_DIST: 0,
  RESULT_FLAGS: 4,
  RESULT_ID_LO: 8,
  RESULT_ID_HI: 16,
  RESULT_PAYLOAD_PTR: 24,
  RESULT_PAYLOAD_LEN: 28,
  RESULT_BYTES: 32,
  LISTED_BYTES: 20,
  NODE_META: 0,
  NODE_PAYLOAD: 8,
  NODE_LINKS: 12,
  ID_BYTES: 16,
  META_LEVEL_SHIFT: 8,
  META_LEVEL_MASK: 0x1f,
  UPPER_LINKS: 4,
  LINK_BYTES: 4,
  STAT_COUNT: 40,
  PROBLEM_KINDS: 10,
  H_FPATH: 760,
  H_FEST: 764,
  PATH_GRAPH: 1,
  PATH_EXACT: 2,
  PATH_GRAPH_EXACT: 3,
  PATH_INDEX: 4,
  PX_TYPE: 0,
  PX_NAME_LEN: 4,
  PX_NAME: 64,
  PX_NAME_MAX: 256,
  PX_POINTS: 36,
  PX_MAX: 32,
  PX_KEYWORD: 1,
  PX_INTEGER: 2,
  PX_FLOAT: 3,
  PX_BOOL: 4,
  PX_UUID: 5,
  QUANT_NONE: 0,
  QUANT_SQ8: 1,
  H_DISK: 864,
  H_ORIG_GEN: 868,
  H_QLEARNED: 820,
  H_ORDER: 516,
  FREEZE_AT: 1024,
  H_SLOTS: 32,
  H_LIVE: 36,
  H_QFROZEN: 872,
} as const;
export type LayoutName = keyof typeof LAYOUT;
export const LAYOUT_NAMES = Object.keys(LAYOUT) as LayoutName[];

/**
 * Checks a core's layout table against LAYOUT; `entry(i)` is the core's
 * i-th value, -1 past its last. Throws CORE_ABI naming the first mismatch.
 */
export function checkLayout(entry: (i: number) => number, expected: Readonly<Record<string, number>> = LAYOUT): void {
  const names = Object.keys(expected);
  names.forEach((name, i) => {
    const got = entry(i);
    if (got !== expected[name]) {
      throw new QuiverError(ErrorCode.CORE_ABI, `the WASM core disagrees with host/core/abi.ts: ${name} is ${got} in the core, ${expected[name]} in the host (rebuild with npm run build)`);
    }
  });
  if (entry(names.length) !== -1) {
    throw new QuiverError(ErrorCode.CORE_ABI, `the WASM core's layout table has more than the host's ${names.length} entries (rebuild with npm run build)`);
  }
}

export const {
  OK, ERR_INVALID, ERR_NOT_FOUND, ERR_OUT_OF_MEMORY, ERR_CORRUPT, NONE, HEADER_PTR, HEADER_BYTES, MAGIC,
  LAYOUT_VERSION, MAX_DIM, MAX_M, FLAG_UUID, RESULT_BYTES, MAX_PAYLOAD_BYTES,
} = LAYOUT;
export const PAGE_BYTES = LAYOUT.SLAB_BYTES;

/** Header field offsets the host reads directly. */
export const H = {
  MAGIC: LAYOUT.H_MAGIC,
  VERSION: LAYOUT.H_VERSION,
  DIM: LAYOUT.H_DIM,
  METRIC: LAYOUT.H_METRIC,
  MAX_LEVEL: LAYOUT.H_MAX_LEVEL,
  RNG: LAYOUT.H_RNG,
  ARENA_TOP: LAYOUT.H_ARENA_TOP,
  FREE_RUNS: LAYOUT.H_FREE_RUNS,
  IMAGE_BYTES: LAYOUT.H_IMAGE_BYTES,
  EXACT_GROWTH: LAYOUT.H_EXACT_GROWTH,
  SLOTS: LAYOUT.H_SLOTS,
  LIVE: LAYOUT.H_LIVE,
  DISK: LAYOUT.H_DISK,
  ORIG_GEN: LAYOUT.H_ORIG_GEN,
  QLEARNED: LAYOUT.H_QLEARNED,
  ORDER: LAYOUT.H_ORDER,
  QFROZEN: LAYOUT.H_QFROZEN,
} as const;

export const Metric = { l2: LAYOUT.METRIC_L2, ip: LAYOUT.METRIC_IP, cosine: LAYOUT.METRIC_COSINE } as const;
export type MetricName = keyof typeof Metric;
export const METRIC_NAMES: readonly MetricName[] = ['l2', 'ip', 'cosine'];

/** io buffer layout for one staged item. */
export const IO = {
  ID_LO: LAYOUT.IO_ID_LO, ID_HI: LAYOUT.IO_ID_HI, KIND: LAYOUT.IO_KIND, PAYLOAD: LAYOUT.IO_PAYLOAD,
  PAYLOAD_LEN: LAYOUT.IO_PAYLOAD_LEN, VECTOR: LAYOUT.IO_VECTOR,
} as const;

/**
 * About the bytes one inserted vector makes the core touch (its payload
 * not included), derived from the layout:
 * - its node record: the fixed words (meta, upper pointer, payload
 *   pointer, NODE_LINKS), M0 = 2M level-0 links, the f32 vector, the id;
 * - its share of upper-level link lists (UPPER_LINKS + M links each): the
 *   level multiplier 1/ln(M) gives a node 1/(M - 1) of them on average;
 * - its id map entry, a u32 slot number like a link, counted twice: the
 *   table is at most 3/4 full, and a rebuild holds the old and the new one;
 * - its item header in the io buffer while it is staged (IO_VECTOR);
 * - quantized (assembly/qshard.ts): the codes and their bias in the record
 *   besides the f32 original in the cold slabs, dim + 8 bytes more at most;
 * - quantized with alwaysRam false (disk mode): the codes and their bias
 *   only, the original goes to the shard's file (the RAM phase before the
 *   spill holds at most FREEZE_AT originals: a fixed cost, not per vector).
 */
export function insertBytesPerVector(M: number, dim: number, quantized = false, alwaysRam = true): number {
  const codes = quantized ? dim + 2 * Float32Array.BYTES_PER_ELEMENT : 0;
  const original = quantized && !alwaysRam ? 0 : dim * Float32Array.BYTES_PER_ELEMENT;
  const record = LAYOUT.NODE_LINKS + 2 * M * LAYOUT.LINK_BYTES + original + codes + LAYOUT.ID_BYTES;
  const upper = Math.ceil((LAYOUT.UPPER_LINKS + M * LAYOUT.LINK_BYTES) / (M - 1));
  const idmap = 2 * LAYOUT.LINK_BYTES;
  return record + upper + idmap + LAYOUT.IO_VECTOR;
}

/** One search result record, RESULT_BYTES long. */
export const RESULT = {
  DIST: LAYOUT.RESULT_DIST, FLAGS: LAYOUT.RESULT_FLAGS, ID_LO: LAYOUT.RESULT_ID_LO, ID_HI: LAYOUT.RESULT_ID_HI,
  PAYLOAD_PTR: LAYOUT.RESULT_PAYLOAD_PTR, PAYLOAD_LEN: LAYOUT.RESULT_PAYLOAD_LEN,
} as const;

/** Arena accounting classes. */
export const ArenaClass = {
  node: LAYOUT.CLASS_NODE, links: LAYOUT.CLASS_LINKS, idmap: LAYOUT.CLASS_IDMAP,
  scratch: LAYOUT.CLASS_SCRATCH, payload: LAYOUT.CLASS_PAYLOAD,
} as const;

/** The order of the f64s `stats(out)` writes (LAYOUT.STAT_COUNT of them). */
export const STAT_FIELDS = [
  'dim', 'metric', 'M', 'efConstruction', 'slots', 'live', 'deleted', 'maxLevel',
  'committedBytes', 'usedBytes', 'freeRunBytes',
  'nodeCommitted', 'nodeUsed', 'linksCommitted', 'linksUsed',
  'idmapCommitted', 'idmapUsed', 'scratchCommitted', 'scratchUsed',
  'liveBytes', 'stride', 'arenaBase', 'idmapBytes', 'scratchBytes', 'ioBytes', 'dirBytes',
  'entry', 'idmapCapacity', 'headerPtr', 'ef', 'payloadBytes', 'payloadCommitted', 'payloadUsed', 'maxPayload', 'indexBytes',
  'quantized', 'quantLearned', 'quantile', 'vectorStride', 'quantBytes',
] as const;
export type RawStats = Record<(typeof STAT_FIELDS)[number], number>;

/** checkIntegrity's problem counters, in order (LAYOUT.PROBLEM_KINDS of them). */
export const INTEGRITY_FIELDS = [
  'linksOutOfRange', 'selfLinks', 'duplicateLinks', 'overfullLists', 'levelViolations',
  'unreachable', 'countMismatches', 'idmapMismatches', 'badEntryPoint', 'treeFaults',
] as const;
export type IntegrityReport = Record<(typeof INTEGRITY_FIELDS)[number], number> & { ok: boolean };

// the record lists above and the table must agree in length too
if (STAT_FIELDS.length !== LAYOUT.STAT_COUNT || INTEGRITY_FIELDS.length !== LAYOUT.PROBLEM_KINDS) {
  throw new Error('host/core/abi.ts: STAT_FIELDS or INTEGRITY_FIELDS does not match LAYOUT');
}
