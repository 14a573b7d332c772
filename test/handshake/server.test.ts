/**
 * `upgrade()` over real sockets: an `http.Server` whose 'upgrade' handler calls it, and a raw
 * TCP client sending hand-written requests. (Requests without `Upgrade` or `Connection:
 * upgrade` never reach an 'upgrade' handler — node:http answers them as plain requests — so
 * those refusals are covered by request-check.test.ts.)
 */
import test, { ExecutionContext } from 'ava';
import { AsyncSocket, HandshakeError, IOError, makeFrame, Opcode, readData, sendText } from '../../src';
import { redactHeaders } from '../../src/core/errors';
import { parseFrames, within } from '../helpers/socket-pair';
import { ACCEPT, GOOD, RawClient, exchange, request, upgradeServer } from './support';

const without = (name: string): string[] => GOOD.filter((l) => !l.toLowerCase().startsWith(name.toLowerCase() + ':'));
const replace = (name: string, value: string): string[] => [...without(name), `${name}: ${value}`];

const malformed: { title: string; req: string; status: number; reason: string; headers?: Record<string, string> }[] = [
  { title: 'POST', req: request(GOOD, 'POST / HTTP/1.1'), status: 405, reason: 'Method Not Allowed', headers: { allow: 'GET' } },
  { title: 'PUT', req: request(GOOD, 'PUT /x HTTP/1.1'), status: 405, reason: 'Method Not Allowed', headers: { allow: 'GET' } },
  { title: 'HTTP/1.0', req: request(GOOD, 'GET / HTTP/1.0'), status: 400, reason: 'Bad Request' },
  { title: 'Upgrade: h2c', req: request(replace('Upgrade', 'h2c')), status: 400, reason: 'Bad Request' },
  { title: 'no version', req: request(without('Sec-WebSocket-Version')), status: 426, reason: 'Upgrade Required', headers: { 'sec-websocket-version': '13' } },
  { title: 'version 8', req: request(replace('Sec-WebSocket-Version', '8')), status: 426, reason: 'Upgrade Required', headers: { 'sec-websocket-version': '13' } },
  { title: 'no key', req: request(without('Sec-WebSocket-Key')), status: 400, reason: 'Bad Request' },
  { title: 'short key', req: request(replace('Sec-WebSocket-Key', 'AAAAAAAAAAAAAAAAAAAA')), status: 400, reason: 'Bad Request' },
  { title: 'bad protocol list', req: request([...GOOD, 'Sec-WebSocket-Protocol: a b, c']), status: 400, reason: 'Bad Request' },
  { title: 'repeated protocol', req: request([...GOOD, 'Sec-WebSocket-Protocol: a, a']), status: 400, reason: 'Bad Request' }
];

for (const m of malformed) {
  test(`malformed request (${m.title}) → ${m.status}, socket closed, upgrade() rejects`, async (t) => {
    const srv = await upgradeServer(t);
    const res = await exchange(t, srv.port, m.req);
    t.is(res.statusLine, `HTTP/1.1 ${m.status} ${m.reason}`);
    t.is(res.headers['connection'], 'close');
    t.is(Number(res.headers['content-length']), res.rest.length, 'the body is Content-Length long');
    for (const [k, v] of Object.entries(m.headers ?? {})) t.is(res.headers[k], v, k);
    const o = await srv.outcomes.next();
    t.true(o.err instanceof HandshakeError, String(o.err));
    t.is((o.err as HandshakeError).status, m.status);
    // The request headers, with the key (a secret, as authorization and cookies are) redacted.
    t.deepEqual((o.err as HandshakeError).headers, redactHeaders(o.req.headers), 'carries the request headers');
    if (o.req.headers['sec-websocket-key'] !== undefined) t.is((o.err as HandshakeError).headers['sec-websocket-key'], '[redacted]');
  });
}

async function upgraded(t: ExecutionContext, lines: string[], extra: Buffer = Buffer.alloc(0)): Promise<{ c: RawClient; ws: AsyncSocket }> {
  const srv = await upgradeServer(t);
  const c = new RawClient(t, srv.port);
  await c.connected;
  c.socket.write(Buffer.concat([Buffer.from(request(lines)), extra]));
  return { c, ws: await srv.nextSocket() };
}

test('a valid request gets exactly the 101 of RFC 6455 §1.3 and an open server socket', async (t) => {
  const { c, ws } = await upgraded(t, GOOD);
  const res = await c.response();
  t.is(
    c.bytes.toString('latin1'),
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`
  );
  t.is(res.status, 101);
  t.is(ws.role, 'server');
  t.is(ws.protocol, '');
  t.false(c.isClosed);
  // The server socket works: it sends an unmasked text frame after the 101.
  await sendText(ws, 'hi');
  await within(
    (async () => {
      while (parseFrames(parseResponseRest(c.bytes), true).length < 1) await new Promise((r) => setTimeout(r, 2));
    })(),
    'the first frame'
  );
  const [frame] = parseFrames(parseResponseRest(c.bytes), true);
  t.is(frame!.opcode, Opcode.Text);
  t.false(frame!.masked);
  t.is(frame!.data.toString(), 'hi');
});

function parseResponseRest(bytes: Buffer): Buffer {
  const end = bytes.indexOf('\r\n\r\n');
  return end < 0 ? Buffer.alloc(0) : bytes.subarray(end + 4);
}

test("Connection as a token list ('keep-alive, Upgrade') and odd case are accepted", async (t) => {
  const { c, ws } = await upgraded(t, [...without('Connection').filter((l) => !l.startsWith('Upgrade')), 'Connection: keep-alive, uPgRaDe', 'Upgrade: WebSocket']);
  t.is((await c.response()).status, 101);
  t.is(ws.role, 'server');
});

test('bytes sent in the same write right after the request arrive as the first messages (head kept)', async (t) => {
  const third = makeFrame(Opcode.Text, 'third', true);
  const frames = Buffer.concat([
    makeFrame(Opcode.Text, 'first', true),
    makeFrame(Opcode.Binary, Buffer.from([1, 2, 3]), true),
    third.subarray(0, 4) // a partial frame: its rest comes in a later write
  ]);
  const { c, ws } = await upgraded(t, GOOD, frames);
  const m1 = await within(readData(ws), 'first message');
  t.is(m1.opcode, Opcode.Text);
  t.is(m1.data.toString(), 'first');
  const m2 = await within(readData(ws), 'second message');
  t.is(m2.opcode, Opcode.Binary);
  t.deepEqual([...m2.data], [1, 2, 3]);
  const pending = readData(ws);
  c.socket.write(third.subarray(4));
  const m3 = await within(pending, 'third message');
  t.is(m3.opcode, Opcode.Text);
  t.is(m3.data.toString(), 'third');
});

test('a client that resets during the handshake never crashes the server', async (t) => {
  const srv = await upgradeServer(t);
  const N = 20;
  const clients: RawClient[] = [];
  for (let i = 0; i < N; i++) {
    const c = new RawClient(t, srv.port);
    clients.push(c);
    await c.connected;
    c.socket.write(request(GOOD));
    c.socket.resetAndDestroy();
  }
  for (let i = 0; i < N; i++) {
    const o = await srv.outcomes.next(`outcome ${i}`);
    if (o.err !== undefined) {
      t.true(o.err instanceof HandshakeError, String(o.err));
    } else {
      // Upgraded before the reset arrived: the socket then fails its reads with IOError.
      const err = await within(readData(o.ws!).then(() => null, (e: unknown) => e), 'the read to fail');
      t.true(err instanceof IOError, String(err));
    }
  }
  // The server still serves.
  const c = new RawClient(t, srv.port);
  await c.connected;
  c.socket.write(request(GOOD));
  t.is((await c.response()).status, 101);
  t.truthy(await srv.nextSocket());
});

test('a request with a partial head, then a reset, is not our business and does not crash', async (t) => {
  const srv = await upgradeServer(t);
  const c = new RawClient(t, srv.port);
  await c.connected;
  c.socket.write('GET / HTTP/1.1\r\nUpgrade: websocket\r\n');
  c.socket.resetAndDestroy();
  await c.waitClosed();
  t.is(srv.outcomes.length, 0);
  const ok = new RawClient(t, srv.port);
  await ok.connected;
  ok.socket.write(request(GOOD));
  t.is((await ok.response()).headers['sec-websocket-accept'], ACCEPT);
});
