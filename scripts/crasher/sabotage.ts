// Damage done to the data directory between a kill and the restart, for a
// negative control: a harness that passes on a store that lost acknowledged
// writes would prove nothing.
import { readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';

/** The log segment files (*.wal) under `dir`, grouped by the directory they sit in. */
async function segmentsByDir(dir: string, out = new Map<string, string[]>()): Promise<Map<string, string[]>> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await segmentsByDir(path, out);
    else if (entry.isFile() && entry.name.endsWith('.wal')) {
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
  for (const [dir, names] of await segmentsByDir(dataDir)) {
    const last = join(dir, names.sort().at(-1)!);
    const { size } = await stat(last);
    if (size === 0) continue;
    const keep = Math.floor(size / 2);
    await truncate(last, keep);
    cut += size - keep;
  }
  return cut;
}
