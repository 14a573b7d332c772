/**
 * `upgrade()` options over real sockets: subprotocol selection (`protocols` in the server's
 * order of preference, `selectProtocol`), extra 101 headers, and `rejectUpgrade()`.
 */
import test from 'ava';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { connect, HandshakeError, rejectUpgrade, upgrade } from '../../src';
import { within } from '../helpers/socket-pair';
import { GOOD, Queue, RawClient, exchange, listenOn, request, track, upgradeServer } from './support';

async function offer(t: Parameters<typeof upgradeServer>[0], port: number, protocols: string): Promise<RawClient> {
  const c = new RawClient(t, port);
  await c.connected;
  c.socket.write(request([...GOOD, `Sec-WebSocket-Protocol: ${protocols}`]));
  return c;
}

test('protocols: the server picks by its own preference among those offered', async (t) => {
  const srv = await upgradeServer(t, { protocols: ['v2', 'v1'] });
  const c = await offer(t, srv.port, 'v1, v2, v3');
  const res = await c.response();
  t.is(res.status, 101);
  t.is(res.headers['sec-websocket-protocol'], 'v2');
  t.is((await srv.nextSocket()).protocol, 'v2');
});

test('protocols: none in common → no Sec-WebSocket-Protocol and protocol ""', async (t) => {
  const srv = await upgradeServer(t, { protocols: ['x'] });
  const c = await offer(t, srv.port, 'a, b');
  const res = await c.response();
  t.is(res.status, 101);
  t.false('sec-websocket-protocol' in res.headers);
  t.is((await srv.nextSocket()).protocol, '');
});

test('requireProtocol: a client that offers none of the protocols, or none at all, gets 400; one that does is accepted', async (t) => {
  const srv = await upgradeServer(t, { protocols: ['chat.v1'], requireProtocol: true });
  const wrong = await (await offer(t, srv.port, 'a, b')).response();
  t.is(wrong.status, 400);
  const none = new RawClient(t, srv.port);
  await none.connected;
  none.socket.write(request(GOOD));
  const res = await none.response();
  t.is(res.status, 400);
  t.regex(res.rest.toString(), /no subprotocol this server speaks was offered \(offered: none\)/);
  const ok = await (await offer(t, srv.port, 'x, chat.v1')).response();
  t.is(ok.status, 101);
  t.is(ok.headers['sec-websocket-protocol'], 'chat.v1');
});

test('selectProtocol gets the offers in the client order and the request; its choice is used', async (t) => {
  const calls: [string[], string | undefined][] = [];
  const srv = await upgradeServer(t, {
    protocols: ['a'], // selectProtocol takes precedence
    selectProtocol: (offered, req) => {
      calls.push([offered, req.url]);
      return offered[offered.length - 1];
    }
  });
  const c = await offer(t, srv.port, 'c, b ,a');
  t.is((await c.response()).headers['sec-websocket-protocol'], 'a');
  t.deepEqual(calls, [[['c', 'b', 'a'], '/']]);
  t.is((await srv.nextSocket()).protocol, 'a');
});

test('selectProtocol returning undefined → no protocol', async (t) => {
  const srv = await upgradeServer(t, { selectProtocol: () => undefined });
  const c = await offer(t, srv.port, 'a');
  const res = await c.response();
  t.is(res.status, 101);
  t.false('sec-websocket-protocol' in res.headers);
  t.is((await srv.nextSocket()).protocol, '');
});

test('selectProtocol returning a protocol that was not offered → 500 and a rejection', async (t) => {
  const srv = await upgradeServer(t, { selectProtocol: () => 'zzz' });
  const res = await exchange(t, srv.port, request([...GOOD, 'Sec-WebSocket-Protocol: a']));
  t.is(res.statusLine, 'HTTP/1.1 500 Internal Server Error');
  const o = await srv.outcomes.next();
  t.true(o.err instanceof HandshakeError, String(o.err));
  t.is((o.err as HandshakeError).status, 500);
  t.regex((o.err as Error).message, /zzz/);
});

test('selectProtocol that throws → 500 and a rejection carrying the cause', async (t) => {
  const boom = new Error('boom');
  const srv = await upgradeServer(t, {
    selectProtocol: () => {
      throw boom;
    }
  });
  const res = await exchange(t, srv.port, request(GOOD));
  t.is(res.status, 500);
  const o = await srv.outcomes.next();
  t.true(o.err instanceof HandshakeError, String(o.err));
  t.is((o.err as HandshakeError).cause, boom);
});

test('extra headers go into the 101; an injected CR/LF is refused with 500', async (t) => {
  const srv = await upgradeServer(t, { headers: { 'Set-Cookie': ['a=1', 'b=2'], 'X-Server': 'wsframe' } });
  const c = new RawClient(t, srv.port);
  await c.connected;
  c.socket.write(request(GOOD));
  const res = await c.response();
  t.is(res.status, 101);
  t.deepEqual(
    res.lines.filter((l) => /^(set-cookie|x-server):/i.test(l)),
    ['Set-Cookie: a=1', 'Set-Cookie: b=2', 'X-Server: wsframe']
  );
  await srv.nextSocket();

  const bad = await upgradeServer(t, { headers: { 'X-Evil': 'a\r\nSet-Cookie: evil=1' } });
  const r2 = await exchange(t, bad.port, request(GOOD));
  t.is(r2.status, 500);
  t.false(r2.lines.some((l) => /evil/i.test(l)));
  const o = await bad.outcomes.next();
  t.true(o.err instanceof HandshakeError, String(o.err));
  t.is((o.err as HandshakeError).status, 500);
  t.true((o.err as HandshakeError).cause instanceof TypeError);
});

test('rejectUpgrade(socket, 401, headers, body) answers a real response and closes', async (t) => {
  const server = http.createServer();
  const handled = new Queue<void>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.headers.authorization !== 'Bearer secret') {
      rejectUpgrade(socket, 401, { 'WWW-Authenticate': 'Bearer realm="test"' }, 'who are you?\n');
      handled.push();
      return;
    }
    upgrade(req, socket, head).then((ws) => t.teardown(() => ws.destroy()), t.fail);
  });
  track(t, server);
  const port = await listenOn(server);

  const res = await exchange(t, port, request(GOOD));
  t.is(res.statusLine, 'HTTP/1.1 401 Unauthorized');
  t.is(res.headers['www-authenticate'], 'Bearer realm="test"');
  t.is(res.headers['content-length'], '13');
  t.is(res.rest.toString(), 'who are you?\n');
  await handled.next();

  // Our client sees it as a HandshakeError with that status and those headers.
  const err = await t.throwsAsync(within(connect(`ws://127.0.0.1:${port}/`), 'connect'), { instanceOf: HandshakeError });
  t.is(err?.status, 401);
  t.is(err?.headers['www-authenticate'], 'Bearer realm="test"');
  // And with the right credentials it upgrades.
  const ws = await within(connect(`ws://127.0.0.1:${port}/`, { headers: { Authorization: 'Bearer secret' } }), 'connect');
  t.teardown(() => ws.destroy());
  t.is(ws.role, 'client');
});
