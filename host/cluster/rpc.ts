/**
 * Requests between the nodes of a cluster: NATS request/reply on one
 * subject per node, `<prefix>.rpc.<node token>` (names.ts). Why NATS and not
 * an internal HTTP route: every node already holds a connection to the NATS
 * cluster, so a request needs no other port, address book or connection
 * pool, reaches exactly the named node (or fails at once with "no
 * responders" when it is gone), and survives the loss of one nats-server as
 * the streams do. It costs one more hop through a nats-server.
 *
 * A message is `[header length u32 LE][header, JSON][body bytes]`: the
 * header says what is asked (or the answer), the body carries vectors or a
 * log record as bytes. An error travels as `{ error: { code, message } }`
 * and is thrown again as that QuiverError on the asking side.
 */
import type { Msg, Subscription } from '@nats-io/transport-node';
import { ErrorCode, QuiverError } from '../errors.js';
import { natsError, type ClusterClient } from './connect.js';
import { nodeToken } from './names.js';

export interface RpcMessage {
  header: Record<string, unknown>;
  body: Uint8Array;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const EMPTY = new Uint8Array(0);

export const rpcSubject = (prefix: string, nodeId: string): string => `${prefix}.rpc.${nodeToken(nodeId)}`;

export function encodeRpc(header: Record<string, unknown>, body: Uint8Array = EMPTY): Uint8Array {
  const h = enc.encode(JSON.stringify(header));
  const out = new Uint8Array(4 + h.length + body.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 4);
  out.set(body, 4 + h.length);
  return out;
}

export function decodeRpc(data: Uint8Array): RpcMessage {
  if (data.length < 4) throw new QuiverError(ErrorCode.CORRUPT, `a cluster request of ${data.length} bytes`);
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
  if (4 + n > data.length) throw new QuiverError(ErrorCode.CORRUPT, `a cluster request's header of ${n} bytes in ${data.length}`);
  const header = JSON.parse(dec.decode(data.subarray(4, 4 + n))) as unknown;
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new QuiverError(ErrorCode.CORRUPT, 'a cluster request\'s header is not an object');
  // the body in a buffer of its own: a NATS message's data is a Node Buffer,
  // whose slice() is a view into a shared pool at any offset
  return { header: header as Record<string, unknown>, body: new Uint8Array(data.subarray(4 + n)) };
}

const codes = new Set<string>(Object.values(ErrorCode));

function errorReply(err: unknown): Uint8Array {
  const code = err instanceof QuiverError ? err.code : ErrorCode.IO;
  return encodeRpc({ error: { code, message: err instanceof Error ? err.message : String(err) } });
}

/** Answers requests to this node's subject with `handle`; an error it throws goes back coded. */
export function serveRpc(client: ClusterClient, subject: string, handle: (m: RpcMessage) => Promise<RpcMessage>): Subscription {
  return client.nc.subscribe(subject, {
    callback: (err, msg: Msg) => {
      if (err !== null) return;
      void (async () => {
        try {
          const r = await handle(decodeRpc(msg.data));
          msg.respond(encodeRpc(r.header, r.body));
        } catch (e) {
          msg.respond(errorReply(e));
        }
      })();
    },
  });
}

/** Asks `subject`; the reply, or its error thrown as a QuiverError (no node there: UNAVAILABLE). */
export async function callRpc(client: ClusterClient, subject: string, header: Record<string, unknown>, body?: Uint8Array, timeoutMs = client.timeoutMs): Promise<RpcMessage> {
  let reply: Msg;
  try {
    reply = await client.nc.request(subject, encodeRpc(header, body), { timeout: timeoutMs });
  } catch (err) {
    throw natsError(err, `asking ${subject}`);
  }
  const m = decodeRpc(reply.data);
  const e = m.header.error as { code?: unknown; message?: unknown } | undefined;
  if (e !== undefined) {
    const code = typeof e.code === 'string' && codes.has(e.code) ? e.code as ErrorCode : ErrorCode.IO;
    throw new QuiverError(code, String(e.message));
  }
  return m;
}
