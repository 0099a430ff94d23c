/**
 * Qdrant's quantization shapes and the Store's: a collection's
 * `quantization_config` (create, info, update) and a search's
 * `params.quantization`. quiver has int8 scalar quantization
 * (docs/quantization.md); product, binary and turbo quantization are 400s
 * that name them. As everywhere in the server, a value of the wrong kind is
 * Qdrant's 400 format error and one of the right kind out of range its 422.
 */
import { DEFAULT_QUANTILE, MAX_OVERSAMPLING, type QuantizationOptions, type QuantSearch } from '../core/quantization.js';
import type { DatasetInfo } from '../store/store.js';
import { formatError, HttpError, notSupported } from './qdrant.js';
import { checkRange } from './validation.js';

type Body = Record<string, unknown>;

const isObject = (v: unknown): v is Body => v !== null && typeof v === 'object' && !Array.isArray(v);
const absent = (v: unknown): v is null | undefined => v === undefined || v === null;

/** Qdrant's other kinds of quantization, by their key. */
const OTHER_KINDS: Record<string, string> = {
  product: 'product quantization',
  binary: 'binary quantization',
  turbo: 'turbo quantization',
};

/** A collection's quantization as Qdrant reports it (ScalarQuantization), or null. */
export interface QdrantScalar {
  scalar: { type: 'int8'; quantile: number; always_ram: boolean };
}

/**
 * A `quantization_config` (top level or inside `vectors`) as the Store's
 * option; undefined when absent or null. `disabled`: the update form, where
 * the string "Disabled" turns quantization off (returned as null).
 */
export function quantizationConfig(value: unknown, where: string, disabled = false): QuantizationOptions | null | undefined {
  if (absent(value)) return undefined;
  if (disabled && value === 'Disabled') return null;
  if (!isObject(value)) throw formatError(`${where}: expected {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}${disabled ? ' or "Disabled"' : ''}`);
  const keys = Object.keys(value);
  for (const key of keys) {
    if (key in OTHER_KINDS) {
      throw new HttpError(400, `${notSupported(`${OTHER_KINDS[key]} (${where}.${key})`).message}; it has int8 scalar quantization: {"scalar": {"type": "int8"}}`);
    }
  }
  if (keys.length !== 1 || keys[0] !== 'scalar') {
    throw formatError(`${where}: expected exactly one of scalar, product, binary, turbo (got ${keys.map((k) => JSON.stringify(k)).join(', ') || 'none'})`);
  }
  const scalar = value.scalar;
  if (!isObject(scalar)) throw formatError(`${where}.scalar: expected {"type": "int8", "quantile": 0.99, "always_ram": true}`);
  if (scalar.type !== 'int8') throw formatError(`${where}.scalar.type: unknown variant ${JSON.stringify(scalar.type) ?? 'undefined'}, expected \`int8\``);
  const out: QuantizationOptions = { scalar: { type: 'int8' } };
  const { quantile, always_ram: alwaysRam, memory } = scalar;
  if (!absent(quantile)) {
    if (typeof quantile !== 'number') throw formatError(`${where}.scalar.quantile: expected a number (got ${JSON.stringify(quantile)})`);
    checkRange('JSON body', `${where}.scalar.quantile`, quantile, 0.5, 1);
    out.scalar.quantile = quantile;
  }
  if (!absent(alwaysRam)) {
    if (typeof alwaysRam !== 'boolean') throw formatError(`${where}.scalar.always_ram: expected a boolean (got ${JSON.stringify(alwaysRam)})`);
    // false: the f32 originals in files of the data directory, only the codes in RAM (a server with a data dir only: collections.ts)
    out.scalar.alwaysRam = alwaysRam;
  }
  if (!absent(memory)) {
    // quiver keeps the codes (and the originals) in RAM: what "pinned" and "cached" ask for
    if (memory === 'cold') throw notSupported(`${where}.scalar.memory: "cold" (quantized vectors always live in RAM)`);
    if (memory !== 'pinned' && memory !== 'cached') throw formatError(`${where}.scalar.memory: unknown variant ${JSON.stringify(memory)}, expected one of \`cold\`, \`cached\`, \`pinned\``);
  }
  return out;
}

/** What a collection's info shows as `quantization_config`. */
export function quantizationInfo(info: Pick<DatasetInfo, 'quantization'>): QdrantScalar | null {
  const q = info.quantization?.scalar;
  return q === undefined ? null : { scalar: { type: q.type, quantile: q.quantile, always_ram: q.alwaysRam } };
}

/** Two quantization options (or none) alike once defaults are filled in? */
export function sameQuantization(a: QuantizationOptions | null | undefined, b: QuantizationOptions | null | undefined): boolean {
  const norm = (q: QuantizationOptions | null | undefined): string =>
    (q === null || q === undefined ? 'none' : `${q.scalar.type}/${q.scalar.quantile ?? DEFAULT_QUANTILE}/${q.scalar.alwaysRam ?? true}`);
  return norm(a) === norm(b);
}

/** A search's `params.quantization` (QuantizationSearchParams) as the Store's; undefined when absent. */
export function quantizationParams(value: unknown, where: string): QuantSearch | undefined {
  if (absent(value)) return undefined;
  if (!isObject(value)) throw formatError(`${where}: expected {"ignore": false, "rescore": true, "oversampling": 2}`);
  const out: QuantSearch = {};
  for (const key of ['ignore', 'rescore'] as const) {
    const v = value[key];
    if (absent(v)) continue;
    if (typeof v !== 'boolean') throw formatError(`${where}.${key}: expected a boolean (got ${JSON.stringify(v)})`);
    out[key] = v;
  }
  const os = value.oversampling;
  if (!absent(os)) {
    if (typeof os !== 'number') throw formatError(`${where}.oversampling: expected a number (got ${JSON.stringify(os)})`);
    checkRange('JSON body', `${where}.oversampling`, os, 1, MAX_OVERSAMPLING);
    out.oversampling = os;
  }
  return out;
}
