/**
 * A shard's read-only walks through the core's flat exports: the live ids,
 * the raw statistics, the integrity report (moved out of shard.ts, which a
 * hook holds to 450 lines; they use only its core() and bytes() internals).
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { ID_WORDS } from '../ids.js';
import { INTEGRITY_FIELDS, LAYOUT, PAGE_BYTES, STAT_FIELDS, type IntegrityReport, type RawStats } from './abi.js';
import type { Shard } from './shard.js';

function io(shard: Shard, bytes: number): number {
  const ptr = shard.core((c) => c.ioReserve(bytes));
  if (ptr === 0) throw new QuiverError(ErrorCode.MEMORY_LIMIT, 'out of WASM memory (the 4 GiB limit of one shard)');
  return ptr;
}

/** Every live id, packed (ids.ts), in slot order. */
export function listIdsOf(shard: Shard): Uint32Array {
  const live = rawStatsOf(shard).live;
  const out = new Uint32Array(live * ID_WORDS);
  let from = 0;
  let n = 0;
  while (n < live) {
    const at = io(shard, PAGE_BYTES);
    const got = shard.core((c) => c.listIds(from, Math.floor(PAGE_BYTES / LAYOUT.LISTED_BYTES), at));
    if (got <= 0) break;
    const bytes = shard.bytes(at, got * LAYOUT.LISTED_BYTES);
    out.set(new Uint32Array(bytes.buffer, bytes.byteOffset, got * ID_WORDS), n * ID_WORDS);
    n += got;
    from = shard.core((c) => c.ioUsed());
  }
  return out;
}

export function rawStatsOf(shard: Shard): RawStats {
  const at = io(shard, LAYOUT.STAT_COUNT * Float64Array.BYTES_PER_ELEMENT);
  shard.core((c) => c.stats(at));
  const bytes = shard.bytes(at, LAYOUT.STAT_COUNT * Float64Array.BYTES_PER_ELEMENT);
  const f64 = new Float64Array(bytes.buffer, bytes.byteOffset, LAYOUT.STAT_COUNT);
  const out = {} as RawStats;
  STAT_FIELDS.forEach((name, i) => {
    out[name] = f64[i]!;
  });
  return out;
}

export function integrityOf(shard: Shard): IntegrityReport {
  const at = io(shard, LAYOUT.PROBLEM_KINDS * Uint32Array.BYTES_PER_ELEMENT);
  const total = shard.core((c) => c.checkIntegrity(at));
  if (total < 0) throw new QuiverError(ErrorCode.MEMORY_LIMIT, 'out of WASM memory for the integrity walk');
  const bytes = shard.bytes(at, LAYOUT.PROBLEM_KINDS * Uint32Array.BYTES_PER_ELEMENT);
  const u32 = new Uint32Array(bytes.buffer, bytes.byteOffset, LAYOUT.PROBLEM_KINDS);
  const out = { ok: total === 0 } as IntegrityReport;
  INTEGRITY_FIELDS.forEach((name, i) => {
    out[name] = u32[i]!;
  });
  return out;
}
