/**
 * The client learns why it was refused (issue 25, point 5): against `requireProtocol` the
 * error was `HandshakeError: expected status 101, got 400`, and the server's body ("no
 * subprotocol this server speaks was offered ...") was dropped. Now the start of a refusal's
 * body (at most 1 KiB, read for at most a second) is `err.body` and quoted in the message,
 * over HTTP/1.1 and HTTP/2.
 */
import test from 'ava';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { HandshakeError, connect, listen, rejectHttp2 } from '../../src/index';

test('HTTP/1.1: a listen() server that requires a subprotocol: the client error says why', async (t) => {
  const server = await listen({ host: '127.0.0.1', port: 0, protocols: ['chat.v1'], requireProtocol: true }, async () => undefined);
  t.teardown(() => server.close());
  const err = await connect(`ws://127.0.0.1:${server.port}/`).then(
    () => null,
    (e: unknown) => e
  );
  t.true(err instanceof HandshakeError, String(err));
  const e = err as HandshakeError;
  t.is(e.status, 400);
  t.regex(e.body ?? '', /subprotocol/);
  t.regex(e.message, /expected status 101, got 400: ".*subprotocol.*"/);
  t.log(e.message);
});

test('HTTP/1.1: a long or binary body is cut at 1 KiB and quoted escaped', async (t) => {
  const server = http.createServer();
  server.on('upgrade', (_req, socket: net.Socket) => {
    const body = Buffer.concat([Buffer.from('\u0000\u001b[31mred\n'), Buffer.alloc(4000, 0x41)]);
    socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n` + body.toString('latin1'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const err = (await connect(`ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`).catch((e: unknown) => e)) as HandshakeError;
  t.is(err.status, 403);
  t.is(Buffer.byteLength(err.body ?? ''), 1024);
  t.true(err.message.includes('\\u0000\\u001b[31mred\\n'), err.message.slice(0, 80));
  t.false([...err.message].some((c) => c.charCodeAt(0) < 0x20), 'no raw control characters in the message');
});

test('HTTP/2: a refusal with a body: the client error says why', async (t) => {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } });
  server.on('stream', (stream) => rejectHttp2(stream, 403, {}, 'tokens expired at midnight'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const err = (await connect(`ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, { http2: true }).catch((e: unknown) => e)) as HandshakeError;
  t.true(err instanceof HandshakeError, String(err));
  t.is(err.status, 403);
  t.is(err.body, 'tokens expired at midnight');
  t.regex(err.message, /expected status 200, got 403: "tokens expired at midnight"/);
});
