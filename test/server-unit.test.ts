// The server in-process (buildServer + inject) and its pieces: option
// parsing, shapes, error mapping, Arrow checks, what a closed store answers.
import { resolve } from 'node:path';
import t from 'tap';
import { spawn } from 'node:child_process';
import { Field, FixedSizeList, Float32, Float64, Int32, List, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { ErrorCode, QuiverError, Store } from '../host/index.js';
import { buildServer, DEFAULT_BODY_LIMIT } from '../host/server/app.js';
import { ConfigError, DEFAULT_PORT, DEFAULT_SHUTDOWN_TIMEOUT_MS, parseBytes, parseCommand } from '../host/server/config.js';
import { toHttpError } from '../host/server/http-errors.js';
import { parseId, payloadSelector, scoreOf, stringify, vectorWanted } from '../host/server/qdrant.js';
import { CLI } from './helpers/server.js';

const store = await Store.open({ threads: 1 });
t.teardown(() => store.close());
const app = buildServer(store, { testHooks: false });
t.teardown(() => app.close());

const json = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown): Promise<{ status: number; body: any; headers: Record<string, unknown> }> => {
  const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: res.statusCode, body: res.headers['content-type']?.toString().startsWith('application/json') ? res.json() : res.body, headers: res.headers };
};
const arrow = (table: Table): Buffer => Buffer.from(tableToIPC(table, 'stream'));

t.test('quiver serve options: flags, environment, defaults', async (t) => {
  t.same(parseCommand([]), { command: 'help' });
  t.same(parseCommand(['--help']), { command: 'help' });
  t.same(parseCommand(['serve', '-h']), { command: 'help' });
  t.same(parseCommand(['-v']), { command: 'version' });
  const d = parseCommand(['serve']);
  t.same(d, { command: 'serve', config: { host: '127.0.0.1', port: DEFAULT_PORT, threads: undefined, maxMemoryBytes: undefined, apiKey: undefined, readOnlyApiKey: undefined, bodyLimit: DEFAULT_BODY_LIMIT, shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS, logLevel: 'warn', testHooks: false, dataDir: resolve('quiver-data'), fsync: 'always', fsyncIntervalMs: 1000, checkpointLogBytes: undefined, snapshotsDir: undefined } });
  t.match(parseCommand(['serve', '--snapshots-dir', 'snaps']), { config: { snapshotsDir: resolve('snaps') } });
  t.match(parseCommand(['serve', '--checkpoint-log', '1MiB']), { config: { checkpointLogBytes: 1048576 } });
  t.match(parseCommand(['serve', '--in-memory']), { config: { dataDir: undefined } }, '--in-memory keeps nothing on disk');
  t.match(parseCommand(['serve', '--data-dir', 'x', '--fsync', 'interval', '--fsync-interval', '250']), { config: { dataDir: resolve('x'), fsync: 'interval', fsyncIntervalMs: 250 } });
  t.match(parseCommand(['serve'], { QUIVER_DATA_DIR: '/srv/q', QUIVER_FSYNC: 'never' }), { config: { dataDir: '/srv/q', fsync: 'never' } });
  t.match(parseCommand(['serve'], { QUIVER_IN_MEMORY: '1' }), { config: { dataDir: undefined } });
  t.throws(() => parseCommand(['serve', '--fsync', 'sometimes']), /--fsync/);
  t.throws(() => parseCommand(['serve', '--in-memory', '--data-dir', 'x']), /choose one/);
  const f = parseCommand(['serve', '--host', '0.0.0.0', '--port', '0', '--threads', '3', '--max-memory', '4GiB', '--api-key', 'k', '--body-limit', '1MiB', '--shutdown-timeout', '500', '--log-level', 'info']);
  t.match(f, { config: { host: '0.0.0.0', port: 0, threads: 3, maxMemoryBytes: 4 * 2 ** 30, apiKey: 'k', bodyLimit: 2 ** 20, shutdownTimeoutMs: 500, logLevel: 'info' } });
  const env = { QUIVER_HOST: '::1', QUIVER_PORT: '7000', QUIVER_THREADS: '2', QUIVER_MAX_MEMORY: '2GB', QUIVER_API_KEY: 'e', QUIVER_READ_ONLY_API_KEY: 'r', QUIVER_BODY_LIMIT: '1000', QUIVER_SHUTDOWN_TIMEOUT_MS: '10', QUIVER_TEST_HOOKS: '1' };
  t.match(parseCommand(['serve'], env), { config: { host: '::1', port: 7000, threads: 2, maxMemoryBytes: 2e9, apiKey: 'e', readOnlyApiKey: 'r', bodyLimit: 1000, shutdownTimeoutMs: 10, testHooks: true } });
  t.match(parseCommand(['serve', '--port', '7001'], env), { config: { port: 7001 } }, 'a flag wins over its variable');
  t.equal(parseBytes('512MiB', 'x'), 512 * 2 ** 20);
  t.equal(parseBytes('1.5k', 'x'), 1500);
  for (const [args, why] of [
    [['serve', '--port', '70000'], /--port: must be from 0 to 65535/],
    [['serve', '--port', 'abc'], /--port: expected an integer/],
    [['serve', '--threads', '0'], /--threads/],
    [['serve', '--max-memory', 'lots'], /--max-memory: expected bytes/],
    [['serve', '--body-limit', '0'], /at least 1 byte/],
    [['serve', '--log-level', 'loud'], /--log-level/],
    [['serve', '--nope'], /Unknown option/],
    [['start'], /unknown command: start/],
  ] as const) {
    t.throws(() => parseCommand(args), { name: 'ConfigError', message: why }, args.join(' '));
  }
  t.type(new ConfigError('x'), Error);
});

t.test('the quiver command: --help, and a bad option exits 2', async (t) => {
  const run = (args: string[]): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
    const p = spawn(process.execPath, [...process.execArgv, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('exit', (code) => resolve({ code, out, err }));
  });
  const [help, bad] = await Promise.all([run(['--help']), run(['serve', '--port', 'x'])]);
  t.equal(help.code, 0);
  for (const flag of ['--host', '--port', '--threads', '--max-memory', '--api-key', '--body-limit', '--shutdown-timeout', 'QUIVER_HOST', 'QUIVER_PORT', 'QUIVER_THREADS', 'QUIVER_MAX_MEMORY', 'QUIVER_API_KEY', 'QUIVER_BODY_LIMIT', 'QUIVER_SHUTDOWN_TIMEOUT_MS']) {
    t.ok(help.out.includes(flag), `--help documents ${flag}`);
  }
  t.equal(bad.code, 2);
  t.match(bad.err, /--port: expected an integer/);
});

t.test('shapes: ids, payload selection, scores, bigints', async (t) => {
  t.equal(parseId('URN:UUID:F9168C5E-CEB2-4FAA-B6BF-329BF39FA1E4', 'id'), 'f9168c5e-ceb2-4faa-b6bf-329bf39fa1e4');
  t.equal(parseId('{936da01f-9abd-4d9d-80c7-02af85c822a8}', 'id'), '936da01f-9abd-4d9d-80c7-02af85c822a8');
  t.equal(parseId('936DA01F9ABD4d9d80C702AF85C822A8', 'id'), '936da01f-9abd-4d9d-80c7-02af85c822a8');
  t.equal(parseId(0, 'id'), 0);
  t.throws(() => parseId(true, 'id'), /got boolean/);
  const p = { a: 1, b: { c: 2, d: 3 }, e: [1] };
  t.same(payloadSelector(['b.c', 'missing', 'e'], false).select(p), { b: { c: 2 }, e: [1] });
  t.same(payloadSelector({ include: ['a'] }, false).select(p), { a: 1 });
  t.same(payloadSelector({ exclude: ['b.d', 'e'] }, false).select(p), { a: 1, b: { c: 2 } });
  t.same(p, { a: 1, b: { c: 2, d: 3 }, e: [1] }, 'exclude does not change the stored payload');
  t.equal(payloadSelector(undefined, true).fetch, true);
  t.equal(payloadSelector(null, false).fetch, false);
  t.equal(payloadSelector([], false).fetch, false);
  t.same(payloadSelector(true, false).select(undefined), {}, 'no payload is {}');
  t.throws(() => payloadSelector(5, true), /with_payload/);
  t.equal(vectorWanted([''], false), true);
  t.equal(vectorWanted([], true), false);
  t.throws(() => vectorWanted(['text'], false), /named vectors/);
  t.throws(() => vectorWanted('yes', false), /with_vector/);
  t.equal(scoreOf('l2', 25), 5);
  t.equal(scoreOf('ip', 1 - 7), 7);
  t.equal(scoreOf('cosine', 0.25), 0.75);
  t.equal(stringify({ id: 1 }), '{"id":1}');
  t.equal(stringify({ id: (1n << 64n) - 1n, s: 'x', list: [2n] }), '{"id":18446744073709551615,"s":"x","list":[2]}');
  t.equal(stringify({ s: '\u0000bigint:1' }), '{"s":"\\u0000bigint:1"}', 'strings that look like the marker are left alone');
});

t.test('QuiverError codes map to Qdrant\'s HTTP statuses', async (t) => {
  const status = (code: ErrorCode) => toHttpError(new QuiverError(code, 'm'), 'c');
  t.equal(status(ErrorCode.NOT_FOUND).statusCode, 404);
  t.match(status(ErrorCode.NOT_FOUND).message, /Collection `c` doesn't exist!/);
  t.equal(toHttpError(new QuiverError(ErrorCode.NOT_FOUND, 'm'), undefined).statusCode, 404);
  t.equal(status(ErrorCode.EXISTS).statusCode, 409);
  t.equal(status(ErrorCode.DIMENSION).statusCode, 400);
  t.equal(status(ErrorCode.INVALID_ARGUMENT).statusCode, 400);
  t.equal(status(ErrorCode.ABORTED).statusCode, 408);
  const mem = toHttpError(new QuiverError(ErrorCode.MEMORY_LIMIT, 'over', { applied: 3 }), 'c');
  t.equal(mem.statusCode, 503);
  t.same(mem.headers, { 'retry-after': '5' });
  t.match(mem.message, /3 point\(s\) were applied/);
  t.equal(status(ErrorCode.CLOSED).statusCode, 503);
  t.equal(status(ErrorCode.WORKER_LOST).statusCode, 500);
  t.equal(status(ErrorCode.CORE_TRAP).statusCode, 500);
  const io = toHttpError(new QuiverError(ErrorCode.IO, 'disk full'), 'c');
  t.equal(io.statusCode, 507, 'a write the disk refused: 507, retryable');
  t.same(io.headers, { 'retry-after': '5' });
  t.match(io.message, /not applied/);
  t.match(status(ErrorCode.CORRUPT), { statusCode: 500, message: /damaged/ });
  t.equal(toHttpError(new Error('boom'), undefined).statusCode, 500);
  t.equal(toHttpError({ statusCode: 418, message: 'teapot' }, undefined).statusCode, 418);
});

t.test('in-process server: version, probes, collection routes', async (t) => {
  const root = await json('GET', '/');
  t.match(root.body, { title: 'quiver', version: '1.19.0', quiver_version: /^\d+\.\d+\.\d+$/ });
  t.equal((await json('GET', '/healthz')).body, 'healthz check passed');
  t.equal((await json('GET', '/livez')).body, 'healthz check passed', 'Qdrant answers /livez as /healthz');
  t.equal((await json('GET', '/readyz')).status, 200);
  t.equal((await json('POST', '/_test/hang', {})).status, 404, 'no test hook without the option');

  t.same((await json('PUT', '/collections/u', { vectors: { '': { size: 3, distance: 'Dot' } }, hnsw_config: { m: 8, ef_construct: 50, ef: 20 }, optimizers_config: { indexing_threshold: 0 } })).body.result, true);
  const info = await json('GET', '/collections/u');
  t.match(info.body.result, { status: 'green', points_count: 0, config: { params: { vectors: { size: 3, distance: 'Dot' } }, hnsw_config: { m: 8, ef_construct: 50 } }, quiver: { ef: 20 } });
  t.equal((await json('PUT', '/collections/v', { vectors: { size: 3, distance: 'Cosine' }, sparse_vectors: { s: {} } })).status, 400);
  t.equal((await json('PUT', '/collections/v', { vectors: { size: 3, distance: 'Cosine', datatype: 'uint8' } })).status, 400);
  t.equal((await json('PUT', '/collections/v', { vectors: { size: 3, distance: 'Cosine' }, hnsw_config: { m: 0 } })).status, 400);
  t.equal((await json('PUT', '/collections/v', {})).status, 400);
  await json('PUT', '/collections/cos', { vectors: { size: 2, distance: 'Cosine' } });
  const zero = await json('PUT', '/collections/cos/points', { points: [{ id: 1, vector: [1, 1] }, { id: 2, vector: [0, 0] }] });
  t.equal(zero.status, 400);
  t.match(zero.body.status.error, /vector of point 2 is all zeros/);
  t.same((await json('POST', '/collections/cos/points/count')).body.result, { count: 0 }, 'a zero vector under Cosine refuses the whole batch');
  await json('DELETE', '/collections/cos');
  t.equal((await json('PUT', '/collections/v', { vectors: { size: 3, distance: 'Cosine', multivector_config: { comparator: 'max_sim' } } })).status, 400);

  const up = await json('PUT', '/collections/u/points?wait=false&ordering=strong', { points: [{ id: 1, vector: { '': [1, 0, 0] }, payload: {} }, { id: 2, vector: [0, 2, 0], payload: null }, { id: 3, vector: [0, 0, 3], payload: { k: 'v' } }] });
  t.match(up.body, { result: { status: 'acknowledged', operation_id: 0 }, status: 'ok' });
  const q = await json('POST', '/collections/u/points/query?consistency=majority&timeout=10', { query: [0, 1, 1], limit: 2, with_payload: true, params: { exact: true }, using: '' });
  t.same(q.body.result.points.map((p: { id: number; score: number; payload: unknown }) => [p.id, p.score, p.payload]), [[3, 3, { k: 'v' }], [2, 2, {}]], 'exact search, Dot scores, {} for no payload');
  const legacy = await json('POST', '/collections/u/points/search', { vector: { name: '', vector: [1, 0, 0] }, limit: 1, with_vector: [''] });
  t.same(legacy.body.result, [{ id: 1, version: 0, score: 1, vector: [1, 0, 0] }]);
  t.equal((await json('POST', '/collections/u/points/query', { limit: 1 })).status, 400, 'a query without `query` is not supported');
  t.equal((await json('POST', '/collections/u/points/query', { query: [[1, 0, 0]] })).status, 400, 'multi-vectors are not supported');
  t.equal((await json('POST', '/collections/u/points/query', { query: [1, 0, 0], limit: 99_999, offset: 2 })).status, 400, 'limit + offset over the largest k');
  t.equal((await json('POST', '/collections/u/points/query?timeout=0', { query: [1, 0, 0] })).status, 422, 'timeout 0: Qdrant\'s validation error');
  const empty = await json('POST', '/collections/u/points/query/batch', { searches: [] });
  t.same(empty.body.result, []);
  t.equal((await json('PUT', '/collections/u/points', { points: [{ id: 4, vector: [1, 1, 1] }], update_mode: 'insert_only' })).status, 400);
  t.equal((await json('PUT', '/collections/u/points', { batch: { ids: [4], vectors: { v: [[1, 1, 1]] } } })).status, 400);
  t.equal((await json('PUT', '/collections/u/points', { batch: { ids: [4, 5], vectors: [[1, 1, 1]] } })).status, 400);
  t.equal((await json('PUT', '/collections/u/points', { batch: { ids: [4], vectors: [[1, 1, 1]], payloads: [] } })).status, 400);
  t.equal((await json('PUT', '/collections/u/points', { points: [], batch: { ids: [], vectors: [] } })).status, 400);
  t.equal((await json('POST', '/collections/u/points/delete', {})).status, 400);
  t.same((await json('POST', '/collections/u/points/count')).body.result, { count: 3 }, 'a POST without a body');
  const compact = await json('POST', '/collections/u/compact');
  t.match(compact.body.result, { reclaimed_bytes: Number, removed_tombstones: 0 });
  const released = await json('POST', '/release-memory');
  t.match(released.body.result, { reclaimed_bytes: Number, rss_before: Number, rss_after: Number });
  t.same((await json('DELETE', '/collections/u')).body.result, true);
  t.same((await json('DELETE', '/collections/u')).body.result, false);
});

t.test('Arrow ingest refuses what it cannot read', async (t) => {
  await json('PUT', '/collections/a', { vectors: { size: 2, distance: 'Euclid' } });
  const post = (body: Buffer | string, type = 'application/vnd.apache.arrow.stream', url = '/collections/a/arrow') =>
    app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload: body });
  const f32 = new FixedSizeList(2, new Field('item', new Float32(), false));
  const good = new Table({ id: vectorFromArray(Int32Array.from([1, 2])), vector: vectorFromArray([[1, 2], [3, 4]], f32) });
  const cases: [string, Buffer | string, RegExp, number?][] = [
    ['not Arrow', 'hello', /not a readable Arrow IPC/],
    ['no vector column', arrow(new Table({ id: vectorFromArray(Int32Array.from([1])) })), /expected columns `id` and `vector`/],
    ['negative ids', arrow(new Table({ id: vectorFromArray(Int32Array.from([1, -2])), vector: vectorFromArray([[1, 2], [3, 4]], f32) })), /id\[1\] is -2/],
    ['null ids', arrow(new Table({ id: vectorFromArray([1, null], new Int32()), vector: vectorFromArray([[1, 2], [3, 4]], f32) })), /`id` has nulls/],
    ['float ids', arrow(new Table({ id: vectorFromArray(Float64Array.from([1, 2])), vector: vectorFromArray([[1, 2], [3, 4]], f32) })), /expected integers/],
    ['bad UUIDs', arrow(new Table({ id: vectorFromArray(['x', 'y'], new Utf8()), vector: vectorFromArray([[1, 2], [3, 4]], f32) })), /"x" is not a valid point id/],
    ['a List<Float64> vector', arrow(new Table({ id: vectorFromArray(Int32Array.from([1])), vector: vectorFromArray([[1, 2]], new List(new Field('item', new Float64()))) })), /expected FixedSizeList<Float32>/],
    ['null vectors', arrow(new Table({ id: vectorFromArray(Int32Array.from([1, 2])), vector: vectorFromArray([[1, 2], null], f32) })), /null vectors/],
    ['NaN in a vector', arrow(new Table({ id: vectorFromArray(Int32Array.from([1])), vector: vectorFromArray([[1, Number.NaN]], f32) })), /vector\[0\]\[1\] is NaN/],
    ['a payload that is not JSON', arrow(new Table({ id: vectorFromArray(Int32Array.from([1])), vector: vectorFromArray([[1, 2]], f32), payload: vectorFromArray(['{'], new Utf8()) })), /payload\[0\] is not JSON/],
    ['a payload that is not an object', arrow(new Table({ id: vectorFromArray(Int32Array.from([1])), vector: vectorFromArray([[1, 2]], f32), payload: vectorFromArray(['[1]'], new Utf8()) })), /payload\[0\] must be a JSON object/],
    ['a payload column of numbers', arrow(new Table({ id: vectorFromArray(Int32Array.from([1])), vector: vectorFromArray([[1, 2]], f32), payload: vectorFromArray(Int32Array.from([1])) })), /expected UTF-8 JSON/],
  ];
  for (const [name, body, message] of cases) {
    const res = await post(body);
    t.equal(res.statusCode, 400, name);
    t.match(res.json(), { status: { error: message } }, name);
  }
  t.equal((await post(arrow(good), 'application/vnd.apache.arrow.stream', '/collections/none/arrow')).statusCode, 404);
  t.equal((await post('{}', 'application/json')).statusCode, 415, 'JSON to the Arrow route');
  t.same((await json('POST', '/collections/a/points/count')).body.result, { count: 0 }, 'nothing was written');
  const file = Buffer.from(tableToIPC(new Table({ id: vectorFromArray(['5c56c793-69f3-4fbf-87e6-c4bf54c28c26', '5c56c793-69f3-4fbf-87e6-c4bf54c28c26'], new Utf8()), vector: vectorFromArray([[1, 2], [3, 4]], f32) }), 'file'));
  const res = await post(file, 'application/vnd.apache.arrow.file');
  t.equal(res.statusCode, 200, 'the Arrow file format too');
  t.equal(res.json().result.inserted, 1, 'a repeated id is one point (the last)');
  t.same((await json('GET', '/collections/a/points/5c56c793-69f3-4fbf-87e6-c4bf54c28c26')).body.result.vector, [3, 4]);
  await json('DELETE', '/collections/a');
});

t.test('two servers on one store share the HTTP metrics; a full store answers 503', async (t) => {
  const second = buildServer(store);
  t.equal((await second.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
  await second.close();

  const full = await Store.open({ threads: 1, maxMemoryBytes: 1 });
  const server = buildServer(full);
  await server.inject({ method: 'PUT', url: '/collections/m', payload: { vectors: { size: 2, distance: 'Dot' } } });
  const res = await server.inject({ method: 'PUT', url: '/collections/m/points', payload: { points: [{ id: 1, vector: [1, 2] }] } });
  t.equal(res.statusCode, 503);
  t.equal(res.headers['retry-after'], '5');
  t.match(res.json(), { status: { error: /memory limit/ } });
  server.quiver.ready = false;
  t.equal((await server.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);

  await full.close();
  const closed = await server.inject({ method: 'GET', url: '/collections/m' });
  t.equal(closed.statusCode, 503, 'a closed store: 503');
  t.match(closed.json(), { status: { error: /shutting down/ } });
  await server.close();
});
