// RSS per vector with alwaysRam: false (issue 11's target: <= 300 bytes at
// d = 128): a durable store in a process of its own (scripts/disk-rss.ts),
// 100,000 x 128 in two shards (~50,000 each, far past the spill at 1,024),
// after a warm-up dataset inserted and dropped, RSS polled with a deadline;
// alwaysRam: true measured the same way. Printed: RSS, the WebAssembly
// memories' resident bytes (smaps) and the committed bytes, per vector.
//
// The target is MISSED by this core: the spilled shard's memory alone is
// ~318 B a vector resident (the 290 B node record, 21 B of id map at this
// size, 6.5 B of scratch, 4.6 B of upper links), so the bars asserted are
// what it holds to: resident WebAssembly bytes within the admission
// estimate insertBytesPerVector(16, 128, true, false) = 329 B, RSS within
// 400 B and under half of alwaysRam true's, and RSS agreeing with the
// committed-bytes accounting within 8 MiB or 25%.
//
// glibc's allocator, both ways: pinned (MALLOC_MMAP_THRESHOLD_=131072,
// docs/runbooks/high-memory-usage.md) and with its default, dynamic mmap
// threshold. With the default, a durable insert's log body and group buffer
// (1.3 MiB a part) used to come from malloc; each one freed raised the
// threshold, and the later ones stayed in the heap and the thread arenas:
// RSS measured 465-722 B a vector against 327 pinned. They are V8-mapped
// now (host/memory/transient.ts), and the default run measured 376-386 B
// (pinned 328-352), so both are bounded, the default within DEFAULT_BOUND.
// Only the pinned run is held to the accounting both ways: in the test's
// children the default run's baseline sometimes still held the warm-up's
// residue, which went back during the run (RSS +23.4 MiB against 32.4 MiB
// of memories).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { insertBytesPerVector } from '../host/core/abi.js';
import { buildDist, plainEnv, runPlain } from './helpers/plain-node.js';

const N = 100_000;
const TARGET = 300;
// measured 328-352 B pinned (the memories' 318 plus a few MiB of host)
const RSS_BOUND = 400;
// measured 376-386 B with glibc's default threshold (16 B of main heap, 30-40 of thread arenas)
const DEFAULT_BOUND = 440;
const MiB = 1024 * 1024;

interface Reading {
  mode: string;
  rssDelta: number;
  perVector: number;
  committedDelta: number;
  committedPerVector: number;
  wasmResidentDelta: number;
  arena: Record<string, number>;
  live: number;
  settleMs: number;
}

buildDist();

function measure(mode: 'false' | 'true', pinned = true): Reading {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-disk-rss-'));
  try {
    const env = plainEnv(pinned ? { MALLOC_MMAP_THRESHOLD_: '131072' } : {});
    return runPlain<Reading>('dist/scripts/disk-rss.js', [join(dir, 'data'), mode, String(N), String(TARGET)], 600_000, env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const disk = measure('false');
const ram = measure('true');
const glibcDefault = measure('false', false);
const line = (r: Reading): string =>
  `alwaysRam ${r.mode}: RSS +${(r.rssDelta / MiB).toFixed(1)} MiB = ${r.perVector.toFixed(0)} B/vector; WebAssembly resident ${(r.wasmResidentDelta / N).toFixed(0)} B/vector `
  + `(${Object.entries(r.arena).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}); committed ${r.committedPerVector.toFixed(0)} B/vector (settled in ${r.settleMs} ms)`;
t.comment(line(disk));
t.comment(line(ram));
t.comment(`glibc's default mmap threshold: ${line(glibcDefault)}`);
t.comment(`issue target <= ${TARGET} B/vector: WebAssembly alone ${(disk.wasmResidentDelta / N).toFixed(0)} (${disk.wasmResidentDelta / N <= TARGET ? 'met' : 'missed'}), RSS ${disk.perVector.toFixed(0)}`);

t.test('alwaysRam false: the shards hold only the codes; RSS per vector far under alwaysRam true', async (t) => {
  t.equal(disk.live, N, 'every vector went in');
  const estimate = insertBytesPerVector(16, 128, true, false);
  t.ok(disk.wasmResidentDelta / N <= estimate, `WebAssembly resident ${(disk.wasmResidentDelta / N).toFixed(0)} B/vector <= the admission estimate ${estimate}`);
  t.ok(disk.perVector <= RSS_BOUND, `RSS ${disk.perVector.toFixed(0)} B/vector <= ${RSS_BOUND}`);
  t.equal(glibcDefault.live, N, 'every vector went in (glibc default)');
  t.ok(glibcDefault.perVector <= DEFAULT_BOUND, `with glibc's default mmap threshold: RSS ${glibcDefault.perVector.toFixed(0)} B/vector <= ${DEFAULT_BOUND}`);
  t.ok(disk.wasmResidentDelta < ram.wasmResidentDelta / 2, `resident WebAssembly bytes under half of alwaysRam true's ${(ram.wasmResidentDelta / N).toFixed(0)} B/vector`);
});

// alwaysRam true's RSS delta is printed, not held to its accounting: its
// host part moved by -24..+20 MiB between runs of the same build (the
// baseline's, after the warm-up), against its 83 MiB of memories
t.test('RSS agrees with the committed-bytes accounting', async (t) => {
  const tolerance = Math.max(8 * MiB, 0.25 * disk.committedDelta);
  t.ok(Math.abs(disk.rssDelta - disk.committedDelta) <= tolerance,
    `alwaysRam false: RSS delta ${(disk.rssDelta / MiB).toFixed(1)} MiB vs committed ${(disk.committedDelta / MiB).toFixed(1)} MiB (tolerance ${(tolerance / MiB).toFixed(1)} MiB)`);
  for (const r of [disk, ram]) {
    t.ok(r.wasmResidentDelta <= r.committedDelta, `alwaysRam ${r.mode}: the memories' resident bytes are within what is committed`);
  }
});
