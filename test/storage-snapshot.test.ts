import t from 'tap';
const tap = t;
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QuiverError } from '../host/errors.js';
import { readSnapshot, sha256Of, writeSnapshot, SNAPSHOT_VERSION, type SnapshotEntry } from '../host/storage/snapshot.js';
import { crc32c } from '../host/storage/crc32c.js';

const entry = (shards: number): SnapshotEntry => ({ name: 'docs', dim: 8, metric: 'cosine', M: 12, efConstruction: 100, ef: 40, shards });

/** Deterministic bytes: part i of length n. */
function bytes(i: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (i + 1) * 2654435761;
  for (let k = 0; k < n; k++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[k] = x >>> 24;
  }
  return out;
}

async function fixture(t: Pick<typeof tap, 'teardown'>, lengths: number[]): Promise<{ dir: string; file: string; parts: Uint8Array[]; written: { size: number; sha256: string } }> {
  const dir = await mkdtemp(join(tmpdir(), 'quiver-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const parts = lengths.map((n, i) => bytes(i, n));
  await Promise.all(parts.map((p, i) => writeFile(join(dir, `part-${i}`), p)));
  const file = join(dir, 'docs.snapshot');
  const written = await writeSnapshot({ file, entry: entry(parts.length), parts: parts.map((_, i) => ({ lsn: 100 + i, path: join(dir, `part-${i}`) })) });
  return { dir, file, parts, written };
}

function isCorrupt(err: unknown, file: string): boolean {
  return err instanceof QuiverError && err.code === 'QUIVER_ERR_CORRUPT' && err.message.startsWith(`${file}: corrupt at byte `);
}

t.test('round trip: entry, lsns, offsets and the image bytes come back; size and sha256 are the file\'s', async (t) => {
  // parts past the 1 MiB streaming chunk, and tiny ones
  const { dir, file, parts, written } = await fixture(t, [2_500_000, 1, 70_000]);
  const whole = await readFile(file);
  t.equal(written.size, whole.length);
  t.equal(written.sha256, createHash('sha256').update(whole).digest('hex'));
  t.equal(await sha256Of(file), written.sha256);
  const read = await readSnapshot(file);
  t.same(read.entry, entry(3));
  t.equal(read.size, whole.length);
  t.same(read.shards.map((s) => s.lsn), [100, 101, 102]);
  read.shards.forEach((s, i) => {
    t.equal(s.length, parts[i]!.length);
    t.ok(Buffer.from(parts[i]!).equals(whole.subarray(s.offset, s.offset + s.length)), `image ${i} is at its offset`);
  });
  t.equal(crc32c(whole.subarray(0, whole.length - 4)), whole.readUInt32LE(whole.length - 4), 'the trailer is the CRC32C of all before it');
  t.same((await readdir(dir)).filter((n) => n.endsWith('.tmp')), [], 'no temp file is left');
});

t.test('every truncation point is refused with the file and an offset', async (t) => {
  const { file } = await fixture(t, [40, 3, 25]);
  const whole = await readFile(file);
  let refused = 0;
  for (let n = 0; n < whole.length; n++) {
    await writeFile(file, whole.subarray(0, n));
    try {
      await readSnapshot(file);
      t.fail(`a snapshot cut at ${n} of ${whole.length} bytes was accepted`);
    } catch (err) {
      if (isCorrupt(err, file)) refused++;
      else t.fail(`cut at ${n}: ${String(err)}`);
    }
  }
  t.equal(refused, whole.length);
  // and one byte too many
  await writeFile(file, Buffer.concat([whole, Buffer.of(0)]));
  await t.rejects(readSnapshot(file), { code: 'QUIVER_ERR_CORRUPT' });
});

t.test('a bit flipped anywhere (header, entry, table, images, trailer) is refused', async (t) => {
  const { file } = await fixture(t, [40, 3, 25]);
  const whole = await readFile(file);
  const trailerAt = whole.length - 4;
  let refused = 0;
  const offsets = new Set<number>();
  for (let at = 0; at < whole.length; at++) {
    const bad = Buffer.from(whole);
    bad[at] ^= 1 << (at % 8);
    await writeFile(file, bad);
    try {
      await readSnapshot(file);
      t.fail(`a flip at byte ${at} was accepted`);
    } catch (err) {
      if (isCorrupt(err, file)) {
        refused++;
        offsets.add(Number(/corrupt at byte (\d+)/.exec((err as Error).message)![1]));
      } else {
        t.fail(`flip at ${at}: ${String(err)}`);
      }
    }
  }
  t.equal(refused, whole.length);
  t.ok(offsets.has(0) && offsets.has(trailerAt), 'the offsets name where it went wrong (the magic, the trailer check)');
});

t.test('wrong magic and wrong version are named as such', async (t) => {
  const { file } = await fixture(t, [16]);
  const whole = await readFile(file);
  const magic = Buffer.from(whole);
  magic.write('PK', 0);
  await writeFile(file, magic);
  await t.rejects(readSnapshot(file), { code: 'QUIVER_ERR_CORRUPT', message: `${file}: corrupt at byte 0: not a quiver snapshot (bad magic)` });
  const version = Buffer.from(whole);
  version.writeUInt32LE(SNAPSHOT_VERSION + 1, 8);
  await writeFile(file, version);
  await t.rejects(readSnapshot(file), { code: 'QUIVER_ERR_CORRUPT', message: new RegExp(`corrupt at byte 8: snapshot format version ${SNAPSHOT_VERSION + 1}`) });
  await t.rejects(readSnapshot(join(file, '..', 'absent.snapshot')), { code: 'QUIVER_ERR_IO', message: /ENOENT/ });
});

t.test('a failed write leaves no file and no temp file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'quiver-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'part-0'), bytes(0, 10));
  const file = join(dir, 'x.snapshot');
  await t.rejects(writeSnapshot({ file, entry: entry(2), parts: [{ lsn: 1, path: join(dir, 'part-0') }, { lsn: 1, path: join(dir, 'absent') }] }),
    { code: 'QUIVER_ERR_IO' });
  t.same(await readdir(dir), ['part-0']);
});
