// Membership (host/cluster/members.ts) on a real 3-node nats-server
// cluster, ttl TTL_MS = 600 ms, beats every 150 ms: members see each other
// with their addresses; a node that stops beating drops out after the ttl
// (not before); a graceful leave is seen at once; a second live process
// with the same node id is refused (EXISTS); a restart after a crash takes
// its id over once the old one stopped beating, and the old process's next
// beat is FENCED.
import t from 'tap';
import { clusterAndClient, sleep } from './helpers/cluster-setup.js';
import { Members } from '../host/cluster/members.js';
import { ErrorCode } from '../host/errors.js';

const TTL_MS = 600;
const BEAT_MS = 150;

const { client } = await clusterAndClient(t, 'members');

const open = (nodeId: string, bucket = 'quiver-members') => Members.open(client, { nodeId, address: `http://127.0.0.1:${6000 + nodeId.length}/${nodeId}`, ttlMs: TTL_MS, heartbeatMs: BEAT_MS, bucket });
const ids = async (m: Members): Promise<string[]> => (await m.alive()).map((x) => x.nodeId);

t.test('members see each other; a stopped one drops out after the ttl; a leave is seen at once', async (t) => {
  const [a, b, c] = [await open('a', 'm1'), await open('b', 'm1'), await open('c', 'm1')];
  for (const m of [a, b, c]) {
    await m.join();
    m.start();
  }
  t.same(await ids(a), ['a', 'b', 'c'], 'a sees all three');
  t.same((await b.alive()).find((m) => m.nodeId === 'c')?.address, 'http://127.0.0.1:6001/c', 'with their addresses');
  // b stops beating (a crash: nothing deleted)
  await b.stop(false);
  const stopped = performance.now();
  let gone = 0;
  while ((await ids(a)).includes('b')) {
    if (performance.now() - stopped > TTL_MS + 3000) break;
    await sleep(50);
  }
  gone = performance.now() - stopped;
  t.comment(`a stopped member dropped out ${Math.round(gone)} ms after its last beat (ttl ${TTL_MS})`);
  t.ok(gone >= TTL_MS - BEAT_MS, 'not before the ttl');
  t.ok(gone < TTL_MS + 3000, 'and within the ttl plus NATS round trips');
  t.same(await ids(a), ['a', 'c'], 'a and c remain');
  await c.stop();
  t.same(await ids(a), ['a'], 'a graceful leave is seen at the next look');
  await a.stop();
});

t.test('one node id, one process: a live one is EXISTS; a crashed one is taken over and fenced', async (t) => {
  const [d1, d2] = [await open('d', 'm2'), await open('d', 'm2')];
  await d1.join();
  d1.start();
  await t.rejects(d2.join(), { code: ErrorCode.EXISTS }, 'a second process with a live id is refused');
  await d1.stop(false); // d1 crashes
  const started = performance.now();
  await d2.join();
  t.ok(performance.now() - started >= TTL_MS, 'the restart waited out the ttl');
  t.same((await d2.alive()).map((m) => m.incarnation), [d2.incarnation], 'the record is the new process\'s');
  await t.rejects(d1.heartbeat(), { code: ErrorCode.FENCED }, 'the old process\'s next beat is fenced');
  await d2.stop();
  t.same(await ids(d2), [], 'nothing left after the leave');
});

t.test('bad options are refused', async (t) => {
  await t.rejects(open('bad id'), { code: ErrorCode.INVALID_ARGUMENT });
  await t.rejects(Members.open(client, { nodeId: 'x', address: '', ttlMs: TTL_MS }), { code: ErrorCode.INVALID_ARGUMENT });
  await t.rejects(Members.open(client, { nodeId: 'x', address: 'http://x', ttlMs: 50 }), { code: ErrorCode.INVALID_ARGUMENT });
  await t.rejects(Members.open(client, { nodeId: 'x', address: 'http://x', ttlMs: TTL_MS, heartbeatMs: TTL_MS }), { code: ErrorCode.INVALID_ARGUMENT });
  const m = await open('early', 'm3');
  await t.rejects(m.heartbeat(), { code: ErrorCode.INVALID_ARGUMENT }, 'a beat before join');
});
