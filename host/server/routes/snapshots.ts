/**
 * Collection snapshots, on Qdrant's routes: create, list, download, delete,
 * recover from an upload (multipart/form-data with a `snapshot` file field,
 * as Qdrant's clients send it, or the raw file as application/octet-stream)
 * and from a `file://` location in the snapshots directory. The files are
 * quiver's own format (storage/snapshot.ts), not Qdrant's tar archives.
 *
 * A Store serves them, and so does a cluster node (cluster-app.ts), whose
 * snapshots hold every shard and whose recovery replaces the collection in
 * the whole cluster (store/cluster-snapshots.ts).
 *
 * Uploads stream to a temp file in the snapshots directory (never whole in
 * memory, so they are not bound by the JSON body limit), are verified, and
 * recovered from there; the temp file goes afterwards either way.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorCode, isQuiverError } from '../../errors.js';
import { sha256Of } from '../../storage/snapshot.js';
import type { SnapshotInfo } from '../../store/store.js';
import { collectionName, ok } from '../context.js';
import { HttpError, collectionNotFound, formatError, notSupported } from '../qdrant.js';
import * as schema from '../schemas.js';

const snapshotParams = {
  type: 'object',
  required: ['name', 'snapshot'],
  properties: { name: schema.collectionParams.properties.name, snapshot: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;

const recoverQuery = {
  type: 'object',
  properties: {
    ...schema.writeQuery.properties,
    priority: { type: 'string', enum: ['snapshot', 'replica', 'no_sync'] },
    checksum: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
  },
} as const;

const recoverBody = {
  type: 'object',
  required: ['location'],
  properties: {
    location: { type: 'string', minLength: 1 },
    priority: { type: ['string', 'null'], enum: ['snapshot', 'replica', 'no_sync', null] },
    checksum: { type: ['string', 'null'], pattern: '^[0-9a-fA-F]{64}$' },
    api_key: { type: ['string', 'null'] },
  },
} as const;

/** Largest header block of one multipart part. */
const MAX_PART_HEADERS = 16 * 1024;

const description = (s: SnapshotInfo): Record<string, unknown> => ({ name: s.name, creation_time: s.creationTime, size: s.size, checksum: s.checksum });

function snapshotNotFound(name: string, snapshot: string): HttpError {
  return new HttpError(404, `Not found: Snapshot ${snapshot} of collection \`${name}\` doesn't exist!`);
}

/** What the snapshot routes ask of a store: a Store answers it, and so does a cluster node's (ClusterStore). */
export interface SnapshotStore {
  readonly snapshotsPath: string;
  createSnapshot(name: string): Promise<SnapshotInfo>;
  listSnapshots(name: string): Promise<SnapshotInfo[]>;
  snapshotPath(name: string, snapshot: string): Promise<string>;
  deleteSnapshot(name: string, snapshot: string): Promise<void>;
  /** Resolves once `name` is what the snapshot holds. */
  recoverSnapshot(name: string, file: string): Promise<unknown>;
}

/** What the snapshot routes get. */
export interface SnapshotContext {
  store: SnapshotStore;
  exists(name: string): boolean | Promise<boolean>;
  /** A collection was recovered (what recoverSnapshot resolved with). */
  recovered(result: unknown): void;
}

/** The collection must exist for the routes that read its snapshots, as in Qdrant. */
async function mustExist(ctx: SnapshotContext, name: string): Promise<void> {
  if (!(await ctx.exists(name))) throw collectionNotFound(name);
}

/** A snapshot the store does not have is the snapshot's 404, not the collection's. */
/** A snapshot that fails its checks is the client's bad input (400), not a server fault. */
async function recovering<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isQuiverError(err, ErrorCode.CORRUPT)) throw new HttpError(400, `Bad request: the snapshot is not a valid quiver snapshot: ${err.message}`);
    throw err;
  }
}

async function onSnapshot<T>(name: string, snapshot: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isQuiverError(err, ErrorCode.NOT_FOUND)) throw snapshotNotFound(name, snapshot);
    throw err;
  }
}

/**
 * The `snapshot` field of a multipart/form-data body, written to `sink` as
 * it arrives. A small state machine over the stream: the delimiter is
 * CRLF "--" boundary (a CRLF is put before the body so the first one reads
 * the same), a part's headers end at an empty line, its data at the next
 * delimiter; the tail that might start a delimiter is held back.
 */
export async function multipartField(body: AsyncIterable<Buffer>, boundary: string, field: string, sink: (chunk: Buffer) => Promise<void>): Promise<boolean> {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let pending: Buffer = Buffer.from('\r\n');
  let state: 'preamble' | 'headers' | 'data' | 'skip' | 'after' | 'done' = 'preamble';
  let found = false;
  const emit = async (bytes: Buffer): Promise<void> => {
    if (state === 'data' && bytes.length > 0) await sink(bytes);
  };
  for await (const chunk of body) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      if (state === 'done') break;
      if (state === 'after') {
        // after a delimiter: "--" ends the body, CRLF starts a part
        if (pending.length < 2) break;
        const two = pending.subarray(0, 2).toString('latin1');
        if (two === '--') state = 'done';
        else if (two === '\r\n') state = 'headers';
        else throw formatError('multipart body: a boundary is followed by neither CRLF nor "--"');
        pending = pending.subarray(2);
        continue;
      }
      if (state === 'headers') {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) {
          if (pending.length > MAX_PART_HEADERS) throw formatError('multipart body: a part\'s headers are too long');
          break;
        }
        const headers = pending.subarray(0, end).toString('utf8');
        pending = pending.subarray(end + 4);
        const disposition = /^content-disposition:(.*)$/im.exec(headers)?.[1] ?? '';
        const name = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? /\bname=([^;\s]+)/i.exec(disposition)?.[1];
        state = name === field && !found ? 'data' : 'skip';
        if (state === 'data') found = true;
        continue;
      }
      const at = pending.indexOf(delimiter);
      if (at < 0) {
        // keep what could be the start of a delimiter
        const keep = Math.min(pending.length, delimiter.length - 1);
        await emit(pending.subarray(0, pending.length - keep));
        pending = Buffer.from(pending.subarray(pending.length - keep));
        break;
      }
      await emit(pending.subarray(0, at));
      pending = pending.subarray(at + delimiter.length);
      state = 'after';
    }
  }
  if (state !== 'done') throw formatError('multipart body: it ends before its closing boundary');
  return found;
}

/** The boundary of a multipart/form-data content type. */
function boundaryOf(contentType: string): string {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = m?.[1] ?? m?.[2];
  if (b === undefined || b.length > 200) throw formatError('multipart/form-data without a boundary');
  return b;
}

/** Streams an upload to `file`; resolves with its SHA-256. */
async function receive(request: FastifyRequest, file: string): Promise<string> {
  const body = request.body as AsyncIterable<Buffer>;
  const contentType = request.headers['content-type'] ?? '';
  const sha = createHash('sha256');
  const h = await open(file, 'wx');
  let at = 0;
  const sink = async (chunk: Buffer): Promise<void> => {
    sha.update(chunk);
    await h.write(chunk, 0, chunk.length, at);
    at += chunk.length;
  };
  try {
    if (/^multipart\/form-data/i.test(contentType)) {
      if (!(await multipartField(body, boundaryOf(contentType), 'snapshot', sink))) {
        throw formatError('multipart body: no `snapshot` file field');
      }
    } else {
      for await (const chunk of body) await sink(chunk);
    }
  } finally {
    await h.close();
  }
  if (at === 0) throw formatError('the snapshot is empty');
  return sha.digest('hex');
}

function checkChecksum(expected: string | null | undefined, actual: string): void {
  if (typeof expected === 'string' && expected.toLowerCase() !== actual) {
    throw new HttpError(400, `Bad request: Snapshot checksum mismatch: expected ${expected.toLowerCase()}, got ${actual}`);
  }
}

export function registerSnapshotRoutes(app: FastifyInstance, ctx: SnapshotContext): void {
  const params = schema.collectionParams;

  app.post('/collections/:name/snapshots', { schema: { params, querystring: schema.writeQuery }, config: { write: true } }, async (request, reply) =>
    ok(reply, description(await ctx.store.createSnapshot(collectionName(request)))));

  app.get('/collections/:name/snapshots', { schema: { params } }, async (request, reply) => {
    const name = collectionName(request);
    await mustExist(ctx, name);
    return ok(reply, (await ctx.store.listSnapshots(name)).map(description));
  });

  app.get('/collections/:name/snapshots/:snapshot', { schema: { params: snapshotParams } }, async (request, reply) => {
    const { name, snapshot } = request.params as { name: string; snapshot: string };
    await mustExist(ctx, name);
    const file = await onSnapshot(name, snapshot, () => ctx.store.snapshotPath(name, snapshot));
    const { size } = await stat(file);
    return reply
      .type('application/octet-stream')
      .header('content-length', String(size))
      .header('content-disposition', `attachment; filename="${snapshot.replace(/["\\\r\n]/g, '_')}"`)
      .send(createReadStream(file));
  });

  app.delete('/collections/:name/snapshots/:snapshot', { schema: { params: snapshotParams, querystring: schema.writeQuery }, config: { write: true } }, async (request, reply) => {
    const { name, snapshot } = request.params as { name: string; snapshot: string };
    await mustExist(ctx, name);
    await onSnapshot(name, snapshot, () => ctx.store.deleteSnapshot(name, snapshot));
    return ok(reply, true);
  });

  // recovery from a location: a file in the snapshots directory (as Qdrant allows), not a URL to fetch
  app.put('/collections/:name/snapshots/recover', { schema: { params, querystring: schema.writeQuery, body: recoverBody }, config: { write: true } }, async (request, reply) => {
    const name = collectionName(request);
    const body = request.body as { location: string; checksum?: string | null };
    let file: string;
    try {
      file = fileURLToPath(body.location);
    } catch {
      throw notSupported(`snapshot location ${JSON.stringify(body.location)} (only file:// URLs of files in the snapshots directory)`);
    }
    const inside = relative(resolve(ctx.store.snapshotsPath), resolve(file));
    if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
      throw new HttpError(400, `Bad request: the snapshot file must be in the snapshots directory ${ctx.store.snapshotsPath}`);
    }
    if (typeof body.checksum === 'string') {
      checkChecksum(body.checksum, await sha256Of(file).catch(() => ''));
    }
    ctx.recovered(await recovering(() => ctx.store.recoverSnapshot(name, file)));
    return ok(reply, true);
  });

  // the upload route parses its own bodies: a stream, whatever its size
  void app.register(async (scope) => {
    for (const type of ['multipart/form-data', 'application/octet-stream']) {
      scope.addContentTypeParser(type, (_request, payload, done) => done(null, payload));
    }
    scope.post('/collections/:name/snapshots/upload', { schema: { params, querystring: recoverQuery }, config: { write: true } }, async (request, reply) => {
      const name = collectionName(request);
      const body = request.body as unknown;
      if (body === null || typeof body !== 'object' || !(Symbol.asyncIterator in body)) {
        throw new HttpError(415, 'Unsupported media type: send the snapshot as multipart/form-data (field `snapshot`) or application/octet-stream');
      }
      await mkdir(ctx.store.snapshotsPath, { recursive: true });
      const file = join(ctx.store.snapshotsPath, `.upload-${process.pid}-${randomBytes(8).toString('hex')}.snapshot`);
      try {
        checkChecksum((request.query as { checksum?: string }).checksum, await receive(request, file));
        ctx.recovered(await recovering(() => ctx.store.recoverSnapshot(name, file)));
      } finally {
        await rm(file, { force: true });
      }
      return ok(reply, true);
    });
  });
}
