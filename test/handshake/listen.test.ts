/**
 * `listen()`: the client set grows and shrinks, `broadcast` reaches every open client,
 * `path` and `verify` refuse, plain HTTP gets 426, and `close()` sends 1001 to every open
 * connection, waits for them and resolves within their `closeTimeout`.
 */
import test, { ExecutionContext } from 'ava';
import http from 'node:http';
import { AsyncSocket, close, CloseCode, connect, HandshakeError, listen, ListenOptions, Opcode, readData, whenClosed, WsServer } from '../../src';
import { until, within } from '../helpers/socket-pair';
import { echo } from './support';

async function server(t: ExecutionContext, options: ListenOptions = {}, handler = echo): Promise<WsServer> {
  const s = await listen(options, handler);
  t.teardown(() => s.close());
  return s;
}

async function client(t: ExecutionContext, s: WsServer, path = '/'): Promise<AsyncSocket> {
  const ws = await within(connect(`ws://127.0.0.1:${s.port}${path}`), 'connect');
  t.teardown(() => ws.destroy());
  return ws;
}

const failure = (p: Promise<unknown>): Promise<unknown> => within(p.then(() => null, (e: unknown) => e), 'connect() to settle');

test('clients grows with each connection and shrinks on a clean close and on a reset', async (t) => {
  const s = await server(t);
  t.is(s.clients.size, 0);
  t.is(s.address.address, '127.0.0.1');
  const [a, b, c] = [await client(t, s), await client(t, s), await client(t, s)];
  await until(() => s.clients.size === 3, '3 clients');
  t.true([...s.clients].every((ws) => ws.role === 'server'));
  const result = await within(close(a, 1000, 'done'), 'close');
  t.true(result.clean);
  await until(() => s.clients.size === 2, '2 clients');
  b.destroy();
  await until(() => s.clients.size === 1, '1 client');
  c.destroy();
  await until(() => s.clients.size === 0, 'no clients');
});

test('broadcast reaches every open client, as text or binary, and skips closed ones', async (t) => {
  const s = await server(t, {}, async (ws) => {
    await readData(ws); // hold the connection until the client's Close
  });
  const clients = [await client(t, s), await client(t, s), await client(t, s)];
  await until(() => s.clients.size === 3, '3 clients');
  await s.broadcast('to all');
  await s.broadcast(Buffer.from([4, 2]));
  for (const ws of clients) {
    t.deepEqual(await within(readData(ws), 'text'), { opcode: Opcode.Text, data: Buffer.from('to all') });
    t.deepEqual(await within(readData(ws), 'binary'), { opcode: Opcode.Binary, data: Buffer.from([4, 2]) });
  }
  await within(close(clients[0]!), 'close');
  await until(() => s.clients.size === 2, '2 clients');
  await within(s.broadcast('to the rest'), 'broadcast');
  for (const ws of clients.slice(1)) t.is((await within(readData(ws), 'text')).data.toString(), 'to the rest');
});

test('path: other paths get 404; the path matches with a query too', async (t) => {
  const s = await server(t, { path: '/chat' });
  for (const p of ['/', '/chat/', '/other', '/Chat']) {
    const err = await failure(connect(`ws://127.0.0.1:${s.port}${p}`));
    t.true(err instanceof HandshakeError, `${p}: ${String(err)}`);
    t.is((err as HandshakeError).status, 404, p);
  }
  const ws = await client(t, s, '/chat?room=1');
  await until(() => s.clients.size === 1, 'the client');
  t.is(ws.role, 'client');
});

test('verify: a status refuses (401), undefined accepts; it sees the request', async (t) => {
  const seen: (string | undefined)[] = [];
  const s = await server(t, {
    verify: async (req) => {
      seen.push(req.headers.authorization);
      return req.headers.authorization === 'Bearer ok' ? undefined : 401;
    }
  });
  const err = await failure(connect(`ws://127.0.0.1:${s.port}/`, { headers: { Authorization: 'Bearer bad' } }));
  t.true(err instanceof HandshakeError, String(err));
  t.is((err as HandshakeError).status, 401);
  t.is(s.clients.size, 0);
  const ws = await within(connect(`ws://127.0.0.1:${s.port}/`, { headers: { Authorization: 'Bearer ok' } }), 'connect');
  t.teardown(() => ws.destroy());
  await until(() => s.clients.size === 1, 'the client');
  t.deepEqual(seen, ['Bearer bad', 'Bearer ok']);
});

test('a plain HTTP GET gets 426 Upgrade Required with Sec-WebSocket-Version: 13', async (t) => {
  const s = await server(t);
  const res = await within(
    new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: s.port, path: '/', agent: false }, resolve);
      req.on('error', reject);
    }),
    'the HTTP response'
  );
  res.resume();
  t.is(res.statusCode, 426);
  t.is(res.headers['sec-websocket-version'], '13');
  t.is(s.clients.size, 0);
});

/** Reads until the server's Close (answered by readData) and returns it. */
async function untilClose(ws: AsyncSocket): Promise<{ code: number; reason: string } | null> {
  for (;;) {
    const m = await readData(ws);
    if (m.opcode === Opcode.Close) return ws.peerClose;
  }
}

test('close() sends 1001 to every open connection, waits for them, and resolves well within closeTimeout', async (t) => {
  // Long, so that resolving before it shows close() waited for the answers, not the timer.
  const closeTimeout = 15_000;
  const s = await server(t, { closeTimeout });
  const clients = [await client(t, s), await client(t, s), await client(t, s)];
  await until(() => s.clients.size === 3, '3 clients');
  const reading = clients.map(untilClose);
  const started = Date.now();
  await within(s.close(), 'server.close()', closeTimeout + 2000);
  const took = Date.now() - started;
  t.true(took < closeTimeout, `took ${took} ms`);
  t.is(s.clients.size, 0);
  for (const peer of await Promise.all(reading)) t.deepEqual(peer, { code: CloseCode.GoingAway, reason: '' });
  await within(Promise.all(clients.map(whenClosed)), 'the clients to close');
  t.false(s.httpServer.listening);
  const err = await failure(connect(`ws://127.0.0.1:${s.port}/`, { timeout: 2000 }));
  t.true(err instanceof HandshakeError, 'no longer accepting');
});

test('close() with a client that never answers: destroyed after closeTimeout, then close() resolves', async (t) => {
  const closeTimeout = 400;
  const s = await server(t, { closeTimeout });
  const polite = await client(t, s);
  const silent = await client(t, s); // never reads, so never answers the Close
  await until(() => s.clients.size === 2, '2 clients');
  const reading = untilClose(polite);
  const started = Date.now();
  await within(s.close(4000, 'maintenance'), 'server.close()', closeTimeout + 8000);
  const took = Date.now() - started;
  t.true(took >= closeTimeout - 50, `took ${took} ms`);
  // Well before the 10 s default, with room for a busy machine.
  t.true(took < closeTimeout + 8000, `took ${took} ms`);
  t.deepEqual(await reading, { code: 4000, reason: 'maintenance' });
  await within(whenClosed(silent), 'the silent client to be cut off');
  t.is(s.clients.size, 0);
});
