// The lifecycle and memory promises on a durable store (issue 9): 100
// open/write/close cycles on one data directory leave threads, handles and
// file descriptors at baseline and RSS within 5%; a drop gives the memory
// back; after delete-half + compaction + checkpoint + restart the shards
// hold what the live data needs. Both run in plain node children
// (scripts/durable-cycles.ts, scripts/durable-memory.ts, built fresh here):
// under tap's loaders each worker thread takes ~1 s of CPU to start and the
// main heap is large and noisy (see test/store-leak.test.ts).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDist, plainEnv, plainNode, ROOT } from './fixtures/durable-driver.js';

const MiB = 1024 * 1024;
const CYCLES = Number(process.env.QUIVER_LEAK_CYCLES ?? 100);

buildDist();

function runChild(script: string, args: string[]): Record<string, unknown> {
  const out = execFileSync(...plainNode(`dist/scripts/${script}`, args), { cwd: ROOT, encoding: 'utf8', timeout: 400_000, env: plainEnv() });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

interface Measure {
  threads: number;
  resources: Record<string, number>;
  fds: number;
  rss: number;
  footprint: number;
}

t.test(`${CYCLES} open/write/close cycles on one data directory: threads, handles, file descriptors at baseline, RSS within 5%`, async (t) => {
  const path = mkdtempSync(join(tmpdir(), 'quiver-cycles-'));
  t.teardown(() => rmSync(path, { recursive: true, force: true }));
  const r = runChild('durable-cycles.js', [path, String(CYCLES)]) as { before: Measure; after: Measure; samples: number[]; settled: number[]; counts: number[]; expected: number };
  t.equal(r.counts.length, CYCLES, 'every cycle reopened the directory and found the count it expected');
  t.ok(r.counts.every((c, i) => i === 0 || c > r.counts[i - 1]!), 'the count grew every cycle (each cycle saw the writes of the one before)');
  t.equal(r.after.threads, r.before.threads, `OS threads back at baseline (${r.before.threads})`);
  t.same(r.after.resources, r.before.resources, 'active handles and requests back at baseline');
  t.equal(r.after.fds, r.before.fds, `open file descriptors back at baseline (${r.before.fds})`);
  const growth = (r.after.rss - r.before.rss) / r.before.rss;
  t.comment(`RSS ${(r.before.rss / MiB).toFixed(1)} -> ${(r.after.rss / MiB).toFixed(1)} MiB (${(growth * 100).toFixed(1)}%); footprint outside the JS heap ${(r.before.footprint / MiB).toFixed(1)} -> ${(r.after.footprint / MiB).toFixed(1)} MiB`);
  const half = Math.floor(r.samples.length / 2);
  const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  t.comment(`RSS right after each cycle: first half ${(avg(r.samples.slice(0, half)) / MiB).toFixed(1)} MiB, second half ${(avg(r.samples.slice(half)) / MiB).toFixed(1)} MiB`);
  t.comment(`RSS settled every 20 cycles: ${r.settled.map((b) => (b / MiB).toFixed(1)).join(', ')} MiB`);
  t.ok(growth < 0.05, 'RSS within 5% of the baseline');
  const datasets = readdirSync(join(path, 'datasets'));
  t.equal(datasets.length, 1, 'one dataset directory on disk');
});

t.test('the memory promise on a durable store: drop gives RSS back; after delete-half + compact + checkpoint + restart the shards hold what the live half needs', async (t) => {
  const path = mkdtempSync(join(tmpdir(), 'quiver-memory-'));
  t.teardown(() => rmSync(path, { recursive: true, force: true }));
  const r = runChild('durable-memory.js', [path, '50000']) as {
    dropBase: number; dropPeak: number; afterDrop: number; beforeDelete: number; afterReopen: number;
    wasmBase?: { count: number; resident: number }; wasmAfter?: { count: number; resident: number }; mallocChange: number;
    recovery: { dataset: string; error?: string }[];
    full: { count: number; committedBytes: number };
    reopened: { count: number; deleted: number; committedBytes: number; liveBytes: number };
    fresh: { count: number; committedBytes: number; liveBytes: number };
  };
  const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
  t.comment(`drop: baseline ${mib(r.dropBase)}, with 50000 x 64 ${mib(r.dropPeak)}, after the drop ${mib(r.afterDrop)}`);
  t.ok(r.dropPeak > r.dropBase + 5 * MiB, 'the dataset was big enough to see');
  // What the drop must give back is told apart exactly: the dataset's
  // WebAssembly memories, unmapped, none resident. Whole RSS also moves with
  // V8's sizing of the main and worker heaps and with malloc: under loaded
  // CI runs it stayed +2.7 and +4.4 MiB above after 10 s of polling (the
  // memories gone), so it is bounded at 2 MiB or 15% of what the dataset
  // added, whichever is more. malloc's share is printed: a durable store's
  // measured +3.7 MiB once (an in-memory Store's is held to 3 MiB by
  // test/memory-drop.test.ts); what it holds there is not known yet.
  t.same(r.wasmAfter, r.wasmBase, `the dropped shards' memories are unmapped (${r.wasmAfter?.count} mapped, ${mib(r.wasmAfter?.resident ?? 0)} resident)`);
  t.comment(`malloc's [heap] + thread arenas after the drop: ${mib(r.mallocChange)} from the baseline`);
  const rssBound = Math.max(2 * MiB, 0.15 * (r.dropPeak - r.dropBase));
  t.ok(r.afterDrop <= r.dropBase + rssBound, `after a drop RSS is back within ${mib(rssBound)} of the baseline`);

  t.comment(`50000 x 64: committed ${mib(r.full.committedBytes)}, RSS of a restart ${mib(r.beforeDelete)}; a restart after delete-half + compact + checkpoint: committed ${mib(r.reopened.committedBytes)}, RSS ${mib(r.afterReopen)}; a fresh in-memory store of the live half: committed ${mib(r.fresh.committedBytes)}`);
  t.same(r.recovery.filter((x) => x.error !== undefined), [], 'the reopen recovered without errors');
  t.equal(r.reopened.count, 25_000, 'the live half is there');
  t.equal(r.reopened.deleted, 0, 'and no tombstones (the compacted image was the checkpoint)');
  t.equal(r.fresh.count, 25_000);
  const ratio = r.reopened.committedBytes / r.fresh.committedBytes;
  t.ok(Math.abs(ratio - 1) <= 0.1, `the reopened shards commit what the live half needs: ${ratio.toFixed(3)}x a fresh store holding only it (within 10%)`);
  // each restart is a fresh process opening the directory
  const saved = r.full.committedBytes - r.reopened.committedBytes;
  t.ok(r.afterReopen < r.beforeDelete - saved / 2, `a restart after the delete takes less RSS than one before it, by at least half the committed bytes the compaction saved (${mib(r.beforeDelete - r.afterReopen)} less; saved ${mib(saved)})`);
});
