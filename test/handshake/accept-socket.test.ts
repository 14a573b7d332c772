/**
 * `acceptWebSocket(socket)`: the server handshake on a socket from a plain `net.Server`, with
 * Node's HTTP parser and listen's limits: a good upgrade, then each refusal with its status
 * (426 no upgrade, 431 head too large or too many fields, 408 incomplete head, 401 from
 * verify, 404 path, 400 bad handshake), and the request given to verify and selectProtocol.
 */
import test, { ExecutionContext } from 'ava';
import net from 'node:net';
import { AcceptOptions, acceptWebSocket, AsyncSocket, close, connect, HandshakeError, readData, sendText } from '../../src';
import { within } from '../helpers/wait';

type Outcome = { ws: AsyncSocket; err?: undefined } | { ws?: undefined; err: unknown };

/** A net.Server that hands each socket to acceptWebSocket; `next()` gives each outcome in order. */
async function rawServer(t: ExecutionContext, options: AcceptOptions) {
  const outcomes: Array<Promise<Outcome>> = [];
  const waiting: Array<(o: Promise<Outcome>) => void> = [];
  const server = net.createServer((socket) => {
    const outcome = acceptWebSocket(socket, options).then(
      (ws): Outcome => ({ ws }),
      (err: unknown): Outcome => ({ err })
    );
    const waiter = waiting.shift();
    if (waiter) waiter(outcome);
    else outcomes.push(outcome);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const next = (): Promise<Outcome> =>
    within(
      outcomes.length > 0 ? outcomes.shift()! : new Promise<Outcome>((resolve) => waiting.push((o) => void o.then(resolve))),
      'the handshake outcome',
      15_000
    );
  return { port, next };
}

/** Sends raw bytes and resolves to the status line the server answers (then the socket closes). */
function raw(port: number, bytes: string, end = false): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (end ? s.end(bytes) : s.write(bytes)));
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(got.split('\r\n')[0]!));
    }),
    'the answer',
    15_000
  );
}

const upgradeHead = (extra = ''): string =>
  'GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

test('a good upgrade on a raw net.Socket: verify and selectProtocol see the request; the connection works', async (t) => {
  const seen: string[] = [];
  const srv = await rawServer(t, {
    path: '/chat',
    verify: (req) => (seen.push(`${req.url} ${String(req.headers.authorization)}`), undefined),
    selectProtocol: (offered, req) => (req.headers.authorization === 'Bearer ok' ? offered[0] : undefined),
    protocols: ['v1']
  });
  const client = await within(connect(`ws://127.0.0.1:${srv.port}/chat`, { protocols: ['v1'], headers: { authorization: 'Bearer ok' } }), 'connect');
  const ws = (await srv.next()).ws!;
  t.is(ws.protocol, 'v1');
  t.deepEqual(seen, ['/chat Bearer ok']);
  await sendText(client, 'hello');
  t.is((await within(readData(ws), 'the message')).data.toString(), 'hello');
  await Promise.all([close(client), readData(ws).catch(() => undefined)]);
});

test('refusals: 426 for no upgrade, 404 for another path, 401 from verify, 400 for a bad handshake; each rejects with its status', async (t) => {
  const srv = await rawServer(t, { path: '/chat', verify: (req) => (req.headers.authorization ? undefined : 401) });
  for (const [bytes, status] of [
    ['GET /chat HTTP/1.1\r\nHost: x\r\n\r\n', 426],
    [upgradeHead('Authorization: x\r\n').replace('/chat', '/other'), 404],
    [upgradeHead(), 401],
    [upgradeHead('Authorization: x\r\n').replace('Version: 13', 'Version: 8'), 426],
    [upgradeHead('Authorization: x\r\n').replace('dGhlIHNhbXBsZSBub25jZQ==', 'short'), 400]
  ] as const) {
    const line = await raw(srv.port, bytes);
    t.regex(line, new RegExp(`^HTTP/1\\.1 ${status} `), bytes.split('\r\n')[0]);
    const { err } = await srv.next();
    t.true(err instanceof HandshakeError, String(err));
    t.is((err as HandshakeError).status, status);
  }
});

test('limits: a head over maxHeaderSize or with more than maxHeadersCount fields gets 431; an unfinished head 408 after handshakeTimeout', async (t) => {
  const srv = await rawServer(t, { maxHeaderSize: 2048, maxHeadersCount: 10, handshakeTimeout: 400 });
  t.regex(await raw(srv.port, upgradeHead(`X-Big: ${'a'.repeat(4000)}\r\n`)), /^HTTP\/1\.1 431 /);
  t.is(((await srv.next()).err as HandshakeError).status, 431);
  let many = '';
  for (let i = 0; i < 11; i++) many += `X-H${i}: v\r\n`;
  t.regex(await raw(srv.port, upgradeHead(many)), /^HTTP\/1\.1 431 /);
  t.is(((await srv.next()).err as HandshakeError).status, 431);
  const started = Date.now();
  t.regex(await raw(srv.port, 'GET /chat HTTP/1.1\r\nHost: x\r\n'), /^HTTP\/1\.1 408 /);
  const ms = Date.now() - started;
  t.true(ms >= 350, `answered after ${ms} ms`);
  t.is(((await srv.next()).err as HandshakeError).status, 408);
  t.log(`an unfinished request head was answered 408 after ${ms} ms (handshakeTimeout 400)`);
});

test('a client that goes away mid-head: the promise rejects with a HandshakeError', async (t) => {
  const srv = await rawServer(t, {});
  const s = net.connect(srv.port, '127.0.0.1', () => s.end('GET /chat HTTP/1.1\r\nHost:'));
  s.on('error', () => undefined);
  const { err } = await srv.next();
  t.true(err instanceof HandshakeError);
});
