import t from 'tap';
import { join } from 'node:path';
import { SimFiles } from '../host/storage/sim-files.js';
import { Wal } from '../host/storage/wal.js';
import { Op, type LogRecord } from '../host/storage/record.js';
import { writeCheckpoint, loadCheckpoint, loadCheckpointInto, IMAGE_TRAILER } from '../host/storage/checkpoint.js';
import { decodeManifest, encodeManifest, readManifest, writeManifest, MANIFEST, MANIFEST_PREV, type Manifest } from '../host/storage/manifest.js';
import { QuiverError } from '../host/errors.js';

const DIR = '/db/shard-0';
const WAL = join(DIR, 'wal');

async function collect(it: AsyncIterable<LogRecord>): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

/** The "shard": the tags 1..n applied in order; its image is those tags as u32s, streamed in uneven chunks. */
function* image(n: number): Generator<Uint8Array> {
  const all = new Uint8Array(Uint32Array.from({ length: n }, (_, i) => i + 1).buffer);
  for (let at = 0, step = 1; at < all.length; at += step, step = step * 2 + 1) yield all.subarray(at, at + step);
}

const tagsOf = (bytes: Uint8Array): number[] => [...new Uint32Array(bytes.slice().buffer)];
const seq = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const rec = (tag: number): Uint8Array => new Uint8Array(Uint32Array.of(tag, tag, tag).buffer);

function loadImageInto(sim: SimFiles): ReturnType<typeof loadCheckpointInto<Uint8Array>> {
  return loadCheckpointInto({ dir: DIR, files: sim }, async (length, fill) => {
    const into = new Uint8Array(length);
    await fill(into);
    return into;
  });
}

/** Recovery: newest valid image + the log after it. Returns the recovered tags. */
async function recover(sim: SimFiles): Promise<{ tags: number[]; lsn: number; fallbackReason: string | null }> {
  const img = await loadCheckpoint({ dir: DIR, files: sim }).catch(async (err: unknown) => {
    // the streaming loader refuses the same state with the same code
    const other = await loadImageInto(sim).then(() => null, (e: unknown) => e);
    if ((other as QuiverError | null)?.code !== (err as QuiverError).code) throw new Error(`loadCheckpointInto did not refuse like loadCheckpoint: ${String(other)}`);
    throw err;
  });
  // the loader recovery uses (the image read straight into caller memory) agrees exactly
  const into = await loadImageInto(sim);
  if ((img === null) !== (into === null) || (img !== null && (img.lsn !== into!.lsn || img.file !== into!.file
    || (img.fallbackReason === null) !== (into!.fallbackReason === null) || Buffer.compare(img.bytes, into!.value) !== 0))) {
    throw new Error('loadCheckpointInto disagrees with loadCheckpoint');
  }
  const lsn = img?.lsn ?? 0;
  const tags = img ? tagsOf(img.bytes) : [];
  const wal = await Wal.open({ dir: WAL, files: sim, startLsn: lsn + 1 });
  for await (const r of wal.replay(lsn + 1)) tags.push(new Uint32Array(r.body.slice().buffer)[0]!);
  await wal.destroy();
  return { tags, lsn, fallbackReason: img?.fallbackReason ?? null };
}

t.test('manifest: round trip, damage, fallback to the previous copy', async (t) => {
  const m: Manifest = { current: { file: 'image-00000000000000000002.qvi', lsn: 2 ** 40 + 7 }, previous: { file: 'image-00000000000000000001.qvi', lsn: 9 } };
  t.same(decodeManifest(encodeManifest(m), 'x'), m, 'round trip');
  const first: Manifest = { current: { file: 'a.qvi', lsn: 0 }, previous: null };
  t.same(decodeManifest(encodeManifest(first), 'x'), first, 'no previous');
  const bytes = encodeManifest(m);
  for (let i = 0; i < bytes.length; i++) {
    const bad = bytes.slice();
    bad[i]! ^= 0x20;
    t.throws(() => decodeManifest(bad, '/d/MANIFEST'), { code: 'QUIVER_ERR_CORRUPT', message: /^\/d\/MANIFEST: not a valid manifest/ }, `flip at byte ${i}`);
  }
  t.throws(() => encodeManifest({ current: { file: 'a/b', lsn: 1 }, previous: null }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  t.throws(() => encodeManifest({ current: { file: 'a', lsn: -1 }, previous: null }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });

  const sim = new SimFiles();
  await sim.mkdir(DIR);
  t.equal(await readManifest(sim, DIR), null, 'none yet');
  await writeManifest(sim, DIR, first, null);
  await writeManifest(sim, DIR, m, first);
  t.same((await readManifest(sim, DIR))?.manifest, m, 'the newest');
  sim.corrupt(join(DIR, MANIFEST), 5);
  const fb = await readManifest(sim, DIR);
  t.same(fb?.manifest, first, 'a damaged MANIFEST falls back to MANIFEST.prev');
  t.match(fb?.fallbackReason, /MANIFEST: not a valid manifest: checksum mismatch/);
  sim.corrupt(join(DIR, MANIFEST_PREV), 5);
  await t.rejects(readManifest(sim, DIR), { code: 'QUIVER_ERR_CORRUPT', message: /MANIFEST: not a valid manifest.*and its previous copy: .*MANIFEST.prev: not a valid manifest/ }, 'both damaged');
});

t.test('checkpoints: image round trip, two generations kept, covered segments deleted', async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: WAL, files: sim, segmentBytes: 200 });
  for (let i = 1; i <= 30; i++) await wal.append(Op.UPSERT, rec(i));
  t.equal(await loadCheckpoint({ dir: DIR, files: sim }), null, 'no checkpoint yet');
  const r1 = await writeCheckpoint({ dir: DIR, files: sim, lsn: 10, chunks: image(10), wal });
  t.equal(r1.removedSegments, 0, 'the first image has no predecessor: the whole log is kept');
  t.equal(r1.bytes, 40);
  const r2 = await writeCheckpoint({
    dir: DIR,
    files: sim,
    lsn: 20,
    chunks: (async function* () {
      yield* image(20);
    })(),
    wal,
  });
  t.ok(r2.removedSegments > 0, `${r2.removedSegments} segments before LSN 11 deleted`);
  t.ok(wal.firstLsn <= 11, 'the log after the previous image is kept');
  const r3 = await writeCheckpoint({ dir: DIR, files: sim, lsn: 25, chunks: image(25), wal });
  t.same(r3.removedFiles, [r1.manifest.current.file], 'the image before the previous one is removed');
  t.same(sim.list(DIR).filter((p) => p.endsWith('.qvi')), [join(DIR, r2.manifest.current.file), join(DIR, r3.manifest.current.file)], 'two images on disk');
  const loaded = await loadCheckpoint({ dir: DIR, files: sim });
  t.same(tagsOf(loaded!.bytes), seq(1, 25));
  t.equal(loaded!.lsn, 25);
  t.equal(loaded!.fallbackReason, null);
  await t.rejects(writeCheckpoint({ dir: DIR, files: sim, lsn: 24, chunks: image(24) }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' }, 'an older LSN is refused');
  const same = await writeCheckpoint({ dir: DIR, files: sim, lsn: 25, chunks: image(25), wal });
  t.not(same.manifest.current.file, r3.manifest.current.file, 'the same LSN again (after a compaction) gets a new file');
  await t.rejects(writeCheckpoint({ dir: DIR, files: sim, lsn: 26, chunks: [new Uint8Array(2), 'x' as unknown as Uint8Array] }), { code: 'QUIVER_ERR_INVALID_ARGUMENT' });
  t.same((await recover(sim)).tags, seq(1, 30), 'recovery: image + log');
  await wal.close();
});

t.test('a damaged image falls back to the previous one and the log after it', async (t) => {
  const sim = new SimFiles();
  const wal = await Wal.open({ dir: WAL, files: sim, segmentBytes: 200 });
  for (let i = 1; i <= 40; i++) {
    await wal.append(Op.UPSERT, rec(i));
    if (i % 10 === 0) await writeCheckpoint({ dir: DIR, files: sim, lsn: i, chunks: image(i), wal });
  }
  await wal.close();
  const m = (await readManifest(sim, DIR))!.manifest;
  const path = join(DIR, m.current.file);
  sim.corrupt(path, 17);
  const r = await recover(sim);
  t.same(r.tags, seq(1, 40), 'everything recovered');
  t.equal(r.lsn, 30, 'from the previous image');
  t.match(r.fallbackReason, new RegExp(`${path}: corrupt at byte ${160 + IMAGE_TRAILER - 4}: checksum mismatch`));
  sim.corrupt(join(DIR, m.previous!.file), 3);
  await t.rejects(loadCheckpoint({ dir: DIR, files: sim }), { code: 'QUIVER_ERR_CORRUPT', message: /no valid checkpoint image in \/db\/shard-0/ }, 'both damaged: refused, naming the directory');
  sim.corrupt(path, 17);
  sim.chop(path, 100);
  const err = await loadCheckpoint({ dir: DIR, files: sim }).catch((e: unknown) => e);
  t.ok(err instanceof QuiverError && err.code === 'QUIVER_ERR_CORRUPT' && err.message.includes(`${path}: corrupt at byte 72: no image trailer`), 'a cut image names its file');
});

t.test('a crash after every step of a checkpoint leaves a recoverable state', async (t) => {
  const build = async (sim: SimFiles): Promise<Wal> => {
    const wal = await Wal.open({ dir: WAL, files: sim, segmentBytes: 150 });
    for (let i = 1; i <= 40; i++) {
      await wal.append(Op.UPSERT, rec(i));
      if (i === 10 || i === 20) await writeCheckpoint({ dir: DIR, files: sim, lsn: i, chunks: image(i), wal });
    }
    return wal;
  };
  // How many mutating steps a whole checkpoint takes.
  const probe = new SimFiles();
  const pw = await build(probe);
  const start = probe.mutations;
  await writeCheckpoint({ dir: DIR, files: probe, lsn: 35, chunks: image(35), wal: pw });
  const steps = probe.mutations - start;
  t.ok(steps >= 10, `${steps} steps`);
  const seen = new Set<number>();
  for (let k = 0; k <= steps; k++) {
    const sim = new SimFiles();
    const wal = await build(sim);
    sim.powerCutAfter(k);
    const done = await writeCheckpoint({ dir: DIR, files: sim, lsn: 35, chunks: image(35), wal }).then(
      () => true,
      (err: unknown) => {
        if (!(err instanceof QuiverError) || err.code !== 'QUIVER_ERR_IO') throw err;
        return false;
      },
    );
    sim.crash();
    await wal.destroy();
    const r = await recover(sim);
    if (JSON.stringify(r.tags) !== JSON.stringify(seq(1, 40))) t.fail(`cut after step ${k}: recovered ${r.tags.length} tags from LSN ${r.lsn}`);
    if (done !== (k >= steps)) t.fail(`cut after step ${k}: checkpoint ${done ? 'succeeded' : 'failed'}`);
    seen.add(r.lsn);
    // And the directory still checkpoints and recovers normally afterwards.
    const w2 = await Wal.open({ dir: WAL, files: sim, startLsn: r.lsn + 1 });
    await w2.append(Op.UPSERT, rec(41));
    await writeCheckpoint({ dir: DIR, files: sim, lsn: 41, chunks: image(41), wal: w2 });
    await w2.close();
    sim.crash();
    const r2 = await recover(sim);
    if (JSON.stringify(r2.tags) !== JSON.stringify(seq(1, 41)) || r2.lsn !== 41) t.fail(`cut after step ${k}: the next checkpoint did not recover`);
    if (sim.list(DIR).some((p) => p.endsWith('.tmp'))) t.fail(`cut after step ${k}: temporary files left after the next checkpoint`);
  }
  t.same([...seen].sort((a, b) => a - b), [20, 35], 'recovered from the old image before the switch and the new one after');
  t.pass(`${steps + 1} cut points recovered`);
});
