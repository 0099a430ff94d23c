import t from 'tap';
import { QuiverError, Store, collectGarbage } from '../host/index.js';
import { rng } from './helpers/data.js';

// maxMemoryBytes: the tuner's admission control. With evictionPolicy
// 'reject' an insert stream past the limit is refused with
// QUIVER_ERR_MEMORY_LIMIT, nothing stored is lost, RSS stays near the limit,
// and writes come back once RSS is under the low watermark (90% of the
// limit). With 'lru' the least recently used other dataset is dropped and
// the write goes through.
//
// The limit is "RSS with a store open + headroom". A store's worker threads
// hold a few hundred MiB under the test's TypeScript loader, so the RSS of
// an open store is measured first with a probe store of the same size,
// closed again before the real one opens.

const MiB = 1024 * 1024;
const DIM = 256;
const BATCH = 5000;
const PARAMS = { dim: DIM, M: 16, efConstruction: 16, shards: 2 };
const rss = (): number => process.memoryUsage.rss();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (b: number): string => (b / MiB).toFixed(1);
const isLimit = (err: unknown): boolean => err instanceof QuiverError && err.code === 'QUIVER_ERR_MEMORY_LIMIT';

/**
 * Writes the vectors of batch `b` into `out` (one buffer serves the whole
 * stream, so the main thread's garbage does not blur RSS): points around 20
 * gaussian centres in [-1, 1]^DIM, seeded by `b`, so a batch can be made
 * again for spot checks.
 */
function fillBatch(b: number, out: Float32Array = new Float32Array(BATCH * DIM)): Float32Array {
  const r = rng(1000 + b);
  const centres = Float32Array.from({ length: 20 * DIM }, () => r() * 2 - 1);
  for (let i = 0; i < BATCH; i++) {
    const c = Math.floor(r() * 20);
    for (let j = 0; j < DIM; j++) {
      const gauss = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
      out[i * DIM + j] = centres[c * DIM + j]! + gauss * 0.15;
    }
  }
  return out;
}
const batch = (b: number): Float32Array => fillBatch(b);
const idsOf = (b: number): Uint32Array => Uint32Array.from({ length: BATCH }, (_, i) => b * BATCH + i);

/** RSS of this process with a 2-thread store open and warmed up. */
async function rssWithStore(): Promise<number> {
  const probe = await Store.open({ threads: 2, compaction: { intervalMs: 0 } });
  await probe.createDataset('probe', PARAMS);
  await probe.insert('probe', idsOf(0), batch(0));
  await probe.search('probe', batch(0).subarray(0, DIM), 5);
  await probe.dropDataset('probe');
  await probe.releaseMemory();
  collectGarbage();
  await sleep(500);
  const now = rss();
  await probe.close();
  collectGarbage();
  await sleep(300);
  return now;
}

/** Samples RSS every 20 ms until stopped; returns the highest reading. */
function sampler(): { stop: () => number; sample: () => void } {
  let max = rss();
  const sample = (): void => {
    max = Math.max(max, rss());
  };
  const timer = setInterval(sample, 20);
  return { sample, stop: () => (clearInterval(timer), sample(), max) };
}

function metricValue(text: string, line: RegExp): number | undefined {
  for (const l of text.split('\n')) {
    const m = line.exec(l);
    if (m !== null) return Number(m[1]);
  }
  return undefined;
}

t.test("evictionPolicy 'reject': refused past the limit, nothing lost, writes return under the low watermark", async (t) => {
  const limit = (await rssWithStore()) + 150 * MiB;
  const store = await Store.open({
    threads: 2, maxMemoryBytes: limit, evictionPolicy: 'reject', compaction: { intervalMs: 0 }, tuner: { tunerIntervalMs: 250 },
  });
  t.teardown(() => store.close());
  const decisions: string[] = [];
  store.on('tuner', (e: { decision: string }) => decisions.push(e.decision));
  await store.createDataset('fill', PARAMS);
  const startRss = rss();
  t.comment(`limit ${mib(limit)} MiB; RSS with the store open ${mib(startRss)} MiB (headroom ${mib(limit - startRss)} MiB)`);
  t.ok(limit - startRss > 100 * MiB, 'the store starts well under the limit');

  const watch = sampler();
  const buffer = new Float32Array(BATCH * DIM);
  let accepted = 0;
  let refusal: unknown;
  const afterBatch: number[] = [];
  for (let b = 0; b < 80; b++) {
    try {
      const { inserted } = await store.insert('fill', idsOf(b), fillBatch(b, buffer));
      if (inserted !== BATCH) t.fail(`batch ${b}: inserted ${inserted}`);
      accepted++;
    } catch (err) {
      refusal = err;
      break;
    } finally {
      watch.sample();
      afterBatch.push(rss());
    }
  }
  const total = accepted * BATCH;
  t.ok(isLimit(refusal), `the stream was refused with QUIVER_ERR_MEMORY_LIMIT after ${accepted} batches`);
  t.equal((refusal as QuiverError | undefined)?.applied, 0, 'the refused batch wrote nothing');
  t.ok(accepted >= 10, 'a good part of the headroom was usable');

  // hysteresis: RSS is still near the limit, so even a one-vector write waits
  if (rss() >= 0.9 * limit) {
    await t.rejects(store.insert('fill', [10_000_000], batch(0).subarray(0, DIM)), { code: 'QUIVER_ERR_MEMORY_LIMIT' },
      'above the low watermark even a small write stays refused');
  }

  // everything accepted before is still there
  t.equal(await store.count('fill'), total, 'count equals the vectors accepted');
  for (const b of [0, Math.floor(accepted / 2), accepted - 1]) {
    const vectors = batch(b);
    const rows = [0, 1234, BATCH - 1];
    const got = await store.get('fill', rows.map((i) => b * BATCH + i));
    rows.forEach((i, j) => t.same(got[j], vectors.slice(i * DIM, (i + 1) * DIM), `batch ${b} row ${i}: stored vector intact`));
    // ef above a shard's size makes the search exhaustive (the pinned tree
    // reaches every node): an exact check, whatever the graph's quality at
    // efConstruction 16 on 256 dimensions
    const hit = await store.search('fill', vectors.subarray(BATCH / 2 * DIM, (BATCH / 2 + 1) * DIM), 1, { ef: 100_000 });
    t.same(hit.ids, [b * BATCH + BATCH / 2], `batch ${b}: a stored vector finds itself`);
  }
  const maxRss = watch.stop();
  t.comment(`${accepted} batches of ${BATCH} x ${DIM} accepted (${total} vectors), refused at batch ${accepted + 1}; ` +
    `RSS after each batch (MiB): ${afterBatch.map((x) => (x / MiB).toFixed(0)).join(' ')}`);
  t.comment(`max RSS ${mib(maxRss)} MiB = ${((maxRss / limit) * 100).toFixed(1)}% of the limit`);
  t.ok(maxRss <= 1.1 * limit, 'RSS never more than 10% over the limit');
  t.ok(decisions.includes('reject-writes'), "a 'tuner' event with decision 'reject-writes'");
  const rejections = metricValue(await store.metrics(), /^quiver_memory_limit_rejections_total (\S+)$/);
  t.ok(rejections !== undefined && rejections > 0, `quiver_memory_limit_rejections_total > 0 (${rejections})`);

  // make room: delete 90%, compact, GC; writes return once RSS is under 90%
  // of the limit
  const doomed = Array.from({ length: total }, (_, i) => i).filter((i) => i % 10 !== 0);
  t.same(await store.delete('fill', doomed), { deleted: doomed.length }, 'deletes work while writes are refused');
  const report = await store.compact('fill');
  let now = rss();
  for (const end = Date.now() + 20_000; now >= 0.9 * limit && Date.now() < end;) {
    await store.releaseMemory();
    collectGarbage();
    await sleep(250);
    now = rss();
  }
  t.comment(`after deleting 90% and compacting (committed ${mib(report.committedBefore)} -> ${mib(report.committedAfter)} MiB): ` +
    `RSS ${mib(now)} MiB = ${((now / limit) * 100).toFixed(1)}% of the limit`);
  t.ok(now < 0.9 * limit, 'RSS fell below the low watermark');
  await sleep(600); // a tuner tick may flip the state first; admission does it otherwise
  t.same(await store.insert('fill', idsOf(999), batch(999)), { inserted: BATCH }, 'writes are accepted again');
  t.ok(decisions.includes('accept-writes'), "a 'tuner' event with decision 'accept-writes'");
  t.equal(await store.count('fill'), total - doomed.length + BATCH);
});

type Asserts = Pick<typeof t, 'comment' | 'equal' | 'teardown'>;

interface LruRun {
  evicted: string[];
  decisions: { decision: string; dataset?: string; freedBytes?: number }[];
  error: unknown;
  left: string[];
  bAccepted: number;
  bCount: number;
}

/**
 * Datasets 'a' then 'c' are filled, then 'a' is searched: 'c' is now the
 * least recently used (creation order would pick 'a'). 'b' is then filled
 * until the first eviction (or a refusal).
 */
async function lruRun(t: Asserts, tunerIntervalMs: number): Promise<LruRun> {
  const limit = (await rssWithStore()) + 120 * MiB;
  const store = await Store.open({ threads: 2, maxMemoryBytes: limit, evictionPolicy: 'lru', compaction: { intervalMs: 0 }, tuner: { tunerIntervalMs } });
  t.teardown(() => store.close());
  const evicted: string[] = [];
  const decisions: LruRun['decisions'] = [];
  store.on('eviction', (e: { dataset: string }) => evicted.push(e.dataset));
  store.on('tuner', (e: LruRun['decisions'][number]) => decisions.push(e));
  const buffer = new Float32Array(BATCH * DIM);
  let b = 0;
  for (const name of ['a', 'c']) {
    await store.createDataset(name, PARAMS);
    for (let i = 0; i < 4; i++) await store.insert(name, idsOf(b), fillBatch(b++, buffer));
  }
  await store.search('a', batch(0).subarray(0, DIM), 5);
  await store.createDataset('b', PARAMS);
  let bAccepted = 0;
  let error: unknown;
  while (evicted.length === 0 && bAccepted < 60) {
    try {
      await store.insert('b', idsOf(b), fillBatch(b++, buffer));
      bAccepted++;
    } catch (err) {
      error = err;
      break;
    }
  }
  const left = store.listDatasets().sort();
  const bCount = await store.count('b');
  t.comment(`limit ${mib(limit)} MiB, tunerIntervalMs ${tunerIntervalMs}: 'b' took ${bAccepted} batches; evicted [${evicted.join(', ')}]; ` +
    `decisions ${JSON.stringify(decisions)}; left [${left.join(', ')}]; RSS ${mib(rss())} MiB${error === undefined ? '' : `; refused: ${(error as Error).message}`}`);
  if (left.includes('a')) t.equal((await store.search('a', batch(0).subarray(0, DIM), 1, { ef: 100_000 })).ids[0], 0, "'a' still answers");
  await store.close();
  return { evicted, decisions, error, left, bAccepted, bCount };
}

t.test("evictionPolicy 'lru': the least recently used other dataset is evicted and the write succeeds", async (t) => {
  const run = await lruRun(t, 250);
  t.equal(run.error, undefined, 'no write was refused');
  t.same(run.evicted, ['c'], "'c' (least recently used) was evicted, and only it");
  t.ok(run.decisions.some((d) => d.decision === 'evict' && d.dataset === 'c'), "a 'tuner' event with decision 'evict'");
  t.same(run.left, ['a', 'b'], "'a' (searched after 'c' was filled) is kept");
  t.equal(run.bCount, run.bAccepted * BATCH, "every write to 'b' went in, the one that evicted included");
});

// The eviction arithmetic uses each dataset's committed bytes as last seen
// by the tuner (or a scrape). Without a recent sample that figure is 0 or
// stale, so admission keeps evicting and then refuses anyway.
t.test("evictionPolicy 'lru' without a recent tuner sample: still only the LRU dataset goes and the write succeeds", async (t) => {
  const run = await lruRun(t, 60_000);
  t.equal(run.error, undefined, 'no write was refused');
  t.same(run.evicted, ['c'], "only 'c' was evicted");
  t.ok(run.left.includes('a'), "'a' is kept");
});
