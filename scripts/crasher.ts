/**
 * The crash test, in the style of qdrant/crasher: a child `quiver serve
 * --data-dir DIR`, concurrent writers upserting and deleting with
 * `wait=true`, compactions, a SIGKILL at a random moment, a restart on the
 * same directory, and a check that everything acknowledged is there (and
 * nothing deleted is); then the next round on the restarted server. See
 * scripts/crasher/run.ts for a round, scripts/crasher/model.ts for the check.
 *
 *   npm run build:ts && node dist/scripts/crasher.js [--rounds 20] [--seed N] [--in-memory] ...
 *
 * Prints the run's seed first (rerun with --seed to replay the same writes
 * and kill times; the interleaving of the writers is the scheduler's), one
 * line per round, and last a line `CRASHER_RESULT {json}`. Exits 0 when
 * every round passed, 1 when one failed (the data directory is kept and
 * named), 2 on bad arguments or when the harness itself could not run.
 */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { crash, type CrashOptions } from './crasher/run.js';

export const RESULT_MARKER = 'CRASHER_RESULT ';

const USAGE = `Usage: node dist/scripts/crasher.js [options]
  --rounds N          kill rounds, then one graceful restart (default 20)
  --seed N            the run's seed (default: from the clock; printed)
  --writers N         concurrent writers (default 4)
  --dim N             vector dimension (default 24)
  --shards N          shards of the collection (default 3)
  --threads N         the server's worker threads (default 2)
  --ids N             distinct point ids written (default 1200)
  --max-batch N       largest upsert batch (default 40)
  --kill-min-ms MS    earliest kill after the round's first acknowledged upsert (default 150)
  --kill-max-ms MS    latest kill (default 900)
  --data-dir DIR      the server's data directory (default: a fresh one in the temp dir, removed if the run passes)
  --in-memory         run the server with --in-memory: a negative control, whose restarts must fail the check
  --fsync POLICY      passed to the server as --fsync
  --checkpoint-log SIZE  passed to the server with a data directory (default 128KiB, so shards
                      checkpoint on log size during the run, not only after compactions)
  --server-arg ARG    one more argument for \`quiver serve\` (repeatable)
  --no-storage-args   pass neither --data-dir nor --in-memory (a server without them)
  --sabotage-logs     a negative control: after each kill, cut every shard's newest log
                      segment to half (acknowledged writes are lost; the check must fail)
  --quantization JSON the collection's quantization_config, e.g. '{"scalar":{"type":"int8","always_ram":false}}'
`;

function int(text: string | undefined, fallback: number, what: string, min = 0): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${what}: expected an integer of at least ${min} (got ${JSON.stringify(text)})`);
  return n;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        rounds: { type: 'string' }, seed: { type: 'string' }, writers: { type: 'string' }, dim: { type: 'string' },
        shards: { type: 'string' }, threads: { type: 'string' }, ids: { type: 'string' }, 'max-batch': { type: 'string' },
        'kill-min-ms': { type: 'string' }, 'kill-max-ms': { type: 'string' }, 'data-dir': { type: 'string' },
        'in-memory': { type: 'boolean' }, fsync: { type: 'string' }, 'checkpoint-log': { type: 'string' }, 'server-arg': { type: 'string', multiple: true },
        'no-storage-args': { type: 'boolean' }, 'sabotage-logs': { type: 'boolean' }, quantization: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`crasher: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const runDir = mkdtempSync(join(tmpdir(), 'quiver-crasher-'));
  const dataDir = values['data-dir'] ?? join(runDir, 'data');
  let opts: CrashOptions;
  try {
    const killMinMs = int(values['kill-min-ms'], 150, 'kill-min-ms');
    opts = {
      cli: fileURLToPath(new URL('../host/server/cli.js', import.meta.url)),
      seed: int(values.seed, Date.now() % 2 ** 32, 'seed'),
      rounds: int(values.rounds, 20, 'rounds'),
      writers: int(values.writers, 4, 'writers', 1),
      dim: int(values.dim, 24, 'dim', 1),
      shards: int(values.shards, 3, 'shards', 1),
      threads: int(values.threads, 2, 'threads', 1),
      ids: int(values.ids, 1200, 'ids', 1),
      maxBatch: int(values['max-batch'], 40, 'max-batch', 1),
      killMinMs,
      killMaxMs: int(values['kill-max-ms'], Math.max(900, killMinMs), 'kill-max-ms', killMinMs),
      storageArgs: values['no-storage-args'] === true ? [] : values['in-memory'] === true ? ['--in-memory'] : ['--data-dir', dataDir],
      cwd: runDir,
      serverArgs: [...(values.fsync === undefined ? [] : ['--fsync', values.fsync]), ...(values['server-arg'] ?? [])],
      log: (l) => process.stdout.write(`${l}\n`),
      ...(values['in-memory'] === true || values['no-storage-args'] === true ? {} : { dataDir }),
      sabotage: values['sabotage-logs'] === true,
      ...(values.quantization === undefined ? {} : { quantization: JSON.parse(values.quantization) as unknown }),
    };
    if (opts.sabotage === true && opts.dataDir === undefined) throw new Error('--sabotage-logs needs a data directory');
    if (opts.dataDir !== undefined) opts.serverArgs.unshift('--checkpoint-log', values['checkpoint-log'] ?? '128KiB');
  } catch (err) {
    process.stderr.write(`crasher: ${(err as Error).message}\n\n${USAGE}`);
    rmSync(runDir, { recursive: true, force: true });
    return 2;
  }
  if (values['data-dir'] !== undefined) mkdirSync(dataDir, { recursive: true });
  opts.log(`crasher: seed ${opts.seed} (rerun with --seed ${opts.seed}); ${opts.rounds} rounds, ${opts.writers} writers, `
    + `${opts.ids} ids x ${opts.dim} in ${opts.shards} shards; server: ${[...opts.storageArgs, ...opts.serverArgs].join(' ') || '(defaults)'}`);
  let result;
  try {
    result = await crash(opts);
  } catch (err) {
    process.stderr.write(`crasher: the harness could not run: ${(err as Error).stack ?? String(err)}\n`);
    rmSync(runDir, { recursive: true, force: true });
    return 2;
  }
  const passed = result.rounds.filter((r) => r.failures.length === 0).length;
  // what to keep for a post-mortem: the data the server wrote, nothing else
  const kept = result.ok || values['in-memory'] === true ? null : values['no-storage-args'] === true ? runDir : dataDir;
  if (kept === null || values['data-dir'] !== undefined) rmSync(runDir, { recursive: true, force: true });
  if (result.ok) opts.log(`crasher: passed: ${passed} rounds, seed ${opts.seed}`);
  else {
    const failed = result.rounds.at(-1)!;
    opts.log(`crasher: FAILED in round ${String(failed.round)} (round seed ${failed.seed}) after ${passed} passing; run seed ${opts.seed}${kept === null ? '' : `; data kept in ${kept}`}`);
  }
  process.stdout.write(`\n${RESULT_MARKER}${JSON.stringify({ ...result, dataDir: kept })}\n`);
  return result.ok ? 0 : 1;
}

process.exitCode = await main();
