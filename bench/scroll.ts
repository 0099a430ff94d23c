/**
 * bench:scroll — what does a scroll page cost on a large dataset?
 *
 *   npm run bench:scroll -- [--n 1000000] [--limit 100] [--pages P] [--threads 2] [--json FILE] [--small]
 *                           [--lib PATH --label NAME]
 *
 * Builds n points of dim 4 (M 4, efConstruction 16: the graph is not the
 * question) in a 2-thread store, then pages through it with scroll() in
 * pages of `limit`: the whole dataset, or the first P pages with --pages.
 * Prints pages/s, the first page (which builds each shard's sorted id list)
 * and a full-scroll estimate. --lib runs the same bench against another
 * build's host/index.js (the "before" numbers in docs come from the old
 * code with --pages, since there every page sorts every id).
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    n: { type: 'string' },
    limit: { type: 'string', default: '100' },
    pages: { type: 'string' },
    threads: { type: 'string', default: '2' },
    json: { type: 'string' },
    small: { type: 'boolean', default: false },
    lib: { type: 'string' },
    label: { type: 'string' },
  },
});

const DIM = 4;
const BATCH = 50_000;

interface Row {
  label: string;
  n: number;
  limit: number;
  pages: number;
  points: number;
  firstPageMs: number;
  seconds: number;
  pagesPerSecond: number;
  fullScrollSeconds: number;
  complete: boolean;
}

async function main(): Promise<void> {
  const n = Number(values.n ?? (values.small ? 50_000 : 1_000_000));
  const limit = Number(values.limit);
  const maxPages = values.pages === undefined ? Infinity : Number(values.pages);
  const threads = Number(values.threads);
  const lib = values.lib === undefined ? '../host/index.js' : pathToFileURL(values.lib).href;
  const label = values.label ?? (values.lib === undefined ? 'this build' : values.lib);
  const { Store } = (await import(lib)) as typeof import('../host/index.js');

  const store = await Store.open({ threads, compaction: { intervalMs: 0 } });
  try {
    await store.createDataset('s', { dim: DIM, M: 4, efConstruction: 16 });
    const built = performance.now();
    const vectors = new Float32Array(BATCH * DIM);
    for (let at = 0; at < n; at += BATCH) {
      const m = Math.min(BATCH, n - at);
      // ids in a scrambled order, so no shard receives them sorted
      const ids = Float64Array.from({ length: m }, (_, i) => ((at + i) * 2_654_435_761) % 4_294_967_311);
      for (let i = 0; i < m * DIM; i++) vectors[i] = ((at * DIM + i) * 0.618_034) % 1;
      await store.insert('s', ids, vectors.subarray(0, m * DIM));
    }
    process.stderr.write(`built ${n} points in ${((performance.now() - built) / 1000).toFixed(1)} s\n`);

    let offset: number | bigint | string | undefined;
    let pages = 0;
    let points = 0;
    let firstPageMs = 0;
    let last = -1;
    const started = performance.now();
    do {
      const t0 = performance.now();
      const page = await store.scroll('s', { limit, withVector: false, withPayload: false, ...(offset === undefined ? {} : { offset }) });
      if (pages === 0) firstPageMs = performance.now() - t0;
      for (const p of page.points) {
        if ((p.id as number) <= last) throw new Error(`scroll out of order at ${String(p.id)}`);
        last = p.id as number;
      }
      points += page.points.length;
      pages++;
      offset = page.nextOffset;
    } while (offset !== undefined && pages < maxPages);
    const seconds = (performance.now() - started) / 1000;
    const complete = offset === undefined;
    if (complete && points !== n) throw new Error(`a full scroll returned ${points} of ${n} points`);
    // pages after the first: the steady cost of a page
    const steady = pages > 1 ? (pages - 1) / (seconds - firstPageMs / 1000) : pages / seconds;
    const totalPages = Math.ceil(n / limit);
    const row: Row = {
      label, n, limit, pages, points, firstPageMs, seconds,
      pagesPerSecond: steady,
      fullScrollSeconds: complete ? seconds : firstPageMs / 1000 + (totalPages - 1) / steady,
      complete,
    };
    print(row);
    if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(row, null, 2)}\n`);
  } finally {
    await store.close();
  }
}

function print(r: Row): void {
  const cols: [string, string][] = [
    ['build', r.label],
    ['points', r.n.toLocaleString('en')],
    ['limit', String(r.limit)],
    ['pages run', `${r.pages.toLocaleString('en')}${r.complete ? ' (all)' : ''}`],
    ['first page ms', r.firstPageMs.toFixed(1)],
    ['pages/s', r.pagesPerSecond.toFixed(1)],
    [r.complete ? 'full scroll s' : 'full scroll s (est.)', r.fullScrollSeconds.toFixed(1)],
  ];
  const w = cols.map(([h, v]) => Math.max(h.length, v.length));
  console.log(cols.map(([h], i) => h.padEnd(w[i]!)).join(' | '));
  console.log(w.map((x) => '-'.repeat(x)).join('-|-'));
  console.log(cols.map(([, v], i) => v.padEnd(w[i]!)).join(' | '));
}

await main();
