/**
 * Redirects in `connect()`: off by default (the 3xx is a HandshakeError); with
 * `followRedirects`, 301/302/307 with relative and absolute `Location`, http: mapped to ws:,
 * up to `maxRedirects`, and credentials not sent to another host.
 */
import test, { ExecutionContext } from 'ava';
import net from 'node:net';
import { connect, ConnectOptions, HandshakeError } from '../../src';
import { within } from '../helpers/socket-pair';
import { HttpHead } from '../helpers/upgrade';
import { Queue, rawServer, target, write101 } from './support';

function redirect(socket: net.Socket, status: string, location: string | undefined): void {
  const loc = location === undefined ? [] : [`Location: ${location}`];
  socket.end([`HTTP/1.1 ${status}`, ...loc, 'Content-Length: 5', '', 'moved'].join('\r\n'));
}

/**
 * A raw server: `/final…` upgrades; `/chain/N` redirects to `/chain/N-1` (`/chain/0`
 * upgrades); `/loop` redirects to itself; other paths use `routes`.
 */
async function site(t: ExecutionContext, routes: Record<string, [string, string | undefined]> = {}) {
  const seen = new Queue<HttpHead>();
  const all: HttpHead[] = [];
  const srv = await rawServer(t, (socket, req) => {
    seen.push(req);
    all.push(req);
    const path = target(req);
    const chain = /^\/chain\/(\d+)$/.exec(path);
    if (path.startsWith('/final') || (chain && chain[1] === '0')) return write101(socket, req);
    if (chain) return redirect(socket, '302 Found', `/chain/${Number(chain[1]) - 1}`);
    if (path === '/loop') return redirect(socket, '302 Found', '/loop');
    const route = routes[path];
    if (route) return redirect(socket, route[0], route[1]);
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  });
  return { ...srv, seen, all, base: `ws://127.0.0.1:${srv.port}` };
}

async function settle(p: Promise<unknown>, t: ExecutionContext): Promise<unknown> {
  return within(
    p.then(
      (ws) => {
        t.teardown(() => (ws as { destroy(): void }).destroy());
        return ws;
      },
      (e: unknown) => e
    ),
    'connect() to settle'
  );
}

test('redirects are not followed by default: HandshakeError with status 302 and Location', async (t) => {
  const a = await site(t, { '/old': ['302 Found', '/final'] });
  const err = await settle(connect(`${a.base}/old`), t);
  t.true(err instanceof HandshakeError, String(err));
  t.is((err as HandshakeError).status, 302);
  t.is((err as HandshakeError).headers['location'], '/final');
  t.is(a.all.length, 1);
});

for (const [status, code] of [
  ['301 Moved Permanently', 301],
  ['302 Found', 302],
  ['307 Temporary Redirect', 307],
  ['308 Permanent Redirect', 308]
] as const) {
  test(`followRedirects: ${code} with a relative Location (path and query)`, async (t) => {
    const a = await site(t, { '/old': [status, '/final/here?x=1&y=2'] });
    const ws = await settle(connect(`${a.base}/old`, { followRedirects: true }), t);
    t.false(ws instanceof Error, String(ws));
    t.is(target(await a.seen.next()), '/old');
    t.is(target(await a.seen.next()), '/final/here?x=1&y=2');
  });
}

test('followRedirects: an absolute ws: Location on another server, and http: mapped to ws:', async (t) => {
  const b = await site(t);
  const a = await site(t, {
    '/to-b': ['301 Moved Permanently', `ws://127.0.0.1:${b.port}/final?from=a`],
    '/to-http': ['307 Temporary Redirect', `http://127.0.0.1:${b.port}/final/http`]
  });
  await settle(connect(`${a.base}/to-b`, { followRedirects: true, protocols: ['p1'] }), t);
  const first = await b.seen.next();
  t.is(target(first), '/final?from=a');
  t.is(first.headers['host'], `127.0.0.1:${b.port}`);
  t.is(first.headers['sec-websocket-protocol'], 'p1', 'the offer is made again');
  await settle(connect(`${a.base}/to-http`, { followRedirects: true }), t);
  const second = await b.seen.next();
  t.is(target(second), '/final/http');
  t.is(second.headers['upgrade'], 'websocket', 'an upgrade request, not a plain GET');
});

test('each hop gets a fresh key; relative redirects keep credentials on the same host', async (t) => {
  const a = await site(t);
  await settle(connect(`${a.base}/chain/2`, { followRedirects: true, headers: { Authorization: 'Bearer x', Cookie: 'c=1' } }), t);
  t.is(a.all.length, 3);
  t.is(new Set(a.all.map((r) => r.headers['sec-websocket-key'])).size, 3);
  for (const r of a.all) {
    t.is(r.headers['authorization'], 'Bearer x');
    t.is(r.headers['cookie'], 'c=1');
  }
});

test('a redirect to another host does not carry Authorization or Cookie', async (t) => {
  const b = await site(t);
  const a = await site(t, { '/away': ['302 Found', `ws://127.0.0.1:${b.port}/final`] });
  await settle(connect(`${a.base}/away`, { followRedirects: true, headers: { Authorization: 'Bearer x', cookie: 'c=1', 'X-Other': 'kept' } }), t);
  const atA = await a.seen.next();
  t.is(atA.headers['authorization'], 'Bearer x');
  const atB = await b.seen.next();
  t.false('authorization' in atB.headers, 'no credentials for another host');
  t.false('cookie' in atB.headers);
  t.false('x-other' in atB.headers, 'no caller header for another origin (issue 11, finding 9)');
});

test('maxRedirects: exactly that many are followed, one more is a HandshakeError', async (t) => {
  const a = await site(t);
  const ok: ConnectOptions = { followRedirects: true, maxRedirects: 3 };
  const ws = await settle(connect(`${a.base}/chain/3`, ok), t);
  t.false(ws instanceof Error, String(ws));
  t.is(a.all.length, 4);
  a.all.length = 0;
  const err = await settle(connect(`${a.base}/chain/3`, { followRedirects: true, maxRedirects: 2 }), t);
  t.true(err instanceof HandshakeError, String(err));
  t.is((err as HandshakeError).status, 302);
  t.regex((err as Error).message, /more than 2 redirects/);
  t.is(a.all.length, 3);
});

test('a redirect loop stops after the default 10 redirects', async (t) => {
  const a = await site(t);
  const err = await settle(connect(`${a.base}/loop`, { followRedirects: true }), t);
  t.true(err instanceof HandshakeError, String(err));
  t.regex((err as Error).message, /more than 10 redirects/);
  t.is(a.all.length, 11);
});

test('a redirect without Location, or to a non-WebSocket scheme, is a HandshakeError', async (t) => {
  const a = await site(t, { '/nowhere': ['302 Found', undefined], '/ftp': ['302 Found', 'ftp://127.0.0.1/x'] });
  const e1 = await settle(connect(`${a.base}/nowhere`, { followRedirects: true }), t);
  t.true(e1 instanceof HandshakeError);
  t.is((e1 as HandshakeError).status, 302);
  const e2 = await settle(connect(`${a.base}/ftp`, { followRedirects: true }), t);
  t.true(e2 instanceof HandshakeError, String(e2));
  t.regex((e2 as Error).message, /bad redirect/);
  t.true((e2 as HandshakeError).cause instanceof SyntaxError);
});

test('the timeout covers the whole redirect chain', async (t) => {
  const never = await rawServer(t, () => {});
  const a = await site(t, { '/slow': ['302 Found', `ws://127.0.0.1:${never.port}/`] });
  const started = Date.now();
  const err = await settle(connect(`${a.base}/slow`, { followRedirects: true, timeout: 300 }), t);
  t.true(err instanceof HandshakeError, String(err));
  t.regex((err as Error).message, /300 ms/);
  t.true(Date.now() - started < 2300);
  t.is(target(await never.requests.next()), '/');
});
