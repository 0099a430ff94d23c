// The resource snapshot (bench/lib/resources.ts) as a tap assertion.
import type t from 'tap';
import { type Snapshot, snapshot, waitForSnapshot } from '../../bench/lib/resources.js';

export { snapshot, type Snapshot };

type Asserts = Pick<typeof t, 'same' | 'equal'>;

/** Polls until the threads and resources are back to `base` (at most `ms`), then asserts they are. */
export async function backTo(t: Asserts, base: Snapshot, label: string, ms = 5000): Promise<void> {
  const now = await waitForSnapshot(base, ms);
  t.equal(now.threads, base.threads, `${label}: the same number of threads as before (${base.threads})`);
  t.same(now.resources, base.resources, `${label}: the same active resources as before`);
}
