/**
 * The compaction driver: the one place that runs a shard's compaction from
 * start to report (repair, renumber and copy in bounded steps, then swap the
 * new memory in, shrink, GC). The single-thread Index drives it to the end
 * at once; a worker drives it with a pause between steps (so searches get
 * in) and a cancel check after each pause.
 *
 * A compaction learns the quantizer again from the survivors (the core's
 * importFinish, from their originals in the cold slabs). A spilled
 * disk-mode shard (alwaysRam: false, host/core/originals.ts) is compacted
 * into a target that is spilled from the start, generation + 1, with its own
 * new file (`disk.originals`), written in the target's slot order as the
 * nodes are copied (read at the old slot, written at the new); then the
 * target learns from the same sample, fed from that file one dimension at a
 * time, and every slot is encoded again from it: the same quantizer and
 * codes as always_ram's (docs/quantization.md). The source's file is only
 * read. A disk-mode shard still in its RAM phase compacts as a RAM shard
 * does, its target keeping `disk.originals` if given, else the source's
 * file.
 */
import { ErrorCode, QuiverError } from '../errors.js';
import { ERR_OUT_OF_MEMORY, H, LAYOUT, METRIC_NAMES, NONE, PAGE_BYTES } from './abi.js';
import { collectGarbage } from './gc.js';
import { createPayloadIndex, payloadIndexes } from './payload-index.js';
import type { DiskOptions } from './originals.js';
import { coreStatusError, Shard } from './shard.js';
import { f32Quantile, statsOf } from './stats.js';

/** What a compaction did: of one shard, or summed over a dataset's shards. */
export interface CompactionReport {
  committedBefore: number;
  committedAfter: number;
  /** committedBefore - committedAfter (never negative). */
  reclaimedBytes: number;
  /** Live vectors, unchanged by the compaction. */
  liveNodes: number;
  removedTombstones: number;
  durationMs: number;
}

/** Most nodes moved per compaction step (the io buffer bounds it too). */
const EXPORT_BATCH = 2048;
/** Slots repaired per step. */
const REPAIR_BATCH = 1024;

/** Bytes of the largest upper link block, for a shard of `M`. */
function maxUpperBlockBytes(M: number): number {
  return LAYOUT.MAX_LEVEL * (LAYOUT.UPPER_LINKS + LAYOUT.LINK_BYTES * M);
}

function check(status: number, what: string): number {
  if (status < 0) throw coreStatusError(status, what);
  return status;
}

type Phase = 'repair' | 'finish-repair' | 'plan' | 'copy' | 'learn' | 'encode' | 'done';

/**
 * A compaction in bounded steps: repair REPAIR_BATCH slots, or copy
 * EXPORT_BATCH nodes, per `step()`. `finish()` swaps the new memory in.
 * Abandoning a compaction (never calling finish) leaves the source valid.
 */
export class Compaction {
  readonly source: Shard;
  #phase: Phase = 'repair';
  #cursor = 0;
  #slots: number;
  #live = 0;
  #target: Shard | undefined;
  #ioBytes = 0;
  #disk: DiskOptions | undefined;
  readonly committedBefore: number;

  constructor(source: Shard, disk?: DiskOptions) {
    this.source = source;
    if (source.spilled && disk?.originals === undefined) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'compacting a disk-mode shard (alwaysRam: false) needs a new originals file ({ originals })');
    }
    if (disk?.originals !== undefined && source.header32(H.DISK) !== 1) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'an originals file was given to compact a shard that is not in disk mode');
    }
    if (source.spilled && disk!.originals === source.originals) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'a compaction writes a new originals file: it cannot be the shard\'s own');
    }
    this.#disk = source.header32(H.DISK) === 1 ? { originals: disk?.originals ?? source.originals! } : undefined;
    this.#slots = source.stats().slots;
    this.committedBefore = source.committedBytes;
  }

  get done(): boolean {
    return this.#phase === 'done';
  }

  /** Runs one bounded step; returns true when the copy is complete. */
  step(): boolean {
    const src = this.source;
    switch (this.#phase) {
      case 'repair': {
        const to = Math.min(this.#cursor + REPAIR_BATCH, this.#slots);
        check(src.core((c) => c.repairRange(this.#cursor, to)), 'repair');
        this.#cursor = to;
        if (to >= this.#slots) this.#phase = 'finish-repair';
        return false;
      }
      case 'finish-repair':
        check(src.core((c) => c.repairFinish()), 'repair');
        this.#phase = 'plan';
        return false;
      case 'plan': {
        const s = src.stats();
        this.#live = check(src.core((c) => c.compactPlan()), 'planning');
        const alwaysRam = this.#disk === undefined;
        this.#target = Shard.create(
          {
            dim: s.dim, metric: METRIC_NAMES[s.metric]!, M: s.M, efConstruction: s.efConstruction, ef: s.ef, build: src.build,
            ...(s.quantized === 0 ? {} : { quantization: { type: 'int8' as const, quantile: f32Quantile(s.quantile), alwaysRam } }),
          },
          this.#live,
          this.#disk === undefined ? undefined : { ...this.#disk, generation: src.spilled ? src.originalsGeneration + 1 : 0 },
        );
        // frozen stays frozen (a spilled target is, from the start)
        if (src.header32(H.QFROZEN) === 1) this.#target.setHeader32(H.QFROZEN, 1);
        // the level generator carries on where the source left off
        // (a u64: both of its words)
        this.#target.setHeader32(H.RNG, src.header32(H.RNG));
        this.#target.setHeader32(H.RNG + Uint32Array.BYTES_PER_ELEMENT, src.header32(H.RNG + Uint32Array.BYTES_PER_ELEMENT));
        // Batches go through the target's io buffer, sized once here, before
        // the import allocates: grown later, it would leave a hole in the
        // prefix. It holds at least one record of the highest level.
        const record = s.stride + s.vectorStride + maxUpperBlockBytes(s.M) + s.maxPayload;
        this.#ioBytes = Math.max(PAGE_BYTES, record);
        for (const shard of [src, this.#target]) {
          check(shard.core((c) => c.ioReserve(this.#ioBytes) === 0 ? ERR_OUT_OF_MEMORY : 0), 'compaction');
        }
        // the payload indexes, empty: the import fills them as it goes
        for (const { field, type } of payloadIndexes(src)) createPayloadIndex(this.#target, field, type);
        this.#cursor = 0;
        this.#phase = 'copy';
        return false;
      }
      case 'copy': {
        const target = this.#target!;
        if (this.#cursor < this.#live) {
          const n = check(src.core((c) => c.exportNodes(this.#cursor, EXPORT_BATCH, this.#ioBytes)), 'export');
          const bytes = src.core((c) => c.ioUsed());
          const dst = target.core((c) => c.ioPtr());
          const from = src.core((c) => c.ioPtr());
          target.bytes(dst, bytes).set(src.bytes(from, bytes));
          check(target.core((c) => c.importNodes(n)), 'import');
          if (src.spilled) this.#copyOriginals(this.#cursor, n);
          this.#cursor += n;
          return false;
        }
        const entry = src.core((c) => c.planEntry());
        const maxLevel = entry === NONE ? -1 : src.header32(H.MAX_LEVEL) | 0;
        check(target.core((c) => c.importFinish(entry, maxLevel)), 'import');
        if (src.spilled) {
          this.#phase = 'learn';
          return false;
        }
        return this.#copied();
      }
      case 'learn':
        this.#learn();
        this.#cursor = 0;
        this.#phase = 'encode';
        return false;
      case 'encode': {
        const target = this.#target!;
        const file = this.#disk!.originals;
        const n = Math.min(Math.floor(this.#ioBytes / file.stride), this.#live - this.#cursor);
        if (n > 0) {
          const io = target.core((c) => c.ioPtr());
          file.read(this.#cursor, target.bytes(io, n * file.stride), n);
          check(target.core((c) => c.encodeRange(this.#cursor, n, io)), 'encode');
          this.#cursor += n;
        }
        return this.#cursor < this.#live ? false : this.#copied();
      }
      case 'done':
        return true;
    }
  }

  #copied(): true {
    this.source.core((c) => c.compactDone());
    this.#target!.core((c) => c.ioTrim());
    this.source.core((c) => c.ioTrim());
    this.#target!.shrinkToFit();
    this.#phase = 'done';
    return true;
  }

  /**
   * A spilled target learns its quantizer from the sample the core picks,
   * the survivors' originals read from the target's new file: one read for
   * the sample, then one dimension's column at a time into the core.
   */
  #learn(): void {
    const target = this.#target!;
    const file = this.#disk!.originals;
    const run = target.core((c) => c.relearnBegin());
    if (run === 0) check(ERR_OUT_OF_MEMORY, 'learning the quantizer');
    const n = target.core((c) => c.relearnCount(run));
    const slots = Uint32Array.from(new Uint32Array(target.memory.buffer, target.core((c) => c.relearnSlots(run)), n));
    const dim = file.dim;
    const sample = new Float32Array(n * dim);
    const bytes = new Uint8Array(sample.buffer);
    // runs of consecutive slots are one read each (a sample of every slot is one)
    for (let i = 0; i < n;) {
      let j = i + 1;
      while (j < n && slots[j] === slots[j - 1]! + 1) j++;
      file.read(slots[i]!, bytes.subarray(i * file.stride, j * file.stride), j - i);
      i = j;
    }
    const column = new Float32Array(n);
    for (let d = 0; d < dim; d++) {
      for (let r = 0; r < n; r++) column[r] = sample[r * dim + d]!;
      new Float32Array(target.memory.buffer, target.core((c) => c.relearnColumn(run)), n).set(column);
      check(target.core((c) => c.relearnDim(run, d)), 'learning the quantizer');
    }
    target.core((c) => c.relearnFinish(run));
  }

  /** The originals of new slots [from, from + n): read at their old slots, written in the new order. */
  #copyOriginals(from: number, n: number): void {
    const src = this.source.originals!;
    const stride = src.stride;
    const order = this.source.header32(H.ORDER);
    const olds = Uint32Array.from(new Uint32Array(this.source.memory.buffer, order + from * 4, n));
    const buf = new Uint8Array(n * stride);
    // runs of consecutive old slots are one read each (survivors keep their order)
    for (let i = 0; i < n;) {
      let j = i + 1;
      while (j < n && olds[j] === olds[j - 1]! + 1) j++;
      src.read(olds[i]!, buf.subarray(i * stride, j * stride), j - i);
      i = j;
    }
    this.#disk!.originals.write(from, buf);
  }

  /** Runs every remaining step. */
  run(): void {
    while (!this.step()) {
      // bounded steps; callers that must yield drive step() themselves
    }
  }

  /** Swaps the compacted memory into the source shard; returns bytes released. */
  finish(): number {
    if (!this.done) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'compaction is not complete');
    const before = this.source.committedBytes;
    this.source.adopt(this.#target!);
    this.#target = undefined;
    return before - this.source.committedBytes;
  }

  /** Drops the partial copy; the source keeps serving as it was. */
  abandon(): void {
    if (this.#target !== undefined) {
      this.#target.dispose();
      this.#target = undefined;
    }
    if (!this.source.disposed) this.source.core((c) => c.compactDone());
  }
}

/**
 * The compaction as a generator: each `yield` is a point between two bounded
 * steps. Returning the generator early (a cancel) or a throw from a step
 * abandons the partial copy and leaves the shard as it was.
 */
function* compaction(shard: Shard, disk?: DiskOptions): Generator<void, CompactionReport, void> {
  const started = performance.now();
  const before = statsOf(shard);
  const job = new Compaction(shard, disk);
  let copied = false;
  try {
    while (!job.step()) yield;
    copied = true;
  } finally {
    if (!copied) job.abandon();
  }
  job.finish();
  collectGarbage();
  const after = shard.committedBytes;
  return {
    committedBefore: before.committedBytes,
    committedAfter: after,
    reclaimedBytes: Math.max(0, before.committedBytes - after),
    liveNodes: before.liveNodes,
    removedTombstones: before.deletedNodes,
    durationMs: performance.now() - started,
  };
}

/** Compacts `shard` now, synchronously (the single-thread Index). A spilled disk-mode shard needs `disk.originals`, a new file. */
export function compactNow(shard: Shard, disk?: DiskOptions): CompactionReport {
  const run = compaction(shard, disk);
  for (;;) {
    const r = run.next();
    if (r.done === true) return r.value;
  }
}

/**
 * Compacts `shard` in steps, awaiting `pause()` between two steps and then
 * asking `cancelled()`. Resolves with the report, or with undefined when it
 * was cancelled (the shard is then unchanged).
 */
export async function compactInSteps(
  shard: Shard, pause: () => Promise<void>, cancelled: () => boolean, disk?: DiskOptions,
): Promise<CompactionReport | undefined> {
  const run = compaction(shard, disk);
  for (;;) {
    const r = run.next();
    if (r.done === true) return r.value;
    await pause();
    if (cancelled()) {
      run.return(undefined as never);
      return undefined;
    }
  }
}
