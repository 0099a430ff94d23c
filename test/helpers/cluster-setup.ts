// What the cluster tests on one NATS cluster share: the cluster and one
// client, both torn down with the test file, and polling with a deadline.
import type { Test } from 'tap';
import { ClusterClient } from '../../host/cluster/connect.js';
import { NatsCluster } from './nats-cluster.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A started 3-node cluster and a client named `name`, closed at the end of `t`. */
export async function clusterAndClient(t: Pick<Test, 'teardown'>, name: string): Promise<{ cluster: NatsCluster; client: ClusterClient }> {
  const cluster = await NatsCluster.start();
  t.teardown(() => cluster.stop());
  const client = await ClusterClient.connect({ servers: cluster.servers, name });
  t.teardown(() => client.close());
  return { cluster, client };
}

/** Polls `ok` every 25 ms; resolves with the ms it took, rejects naming `what` after `deadlineMs`. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, deadlineMs: number): Promise<number> {
  const start = performance.now();
  while (!(await ok())) {
    if (performance.now() - start > deadlineMs) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await sleep(25);
  }
  return performance.now() - start;
}
