/**
 * A cluster node's writes as log records (the local log's op codes and
 * bodies, storage/bodies.ts), each for one shard: checked as the Store
 * checks them before anything is written, then appended by each shard's
 * leader (cluster-node.ts) and applied by every copy with apply.ts.
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { compileFilter, type CompiledFilter, type Filter } from '../filter/filter.js';
import { ID_WORDS, packIds, type IdList } from '../ids.js';
import { encodePayloads, type Payload } from '../payload.js';
import { encodeDelete, encodeIndex, encodePayloadUpdate, encodeUpsert, Op } from '../storage/index.js';
import { checkPayloadIndexType, type PayloadIndexType } from '../core/payload-index.js';
import { quantizationOption, type ShardQuantization } from '../core/quantization.js';
import { checkField } from './payload-indexes.js';
import { checkUpdate } from './payload-updates.js';
import { pick, route } from './scatter.js';
import type { PayloadUpdate, PointSelection } from './types.js';

/**
 * A dataset's int8 quantization as its shards are created with it (the
 * catalog keeps it with the other parameters, so every copy and rebuild
 * is quantized alike). With alwaysRam false each copy keeps its originals
 * in a file of its node (cluster-rebuild.ts) and each image carries them.
 */
export function clusterQuantization(value: unknown): { quantization?: ShardQuantization } {
  const q = quantizationOption(value, 'quantization', (m) => new QuiverError(ErrorCode.INVALID_ARGUMENT, m));
  if (q === undefined) return {};
  return { quantization: { type: q.type, quantile: q.quantile, ...(q.alwaysRam ? {} : { alwaysRam: false as const }) } };
}

/** One record for one shard's log. */
export interface ShardRecord {
  shard: number;
  op: number;
  body: Uint8Array;
}

export interface WriteDataset {
  shards: number;
  params: { dim: number };
}

/** Points per upsert record, well under NATS's 1 MiB message limit at d = 128 (a shard's batch larger than this is several records, in order). */
const WRITE_BATCH = 1000;

export function upsertRecords(d: WriteDataset, ids: IdList, vectors: Float32Array, payloads?: readonly Payload[]): ShardRecord[] {
  const packed = packIds(ids, true);
  const n = packed.length / ID_WORDS;
  const dim = d.params.dim;
  if (vectors.length !== n * dim) throw new QuiverError(ErrorCode.DIMENSION, `${vectors.length} values for ${n} vectors of dim ${dim}`);
  const encoded = encodePayloads(payloads, n);
  const out: ShardRecord[] = [];
  for (const [shard, rows] of route(d.shards, packed)) {
    for (let at = 0; at < rows.length; at += WRITE_BATCH) {
      const part = rows.slice(at, at + WRITE_BATCH);
      const v = new Float32Array(part.length * dim);
      part.forEach((r, i) => v.set(vectors.subarray(r * dim, (r + 1) * dim), i * dim));
      const body = encodeUpsert({ count: part.length, dim, ids: pick(packed, part, (l) => new Uint32Array(l)), vectors: v, payloads: part.map((r) => encoded?.[r] ?? null) });
      out.push({ shard, op: Op.UPSERT, body });
    }
  }
  return out;
}

export function deleteRecords(d: WriteDataset, ids: IdList): ShardRecord[] {
  const packed = packIds(ids, false);
  return [...route(d.shards, packed)].map(([shard, rows]) => ({ shard, op: Op.DELETE, body: encodeDelete({ count: rows.length, ids: pick(packed, rows, (l) => new Uint32Array(l)) }) }));
}

const toEveryShard = (d: WriteDataset, op: number, body: Uint8Array): ShardRecord[] => Array.from({ length: d.shards }, (_, shard) => ({ shard, op, body }));

export function deleteWhereRecords(d: WriteDataset, filter: Filter | CompiledFilter): ShardRecord[] {
  return toEveryShard(d, Op.DELETE_WHERE, compileFilter(filter, 'filter').bytes);
}

/** A payload update: by ids to their shards (each shard refuses it whole when one of its ids is absent), by filter to every shard. */
export function payloadRecords(d: WriteDataset, select: PointSelection, update: PayloadUpdate): ShardRecord[] {
  const u = checkUpdate(update);
  if (select === null || typeof select !== 'object' || (('ids' in select) === ('filter' in select))) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'select must be { ids } or { filter }');
  }
  if ('filter' in select) return toEveryShard(d, u.op, encodePayloadUpdate({ by: 'filter', program: compileFilter(select.filter, 'select.filter').bytes, arg: u.arg }));
  const packed = packIds(select.ids, false);
  return [...route(d.shards, packed)].map(([shard, rows]) => {
    const ids = pick(packed, rows, (l) => new Uint32Array(l));
    return { shard, op: u.op, body: encodePayloadUpdate({ by: 'ids', count: rows.length, ids, arg: u.arg }) };
  });
}

/** An index created (with its type) or dropped on every shard. */
export function indexRecords(d: WriteDataset, field: unknown, type?: PayloadIndexType): ShardRecord[] {
  const f = checkField(field);
  if (type === undefined) return toEveryShard(d, Op.DELETE_INDEX, encodeIndex({ field: f }));
  return toEveryShard(d, Op.CREATE_INDEX, encodeIndex({ field: f, type: checkPayloadIndexType(type) }));
}
