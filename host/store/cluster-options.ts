/**
 * What a cluster node (cluster-node.ts) is opened and asked with: its
 * options, a dataset's, a search's.
 */
import type { QuantizationOptions, QuantSearch } from '../core/quantization.js';
import type { ShardParams } from '../core/shard.js';
import type { CompiledFilter, Filter } from '../filter/filter.js';

export interface ClusterNodeOptions {
  /** The NATS cluster: 'nats://h1:4222,nats://h2:4222' or a list. */
  servers: string | readonly string[];
  /** Unique per running node: 1-64 letters, digits, '_', '-', '.'. */
  nodeId: string;
  /** This node's directory (its shards' local logs). */
  dir: string;
  /** Member and lease ttl, ms (default 3000): a failed node's shards move after about twice this. */
  ttlMs?: number;
  /** How long a write (or a search) waits for a shard's leader: default 4 x ttl, at least 10 s (a JetStream election after a nats-server dies takes seconds). */
  writeTimeoutMs?: number;
  prefix?: string;
  /** Records a shard's leader applies between two images of it put in the object store (default 1,000; 0: only checkpoint() puts them). */
  imageEvery?: number;
  /** Copies this node rebuilds at once when shards move to it (default 1); the rest wait, and a drop cancels a waiting one. */
  maxMoves?: number;
  /** Copies of each dataset's log stream in the NATS cluster, 1..5 (default 3: one per server of a 3-node cluster), whatever the dataset's own replicas. */
  streamReplicas?: number;
  /** Where this node answers, as the members bucket shows it (default `nats:<its request subject>`). */
  address?: string;
}

export interface ClusterDatasetOptions {
  shards: number;
  replicas: number;
  dim: number;
  metric?: ShardParams['metric'];
  M?: number;
  efConstruction?: number;
  ef?: number;
  /** int8 scalar quantization, as a Store dataset's (`alwaysRam` true only). */
  quantization?: QuantizationOptions | null;
}

export type ReadConsistency = 'leader' | 'any';

export interface ClusterReadOptions {
  /** 'leader' (default): each shard's leader answers; 'any': a follower may (this node's own copy first). */
  consistency?: ReadConsistency;
}

/** As Store.search's options (SearchOptions), and the read's consistency. */
export interface ClusterSearchOptions extends ClusterReadOptions {
  ef?: number;
  withPayload?: boolean;
  filter?: Filter | CompiledFilter | null;
  quantization?: QuantSearch | null;
}
