/**
 * When a shard is worth compacting. Two triggers, as in DESIGN.md:
 * tombstones (deleted / slots over `deletedRatio`, with at least `minSlots`
 * slots), and fragmentation (committed bytes over `fragmentationRatio` times
 * what the live data and fixed structures need). Both also want at least
 * `minReclaimableBytes` to win back: a small shard's fixed overhead would
 * otherwise look like fragmentation forever (Redis active defrag has the
 * same floor).
 */
export interface CompactionPolicy {
  deletedRatio: number;
  minSlots: number;
  fragmentationRatio: number;
  minReclaimableBytes: number;
}

export const DEFAULT_POLICY: CompactionPolicy = {
  deletedRatio: 0.2,
  minSlots: 1000,
  fragmentationRatio: 1.5,
  minReclaimableBytes: 1 << 20,
};

export interface ShardFigures {
  liveNodes: number;
  deletedNodes: number;
  committedBytes: number;
  liveBytes: number;
  fixedOverheadBytes: number;
  reclaimableBytes: number;
}

export type CompactionReason = 'deleted' | 'fragmented';

export function needsCompaction(s: ShardFigures, policy: CompactionPolicy = DEFAULT_POLICY): CompactionReason | undefined {
  const slots = s.liveNodes + s.deletedNodes;
  if (slots >= policy.minSlots && s.deletedNodes / slots > policy.deletedRatio) return 'deleted';
  const needed = s.liveBytes + s.fixedOverheadBytes;
  if (s.reclaimableBytes >= policy.minReclaimableBytes && s.committedBytes > policy.fragmentationRatio * needed) return 'fragmented';
  return undefined;
}

/** Validates and fills a partial policy from user options. */
export function resolvePolicy(options: Partial<CompactionPolicy> = {}): CompactionPolicy {
  const p = { ...DEFAULT_POLICY, ...options };
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new RangeError(`options.compaction.${what}`);
  };
  check(p.deletedRatio > 0 && p.deletedRatio < 1, 'deletedRatio must be between 0 and 1');
  check(Number.isInteger(p.minSlots) && p.minSlots >= 0, 'minSlots must be a non-negative integer');
  check(p.fragmentationRatio > 1, 'fragmentationRatio must be greater than 1');
  check(p.minReclaimableBytes >= 0, 'minReclaimableBytes must be non-negative');
  return p;
}
