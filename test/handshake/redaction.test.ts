/**
 * Secrets stay out of logs (issue 25, point 4): a server-side `HandshakeError` carried all the
 * request headers, so README's own `console.log(err)` printed `authorization: 'Bearer secret'`,
 * and the `wsframe:handshake-rejected` channel published them too. Now `authorization`,
 * `proxy-authorization`, `cookie`, `set-cookie` and `sec-websocket-key` are `[redacted]` in
 * every HandshakeError (message, `headers`, inspected form) and every diagnostics message.
 */
import test, { ExecutionContext } from 'ava';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import http from 'node:http';
import net from 'node:net';
import { inspect } from 'node:util';
import { HandshakeError, connect, rejectUpgrade, upgrade } from '../../src/index';
import { within } from '../helpers/socket-pair';

const SECRETS = ['Bearer s3cret-token', 'sid=s3cret-cookie', 'Basic czNjcmV0', 'dGhlIHNhbXBsZSBub25jZQ=='];
const leaks = (text: string): string[] => SECRETS.filter((s) => text.includes(s));

/** Everything published on wsframe:handshake-rejected while the test runs. */
function published(t: ExecutionContext): unknown[] {
  const seen: unknown[] = [];
  const onMessage = (m: unknown): void => void seen.push(m);
  subscribe('wsframe:handshake-rejected', onMessage);
  t.teardown(() => unsubscribe('wsframe:handshake-rejected', onMessage));
  return seen;
}

test.serial('a refused upgrade: the server-side HandshakeError and the diagnostics message show no secret', async (t) => {
  const seen = published(t);
  const errors: unknown[] = [];
  const server = http.createServer();
  server.on('upgrade', (req, socket, head) => {
    upgrade(req, socket, head, {}).catch((e: unknown) => errors.push(e));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  // Version 8: refused with 426, after the headers were read.
  const request =
    'GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${SECRETS[3]}\r\nSec-WebSocket-Version: 8\r\n` +
    `Authorization: ${SECRETS[0]}\r\nCookie: ${SECRETS[1]}\r\nProxy-Authorization: ${SECRETS[2]}\r\n\r\n`;
  await within(
    new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(request));
      s.on('data', () => undefined);
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    }),
    'the refusal'
  );
  await within(
    (async () => {
      while (errors.length === 0) await new Promise((r) => setTimeout(r, 10));
    })(),
    'the HandshakeError'
  );
  const err = errors[0] as HandshakeError;
  t.true(err instanceof HandshakeError);
  t.is(err.headers.authorization, '[redacted]');
  t.is(err.headers.cookie, '[redacted]');
  t.is(err.headers['proxy-authorization'], '[redacted]');
  t.is(err.headers['sec-websocket-key'], '[redacted]');
  t.is(err.headers['sec-websocket-version'], '8', 'other headers are kept');
  t.deepEqual(leaks(inspect(err, { depth: 5 })), []);
  t.deepEqual(leaks(`${err.message} ${JSON.stringify(err)} ${String(err)}`), []);
  t.deepEqual(leaks(inspect(seen, { depth: 5 })), []);
});

test.serial('rejectUpgrade with a Set-Cookie of its own: the diagnostics message shows no secret', async (t) => {
  const seen = published(t);
  const server = http.createServer();
  server.on('upgrade', (_req, socket) => rejectUpgrade(socket, 401, { 'Set-Cookie': SECRETS[1]!, 'WWW-Authenticate': 'Bearer' }, 'no'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  // The client side: its HandshakeError carries the response headers, Set-Cookie redacted.
  const err = await connect(`ws://127.0.0.1:${port}/`, { headers: { authorization: SECRETS[0]! } }).then(
    () => null,
    (e: unknown) => e
  );
  t.true(err instanceof HandshakeError, String(err));
  t.is((err as HandshakeError).status, 401);
  t.is((err as HandshakeError).headers['set-cookie'] as unknown, '[redacted]');
  t.is((err as HandshakeError).headers['www-authenticate'], 'Bearer');
  t.deepEqual(leaks(inspect(err, { depth: 5 })), []);
  t.true(seen.length >= 2, 'both sides published');
  t.deepEqual(leaks(inspect(seen, { depth: 5 })), []);
});
