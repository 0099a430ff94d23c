// Core failures become the QuiverError they really are: a memory the engine
// refuses is MEMORY_LIMIT (not CORE_TRAP), each core status maps to its own
// code, a failed import leaves the target consistent, and an image whose
// end the checksum would not cover is refused.
import t from 'tap';
import { Index } from '../host/index.js';
import { HEADER_PTR, LAYOUT, PAGE_BYTES, STAT_FIELDS, type RawStats } from '../host/core/abi.js';
import { instantiateDebug } from '../host/core/module.js';
import { coreStatusError, Shard } from '../host/core/shard.js';
import { packIds } from '../host/ids.js';

t.test('each core status maps to its own code; CORE_TRAP stays for traps', async (t) => {
  t.equal(coreStatusError(LAYOUT.ERR_INVALID, 'x').code, 'QUIVER_ERR_INVALID_ARGUMENT');
  t.equal(coreStatusError(LAYOUT.ERR_NOT_FOUND, 'x').code, 'QUIVER_ERR_NOT_FOUND');
  t.equal(coreStatusError(LAYOUT.ERR_OUT_OF_MEMORY, 'x').code, 'QUIVER_ERR_MEMORY_LIMIT');
  t.equal(coreStatusError(LAYOUT.ERR_CORRUPT, 'x').code, 'QUIVER_ERR_CORRUPT_IMAGE');
  t.equal(coreStatusError(-99, 'x').code, 'QUIVER_ERR_CORE_ABI', 'a status the host does not know');
});

/** Runs `fn` while the engine refuses every new WebAssembly.Memory. */
function withoutMemory<T>(fn: () => T): T {
  const real = WebAssembly.Memory;
  (WebAssembly as { Memory: unknown }).Memory = function refuse(): never {
    throw new RangeError('WebAssembly.Memory(): could not allocate memory');
  };
  try {
    return fn();
  } finally {
    (WebAssembly as { Memory: unknown }).Memory = real;
  }
}

t.test('a memory the engine refuses is QUIVER_ERR_MEMORY_LIMIT, and changes nothing', async (t) => {
  const limit = { code: 'QUIVER_ERR_MEMORY_LIMIT' };
  t.throws(() => withoutMemory(() => new Index({ dim: 4 })), limit, 'a new index');
  const index = new Index({ dim: 4, M: 4, efConstruction: 16, build: 'debug', seed: 3 });
  const ids = Array.from({ length: 300 }, (_, i) => i);
  index.add(ids, ids.map((i) => [i % 7, i % 11, i % 13, 1]));
  index.remove(ids.filter((i) => i % 3 === 0));
  const image = index.toImage();
  t.throws(() => withoutMemory(() => Index.fromImage(image, { build: 'debug' })), limit, 'loading an image');
  const before = index.stats();
  const exact = (): number[] => Array.from(index.search([3, 3, 3, 1], 10, { ef: 1000 }).distances);
  const hits = exact();
  t.throws(() => withoutMemory(() => index.compact()), limit, 'a compaction');
  const after = index.stats();
  t.same([after.liveNodes, after.deletedNodes], [before.liveNodes, before.deletedNodes], 'the refused compaction kept every node');
  t.ok(ids.every((i) => index.has(i) === (i % 3 !== 0)), 'every live id is still there, no deleted one');
  t.same(exact(), hits, 'an exact search answers as before');
  t.ok(index.checkIntegrity().ok);
  t.equal(index.search([1, 1, 1, 1], 5).ids.length, 5, 'the index keeps serving');
  t.equal(index.compact().liveNodes, 200, 'and compacts once memory is there');
  index.dispose();
});

function readStats(memory: WebAssembly.Memory, core: { stats(out: number): void; ioPtr(): number }): RawStats {
  const out = core.ioPtr();
  core.stats(out);
  const f64 = new Float64Array(memory.buffer, out, STAT_FIELDS.length);
  return Object.fromEntries(STAT_FIELDS.map((k, i) => [k, f64[i]!])) as RawStats;
}

t.test('an import that runs out of memory leaves the target consistent', async (t) => {
  const dim = 4;
  const M = 2; // half the nodes get an upper link block
  const n = 60;
  const source = Shard.create({ dim, metric: 'l2', M, efConstruction: 16, ef: 16, seed: 11n, build: 'debug' });
  const ids = packIds(Array.from({ length: n }, (_, i) => i), true);
  const vectors = Float32Array.from({ length: n * dim }, (_, i) => (i * 7919) % 101);
  const payload = new Uint8Array(40_000).fill(7); // past 32 KiB: one slab run each
  for (let i = 0; i < n; i++) t.ok(source.insert(ids, i, vectors, i * dim, payload));
  const ioBytes = 64 * PAGE_BYTES;
  const live = source.core((c) => {
    c.repairRange(0, n);
    c.repairFinish();
    const planned = c.compactPlan();
    c.ioReserve(ioBytes);
    return planned;
  });
  const exported = source.core((c) => c.exportNodes(0, n, ioBytes));
  t.equal(exported, live, 'every record fits one io buffer');
  const used = source.core((c) => c.ioUsed());
  const records = source.bytes(source.core((c) => c.ioPtr()), used).slice();
  const view = new DataView(records.buffer);
  const stride = source.stats().stride;
  const upperList = LAYOUT.UPPER_LINKS + LAYOUT.LINK_BYTES * M;
  // level and blob bytes of each record, in order
  const recs: { level: number; blob: number }[] = [];
  for (let off = 0; off < used;) {
    const level = (view.getUint32(off + LAYOUT.NODE_META, true) >>> LAYOUT.META_LEVEL_SHIFT) & LAYOUT.META_LEVEL_MASK;
    const blob = view.getUint32(off + LAYOUT.NODE_PAYLOAD, true);
    recs.push({ level, blob });
    off += stride + level * upperList + blob;
  }
  t.equal(recs.length, exported);

  const target = (maximum?: number): { memory: WebAssembly.Memory; core: ReturnType<typeof instantiateDebug> } => {
    const memory = maximum === undefined ? new WebAssembly.Memory({ initial: 1 }) : new WebAssembly.Memory({ initial: 1, maximum });
    const core = instantiateDebug(memory);
    t.equal(core.init(dim, 0, M, 16, 11n, live, 0, 0), 0);
    t.not(core.ioReserve(ioBytes), 0);
    return { memory, core };
  };
  const basePages = target().memory.buffer.byteLength / PAGE_BYTES;
  let leakCase = 0;
  for (let extra = 1; extra <= 24; extra++) {
    const { memory, core } = target(basePages + extra);
    new Uint8Array(memory.buffer).set(records, core.ioPtr());
    const status = core.importNodes(exported);
    if (status === exported) break;
    t.equal(status, LAYOUT.ERR_OUT_OF_MEMORY, `${extra} spare pages: out of memory`);
    const s = readStats(memory, core);
    const done = recs.slice(0, s.slots);
    const failed = recs[s.slots]!;
    if (failed.level > 0) leakCase++;
    const header = new Uint32Array(memory.buffer, HEADER_PTR, LAYOUT.HEADER_BYTES / 4);
    t.equal(header[LAYOUT.H_EXACT_GROWTH / 4], 0, `${extra}: growth is back to normal`);
    t.equal(s.live, s.slots, `${extra}: every slot taken is a live node`);
    t.equal(s.linksUsed, done.reduce((a, r) => a + r.level * upperList, 0), `${extra}: no link block beyond the imported nodes'`);
    t.equal(s.payloadUsed, done.filter((r) => r.blob > 0).length * PAGE_BYTES, `${extra}: no payload beyond the imported nodes'`);
    t.equal(s.liveBytes, s.live * stride + s.linksUsed + s.payloadUsed, `${extra}: live bytes match what is held`);
  }
  t.ok(leakCase > 0, 'some failure hit a node with an upper link block');
  source.dispose();
});

t.test('an image whose length the checksum words do not cover is refused', async (t) => {
  const index = new Index({ dim: 4, M: 4, seed: 5 });
  index.add([1, 2, 3], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]);
  const image = index.toImage();
  // four more bytes, in the header's length fields too, then resealed: the
  // last bytes sit outside every hashed u64 word
  const longer = new Uint8Array(image.byteLength + 4);
  longer.set(image);
  const view = new DataView(longer.buffer);
  view.setUint32(HEADER_PTR + LAYOUT.H_ARENA_TOP, longer.byteLength, true);
  view.setUint32(HEADER_PTR + LAYOUT.H_IMAGE_BYTES, longer.byteLength, true);
  resealed(longer);
  longer[longer.byteLength - 1] = 0xaa; // a change the checksum cannot see
    // the release build: the debug build's assert in imageHash would trap
  t.throws(() => Index.fromImage(longer), { code: 'QUIVER_ERR_CORRUPT_IMAGE', message: /checksum or header/ });
  t.equal(Index.fromImage(image).size, 3, 'the real image loads');
  index.dispose();
});

// The core's image hash (assembly/index.ts imageHash), in JS.
function resealed(image: Uint8Array): Uint8Array {
  const h = HEADER_PTR;
  const checksum = LAYOUT.H_CHECKSUM; // the high half of the u64 word before it
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const mask = (1n << 64n) - 1n;
  let acc = 0xcbf29ce484222325n;
  for (let p = h; p + 8 <= image.byteLength; p += 8) {
    let w = view.getBigUint64(p, true);
    if (p === h + checksum - 4) w &= 0xffffffffn;
    acc = ((acc ^ w) * 0x100000001b3n) & mask;
    acc ^= acc >> 29n;
  }
  view.setUint32(h + checksum, Number((acc ^ (acc >> 32n)) & 0xffffffffn), true);
  return image;
}

t.test('an image of a previous layout (4: no quantized records) is refused with a coded version error', async (t) => {
  const index = new Index({ dim: 4, M: 4, seed: 5 });
  index.add([1], [[1, 2, 3, 4]]);
  const image = index.toImage();
  new DataView(image.buffer, image.byteOffset).setUint32(HEADER_PTR + LAYOUT.H_VERSION, 4, true);
  t.throws(() => Index.fromImage(resealed(image)), { code: 'QUIVER_ERR_CORRUPT_IMAGE', message: /layout version 4, this build reads 5/ });
  index.dispose();
});
