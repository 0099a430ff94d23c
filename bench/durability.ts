/**
 * bench:durability — what does durability cost, and what does it buy?
 *
 *   npm run bench:durability -- [--json FILE] [--small] [--verbose]
 *
 * All on clustered 128-d vectors (bench/lib/random.ts), L2, M=16,
 * efConstruction=200, the default thread count (one shard per thread):
 *
 * 1. Ingest (vectors/s): in memory vs fsync 'always' vs 'interval' (1000 ms),
 *    with 1, 4 and 16 concurrent writers and batches of 1, 100 and 1,000,
 *    every write with wait true. Through the library (one child process, the
 *    three modes interleaved cell by cell, a fresh Store and data directory
 *    per cell) and over HTTP (a `quiver serve` child per mode, a fresh
 *    collection per cell, `PUT /collections/{name}/points?wait=true` with
 *    the JSON bodies built before the clock starts). Each cell writes a
 *    fixed total that depends on the batch size only, so the three modes of
 *    a row see the same work. The 16 x 100 cell (the target) runs 3 times
 *    and shows the median.
 * 2. fsyncs: the library child counts every fdatasync (the log's syncs)
 *    and fsync (directories, images) of every thread, through a preloaded
 *    counter on fs/promises' FileHandle (--require, so the worker threads
 *    load it too; the counts live in one SharedArrayBuffer). Records are the
 *    LSNs the shards' manifests name after the graceful close (one record
 *    per shard an insert touches), so records per fsync is exact.
 * 3. Restart: a child builds N x 128 durably (fsync 'always'), checkpoints
 *    N - R of it, writes the last R vectors one per call (16 writers: R log
 *    records), and SIGKILLs itself once they are acknowledged. The data
 *    directory is copied 3 times; each copy is opened in a fresh child and
 *    timed from `Store.open({ path })` until `count` answers (image load +
 *    replay of R records, warm page cache). Against: rebuilding (a new
 *    in-memory Store, N vectors inserted in batches of 1,000 by 4 writers)
 *    and hnswlib-node's `readIndex` of the same N (built one by one, as in
 *    bench:ann). N = 100,000 and R = 10,000 (--small: 10,000 and 1,000).
 * 4. Checkpoint: after each timed open, `store.checkpoint('d')` (every shard
 *    writes its image, fsyncs it, renames it, fsyncs the directory, replaces
 *    its manifest) and the size of the current images on disk, against
 *    hnswlib-node's `writeIndex` of the same index (which does not fsync; a
 *    column adds an fdatasync of the file).
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getEnvironmentData } from 'node:worker_threads';
import { reportResult, runChild } from './lib/child.js';
import { clustered } from './lib/random.js';
import { table } from './lib/table.js';

const DIM = 128;
const M = 16;
const EF_CONSTRUCTION = 200;
const CLUSTERS = 100;
const SEED = 91;
const WRITERS = [1, 4, 16] as const;
const BATCHES = [1, 100, 1_000] as const;
const MODES = ['memory', 'always', 'interval'] as const;
type Mode = (typeof MODES)[number];
const TARGET = { writers: 16, batch: 100, ratio: 0.8, restartVsRebuild: 10, restartVsReadIndex: 1 };
const TARGET_RUNS = 3;
const RESTART_RUNS = 3;
const MARK = '@@quiver-durability-result@@ ';
const COUNTER_KEY = 'quiver-bench-fsyncs';

const { values } = parseArgs({
  options: {
    json: { type: 'string' },
    small: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    child: { type: 'string' },
    dir: { type: 'string' },
    n: { type: 'string' },
    records: { type: 'string' },
  },
});
const small = values.small;

/** Vectors per cell, by batch size: enough for a second or more in memory, a few seconds at most under 'always'. */
function cellTotal(batch: number): number {
  if (small) return batch === 1 ? 300 : batch === 100 ? 1_000 : 2_000;
  return batch === 1 ? 1_000 : batch === 100 ? 8_000 : 16_000;
}

interface Cell {
  api: 'library' | 'http';
  mode: Mode;
  writers: number;
  batch: number;
  vectors: number;
  /** Median over the runs. */
  seconds: number;
  perSecond: number;
  runs: number;
  /** Library, durable modes only. */
  datasyncs?: number;
  fsyncs?: number;
  records?: number;
}

interface Batch {
  ids: number[];
  vectors: Float32Array;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function batchesOf(data: Float32Array, total: number, batch: number, firstId = 0): Batch[] {
  const out: Batch[] = [];
  for (let from = 0; from < total; from += batch) {
    const to = Math.min(total, from + batch);
    out.push({ ids: Array.from({ length: to - from }, (_, i) => firstId + from + i), vectors: data.slice(from * DIM, to * DIM) });
  }
  return out;
}

/** `writers` callers taking the next batch until none is left; resolves with the wall seconds. */
async function drive<B>(batches: B[], writers: number, write: (b: B) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: writers }, async () => {
    while (next < batches.length) await write(batches[next++]!);
  }));
  return (performance.now() - t0) / 1000;
}

// ------------------------------------------------------------ the fsync counter

/**
 * Loaded with --require into the library child: CommonJS, since --import
 * does not reach worker threads and --require does. The main thread makes
 * the shared counters; each worker finds them in its environment data.
 */
const COUNTER_SOURCE = `'use strict';
const wt = require('node:worker_threads');
const fsp = require('node:fs/promises');
let sab = wt.getEnvironmentData(${JSON.stringify(COUNTER_KEY)});
if (sab === undefined) { sab = new SharedArrayBuffer(8); wt.setEnvironmentData(${JSON.stringify(COUNTER_KEY)}, sab); }
const counts = new Int32Array(sab);
fsp.open(__filename, 'r').then((h) => {
  const proto = Object.getPrototypeOf(h);
  const datasync = proto.datasync;
  const sync = proto.sync;
  proto.datasync = function () { Atomics.add(counts, 0, 1); return datasync.call(this); };
  proto.sync = function () { Atomics.add(counts, 1, 1); return sync.call(this); };
  return h.close();
});
`;

function syncCounts(): { datasyncs: number; fsyncs: number } {
  const sab = getEnvironmentData(COUNTER_KEY) as SharedArrayBuffer | undefined;
  if (sab === undefined) throw new Error('the fsync counter is not loaded (--require it)');
  const c = new Int32Array(sab);
  return { datasyncs: Atomics.load(c, 0), fsyncs: Atomics.load(c, 1) };
}

/** Each shard directory under a data directory, with its manifest's current image (none before a checkpoint). */
async function currentImages(path: string): Promise<{ dir: string; image: { file: string; lsn: number } | undefined }[]> {
  const { readManifest, nodeFiles } = await import('../host/storage/index.js');
  const out: { dir: string; image: { file: string; lsn: number } | undefined }[] = [];
  const datasets = join(path, 'datasets');
  for (const ds of readdirSync(datasets)) {
    for (const shard of readdirSync(join(datasets, ds)).filter((s) => s.startsWith('shard-'))) {
      const dir = join(datasets, ds, shard);
      out.push({ dir, image: (await readManifest(nodeFiles, dir))?.manifest.current });
    }
  }
  return out;
}

/** Sum of the LSNs the manifests of every shard under a data directory name: the records its logs held. */
async function manifestLsns(path: string): Promise<number> {
  return (await currentImages(path)).reduce((a, s) => a + (s.image?.lsn ?? 0), 0);
}

/** Bytes of the current image of every shard under a data directory. */
async function imageBytes(path: string): Promise<number> {
  return (await currentImages(path)).reduce((a, s) => a + (s.image === undefined ? 0 : statSync(join(s.dir, s.image.file)).size), 0);
}

// ------------------------------------------------------------ children

async function ingestChild(): Promise<Cell[]> {
  const { Store } = await import('../host/index.js');
  const root = mkdtempSync(join(tmpdir(), 'quiver-bench-durability-'));
  const data = clustered(Math.max(...BATCHES.map(cellTotal)), DIM, CLUSTERS, SEED);
  const rows: Cell[] = [];
  let cellNo = 0;
  try {
    for (const batch of BATCHES) {
      for (const writers of WRITERS) {
        const total = cellTotal(batch);
        const runs = writers === TARGET.writers && batch === TARGET.batch ? TARGET_RUNS : 1;
        const samples = new Map<Mode, { seconds: number; datasyncs: number; fsyncs: number; records: number }[]>(MODES.map((m) => [m, []]));
        // the modes interleaved, so a slow moment of the machine hits all three alike
        for (let run = 0; run < runs; run++) {
          for (const mode of MODES) {
            const path = mode === 'memory' ? undefined : join(root, `cell-${cellNo++}`);
            const store = await Store.open(path === undefined || mode === 'memory' ? {} : { path, fsync: mode });
            await store.createDataset('d', { dim: DIM, M, efConstruction: EF_CONSTRUCTION });
            const batches = batchesOf(data, total, batch);
            const before = syncCounts();
            const seconds = await drive(batches, writers, (b) => store.insert('d', b.ids, b.vectors));
            const after = syncCounts();
            if ((await store.count('d')) !== total) throw new Error(`${mode} ${writers}x${batch}: count is not ${total}`);
            await store.close();
            const records = path === undefined ? 0 : await manifestLsns(path);
            if (path !== undefined) rmSync(path, { recursive: true, force: true });
            samples.get(mode)!.push({ seconds, datasyncs: after.datasyncs - before.datasyncs, fsyncs: after.fsyncs - before.fsyncs, records });
          }
        }
        for (const mode of MODES) {
          const s = samples.get(mode)!;
          const seconds = median(s.map((x) => x.seconds));
          const mid = s.find((x) => x.seconds === seconds) ?? s[0]!;
          rows.push({
            api: 'library', mode, writers, batch, vectors: total, seconds, perSecond: total / seconds, runs,
            ...(mode === 'memory' ? {} : { datasyncs: mid.datasyncs, fsyncs: mid.fsyncs, records: mid.records }),
          });
          process.stderr.write(`[durability] library ${mode} ${writers} writers x ${batch}: ${Math.round(total / seconds)} vectors/s\n`);
        }
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}

interface BuildResult {
  imageVectors: number;
  records: number;
  buildSeconds: number;
  recordsSeconds: number;
}

/** Builds the restart dataset, then dies by SIGKILL with its last R writes acknowledged but never checkpointed. */
async function restartBuildChild(dir: string, n: number, records: number): Promise<never> {
  const { Store } = await import('../host/index.js');
  const data = clustered(n, DIM, CLUSTERS, SEED);
  const store = await Store.open({ path: dir, fsync: 'always' });
  await store.createDataset('d', { dim: DIM, M, efConstruction: EF_CONSTRUCTION });
  const imageVectors = n - records;
  const buildSeconds = await drive(batchesOf(data, imageVectors, 1_000), 4, (b) => store.insert('d', b.ids, b.vectors));
  await store.checkpoint('d');
  const singles = batchesOf(data.subarray(imageVectors * DIM), records, 1, imageVectors);
  const recordsSeconds = await drive(singles, 16, (b) => store.insert('d', b.ids, b.vectors));
  if ((await store.count('d')) !== n) throw new Error(`count is not ${n}`);
  reportResult(MARK, { imageVectors, records, buildSeconds, recordsSeconds } satisfies BuildResult);
  // stdout is a pipe, written synchronously on Linux: the line is out before the kill
  process.kill(process.pid, 'SIGKILL');
  return new Promise<never>(() => {});
}

interface OpenResult {
  openMs: number;
  count: number;
  replayed: number;
  checkpointMs: number;
  imageBytes: number;
  /** The same directory opened again after the checkpoint and a graceful close: image load only, no log to replay. */
  imageOnlyMs: number;
  /** An empty in-memory Store.open + close: the thread pool's start, part of every open. */
  emptyOpenMs: number;
}

async function restartOpenChild(dir: string): Promise<OpenResult> {
  const { Store } = await import('../host/index.js');
  const t0 = performance.now();
  const store = await Store.open({ path: dir });
  const count = await store.count('d');
  const openMs = performance.now() - t0;
  const replayed = store.recovery.reduce((a, r) => a + r.replayed, 0);
  const c0 = performance.now();
  await store.checkpoint('d');
  const checkpointMs = performance.now() - c0;
  const bytes = await imageBytes(dir);
  await store.close();
  const i0 = performance.now();
  const again = await Store.open({ path: dir });
  if ((await again.count('d')) !== count) throw new Error('the reopened store lost points');
  const imageOnlyMs = performance.now() - i0;
  await again.close();
  const e0 = performance.now();
  const empty = await Store.open({});
  const emptyOpenMs = performance.now() - e0;
  await empty.close();
  return { openMs, count, replayed, checkpointMs, imageBytes: bytes, imageOnlyMs, emptyOpenMs };
}

async function rebuildChild(n: number): Promise<{ seconds: number }> {
  const { Store } = await import('../host/index.js');
  const batches = batchesOf(clustered(n, DIM, CLUSTERS, SEED), n, 1_000);
  const t0 = performance.now();
  const store = await Store.open({});
  await store.createDataset('d', { dim: DIM, M, efConstruction: EF_CONSTRUCTION });
  await drive(batches, 4, (b) => store.insert('d', b.ids, b.vectors));
  if ((await store.count('d')) !== n) throw new Error(`count is not ${n}`);
  const seconds = (performance.now() - t0) / 1000;
  await store.close();
  return { seconds };
}

interface HnswResult {
  buildSeconds: number;
  writeMs: number;
  writeSyncMs: number;
  readMs: number;
  fileBytes: number;
}

async function hnswlibChild(n: number): Promise<HnswResult> {
  const { HierarchicalNSW } = (await import('hnswlib-node')).default;
  const data = clustered(n, DIM, CLUSTERS, SEED);
  const dir = mkdtempSync(join(tmpdir(), 'quiver-bench-hnsw-'));
  try {
    const t0 = performance.now();
    const idx = new HierarchicalNSW('l2', DIM);
    idx.initIndex(n, M, EF_CONSTRUCTION, 100);
    for (let i = 0; i < n; i++) idx.addPoint(Array.from(data.subarray(i * DIM, (i + 1) * DIM)), i);
    const buildSeconds = (performance.now() - t0) / 1000;
    const writes: number[] = [];
    const writeSyncs: number[] = [];
    const reads: number[] = [];
    const file = join(dir, 'index.hnsw');
    for (let run = 0; run < RESTART_RUNS; run++) {
      rmSync(file, { force: true });
      const w0 = performance.now();
      await idx.writeIndex(file);
      writes.push(performance.now() - w0);
      const h = await openFile(file, 'r+');
      await h.datasync();
      await h.close();
      writeSyncs.push(performance.now() - w0);
      const r0 = performance.now();
      const copy = new HierarchicalNSW('l2', DIM);
      await copy.readIndex(file);
      if (copy.getCurrentCount() !== n) throw new Error(`readIndex gave ${copy.getCurrentCount()} points, not ${n}`);
      reads.push(performance.now() - r0);
    }
    return { buildSeconds, writeMs: median(writes), writeSyncMs: median(writeSyncs), readMs: median(reads), fileBytes: statSync(file).size };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------ HTTP

const CLI = fileURLToPath(new URL('../host/server/cli.js', import.meta.url));

function serverFlags(): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, '--help'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', () => resolve(out.includes('--data-dir') && out.includes('--fsync') && out.includes('--in-memory')));
  });
}

async function startServer(args: string[], cwd: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--log-level', 'silent', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (values.verbose) process.stderr.write(d);
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /quiver listening on (http:\/\/\S+)/.exec(out);
      if (m !== null) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`quiver serve exited (${code}) before listening: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)));
  });
  return { proc, url };
}

async function request(url: string, method: string, body?: string): Promise<void> {
  const res = await fetch(url, body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 200)}`);
}

async function httpMode(mode: Mode, withFlags: boolean, data: Float32Array): Promise<Cell[]> {
  const cwd = mkdtempSync(join(tmpdir(), 'quiver-bench-serve-'));
  const args = !withFlags ? [] : mode === 'memory' ? ['--in-memory'] : ['--data-dir', join(cwd, 'data'), '--fsync', mode];
  const { proc, url } = await startServer(args, cwd);
  const rows: Cell[] = [];
  try {
    for (const batch of BATCHES) {
      for (const writers of WRITERS) {
        const total = cellTotal(batch);
        const runs = writers === TARGET.writers && batch === TARGET.batch ? TARGET_RUNS : 1;
        const seconds: number[] = [];
        for (let run = 0; run < runs; run++) {
          const name = `c${writers}x${batch}r${run}`;
          await request(`${url}/collections/${name}`, 'PUT', JSON.stringify({
            vectors: { size: DIM, distance: 'Euclid' }, hnsw_config: { m: M, ef_construct: EF_CONSTRUCTION },
          }));
          const bodies = batchesOf(data, total, batch).map((b) => JSON.stringify({
            points: b.ids.map((id, i) => ({ id, vector: Array.from(b.vectors.subarray(i * DIM, (i + 1) * DIM)) })),
          }));
          const target = `${url}/collections/${name}/points?wait=true`;
          seconds.push(await drive(bodies, writers, (body) => request(target, 'PUT', body)));
          await request(`${url}/collections/${name}`, 'DELETE');
        }
        const s = median(seconds);
        rows.push({ api: 'http', mode, writers, batch, vectors: total, seconds: s, perSecond: total / s, runs });
        process.stderr.write(`[durability] http ${mode} ${writers} writers x ${batch}: ${Math.round(total / s)} vectors/s\n`);
      }
    }
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode === null ? proc.once('exit', r) : r(null)));
    rmSync(cwd, { recursive: true, force: true });
  }
  return rows;
}

// ------------------------------------------------------------ parent

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const ratio = (x: number): string => `${x.toFixed(2)}x`;
const MiB = 1024 * 1024;

async function child<T>(args: string[], nodeFlags: string[] = []): Promise<T> {
  const out = await runChild<T>({ file: fileURLToPath(import.meta.url), args, marker: MARK, nodeFlags, verbose: values.verbose || args[1] === 'ingest' });
  if (!out.ok) throw new Error(`child ${args.join(' ')} failed: ${out.error}`);
  return out.value;
}

function ingestTable(rows: Cell[], api: Cell['api'], withCounts: boolean): string {
  const head = ['writers x batch', 'vectors', 'memory /s', 'always /s', 'interval /s', 'always/mem', 'interval/mem'];
  if (withCounts) head.push('always fsync/s', 'rec/fsync', 'interval fsync/s', 'rec/fsync ');
  const cells: string[][] = [];
  for (const batch of BATCHES) {
    for (const writers of WRITERS) {
      const at = (mode: Mode): Cell | undefined => rows.find((r) => r.api === api && r.mode === mode && r.writers === writers && r.batch === batch);
      const mem = at('memory');
      const al = at('always');
      const iv = at('interval');
      if (mem === undefined) continue;
      const rate = (c: Cell | undefined): string => (c === undefined ? '-' : fmt(c.perSecond));
      const rel = (c: Cell | undefined): string => (c === undefined ? '-' : ratio(c.perSecond / mem.perSecond));
      const runs = mem.runs > 1 ? ` (med ${mem.runs})` : '';
      const row = [`${writers} x ${batch}${runs}`, fmt(mem.vectors), rate(mem), rate(al), rate(iv), rel(al), rel(iv)];
      if (withCounts) {
        for (const c of [al, iv]) {
          row.push(c?.datasyncs === undefined ? '-' : (c.datasyncs / c.seconds).toFixed(1));
          row.push(c?.datasyncs === undefined || c.datasyncs === 0 ? '-' : (c.records! / c.datasyncs).toFixed(1));
        }
      }
      cells.push(row);
    }
  }
  return table(head, cells);
}

async function parent(): Promise<void> {
  const started = performance.now();
  const n = small ? 10_000 : 100_000;
  const records = small ? 1_000 : 10_000;
  const notes: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'quiver-bench-durability-'));
  try {
    // 1-2. ingest through the library, with the fsync counter
    const counter = join(work, 'fsync-counter.cjs');
    writeFileSync(counter, COUNTER_SOURCE);
    process.stderr.write('[durability] ingest through the library...\n');
    const library = await child<Cell[]>(['--child', 'ingest', ...(small ? ['--small'] : [])], ['--require', counter]);

    // ingest over HTTP
    const withFlags = await serverFlags();
    if (!withFlags) notes.push('`quiver serve` has no --data-dir/--fsync/--in-memory here: HTTP measured in memory only.');
    const data = clustered(Math.max(...BATCHES.map(cellTotal)), DIM, CLUSTERS, SEED);
    const http: Cell[] = [];
    for (const mode of withFlags ? MODES : (['memory'] as const)) {
      process.stderr.write(`[durability] ingest over HTTP, ${mode}...\n`);
      http.push(...(await httpMode(mode, withFlags, data)));
    }

    // 3-4. restart and checkpoint
    const dir = join(work, 'restart');
    mkdirSync(dir);
    process.stderr.write(`[durability] restart: building ${fmt(n)} x ${DIM} durably (${fmt(n - records)} checkpointed, ${fmt(records)} single writes), then SIGKILL...\n`);
    const built = await child<BuildResult>(['--child', 'restart-build', '--dir', dir, '--n', String(n), '--records', String(records)]);
    const opens: OpenResult[] = [];
    for (let run = 0; run < RESTART_RUNS; run++) {
      const copy = join(work, `restart-${run}`);
      cpSync(dir, copy, { recursive: true });
      opens.push(await child<OpenResult>(['--child', 'restart-open', '--dir', copy]));
      rmSync(copy, { recursive: true, force: true });
    }
    for (const o of opens) {
      if (o.count !== n) throw new Error(`a restart counted ${o.count}, not ${n}`);
      if (o.replayed !== records) notes.push(`a restart replayed ${o.replayed} records, not ${records}`);
    }
    process.stderr.write(`[durability] rebuild: ${fmt(n)} into a new in-memory Store...\n`);
    const rebuild = await child<{ seconds: number }>(['--child', 'rebuild', '--n', String(n)]);
    process.stderr.write(`[durability] hnswlib-node: build ${fmt(n)}, writeIndex, readIndex...\n`);
    const hnsw = await child<HnswResult>(['--child', 'hnswlib', '--n', String(n)]);

    const openMs = median(opens.map((o) => o.openMs));
    const checkpointMs = median(opens.map((o) => o.checkpointMs));
    const image = opens[0]!.imageBytes;
    const emptyOpenMs = median(opens.map((o) => o.emptyOpenMs));
    const imageOnlyMs = median(opens.map((o) => o.imageOnlyMs));

    // ---- print
    console.log(`\nIngest through the library, vectors/s (${DIM}-d, M=${M}, efConstruction=${EF_CONSTRUCTION}, wait true; interval = 1000 ms)`);
    console.log(ingestTable(library, 'library', true));
    console.log('fsync/s: fdatasyncs of the logs per second of the cell; rec/fsync: log records per fdatasync (one record per shard an insert touches).');
    console.log(`\nIngest over HTTP (PUT /collections/{name}/points?wait=true, JSON), vectors/s${withFlags ? '' : ' — in memory only'}`);
    console.log(ingestTable(http, 'http', false));

    console.log(`\nRestart of ${fmt(n)} x ${DIM} (image of ${fmt(built.imageVectors)} + replay of ${fmt(records)} records; median of ${RESTART_RUNS}, warm page cache)`);
    const restartRows = [
      ['quiver Store.open({ path }) until count', (openMs / 1000).toFixed(2), ratio(1)],
      ['  of which: the same open, image only (after a checkpoint)', (imageOnlyMs / 1000).toFixed(2), ratio(imageOnlyMs / openMs)],
      ['rebuild: new in-memory Store + insert all', rebuild.seconds.toFixed(2), ratio(rebuild.seconds * 1000 / openMs)],
      ['hnswlib-node readIndex', (hnsw.readMs / 1000).toFixed(2), ratio(hnsw.readMs / openMs)],
    ];
    console.log(table(['what', 'seconds', 'its time / restart'], restartRows));
    console.log(`(an empty in-memory Store.open in the same, warm process: ${emptyOpenMs.toFixed(0)} ms; the durable build took ${built.buildSeconds.toFixed(1)} s + ${built.recordsSeconds.toFixed(1)} s for the single writes; hnswlib-node's one-by-one build ${hnsw.buildSeconds.toFixed(1)} s)`);

    console.log(`\nCheckpoint of ${fmt(n)} x ${DIM} vs hnswlib-node writeIndex (median of ${RESTART_RUNS})`);
    console.log(table(['what', 'ms', 'MiB on disk', 'B/vector'], [
      ['quiver store.checkpoint (image, fsync, rename, dir fsync, manifest)', checkpointMs.toFixed(0), (image / MiB).toFixed(1), (image / n).toFixed(0)],
      ['hnswlib-node writeIndex (no fsync)', hnsw.writeMs.toFixed(0), (hnsw.fileBytes / MiB).toFixed(1), (hnsw.fileBytes / n).toFixed(0)],
      ['hnswlib-node writeIndex + fdatasync', hnsw.writeSyncMs.toFixed(0), '', ''],
    ]));
    console.log(`checkpoint / writeIndex+fdatasync: ${ratio(checkpointMs / hnsw.writeSyncMs)} the time; image / index file: ${ratio(image / hnsw.fileBytes)} the size`);

    // ---- targets (printed, not asserted)
    const at = (rows: Cell[], mode: Mode): Cell | undefined => rows.find((r) => r.mode === mode && r.writers === TARGET.writers && r.batch === TARGET.batch);
    const checks: { target: string; value: number; pass: boolean }[] = [];
    for (const [api, rows] of [['library', library], ['http', http]] as const) {
      const mem = at(rows, 'memory');
      const al = at(rows, 'always');
      if (mem !== undefined && al !== undefined) {
        const v = al.perSecond / mem.perSecond;
        checks.push({ target: `${api}: 'always' >= ${TARGET.ratio}x in memory at ${TARGET.writers} writers x ${TARGET.batch}`, value: v, pass: v >= TARGET.ratio });
      }
    }
    const vsRebuild = rebuild.seconds * 1000 / openMs;
    checks.push({ target: `restart >= ${TARGET.restartVsRebuild}x faster than a rebuild`, value: vsRebuild, pass: vsRebuild >= TARGET.restartVsRebuild });
    const vsRead = hnsw.readMs / openMs;
    checks.push({ target: 'restart no slower than hnswlib-node readIndex', value: vsRead, pass: vsRead >= TARGET.restartVsReadIndex });
    console.log('\nTargets');
    for (const c of checks) console.log(`  ${c.pass ? 'PASS' : 'MISS'}  ${c.target}: ${ratio(c.value)}`);
    for (const note of notes) console.log(`note: ${note}`);
    console.log(`(run took ${((performance.now() - started) / 1000).toFixed(0)} s)`);

    if (values.json !== undefined) {
      writeFileSync(values.json, JSON.stringify({
        n, dim: DIM, M, efConstruction: EF_CONSTRUCTION, records, ingest: [...library, ...http],
        restart: { openMs, imageOnlyMs, emptyOpenMs, opens, rebuildSeconds: rebuild.seconds, hnswlibReadMs: hnsw.readMs, built },
        checkpoint: { checkpointMs, imageBytes: image, hnswlibWriteMs: hnsw.writeMs, hnswlibWriteSyncMs: hnsw.writeSyncMs, hnswlibFileBytes: hnsw.fileBytes },
        hnswlibBuildSeconds: hnsw.buildSeconds, checks, notes,
      }, null, 2));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

switch (values.child) {
  case undefined:
    await parent();
    break;
  case 'ingest':
    reportResult(MARK, await ingestChild());
    break;
  case 'restart-build':
    await restartBuildChild(values.dir!, Number(values.n), Number(values.records));
    break;
  case 'restart-open':
    reportResult(MARK, await restartOpenChild(values.dir!));
    break;
  case 'rebuild':
    reportResult(MARK, await rebuildChild(Number(values.n)));
    break;
  case 'hnswlib':
    reportResult(MARK, await hnswlibChild(Number(values.n)));
    break;
  default:
    throw new Error(`unknown child ${values.child}`);
}
