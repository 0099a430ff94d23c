// Disk-mode shards (alwaysRam: false, host/core/originals.ts) for the
// test/quant-disk*.test.ts files: a temporary directory per test, shard
// params for both modes, and result comparisons.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OriginalsFile } from '../../host/core/originals.js';
import { Shard, type ShardParams } from '../../host/core/shard.js';
import type { MetricName } from '../../host/core/abi.js';

interface Teardown { teardown(fn: () => void): void }

/** A fresh directory removed (with every file opened in it closed) when the test ends. */
export function tempDir(t: Teardown): { path: string; file(name: string, dim: number): OriginalsFile } {
  const path = mkdtempSync(join(tmpdir(), 'quiver-disk-'));
  const files: OriginalsFile[] = [];
  t.teardown(() => {
    for (const f of files) f.close();
    rmSync(path, { recursive: true, force: true });
  });
  return {
    path,
    file(name: string, dim: number): OriginalsFile {
      const f = OriginalsFile.create(join(path, name), dim);
      files.push(f);
      return f;
    },
  };
}

export function quantParams(alwaysRam: boolean, dim: number, metric: MetricName = 'l2', extra: Partial<ShardParams> = {}): ShardParams {
  return { dim, metric, M: 16, efConstruction: 100, ef: 64, seed: 7n, quantization: { type: 'int8', quantile: 0.99, alwaysRam }, ...extra };
}

/** An always_ram shard and a disk-mode one (file originals-1.f32) with the same params. */
export function pair(t: Teardown, dim: number, metric: MetricName = 'l2', extra: Partial<ShardParams> = {}) {
  const dir = tempDir(t);
  const file = dir.file('originals-1.f32', dim);
  const ram = Shard.create(quantParams(true, dim, metric, extra));
  const disk = Shard.create(quantParams(false, dim, metric, extra), 0, { originals: file });
  t.teardown(() => { ram.dispose(); disk.dispose(); });
  return { dir, file, ram, disk };
}

export interface Hits { ids: unknown[]; distances: Float32Array }

/** Same ids in the same order and bit-identical distances. */
export function identical(a: Hits, b: Hits): boolean {
  return a.ids.length === b.ids.length && a.ids.every((id, i) => id === b.ids[i]) && a.distances.every((d, i) => Object.is(d, b.distances[i]));
}
