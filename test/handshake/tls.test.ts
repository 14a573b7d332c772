/**
 * wss:// between our client and our server over 127.0.0.1, with a self-signed certificate
 * made by `openssl` in a temp dir: verified with `tls.ca`, refused without it; a text,
 * binary, 1 MiB and close round trip through `listen({ tls })` and through node:https +
 * `upgrade()`.
 */
import test, { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { AsyncSocket, close, connect, HandshakeError, listen, Opcode, readData, sendBinary, sendText } from '../../src';
import { within } from '../helpers/socket-pair';
import { echo, upgradeServer } from './support';
import { selfSignedCert } from '../helpers/tls-cert';

let key: Buffer;
let cert: Buffer;

test.before(async () => {
  ({ key, cert } = await selfSignedCert(20_000));
});

async function roundTrip(t: ExecutionContext, ws: AsyncSocket): Promise<void> {
  await sendText(ws, 'héllo over TLS');
  const m1 = await within(readData(ws), 'text echo');
  t.is(m1.opcode, Opcode.Text);
  t.is(m1.data.toString(), 'héllo over TLS');
  await sendBinary(ws, Buffer.from([0, 1, 2, 255]));
  const m2 = await within(readData(ws), 'binary echo');
  t.is(m2.opcode, Opcode.Binary);
  t.deepEqual([...m2.data], [0, 1, 2, 255]);
  const big = randomBytes(1024 * 1024);
  await sendBinary(ws, big);
  const m3 = await within(readData(ws), '1 MiB echo');
  t.is(m3.data.length, big.length);
  t.true(m3.data.equals(big), '1 MiB intact');
  const result = await within(close(ws, 4000, 'bye'), 'close');
  t.deepEqual(result, { code: 4000, reason: 'bye', clean: true });
  t.true(ws.destroyed);
}

test('listen({ tls }) + connect(wss://localhost, { tls: { ca } }): verified, round trip', async (t) => {
  const server = await listen({ tls: { key, cert } }, echo);
  t.teardown(() => server.close());
  const ws = await within(connect(`wss://localhost:${server.port}/`, { tls: { ca: cert } }), 'connect');
  t.teardown(() => ws.destroy());
  t.true((ws.socket as TLSSocket).encrypted);
  t.true((ws.socket as TLSSocket).authorized);
  await roundTrip(t, ws);
});

test('wss://127.0.0.1 verifies against the IP in subjectAltName', async (t) => {
  const server = await listen({ tls: { key, cert } }, echo);
  t.teardown(() => server.close());
  const ws = await within(connect(`wss://127.0.0.1:${server.port}/`, { tls: { ca: cert } }), 'connect');
  t.teardown(() => ws.destroy());
  await sendText(ws, 'ip');
  t.is((await within(readData(ws), 'echo')).data.toString(), 'ip');
});

test('without the CA the certificate is refused: HandshakeError caused by a certificate error', async (t) => {
  const server = await listen({ tls: { key, cert } }, echo);
  t.teardown(() => server.close());
  const err = await within(connect(`wss://localhost:${server.port}/`, { timeout: 5000 }).then(() => null, (e: unknown) => e), 'connect');
  t.true(err instanceof HandshakeError, String(err));
  const code = ((err as HandshakeError).cause as NodeJS.ErrnoException).code;
  t.regex(String(code), /SELF_SIGNED|CERT/, String(code));
  t.is(server.clients.size, 0);
});

test('a name not in the certificate is refused even with the CA', async (t) => {
  const server = await listen({ tls: { key, cert } }, echo);
  t.teardown(() => server.close());
  const err = await within(
    connect(`wss://127.0.0.1:${server.port}/`, { tls: { ca: cert, servername: 'example.org' } }).then(() => null, (e: unknown) => e),
    'connect'
  );
  t.true(err instanceof HandshakeError, String(err));
  t.is(((err as HandshakeError).cause as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
});

test('node:https + upgrade(): round trip over TLS', async (t) => {
  const srv = await upgradeServer(t, {}, https.createServer({ key, cert }));
  const client = within(connect(`wss://localhost:${srv.port}/tls`, { tls: { ca: cert } }), 'connect');
  const server = await srv.nextSocket();
  const echoing = echo(server);
  const ws = await client;
  t.teardown(() => ws.destroy());
  t.is(ws.role, 'client');
  t.is(server.role, 'server');
  await roundTrip(t, ws);
  await within(echoing, 'the server echo loop to end');
  t.true(server.closeSent);
});
