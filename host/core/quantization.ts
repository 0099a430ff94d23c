/**
 * int8 scalar quantization as the core takes it (assembly/qshard.ts): a
 * shard's quantizer config, and a search's quantization params turned into
 * the core's `rescore` argument. docs/quantization.md explains the codes.
 */

/** A shard's quantization: int8 codes, the quantile the quantizer keeps, where the originals live. */
export interface ShardQuantization {
  type: 'int8';
  quantile: number;
  /** false: disk mode, the originals go to the shard's OriginalsFile once it spills (host/core/originals.ts). Default true. */
  alwaysRam?: boolean;
}

/** A search's quantization params (Qdrant's `params.quantization`, camelCase). */
export interface QuantSearch {
  /** Walk the f32 originals, as an unquantized shard does. */
  ignore?: boolean;
  /** Re-rank the best candidates with exact f32 distances (default true). */
  rescore?: boolean;
  /** Re-rank ceil(k * oversampling) candidates, at least k (default DEFAULT_OVERSAMPLING). */
  oversampling?: number;
}

export const QUANT_CODE = { none: 0, int8: 1 } as const;
export const DEFAULT_QUANTILE = 0.99;
export const DEFAULT_OVERSAMPLING = 2;
/** The core's `rescore`: -1 walks the originals, 0 returns code distances, n > 0 re-ranks n. */
export const RESCORE_IGNORE = -1;

/** The core's init arguments for `q`: the QUANT_* code, the quantile and the disk flag. */
export function quantInitArgs(q: ShardQuantization | undefined): [quant: number, quantile: number, disk: number] {
  return q === undefined ? [QUANT_CODE.none, 0, 0] : [QUANT_CODE[q.type], q.quantile, q.alwaysRam === false ? 1 : 0];
}

/** The core's `rescore` argument for a search of k under `params` (already validated). */
export function rescoreArg(k: number, params: QuantSearch | undefined): number {
  if (params?.ignore === true) return RESCORE_IGNORE;
  if (params?.rescore === false) return 0;
  return Math.max(k, Math.ceil(k * (params?.oversampling ?? DEFAULT_OVERSAMPLING)));
}

/** The `quantization` option of an Index or a dataset (Qdrant's `quantization_config`, camelCase). */
export interface QuantizationOptions {
  scalar: {
    type: 'int8';
    /** The share of each dimension's values the codes span, 0.5..1 (default 0.99): the rest clip. */
    quantile?: number;
    /** Keep the f32 originals in RAM too (default true). false needs a durable store. */
    alwaysRam?: boolean;
  };
}

/** A checked `quantization` option: the shard's config and where the originals live. */
export interface QuantizationConfig extends ShardQuantization {
  alwaysRam: boolean;
}

type Fail = (message: string) => Error;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function onlyKeys(value: Record<string, unknown>, keys: readonly string[], name: string, fail: Fail): void {
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw fail(`${name}.${key} is not an option (${name} takes ${keys.join(', ')})`);
  }
}

/** `options.quantization` checked; undefined when absent (f32 records). */
export function quantizationOption(value: unknown, name: string, fail: Fail): QuantizationConfig | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw fail(`${name} must be an object like { scalar: { type: 'int8' } }`);
  onlyKeys(value, ['scalar'], name, fail);
  const scalar = value.scalar;
  if (!isObject(scalar)) throw fail(`${name}.scalar must be an object like { type: 'int8' }`);
  onlyKeys(scalar, ['type', 'quantile', 'alwaysRam'], `${name}.scalar`, fail);
  if (scalar.type !== 'int8') throw fail(`${name}.scalar.type must be 'int8' (got ${JSON.stringify(scalar.type)})`);
  const quantile = scalar.quantile ?? DEFAULT_QUANTILE;
  if (typeof quantile !== 'number' || !(quantile >= 0.5 && quantile <= 1)) {
    throw fail(`${name}.scalar.quantile must be a number from 0.5 to 1 (got ${String(scalar.quantile)})`);
  }
  const alwaysRam = scalar.alwaysRam ?? true;
  if (typeof alwaysRam !== 'boolean') throw fail(`${name}.scalar.alwaysRam must be a boolean`);
  return { type: 'int8', quantile, alwaysRam };
}

/** The largest oversampling a search takes (Qdrant has no bound; the beam is capped by MAX_K anyway). */
export const MAX_OVERSAMPLING = 1000;

/** A search's `options.quantization` checked; undefined when absent. */
export function quantSearchOption(value: unknown, name: string, fail: Fail): QuantSearch | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw fail(`${name} must be an object like { rescore: true, oversampling: 2 }`);
  onlyKeys(value, ['ignore', 'rescore', 'oversampling'], name, fail);
  const out: QuantSearch = {};
  for (const key of ['ignore', 'rescore'] as const) {
    const v = value[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'boolean') throw fail(`${name}.${key} must be a boolean`);
    out[key] = v;
  }
  const os = value.oversampling;
  if (os !== undefined && os !== null) {
    if (typeof os !== 'number' || !(os >= 1 && os <= MAX_OVERSAMPLING)) {
      throw fail(`${name}.oversampling must be a number from 1 to ${MAX_OVERSAMPLING} (got ${String(os)})`);
    }
    out.oversampling = os;
  }
  return out;
}
