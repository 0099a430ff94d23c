// A disk-mode shard (alwaysRam: false) whose originals file fails to write
// (disk full, EIO): no write may leave a point whose original is nowhere.
import t from 'tap';
import { packIds } from '../host/ids.js';
import { LAYOUT } from '../host/core/abi.js';
import { spillDeferred } from '../host/core/originals.js';
import { ErrorCode, QuiverError } from '../host/errors.js';
import { sift } from './helpers/data.js';
import { pair } from './helpers/disk.js';

const SPILL = LAYOUT.FREEZE_AT;
const DIM = 128;

/** Makes `file.write` fail with a coded IO error while `failing()` says so. */
function failWrites(file: { write(slot: number, bytes: Uint8Array): void }, failing: () => boolean): void {
  const write = file.write.bind(file);
  file.write = (slot, bytes) => {
    if (failing()) throw new QuiverError(ErrorCode.IO, 'cannot write: ENOSPC (injected)');
    write(slot, bytes);
  };
}

t.test('a spill whose file write fails is put off: the insert is applied, the originals stay in RAM, the next insert spills', async (t) => {
  const { base } = sift();
  const { disk, file } = pair(t, DIM);
  const ids = packIds(Array.from({ length: SPILL + 10 }, (_, i) => i), true);
  let failing = true;
  failWrites(file, () => failing);
  let applied = 0;
  for (let i = 0; i < SPILL + 5; i++) if (disk.insert(ids, i, base.data, i * DIM)) applied++;
  t.equal(applied, SPILL + 5, 'every insert past the spill point is applied');
  t.equal(disk.spilled, false, 'not spilled while the file fails');
  t.equal(spillDeferred(disk)?.code, ErrorCode.IO, 'the put-off spill says why');
  for (const i of [0, SPILL - 1, SPILL + 4]) {
    t.ok(disk.get(ids, i)!.vector.every((x, j) => x === base.data[i * DIM + j]), `point ${i} reads back exactly (from RAM)`);
  }
  const before = disk.search(base.data, 3 * DIM, 10, 64);
  t.equal(before.ids[0], 3, 'a search still finds a point itself');
  failing = false;
  t.equal(disk.insert(ids, SPILL + 5, base.data, (SPILL + 5) * DIM), true);
  t.equal(disk.spilled, true, 'the next insert spills');
  t.equal(spillDeferred(disk), undefined, 'and the deferral is cleared');
  for (const i of [0, SPILL - 1, SPILL + 5]) {
    t.ok(disk.get(ids, i)!.vector.every((x, j) => x === base.data[i * DIM + j]), `point ${i} reads back exactly (from the file)`);
  }
});

t.test('a spilled shard whose file write fails: the write throws QUIVER_ERR_IO and the point is absent, nothing else changes', async (t) => {
  const { base } = sift();
  const { disk, file } = pair(t, DIM);
  const n = SPILL + 200;
  const ids = packIds(Array.from({ length: n + 1 }, (_, i) => i), true);
  for (let i = 0; i < n; i++) disk.insert(ids, i, base.data, i * DIM);
  t.equal(disk.spilled, true);
  let failing = true;
  failWrites(file, () => failing);
  // a new id, and an upsert of an existing one
  t.throws(() => disk.insert(ids, n, base.data, n * DIM), { code: 'QUIVER_ERR_IO' }, 'a new point: IO');
  t.equal(disk.get(ids, n), undefined, 'the new point is absent');
  t.throws(() => disk.insert(ids, 7, base.data, 9 * DIM), { code: 'QUIVER_ERR_IO' }, 'an upsert: IO');
  t.equal(disk.get(ids, 7), undefined, 'the upserted id is absent (its previous version comes back from the log at a restart)');
  for (const q of [n, 9]) {
    const hits = disk.search(base.data, q * DIM, 10, 128);
    t.notOk(hits.ids.includes(n) || hits.ids.includes(7), `no search returns a point whose original was never written (query ${q})`);
  }
  t.equal(disk.stats().live, n - 1, 'live count: the upserted id is out, the new one never in');
  t.ok(disk.get(ids, 8)!.vector.every((x, j) => x === base.data[8 * DIM + j]), 'other points are untouched');
  failing = false;
  t.equal(disk.insert(ids, n, base.data, n * DIM), true, 'once the file writes again, so does the shard');
  t.ok(disk.get(ids, n)!.vector.every((x, j) => x === base.data[n * DIM + j]), 'and the point reads back exactly');
  t.equal(disk.search(base.data, n * DIM, 1, 64).ids[0], n);
});
