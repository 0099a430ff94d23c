/**
 * The host side of filtered search: the planner's thresholds, the path
 * names, and unwrapping a compiled filter (assembly/fsearch.ts runs it).
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { isCompiledFilter, type CompiledFilter } from '../filter/compile.js';
import { ERR_INVALID, LAYOUT } from './abi.js';
import { coreStatusError } from './status.js';

/** Which way a filtered search went (assembly/fsearch.ts). */
export type FilterPath = 'graph' | 'exact' | 'graph+exact' | 'index';
export const FILTER_PATHS: Record<number, FilterPath> = {
  [LAYOUT.PATH_GRAPH]: 'graph', [LAYOUT.PATH_EXACT]: 'exact', [LAYOUT.PATH_GRAPH_EXACT]: 'graph+exact',
  [LAYOUT.PATH_INDEX]: 'index',
};

/**
 * When a payload index answers one of the filter's conditions (the filter
 * itself, or a member of its top-level `must`) with fewer candidates than
 * max(exactBelow, exactFraction x live, indexFraction x live), the search
 * scores those candidates exactly ('index'). Otherwise it scores the
 * matching set exactly when the planner's estimate of matching points (a
 * sample, bounded by an index's candidates) is below max(exactBelow, exactFraction x live);
 * otherwise it walks the graph (assembly/fsearch.ts): the plain walk (every
 * neighbour enters the beam, only matches enter the results) when the
 * estimated selectivity is at least twoHopBelow, else the two-hop walk that
 * expands through non-matching neighbours. docs/filtering.md ("Planner")
 * gives the measurements behind the defaults.
 */
export interface FilterPlanner {
  exactBelow: number;
  exactFraction: number;
  twoHopBelow: number;
  indexFraction: number;
}
export const DEFAULT_FILTER_PLANNER: Readonly<FilterPlanner> = { exactBelow: 1000, exactFraction: 0.02, twoHopBelow: 0.1, indexFraction: 0.05 };

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
  if (typeof p.twoHopBelow !== 'number' || !(p.twoHopBelow >= 0 && p.twoHopBelow <= 1)) {
    throw new RangeError('options.twoHopBelow must be a number in [0, 1]');
  }
  if (typeof p.indexFraction !== 'number' || !(p.indexFraction >= 0 && p.indexFraction <= 1)) {
    throw new RangeError('options.indexFraction must be a number in [0, 1]');
  }
  return { exactBelow: p.exactBelow, exactFraction: p.exactFraction, twoHopBelow: p.twoHopBelow, indexFraction: p.indexFraction };
}

/** A filter export's status: itself when not negative, else the coded error. */
export function filterStatus(status: number, what: string): number {
  if (status === ERR_INVALID) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `${what}: the filter program is malformed`);
  if (status < 0) throw coreStatusError(status, what);
  return status;
}
