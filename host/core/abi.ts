/**
 * The WASM core's ABI, as the host sees it. Mirrors assembly/index.ts and
 * assembly/layout.ts: keep the two in step (test/abi.test.ts checks the
 * exports exist).
 */
export interface CoreExports {
  memory: WebAssembly.Memory;
  init(dim: number, metric: number, m: number, efConstruction: number, seed: bigint, capacity: number): number;
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
  search(k: number, ef: number, out: number): number;
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
}

export const OK = 0;
export const ERR_INVALID = -1;
export const ERR_NOT_FOUND = -2;
export const ERR_OUT_OF_MEMORY = -3;
export const ERR_CORRUPT = -4;

export const NONE = 0xffffffff;
export const PAGE_BYTES = 65536;
export const MAX_PAGES = 65536;
export const HEADER_PTR = 16384;
export const HEADER_BYTES = 1024;
export const MAGIC = 0x31525651;
export const LAYOUT_VERSION = 2;
export const MAX_DIM = 65536;
export const MAX_M = 127;

/** Header field offsets the host reads directly (assembly/layout.ts). */
export const H = {
  MAGIC: 0,
  VERSION: 4,
  DIM: 8,
  MAX_LEVEL: 48,
  RNG: 56,
  ARENA_TOP: 84,
  IMAGE_BYTES: 92,
} as const;

export const Metric = { l2: 0, ip: 1, cosine: 2 } as const;
export type MetricName = keyof typeof Metric;
export const METRIC_NAMES: readonly MetricName[] = ['l2', 'ip', 'cosine'];

/** io buffer layout for one staged item. */
export const IO = { ID_LO: 0, ID_HI: 8, KIND: 16, PAYLOAD_LEN: 20, VECTOR: 24 } as const;
export const FLAG_UUID = 1 << 14;
export const RESULT_BYTES = 32;
/** Largest payload one vector can carry (assembly/layout.ts MAX_PAYLOAD_BYTES). */
export const MAX_PAYLOAD_BYTES = 16 << 20;

/** Arena accounting classes. */
export const ArenaClass = { node: 0, links: 1, idmap: 2, scratch: 3, payload: 4 } as const;

/** The order of the f64s `stats(out)` writes. */
export const STAT_FIELDS = [
  'dim', 'metric', 'M', 'efConstruction', 'slots', 'live', 'deleted', 'maxLevel',
  'committedBytes', 'usedBytes', 'freeRunBytes',
  'nodeCommitted', 'nodeUsed', 'linksCommitted', 'linksUsed',
  'idmapCommitted', 'idmapUsed', 'scratchCommitted', 'scratchUsed',
  'liveBytes', 'stride', 'arenaBase', 'idmapBytes', 'scratchBytes', 'ioBytes', 'dirBytes',
  'entry', 'idmapCapacity', 'headerPtr', 'ef', 'payloadBytes', 'payloadCommitted', 'payloadUsed', 'maxPayload',
] as const;
export type RawStats = Record<(typeof STAT_FIELDS)[number], number>;

/** checkIntegrity's problem counters, in order. */
export const INTEGRITY_FIELDS = [
  'linksOutOfRange', 'selfLinks', 'duplicateLinks', 'overfullLists', 'levelViolations',
  'unreachable', 'countMismatches', 'idmapMismatches', 'badEntryPoint', 'treeFaults',
] as const;
export type IntegrityReport = Record<(typeof INTEGRITY_FIELDS)[number], number> & { ok: boolean };
