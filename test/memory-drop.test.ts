// Dropping a compacted dataset gives its memory back (issue 8): through a
// Store with 2 threads, 100,000 x 128 inserted, half (then 99.8%) deleted,
// compacted, dropped; RSS must come back within 2 MiB of the baseline taken
// before the insert, with no GC of the caller's after that baseline.
//
// Each case runs in a fresh plain node child (scripts/drop-residue.ts, built
// here), outside tap's loaders, whose coverage heap would swamp 2 MiB. The
// child first runs a 2,000-vector dataset through the same calls
// (--warmup): in a fresh process the first large insert and compaction page
// in about 2 MiB of node's own code (file-backed, shared, no leak; measured
// in docs/memory-architecture.md), which alone would use up the bound. The
// warm-up does not hide the bug: at 5b186a0, the code the issue was filed
// against, the same warmed child ends +3.3 MiB (half) and +7.1 MiB (99.8%)
// above its baseline, the main thread's leftovers of the insert and delete.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
const BOUND_MIB = 2;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Residue {
  base: number;
  after: number;
  tookMs: number;
  changeMiB: Record<string, number>;
}

function run(fraction: number): Residue {
  const out = execFileSync(process.execPath, ['dist/scripts/drop-residue.js', String(fraction), '--warmup', `--bound=${BOUND_MIB}`], {
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
  t.test(`insert 100,000 x 128, delete ${label}, compact, drop: RSS back within ${BOUND_MIB} MiB`, async (t) => {
    const r = run(fraction);
    const over = (r.after - r.base) / MiB;
    t.comment(`RSS ${(r.base / MiB).toFixed(1)} MiB before the insert, ${(r.after / MiB).toFixed(1)} MiB ${r.tookMs} ms after the drop (${over >= 0 ? '+' : ''}${over.toFixed(2)}); change by mapping (MiB): ${JSON.stringify(r.changeMiB)}`);
    t.ok(over <= BOUND_MIB, `RSS within ${BOUND_MIB} MiB of the pre-insert baseline (${over.toFixed(2)} MiB above)`);
  });
}
