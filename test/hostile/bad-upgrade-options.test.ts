/**
 * A careless caller's options are refused before the 101 goes out: `upgrade()` with an invalid
 * `keepalive` answered 101, then threw synchronously (not the documented rejection), and left
 * the client connected to nothing; `listen()` swallowed that error for every connection. Now
 * the client gets a 500 and the caller the option's RangeError.
 */
import test from 'ava';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { listen, upgrade } from '../../src/index';
import { within } from '../helpers/socket-pair';
import { rawStatus, upgradeRequest } from './harness';

test('upgrade() with an invalid keepalive answers 500 and rejects with the RangeError naming the option (no 101)', async (t) => {
  let outcome!: Promise<unknown>;
  const server = http.createServer();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    outcome = new Promise((resolve) => resolve(upgrade(req, socket, head, { keepalive: { interval: 0 } }))).then(
      () => null,
      (err: unknown) => err
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as { port: number };
  t.is(await rawStatus(port, upgradeRequest('/')), 'HTTP/1.1 500 Internal Server Error');
  const err = await within(outcome, 'upgrade() to settle');
  // The option's own error, not a HandshakeError: the mistake is the caller's, not the client's.
  t.true(err instanceof RangeError, String(err));
  t.regex((err as Error).message, /^upgrade\(\) options\.keepalive\.interval must be a number from 1 .*, not number 0$/);
});

test('listen() with an invalid keepalive rejects at once', async (t) => {
  await t.throwsAsync(listen({ keepalive: { interval: 1000, timeout: -1 } }, async () => {}), { instanceOf: RangeError });
});
