/**
 * Every failure as Qdrant's error response: an HTTP status and
 * `{ status: { error }, time }`.
 */
import type { FastifyError } from 'fastify';
import { ErrorCode, QuiverError } from '../errors.js';
import { HttpError, collectionNotFound } from './qdrant.js';
import { fromSchemaIssues, type SchemaIssue } from './validation.js';

/**
 * Longest path parameter the router takes. Qdrant's collection names go to
 * 255 characters; a longer one is a 422 from the schema, and past this (a
 * URL Node's default header limit would refuse anyway) a 414.
 */
export const MAX_PARAM_LENGTH = 16 * 1024;

/** Seconds a client should wait before retrying a write refused for memory. */
export const RETRY_AFTER_SECONDS = 5;

/**
 * Maps a thrown value to Qdrant's status and message. `collection` is the
 * collection the request named, if any (for Qdrant's "doesn't exist!").
 */
export function toHttpError(err: unknown, collection: string | undefined): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof QuiverError) return fromQuiver(err, collection);
  const fe = err as Partial<FastifyError> & { validationContext?: string };
  if (fe !== null && typeof fe === 'object') {
    if (fe.validation !== undefined) return fromSchemaIssues(fe.validation as SchemaIssue[], fe.validationContext);
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return new HttpError(413, `Payload too large: the request body is larger than the limit (${fe.message})`);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return new HttpError(415, `Unsupported media type: ${fe.message}; send application/json (or application/vnd.apache.arrow.stream to /arrow)`);
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return new HttpError(400, 'Format error in JSON body: the body is empty');
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return new HttpError(400, `Bad request: ${fe.message}`);
      case 'FST_ERR_BAD_URL':
        return new HttpError(400, 'Format error in path parameters: the path is not valid percent-encoded UTF-8');
      case 'FST_ERR_MAX_PARAM_LENGTH':
        return new HttpError(414, `URI too long: a path parameter is longer than ${MAX_PARAM_LENGTH} characters`);
      default:
        break;
    }
    if (err instanceof SyntaxError || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return new HttpError(400, `Format error in JSON body: ${fe.message}`);
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return new HttpError(fe.statusCode, `Bad request: ${fe.message}`);
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return new HttpError(500, `Service internal error: ${message}`);
}

function fromQuiver(err: QuiverError, collection: string | undefined): HttpError {
  switch (err.code) {
    case ErrorCode.NOT_FOUND:
      return collection === undefined ? new HttpError(404, `Not found: ${err.message}`) : collectionNotFound(collection);
    case ErrorCode.EXISTS:
      return new HttpError(409, collection === undefined ? `Wrong input: ${err.message}` : `Wrong input: Collection \`${collection}\` already exists!`);
    case ErrorCode.DIMENSION:
    case ErrorCode.INVALID_ARGUMENT:
      return new HttpError(400, `Wrong input: ${err.message}${applied(err)}`);
    case ErrorCode.ABORTED:
      return new HttpError(408, `Timeout error: the operation did not finish within the request's timeout${applied(err)}`);
    case ErrorCode.MEMORY_LIMIT:
      return new HttpError(503, `Service unavailable: memory limit reached: ${err.message}${applied(err)}`, { 'retry-after': String(RETRY_AFTER_SECONDS) });
    case ErrorCode.UNAVAILABLE:
    case ErrorCode.FENCED:
      // the cluster cannot take the call now (no quorum, a shard between leaders): not applied, retry
      return new HttpError(503, `Service unavailable: ${err.message}`, { 'retry-after': '1' });
    case ErrorCode.CLOSED:
      return new HttpError(503, 'Service unavailable: the store is shutting down', { 'retry-after': String(RETRY_AFTER_SECONDS) });
    case ErrorCode.IO:
      // the disk refused the write (full, EIO): nothing was applied; retry once there is room
      return new HttpError(507, `Insufficient storage: the write could not be made durable and was not applied: ${err.message}`, { 'retry-after': String(RETRY_AFTER_SECONDS) });
    case ErrorCode.WORKER_LOST:
    case ErrorCode.CORRUPT:
      return new HttpError(500, `Service internal error: the collection's files are damaged and it cannot be opened (see docs/durability.md): ${err.message} (${err.code})`);
    case ErrorCode.CORE_TRAP:
    case ErrorCode.CORRUPT_IMAGE:
    default:
      return new HttpError(500, `Service internal error: ${err.message} (${err.code})${applied(err)}`);
  }
}

function applied(err: QuiverError): string {
  return err.applied === undefined ? '' : `; ${err.applied} point(s) were applied before the failure`;
}
