// The names of the two byte counts (issue 25, point 7): `bufferedAmount` is what browsers and
// `ws` mean by it, bytes queued to send and not yet taken by the kernel; `unsentBytes` is the
// public slow-client measure (this turn's batch left out); `unreadBytes` is the other
// direction, bytes received and not yet read.
import test from 'ava';
import { readData, sendBinary, sendText } from '../../src';
import { pair, until, within } from '../helpers/socket-pair';

test('bufferedAmount counts bytes queued to send: it grows while the peer does not read, and is 0 once it has', async (t) => {
  const { client, server, clientSocket } = await pair(t);
  clientSocket.pause(); // the client's kernel buffers fill, then ours
  t.is(server.bufferedAmount, 0);
  const message = Buffer.alloc(1024 * 1024, 1);
  const sends: Promise<void>[] = [];
  // Bounded: 64 MiB is more than loopback's kernel buffers hold here.
  for (let i = 0; i < 64 && server.unsentBytes === 0; i++) {
    sends.push(sendBinary(server, message));
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.true(server.unsentBytes > 0, 'the server is behind');
  t.true(server.bufferedAmount >= server.unsentBytes, `bufferedAmount ${server.bufferedAmount} ≥ unsentBytes ${server.unsentBytes}`);
  t.is(server.unreadBytes, 0, 'nothing was received');
  t.log(`with the peer not reading: bufferedAmount ${server.bufferedAmount}, unsentBytes ${server.unsentBytes} after ${sends.length} MiB`);
  clientSocket.resume();
  for (let i = 0; i < sends.length; i++) t.is((await within(readData(client), `message ${i}`)).data.length, message.length);
  await within(Promise.all(sends), 'the sends');
  await until(() => server.bufferedAmount === 0, 'bufferedAmount to reach 0');
  t.is(server.unsentBytes, 0);
});

test("a small send is in bufferedAmount at once (this turn's batch), but not in unsentBytes", async (t) => {
  const { client, server } = await pair(t);
  const sent = sendText(server, 'hello');
  t.is(server.bufferedAmount, 7, 'the 7-byte frame waits for the end of the turn');
  t.is(server.unsentBytes, 0, 'which is no sign of a slow peer');
  await sent;
  t.is((await within(readData(client), 'hello')).data.toString(), 'hello');
  await until(() => server.bufferedAmount === 0, 'the frame to go');
});

test('unreadBytes counts what was received and not yet read', async (t) => {
  const { client, server } = await pair(t);
  await sendText(client, 'x'.repeat(100)); // 2 + 4 (mask) + 100 bytes
  await until(() => server.unreadBytes === 106, 'the frame to arrive');
  t.is(server.bufferedAmount, 0, 'nothing queued to send');
  t.is((await within(readData(server), 'the message')).data.length, 100);
  t.is(server.unreadBytes, 0);
});
