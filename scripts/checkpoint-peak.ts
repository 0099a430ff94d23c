/**
 * Peak RSS during a checkpoint of a durable store, in a process of its own:
 * a shard of N x 64 with payloads, then `store.checkpoint()`, with the
 * kernel's high-water mark (VmHWM) reset just before (/proc/self/clear_refs)
 * and read just after. The same measure around a copy of the image's size
 * shows what a checkpoint that copied the shard would cost. Prints one JSON
 * line. test/checkpoint-memory.test.ts runs it.
 *
 *   node dist/scripts/checkpoint-peak.js [n]
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clustered } from '../bench/lib/random.js';
import { Store, collectGarbage } from '../host/index.js';

const N = Number(process.argv[2] ?? 60_000);
const DIM = 64;

function statusKiB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]) * 1024;
}

/** The peak RSS above the RSS at the start of `fn`. */
async function peakDuring(fn: () => Promise<unknown>): Promise<number> {
  writeFileSync('/proc/self/clear_refs', '5');
  const before = statusKiB('VmRSS');
  await fn();
  return statusKiB('VmHWM') - before;
}

const dir = mkdtempSync(join(tmpdir(), 'quiver-ckpt-'));
try {
  const store = await Store.open({ threads: 1, path: dir, compaction: { intervalMs: 0 } });
  await store.createDataset('d', { dim: DIM, shards: 1 });
  const data = clustered(N, DIM, 20, 3);
  const ids = Array.from({ length: N }, (_, i) => i);
  for (let at = 0; at < N; at += 5000) {
    await store.insert('d', ids.slice(at, at + 5000), data.subarray(at * DIM, (at + 5000) * DIM), {
      payloads: ids.slice(at, at + 5000).map((i) => ({ i, tag: `t${i % 7}` })),
    });
  }
  const imageBytes = (await store.datasetInfo('d')).committedBytes;
  collectGarbage();
  await store.releaseMemory();
  await new Promise((r) => setTimeout(r, 500));
  const checkpoint = await peakDuring(() => store.checkpoint('d'));
  let copy: Uint8Array | undefined;
  const control = await peakDuring(async () => {
    copy = new Uint8Array(imageBytes).fill(1);
  });
  const figures = (await store.stats()).durability;
  await store.close();
  console.log(JSON.stringify({ n: N, imageBytes, checkpoint, control, copied: copy?.length, checkpoints: figures?.checkpoints }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
