/**
 * The host side of filtered search: the planner's thresholds, the path
 * names, and unwrapping a compiled filter (assembly/fsearch.ts runs it).
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { isCompiledFilter, type CompiledFilter } from '../filter/compile.js';
import { ERR_INVALID, LAYOUT } from './abi.js';
import { coreStatusError } from './status.js';

/** Which way a filtered search went (assembly/fsearch.ts). */
export type FilterPath = 'graph' | 'exact' | 'graph+exact';
export const FILTER_PATHS: Record<number, FilterPath> = {
  [LAYOUT.PATH_GRAPH]: 'graph', [LAYOUT.PATH_EXACT]: 'exact', [LAYOUT.PATH_GRAPH_EXACT]: 'graph+exact',
};

/**
 * A filtered search scores the matching set exactly when the planner's
 * estimate of matching points is below max(exactBelow, exactFraction x live);
 * otherwise it walks the graph (assembly/fsearch.ts).
 *
 * Defaults: the exact scan costs one filter evaluation per live point plus
 * one distance per matching point, and is exact; the two-hop walk costs
 * about ef / selectivity evaluations (each bridge examines its M0
 * neighbours) and loses recall as the matching set thins. Under ~1,000
 * matching points, or 2% of the shard, the scan's distances are few and the
 * walk's bridges are many, so the scan wins on both counts; a 256-slot
 * sample cannot tell 1% from 2% reliably, and an overestimate only costs a
 * walk that falls back to the scan ('graph+exact'). The benchmark
 * (bench:filter) is where these are to be tuned.
 */
export interface FilterPlanner {
  exactBelow: number;
  exactFraction: number;
}
export const DEFAULT_FILTER_PLANNER: Readonly<FilterPlanner> = { exactBelow: 1000, exactFraction: 0.02 };

export function programOf(filter: CompiledFilter): Uint8Array {
  if (!isCompiledFilter(filter)) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'a filter must be what compile() returned');
  return filter.bytes;
}

/** Validates planner thresholds (RangeError, as option validation does). */
export function checkPlanner(p: FilterPlanner): FilterPlanner {
  if (!Number.isInteger(p.exactBelow) || p.exactBelow < 0 || p.exactBelow > 0xffffffff) {
    throw new RangeError('options.exactBelow must be a non-negative integer');
  }
  if (typeof p.exactFraction !== 'number' || !(p.exactFraction >= 0 && p.exactFraction <= 1)) {
    throw new RangeError('options.exactFraction must be a number in [0, 1]');
  }
  return { exactBelow: p.exactBelow, exactFraction: p.exactFraction };
}

/** A filter export's status: itself when not negative, else the coded error. */
export function filterStatus(status: number, what: string): number {
  if (status === ERR_INVALID) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `${what}: the filter program is malformed`);
  if (status < 0) throw coreStatusError(status, what);
  return status;
}
