// The data directory between a kill and the restart: what the checkpoints
// left there (for the round's report), and damage done to it for a negative
// control: a harness that passes on a store that lost acknowledged writes
// would prove nothing.
import { readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';

/** The files under `dir` whose names match, grouped by the directory they sit in. */
async function filesByDir(dir: string, name: RegExp, out = new Map<string, string[]>()): Promise<Map<string, string[]>> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await filesByDir(path, name, out);
    else if (entry.isFile() && name.test(entry.name)) {
      const list = out.get(dir) ?? [];
      list.push(entry.name);
      out.set(dir, list);
    }
  }
  return out;
}

/**
 * Cuts the newest log segment of every shard to half its length, as a store
 * that acknowledged writes it never made durable would be found after a
 * crash: the cut lands inside a record, which recovery takes for a torn
 * write and drops with everything after it. Returns the bytes cut.
 */
export async function cutLogTails(dataDir: string): Promise<number> {
  let cut = 0;
  for (const [dir, names] of await filesByDir(dataDir, /\.wal$/)) {
    const last = join(dir, names.sort().at(-1)!);
    const { size } = await stat(last);
    if (size === 0) continue;
    const keep = Math.floor(size / 2);
    await truncate(last, keep);
    cut += size - keep;
  }
  return cut;
}

/**
 * The newest checkpoint image's sequence number of every shard directory
 * (images are image-<seq>.qvi, seq counting the shard's checkpoints).
 */
export async function checkpointSeqs(dataDir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [dir, names] of await filesByDir(dataDir, /^image-\d+\.qvi$/)) {
    out.set(dir, Math.max(...names.map((n) => Number(/\d+/.exec(n)![0]))));
  }
  return out;
}

/** Checkpoints made between two looks at the directory. */
export function checkpointsBetween(before: Map<string, number>, after: Map<string, number>): number {
  let n = 0;
  for (const [dir, seq] of after) n += seq - (before.get(dir) ?? 0);
  return n;
}
