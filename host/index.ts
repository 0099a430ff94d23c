export { Index, type IndexOptions, type IndexStats, type SearchOptions, type CompactReport } from './index-class.js';
export { QuiverError, ErrorCode, isQuiverError } from './errors.js';
export type { Id, IdList } from './ids.js';
export type { Vector, VectorBatch } from './vectors.js';
export type { SearchHits } from './core/shard.js';
export type { MetricName } from './core/abi.js';
export { collectGarbage } from './core/gc.js';
export { Store, type StoreOptions, type DatasetOptions, type DatasetInfo, type CloseOptions, type CloseReport, type CompactionReport, type StoreStats, type SearchOptions as StoreSearchOptions, type PointRecord } from './store/store.js';
export type { Payload } from './payload.js';
