/**
 * Option validation shared by the single-thread Index and the Store. Each
 * caller keeps its error class: the Index's constructor throws RangeError
 * (the facade convention), a call on a live Store or Index rejects with a
 * QuiverError of code INVALID_ARGUMENT. Messages read the same either way:
 * "options.dim must be an integer from 1 to 65536 (got 0)".
 */
import { availableParallelism } from 'node:os';
import { MAX_DIM, MAX_M, METRIC_NAMES, type MetricName } from './core/abi.js';
import { ErrorCode, QuiverError } from './errors.js';
import { DEFAULT_TUNER, type TunerOptions } from './memory/manager.js';
import { resolvePolicy, type CompactionPolicy } from './memory/policy.js';
import { Registry } from './metrics.js';
import type { StoreOptions } from './store/types.js';

/** Largest k (and ef) a search takes, in the Index and the Store alike. */
export const MAX_K = 100_000;
/** Largest efConstruction. */
export const MAX_EF_CONSTRUCTION = 100_000;

/** How a caller turns a message into its own error. */
export type Fail = (message: string) => Error;
export const rangeError: Fail = (message) => new RangeError(message);
export const invalidArgument: Fail = (message) => new QuiverError(ErrorCode.INVALID_ARGUMENT, message);

export function intIn(value: unknown, name: string, min: number, max: number, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw fail(`${name} must be an integer from ${min} to ${max} (got ${String(value)})`);
  }
  return value;
}

/** A write's `options.wait`: default true (resolve once applied). */
export function waitOption(wait: unknown): boolean {
  if (wait === undefined) return true;
  if (typeof wait !== 'boolean') throw invalidArgument('options.wait must be a boolean');
  return wait;
}

/** The graph's parameters, with defaults, as the Index and a dataset take them. */
export interface GraphParams {
  dim: number;
  metric: MetricName;
  M: number;
  efConstruction: number;
  ef: number;
}

export const GRAPH_DEFAULTS = { metric: 'l2' as MetricName, M: 16, efConstruction: 200, ef: 64 };

export function graphParams(options: Partial<GraphParams>, fail: Fail): GraphParams {
  const dim = intIn(options.dim, 'options.dim', 1, MAX_DIM, fail);
  const metric = options.metric ?? GRAPH_DEFAULTS.metric;
  if (!METRIC_NAMES.includes(metric)) throw fail(`options.metric must be one of ${METRIC_NAMES.join(', ')} (got ${String(metric)})`);
  const M = intIn(options.M ?? GRAPH_DEFAULTS.M, 'options.M', 2, MAX_M, fail);
  const efConstruction = intIn(options.efConstruction ?? GRAPH_DEFAULTS.efConstruction, 'options.efConstruction', 1, MAX_EF_CONSTRUCTION, fail);
  const ef = intIn(options.ef ?? GRAPH_DEFAULTS.ef, 'options.ef', 1, MAX_K, fail);
  return { dim, metric, M, efConstruction, ef };
}

/** The tuner knobs a user may set (the rest come from other Store options). */
export type TunerKnobs = Partial<Omit<TunerOptions, 'maxMemoryBytes' | 'evictionPolicy' | 'compactionIntervalMs'>>;

type Check = (v: number) => boolean;
const TUNER_RULES: Record<keyof Required<TunerKnobs>, [Check, string]> = {
  tunerIntervalMs: [(v) => Number.isInteger(v) && v >= 0 && v <= 2 ** 31 - 1, 'an integer from 0 (off) to 2147483647'],
  pressureIntervalMs: [(v) => Number.isInteger(v) && v >= 1 && v <= 2 ** 31 - 1, 'an integer from 1 to 2147483647'],
  arenaShare: [(v) => v > 0 && v <= 1, 'a number greater than 0 and at most 1'],
  reclaimFloorBytes: [(v) => Number.isFinite(v) && v >= 0, 'a non-negative number'],
  cpuBudget: [(v) => v > 0 && v <= 1, 'a number greater than 0 and at most 1'],
  lowWatermark: [(v) => v > 0 && v < 1, 'a number between 0 and 1'],
};

/** `options.tuner`, checked field by field: TypeError for a wrong type or an unknown field, RangeError for a value out of range. */
export function tunerKnobs(value: unknown): TunerKnobs {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError('options.tuner must be an object');
  const out: TunerKnobs = {};
  for (const [key, v] of Object.entries(value)) {
    const rule = TUNER_RULES[key as keyof TunerKnobs];
    if (rule === undefined) {
      throw new TypeError(`options.tuner.${key} is not a tuner option (known: ${Object.keys(TUNER_RULES).join(', ')})`);
    }
    if (v === undefined) continue;
    const [ok, what] = rule;
    if (typeof v !== 'number') throw new TypeError(`options.tuner.${key} must be ${what} (got ${typeof v})`);
    if (!ok(v)) throw new RangeError(`options.tuner.${key} must be ${what} (got ${String(v)})`);
    out[key as keyof TunerKnobs] = v;
  }
  return out;
}

/** The Store's options, every field checked, defaults filled in. */
export interface StoreSettings {
  threads: number;
  policy: CompactionPolicy;
  tuner: TunerOptions;
  registry: Registry;
  durability: { path: string; fsync: 'always' | 'interval' | 'never'; intervalMs: number; checkpointLogBytes: number } | undefined;
}

export function storeSettings(options: StoreOptions): StoreSettings {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new RangeError(`options.threads must be an integer from 1 to 256 (got ${String(threads)})`);
  }
  const policy = resolvePolicy(options.compaction ?? {});
  const intervalMs = options.compaction?.intervalMs ?? DEFAULT_TUNER.compactionIntervalMs;
  if (!(intervalMs >= 0)) throw new RangeError('options.compaction.intervalMs must be a non-negative number');
  const max = options.maxMemoryBytes;
  if (max !== undefined && !(Number.isFinite(max) && max > 0)) throw new RangeError('options.maxMemoryBytes must be a positive number');
  const eviction = options.evictionPolicy ?? 'reject';
  if (eviction !== 'reject' && eviction !== 'lru') throw new RangeError("options.evictionPolicy must be 'reject' or 'lru'");
  const tuner: TunerOptions = { ...DEFAULT_TUNER, ...tunerKnobs(options.tuner), compactionIntervalMs: intervalMs, evictionPolicy: eviction };
  if (max !== undefined) tuner.maxMemoryBytes = max;
  const registry = options.registry ?? new Registry();
  if (!(registry instanceof Registry)) throw new TypeError('options.registry must be a prom-client Registry');
  if (registry.getSingleMetric('quiver_arena_memory_bytes') !== undefined) {
    throw new TypeError('options.registry already holds quiver metrics: another open Store uses it');
  }
  const durability = durabilitySettings(options);
  if (durability !== undefined && tuner.evictionPolicy === 'lru') {
    throw new TypeError("options.evictionPolicy 'lru' drops whole datasets, which a durable store would delete from disk: use 'reject' with options.path");
  }
  return { threads, policy, tuner, registry, durability };
}

const FSYNC_POLICIES = ['always', 'interval', 'never'] as const;

/** The durable store's options: undefined without `path`. */
function durabilitySettings(options: StoreOptions): StoreSettings['durability'] {
  const { path } = options;
  if (path === undefined) {
    for (const key of ['fsync', 'fsyncIntervalMs', 'checkpointLogBytes'] as const) {
      if (options[key] !== undefined) throw new TypeError(`options.${key} needs options.path (a store without a data directory keeps nothing)`);
    }
    return undefined;
  }
  if (typeof path !== 'string' || path === '') throw new TypeError('options.path must be a non-empty string');
  const fsync = options.fsync ?? 'always';
  if (!FSYNC_POLICIES.includes(fsync)) throw new RangeError(`options.fsync must be one of ${FSYNC_POLICIES.join(', ')} (got ${String(fsync)})`);
  const intervalMs = options.fsyncIntervalMs ?? 1000;
  if (!Number.isInteger(intervalMs) || intervalMs < 1 || intervalMs > 3_600_000) throw new RangeError('options.fsyncIntervalMs must be an integer from 1 to 3600000');
  const checkpointLogBytes = options.checkpointLogBytes ?? 64 * 1024 * 1024;
  if (!Number.isSafeInteger(checkpointLogBytes) || checkpointLogBytes < 1) throw new RangeError('options.checkpointLogBytes must be a positive integer');
  return { path, fsync, intervalMs, checkpointLogBytes };
}
