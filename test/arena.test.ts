// The slab arena (assembly/arena.ts) against a plain JS model.
//
// The model is a reference implementation of the documented policy, written
// with arrays instead of intrusive linked lists:
//   runs    first fit over an address-ordered free list, else bump the top;
//           a freed run coalesces with both neighbours, and a free run that
//           ends at the top lowers the top instead of going on the list
//   blocks  per small class: LIFO free list, else bump through the current
//           slab; a class that runs out takes slabsFor(block) whole slabs
//           through runAlloc(_, links) and never gives them back
//   acct    runs: committed and used += slabs * 64 KiB for their class;
//           a carved small slab: links committed += its bytes (used unchanged);
//           a block: links used += block bytes (-= when freed)
// so the test can predict every pointer, the arena top, the free run bytes
// and every accounting counter exactly, on top of the state `init` leaves.
//
// Independently of the model, every op also checks the invariants the brief
// names: no two live allocations overlap, alignment, bounds, and that a
// pattern written into each live allocation survives every later call.

import t from 'tap';
import fc from 'fast-check';
import { instantiateDebug } from '../host/core/module.js';
import { ArenaClass, HEADER_PTR, LAYOUT, STAT_FIELDS, type DebugCoreExports, type RawStats } from '../host/core/abi.js';

const SLAB = LAYOUT.SLAB_BYTES;
// header offsets: the layout table the core is checked against
const { H_FREE_RUNS, H_SMALL, SC_STRIDE } = LAYOUT;
const SMALL_CLASSES = LAYOUT.SMALL_CLASSES; // classes 1..15
const M = 4;
const CLASSES = 4;
const CLASS_KEYS = ['node', 'links', 'idmap', 'scratch'] as const;

class Check extends Error {}
function check(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Check(msg);
}

// ---------------------------------------------------------------------------
// a fresh core
// ---------------------------------------------------------------------------

interface Inst {
  memory: WebAssembly.Memory;
  core: DebugCoreExports;
}

function fresh(): Inst {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const core = instantiateDebug(memory);
  const status = core.init(16, 0, M, 16, 1n, 0, 0, 0);
  check(status === 0, `init returned ${status}`);
  return { memory, core };
}

function readStats(inst: Inst): RawStats {
  const out = inst.core.ioPtr();
  inst.core.stats(out);
  const f64 = new Float64Array(inst.memory.buffer, out, STAT_FIELDS.length);
  const s = {} as RawStats;
  STAT_FIELDS.forEach((k, i) => {
    s[k] = f64[i]!;
  });
  return s;
}

function committed(s: RawStats, cls: number): number {
  return s[`${CLASS_KEYS[cls]!}Committed`];
}
function used(s: RawStats, cls: number): number {
  return s[`${CLASS_KEYS[cls]!}Used`];
}

interface FreeRun {
  ptr: number;
  slabs: number;
}

/** The free run list as the arena keeps it in memory (arena.ts: next u32, slabs u32). */
function walkFreeRuns(inst: Inst): FreeRun[] {
  const u32 = new Uint32Array(inst.memory.buffer);
  const out: FreeRun[] = [];
  let p = u32[(HEADER_PTR + H_FREE_RUNS) >>> 2]!;
  while (p !== 0) {
    check(out.length < 100_000, 'free run list does not terminate');
    check(p % 4 === 0 && p + 8 <= u32.byteLength, `free run at ${p} is outside memory`);
    out.push({ ptr: p, slabs: u32[(p + 4) >>> 2]! });
    p = u32[p >>> 2]!;
  }
  return out;
}

interface SmallHeader {
  block: number;
  free: number;
  bump: number;
  end: number;
}

function smallHeader(inst: Inst, sc: number): SmallHeader {
  const u32 = new Uint32Array(inst.memory.buffer);
  const w = (HEADER_PTR + H_SMALL + sc * SC_STRIDE) >>> 2;
  return { block: u32[w]!, free: u32[w + 1]!, bump: u32[w + 2]!, end: u32[w + 3]! };
}

/** A small class's free list in memory, head first (a block's first u32 links the next). */
function walkSmallFree(inst: Inst, head: number): number[] {
  const u32 = new Uint32Array(inst.memory.buffer);
  const out: number[] = [];
  for (let p = head; p !== 0; p = u32[p >>> 2]!) {
    check(out.length < 1_000_000, 'small free list does not terminate');
    out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------------------
// the model
// ---------------------------------------------------------------------------

interface SmallClass {
  block: number;
  free: number[]; // a stack: the last element is the head
  bump: number;
  end: number;
}

class ArenaModel {
  readonly base: number;
  top: number;
  runs: FreeRun[];
  small: SmallClass[] = [];
  /** per class, bytes since init */
  committed = [0, 0, 0, 0];
  used = [0, 0, 0, 0];
  /** slabs the small allocator took since init: [ptr, ptr + bytes) */
  carved: { ptr: number; bytes: number; sc: number }[] = [];

  /** Starts from the state init left in memory. */
  constructor(inst: Inst, s: RawStats) {
    this.base = s.arenaBase;
    this.top = s.usedBytes;
    this.runs = walkFreeRuns(inst);
    for (let sc = 0; sc < SMALL_CLASSES; sc++) {
      const h = smallHeader(inst, sc);
      this.small.push({ block: h.block, free: walkSmallFree(inst, h.free).reverse(), bump: h.bump, end: h.end });
    }
  }

  freeRunBytes(): number {
    return this.runs.reduce((a, r) => a + r.slabs * SLAB, 0);
  }

  runAlloc(slabs: number, cls: number): number {
    const bytes = slabs * SLAB;
    let ptr: number;
    const i = this.runs.findIndex((r) => r.slabs >= slabs);
    if (i >= 0) {
      const r = this.runs[i]!;
      ptr = r.ptr;
      if (r.slabs === slabs) this.runs.splice(i, 1);
      else this.runs[i] = { ptr: r.ptr + bytes, slabs: r.slabs - slabs };
    } else {
      ptr = this.top;
      this.top += bytes;
    }
    this.committed[cls]! += bytes;
    this.used[cls]! += bytes;
    return ptr;
  }

  runFree(ptr: number, slabs: number, cls: number): void {
    const bytes = slabs * SLAB;
    this.committed[cls]! -= bytes;
    this.used[cls]! -= bytes;
    let start = ptr;
    let end = ptr + bytes;
    const before = this.runs.findIndex((r) => r.ptr + r.slabs * SLAB === start);
    if (before >= 0) {
      start = this.runs[before]!.ptr;
      this.runs.splice(before, 1);
    }
    const after = this.runs.findIndex((r) => r.ptr === end);
    if (after >= 0) {
      end += this.runs[after]!.slabs * SLAB;
      this.runs.splice(after, 1);
    }
    if (end === this.top) {
      this.top = start;
      return;
    }
    this.runs.push({ ptr: start, slabs: (end - start) / SLAB });
    this.runs.sort((a, b) => a.ptr - b.ptr);
  }

  smallAlloc(sc: number): number {
    const c = this.small[sc]!;
    let p = c.free.pop();
    if (p === undefined) {
      if (c.bump === 0 || c.bump + c.block > c.end) {
        const slabs = Math.ceil(c.block / SLAB);
        const slab = this.runAlloc(slabs, ArenaClass.links);
        this.used[ArenaClass.links]! -= slabs * SLAB;
        this.carved.push({ ptr: slab, bytes: slabs * SLAB, sc });
        c.bump = slab;
        c.end = slab + slabs * SLAB;
      }
      p = c.bump;
      c.bump += c.block;
    }
    this.used[ArenaClass.links]! += c.block;
    return p;
  }

  smallFree(sc: number, p: number): void {
    const c = this.small[sc]!;
    c.free.push(p);
    this.used[ArenaClass.links]! -= c.block;
  }
}

// ---------------------------------------------------------------------------
// live allocations and their patterns
// ---------------------------------------------------------------------------

interface Alloc {
  kind: 'run' | 'small';
  ptr: number;
  size: number;
  slabs: number; // runs
  cls: number; // runs
  sc: number; // blocks
  word: number; // the pattern: every u32 of the allocation holds it
}

// not the shared PRNG on purpose: a hash of the serial gives every allocation a distinct nonzero word (random ones could collide)
let serial = 0;
function patternWord(): number {
  serial++;
  return (Math.imul(serial, 0x9e3779b1) | 1) >>> 0;
}

function fill(inst: Inst, a: Alloc): void {
  new Uint32Array(inst.memory.buffer, a.ptr, a.size >>> 2).fill(a.word);
}

function wordAt(u32: Uint32Array, a: Alloc, byteOff: number): void {
  const got = u32[(a.ptr + byteOff) >>> 2]!;
  check(got === a.word, `${a.kind} at ${a.ptr} (size ${a.size}): byte ${byteOff} holds ${got.toString(16)}, wrote ${a.word.toString(16)}`);
}

/**
 * Cheap pattern check after every op: the arena only ever writes bookkeeping
 * at the first bytes of a slab (a free run's next/slabs, a split remainder's
 * header) or of a block (a small free list link), so the first and last two
 * words of every slab of a run and of every block are where a stray write
 * lands.
 */
function checkPatternsSampled(inst: Inst, live: readonly Alloc[]): void {
  const u32 = new Uint32Array(inst.memory.buffer);
  for (const a of live) {
    const step = a.kind === 'run' ? SLAB : a.size;
    for (let off = 0; off < a.size; off += step) {
      wordAt(u32, a, off);
      wordAt(u32, a, off + 4);
      wordAt(u32, a, off + step - 8);
      wordAt(u32, a, off + step - 4);
    }
  }
}

/** Every word, done once per allocation, just before it is freed. */
function checkPatternFull(inst: Inst, a: Alloc): void {
  const view = new Uint32Array(inst.memory.buffer, a.ptr, a.size >>> 2);
  for (let i = 0; i < view.length; i++) {
    if (view[i] !== a.word) wordAt(new Uint32Array(inst.memory.buffer), a, i * 4);
  }
}

// ---------------------------------------------------------------------------
// the checks after every op
// ---------------------------------------------------------------------------

function checkState(inst: Inst, model: ArenaModel, baseline: RawStats, live: readonly Alloc[]): void {
  const s = readStats(inst);
  const memBytes = inst.memory.buffer.byteLength;

  // arena top, holes, memory
  check(s.usedBytes === model.top, `usedBytes (arena top) ${s.usedBytes}, model ${model.top}`);
  check(s.committedBytes === memBytes, `committedBytes ${s.committedBytes}, memory is ${memBytes}`);
  check(s.usedBytes <= memBytes, `arena top ${s.usedBytes} beyond memory ${memBytes}`);
  check(s.arenaBase === baseline.arenaBase, 'arenaBase moved');
  check(s.freeRunBytes === model.freeRunBytes(), `freeRunBytes ${s.freeRunBytes}, model ${model.freeRunBytes()}`);
  check(inst.core.arenaFreeRunBytes() === s.freeRunBytes, 'arenaFreeRunBytes disagrees with stats');

  // the free list itself: address-ordered, fully coalesced, never touching the top
  const runs = walkFreeRuns(inst);
  check(
    JSON.stringify(runs) === JSON.stringify(model.runs),
    `free runs ${JSON.stringify(runs)}, model ${JSON.stringify(model.runs)}`,
  );
  for (let i = 0; i < runs.length; i++) {
    const r = runs[i]!;
    check(r.slabs > 0 && (r.ptr - s.arenaBase) % SLAB === 0 && r.ptr >= s.arenaBase, `bad free run ${JSON.stringify(r)}`);
    check(r.ptr + r.slabs * SLAB < s.usedBytes, `free run ${JSON.stringify(r)} reaches the top ${s.usedBytes}`);
    if (i > 0) {
      const p = runs[i - 1]!;
      check(p.ptr + p.slabs * SLAB < r.ptr, `free runs ${JSON.stringify(p)} and ${JSON.stringify(r)} overlap or were not coalesced`);
    }
  }

  // small class headers
  for (let sc = 1; sc < SMALL_CLASSES; sc++) {
    const h = smallHeader(inst, sc);
    const c = model.small[sc]!;
    const head = c.free.length === 0 ? 0 : c.free[c.free.length - 1]!;
    check(
      h.bump === c.bump && h.end === c.end && h.free === head,
      `small class ${sc}: header ${JSON.stringify(h)}, model bump ${c.bump} end ${c.end} free head ${head}`,
    );
  }

  // exact accounting: the post-init baseline plus what the model says this test did
  for (let cls = 0; cls < CLASSES; cls++) {
    const wantC = committed(baseline, cls) + model.committed[cls]!;
    const wantU = used(baseline, cls) + model.used[cls]!;
    check(committed(s, cls) === wantC, `${CLASS_KEYS[cls]} committed ${committed(s, cls)}, want ${wantC}`);
    check(used(s, cls) === wantU, `${CLASS_KEYS[cls]} used ${used(s, cls)}, want ${wantU}`);
  }
  // the links rule spelled out from the test's own allocations, not the model's counters
  let linkRuns = 0;
  let blockBytes = 0;
  for (const a of live) {
    if (a.kind === 'run' && a.cls === ArenaClass.links) linkRuns += a.size;
    if (a.kind === 'small') blockBytes += a.size;
  }
  const carvedBytes = model.carved.reduce((acc, c) => acc + c.bytes, 0);
  check(
    s.linksUsed === baseline.linksUsed + linkRuns + blockBytes,
    `linksUsed ${s.linksUsed}, want ${baseline.linksUsed} + runs ${linkRuns} + blocks ${blockBytes}`,
  );
  check(
    s.linksCommitted === baseline.linksCommitted + linkRuns + carvedBytes,
    `linksCommitted ${s.linksCommitted}, want ${baseline.linksCommitted} + runs ${linkRuns} + carved slabs ${carvedBytes}`,
  );
  const slack = s.linksCommitted - baseline.linksCommitted - (s.linksUsed - baseline.linksUsed);
  check(slack >= 0 && slack === carvedBytes - blockBytes, `links slack ${slack}`);

  // allocation invariants, model-free
  const ioLo = inst.core.ioPtr();
  const ioHi = ioLo + s.ioBytes;
  const sorted = [...live].sort((a, b) => a.ptr - b.ptr);
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!;
    const where = `${a.kind} [${a.ptr}, ${a.ptr + a.size})`;
    check(a.ptr >= s.arenaBase && a.ptr + a.size <= s.usedBytes, `${where} outside [arenaBase ${s.arenaBase}, top ${s.usedBytes})`);
    check(a.ptr + a.size <= memBytes, `${where} beyond memory ${memBytes}`);
    check(a.ptr + a.size <= ioLo || a.ptr >= ioHi, `${where} overlaps the io buffer [${ioLo}, ${ioHi})`);
    if (a.kind === 'run') {
      check((a.ptr - s.arenaBase) % SLAB === 0, `${where} is not slab aligned`);
      for (const c of model.carved) {
        check(a.ptr + a.size <= c.ptr || a.ptr >= c.ptr + c.bytes, `${where} overlaps a small slab at ${c.ptr}`);
      }
    } else {
      check(a.ptr % 4 === 0, `${where} is not 4-byte aligned`);
      check(
        model.carved.some((c) => c.sc === a.sc && a.ptr >= c.ptr && a.ptr + a.size <= c.ptr + c.bytes),
        `${where} is not inside a slab of its class ${a.sc}`,
      );
    }
    for (const r of runs) {
      check(a.ptr + a.size <= r.ptr || a.ptr >= r.ptr + r.slabs * SLAB, `${where} overlaps free run ${JSON.stringify(r)}`);
    }
    if (i > 0) {
      const p = sorted[i - 1]!;
      check(p.ptr + p.size <= a.ptr, `${p.kind} [${p.ptr}, ${p.ptr + p.size}) overlaps ${where}`);
    }
  }
  checkPatternsSampled(inst, live);
}

// ---------------------------------------------------------------------------
// ops
// ---------------------------------------------------------------------------

type Op =
  | { op: 'run'; slabs: number; cls: number }
  | { op: 'freeRun'; pick: number }
  | { op: 'small'; sc: number; count: number }
  | { op: 'freeSmall'; pick: number; count: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('run' as const), slabs: fc.integer({ min: 1, max: 8 }), cls: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('freeRun' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('small' as const),
      sc: fc.integer({ min: 1, max: 15 }),
      // mostly single blocks; sometimes a burst big enough to use up a slab
      // (a slab holds 218 blocks of the largest class, 300 bytes)
      count: fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 400 }) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('freeSmall' as const),
      pick: fc.nat(),
      count: fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 200 }) }),
    }),
  },
);

class Driver {
  readonly inst: Inst;
  readonly baseline: RawStats;
  readonly model: ArenaModel;
  readonly live: Alloc[] = [];

  constructor() {
    this.inst = fresh();
    this.baseline = readStats(this.inst);
    this.model = new ArenaModel(this.inst, this.baseline);
    check(this.inst.core.arenaSmallBlock(1) === 4 + 4 * M, 'block bytes of class 1');
    checkState(this.inst, this.model, this.baseline, this.live);
  }

  runAlloc(slabs: number, cls: number): Alloc {
    const want = this.model.runAlloc(slabs, cls);
    const ptr = this.inst.core.arenaRunAlloc(slabs, cls);
    check(ptr !== 0, `arenaRunAlloc(${slabs}, ${cls}) returned 0`);
    check(ptr === want, `arenaRunAlloc(${slabs}, ${cls}) returned ${ptr}, model ${want}`);
    const a: Alloc = { kind: 'run', ptr, size: slabs * SLAB, slabs, cls, sc: 0, word: patternWord() };
    fill(this.inst, a);
    this.live.push(a);
    return a;
  }

  smallAlloc(sc: number): Alloc {
    const size = this.inst.core.arenaSmallBlock(sc);
    check(size === ((sc * (4 + 4 * M) + 3) & ~3), `arenaSmallBlock(${sc}) = ${size}`);
    const want = this.model.smallAlloc(sc);
    const ptr = this.inst.core.arenaSmallAlloc(sc);
    check(ptr !== 0, `arenaSmallAlloc(${sc}) returned 0`);
    check(ptr === want, `arenaSmallAlloc(${sc}) returned ${ptr}, model ${want}`);
    const a: Alloc = { kind: 'small', ptr, size, slabs: 0, cls: ArenaClass.links, sc, word: patternWord() };
    fill(this.inst, a);
    this.live.push(a);
    return a;
  }

  free(a: Alloc): void {
    const i = this.live.indexOf(a);
    check(i >= 0, 'freeing an allocation that is not live');
    checkPatternFull(this.inst, a);
    this.live.splice(i, 1);
    if (a.kind === 'run') {
      this.model.runFree(a.ptr, a.slabs, a.cls);
      this.inst.core.arenaRunFree(a.ptr, a.slabs, a.cls);
    } else {
      this.model.smallFree(a.sc, a.ptr);
      this.inst.core.arenaSmallFree(a.sc, a.ptr);
    }
  }

  pick(kind: Alloc['kind'], n: number): Alloc | undefined {
    const of = this.live.filter((a) => a.kind === kind);
    return of.length === 0 ? undefined : of[n % of.length];
  }

  apply(op: Op): void {
    switch (op.op) {
      case 'run':
        this.runAlloc(op.slabs, op.cls);
        break;
      case 'freeRun': {
        const a = this.pick('run', op.pick);
        if (a !== undefined) this.free(a);
        break;
      }
      case 'small':
        for (let i = 0; i < op.count; i++) this.smallAlloc(op.sc);
        break;
      case 'freeSmall':
        for (let i = 0; i < op.count; i++) {
          const a = this.pick('small', op.pick + i * 7);
          if (a !== undefined) this.free(a);
        }
        break;
    }
    this.check();
  }

  check(): void {
    checkState(this.inst, this.model, this.baseline, this.live);
  }
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

t.test('random op sequences match the model', async (t) => {
  let runs = 0;
  let carvedSeqs = 0;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), fc.array(fc.nat(), { maxLength: 64 }), (ops, finalPicks) => {
      runs++;
      const d = new Driver();
      for (const op of ops) d.apply(op);

      // free everything, in an order the generator picked, checking after each
      for (const p of finalPicks) {
        if (d.live.length === 0) break;
        d.free(d.live[p % d.live.length]!);
        d.check();
      }
      while (d.live.length > 0) {
        d.free(d.live[d.live.length - 1]!);
        d.check();
      }

      const s = readStats(d.inst);
      const carvedBytes = d.model.carved.reduce((a, c) => a + c.bytes, 0);
      if (carvedBytes > 0) carvedSeqs++;
      for (let cls = 0; cls < CLASSES; cls++) {
        const extra = cls === ArenaClass.links ? carvedBytes : 0;
        check(committed(s, cls) === committed(d.baseline, cls) + extra, `${CLASS_KEYS[cls]} committed after freeing all`);
        check(used(s, cls) === used(d.baseline, cls), `${CLASS_KEYS[cls]} used after freeing all`);
      }
      if (carvedBytes === 0) {
        // only runs were used: the top is back exactly where init left it
        check(s.usedBytes === d.baseline.usedBytes, `top ${s.usedBytes} after freeing all runs, was ${d.baseline.usedBytes}`);
        check(s.freeRunBytes === d.baseline.freeRunBytes, `freeRunBytes ${s.freeRunBytes} after freeing all runs`);
      } else {
        // small slabs stay; above what init holds, the prefix is small slabs and holes
        const initHeld = d.baseline.usedBytes - d.baseline.arenaBase - d.baseline.freeRunBytes;
        check(
          s.usedBytes - s.arenaBase === initHeld + carvedBytes + s.freeRunBytes,
          `top ${s.usedBytes}: init holds ${initHeld}, small slabs ${carvedBytes}, holes ${s.freeRunBytes}`,
        );
        const highest = Math.max(...d.model.carved.map((c) => c.ptr + c.bytes));
        check(s.usedBytes === Math.max(highest, d.baseline.usedBytes), `top ${s.usedBytes} is not the end of the highest small slab ${highest}`);
      }
    }),
    { seed: 0x5eed1e55, numRuns: 100 },
  );
  t.equal(runs, 100, 'ran 100 sequences');
  t.ok(carvedSeqs > 0, `some sequences carved small slabs (${carvedSeqs})`);
});

t.test('post-init baseline', async (t) => {
  const inst = fresh();
  const s = readStats(inst);
  t.equal(s.arenaBase % SLAB, 0, 'arena base is slab aligned');
  t.ok(s.arenaBase >= HEADER_PTR + LAYOUT.HEADER_BYTES, 'arena base is above the header');
  t.equal(s.usedBytes, new ArenaModel(inst, s).top);
  t.equal(inst.core.ioPtr() % SLAB, 0, 'io buffer is a run');
  t.ok(inst.core.ioPtr() >= s.arenaBase && inst.core.ioPtr() + s.ioBytes <= s.usedBytes, 'io buffer inside the arena');
});

t.test('coalescing', async (t) => {
  t.test('free B then A: A+B slabs fit exactly at A', async (t) => {
    const d = new Driver();
    const a = d.runAlloc(2, ArenaClass.node);
    const b = d.runAlloc(3, ArenaClass.idmap);
    const c = d.runAlloc(1, ArenaClass.scratch);
    d.check();
    t.equal(b.ptr, a.ptr + 2 * SLAB, 'B follows A');
    t.equal(c.ptr, b.ptr + 3 * SLAB, 'C follows B');
    d.free(b);
    d.check();
    t.equal(d.inst.core.arenaFreeRunBytes(), 3 * SLAB, 'B is a hole');
    d.free(a);
    d.check();
    t.same(walkFreeRuns(d.inst), [{ ptr: a.ptr, slabs: 5 }], 'A and B are one free run');
    const topBefore = readStats(d.inst).usedBytes;
    const ab = d.runAlloc(5, ArenaClass.links);
    d.check();
    t.equal(ab.ptr, a.ptr, 'A+B slabs land at A');
    t.equal(d.inst.core.arenaFreeRunBytes(), 0, 'no hole left');
    t.equal(readStats(d.inst).usedBytes, topBefore, 'the top did not move');
  });

  t.test('free A then B: merges with the preceding run', async (t) => {
    const d = new Driver();
    const a = d.runAlloc(1, ArenaClass.node);
    const b = d.runAlloc(4, ArenaClass.node);
    d.runAlloc(1, ArenaClass.node);
    d.free(a);
    d.free(b);
    d.check();
    t.same(walkFreeRuns(d.inst), [{ ptr: a.ptr, slabs: 5 }]);
    t.equal(d.runAlloc(5, ArenaClass.scratch).ptr, a.ptr);
    d.check();
  });

  t.test('A, C then B: a three-way merge', async (t) => {
    const d = new Driver();
    const a = d.runAlloc(2, ArenaClass.node);
    const b = d.runAlloc(1, ArenaClass.node);
    const c = d.runAlloc(3, ArenaClass.node);
    d.runAlloc(1, ArenaClass.node); // keeps C off the top
    d.free(a);
    d.free(c);
    d.check();
    t.equal(walkFreeRuns(d.inst).length, 2, 'two holes');
    d.free(b);
    d.check();
    t.same(walkFreeRuns(d.inst), [{ ptr: a.ptr, slabs: 6 }], 'one hole');
    t.equal(d.runAlloc(6, ArenaClass.idmap).ptr, a.ptr);
    d.check();
  });

  t.test('first fit splits a hole and leaves the rest on the list', async (t) => {
    const d = new Driver();
    const a = d.runAlloc(5, ArenaClass.node);
    d.runAlloc(1, ArenaClass.node);
    const c = d.runAlloc(2, ArenaClass.node);
    d.runAlloc(1, ArenaClass.node);
    d.free(a);
    d.free(c);
    d.check();
    // first fit: the 2-slab request goes to the first hole (A), not the exact fit (C)
    const x = d.runAlloc(2, ArenaClass.links);
    d.check();
    t.equal(x.ptr, a.ptr);
    t.same(walkFreeRuns(d.inst), [{ ptr: a.ptr + 2 * SLAB, slabs: 3 }, { ptr: c.ptr, slabs: 2 }]);
    const topBefore = readStats(d.inst).usedBytes;
    const y = d.runAlloc(4, ArenaClass.links); // fits no hole: bumps the top
    d.check();
    t.equal(y.ptr, topBefore);
  });
});

t.test('top lowering', async (t) => {
  const d = new Driver();
  const top0 = d.baseline.usedBytes;
  const a = d.runAlloc(2, ArenaClass.node);
  const b = d.runAlloc(3, ArenaClass.node);
  const c = d.runAlloc(1, ArenaClass.node);
  d.check();
  t.equal(a.ptr, top0, 'A bumps from the post-init top');
  t.equal(readStats(d.inst).usedBytes, top0 + 6 * SLAB);
  d.free(c);
  d.check();
  t.equal(readStats(d.inst).usedBytes, c.ptr, 'freeing the top run lowers the top');
  t.equal(d.inst.core.arenaFreeRunBytes(), 0, 'and does not make a hole');
  d.free(a);
  d.check();
  t.equal(readStats(d.inst).usedBytes, c.ptr, 'a hole below a live run leaves the top');
  t.equal(d.inst.core.arenaFreeRunBytes(), 2 * SLAB);
  d.free(b);
  d.check();
  t.equal(readStats(d.inst).usedBytes, top0, 'B merges with the hole A and lowers the top to where init left it');
  t.equal(d.inst.core.arenaFreeRunBytes(), 0, 'no holes left');
  t.same(walkFreeRuns(d.inst), []);
  const again = d.runAlloc(6, ArenaClass.scratch);
  t.equal(again.ptr, top0, 'the next run starts at the lowered top');
  d.check();
});

t.test('small blocks: bump through whole slabs, LIFO reuse, exact accounting', async (t) => {
  const d = new Driver();
  const sc = 15;
  const size = d.inst.core.arenaSmallBlock(sc);
  t.equal(size, 15 * (4 + 4 * M), 'block bytes');
  const perSlab = Math.floor(SLAB / size);
  const blocks: Alloc[] = [];
  for (let i = 0; i <= perSlab; i++) blocks.push(d.smallAlloc(sc));
  d.check();
  const first = blocks[0]!;
  t.equal(first.ptr, d.baseline.usedBytes, 'the first slab is a run at the top');
  for (let i = 1; i < perSlab; i++) {
    if (blocks[i]!.ptr !== first.ptr + i * size) t.fail(`block ${i} at ${blocks[i]!.ptr}`);
  }
  const spill = blocks[perSlab]!;
  t.equal(spill.ptr, first.ptr + SLAB, 'a block that does not fit starts the next slab');
  let s = readStats(d.inst);
  t.equal(s.linksCommitted, d.baseline.linksCommitted + 2 * SLAB, 'two slabs committed to links');
  t.equal(s.linksUsed, d.baseline.linksUsed + (perSlab + 1) * size, 'only handed-out blocks are used');

  // a run allocated now goes above the small slabs
  const r = d.runAlloc(1, ArenaClass.links);
  t.equal(r.ptr, first.ptr + 2 * SLAB);
  s = readStats(d.inst);
  t.equal(s.linksUsed, d.baseline.linksUsed + (perSlab + 1) * size + SLAB, 'a links run counts as used');

  // LIFO: the last freed block comes back first
  const x = blocks[10]!;
  const y = blocks[20]!;
  d.free(x);
  d.free(y);
  d.check();
  t.equal(d.smallAlloc(sc).ptr, y.ptr, 'last freed first');
  t.equal(d.smallAlloc(sc).ptr, x.ptr, 'then the one before');
  d.check();

  // other classes carve their own slabs
  const other = d.smallAlloc(1);
  t.equal(other.ptr, r.ptr + SLAB, 'class 1 takes a fresh slab above');
  d.check();

  // freeing every block keeps the slabs: committed stays, used drops to the baseline
  for (const a of [...d.live]) d.free(a);
  d.check();
  s = readStats(d.inst);
  t.equal(s.linksUsed, d.baseline.linksUsed, 'links used back to the baseline');
  t.equal(s.linksCommitted, d.baseline.linksCommitted + 3 * SLAB, 'three small slabs stay committed');
  t.equal(s.usedBytes, other.ptr + SLAB, 'the top stays above the highest small slab');
  t.equal(s.freeRunBytes, SLAB, 'the links run is a hole between small slabs');
});

t.test('hooks reject what they must', async (t) => {
  const d = new Driver();
  t.equal(d.inst.core.arenaSmallAlloc(0), 0, 'small class 0 does not exist');
  t.equal(d.inst.core.arenaSmallAlloc(16), 0, 'small class 16 does not exist');
  t.equal(d.inst.core.arenaRunAlloc(0, ArenaClass.node), 0, 'a run of zero slabs');
  d.inst.core.arenaRunFree(0, 3, ArenaClass.node);
  d.inst.core.arenaSmallFree(3, 0);
  d.check(); // nothing changed
  t.pass('no state change');
});
