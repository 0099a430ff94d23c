// Dropping a compacted dataset gives its memory back (issue 8): through a
// Store with 2 threads, 100,000 x 128 inserted, half (then 99.8%) deleted,
// compacted, dropped, with no GC of the caller's after the baseline.
//
// Each case runs in a fresh plain node child (scripts/drop-residue.ts, built
// here), outside tap's loaders, whose own allocations and GCs would hide what
// the Store leaves on the main thread. What is asserted: the ArrayBuffer
// bytes the main thread holds are back at the pre-insert baseline after the
// drop. At 5b186a0 (the code the issue was filed against) they stayed +2.9
// MiB (half) and +3.8 MiB (99.8%) above it: the packed ids of the insert and
// the delete, garbage no GC collected while the process idled (RSS ended
// +7.5 and +14.4 MiB over the baseline in that run). With the drop's
// main-thread GC they are back exactly (0.00 MiB).
//
// RSS itself is printed, not asserted: it moves by tens of MiB with V8's
// sizing of the main heap, and the glibc residue after a drop (about 3.6 MiB
// of [heap] and 1.5-2.6 MiB of thread arenas, measured in
// docs/memory-architecture.md) is still open, so the 2 MiB RSS promise is not
// yet met.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
/** Before the fix the main thread kept 3-4 MiB of buffers (one packed id is 20 bytes). */
const MAX_BUFFERS = 0.5 * MiB;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Residue {
  base: number;
  after: number;
  buffersBefore: number;
  buffersAfter: number;
  tookMs: number;
  changeMiB: Record<string, number>;
}

function run(fraction: number): Residue {
  const out = execFileSync(process.execPath, ['dist/scripts/drop-residue.js', String(fraction), '--warmup'], {
    cwd: ROOT, encoding: 'utf8', timeout: 120_000,
    // the child must not inherit tap's loaders or its coverage collection
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && k !== 'NODE_V8_COVERAGE')),
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Residue;
}

t.before(() => {
  // the child runs the compiled host: compile what is in the tree now
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
});

for (const [label, fraction] of [['half', 0.5], ['99.8%', 0.998]] as const) {
  t.test(`insert 100,000 x 128, delete ${label}, compact, drop: the main thread keeps none of it`, async (t) => {
    const r = run(fraction);
    const kept = r.buffersAfter - r.buffersBefore;
    const over = (r.after - r.base) / MiB;
    t.comment(`main-thread ArrayBuffers ${(r.buffersBefore / MiB).toFixed(2)} MiB before the insert, ${(r.buffersAfter / MiB).toFixed(2)} after the drop`);
    t.comment(`RSS ${(r.base / MiB).toFixed(1)} MiB before the insert, ${(r.after / MiB).toFixed(1)} MiB ${r.tookMs} ms after the drop (${over >= 0 ? '+' : ''}${over.toFixed(2)}); change by mapping (MiB): ${JSON.stringify(r.changeMiB)}`);
    t.ok(kept <= MAX_BUFFERS, `main-thread ArrayBuffer bytes within ${MAX_BUFFERS / MiB} MiB of the baseline (${(kept / MiB).toFixed(2)} MiB above)`);
  });
}
