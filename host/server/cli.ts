#!/usr/bin/env node
/**
 * The `quiver` command: `quiver serve` runs the HTTP server (see
 * `quiver --help` and docs/api.md).
 *
 * Shutdown, on SIGTERM or SIGINT: stop accepting connections and let the
 * requests in flight finish (fastify.close), then close the store; all of
 * it within the shutdown timeout. Exit 0 when that went cleanly. Past the
 * timeout the store is closed by force (its threads terminated), the
 * requests still running are named on stderr, and the exit code is 1. A
 * second signal exits at once.
 */
import { Store } from '../store/store.js';
import { buildServer, quiverVersion } from './app.js';
import { buildClusterServer } from './cluster-app.js';
import { ConfigError, USAGE, parseCommand, type ServeConfig } from './config.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

function log(message: string): void {
  process.stderr.write(`quiver: ${message}\n`);
}

async function serve(config: ServeConfig): Promise<void> {
  if (config.cluster !== undefined) return serveCluster(config, config.cluster);
  const store = await Store.open({
    ...(config.threads === undefined ? {} : { threads: config.threads }),
    ...(config.maxMemoryBytes === undefined ? {} : { maxMemoryBytes: config.maxMemoryBytes }),
    ...(config.dataDir === undefined ? {} : { path: config.dataDir, fsync: config.fsync, fsyncIntervalMs: config.fsyncIntervalMs }),
    ...(config.dataDir === undefined || config.checkpointLogBytes === undefined ? {} : { checkpointLogBytes: config.checkpointLogBytes }),
    ...(config.snapshotsDir === undefined ? {} : { snapshotsPath: config.snapshotsDir }),
  });
  for (const r of store.recovery) {
    log(r.error === undefined ? `recovered collection ${r.dataset} (${r.shards} shards, ${r.replayed} log records replayed)` : `collection ${r.dataset} cannot be opened: ${r.error}`);
  }
  store.on('error', (err: Error) => log(`store error: ${err.message}`));
  store.on('eviction', (e: { dataset: string }) => log(`memory limit: evicted collection ${e.dataset}`));

  const app = buildServer(store, {
    apiKey: config.apiKey,
    readOnlyApiKey: config.readOnlyApiKey,
    bodyLimit: config.bodyLimit,
    testHooks: config.testHooks,
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
    requestLogging: config.logLevel === 'debug' || config.logLevel === 'trace',
  });

  let shuttingDown = false;
  const shutdown = async (signal: string): Promise<never> => {
    const started = performance.now();
    const budget = config.shutdownTimeoutMs;
    app.quiver.ready = false;
    log(`${signal}: shutting down (no new connections; up to ${budget} ms for requests in flight)`);
    const closed = app.close();
    // a connection left open with no request on it (a client holding an idle
    // keep-alive socket) must not hold the shutdown up: close those once
    // nothing is being served
    const idle = setInterval(() => {
      if (app.quiver.inflight().length === 0) app.server.closeIdleConnections();
    }, 250).unref();
    const drained = await Promise.race([closed.then(() => true, () => true), sleep(budget).then(() => false)]);
    clearInterval(idle);
    const stillRunning = drained ? [] : app.quiver.inflight();
    const remaining = Math.max(0, budget - (performance.now() - started));
    const report = await store.close({ timeoutMs: remaining });
    if (drained && !report.forced) {
      log(`stopped cleanly in ${Math.round(performance.now() - started)} ms`);
      process.exit(0);
    }
    const running = stillRunning.length === 0
      ? 'store operations (no HTTP request was waiting)'
      : stillRunning.map((r) => `${r.method} ${r.url} (running ${r.runningMs} ms)`).join('; ');
    log(`warning: shutdown timed out after ${budget} ms; worker threads were terminated. Still running: ${running}`);
    // the requests that waited on the terminated threads now fail; let their answers go out
    await Promise.race([closed.catch(() => {}), sleep(1000)]);
    process.exit(1);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      log(`${signal} again: exiting now`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    shuttingDown = true;
    void shutdown(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    log(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
    await store.close({ timeoutMs: 1000 });
    process.exit(1);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  process.stdout.write(`quiver listening on http://${host}:${port}\n`);
  if (config.apiKey === undefined && config.readOnlyApiKey === undefined && !isLoopback(config.host)) {
    log(`warning: listening on ${config.host} without an API key; anyone who can reach it can read and write`);
  }
}

/** --cluster: a cluster node (store/cluster-store.ts) behind the cluster API (cluster-app.ts). */
async function serveCluster(config: ServeConfig, cluster: NonNullable<ServeConfig['cluster']>): Promise<void> {
  const node = await Store.open({
    path: config.dataDir!,
    ...(config.snapshotsDir === undefined ? {} : { snapshotsPath: config.snapshotsDir }),
    cluster: { servers: cluster.servers, nodeId: cluster.nodeId, ttlMs: cluster.ttlMs, address: `http://${config.host}:${config.port}` },
  });
  const app = buildClusterServer(node, {
    apiKey: config.apiKey,
    readOnlyApiKey: config.readOnlyApiKey,
    bodyLimit: config.bodyLimit,
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
  });
  const stop = async (signal: string): Promise<void> => {
    log(`${signal}: leaving the cluster`);
    await Promise.race([app.close(), sleep(config.shutdownTimeoutMs)]);
    await node.close();
    process.exit(0);
  };
  process.on('SIGTERM', (s) => void stop(s));
  process.on('SIGINT', (s) => void stop(s));
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    log(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
    await node.close();
    process.exit(1);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  process.stdout.write(`quiver listening on http://${config.host}:${port} (cluster node ${cluster.nodeId})\n`);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseCommand(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`quiver: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (parsed.command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (parsed.command === 'version') {
    process.stdout.write(`${quiverVersion()}\n`);
    return;
  }
  try {
    await serve(parsed.config);
  } catch (err) {
    log(`cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
}

await main();
