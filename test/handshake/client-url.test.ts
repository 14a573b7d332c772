/**
 * What `connect()` sends: the request target for each URL form (default path, path and
 * query verbatim, localhost, an IPv6 literal), the Host header, custom headers and Origin,
 * the offered subprotocols in order; and the URLs it refuses.
 */
import test, { ExecutionContext } from 'ava';
import dns from 'node:dns/promises';
import net from 'node:net';
import { connect, HandshakeError, isValidKey } from '../../src';
import { within } from '../helpers/socket-pair';
import { HttpHead, readHttpHead } from '../helpers/upgrade';
import { Queue, listenOn, target, track, write101 } from './support';

/** A raw server on `host` that upgrades everything and queues the requests. */
async function server(t: ExecutionContext, host = '127.0.0.1', extra: (req: HttpHead) => string[] = () => []) {
  const requests = new Queue<HttpHead>();
  const s = net.createServer((socket) => {
    socket.on('error', () => {});
    readHttpHead(socket).then(
      (req) => {
        requests.push(req);
        write101(socket, req, extra(req));
      },
      () => socket.destroy()
    );
  });
  track(t, s);
  const port = await listenOn(s, host);
  return { port, requests, netServer: s };
}

async function open(t: ExecutionContext, url: string, options = {}) {
  const ws = await within(connect(url, options), `connect ${url}`);
  t.teardown(() => ws.destroy());
  return ws;
}

test('no path → GET /, Host with the port, a fresh valid key each time', async (t) => {
  const { port, requests } = await server(t);
  await open(t, `ws://127.0.0.1:${port}`);
  await open(t, `ws://127.0.0.1:${port}`);
  const [a, b] = [await requests.next(), await requests.next()];
  t.is(a.startLine, 'GET / HTTP/1.1');
  t.is(a.headers['host'], `127.0.0.1:${port}`);
  t.is(a.headers['upgrade'], 'websocket');
  t.is(a.headers['connection'], 'Upgrade');
  t.is(a.headers['sec-websocket-version'], '13');
  t.true(isValidKey(a.headers['sec-websocket-key']!));
  t.not(a.headers['sec-websocket-key'], b.headers['sec-websocket-key']);
  t.false('sec-websocket-protocol' in a.headers);
  t.false('origin' in a.headers);
  t.false('sec-websocket-extensions' in a.headers);
});

test('path and query are sent verbatim', async (t) => {
  const { port, requests } = await server(t);
  for (const path of ['/chat', '/a/b%20c/?x=1&y=%2F&z', '/?', '/q?a=%E2%9C%93&b=c%26d']) {
    await open(t, `ws://127.0.0.1:${port}${path}`);
    t.is(target(await requests.next()), path);
  }
});

test('ws://localhost:PORT connects, with Host: localhost:PORT', async (t) => {
  const { address } = await dns.lookup('localhost');
  const { port, requests } = await server(t, address);
  await open(t, `ws://localhost:${port}/x`);
  const req = await requests.next();
  t.is(req.headers['host'], `localhost:${port}`);
  t.is(target(req), '/x');
});

test('ws://[::1]:PORT connects (an IPv6 literal), with Host: [::1]:PORT', async (t) => {
  let ipv6: Awaited<ReturnType<typeof server>>;
  try {
    ipv6 = await server(t, '::1');
  } catch (err) {
    t.log(`skipped: this machine has no IPv6 loopback (listening on ::1 failed: ${(err as Error).message})`);
    t.pass();
    return;
  }
  const ws = await open(t, `ws://[::1]:${ipv6.port}/six`);
  const req = await ipv6.requests.next();
  t.is(req.headers['host'], `[::1]:${ipv6.port}`);
  t.is(target(req), '/six');
  t.is((ws.socket as net.Socket).remoteAddress, '::1');
});

test('unsupported schemes and fragments reject with SyntaxError, before any connection', async (t) => {
  let connections = 0;
  const { port, netServer } = await server(t);
  netServer.on('connection', () => connections++);
  for (const url of [
    `ftp://127.0.0.1:${port}/`,
    `file:///tmp/x`,
    `mailto:a@b.c`,
    `ws://127.0.0.1:${port}/#frag`,
    `ws://127.0.0.1:${port}/?a=1#`,
    `wss://127.0.0.1:${port}/#x`
  ]) {
    const err = await within(connect(url).then(() => null, (e: unknown) => e), url);
    t.true(err instanceof SyntaxError, `${url}: ${String(err)}`);
  }
  // A connection, had one been made, would have been accepted by now (the rejections come later).
  await open(t, `ws://127.0.0.1:${port}/`);
  t.is(connections, 1);
  // An unparsable URL rejects too (the WHATWG URL parser's TypeError).
  const err = await connect('not a url').then(() => null, (e: unknown) => e);
  t.true(err instanceof TypeError, String(err));
});

test('invalid or repeated protocol names reject with SyntaxError', async (t) => {
  const { port } = await server(t);
  for (const protocols of [['a b'], ['a', 'a'], [''], ['x,y']]) {
    const err = await connect(`ws://127.0.0.1:${port}/`, { protocols }).then(() => null, (e: unknown) => e);
    t.true(err instanceof SyntaxError, JSON.stringify(protocols));
  }
});

test('custom headers and Origin arrive; the WebSocket headers cannot be overridden', async (t) => {
  const { port, requests } = await server(t);
  await open(t, `ws://127.0.0.1:${port}/`, {
    origin: 'https://app.example',
    headers: {
      Authorization: 'Bearer t0k3n',
      'X-Trace': ['a', 'b'],
      Cookie: 'id=1',
      'Sec-WebSocket-Version': '8',
      Upgrade: 'nope',
      'Sec-WebSocket-Key': 'not-a-key'
    }
  });
  const req = await requests.next();
  t.is(req.headers['origin'], 'https://app.example');
  t.is(req.headers['authorization'], 'Bearer t0k3n');
  t.is(req.headers['cookie'], 'id=1');
  t.is(req.headers['sec-websocket-version'], '13');
  t.is(req.headers['upgrade'], 'websocket');
  t.true(isValidKey(req.headers['sec-websocket-key']!));
});

test('offered protocols arrive in order; ws.protocol is the one the server chose', async (t) => {
  const { port, requests } = await server(t, '127.0.0.1', (req) => {
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    return offered.includes('v1') ? ['Sec-WebSocket-Protocol: v1'] : [];
  });
  const ws = await open(t, `ws://127.0.0.1:${port}/`, { protocols: ['v2', 'v1', 'legacy'] });
  t.is((await requests.next()).headers['sec-websocket-protocol'], 'v2, v1, legacy');
  t.is(ws.protocol, 'v1');
  const one = await open(t, `ws://127.0.0.1:${port}/`, { protocols: 'solo' });
  t.is((await requests.next()).headers['sec-websocket-protocol'], 'solo');
  t.is(one.protocol, '', 'none chosen');
});

test('a protocol chosen although none was offered is refused', async (t) => {
  const { port } = await server(t, '127.0.0.1', () => ['Sec-WebSocket-Protocol: v1']);
  const err = await within(connect(`ws://127.0.0.1:${port}/`).then(() => null, (e: unknown) => e), 'connect');
  t.true(err instanceof HandshakeError);
  t.regex((err as Error).message, /none was offered/);
});
