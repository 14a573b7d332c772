/**
 * `acceptWebSocket` and requests pipelined behind one it refused (issue 24, finding 7): a
 * plain GET (426, `Connection: close`, the promise rejected) followed on the same connection
 * by an upgrade request got a 101 and an `AsyncSocket` nobody was handed, since Node's parser
 * went on to the next request. Bound: once the handshake has settled, the connection is
 * closed and nothing after is answered.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { HandshakeError, acceptWebSocket } from '../../src/index';
import { within } from '../helpers/socket-pair';

const upgradeHead = (): string =>
  'GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

for (const [label, first] of [
  ['a plain GET (426)', 'GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
  ['a second plain GET after it', 'GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n']
] as const) {
  test(`an upgrade pipelined behind ${label} is not answered, and the connection closes`, async (t) => {
    const outcomes: Promise<unknown>[] = [];
    let upgrades = 0;
    const server = net.createServer((socket) => {
      outcomes.push(
        acceptWebSocket(socket).then(
          (ws) => {
            upgrades++;
            ws.destroy();
            return ws;
          },
          (e: unknown) => e
        )
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.teardown(() => server.close());
    const port = (server.address() as net.AddressInfo).port;
    const answer = await within(
      new Promise<string>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write(first + upgradeHead()));
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString('latin1')));
        s.on('error', () => undefined);
        s.on('close', () => resolve(got));
      }),
      'the connection to close',
      10_000
    );
    const statuses = answer.match(/^HTTP\/1\.1 \d+/gm) ?? [];
    t.log(`answers on one connection: ${statuses.join(', ')}`);
    t.deepEqual(statuses, ['HTTP/1.1 426']);
    t.is(outcomes.length, 1);
    const outcome = await within(outcomes[0]!, 'the handshake outcome');
    t.true(outcome instanceof HandshakeError);
    t.is((outcome as HandshakeError).status, 426);
    t.is(upgrades, 0, 'no AsyncSocket was made');
  });
}
