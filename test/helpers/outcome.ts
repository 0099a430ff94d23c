import { QuiverError } from '../../host/index.js';

export type Outcome<T> = { ok: true; value: T } | { ok: false; err: unknown };

/** What a promise settled with, without ever leaving a rejection unhandled. */
export function watch<T>(p: Promise<T>): Promise<Outcome<T>> {
  return p.then((value) => ({ ok: true as const, value }), (err: unknown) => ({ ok: false as const, err }));
}

/** A promise's outcome plus whether it has settled yet: to assert that one call settled while another was still running. */
export function track<T>(p: Promise<T>): { outcome: Promise<Outcome<T>>; settled: () => boolean } {
  let done = false;
  const outcome = watch(p).then((o) => {
    done = true;
    return o;
  });
  return { outcome, settled: () => done };
}

export const codeOf = (err: unknown): unknown => (err instanceof QuiverError ? err.code : `not a QuiverError: ${String(err)}`);
