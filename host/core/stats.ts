import { METRIC_NAMES, type MetricName } from './abi.js';
import type { Shard } from './shard.js';

/** One index's (one shard's) figures, as Index.stats() and Store.stats() report them. */
export interface IndexStats {
  dim: number;
  metric: MetricName;
  M: number;
  efConstruction: number;
  ef: number;
  /** Vectors that can be found. */
  liveNodes: number;
  /** Tombstoned vectors still in the graph until compaction. */
  deletedNodes: number;
  /** Linear memory size: what the process has committed for this index. */
  committedBytes: number;
  /** End of the used prefix: what an image holds. */
  usedBytes: number;
  /** Bytes of live node records, their link blocks and the whole blocks their payloads occupy. */
  liveBytes: number;
  /** Id map, payload indexes, search scratch, io buffer, node and vector directories, quantizer, header and static data. */
  fixedOverheadBytes: number;
  /** committed - live - fixed overhead: what a compaction can give back. */
  reclaimableBytes: number;
  /** Bytes of the payload indexes (host/core/payload-index.ts), part of the fixed overhead. */
  payloadIndexBytes: number;
  /** int8 quantization (assembly/qshard.ts): the quantile, and how many live vectors the quantizer was last learned from (0: not yet; searches walk the f32 originals). Absent when not quantized. */
  quantization?: { type: 'int8'; quantile: number; learnedFrom: number };
  /** Per arena class: bytes committed to the class and bytes handed out (idmap: the id map and the payload indexes). */
  arena: Record<'node' | 'links' | 'idmap' | 'scratch', { committed: number; used: number }>;
  /** A durable store's shard: its log and checkpoints (absent in memory). */
  log?: LogFigures;
}

/** A durable shard's write-ahead log and checkpoints. */
export interface LogFigures {
  /** The last LSN applied to the shard, and the LSN of its current image. */
  appliedLsn: number;
  imageLsn: number;
  /** Log bytes past the current image (a checkpoint is due past checkpointLogBytes). */
  bytesSinceImage: number;
  /** Since the shard was opened: fdatasyncs of log segments, group writes, records, bytes, checkpoints. */
  fsyncs: number;
  writes: number;
  records: number;
  bytes: number;
  checkpoints: number;
}

/** The core's raw counters of a shard, as the host reports them. */
export function statsOf(shard: Shard): IndexStats {
  const s = shard.stats();
  const fixed = s.arenaBase + s.idmapBytes + s.indexBytes + s.scratchBytes + s.ioBytes + s.dirBytes + s.quantBytes;
  return {
    dim: s.dim,
    metric: METRIC_NAMES[s.metric]!,
    M: s.M,
    efConstruction: s.efConstruction,
    ef: s.ef,
    liveNodes: s.live,
    deletedNodes: s.deleted,
    committedBytes: s.committedBytes,
    usedBytes: s.usedBytes,
    liveBytes: s.liveBytes,
    fixedOverheadBytes: fixed,
    payloadIndexBytes: s.indexBytes,
    ...(s.quantized === 0 ? {} : { quantization: { type: 'int8' as const, quantile: f32Quantile(s.quantile), learnedFrom: s.quantLearned } }),
    reclaimableBytes: Math.max(0, s.committedBytes - s.liveBytes - fixed),
    arena: {
      node: { committed: s.nodeCommitted, used: s.nodeUsed },
      links: { committed: s.linksCommitted, used: s.linksUsed },
      idmap: { committed: s.idmapCommitted, used: s.idmapUsed },
      scratch: { committed: s.scratchCommitted, used: s.scratchUsed },
    },
  };
}

/** The quantile as given: the core keeps an f32 (0.99 reads back as 0.9900000095). */
export function f32Quantile(q: number): number {
  return Number(q.toPrecision(7));
}
