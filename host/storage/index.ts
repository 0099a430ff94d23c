/**
 * Durability for one shard directory (DESIGN.md "Durability"): the write-ahead
 * log, checkpoint images, the manifest naming them, and the directory lock.
 * Knows no HTTP, no store, no core: the host streams a shard's bytes in.
 *
 *   <data dir>/LOCK                      lock.ts
 *   <shard dir>/MANIFEST, MANIFEST.prev  manifest.ts
 *   <shard dir>/image-<seq>.qvi          checkpoint.ts
 *   <shard dir>/wal/<first lsn>.wal      wal.ts, wal-dir.ts, segment.ts, record.ts
 *
 * Not exported from the package yet. SimFiles (sim-files.ts) is for tests.
 */
export { crc32c } from './crc32c.js';
export { nodeFiles, type Files, type FileHandle, type OpenFlags } from './files.js';
export { Op, type LogRecord, MAX_BODY } from './record.js';
export { Wal, type WalOptions, type WalStats, type WalRecovery, type FsyncPolicy, DEFAULT_SEGMENT_BYTES, DEFAULT_INTERVAL_MS, MAX_GROUP_BYTES } from './wal.js';
export {
  encodeUpsert, decodeUpsert, encodeDelete, decodeDelete, encodePartial, decodePartial, encodePayloadUpdate, decodePayloadUpdate, encodeIndex, decodeIndex,
  type UpsertBody, type DeleteBody, type PartialBody, type PayloadUpdateBody, type IndexBody,
} from './bodies.js';
export { replaceFile, readRange, readWhole, errorCode, ioError, corrupt } from './files.js';
export { readManifest, writeManifest, type Manifest, type ImageRef } from './manifest.js';
export { writeCheckpoint, loadCheckpoint, loadCheckpointInto, readImageInto, readImage, type CheckpointOptions, type CheckpointResult, type LoadedImage } from './checkpoint.js';
export { DirLock } from './lock.js';
