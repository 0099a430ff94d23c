// The durable Store on a real file system (a tmp directory): what was
// acknowledged is there after a reopen, whether the store closed or its
// process was killed with SIGKILL (scripts/durable-child.ts, run under plain
// node from dist/); the directory lock; a damaged dataset refuses alone;
// wait false; a lost worker thread's shards come back from their files.
import t from 'tap';
import fc from 'fast-check';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../host/index.js';
import { rng } from './helpers/data.js';
import { codeOf, watch } from './helpers/outcome.js';
import { buildDist, CallError, DurableChild } from './fixtures/durable-driver.js';

// _testHook('exit') is honoured only with this set when a store opens
process.env.QUIVER_TEST_HOOKS = '1';

const DIM = 8;
const ID_SPACE = 300;
const ALL_IDS = Array.from({ length: ID_SPACE }, (_, i) => i);
const GRAPH = { dim: DIM, M: 8, efConstruction: 32 };

interface Point {
  vector: number[];
  payload: unknown;
}
type Model = Map<string, Map<number, Point>>;

/** A vector (exact as f32) and, for most ids, a payload; both depend on the write that put them there. */
function pointOf(id: number, gen: number): Point {
  const r = rng(id * 7919 + gen * 104729 + 3);
  const vector = Array.from(Float32Array.from({ length: DIM }, () => r() * 2 - 1));
  const payload = (id + gen) % 4 === 0 ? null : { id, gen, tags: ['a', 'b'].slice(0, (id + gen) % 3), text: 'p'.repeat((id * 7 + gen) % 30) };
  return { vector, payload };
}

function batch(from: number, n: number, gen: number): { ids: number[]; vectors: number[][]; payloads: unknown[]; points: Point[] } {
  const ids = Array.from({ length: Math.min(n, ID_SPACE - from) }, (_, i) => from + i);
  const points = ids.map((id) => pointOf(id, gen));
  return { ids, vectors: points.map((p) => p.vector), payloads: points.map((p) => p.payload), points };
}

const tmp = (t: Tap): string => {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-durable-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};
type Tap = Pick<typeof t, 'teardown'>;

interface Retrieved {
  id: number;
  vector?: number[] | Float32Array;
  payload?: unknown;
}

/** Differences between a dataset as read back and its model (empty when they agree). */
function diffPoints(count: number, got: Retrieved[], want: Map<number, Point>): string[] {
  const out: string[] = [];
  if (count !== want.size) out.push(`count ${count}, model ${want.size}`);
  const seen = new Set<number>();
  for (const r of got) {
    seen.add(r.id);
    const w = want.get(r.id);
    if (w === undefined) {
      out.push(`id ${r.id} present, model has it absent`);
      continue;
    }
    if (JSON.stringify(Array.from(r.vector ?? [])) !== JSON.stringify(w.vector)) out.push(`id ${r.id}: vector ${JSON.stringify(Array.from(r.vector ?? []))} != ${JSON.stringify(w.vector)}`);
    if (JSON.stringify(r.payload ?? null) !== JSON.stringify(w.payload)) out.push(`id ${r.id}: payload ${JSON.stringify(r.payload)} != ${JSON.stringify(w.payload)}`);
  }
  for (const id of want.keys()) if (!seen.has(id)) out.push(`id ${id} absent, model has it`);
  return out.slice(0, 10);
}

/** A store (in this process or a child) as far as these checks need it. */
interface Reader {
  listDatasets(): Promise<string[]> | string[];
  count(name: string): Promise<number>;
  retrieve(name: string, ids: number[]): Promise<Retrieved[]>;
}

const childReader = (c: DurableChild): Reader => ({
  listDatasets: () => c.call<string[]>('listDatasets'),
  count: (name) => c.call<number>('count', name),
  retrieve: (name, ids) => c.call<Retrieved[]>('retrieve', name, ids),
});

async function diffStore(store: Reader, model: Model): Promise<string[]> {
  const out: string[] = [];
  const names = [...(await store.listDatasets())].sort();
  if (JSON.stringify(names) !== JSON.stringify([...model.keys()].sort())) out.push(`datasets ${JSON.stringify(names)}, model ${JSON.stringify([...model.keys()].sort())}`);
  for (const [name, points] of model) {
    if (!names.includes(name)) continue;
    out.push(...diffPoints(await store.count(name), await store.retrieve(name, ALL_IDS), points).map((d) => `${name}: ${d}`));
  }
  return out;
}

async function openChild(path: string): Promise<DurableChild> {
  const r = await DurableChild.open(path);
  if (!('recovery' in r)) throw new Error(`the child could not open ${path}: ${r.code} ${r.message}`);
  return r.child;
}

// the children run the compiled host: compile what is in the tree now
buildDist();

type Cmd =
  | { op: 'create'; ds: number }
  | { op: 'insert'; ds: number; from: number; n: number; wait: boolean }
  | { op: 'delete'; ds: number; from: number; n: number; wait: boolean }
  | { op: 'compact'; ds: number }
  | { op: 'checkpoint' }
  | { op: 'drop'; ds: number }
  | { op: 'kill' }
  | { op: 'reopen' };

const NAMES = ['alpha', 'beta'];
const ds = fc.integer({ min: 0, max: NAMES.length - 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('create' as const), ds }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('insert' as const), ds, from: fc.integer({ min: 0, max: ID_SPACE - 1 }), n: fc.integer({ min: 1, max: 80 }), wait: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), ds, from: fc.integer({ min: 0, max: ID_SPACE - 1 }), n: fc.integer({ min: 1, max: 60 }), wait: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('compact' as const), ds }) },
  { weight: 1, arbitrary: fc.constant({ op: 'checkpoint' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), ds }) },
  { weight: 2, arbitrary: fc.constant({ op: 'kill' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reopen' as const }) },
);

t.test('property: random create / insert / delete / compact / checkpoint / drop / SIGKILL / close sequences: after every reopen the store equals the model', async (t) => {
  const RUNS = Number(process.env.QUIVER_DURABLE_RUNS ?? 20);
  let runs = 0;
  let kills = 0;
  let points = 0;
  await fc.assert(fc.asyncProperty(fc.array(cmd, { minLength: 4, maxLength: 24 }), async (cmds) => {
    runs++;
    const path = mkdtempSync(join(tmpdir(), 'quiver-prop-'));
    const model: Model = new Map();
    let gen = 0;
    let child = await openChild(path);
    const expectCode = async (p: Promise<unknown>, code: string, what: string): Promise<void> => {
      const r = await watch(p);
      if (r.ok || (r.err as CallError).code !== code) throw new Error(`${what}: expected ${code}, got ${r.ok ? 'success' : `${(r.err as CallError).code} ${(r.err as Error).message}`}`);
    };
    const reopen = async (how: 'kill' | 'close'): Promise<void> => {
      if (how === 'kill') {
        kills++;
        await child.kill();
      } else {
        await child.close();
      }
      child = await openChild(path);
      const d = await diffStore(childReader(child), model);
      if (d.length > 0) throw new Error(`after ${how === 'kill' ? 'SIGKILL' : 'a close'} and a reopen: ${d.join('; ')}`);
    };
    try {
      // both datasets exist at first, so most writes land; a drop and a create come later at random
      for (const c of [{ op: 'create', ds: 0 }, { op: 'create', ds: 1 }, ...cmds] as Cmd[]) {
        const name = 'ds' in c ? NAMES[c.ds]! : '';
        const m = model.get(name);
        switch (c.op) {
          case 'create':
            if (m !== undefined) await expectCode(child.call('createDataset', name, { ...GRAPH, shards: 2 }), 'QUIVER_ERR_EXISTS', `create ${name} twice`);
            else {
              await child.call('createDataset', name, { ...GRAPH, shards: 2 });
              model.set(name, new Map());
            }
            break;
          case 'insert': {
            const b = batch(c.from, c.n, ++gen);
            const call = child.call<{ inserted: number; acknowledged?: boolean }>('insert', name, b.ids, b.vectors, { payloads: b.payloads, wait: c.wait });
            if (m === undefined) {
              await expectCode(call, 'QUIVER_ERR_NOT_FOUND', `insert into absent ${name}`);
              break;
            }
            const r = await call;
            if (r.inserted !== b.ids.length || (r.acknowledged === true) === c.wait) throw new Error(`insert answered ${JSON.stringify(r)} (wait ${c.wait})`);
            b.ids.forEach((id, i) => m.set(id, b.points[i]!));
            points += b.ids.length;
            break;
          }
          case 'delete': {
            const ids = batch(c.from, c.n, 0).ids;
            const call = child.call<{ deleted: number }>('delete', name, ids, { wait: c.wait });
            if (m === undefined) {
              await expectCode(call, 'QUIVER_ERR_NOT_FOUND', `delete from absent ${name}`);
              break;
            }
            const r = await call;
            const present = ids.filter((id) => m.has(id)).length;
            // with wait true it says how many went (only safe to know when no wait-false write is pending: always so here, a shard applies in order)
            if (c.wait && r.deleted !== present) throw new Error(`delete answered ${r.deleted}, the model had ${present} of the ids`);
            for (const id of ids) m.delete(id);
            break;
          }
          case 'compact':
            if (m === undefined) await expectCode(child.call('compact', name), 'QUIVER_ERR_NOT_FOUND', `compact absent ${name}`);
            else await child.call('compact', name);
            break;
          case 'checkpoint':
            await child.call('checkpoint');
            break;
          case 'drop':
            if (m === undefined) await expectCode(child.call('dropDataset', name), 'QUIVER_ERR_NOT_FOUND', `drop absent ${name}`);
            else {
              await child.call('dropDataset', name);
              model.delete(name);
            }
            break;
          case 'kill':
            await reopen('kill');
            break;
          case 'reopen':
            await reopen('close');
            break;
        }
      }
      await reopen('kill');
      await reopen('close');
    } finally {
      await child.kill();
      rmSync(path, { recursive: true, force: true });
    }
  }), { numRuns: RUNS, endOnFailure: process.env.QUIVER_NO_SHRINK === '1', ...(process.env.QUIVER_SEED === undefined ? {} : { seed: Number(process.env.QUIVER_SEED) }) });
  t.ok(runs >= RUNS, `${runs} sequences (${kills} SIGKILLs, ${points} points written) equal the model after every reopen`);
});

t.test('a second open of the same directory fails at once with QUIVER_ERR_LOCKED, in this process and in another', async (t) => {
  const path = tmp(t);
  const store = await Store.open({ path, threads: 1 });
  await store.createDataset('x', { ...GRAPH, shards: 1 });
  const second = await watch(Store.open({ path, threads: 1 }));
  t.notOk(second.ok, 'a second Store.open in this process is refused');
  t.equal(second.ok ? 'opened' : codeOf(second.err), 'QUIVER_ERR_LOCKED');
  t.match(second.ok ? '' : (second.err as Error).message, path, 'naming the directory');
  const other = await DurableChild.open(path, 1);
  t.ok('code' in other, 'another process is refused');
  t.equal('code' in other ? other.code : 'opened', 'QUIVER_ERR_LOCKED');
  t.same(store.listDatasets(), ['x'], 'the store holding the lock is untouched');
  await store.insert('x', [1], [pointOf(1, 1).vector]);
  await store.close();
  // released at close: the other process opens it now
  const after = await DurableChild.open(path, 1);
  t.ok('recovery' in after, 'after close another process opens the directory');
  if ('recovery' in after) {
    t.equal(await after.child.call('count', 'x'), 1);
    const again = await watch(Store.open({ path, threads: 1 }));
    t.equal(again.ok ? 'opened' : codeOf(again.err), 'QUIVER_ERR_LOCKED', 'and this process is refused while it holds it');
    if (again.ok) await again.value.close();
    await after.child.close();
  }
});

/** Open file descriptors and what each one is. */
function openFds(): Map<string, string> {
  const out = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // the one readdir itself used, closed by now
    }
  }
  return out;
}

/** Record start offsets in a log segment: [length u32][crc u32][lsn u64][op u8][body]. */
function recordStarts(bytes: Buffer): number[] {
  const starts: number[] = [];
  for (let at = 0; at + 17 <= bytes.length; at += 17 + bytes.readUInt32LE(at)) starts.push(at);
  return starts;
}

t.test('a dataset whose log has a flipped bit refuses with QUIVER_ERR_CORRUPT naming file and offset; the others open; drop removes its files', async (t) => {
  const path = tmp(t);
  const model: Model = new Map([['good', new Map()], ['bad', new Map()]]);
  const child = await openChild(path);
  await child.call('createDataset', 'bad', { ...GRAPH, shards: 1 });
  await child.call('createDataset', 'good', { ...GRAPH, shards: 2 });
  for (let b = 0; b < 10; b++) {
    for (const name of ['bad', 'good']) {
      const x = batch(b * 25, 25, b + 1);
      await child.call('insert', name, x.ids, x.vectors, { payloads: x.payloads });
      x.ids.forEach((id, i) => model.get(name)!.set(id, x.points[i]!));
    }
  }
  // no graceful close: the records stay in the logs, no checkpoint covers them
  await child.kill();
  const catalog = JSON.parse(readFileSync(join(path, 'CATALOG'), 'utf8')) as { datasets: { name: string; id: number }[] };
  const badId = catalog.datasets.find((d) => d.name === 'bad')!.id;
  const walDir = join(path, 'datasets', String(badId), 'shard-0', 'wal');
  const segments = readdirSync(walDir).filter((n) => n.endsWith('.wal'));
  t.equal(segments.length, 1, 'one log segment');
  const file = join(walDir, segments[0]!);
  const bytes = readFileSync(file);
  const starts = recordStarts(bytes);
  t.equal(starts.length, 10, "ten records in the bad dataset's log");
  const victim = starts[4]!;
  bytes[victim + 17 + 40]! ^= 0x01;
  writeFileSync(file, bytes);

  const store = await Store.open({ path, threads: 2 });
  const report = store.recovery.find((r) => r.dataset === 'bad');
  t.match(String(report?.error), file, 'the recovery report names the damaged file');
  t.notOk(store.recovery.find((r) => r.dataset === 'good')?.error, 'and no error for the other dataset');
  for (const [what, call] of [
    ['count', () => store.count('bad')],
    ['retrieve', () => store.retrieve('bad', [1])],
    ['insert', () => store.insert('bad', [1], [pointOf(1, 99).vector])],
    ['search', () => store.search('bad', pointOf(1, 1).vector, 3)],
  ] as [string, () => Promise<unknown>][]) {
    const r = await watch(call());
    t.equal(r.ok ? 'resolved' : codeOf(r.err), 'QUIVER_ERR_CORRUPT', `${what} on the damaged dataset`);
    if (!r.ok) t.match((r.err as Error).message, `${file}: corrupt at byte ${victim}`, `${what}: the file and the offset of the damaged record`);
  }
  t.same(await diffStore({ listDatasets: () => ['good'], count: (n) => store.count(n), retrieve: (n, ids) => store.retrieve(n, ids) as Promise<Retrieved[]> },
    new Map([['good', model.get('good')!]])), [], 'the other dataset opened with all its data');
  t.ok(readFileSync(file).equals(bytes), 'the damaged log is left as it was, for an operator');
  await store.dropDataset('bad');
  t.notOk(existsSync(join(path, 'datasets', String(badId))), "drop removed the damaged dataset's files");
  t.same(store.listDatasets(), ['good']);
  await store.close();
  const again = await Store.open({ path, threads: 2 });
  t.same(again.listDatasets(), ['good'], 'after a reopen only the good dataset is there');
  t.same(again.recovery.filter((r) => r.error !== undefined), [], 'and it opens without errors');
  t.equal(await again.count('good'), model.get('good')!.size);
  await again.close();
});

t.test('LSNs and dataset ids survive: after a reopen (killed or closed) writes keep working and survive the next one', async (t) => {
  const path = tmp(t);
  const model: Model = new Map([['x', new Map()], ['y', new Map()]]);
  let gen = 0;
  let child = await openChild(path);
  await child.call('createDataset', 'x', { ...GRAPH, shards: 2 });
  await child.call('createDataset', 'y', { ...GRAPH, shards: 1 });
  const write = async (name: string, from: number, n: number, del: [number, number]): Promise<void> => {
    const b = batch(from, n, ++gen);
    await child.call('insert', name, b.ids, b.vectors, { payloads: b.payloads });
    b.ids.forEach((id, i) => model.get(name)!.set(id, b.points[i]!));
    const gone = batch(del[0], del[1], 0).ids;
    await child.call('delete', name, gone);
    for (const id of gone) model.get(name)!.delete(id);
  };
  await write('x', 0, 120, [0, 10]);
  await write('y', 0, 50, [5, 5]);
  for (const [round, how] of [[1, 'kill'], [2, 'close'], [3, 'kill'], [4, 'kill'], [5, 'close']] as const) {
    if (how === 'kill') await child.kill();
    else await child.close();
    child = await openChild(path);
    t.same(await diffStore(childReader(child), model), [], `round ${round}: after ${how === 'kill' ? 'SIGKILL' : 'a close'}, the store equals the model`);
    // overwrite, add and delete again, on the log recovered (or the image written at close)
    await write('x', round * 20, 60, [round * 30, 15]);
    await write('y', round * 10, 20, [round * 10 + 3, 4]);
    if (round === 3) {
      // a dataset dropped and made again under its name: the new one gets a new id, the old files never come back
      await child.call('dropDataset', 'y');
      await child.call('createDataset', 'y', { ...GRAPH, shards: 1 });
      model.set('y', new Map());
      await write('y', 200, 30, [210, 2]);
    }
  }
  await child.kill();
  child = await openChild(path);
  t.same(await diffStore(childReader(child), model), [], 'the last round survives too');
  await child.close();
});

t.test('wait false: acknowledged at once, applied in order, visible after a later wait true write, and durable', async (t) => {
  const path = tmp(t);
  const store = await Store.open({ path, threads: 2 });
  await store.createDataset('w', { ...GRAPH, shards: 1 });
  const a = batch(0, 100, 1);
  t.same(await store.insert('w', a.ids, a.vectors, { payloads: a.payloads, wait: false }), { inserted: 100, acknowledged: true }, 'insert wait false: acknowledged');
  t.same(await store.delete('w', [0, 1, 2, 3], { wait: false }), { deleted: 0, acknowledged: true }, 'delete wait false: acknowledged');
  // the same id written, deleted and written again, none waited for: the last one wins
  const v2 = pointOf(50, 2);
  const v3 = pointOf(50, 3);
  await store.insert('w', [50], [v2.vector], { payloads: [v2.payload], wait: false });
  await store.delete('w', [50], { wait: false });
  await store.insert('w', [50], [v3.vector], { payloads: [v3.payload], wait: false });
  await store.delete('w', [60], { wait: false });
  const last = batch(200, 10, 4);
  t.same(await store.insert('w', last.ids, last.vectors, { payloads: last.payloads }), { inserted: 10 }, 'a wait true write');
  const want = new Map<number, Point>();
  a.ids.forEach((id, i) => want.set(id, a.points[i]!));
  for (const id of [0, 1, 2, 3, 60]) want.delete(id);
  want.set(50, v3);
  last.ids.forEach((id, i) => want.set(id, last.points[i]!));
  t.same(diffPoints(await store.count('w'), await store.retrieve('w', ALL_IDS) as Retrieved[], want), [], 'after it, every earlier write is visible, applied in order');
  await store.close();
  const again = await Store.open({ path, threads: 2 });
  t.same(diffPoints(await again.count('w'), await again.retrieve('w', ALL_IDS) as Retrieved[], want), [], 'and all of it survives a reopen');
  await again.close();
});

t.test('a lost worker thread: its durable shards come back from their files on the replacement, with every acknowledged write', async (t) => {
  const path = tmp(t);
  const fdsBefore = openFds();
  const store = await Store.open({ path, threads: 2 });
  await store.createDataset('doomed', { ...GRAPH, shards: 1 });
  await store.createDataset('safe', { ...GRAPH, shards: 1 });
  const [dead] = store._shardThreads('doomed');
  const [alive] = store._shardThreads('safe');
  t.not(dead, alive, 'on different threads');
  const want = new Map<number, Point>();
  for (let b = 0; b < 6; b++) {
    const x = batch(b * 40, 40, b + 1);
    await store.insert('doomed', x.ids, x.vectors, { payloads: x.payloads, wait: b !== 5 });
    x.ids.forEach((id, i) => want.set(id, x.points[i]!));
  }
  await store.delete('doomed', [1, 2, 3, 100]);
  for (const id of [1, 2, 3, 100]) want.delete(id);
  // one checkpoint in the middle: recovery is image plus log
  await store.checkpoint('doomed');
  const late = batch(280, 20, 9);
  await store.insert('doomed', late.ids, late.vectors, { payloads: late.payloads });
  late.ids.forEach((id, i) => want.set(id, late.points[i]!));
  await store.insert('safe', [1], [pointOf(1, 1).vector]);

  const exit = await watch(store._testHook('exit', dead));
  t.notOk(exit.ok, 'the hook rejects: the thread died');
  // straight after the loss: the calls wait for the recovery, none fails
  const count = await watch(store.count('doomed'));
  t.same(count, { ok: true, value: want.size }, 'count answers with every acknowledged point');
  t.same(diffPoints(want.size, await store.retrieve('doomed', ALL_IDS) as Retrieved[], want), [], 'each with its vector and payload');
  const more = batch(0, 10, 20);
  t.same(await store.insert('doomed', more.ids, more.vectors, { payloads: more.payloads }), { inserted: 10 }, 'writes to it work');
  more.ids.forEach((id, i) => want.set(id, more.points[i]!));
  await store.delete('doomed', [5, 6]);
  want.delete(5);
  want.delete(6);
  t.same(diffPoints(await store.count('doomed'), await store.retrieve('doomed', ALL_IDS) as Retrieved[], want), [], 'and are applied');
  t.equal(await store.count('safe'), 1, 'the dataset on the other thread is untouched');
  t.notOk(store._shardThreads('doomed').includes(dead!), 'the shard lives on a live thread now');
  await store.close();
  const again = await Store.open({ path, threads: 2 });
  t.same(diffPoints(await again.count('doomed'), await again.retrieve('doomed', ALL_IDS) as Retrieved[], want), [], 'everything survives a reopen');
  await again.close();
  // the dead thread's log files were open when it died: the process must not keep them
  // (only files of the data directory: under tap, module loaders in starting threads read their own files meanwhile)
  const extra = (): string[] => [...openFds()].filter(([fd, target]) => fdsBefore.get(fd) !== target && target.startsWith(path)).map(([fd, target]) => `${fd} -> ${target}`);
  const deadline = Date.now() + 5000;
  while (extra().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.same(extra(), [], 'no file of the data directory is open after the close');
});

