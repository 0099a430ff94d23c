/**
 * A dataset's int8 quantization (docs/quantization.md) as the Store keeps
 * it: checked on create, kept with the dataset's other parameters in the
 * catalog file and in snapshots (in the library's shape, every field
 * filled in), reported by datasetInfo, and handed to every shard's create,
 * so that a shard rebuilt from its log alone (no image yet) is quantized as
 * the one it replaces was. A dataset without the field is not quantized.
 * `alwaysRam: false` (the f32 originals in files of the shard directories,
 * only the codes in RAM: originals-files.ts) needs a durable store.
 */
import type { ShardParams } from '../core/shard.js';
import { quantizationOption, type QuantizationConfig, type QuantizationOptions } from '../core/quantization.js';
import { graphParams, invalidArgument, type Fail, type GraphParams } from '../options.js';

/** A dataset's parameters: the graph's, and its quantization (absent: f32 records). */
export interface DatasetParams extends GraphParams {
  quantization?: QuantizationConfig;
}

/** What the catalog file, a snapshot and datasetInfo hold: the library's option shape, every field set. */
export type QuantizationInfo = QuantizationOptions & { scalar: Required<QuantizationOptions['scalar']> };

/** What a dataset's parameters are read from: options, a catalog entry, a snapshot entry. */
type ParamSource = Partial<GraphParams> & { quantization?: unknown };

/** A createDataset's options checked (`durable`: the store has a data directory): INVALID_ARGUMENT naming the field at fault. */
export function datasetParams(options: ParamSource, durable: boolean): DatasetParams {
  const params = graphParams(options, invalidArgument);
  const q = quantizationOption(options.quantization, 'options.quantization', invalidArgument);
  if (q?.alwaysRam === false && !durable) {
    throw invalidArgument(
      'options.quantization.scalar.alwaysRam: false keeps the f32 originals in files of the data directory, and this store has none: open it with a path (Store.open({ path })) or leave alwaysRam out',
    );
  }
  return q === undefined ? params : { ...params, quantization: q };
}

/** A dataset's parameters as a catalog or snapshot entry keeps them; `fail` says which file is at fault. */
export function storedParams(entry: ParamSource, fail: Fail): DatasetParams {
  const params = graphParams(entry, fail);
  const q = quantizationOption(entry.quantization, 'quantization', fail);
  return q === undefined ? params : { ...params, quantization: q };
}

/** The quantization as the catalog, a snapshot and datasetInfo give it; undefined when there is none. */
export function quantizationInfo(q: QuantizationConfig | undefined): QuantizationInfo | undefined {
  return q === undefined ? undefined : { scalar: { type: q.type, quantile: q.quantile, alwaysRam: q.alwaysRam } };
}

/** The `quantization` field of an entry or info object: present only when the dataset is quantized. */
export function quantizationField(q: QuantizationConfig | undefined): { quantization?: QuantizationInfo } {
  return q === undefined ? {} : { quantization: quantizationInfo(q)! };
}

/** What a shard of the dataset is created with (its seed: the dataset's id). */
export function shardParams(ds: DatasetParams, seed: bigint): ShardParams {
  const { dim, metric, M, efConstruction, ef, quantization: q } = ds;
  const quantization = q === undefined ? undefined : { type: q.type, quantile: q.quantile, ...(q.alwaysRam ? {} : { alwaysRam: false }) };
  return { dim, metric, M, efConstruction, ef, seed, ...(quantization === undefined ? {} : { quantization }) };
}
