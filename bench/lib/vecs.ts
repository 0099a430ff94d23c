// .fvecs / .ivecs files (the TEXMEX format of SIFT): records [int32 d][d x float32 or int32].
import { readFileSync } from 'node:fs';

function readVecs(file: string): { n: number; dim: number; data: DataView; bytes: Buffer } {
  const bytes = readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw new Error(`${file}: empty`);
  const dim = view.getInt32(0, true);
  const record = 4 + 4 * dim;
  if (dim <= 0 || bytes.byteLength % record !== 0) throw new Error(`${file}: not a .fvecs/.ivecs file`);
  return { n: bytes.byteLength / record, dim, data: view, bytes };
}

export function readFvecs(file: string): { n: number; dim: number; data: Float32Array } {
  const { n, dim, data } = readVecs(file);
  const out = new Float32Array(n * dim);
  for (let i = 0, off = 0; i < n; i++) {
    if (data.getInt32(off, true) !== dim) throw new Error(`${file}: record ${i} has a different dimension`);
    off += 4;
    for (let j = 0; j < dim; j++, off += 4) out[i * dim + j] = data.getFloat32(off, true);
  }
  return { n, dim, data: out };
}

export function readIvecs(file: string): { n: number; dim: number; data: Int32Array } {
  const { n, dim, data } = readVecs(file);
  const out = new Int32Array(n * dim);
  for (let i = 0, off = 0; i < n; i++) {
    off += 4;
    for (let j = 0; j < dim; j++, off += 4) out[i * dim + j] = data.getInt32(off, true);
  }
  return { n, dim, data: out };
}
