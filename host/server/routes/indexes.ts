/**
 * Payload indexes: PUT /collections/{name}/index (Qdrant's CreateFieldIndex)
 * and DELETE /collections/{name}/index/{field_name}; both answer Qdrant's
 * UpdateResult. The index itself is the Store's (store/payload-indexes.ts);
 * collection info lists them as `payload_schema` (routes/collections.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { PayloadIndexInfo, PayloadIndexType } from '../../store/store.js';
import { collectionName, updated, waitParam, type PointContext } from '../context.js';
import { formatError, notSupported } from '../qdrant.js';
import * as schema from '../schemas.js';

type Body = Record<string, unknown>;

/**
 * Qdrant's PayloadSchemaParams fields by index type: accepted and ignored
 * (quiver keeps every index in memory, with lookups and ranges both), so a
 * client that sends them works; each must be what Qdrant takes there.
 */
const PARAMS: Record<PayloadIndexType, readonly string[]> = {
  keyword: ['is_tenant', 'on_disk', 'memory', 'enable_hnsw', 'prefix'],
  integer: ['lookup', 'range', 'is_principal', 'on_disk', 'memory', 'enable_hnsw'],
  float: ['is_principal', 'on_disk', 'memory', 'enable_hnsw'],
  bool: ['on_disk', 'memory', 'enable_hnsw'],
  uuid: ['is_tenant', 'on_disk', 'memory', 'enable_hnsw'],
};

/** Qdrant's payload types quiver has no index for. */
const UNSUPPORTED_TYPES = ['text', 'geo', 'datetime'];

const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);

const TYPES_TEXT = 'keyword, integer, float, bool, uuid';

/** Qdrant's PayloadFieldSchema (a type name, or `{type, ...params}`) as the index type. */
export function fieldSchemaType(fieldSchema: unknown): PayloadIndexType {
  if (fieldSchema === undefined || fieldSchema === null) throw formatError(`field_schema is required: one of ${TYPES_TEXT}, or {"type": ..., ...params}`);
  const type = typeof fieldSchema === 'string' ? fieldSchema : isObject(fieldSchema) ? fieldSchema.type : undefined;
  if (typeof type !== 'string') throw formatError(`field_schema: expected a type name (${TYPES_TEXT}) or {"type": ..., ...params}`);
  if (UNSUPPORTED_TYPES.includes(type)) throw notSupported(`a payload index of type ${type}`);
  if (!Object.hasOwn(PARAMS, type)) throw formatError(`field_schema: unknown type ${JSON.stringify(type)}; expected one of ${TYPES_TEXT}`);
  const t = type as PayloadIndexType;
  if (isObject(fieldSchema)) {
    for (const [key, value] of Object.entries(fieldSchema)) {
      if (key === 'type') continue;
      if (!PARAMS[t].includes(key)) throw formatError(`field_schema.${key}: not a parameter of a ${t} index (${PARAMS[t].join(', ')})`);
      const ok = key === 'memory' ? value === null || typeof value === 'string' || isObject(value) : value === null || typeof value === 'boolean';
      if (!ok) throw formatError(`field_schema.${key}: expected ${key === 'memory' ? 'a memory placement' : 'a boolean'} (got ${JSON.stringify(value)})`);
    }
  }
  return t;
}

/** Collection info's `payload_schema`: Qdrant's PayloadIndexInfo per field. */
export function payloadSchema(indexes: readonly PayloadIndexInfo[]): Record<string, { data_type: PayloadIndexType; points: number }> {
  const out: Record<string, { data_type: PayloadIndexType; points: number }> = {};
  for (const i of indexes) Object.defineProperty(out, i.field, { value: { data_type: i.type, points: i.points }, enumerable: true, writable: true, configurable: true });
  return out;
}

export function registerIndexRoutes(app: FastifyInstance, ctx: PointContext): void {
  const querystring = schema.writeQuery;
  const config = { write: true };

  app.put('/collections/:name/index', { schema: { params: schema.collectionParams, querystring, body: schema.createFieldIndex }, config }, async (request, reply) => {
    const body = request.body as Body;
    const type = fieldSchemaType(body.field_schema);
    const r = await ctx.store.createPayloadIndex(collectionName(request), body.field_name as string, type, { wait: waitParam(request) });
    return updated(ctx, reply, r.acknowledged === true);
  });

  app.delete('/collections/:name/index/:field_name', { schema: { params: schema.fieldIndexParams, querystring }, config }, async (request, reply) => {
    const field = (request.params as { field_name: string }).field_name;
    const r = await ctx.store.dropPayloadIndex(collectionName(request), field, { wait: waitParam(request) });
    return updated(ctx, reply, r.acknowledged === true);
  });
}
