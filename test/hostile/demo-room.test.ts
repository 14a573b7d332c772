/**
 * The demo (`npm start`) is code people copy: a target Node's HTTP parser accepts but
 * new URL() refuses must not throw in its 'upgrade' handler, and its chat room must not be
 * held by a member that stops reading (siblings of issue 11's findings 6 and 4).
 */
import test from 'ava';
import type { AddressInfo } from 'node:net';
import { startDemo } from '../../demo/server';
import { connect, Opcode, readData, sendText } from '../../src';
import { within } from '../helpers/wait';
import { rawStatus, upgradeRequest } from './harness';

test('a malformed target gets a 404 from the demo, which stays up', async (t) => {
  const server = await startDemo(0);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  for (const target of ['http://[/chat', '//[/chat', 'ws://%zz/chat']) {
    t.is(await within(rawStatus(port, upgradeRequest(target)), target), 'HTTP/1.1 404 Not Found', target);
  }
  t.is(await within(rawStatus(port, upgradeRequest('/chat')), '/chat'), 'HTTP/1.1 101 Switching Protocols');
});

test('a chat member that stops reading does not hold up the room', async (t) => {
  const server = await startDemo(0);
  const { port } = server.address() as AddressInfo;
  const url = `ws://127.0.0.1:${port}/chat`;
  const [talker, listener, idle] = await Promise.all([connect(url), connect(url), connect(url)]);
  t.teardown(() => {
    for (const ws of [talker, listener, idle]) ws.destroy();
    server.closeAllConnections();
    server.close();
  });
  idle.socket.pause(); // this member never reads again
  const COUNT = 150;
  const text = 'x'.repeat(32 * 1024);
  let got = 0;
  const listening = (async () => {
    while (got < COUNT) if ((await readData(listener)).opcode === Opcode.Text) got++;
  })();
  const talking = (async () => {
    for (let i = 0; i < COUNT; i++) {
      await sendText(talker, JSON.stringify({ from: 't', text }));
      await readData(talker); // its own copy comes back too
    }
  })();
  const started = Date.now();
  await within(Promise.all([talking, listening]), 'the room to deliver every message', 20_000);
  t.log(`${got} of ${COUNT} messages of 32 KiB reached the reading member in ${Date.now() - started} ms while one member never read`);
  t.is(got, COUNT);
});
