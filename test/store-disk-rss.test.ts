// RSS per vector with alwaysRam: false (issue 11's bar: <= 300 bytes at
// d = 128): a durable store in a process of its own (scripts/disk-rss.ts),
// 100,000 x 128 in two shards (~50,000 each, far past the spill at 1,024),
// RSS polled with a deadline until the delta per vector is within the bar;
// alwaysRam: true measured the same way for comparison. RSS must also agree
// with the committed-bytes accounting (the shards' linear memories) within
// 4 MiB or 15%: what the store reports as held is what the process holds.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDist, runPlain } from './helpers/plain-node.js';

const N = 100_000;
const BOUND = 300;
const MiB = 1024 * 1024;

interface Reading {
  mode: string;
  rssDelta: number;
  perVector: number;
  committedDelta: number;
  committedPerVector: number;
  live: number;
  settleMs: number;
}

buildDist();

function measure(mode: 'false' | 'true'): Reading {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-disk-rss-'));
  try {
    return runPlain<Reading>('dist/scripts/disk-rss.js', [join(dir, 'data'), mode, String(N), String(BOUND)], 600_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const disk = measure('false');
const ram = measure('true');
const line = (r: Reading): string =>
  `alwaysRam ${r.mode}: RSS +${(r.rssDelta / MiB).toFixed(1)} MiB = ${r.perVector.toFixed(0)} B/vector; committed +${(r.committedDelta / MiB).toFixed(1)} MiB = ${r.committedPerVector.toFixed(0)} B/vector (settled in ${r.settleMs} ms)`;
t.comment(line(disk));
t.comment(line(ram));

t.test('alwaysRam false: RSS per vector at most 300 bytes at d=128', async (t) => {
  t.equal(disk.live, N, 'every vector went in');
  t.ok(disk.perVector <= BOUND, `${disk.perVector.toFixed(0)} B/vector <= ${BOUND}`);
  t.ok(disk.perVector < ram.perVector / 2, `under half of alwaysRam true's ${ram.perVector.toFixed(0)} B/vector`);
});

t.test('RSS agrees with the committed-bytes accounting', async (t) => {
  for (const r of [disk, ram]) {
    const tolerance = Math.max(4 * MiB, 0.15 * r.committedDelta);
    t.ok(Math.abs(r.rssDelta - r.committedDelta) <= tolerance,
      `alwaysRam ${r.mode}: RSS delta ${(r.rssDelta / MiB).toFixed(1)} MiB vs committed ${(r.committedDelta / MiB).toFixed(1)} MiB (tolerance ${(tolerance / MiB).toFixed(1)} MiB)`);
  }
});
