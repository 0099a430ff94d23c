// The rounds of the crash test. Each round: writers upsert and delete over
// HTTP with `wait=true` (or no `wait`, which quiver documents as true) while
// a compactor compacts, the server is SIGKILLed at a random moment,
// restarted on the same data directory, and checked against the model of
// what it acknowledged. The next round writes on the restarted server, with
// the model carried over. After the last round, a graceful stop and restart
// is checked the same way.
//
// Each writer owns the ids w, w + writers, ... and sends one request at a
// time, so the writes to an id are ordered and at most one is unanswered at
// a kill; the writers share shards, so the log still sees concurrent appends.
import { setTimeout as sleep } from 'node:timers/promises';
import { rng, sample } from '../../bench/lib/random.js';
import { Failures, Model, keyOf, type Failure, type IdKey, type Payload, type State, type Version } from './model.js';
import { checkpointSeqs, checkpointsBetween, cutLogTails } from './sabotage.js';
import { spawnServer, type ServerChild } from './server-child.js';

export interface CrashOptions {
  /** dist/host/server/cli.js */
  cli: string;
  seed: number;
  rounds: number;
  writers: number;
  dim: number;
  shards: number;
  threads: number;
  /** Distinct ids written (split between the writers). */
  ids: number;
  maxBatch: number;
  /** The kill comes this long after the round's first acknowledged upsert, uniformly. */
  killMinMs: number;
  killMaxMs: number;
  /** `quiver serve` arguments that say where data lives (--data-dir DIR, or --in-memory). */
  storageArgs: string[];
  /** The child's working directory. */
  cwd: string;
  /** Further `quiver serve` arguments. */
  serverArgs: string[];
  /** The server's data directory, if it has one: checkpoints are counted from its files. */
  dataDir?: string;
  /** A negative control: after each kill, cut the tail of every shard's log in the data directory. */
  sabotage?: boolean;
  /** The collection's `quantization_config` (absent: none). */
  quantization?: unknown;
  log: (line: string) => void;
}

export interface RoundReport {
  round: number | 'graceful';
  seed: number;
  upserts: number;
  upsertedPoints: number;
  deletes: number;
  deletedIds: number;
  compactions: number;
  /** Ids whose last write got no answer (it may or may not have happened). */
  unknown: number;
  /** Of those, how many the restarted server shows as written. */
  unknownApplied: number;
  killAtMs: number;
  restartMs: number;
  live: number;
  selfQueries: number;
  /** Checkpoint images the shards wrote since the last kill, recovery's included (counted from the data directory's files). */
  checkpoints: number;
  /** Log bytes cut by the sabotage before the restart. */
  sabotagedBytes: number;
  failures: Failure[];
}

export interface CrashResult {
  ok: boolean;
  seed: number;
  rounds: RoundReport[];
  failures: (Failure & { round: number | 'graceful' })[];
}

const COLLECTION = 'crash';
const REQUEST_TIMEOUT_MS = 60_000;
const SCROLL_PAGE = 500;
const SELF_QUERIES = 16;
const FIRST_ACK_TIMEOUT_MS = 60_000;

/** A deterministic UUID for an id number (some ids are UUIDs, to cover both kinds in the log). */
function uuidOf(i: number): string {
  const hex = (Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, '0') + i.toString(16).padStart(24, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const idOf = (i: number): number | string => (i % 4 === 3 ? uuidOf(i) : i);

class Unanswered extends Error {}

interface Answer {
  status: number;
  body: any;
}

/** One HTTP call; a request that gets no answer (connection lost, timeout) throws Unanswered. */
async function call(url: string, method: string, path: string, body?: unknown): Promise<Answer> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url + path, {
      method,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    text = await res.text();
  } catch (err) {
    throw new Unanswered(`${method} ${path}: no answer (${(err as Error).cause === undefined ? (err as Error).message : String((err as Error).cause)})`);
  }
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text for the message
  }
  return { status: res.status, body: parsed };
}

const brief = (a: Answer): string => `${a.status} ${JSON.stringify(a.body).slice(0, 300)}`;

/** The f32 values of a JSON vector. */
const f32 = (values: number[]): Float32Array => Float32Array.from(values);

interface RoundState {
  url: string;
  stopping: boolean;
  /** Called at the round's first acknowledged upsert (the kill is timed from there). */
  firstAck: () => void;
  model: Model;
  failures: Failures;
  report: RoundReport;
}

/** One writer: sequential upserts and deletes of its own ids, so each id's writes are ordered. */
async function writer(opts: CrashOptions, st: RoundState, w: number, seed: number): Promise<void> {
  const rand = rng(seed);
  const mine: number[] = [];
  for (let i = w; i < opts.ids; i += opts.writers) mine.push(i);
  let seq = 0;
  while (!st.stopping) {
    seq++;
    const upsert = rand() < 0.65;
    const k = upsert ? 1 + Math.floor(rand() * opts.maxBatch) : 1 + Math.floor(rand() * Math.max(1, opts.maxBatch / 4));
    const picked = Array.from(sample(mine.length, Math.min(k, mine.length), rand), (j) => mine[j]!);
    const ids = picked.map(idOf);
    // quiver documents an absent `wait` as true: every fourth write leaves it out
    const wait = seq % 4 === 0 ? '' : '?wait=true';
    let answer: Answer;
    try {
      if (upsert) {
        const versions: Version[] = picked.map((i, j) => {
          const vector = new Float32Array(opts.dim);
          for (let d = 0; d < opts.dim; d++) vector[d] = rand() * 2 - 1;
          const payload: Payload | undefined = rand() < 0.1 ? undefined : {
            tag: `r${String(st.report.round)}-w${w}-${seq}-${j}`,
            writer: w,
            seq,
            n: i,
            f: Math.fround(rand() * 1000) / 8,
            flags: [rand() < 0.5, rand() < 0.5],
            nested: { text: 'ünïcödé ✓', list: [i % 7, seq % 11] },
          };
          return { vector, payload };
        });
        ids.forEach((id, j) => st.model.sent(keyOf(id), versions[j]!));
        // both body shapes, so both reach the log
        const body = seq % 2 === 0
          ? { points: ids.map((id, j) => ({ id, vector: Array.from(versions[j]!.vector), payload: versions[j]!.payload ?? null })) }
          : { batch: { ids, vectors: versions.map((v) => Array.from(v.vector)), payloads: versions.map((v) => v.payload ?? null) } };
        answer = await call(st.url, 'PUT', `/collections/${COLLECTION}/points${wait}`, body);
        if (answer.status === 200 && answer.body?.result?.status === 'completed') {
          ids.forEach((id, j) => st.model.acknowledged(keyOf(id), versions[j]!));
          if (st.report.upserts++ === 0) st.firstAck();
          st.report.upsertedPoints += ids.length;
          continue;
        }
      } else {
        ids.forEach((id) => st.model.sent(keyOf(id), null));
        answer = await call(st.url, 'POST', `/collections/${COLLECTION}/points/delete${wait}`, { points: ids });
        if (answer.status === 200 && answer.body?.result?.status === 'completed') {
          ids.forEach((id) => st.model.acknowledged(keyOf(id), null));
          st.report.deletes++;
          st.report.deletedIds += ids.length;
          continue;
        }
      }
    } catch (err) {
      if (!(err instanceof Unanswered)) throw err;
      if (!st.stopping) st.failures.add('write-error', `writer ${w}: ${err.message} while the server was up`);
      return;
    }
    // an answer that is not a completed write: the write stays unknown, and the run is wrong
    st.failures.add('write-error', `writer ${w}: ${upsert ? 'upsert' : 'delete'} of ${ids.length} answered ${brief(answer)}`);
    return;
  }
}

/** Compactions at random intervals while the writers run. */
async function compactor(st: RoundState, seed: number): Promise<void> {
  const rand = rng(seed);
  while (!st.stopping) {
    await sleep(50 + rand() * 300);
    if (st.stopping) return;
    let answer: Answer;
    try {
      answer = await call(st.url, 'POST', `/collections/${COLLECTION}/compact`);
    } catch (err) {
      if (!(err instanceof Unanswered)) throw err;
      if (!st.stopping) st.failures.add('write-error', `compact: ${err.message} while the server was up`);
      return;
    }
    if (answer.status !== 200) {
      st.failures.add('write-error', `compact answered ${brief(answer)}`);
      return;
    }
    st.report.compactions++;
  }
}

/** Every point the server holds, by key, through scroll; duplicates are failures. */
async function scrollAll(url: string, dim: number, failures: Failures): Promise<Map<IdKey, Version> | undefined> {
  const out = new Map<IdKey, Version>();
  let offset: unknown = null;
  for (let page = 0; ; page++) {
    const a = await call(url, 'POST', `/collections/${COLLECTION}/points/scroll`, {
      limit: SCROLL_PAGE, with_vector: true, with_payload: true, ...(offset === null ? {} : { offset }),
    });
    if (a.status !== 200) {
      failures.add('read-error', `scroll answered ${brief(a)}`);
      return undefined;
    }
    for (const p of a.body.result.points as { id: number | string; vector: number[]; payload: Payload | null }[]) {
      const key = keyOf(p.id);
      if (out.has(key)) failures.add('duplicate-id', `scroll returned ${key} twice`);
      if (!Array.isArray(p.vector) || p.vector.length !== dim) {
        failures.add('wrong-vector', `${key}: scroll returned vector ${JSON.stringify(p.vector)?.slice(0, 80)}`);
        continue;
      }
      out.set(key, { vector: f32(p.vector), payload: p.payload ?? undefined });
    }
    offset = a.body.result.next_page_offset;
    if (offset === null || offset === undefined) return out;
    if (page > 1e5) {
      failures.add('read-error', 'scroll did not end');
      return undefined;
    }
  }
}

/** After a restart: the collection, every point, the count, and self-queries of a sample. */
async function check(opts: CrashOptions, st: RoundState, rand: () => number): Promise<void> {
  const { failures, model, report } = st;
  const info = await call(st.url, 'GET', `/collections/${COLLECTION}`);
  let observed: Map<IdKey, Version>;
  if (info.status === 404) {
    failures.add('collection-lost', `GET /collections/${COLLECTION} answered ${brief(info)} after the restart`);
    observed = new Map();
  } else if (info.status !== 200) {
    failures.add('read-error', `GET /collections/${COLLECTION} answered ${brief(info)}`);
    return;
  } else {
    const params = info.body.result?.config?.params;
    const got = { size: params?.vectors?.size, distance: params?.vectors?.distance, shards: params?.shard_number };
    const want = { size: opts.dim, distance: 'Euclid', shards: opts.shards };
    if (JSON.stringify(got) !== JSON.stringify(want)) failures.add('collection-config', `expected ${JSON.stringify(want)}, found ${JSON.stringify(got)}`);
    const scrolled = await scrollAll(st.url, opts.dim, failures);
    if (scrolled === undefined) return;
    observed = scrolled;
    const counted = await call(st.url, 'POST', `/collections/${COLLECTION}/points/count`, { exact: true });
    if (counted.status !== 200) failures.add('read-error', `count answered ${brief(counted)}`);
    else if (counted.body.result.count !== observed.size) {
      failures.add('count-mismatch', `count says ${counted.body.result.count}, a full scroll returned ${observed.size}`);
    }
  }
  const [min, max] = model.sizeBounds();
  if (observed.size < min || observed.size > max) {
    failures.add('count-mismatch', `the server holds ${observed.size} points; the model allows ${min}..${max}`);
  }
  report.unknown = model.unknownCount;
  report.unknownApplied = model.check(observed, failures).unknownApplied;
  report.live = observed.size;
  if (info.status !== 200) return;

  const live = model.livePoints();
  const picks = sample(live.length, Math.min(SELF_QUERIES, live.length), rand);
  for (const [n, j] of Array.from(picks).entries()) {
    const [key, version] = live[j]!;
    const vector = Array.from(version.vector);
    // exact: the beam covers the whole collection, so a miss is a point the graph cannot reach, not recall
    const params = { exact: true };
    const a = n % 2 === 0
      ? await call(st.url, 'POST', `/collections/${COLLECTION}/points/search`, { vector, limit: 1, params })
      : await call(st.url, 'POST', `/collections/${COLLECTION}/points/query`, { query: vector, limit: 1, params });
    if (a.status !== 200) {
      failures.add('read-error', `self-query answered ${brief(a)}`);
      continue;
    }
    const hits = (n % 2 === 0 ? a.body.result : a.body.result.points) as { id: number | string; score: number }[];
    if (hits.length === 0 || keyOf(hits[0]!.id) !== key || !(hits[0]!.score <= 1e-6)) {
      failures.add('self-query', `${key}: rank 1 was ${hits.length === 0 ? 'nothing' : `${keyOf(hits[0]!.id)} at ${hits[0]!.score}`}`);
    }
    report.selfQueries++;
  }
}

function newReport(round: number | 'graceful', seed: number): RoundReport {
  return {
    round, seed, upserts: 0, upsertedPoints: 0, deletes: 0, deletedIds: 0, compactions: 0,
    unknown: 0, unknownApplied: 0, killAtMs: 0, restartMs: 0, live: 0, selfQueries: 0, checkpoints: 0, sabotagedBytes: 0, failures: [],
  };
}

function line(r: RoundReport): string {
  const head = r.round === 'graceful' ? 'graceful restart' : `round ${r.round}`;
  return `${head} seed ${r.seed}: acked ${r.upserts} upserts (${r.upsertedPoints} points), ${r.deletes} deletes (${r.deletedIds} ids), `
    + `${r.compactions} compactions, ${r.checkpoints} checkpoints; ${r.round === 'graceful' ? 'SIGTERM' : 'SIGKILL'} ${r.killAtMs} ms after the first ack; unknown ${r.unknown} (${r.unknownApplied} applied); `
    + `${r.sabotagedBytes > 0 ? `SABOTAGE: cut ${r.sabotagedBytes} log bytes; ` : ''}restart ${r.restartMs} ms; live ${r.live}; ${r.selfQueries} self-queries; ${r.failures.length === 0 ? 'ok' : `FAILED: ${r.failures.map((f) => `${f.kind} x${f.count}`).join(', ')}`}`;
}

export async function crash(opts: CrashOptions): Promise<CrashResult> {
  const master = rng(opts.seed);
  const start = (): Promise<ServerChild> => spawnServer({
    cli: opts.cli,
    cwd: opts.cwd,
    args: ['serve', '--port', '0', '--threads', String(opts.threads), ...opts.storageArgs, ...opts.serverArgs],
    timeoutMs: 120_000,
  });
  const model = new Model();
  const result: CrashResult = { ok: true, seed: opts.seed, rounds: [], failures: [] };
  let server = await start();
  let images = new Map<string, number>();
  try {
    const created = await call(server.url, 'PUT', `/collections/${COLLECTION}?wait=true`, {
      vectors: { size: opts.dim, distance: 'Euclid' }, shard_number: opts.shards,
      ...(opts.quantization === undefined ? {} : { quantization_config: opts.quantization }),
    });
    if (created.status !== 200) throw new Error(`creating the collection answered ${brief(created)}`);

    for (let round = 0; round <= opts.rounds; round++) {
      const graceful = round === opts.rounds;
      const seed = Math.floor(master() * 2 ** 32);
      const rand = rng(seed);
      let firstAck!: () => void;
      const acked = new Promise<void>((resolve) => (firstAck = resolve));
      const st: RoundState = {
        url: server.url, stopping: false, firstAck, model, failures: new Failures(), report: newReport(graceful ? 'graceful' : round, seed),
      };
      const killAt = Math.round(opts.killMinMs + rand() * (opts.killMaxMs - opts.killMinMs));
      st.report.killAtMs = killAt;
      const tasks = [
        ...Array.from({ length: opts.writers }, (_, w) => writer(opts, st, w, Math.floor(rand() * 2 ** 32))),
        compactor(st, Math.floor(rand() * 2 ** 32)),
      ];
      // timed from the first acknowledged upsert, so a slow start (a loaded
      // machine) still has the kill land among acknowledged writes
      const exited = server.exited.then(() => 'died' as const);
      let outcome = await Promise.race([acked.then(() => 'acked' as const), exited, sleep(FIRST_ACK_TIMEOUT_MS, undefined, { ref: false }).then(() => 'slow' as const)]);
      if (outcome === 'acked') outcome = await Promise.race([sleep(killAt).then(() => 'acked' as const), exited]);
      st.stopping = true;
      if (outcome === 'slow') st.failures.add('write-error', `no upsert was acknowledged within ${FIRST_ACK_TIMEOUT_MS} ms`);
      const died = outcome === 'died';
      if (died) st.failures.add('write-error', `the server exited on its own during the writes: ${JSON.stringify(await server.exited)}\n${server.stderr().slice(-2000)}`);
      if (graceful) {
        // a graceful stop lets the requests in flight finish: there is nothing unknown
        await Promise.all(tasks);
        const exit = await server.stop();
        if (exit.code !== 0) st.failures.add('write-error', `a graceful stop exited ${JSON.stringify(exit)}\n${server.stderr().slice(-2000)}`);
      } else {
        await server.kill();
        await Promise.all(tasks);
      }
      if (opts.dataDir !== undefined) {
        const now = await checkpointSeqs(opts.dataDir);
        st.report.checkpoints = checkpointsBetween(images, now);
        images = now;
        if (opts.sabotage === true && !graceful) st.report.sabotagedBytes = await cutLogTails(opts.dataDir);
      }
      const t0 = performance.now();
      let restarted = false;
      try {
        server = await start();
        restarted = true;
        st.report.restartMs = Math.round(performance.now() - t0);
        st.url = server.url;
        await check(opts, st, rand);
      } catch (err) {
        if (!restarted) st.failures.add('restart-failed', (err as Error).message);
        else if (err instanceof Unanswered) st.failures.add('read-error', `${err.message}\n${server.stderr().slice(-2000)}`);
        else throw err;
      }
      st.report.failures = st.failures.list();
      result.rounds.push(st.report);
      opts.log(line(st.report));
      if (st.failures.size > 0) {
        result.ok = false;
        for (const f of st.report.failures) result.failures.push({ ...f, round: st.report.round });
        for (const f of st.report.failures) for (const e of f.examples) opts.log(`  ${f.kind}: ${e}`);
        break;
      }
    }
  } finally {
    await server.stop();
  }
  return result;
}
