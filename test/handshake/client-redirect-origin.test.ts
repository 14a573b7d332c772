/**
 * Issue 11, finding 9: with `followRedirects`, a redirect to another origin (here: another
 * port on 127.0.0.1) must not carry anything the caller gave for the first one: not only
 * `Authorization`, `Cookie` and `Proxy-Authorization`, but every caller header
 * (`X-Api-Key`), the `Origin`, and the `tls` options with their client certificate. Unless
 * the caller says so with `trustRedirects`. Two node:http(s) servers on different ports
 * record what each request carried.
 */
import test, { ExecutionContext } from 'ava';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { connect, ConnectOptions, HandshakeError } from '../../src';
import { within } from '../helpers/socket-pair';
import { acceptFor } from '../helpers/upgrade';
import { selfSignedCert } from '../helpers/tls-cert';

const WAIT_MS = 20_000; // generous: a busy 2-core machine

/** What a server saw of one upgrade request. */
interface Seen {
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The client certificate's subject CN (TLS only; '' when none was presented). */
  clientCert?: string;
}

/**
 * An HTTP (or, with `tls`, HTTPS asking for a client certificate) server on 127.0.0.1:
 * `/away` answers 302 with `Location: redirectTo`; any other path completes the upgrade.
 */
async function site(t: ExecutionContext, redirectTo = '', tls?: https.ServerOptions) {
  const seen: Seen[] = [];
  let onSeen: () => void = () => undefined;
  let tlsOutcome: (what: string) => void = () => undefined;
  const firstTls = new Promise<string>((resolve) => (tlsOutcome = resolve));
  const server = tls ? https.createServer({ ...tls, requestCert: true, rejectUnauthorized: false }) : http.createServer();
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket) => {
    socket.on('error', () => undefined);
    const cert = tls ? (socket as TLSSocket).getPeerCertificate() : undefined;
    seen.push({ path: req.url ?? '', headers: req.headers, clientCert: cert && String(cert.subject?.CN ?? '') });
    onSeen();
    if (req.url === '/away') {
      socket.end(`HTTP/1.1 302 Found\r\nLocation: ${redirectTo}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    } else {
      const accept = acceptFor(String(req.headers['sec-websocket-key']));
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    }
  });
  // How the first TLS connection went: the certificate the client presented, or the TLS error.
  server.on('secureConnection', (s: TLSSocket) => tlsOutcome(`cert CN=${s.getPeerCertificate().subject?.CN ?? 'none'}`));
  server.on('tlsClientError', (err: Error) => tlsOutcome(`tls error: ${err.message}`));
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 'the server to listen');
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      })
  );
  const port = (server.address() as AddressInfo).port;
  /** Resolves once `n` requests were seen (bounded). */
  const requests = (n: number): Promise<Seen[]> =>
    within(
      new Promise<Seen[]>((resolve) => {
        onSeen = () => seen.length >= n && resolve(seen);
        onSeen();
      }),
      `${n} request(s) at port ${port}`,
      WAIT_MS
    );
  const firstTlsConnection = (): Promise<string> => within(firstTls, `a TLS connection at port ${port}`, WAIT_MS);
  return { port, seen, requests, firstTlsConnection };
}

/** connect(), settled either way (a socket is destroyed at the end of the test). */
async function settle(t: ExecutionContext, url: string, options: ConnectOptions): Promise<unknown> {
  return within(
    connect(url, options).then(
      (ws) => {
        t.teardown(() => ws.destroy());
        return ws;
      },
      (err: unknown) => err
    ),
    'connect() to settle',
    WAIT_MS
  );
}

const CALLER = {
  headers: {
    Authorization: 'Bearer first-origin-token',
    Cookie: 'session=first-origin',
    'Proxy-Authorization': 'Basic Zmlyc3Q6b3JpZ2lu',
    'X-Api-Key': 'first-origin-api-key',
    'X-Tenant': ['a', 'b']
  },
  origin: 'https://app.example'
};
const CALLER_HEADERS = ['authorization', 'cookie', 'proxy-authorization', 'x-api-key', 'x-tenant', 'origin'];

test('a redirect to another port gets none of the caller’s headers nor the Origin; the WebSocket offer is made again', async (t) => {
  const b = await site(t);
  const a = await site(t, `ws://127.0.0.1:${b.port}/final`);
  const ws = await settle(t, `ws://127.0.0.1:${a.port}/away`, { ...CALLER, followRedirects: true, protocols: ['chat.v1'] });
  t.false(ws instanceof Error, String(ws));
  const [atA] = await a.requests(1);
  const [atB] = await b.requests(1);
  for (const name of CALLER_HEADERS) t.true(name in atA!.headers, `${name} went to the first origin`);
  const leaked = CALLER_HEADERS.filter((name) => name in atB!.headers);
  t.deepEqual(leaked, [], `sent to the other origin: ${leaked.map((n) => `${n}: ${String(atB!.headers[n])}`).join('; ')}`);
  t.is(atB!.path, '/final');
  t.is(atB!.headers['sec-websocket-protocol'], 'chat.v1');
  t.is(atB!.headers['host'], `127.0.0.1:${b.port}`);
});

test('a redirect within the origin keeps them all', async (t) => {
  const redirecting = await site(t, `/final`);
  // The relative Location resolves against the redirecting server's own origin.
  const ws = await settle(t, `ws://127.0.0.1:${redirecting.port}/away`, { ...CALLER, followRedirects: true });
  t.false(ws instanceof Error, String(ws));
  const [first, second] = await redirecting.requests(2);
  t.is(second!.path, '/final');
  for (const name of CALLER_HEADERS) t.deepEqual(second!.headers[name], first!.headers[name], name);
  t.is(second!.headers['x-api-key'], 'first-origin-api-key');
});

test('trustRedirects: the caller’s headers and Origin go to the other origin too', async (t) => {
  const b = await site(t);
  const a = await site(t, `ws://127.0.0.1:${b.port}/final`);
  const ws = await settle(t, `ws://127.0.0.1:${a.port}/away`, { ...CALLER, followRedirects: true, trustRedirects: true });
  t.false(ws instanceof Error, String(ws));
  const [atB] = await b.requests(1);
  t.is(atB!.headers['x-api-key'], 'first-origin-api-key');
  t.is(atB!.headers['authorization'], 'Bearer first-origin-token');
  t.is(atB!.headers['origin'], 'https://app.example');
});

// ---------------------------------------------------------------- TLS: the client certificate

let key: Buffer;
let cert: Buffer;

test.before(async () => {
  ({ key, cert } = await selfSignedCert(WAIT_MS));
});

test('wss: the client certificate and the other tls options stay with the first origin', async (t) => {
  const b = await site(t, '', { key, cert });
  const a = await site(t, `wss://127.0.0.1:${b.port}/final`, { key, cert });
  const err = await settle(t, `wss://127.0.0.1:${a.port}/away`, {
    followRedirects: true,
    tls: { ca: cert, cert, key }
  });
  const [atA] = await a.requests(1);
  t.is(atA!.clientCert, 'localhost', 'the first origin got the client certificate');
  const atB = await b.firstTlsConnection();
  t.log(`first origin: cert CN=${atA!.clientCert}; other origin: ${atB}; connect: ${String(err)}`);
  t.notRegex(atB, /cert CN=localhost/, 'no client certificate for the other origin');
  t.is(b.seen.length, 0);
  // Without the caller's `ca`, the other origin's self-signed certificate is not trusted.
  t.true(err instanceof HandshakeError, String(err));
  t.regex((err as Error).message, /certificate/);
});

test('wss with trustRedirects: the tls options (client certificate included) go to the other origin', async (t) => {
  const b = await site(t, '', { key, cert });
  const a = await site(t, `wss://127.0.0.1:${b.port}/final`, { key, cert });
  const ws = await settle(t, `wss://127.0.0.1:${a.port}/away`, {
    followRedirects: true,
    trustRedirects: true,
    tls: { ca: cert, cert, key }
  });
  t.false(ws instanceof Error, String(ws));
  const [atB] = await b.requests(1);
  t.is(atB!.clientCert, 'localhost');
});
