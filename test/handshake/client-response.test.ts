/**
 * `connect()` against hand-written raw TCP servers: every wrong response rejects with a
 * HandshakeError carrying the status and headers and the socket is closed; timeout, abort,
 * connection refused; and bytes right after the 101 are kept for the first read.
 */
import test, { ExecutionContext } from 'ava';
import net from 'node:net';
import { acceptKey, connect, HandshakeError, makeFrame, Opcode, readData, sendText } from '../../src';
import { within } from '../helpers/socket-pair';
import { HttpHead } from '../helpers/upgrade';
import { Queue, closedByPeer, rawServer, write101 } from './support';

/** A raw server that answers every request with `respond`; its sockets are queued. */
async function answering(t: ExecutionContext, respond: (socket: net.Socket, req: HttpHead) => void) {
  const sockets = new Queue<net.Socket>();
  const srv = await rawServer(t, (socket, req) => {
    sockets.push(socket);
    respond(socket, req);
  });
  return { ...srv, sockets, url: `ws://127.0.0.1:${srv.port}/` };
}

async function rejects(t: ExecutionContext, p: Promise<unknown>): Promise<HandshakeError> {
  const err = await within(p.then(() => null, (e: unknown) => e), 'connect() to settle');
  if (!(err instanceof HandshakeError)) throw new Error(`expected a HandshakeError, got ${String(err)}`);
  t.pass();
  return err;
}

const plain = (status: string, headers: string[], body: string): string =>
  [`HTTP/1.1 ${status}`, ...headers, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');

const wrong: { title: string; status: number; respond: (s: net.Socket, r: HttpHead) => void; message: RegExp; header?: [string, string] }[] = [
  { title: '200 with a body', status: 200, respond: (s) => s.write(plain('200 OK', ['Content-Type: text/html'], '<h1>hi</h1>')), message: /status 101, got 200/, header: ['content-type', 'text/html'] },
  { title: '404 with a body', status: 404, respond: (s) => s.write(plain('404 Not Found', ['X-Why: gone'], 'not here')), message: /got 404/, header: ['x-why', 'gone'] },
  { title: '101 without Upgrade', status: 101, respond: (s, r) => s.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(r)}\r\n\r\n`), message: /Upgrade/ },
  { title: '101 with Upgrade: h2c', status: 101, respond: (s, r) => s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(r)}\r\n\r\n`), message: /Upgrade/, header: ['upgrade', 'h2c'] },
  { title: '101 with Connection: keep-alive', status: 101, respond: (s, r) => s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: ${accept(r)}\r\n\r\n`), message: /Connection/, header: ['connection', 'keep-alive'] },
  { title: '101 with a wrong Accept', status: 101, respond: (s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'), message: /Accept/, header: ['sec-websocket-accept', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='] },
  { title: '101 without Accept', status: 101, respond: (s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'), message: /Accept/ },
  { title: '101 with an unoffered protocol', status: 101, respond: (s, r) => write101(s, r, ['Sec-WebSocket-Protocol: chat']), message: /subprotocol "chat"/, header: ['sec-websocket-protocol', 'chat'] },
  { title: '101 with an unoffered extension', status: 101, respond: (s, r) => write101(s, r, ['Sec-WebSocket-Extensions: permessage-deflate']), message: /extensions/, header: ['sec-websocket-extensions', 'permessage-deflate'] }
];

function accept(r: HttpHead): string {
  return acceptKey(r.headers['sec-websocket-key'] ?? '');
}

for (const w of wrong) {
  test(`a response ${w.title} → HandshakeError with status and headers, socket closed`, async (t) => {
    const srv = await answering(t, w.respond);
    const err = await rejects(t, connect(srv.url, { timeout: 3000 }));
    t.is(err.status, w.status);
    t.regex(err.message, w.message);
    t.is(typeof err.headers, 'object');
    if (w.header) t.is(err.headers[w.header[0]], w.header[1]);
    await closedByPeer(await srv.sockets.next());
  });
}

test('a server that never answers → rejection within the timeout, socket closed', async (t) => {
  const srv = await answering(t, () => {});
  const started = Date.now();
  const err = await rejects(t, connect(srv.url, { timeout: 300 }));
  const took = Date.now() - started;
  t.regex(err.message, /within 300 ms/);
  t.is(err.status, undefined);
  t.true(took >= 290, `took ${took} ms`);
  t.true(took < 2300, `took ${took} ms`);
  await closedByPeer(await srv.sockets.next());
});

test('a server that accepts TCP but never reads → rejection within the timeout', async (t) => {
  const server = net.createServer((s) => s.pause());
  const sockets: net.Socket[] = [];
  server.on('connection', (s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    server.close();
  });
  const port = (server.address() as net.AddressInfo).port;
  const err = await rejects(t, connect(`ws://127.0.0.1:${port}/`, { timeout: 300 }));
  t.regex(err.message, /300 ms/);
});

test('an AbortSignal already aborted → rejection at once, no connection made', async (t) => {
  let connections = 0;
  const srv = await answering(t, write101);
  srv.server.on('connection', () => connections++);
  const reason = new Error('changed my mind');
  const err = await rejects(t, connect(srv.url, { signal: AbortSignal.abort(reason) }));
  t.is(err.cause, reason);
  t.regex(err.message, /abort/);
  // A connection that was made would reach the server within this round trip.
  const ws = await within(connect(srv.url), 'a second connect');
  t.teardown(() => ws.destroy());
  t.is(connections, 1);
});

test('an AbortSignal aborted mid-handshake → rejection, socket closed', async (t) => {
  const srv = await answering(t, () => {});
  const ac = new AbortController();
  const p = connect(srv.url, { signal: ac.signal, timeout: 5000 });
  const socket = await srv.sockets.next('the request to arrive');
  const started = Date.now();
  ac.abort();
  const err = await rejects(t, p);
  t.true(Date.now() - started < 1000);
  t.is((err.cause as Error).name, 'AbortError');
  await closedByPeer(socket);
});

test('aborting after the handshake completed does not touch the connection', async (t) => {
  const srv = await answering(t, (s, r) => write101(s, r));
  const ac = new AbortController();
  const ws = await within(connect(srv.url, { signal: ac.signal }), 'connect');
  t.teardown(() => ws.destroy());
  ac.abort();
  await sendText(ws, 'still here');
  t.false(ws.destroyed);
});

test('connection refused (a port just closed) → HandshakeError with the cause', async (t) => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  const err = await rejects(t, connect(`ws://127.0.0.1:${port}/`, { timeout: 3000 }));
  t.is(err.status, undefined);
  t.is((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
});

test('a 101 followed in the same write by server frames: nothing after the 101 is lost', async (t) => {
  const frames = Buffer.concat([
    makeFrame(Opcode.Text, 'right after', false),
    makeFrame(Opcode.Binary, Buffer.from([0, 255]), false),
    makeFrame(Opcode.Ping, 'p', false)
  ]);
  const srv = await answering(t, (s, r) => write101(s, r, [], frames));
  const ws = await within(connect(srv.url), 'connect');
  t.teardown(() => ws.destroy());
  const m1 = await within(readData(ws), 'first message');
  t.is(m1.opcode, Opcode.Text);
  t.is(m1.data.toString(), 'right after');
  const m2 = await within(readData(ws), 'second message');
  t.deepEqual([m2.opcode, ...m2.data], [Opcode.Binary, 0, 255]);
  const m3 = await within(readData(ws), 'the ping');
  t.is(m3.opcode, Opcode.Ping);
});

test('a good 101 resolves to a client AsyncSocket with masking on', async (t) => {
  const srv = await answering(t, (s, r) => write101(s, r));
  const ws = await within(connect(srv.url), 'connect');
  t.teardown(() => ws.destroy());
  t.is(ws.role, 'client');
  t.true(ws.isClient);
  t.is(ws.protocol, '');
  const socket = await srv.sockets.next();
  const got = new Promise<Buffer>((resolve) => socket.once('data', resolve));
  socket.resume();
  await sendText(ws, 'masked?');
  const bytes = await within(got, 'a frame');
  t.is(bytes[0], 0x81);
  t.is(bytes[1]! & 0x80, 0x80, 'the client masks');
});
