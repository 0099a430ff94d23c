/**
 * Where a dataset's shards live in NATS: one name scheme shared by the shard
 * logs, the leases and the images, so a node finds any shard's pieces from
 * its dataset name and shard number alone.
 *
 *   stream     QUIVER_<token>              one per dataset (shard-stream.ts)
 *   subject    quiver.<token>.<shard>      one per shard, in that stream
 *   lease key  <token>.<shard>             in the leases bucket (leases.ts)
 *   image      <token>/<shard>/<lsn, 20 digits>   in the images bucket (images.ts)
 *   requests   <prefix>.rpc.<node token>  a node's requests from the others (rpc.ts)
 *
 * `<token>` names one incarnation of a dataset: its name, '~' and the uid
 * its creation drew (`incarnation`), so a dataset dropped and created again
 * under the same name never meets what is left of the old one (streams,
 * images, leases, placement, a node's local logs). Datasets from before
 * the uid have none: their token is their name's.
 *
 * A dataset name is quiver's (1-128 letters, digits, '_', '-', '.', starting
 * with a letter or digit). '.' separates subject tokens and '_' is the
 * escape, so both are written as '_' + two hex digits ('.' -> _2e,
 * '_' -> _5f, and the uid's '~' -> _7e): the token is injective and a valid
 * subject token, stream name and KV key. The stream name is also a
 * directory name on each nats-server, so a token is at most 200 characters.
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode, QuiverError } from '../errors.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(~[0-9a-f]{1,32})?$/;
export const MAX_TOKEN = 200;
export const MAX_SHARD = 65535;

/** One incarnation of the dataset `name` (see above); without a uid, the name itself. */
export const incarnation = (name: string, uid?: string): string => (uid === undefined ? name : `${name}~${uid}`);

/** The dataset name of an incarnation. */
export const nameOf = (id: string): string => id.split('~')[0]!;

/** Whether a directory or key token names an incarnation with a uid (only '~' escapes to _7e). */
export const hasUid = (token: string): boolean => token.includes('_7e');

/** Hex digits of the uid a dataset's creation draws. */
export const UID_HEX = 16;

export const newUid = (): string => randomBytes(UID_HEX / 2).toString('hex');

/** A dataset name a user may give (no uid), checked as datasetToken checks an incarnation of it. */
export function checkDatasetName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) throw badName(name);
  datasetToken(incarnation(name, 'f'.repeat(UID_HEX)));
}

const badName = (name: unknown): QuiverError => new QuiverError(ErrorCode.INVALID_ARGUMENT,
  `dataset name must be 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit (got ${JSON.stringify(name)})`);

/** The incarnation of a dataset as one subject token (see above). */
export function datasetToken(dataset: unknown): string {
  if (typeof dataset !== 'string' || !ID_RE.test(dataset)) throw badName(dataset);
  const token = escapeToken(dataset);
  if (token.length > MAX_TOKEN) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT,
      `dataset name ${JSON.stringify(dataset)} is too long for a cluster: ${token.length} characters once '.' and '_' are escaped and the uid added (at most ${MAX_TOKEN})`);
  }
  return token;
}

const escapeToken = (s: string): string => s.replace(/[._~]/g, (c) => `_${c.charCodeAt(0).toString(16)}`);

/** A node id (leases.ts checks it) as one subject token, escaped as a dataset name is. */
export const nodeToken = (nodeId: string): string => escapeToken(nodeId);

export function checkShard(shard: unknown): asserts shard is number {
  if (typeof shard !== 'number' || !Number.isInteger(shard) || shard < 0 || shard > MAX_SHARD) {
    throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `shard must be an integer in 0..${MAX_SHARD} (got ${String(shard)})`);
  }
}

export const streamName = (dataset: string): string => `QUIVER_${datasetToken(dataset)}`;
export const streamSubjects = (dataset: string): string => `quiver.${datasetToken(dataset)}.*`;

export function shardSubject(dataset: string, shard: number): string {
  checkShard(shard);
  return `quiver.${datasetToken(dataset)}.${shard}`;
}

export function leaseKey(dataset: string, shard: number): string {
  checkShard(shard);
  return `${datasetToken(dataset)}.${shard}`;
}

export function imagePrefix(dataset: string, shard: number): string {
  checkShard(shard);
  return `${datasetToken(dataset)}/${shard}/`;
}

export function imageName(dataset: string, shard: number, lsn: number): string {
  if (!Number.isSafeInteger(lsn) || lsn < 0) throw new QuiverError(ErrorCode.INVALID_ARGUMENT, `lsn must be a non-negative integer (got ${String(lsn)})`);
  return imagePrefix(dataset, shard) + String(lsn).padStart(20, '0');
}
