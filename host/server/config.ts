/**
 * `quiver serve` options, from the command line and the environment
 * (a flag wins over its variable).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_BODY_LIMIT } from './app.js';

export interface ServeConfig {
  host: string;
  port: number;
  threads: number | undefined;
  maxMemoryBytes: number | undefined;
  apiKey: string | undefined;
  readOnlyApiKey: string | undefined;
  bodyLimit: number;
  shutdownTimeoutMs: number;
  logLevel: string;
  testHooks: boolean;
  /** The data directory (resolved against the working directory), or undefined with --in-memory. */
  dataDir: string | undefined;
  fsync: 'always' | 'interval' | 'never';
  fsyncIntervalMs: number;
  checkpointLogBytes: number | undefined;
  /** Where snapshots go (resolved), or undefined for the store's default. */
  snapshotsDir: string | undefined;
  /** --cluster: serve as a node of a cluster on NATS JetStream (docs/cluster.md), or undefined: one process. */
  cluster: { servers: string; nodeId: string; ttlMs: number } | undefined;
}

export const DEFAULT_PORT = 6333;
export const DEFAULT_DATA_DIR = './quiver-data';
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

export const USAGE = `Usage: quiver serve [options]

Serves a quiver vector store over HTTP, speaking the subset of Qdrant's REST
API that clients use most (see docs/api.md). Durable by default: data lives in
the data directory and survives a restart (see docs/durability.md).

Options (each also read from the environment variable shown):
  --host HOST               address to listen on (QUIVER_HOST; default 127.0.0.1, loopback only)
  --port PORT               port, 0 for any free one (QUIVER_PORT; default ${DEFAULT_PORT})
  --threads N               worker threads (QUIVER_THREADS; default: available cores)
  --data-dir DIR            where the data lives, locked while the server runs
                            (QUIVER_DATA_DIR; default ${DEFAULT_DATA_DIR}, relative to the working directory)
  --in-memory               keep nothing on disk: a restart starts empty (QUIVER_IN_MEMORY=1)
  --fsync POLICY            always (a write is answered after it is synced), interval (synced
                            every --fsync-interval ms; a crash can lose that window) or never
                            (QUIVER_FSYNC; default always)
  --fsync-interval MS       for --fsync interval (QUIVER_FSYNC_INTERVAL_MS; default 1000)
  --checkpoint-log SIZE     checkpoint a shard once its log holds SIZE past its image
                            (QUIVER_CHECKPOINT_LOG; default 64MiB)
  --snapshots-dir DIR       where collection snapshots are written (QUIVER_SNAPSHOTS_DIR;
                            default DATA_DIR/snapshots, or a temporary directory with --in-memory)
  --max-memory SIZE         keep the process under SIZE: writes beyond it get 503
                            (QUIVER_MAX_MEMORY; bytes or 512MiB, 4GiB, 2GB, ...; default: no limit)
  --api-key KEY             require KEY in the api-key header or as Authorization: Bearer KEY
                            on every route but /healthz, /livez, /readyz (QUIVER_API_KEY)
  --read-only-api-key KEY   a key that may only read (QUIVER_READ_ONLY_API_KEY)
  --body-limit SIZE         largest request body, JSON or Arrow (QUIVER_BODY_LIMIT; default 32MiB)
  --shutdown-timeout MS     on SIGTERM/SIGINT, how long in-flight work may take before
                            the store is stopped by force (QUIVER_SHUTDOWN_TIMEOUT_MS; default ${DEFAULT_SHUTDOWN_TIMEOUT_MS})
  --cluster URLS            serve as a node of a quiver cluster on these NATS servers
                            (nats://h1:4222,nats://h2:4222,...; QUIVER_CLUSTER): see docs/cluster.md
  --node-id ID              this node's id in the cluster, unique per running node (QUIVER_NODE_ID)
  --cluster-ttl MS          membership and lease ttl (QUIVER_CLUSTER_TTL_MS; default 3000)
  --log-level LEVEL         fatal, error, warn, info, debug, trace or silent (QUIVER_LOG_LEVEL; default warn)
  -h, --help                this text
  -v, --version             quiver's version

On start it prints "quiver listening on http://HOST:PORT". On SIGTERM or SIGINT it
stops accepting connections, finishes the requests in flight, closes the store and
exits 0; past the shutdown timeout it stops by force, names what was still running
and exits 1. A second signal exits at once.
`;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 2 ** 10, kib: 2 ** 10, mi: 2 ** 20, mib: 2 ** 20, gi: 2 ** 30, gib: 2 ** 30, ti: 2 ** 40, tib: 2 ** 40,
};

/** "4GiB", "512MiB", "2GB", "1048576" → bytes. */
export function parseBytes(text: string, what: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m === null ? undefined : UNITS[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) throw new ConfigError(`${what}: expected bytes, or a size like 512MiB, 4GiB, 2GB (got ${JSON.stringify(text)})`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new ConfigError(`${what}: must be at least 1 byte (got ${JSON.stringify(text)})`);
  return bytes;
}

function parseInteger(text: string, what: string, min: number, max: number): number {
  if (!/^\s*[0-9]+\s*$/.test(text)) throw new ConfigError(`${what}: expected an integer (got ${JSON.stringify(text)})`);
  const n = Number(text);
  if (n < min || n > max) throw new ConfigError(`${what}: must be from ${min} to ${max} (got ${n})`);
  return n;
}

export type ParsedCommand =
  | { command: 'help' }
  | { command: 'version' }
  | { command: 'serve'; config: ServeConfig };

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Parses `quiver ...` arguments (without node and the script) and the environment. */
export function parseCommand(argv: readonly string[], env: NodeJS.ProcessEnv = {}): ParsedCommand {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        threads: { type: 'string' },
        'max-memory': { type: 'string' },
        'api-key': { type: 'string' },
        'read-only-api-key': { type: 'string' },
        'body-limit': { type: 'string' },
        'shutdown-timeout': { type: 'string' },
        'log-level': { type: 'string' },
        'data-dir': { type: 'string' },
        'in-memory': { type: 'boolean' },
        fsync: { type: 'string' },
        'fsync-interval': { type: 'string' },
        'checkpoint-log': { type: 'string' },
        'snapshots-dir': { type: 'string' },
        cluster: { type: 'string' },
        'node-id': { type: 'string' },
        'cluster-ttl': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (values.help === true) return { command: 'help' };
  if (values.version === true) return { command: 'version' };
  if (positionals.length === 0) return { command: 'help' };
  if (positionals[0] !== 'serve' || positionals.length > 1) throw new ConfigError(`unknown command: ${positionals.join(' ')}`);

  const pick = (flag: string | undefined, name: string): string | undefined => flag ?? (env[name] === '' ? undefined : env[name]);
  const host = pick(values.host, 'QUIVER_HOST') ?? '127.0.0.1';
  const port = pick(values.port, 'QUIVER_PORT');
  const threads = pick(values.threads, 'QUIVER_THREADS');
  const maxMemory = pick(values['max-memory'], 'QUIVER_MAX_MEMORY');
  const bodyLimit = pick(values['body-limit'], 'QUIVER_BODY_LIMIT');
  const shutdown = pick(values['shutdown-timeout'], 'QUIVER_SHUTDOWN_TIMEOUT_MS');
  const logLevel = pick(values['log-level'], 'QUIVER_LOG_LEVEL') ?? 'warn';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`--log-level: expected one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(logLevel)})`);
  const inMemory = values['in-memory'] === true || (values['data-dir'] === undefined && env.QUIVER_IN_MEMORY === '1');
  const dataDir = pick(values['data-dir'], 'QUIVER_DATA_DIR');
  if (inMemory && values['data-dir'] !== undefined) throw new ConfigError('--in-memory and --data-dir: choose one');
  const fsync = pick(values.fsync, 'QUIVER_FSYNC') ?? 'always';
  if (fsync !== 'always' && fsync !== 'interval' && fsync !== 'never') throw new ConfigError(`--fsync: expected always, interval or never (got ${JSON.stringify(fsync)})`);
  const fsyncInterval = pick(values['fsync-interval'], 'QUIVER_FSYNC_INTERVAL_MS');
  const checkpointLog = pick(values['checkpoint-log'], 'QUIVER_CHECKPOINT_LOG');
  const snapshotsDir = pick(values['snapshots-dir'], 'QUIVER_SNAPSHOTS_DIR');
  const apiKey = pick(values['api-key'], 'QUIVER_API_KEY');
  const readOnlyApiKey = pick(values['read-only-api-key'], 'QUIVER_READ_ONLY_API_KEY');
  const clusterServers = pick(values.cluster, 'QUIVER_CLUSTER');
  const nodeId = pick(values['node-id'], 'QUIVER_NODE_ID');
  const clusterTtl = pick(values['cluster-ttl'], 'QUIVER_CLUSTER_TTL_MS');
  if (clusterServers !== undefined && nodeId === undefined) throw new ConfigError('--cluster needs --node-id');
  if (clusterServers === undefined && (nodeId !== undefined || clusterTtl !== undefined)) throw new ConfigError('--node-id and --cluster-ttl need --cluster');
  if (clusterServers !== undefined && inMemory) throw new ConfigError('--cluster keeps each shard leader\'s log in the data directory: it cannot run --in-memory');
  return {
    command: 'serve',
    config: {
      host,
      port: port === undefined ? DEFAULT_PORT : parseInteger(port, '--port', 0, 65535),
      threads: threads === undefined ? undefined : parseInteger(threads, '--threads', 1, 256),
      maxMemoryBytes: maxMemory === undefined ? undefined : parseBytes(maxMemory, '--max-memory'),
      apiKey,
      readOnlyApiKey,
      bodyLimit: bodyLimit === undefined ? DEFAULT_BODY_LIMIT : parseBytes(bodyLimit, '--body-limit'),
      shutdownTimeoutMs: shutdown === undefined ? DEFAULT_SHUTDOWN_TIMEOUT_MS : parseInteger(shutdown, '--shutdown-timeout', 0, 86_400_000),
      logLevel,
      testHooks: env.QUIVER_TEST_HOOKS === '1',
      dataDir: inMemory ? undefined : resolve(dataDir ?? DEFAULT_DATA_DIR),
      fsync,
      fsyncIntervalMs: fsyncInterval === undefined ? 1000 : parseInteger(fsyncInterval, '--fsync-interval', 1, 3_600_000),
      checkpointLogBytes: checkpointLog === undefined ? undefined : parseBytes(checkpointLog, '--checkpoint-log'),
      snapshotsDir: snapshotsDir === undefined ? undefined : resolve(snapshotsDir),
      cluster: clusterServers === undefined ? undefined
        : { servers: clusterServers, nodeId: nodeId!, ttlMs: clusterTtl === undefined ? 3000 : parseInteger(clusterTtl, '--cluster-ttl', 100, 600_000) },
    },
  };
}
