// One durable shard (host/store/shard-log.ts) over SimFiles, whose crash()
// drops whatever was not synced (a lost page cache, which kill -9 keeps):
// the log comes first, applies follow in log order, an insert cut short is
// replayed to exactly its applied rows, and a checkpoint is the image from
// linear memory. Every check compares the recovered shard with a Map model.
import t from 'tap';
import fc from 'fast-check';
import { Shard, type ShardParams } from '../host/core/shard.js';
import { QuiverError } from '../host/errors.js';
import { packIds } from '../host/ids.js';
import { SimFiles, type SimOp } from '../host/storage/sim-files.js';
import type { FsyncPolicy } from '../host/storage/wal.js';
import { applyDelete, applyUpsert } from '../host/store/apply.js';
import { ShardLog, type Durability } from '../host/store/shard-log.js';
import { rng } from './helpers/data.js';
import { codeOf } from './helpers/outcome.js';

const DIM = 12;
const PARAMS: ShardParams = { dim: DIM, metric: 'l2', M: 8, efConstruction: 32, ef: 32, build: 'debug' };
const DIR = '/data/datasets/1/shard-0';
/** Ids are drawn from [0, ID_SPACE); every one not in the model must be absent. */
const ID_SPACE = 400;

interface Row {
  vector: Float32Array;
  payload: Uint8Array | undefined;
}

/** A vector and (for two ids in three) a payload that depend on the id and the write that put it there. */
function rowOf(id: number, gen: number): Row {
  const r = rng(id * 7919 + gen * 104729 + 1);
  const vector = new Float32Array(DIM);
  for (let j = 0; j < DIM; j++) vector[j] = r() * 2 - 1;
  const payload = (id + gen) % 3 === 0 ? undefined : new TextEncoder().encode(JSON.stringify({ id, gen, tag: 'x'.repeat((id * 13 + gen) % 40) }));
  return { vector, payload };
}

/**
 * The shard, its log and the model of what was acknowledged. Writes do what
 * the worker does (host/store/worker.ts): log first, apply only once the
 * append resolved, in log order, then mark the LSN applied; an insert cut
 * short logs a PARTIAL record before it is acknowledged.
 */
class Harness {
  readonly model = new Map<number, Row>();
  gen = 0;
  log!: ShardLog;
  shard!: Shard;
  lastRecovery: { replayed: number; imageLsn: number } = { replayed: 0, imageLsn: 0 };

  private constructor(readonly sim: SimFiles, readonly d: Durability) {}

  static async open(policy: FsyncPolicy = 'always', options: { intervalMs?: number; checkpointLogBytes?: number; sim?: SimFiles } = {}): Promise<Harness> {
    const sim = options.sim ?? new SimFiles();
    const h = new Harness(sim, {
      dir: DIR, fsync: policy, intervalMs: options.intervalMs ?? 1000, checkpointLogBytes: options.checkpointLogBytes ?? 64 * 1024 * 1024, files: sim,
    });
    await h.recover();
    return h;
  }

  async recover(): Promise<void> {
    const r = await ShardLog.recover(this.d, PARAMS);
    this.log = r.log;
    this.shard = r.shard;
    this.lastRecovery = { replayed: r.replayed, imageLsn: r.imageLsn };
  }

  /** The batch as the worker receives it. */
  batch(ids: number[]): { packed: Uint32Array; vectors: Float32Array; payloads: (Uint8Array | undefined)[]; rows: Row[] } {
    const gen = ++this.gen;
    const rows = ids.map((id) => rowOf(id, gen));
    const vectors = new Float32Array(ids.length * DIM);
    rows.forEach((r, i) => vectors.set(r.vector, i * DIM));
    return { packed: packIds(ids, true), vectors, payloads: rows.map((r) => r.payload), rows };
  }

  /** Upserts ids; with `cut`, only the first `cut` rows take effect (a cancel or memory limit), followed by a PARTIAL record. */
  async upsert(ids: number[], cut?: number): Promise<number> {
    const b = this.batch(ids);
    const lsn = await this.log.logUpsert(b.packed, b.vectors, b.payloads, DIM);
    const to = cut ?? ids.length;
    const r = applyUpsert(this.shard, b.packed, b.vectors, b.payloads, 0, to);
    if (r.full) throw new Error('the shard ran out of memory in a test');
    if (to < ids.length) await this.log.logPartial(lsn, to);
    this.log.applied(lsn);
    for (let i = 0; i < to; i++) this.model.set(ids[i]!, b.rows[i]!);
    return lsn;
  }

  async remove(ids: number[]): Promise<number> {
    const packed = packIds(ids, false);
    const lsn = await this.log.logDelete(packed);
    applyDelete(this.shard, packed);
    this.log.applied(lsn);
    for (const id of ids) this.model.delete(id);
    return lsn;
  }

  /** The worker's afterWrite: a log past its threshold is checkpointed. */
  async maybeCheckpoint(): Promise<void> {
    if (this.log.due) await this.log.checkpoint(this.shard);
  }

  /** A power cut, then recovery from what reached the disk. */
  async crashAndRecover(): Promise<void> {
    this.sim.crash();
    await this.log.destroy();
    this.shard.dispose();
    await this.recover();
  }

  /** Differences between the shard and `model` (empty when they agree). */
  diff(model: Map<number, Row> = this.model): string[] {
    const out: string[] = [];
    const live = this.shard.stats().live;
    if (live !== model.size) out.push(`live ${live}, model ${model.size}`);
    for (let id = 0; id < ID_SPACE && out.length < 10; id++) {
      const got = this.shard.get(packIds([id], false), 0);
      const want = model.get(id);
      if (want === undefined) {
        if (got !== undefined) out.push(`id ${id} present, model has it absent`);
        continue;
      }
      if (got === undefined) {
        out.push(`id ${id} absent, model has it`);
        continue;
      }
      if (!sameBytes(new Uint8Array(got.vector.buffer, got.vector.byteOffset, got.vector.byteLength), new Uint8Array(want.vector.buffer))) out.push(`id ${id}: wrong vector`);
      if (!sameBytes(got.payload, want.payload)) out.push(`id ${id}: wrong payload`);
    }
    const integrity = this.shard.integrity();
    if (!integrity.ok) out.push(`integrity: ${JSON.stringify(integrity)}`);
    return out;
  }

  async dispose(): Promise<void> {
    await this.log.destroy();
    this.shard.dispose();
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

/** Fills the harness with a few hundred points, some deleted and rewritten. */
async function fill(h: Harness, seed: number): Promise<void> {
  const r = rng(seed);
  for (let b = 0; b < 12; b++) await h.upsert(range(Math.floor(r() * (ID_SPACE - 40)), 10 + Math.floor(r() * 30)));
  for (let b = 0; b < 4; b++) await h.remove(range(Math.floor(r() * (ID_SPACE - 20)), 1 + Math.floor(r() * 20)));
}

t.test("'always': after a crash the shard holds exactly what was acknowledged", async (t) => {
  const h = await Harness.open('always');
  await fill(h, 1);
  t.ok(h.model.size > 150, `${h.model.size} points acknowledged`);
  await h.crashAndRecover();
  t.same(h.diff(), [], 'the recovered shard equals the model');
  t.equal(h.lastRecovery.imageLsn, 0, 'no image yet: everything came from the log');
  t.equal(h.lastRecovery.replayed, 16, 'every record replayed');
  // and the recovered log goes on from there
  await h.upsert(range(0, 30));
  await h.remove([3, 5, 7]);
  await h.crashAndRecover();
  t.same(h.diff(), [], 'writes after a recovery survive the next crash');
  await h.dispose();
});

t.test("'interval': a crash loses at most the records after the last timed sync, never a record in the middle", async (t) => {
  const INTERVAL = 400;
  const h = await Harness.open('interval', { intervalMs: INTERVAL });
  await fill(h, 2);
  const before = h.log.figures().fsyncs;
  // the timer syncs everything written so far
  const deadline = Date.now() + 10 * INTERVAL + 5000;
  while (h.log.figures().fsyncs === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.ok(h.log.figures().fsyncs > before, 'the interval timer synced');
  const syncedLsn = h.log.appliedLsn;
  // the model after each LSN, to tell which prefix survived
  const states = new Map<number, Map<number, Row>>([[syncedLsn, new Map(h.model)]]);
  for (let b = 0; b < 10; b++) {
    const lsn = b % 3 === 2 ? await h.remove(range(b * 20, 5)) : await h.upsert(range(b * 25, 20));
    states.set(lsn, new Map(h.model));
  }
  const lastLsn = h.log.appliedLsn;
  await h.crashAndRecover();
  const survived = h.log.appliedLsn;
  t.comment(`synced through LSN ${syncedLsn}, written through ${lastLsn}, recovered through ${survived}`);
  t.ok(survived >= syncedLsn && survived <= lastLsn, 'nothing synced was lost');
  t.ok(survived < lastLsn, 'the crash lost the unsynced window (the test file layer drops the page cache)');
  t.same(h.diff(states.get(survived)!), [], 'the shard equals the model at the LSN the log kept: a prefix, applied in order');
  await h.dispose();
});

t.test('an insert cut short (PARTIAL) replays to exactly the rows it applied', async (t) => {
  const h = await Harness.open('always');
  await h.upsert(range(0, 100));
  // rows 50..149: 50..99 exist already (they would be overwritten), 100..149 new; only 37 took effect
  await h.upsert(range(50, 100), 37);
  await h.upsert(range(300, 10));
  // an insert cut before any row took effect
  await h.upsert(range(200, 20), 0);
  t.equal(h.model.size, 100 + 10, 'model: the cut rows are not there');
  await h.crashAndRecover();
  t.same(h.diff(), [], 'replay stops each cut insert where it stopped');
  // the same after a checkpoint taken between the record and a later one
  await h.upsert(range(120, 60), 11);
  await h.log.checkpoint(h.shard);
  await h.upsert(range(150, 60), 59);
  await h.crashAndRecover();
  t.same(h.diff(), [], 'and across a checkpoint');
  await h.dispose();
});

t.test('checkpoint, more writes, crash: image plus replay equals the model', async (t) => {
  const h = await Harness.open('always');
  await fill(h, 3);
  const cp = await h.log.checkpoint(h.shard);
  t.equal(cp.lsn, 16, 'the image is at the last applied LSN');
  await h.upsert(range(10, 40));
  await h.remove(range(0, 15));
  await h.upsert(range(360, 40), 25);
  await h.crashAndRecover();
  t.equal(h.lastRecovery.imageLsn, 16, 'recovery loaded the image');
  t.equal(h.lastRecovery.replayed, 4, 'and replayed only the records after it (the PARTIAL one included)');
  t.same(h.diff(), [], 'the recovered shard equals the model');
  // a second checkpoint: the first becomes the previous one, the log before it goes
  await h.log.checkpoint(h.shard);
  await h.upsert(range(100, 5));
  await h.crashAndRecover();
  t.same(h.diff(), [], 'after a second checkpoint too');
  t.equal(h.lastRecovery.replayed, 1);
  await h.dispose();
});

t.test("'interval': a damaged current image falls back to the previous one and the log after it, losing nothing", async (t) => {
  // no timed sync in this test: only the checkpoint's own sync makes the log durable
  const h = await Harness.open('interval', { intervalMs: 1_000_000 });
  await fill(h, 8);
  await h.log.checkpoint(h.shard);
  await h.upsert(range(0, 50));
  await h.remove(range(60, 20));
  await h.upsert(range(250, 30), 12);
  await h.log.checkpoint(h.shard);
  const images = h.sim.list(DIR).filter((p) => /image-\d+\.qvi$/.test(p));
  t.equal(images.length, 2, 'two images kept');
  h.sim.crash();
  h.sim.corrupt(images.at(-1)!, 4096);
  await h.log.destroy();
  h.shard.dispose();
  const r = await ShardLog.recover(h.d, PARAMS);
  h.log = r.log;
  h.shard = r.shard;
  t.match(String(r.fallbackReason), images.at(-1)!.split('/').pop()!, 'recovery says it fell back, naming the damaged image');
  t.equal(r.replayed, 4, 'the previous image plus the four records after it');
  t.same(h.diff(), [], 'the shard equals the model: the records the newer image covered were in the log too');
  await h.dispose();
});

t.test('a checkpoint stopped by a power cut after any number of its steps still recovers', async (t) => {
  let steps = 0;
  for (let cut = 0; ; cut++) {
    const h = await Harness.open('always');
    await fill(h, 4);
    await h.log.checkpoint(h.shard); // a previous image, so the cut checkpoint also has segments and images to delete
    await h.upsert(range(30, 50));
    await h.remove(range(40, 10));
    const start = h.sim.mutations;
    h.sim.powerCutAfter(cut);
    const err = await h.log.checkpoint(h.shard).then(() => undefined, (e: unknown) => e);
    const used = h.sim.mutations - start;
    await h.crashAndRecover();
    const diff = h.diff();
    if (diff.length > 0) t.same(diff, [], `cut after ${cut} mutating operations: the recovered shard equals the model`);
    // the recovered shard takes writes and checkpoints again
    await h.upsert(range(200, 30));
    await h.log.checkpoint(h.shard);
    await h.upsert(range(0, 5));
    await h.crashAndRecover();
    const after = h.diff();
    if (after.length > 0) t.same(after, [], `cut after ${cut}: writes and a checkpoint after recovery survive`);
    await h.dispose();
    if (err === undefined) {
      steps = used;
      break;
    }
    if (cut > 200) {
      t.fail('the checkpoint never completed');
      break;
    }
  }
  t.ok(steps >= 6, `a checkpoint took ${steps} mutating operations; a power cut after each of 0..${steps - 1} was recovered from`);
});

t.test('a fault at the first operation of each kind in a checkpoint: it rejects, the shard goes on, a crash recovers', async (t) => {
  for (const op of ['sync', 'write', 'open', 'rename', 'syncDir', 'unlink'] as SimOp[]) {
    const h = await Harness.open('always');
    await fill(h, 5);
    // two images already: the third checkpoint also deletes the oldest
    await h.log.checkpoint(h.shard);
    await h.upsert(range(60, 30));
    await h.log.checkpoint(h.shard);
    await h.upsert(range(20, 30));
    const before = h.sim.counts[op];
    h.sim.failNext(op, 'EIO');
    const err = await h.log.checkpoint(h.shard).then(() => undefined, (e: unknown) => e);
    h.sim.clearFaults();
    t.ok(h.sim.counts[op] > before, `a checkpoint does ${op}`);
    t.equal(codeOf(err), 'QUIVER_ERR_IO', `${op} fault: the checkpoint rejects with QUIVER_ERR_IO`);
    await h.upsert(range(100, 20));
    await h.remove([21, 22]);
    t.same(h.diff(), [], `${op} fault: the live shard is intact and takes writes`);
    await h.crashAndRecover();
    t.same(h.diff(), [], `${op} fault: a crash right after recovers the model`);
    await h.log.checkpoint(h.shard);
    await h.upsert(range(300, 10));
    await h.crashAndRecover();
    t.same(h.diff(), [], `${op} fault: so do a later checkpoint and crash`);
    await h.dispose();
  }
});

t.test('a bit flipped in the middle of the log: recovery refuses with QUIVER_ERR_CORRUPT naming the file and offset', async (t) => {
  const h = await Harness.open('always');
  await fill(h, 6);
  const [segment] = h.sim.list(`${DIR}/wal`);
  t.ok(segment !== undefined, 'one log segment');
  const bytes = h.sim.peekDurable(segment!)!;
  // the record boundaries: [length u32][crc u32][lsn u64][op u8][body]
  const starts: number[] = [];
  for (let at = 0; at < bytes.length; at += 17 + new DataView(bytes.buffer, bytes.byteOffset + at).getUint32(0, true)) starts.push(at);
  t.equal(starts.length, 16, 'sixteen records');
  const victim = starts[7]!;
  const flip = victim + 17 + 9; // a byte of the record's body
  h.sim.corrupt(segment!, flip, 0x04);
  h.sim.crash();
  await h.log.destroy();
  h.shard.dispose();
  const err = await ShardLog.recover(h.d, PARAMS).then((r) => {
    r.shard.dispose();
    return r.log.destroy();
  }, (e: unknown) => e);
  t.ok(err instanceof QuiverError, 'recovery rejects');
  t.equal(codeOf(err), 'QUIVER_ERR_CORRUPT');
  t.match((err as Error).message, segment!, 'naming the segment file');
  t.match((err as Error).message, `byte ${victim}`, `and the offset of the damaged record (${victim})`);
  // nothing was truncated: the damage is still there for an operator
  t.equal(h.sim.peekDurable(segment!)!.length, bytes.length, 'the log is left as it was');
});

t.test('an I/O fault on write or sync rejects the append with QUIVER_ERR_IO, nothing is applied, and appends work once it clears', async (t) => {
  for (const [op, code] of [['write', 'ENOSPC'], ['sync', 'EIO']] as const) {
    const h = await Harness.open('always');
    await fill(h, 7);
    const before = new Map(h.model);
    h.sim.failNext(op, code);
    const err = await h.upsert(range(350, 30)).then(() => undefined, (e: unknown) => e);
    t.equal(codeOf(err), 'QUIVER_ERR_IO', `${code} on ${op}: the upsert is rejected with QUIVER_ERR_IO`);
    t.match(String((err as Error)?.message), code, 'saying what the disk said');
    h.sim.failNext(op, code);
    const derr = await h.remove(range(0, 400)).then(() => undefined, (e: unknown) => e);
    t.equal(codeOf(derr), 'QUIVER_ERR_IO', `${code} on ${op}: the delete is rejected too`);
    t.same(h.diff(before), [], 'nothing of either was applied');
    // the disk is back
    await h.upsert(range(360, 20));
    await h.remove([0, 1, 2]);
    t.same(h.diff(), [], 'appends succeed again');
    await h.crashAndRecover();
    t.same(h.diff(), [], 'and recovery holds exactly the acknowledged writes: the rejected ones are not replayed');
    await h.dispose();
  }
});

type Cmd =
  | { op: 'upsert'; from: number; n: number }
  | { op: 'partial'; from: number; n: number; cut: number }
  | { op: 'delete'; from: number; n: number }
  | { op: 'checkpoint' }
  | { op: 'crash' };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('upsert' as const), from: fc.integer({ min: 0, max: ID_SPACE - 1 }), n: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('partial' as const), from: fc.integer({ min: 0, max: ID_SPACE - 1 }), n: fc.integer({ min: 1, max: 60 }), cut: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), from: fc.integer({ min: 0, max: ID_SPACE - 1 }), n: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'checkpoint' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'crash' as const }) },
);

t.test('property: random upsert / delete / partial / checkpoint / crash sequences recover to the model', async (t) => {
  let runs = 0;
  await fc.assert(fc.asyncProperty(fc.array(cmd, { minLength: 5, maxLength: 40 }), async (cmds) => {
    runs++;
    // a small threshold, so the log-size checkpoint of the worker happens too
    const h = await Harness.open('always', { checkpointLogBytes: 24 * 1024 });
    try {
      for (const c of cmds) {
        const ids = 'from' in c ? range(c.from, Math.min(c.n, ID_SPACE - c.from)) : [];
        if (c.op === 'upsert') await h.upsert(ids);
        else if (c.op === 'partial') await h.upsert(ids, c.cut % (ids.length + 1));
        else if (c.op === 'delete') await h.remove(ids);
        else if (c.op === 'checkpoint') await h.log.checkpoint(h.shard);
        else {
          await h.crashAndRecover();
          const d = h.diff();
          if (d.length > 0) throw new Error(`after a crash: ${d.join('; ')}`);
        }
        if (c.op !== 'checkpoint' && c.op !== 'crash') await h.maybeCheckpoint();
      }
      await h.crashAndRecover();
      const d = h.diff();
      if (d.length > 0) throw new Error(`at the end: ${d.join('; ')}`);
    } finally {
      await h.dispose();
    }
  }), { numRuns: 80, endOnFailure: process.env.QUIVER_NO_SHRINK === '1', ...(process.env.QUIVER_SEED === undefined ? {} : { seed: Number(process.env.QUIVER_SEED) }) });
  t.ok(runs >= 80, `${runs} sequences matched the model after every crash`);
});
