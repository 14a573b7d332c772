// The names of the two byte counts (issue 25, point 7): `bufferedAmount` is what browsers and
// `ws` mean by it, bytes queued to send and not yet taken by the kernel; `unsentBytes` is the
// public slow-client measure (this turn's batch left out); `unreadBytes` is the other
// direction, bytes received and not yet read; `flush()` waits until everything sent is with
// the kernel.
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { listen, messages, readData, sendBinary, sendText } from '../../src';
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

test('flush() resolves once everything sent is with the kernel: the turn batch, and what waited for a slow peer', async (t) => {
  const { client, server, clientSocket } = await pair(t);
  for (let i = 0; i < 100; i++) void sendText(server, `m${i}`);
  t.true(server.bufferedAmount > 0, 'the batch waits for the end of the turn');
  await server.flush();
  t.is(server.bufferedAmount, 0);
  for (let i = 0; i < 100; i++) t.is((await within(readData(client), `m${i}`)).data.toString(), `m${i}`);
  // Behind a peer that does not read, flush waits until it has.
  clientSocket.pause();
  const big = Buffer.alloc(1024 * 1024, 2);
  let sent = 0;
  for (; sent < 64 && server.unsentBytes === 0; sent++) {
    void sendBinary(server, big);
    await new Promise((resolve) => setImmediate(resolve));
  }
  let flushed = false;
  const done = server.flush().then(() => (flushed = true));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.false(flushed, 'not while the peer reads nothing');
  clientSocket.resume();
  for (let i = 0; i < sent; i++) t.is((await within(readData(client), `big message ${i}`)).data.length, big.length);
  await within(done, 'flush');
  t.is(server.bufferedAmount, 0);
});

test('a program that ends with flush() and process.exit() delivers every message it sent', async (t) => {
  const received: string[] = [];
  const server = await listen({ port: 0 }, async (ws) => {
    for await (const m of messages(ws)) received.push(m.data.toString());
  });
  t.teardown(() => server.close());
  const program = `
    const { connect, sendText } = require(${JSON.stringify(join(__dirname, '..', '..', 'src'))});
    (async () => {
      const ws = await connect('ws://127.0.0.1:${server.port}/');
      for (let i = 0; i < 500; i++) sendText(ws, 'message ' + i); // not awaited: held for the turn
      await ws.flush();
      process.exit(0);
    })();`;
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', program], { stdio: 'inherit' });
  const [code] = (await within(once(child, 'exit'), 'the program to exit', 60_000)) as [number];
  t.is(code, 0);
  await until(() => received.length === 500, 'every message to arrive', 10_000);
  t.is(received[499], 'message 499');
});
