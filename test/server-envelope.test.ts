// Bytes that are not a good HTTP request, over a real socket (node:net):
// each answers a 4xx in Qdrant's `{ status: { error }, time }` envelope, never
// Fastify's or Node's own error shape, and the server keeps serving.
import t from 'tap';
import { connect } from 'node:net';
import { Store } from '../host/index.js';
import { buildServer } from '../host/server/app.js';

const store = await Store.open({ threads: 1 });
t.teardown(() => store.close());
const app = buildServer(store);
t.teardown(() => app.close());
await app.listen({ host: '127.0.0.1', port: 0 });
const { port } = app.server.address() as { port: number };

interface Raw {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends `bytes` as they are and reads until the server closes (or one response is complete). */
function raw(bytes: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const finish = (): void => {
      socket.destroy();
      const head = data.slice(0, data.indexOf('\r\n\r\n'));
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const at = line.indexOf(':');
        headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
      }
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
      let body = data.slice(head.length + 4);
      if (headers['content-length'] !== undefined) body = body.slice(0, Number(headers['content-length']));
      resolve({ status, headers, body });
    };
    socket.setEncoding('utf8');
    socket.on('data', (s: string) => {
      data += s;
      const end = data.indexOf('\r\n\r\n');
      const length = /content-length: *(\d+)/i.exec(data.slice(0, end))?.[1];
      if (end >= 0 && length !== undefined && data.length >= end + 4 + Number(length)) finish();
    });
    socket.on('end', finish);
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' && data !== '' ? finish() : reject(err)));
    socket.write(bytes);
  });
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Connection: close\r\n\r\n`;

interface Case {
  name: string;
  bytes: string;
  status: number;
  error: RegExp;
}

const cases: Case[] = [
  { name: 'a request line that is not HTTP', bytes: 'GARBAGE\r\n\r\n', status: 400, error: /^Bad request: malformed HTTP request \(HPE_/ },
  { name: 'a header line without a colon', bytes: 'GET / HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n', status: 400, error: /^Bad request: malformed HTTP request/ },
  { name: 'a Content-Length that is not a number', bytes: 'POST /collections/e/points/count HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}', status: 400, error: /^Bad request: malformed HTTP request/ },
  { name: 'headers over Node\'s 16 KiB limit', bytes: get('/collections', `X-Big: ${'a'.repeat(20_000)}\r\n`), status: 431, error: /^Request header fields too large/ },
  { name: 'a URL over the header limit', bytes: get(`/collections/${'n'.repeat(20_000)}`), status: 431, error: /^Request header fields too large/ },
  { name: 'bad percent-encoding in a path', bytes: 'POST /collections/%FF/compact HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', status: 400, error: /^Format error in path parameters: the path is not valid percent-encoded UTF-8$/ },
  { name: 'a collection name of 256 characters', bytes: get(`/collections/${'n'.repeat(256)}`), status: 422, error: /^Validation error in path parameters: \[collection_name: value "n+" invalid, must be from 1 to 255 characters\]$/ },
  { name: 'a timeout past the timer range that is not a u64', bytes: 'POST /collections/e/points/query?timeout=99999999999999999999 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}', status: 400, error: /^Format error in query parameters: timeout:/ },
];

t.test('malformed requests answer a 4xx in Qdrant\'s envelope', async (t) => {
  for (const c of cases) {
    const res = await raw(c.bytes);
    t.equal(res.status, c.status, `${c.name}: HTTP ${c.status} (${res.body.slice(0, 200)})`);
    t.match(res.headers['content-type'], /^application\/json/, `${c.name}: JSON`);
    let body: any;
    try {
      body = JSON.parse(res.body);
    } catch {
      body = undefined;
    }
    t.match(body, { status: { error: c.error }, time: Number }, `${c.name}: ${res.body.slice(0, 200)}`);
    t.notOk(body !== undefined && ('statusCode' in body || 'code' in body || 'message' in body), `${c.name}: not Fastify's error shape`);
  }
  const res = await fetch(`http://127.0.0.1:${port}/collections`);
  t.equal(res.status, 200, 'the server still serves');
});
