// Readings of /proc/self/smaps that tests and scripts share: the
// WebAssembly memories mapped in the process, and resident bytes by kind of
// mapping (what whole-process RSS cannot tell apart).
import { readFileSync } from 'node:fs';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * WebAssembly memories mapped in this process (every thread) and their
 * resident bytes, or undefined without /proc/self/smaps: V8 maps each as a
 * read-write committed prefix directly followed by a reservation of >= 4 GiB
 * (its guard regions). Exact where RSS is not: the mappings themselves.
 */
export function wasmMemories(): { count: number; resident: number } | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return undefined;
  }
  const vmas: { start: number; end: number; perm: string; rss: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) /.exec(line);
    if (m !== null) {
      vmas.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perm: m[3]!, rss: 0 });
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r !== null && vmas.length > 0) vmas[vmas.length - 1]!.rss = Number(r[1]) * 1024;
  }
  let count = 0;
  let resident = 0;
  vmas.forEach((v, i) => {
    if (v.perm !== '---p' || v.end - v.start < 4 * GiB) return;
    const prefix = vmas[i - 1];
    if (prefix === undefined || prefix.perm !== 'rw-p' || prefix.end !== v.start) return;
    count++;
    resident += prefix.rss;
  });
  return { count, resident };
}

/** Resident KiB by mapping kind: glibc's 64 MiB-aligned thread arenas are told from other anonymous maps by their alignment. */
export function residentByKind(): Record<string, number> {
  const kinds: Record<string, number> = { file: 0, heap: 0, arenas: 0, anon: 0 };
  let kind = 'anon';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m !== null) {
      const [start, end, perm, name] = [parseInt(m[1]!, 16), parseInt(m[2]!, 16), m[3]!, m[4]!];
      if (name.startsWith('/')) kind = 'file';
      else if (name === '[heap]') kind = 'heap';
      else if (name === '' && start % (64 * MiB) === 0 && end - start <= 64 * MiB && perm === 'rw-p') kind = 'arenas';
      else kind = 'anon';
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r !== null) kinds[kind]! += Number(r[1]);
  }
  return kinds;
}
