// What the crash test believes is in the collection: only what the server
// acknowledged (a 200 to a `wait=true` write), plus, for each write whose
// answer never came, the state it would leave (it may or may not have
// happened). After a restart, check() compares what the server holds with
// that, point by point, and adopts what it found where either was allowed,
// so the next round starts from an exact model again.

export type Payload = Record<string, unknown>;

/** A point as written: its vector (f32 values) and payload (undefined: none). */
export interface Version {
  vector: Float32Array;
  payload: Payload | undefined;
}

/** A point's state: present with a version, or absent (null). */
export type State = Version | null;

export type FailureKind =
  | 'restart-failed'
  | 'collection-lost'
  | 'collection-config'
  | 'missing'
  | 'resurrected'
  | 'wrong-vector'
  | 'wrong-payload'
  | 'unexpected-id'
  | 'duplicate-id'
  | 'count-mismatch'
  | 'self-query'
  | 'write-error'
  | 'read-error';

export interface Failure {
  kind: FailureKind;
  /** How many points (or checks) failed this way. */
  count: number;
  /** Up to a few cases, for the log. */
  examples: string[];
}

const MAX_EXAMPLES = 5;

/** Failures by kind, with a count and the first few examples of each. */
export class Failures {
  readonly #byKind = new Map<FailureKind, Failure>();

  add(kind: FailureKind, example: string): void {
    let f = this.#byKind.get(kind);
    if (f === undefined) this.#byKind.set(kind, (f = { kind, count: 0, examples: [] }));
    f.count++;
    if (f.examples.length < MAX_EXAMPLES) f.examples.push(example);
  }

  list(): Failure[] {
    return [...this.#byKind.values()];
  }

  get size(): number {
    return this.#byKind.size;
  }
}

/** JSON with object keys sorted, so payloads compare whatever order the server writes keys in. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
  });
}

/** A stored payload: no payload, null and {} are all "none". */
function payloadText(p: Payload | null | undefined): string {
  return p === undefined || p === null || Object.keys(p).length === 0 ? '{}' : canonical(p);
}

/** Bit-exact f32 comparison (NaN never written; -0 and 0 differ, as bits do). */
export function sameVector(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function sameState(a: State, b: State): boolean {
  if (a === null || b === null) return a === b;
  return sameVector(a.vector, b.vector) && payloadText(a.payload) === payloadText(b.payload);
}

function describe(s: State): string {
  if (s === null) return 'absent';
  const v = Array.from(s.vector.subarray(0, 3), (x) => x.toPrecision(9)).join(', ');
  return `[${v}, ...] ${payloadText(s.payload).slice(0, 80)}`;
}

/** Every point that can be written: its id (number or UUID string) by key. */
export type IdKey = string;

export function keyOf(id: number | string): IdKey {
  return typeof id === 'number' ? `#${id}` : id;
}

export class Model {
  /** Acknowledged state of every id ever written (null after an acknowledged delete). */
  readonly #acked = new Map<IdKey, State>();
  /** For an id whose last write got no answer: the state that write would leave. */
  readonly #unknown = new Map<IdKey, State>();

  /** A write is about to be sent: until its answer comes, each of its ids may end in `state`. */
  sent(key: IdKey, state: State): void {
    this.#unknown.set(key, state);
  }

  /** The write's 200 came: `state` is now the truth for `key`. */
  acknowledged(key: IdKey, state: State): void {
    this.#acked.set(key, state);
    this.#unknown.delete(key);
  }

  /** The acknowledged state (null: absent, or never written). */
  expected(key: IdKey): State {
    return this.#acked.get(key) ?? null;
  }

  get unknownCount(): number {
    return this.#unknown.size;
  }

  /** Points the model knows to be present (not counting unknown outcomes). */
  get liveCount(): number {
    let n = 0;
    for (const s of this.#acked.values()) if (s !== null) n++;
    return n;
  }

  /**
   * The fewest and the most points the collection may hold: every id whose
   * acknowledged and unanswered states are both present counts in both,
   * one with a single present state only in the most.
   */
  sizeBounds(): [min: number, max: number] {
    let min = 0;
    let max = 0;
    const keys = new Set<IdKey>([...this.#acked.keys(), ...this.#unknown.keys()]);
    for (const k of keys) {
      const a = (this.#acked.get(k) ?? null) !== null;
      const u = this.#unknown.has(k) ? this.#unknown.get(k) !== null : a;
      if (a && u) min++;
      if (a || u) max++;
    }
    return [min, max];
  }

  /** Live points whose state is known, for self-queries. */
  livePoints(): [IdKey, Version][] {
    const out: [IdKey, Version][] = [];
    for (const [k, s] of this.#acked) if (s !== null && !this.#unknown.has(k)) out.push([k, s]);
    return out;
  }

  /**
   * Compares what the server holds (`observed`, by key) with the model.
   * An id with no unknown write must be exactly its acknowledged state; an
   * id with one may be that or the unknown write's. Where the server is
   * allowed, the model adopts it (the unknown is resolved); where it is
   * not, the failure is recorded and the model still adopts what the server
   * has, so a later round reports new losses rather than the same ones.
   */
  check(observed: Map<IdKey, Version>, failures: Failures): { unknownApplied: number } {
    let unknownApplied = 0;
    const keys = new Set<IdKey>([...this.#acked.keys(), ...this.#unknown.keys(), ...observed.keys()]);
    for (const key of keys) {
      const seen: State = observed.get(key) ?? null;
      const acked = this.#acked.get(key);
      const wanted = acked ?? null;
      const allowed: State[] = [wanted];
      if (this.#unknown.has(key)) allowed.push(this.#unknown.get(key)!);
      if (allowed.length > 1 && !sameState(wanted, seen) && sameState(allowed[1]!, seen)) unknownApplied++;
      if (!allowed.some((s) => sameState(s, seen))) {
        const also = allowed.length > 1 ? ` or (unanswered write) ${describe(allowed[1]!)}` : '';
        const what = `${key}: expected ${describe(wanted)}${also}; found ${describe(seen)}`;
        if (seen === null) failures.add('missing', what);
        else if (acked === undefined && allowed.length === 1) failures.add('unexpected-id', what);
        else if (allowed.every((s) => s === null)) failures.add('resurrected', what);
        else if (allowed.some((s) => s !== null && sameVector(s.vector, seen.vector))) failures.add('wrong-payload', what);
        else failures.add('wrong-vector', what);
      }
      if (seen === null && acked === undefined) this.#acked.delete(key);
      else this.#acked.set(key, seen);
    }
    this.#unknown.clear();
    return { unknownApplied };
  }
}
