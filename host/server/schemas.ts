/**
 * JSON schemas for the request bodies and query strings (validated by
 * Fastify's Ajv, without type coercion). They check structure and types;
 * meaning (dimensions, id forms, float32 range, unsupported features) is
 * checked by the handlers, which can say more precisely what is wrong.
 */

import { MAX_K } from '../options.js';

/** Most results one search may produce: the Store's largest k. */
export const MAX_RESULTS = MAX_K;

/**
 * An unsigned integer field with a range. Out of range is Qdrant's 422
 * "value V invalid, must be from MIN to MAX"; negative, or not an integer,
 * is a 400 format error (see validation.ts).
 */
const nullableInt = (min: number, max?: number): object => ({ type: ['integer', 'null'], minimum: min, ...(max === undefined ? {} : { maximum: max }) });

/**
 * Qdrant's ExtendedPointId: an unsigned integer or a UUID string. Checked
 * by parseId, whose message says what a valid id is.
 */
export const pointId = {} as const;

const keyList = { type: 'array', items: { type: 'string' } } as const;

export const withPayload = {
  type: ['boolean', 'array', 'object', 'null'],
  items: { type: 'string' },
  properties: { include: keyList, exclude: keyList },
} as const;

export const withVector = { type: ['boolean', 'array', 'null'], items: { type: 'string' } } as const;

/** A vector in any of Qdrant's forms; plainVector() accepts only the dense unnamed one. */
const vectorStruct = { type: ['array', 'object'] } as const;

const searchParams = {
  type: ['object', 'null'],
  properties: {
    hnsw_ef: nullableInt(1, MAX_RESULTS),
    exact: { type: ['boolean', 'null'] },
    indexed_only: { type: ['boolean', 'null'] },
    // checked by quantizationParams (server/quantization.ts), which names the field at fault
    quantization: {},
  },
} as const;

const common = {
  shard_key: {},
  filter: {},
} as const;

// ------------------------------------------------------------------ query strings

const timeout = { type: 'string', pattern: '^[0-9]+$' } as const;

export const writeQuery = {
  type: 'object',
  properties: {
    wait: { type: 'string', enum: ['true', 'false'] },
    ordering: { type: 'string', enum: ['weak', 'medium', 'strong'] },
    timeout,
  },
} as const;

export const readQuery = {
  type: 'object',
  properties: {
    consistency: { type: 'string', pattern: '^([0-9]+|majority|quorum|all)$' },
    timeout,
  },
} as const;

export const collectionParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

/** DELETE .../index/{field_name}: the field is checked by the Store (a key path). */
export const fieldIndexParams = {
  type: 'object',
  required: ['name', 'field_name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 255 }, field_name: { type: 'string', minLength: 1 } },
} as const;

export const pointParams = {
  type: 'object',
  required: ['name', 'id'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 255 }, id: { type: 'string', minLength: 1 } },
} as const;

// ------------------------------------------------------------------ bodies

/** Checked field by field by datasetOptions, as `vectors.hnsw_config` is (same messages). */
const hnswConfig = { type: ['object', 'null'] } as const;

export const createCollection = {
  type: 'object',
  properties: {
    vectors: { type: 'object' },
    shard_number: nullableInt(1, 1024),
    hnsw_config: hnswConfig,
    sparse_vectors: {},
    quantization_config: {},
    init_from: {},
    sharding_method: {},
    replication_factor: nullableInt(1),
    write_consistency_factor: nullableInt(1),
    on_disk_payload: { type: ['boolean', 'null'] },
    optimizers_config: {},
    wal_config: {},
    strict_mode_config: {},
    metadata: {},
  },
} as const;

/** Qdrant's UpdateCollection: checked by checkUpdate (routes/collections.ts) against the collection. */
export const updateCollection = {
  type: ['object', 'null'],
  properties: {
    vectors: {},
    optimizers_config: {},
    params: {},
    hnsw_config: {},
    quantization_config: {},
    sparse_vectors: {},
    strict_mode_config: {},
    metadata: {},
  },
} as const;

export const upsert = {
  type: 'object',
  properties: {
    points: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'vector'],
        properties: { id: pointId, vector: vectorStruct, payload: { type: ['object', 'null'] } },
      },
    },
    batch: {
      type: 'object',
      required: ['ids', 'vectors'],
      properties: {
        ids: { type: 'array', items: pointId },
        vectors: vectorStruct,
        payloads: { type: ['array', 'null'], items: { type: ['object', 'null'] } },
      },
    },
    shard_key: {},
    update_filter: {},
    update_mode: { type: ['string', 'null'] },
  },
} as const;

export const deletePoints = {
  type: 'object',
  properties: {
    points: { type: 'array', items: pointId },
    ...common,
  },
} as const;

export const retrieve = {
  type: 'object',
  required: ['ids'],
  properties: {
    ids: { type: 'array', items: pointId },
    with_payload: withPayload,
    with_vector: withVector,
    shard_key: {},
  },
} as const;

export const count = {
  type: 'object',
  properties: { exact: { type: ['boolean', 'null'] }, ...common },
} as const;

export const scroll = {
  type: 'object',
  properties: {
    offset: {},
    limit: nullableInt(1, MAX_RESULTS),
    with_payload: withPayload,
    with_vector: withVector,
    order_by: {},
    ...common,
  },
} as const;

export const queryRequest = {
  type: 'object',
  properties: {
    query: {},
    using: { type: ['string', 'null'] },
    prefetch: {},
    params: searchParams,
    score_threshold: { type: ['number', 'null'] },
    limit: nullableInt(1, MAX_RESULTS),
    offset: nullableInt(0, MAX_RESULTS),
    with_vector: withVector,
    with_payload: withPayload,
    lookup_from: {},
    ...common,
  },
} as const;

export const queryBatch = {
  type: 'object',
  required: ['searches'],
  properties: { searches: { type: 'array', items: queryRequest } },
} as const;

export const searchRequest = {
  type: 'object',
  required: ['vector', 'limit'],
  properties: {
    vector: vectorStruct,
    params: searchParams,
    score_threshold: { type: ['number', 'null'] },
    limit: { type: 'integer', minimum: 1, maximum: MAX_RESULTS },
    offset: nullableInt(0, MAX_RESULTS),
    with_vector: withVector,
    with_payload: withPayload,
    ...common,
  },
} as const;

export const searchBatch = {
  type: 'object',
  required: ['searches'],
  properties: { searches: { type: 'array', items: searchRequest } },
} as const;

export const setPayload = {
  type: 'object',
  required: ['payload'],
  properties: {
    payload: { type: 'object' },
    points: { type: ['array', 'null'], items: pointId },
    key: { type: ['string', 'null'] },
    ...common,
  },
} as const;

export const deletePayload = {
  type: 'object',
  required: ['keys'],
  properties: {
    keys: { type: 'array', items: { type: 'string' } },
    points: { type: ['array', 'null'], items: pointId },
    ...common,
  },
} as const;

/** Qdrant's PointsSelector: `points` or `filter`. */
export const clearPayload = {
  type: 'object',
  properties: { points: { type: ['array', 'null'], items: pointId }, ...common },
} as const;

/** Qdrant's CreateFieldIndex; `field_schema` is checked by the handler (fieldSchemaType), which names what is wrong. */
export const createFieldIndex = {
  type: 'object',
  required: ['field_name'],
  properties: { field_name: { type: 'string' }, field_schema: {} },
} as const;

/** Each operation is checked by the handler (which names the one at fault). */
export const batchUpdate = {
  type: 'object',
  required: ['operations'],
  properties: { operations: { type: 'array', items: { type: 'object' } } },
} as const;
