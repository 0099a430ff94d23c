import { ErrorCode, QuiverError } from './errors.js';

/** Vectors in the forms the API accepts: flat n*dim, or one array per vector. */
export type VectorBatch = Float32Array | readonly (ArrayLike<number>)[];
export type Vector = Float32Array | ArrayLike<number>;

function dimensionError(message: string): QuiverError {
  return new QuiverError(ErrorCode.DIMENSION, message);
}

function checkFinite(flat: Float32Array, where: (i: number) => string): void {
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i]!;
    // v - v is NaN for NaN and for +-Infinity
    if (v - v !== 0) {
      throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `${where(i)} is ${v}; vectors must be finite`);
    }
  }
}

/**
 * Flattens and validates a batch of `n` vectors of `dim`: the right length
 * and every value finite. A flat Float32Array is used as is (no copy).
 */
export function flattenBatch(vectors: VectorBatch, n: number, dim: number): Float32Array {
  let flat: Float32Array;
  if (vectors instanceof Float32Array) {
    if (vectors.length !== n * dim) {
      throw dimensionError(`vectors has ${vectors.length} values; ${n} vectors of dim ${dim} need ${n * dim}`);
    }
    flat = vectors;
  } else if (Array.isArray(vectors)) {
    if (vectors.length !== n) throw dimensionError(`vectors has ${vectors.length} entries for ${n} ids`);
    flat = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      const v = vectors[i] as ArrayLike<number> | undefined;
      if (v === null || typeof v !== 'object' || typeof v.length !== 'number') {
        throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `vectors[${i}] must be an array of numbers`);
      }
      if (v.length !== dim) throw dimensionError(`vectors[${i}] has dimension ${v.length}, expected ${dim}`);
      for (let j = 0; j < dim; j++) {
        const x = v[j];
        if (typeof x !== 'number') {
          throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `vectors[${i}][${j}] must be a number`);
        }
        flat[i * dim + j] = x;
      }
    }
  } else {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'vectors must be a Float32Array of n*dim values or an array of vectors');
  }
  checkFinite(flat, (i) => `vectors[${Math.floor(i / dim)}][${i % dim}]`);
  return flat;
}

/** One query vector, validated. */
export function toQuery(query: Vector, dim: number, where = 'query'): Float32Array {
  let q: Float32Array;
  if (query instanceof Float32Array) {
    q = query;
  } else if (query !== null && typeof query === 'object' && typeof (query as ArrayLike<number>).length === 'number') {
    q = Float32Array.from(query as ArrayLike<number>);
  } else {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `${where} must be a Float32Array or an array of numbers`);
  }
  if (q.length !== dim) throw dimensionError(`${where} has dimension ${q.length}, expected ${dim}`);
  checkFinite(q, (i) => `${where}[${i}]`);
  return q;
}

/** Many queries: flat n*dim or an array of vectors. Returns flat + count. */
export function toQueries(queries: VectorBatch, dim: number): { flat: Float32Array; n: number } {
  if (queries instanceof Float32Array) {
    if (queries.length % dim !== 0 || queries.length === 0) {
      throw dimensionError(`queries has ${queries.length} values, not a positive multiple of dim ${dim}`);
    }
    checkFinite(queries, (i) => `queries[${Math.floor(i / dim)}][${i % dim}]`);
    return { flat: queries, n: queries.length / dim };
  }
  if (!Array.isArray(queries)) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, 'queries must be a Float32Array or an array of vectors');
  }
  return { flat: flattenBatch(queries, queries.length, dim), n: queries.length };
}

/** Whether a search's query is one vector (else a batch of them). */
export function isSingleQuery(query: unknown, dim: number): boolean {
  if (query instanceof Float32Array) return query.length === dim;
  if (Array.isArray(query)) return query.length === 0 || typeof query[0] === 'number';
  return true;
}
