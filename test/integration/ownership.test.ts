/**
 * Who owns the connection: one guard for every kind of read (DESIGN §3), an AsyncSocket that
 * takes over the flow of a socket its owner paused, and close() called from outside the task
 * that reads, as a server does to shut down or to kick a user.
 */
import test, { ExecutionContext } from 'ava';
import { AsyncSocket, close, ConcurrencyError, handleEvents, IOError, makeFrame, messages, Opcode, readData, readFragment, recvFrame, sendBinary, sendClose, sendText } from '../../src';
import { AsyncPair, asyncPair, socketPair, until, within } from '../helpers/socket-pair';

async function pair(t: ExecutionContext, opts = {}): Promise<AsyncPair> {
  const p = await asyncPair(opts);
  t.teardown(() => p.destroy());
  return p;
}

test('readExact pending: readData, readFragment and recvFrame reject ConcurrencyError, even with a frame buffered', async (t) => {
  const { client, server } = await pair(t);
  const exact = server.readExact(100);
  // A whole frame is buffered while the exact read still waits for its 100 bytes.
  await sendText(client, 'hi');
  await until(() => server.unreadBytes === 8, 'the frame to arrive');
  await t.throwsAsync(readData(server), { instanceOf: ConcurrencyError });
  await t.throwsAsync(readFragment(server), { instanceOf: ConcurrencyError });
  await t.throwsAsync(recvFrame(server), { instanceOf: ConcurrencyError });
  // The exact read was not disturbed: it gets the frame's bytes and more.
  await sendBinary(client, Buffer.alloc(100));
  const got = await within(exact, 'the exact read');
  t.is(got.length, 100);
  t.is(got[0], 0x81, 'the first byte of the Text frame');
});

test('readData pending: readExact rejects ConcurrencyError and takes no bytes', async (t) => {
  const { client, server } = await pair(t);
  const message = readData(server);
  await t.throwsAsync(server.readExact(1), { instanceOf: ConcurrencyError });
  await sendText(client, 'whole');
  t.deepEqual(await within(message, 'the message'), { opcode: Opcode.Text, data: Buffer.from('whole') });
  // Free again once the read is done.
  await sendText(client, 'x');
  t.is((await within(server.readExact(3), 'an exact read')).length, 3);
});

test('a read waiting for inflation holds the guard too: readExact rejects meanwhile', async (t) => {
  const deflate = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, threshold: 0 };
  const p = await pair(t, { client: { deflate }, server: { deflate } });
  const { client, server } = p;
  // Two messages sent at once: the first is inflated while the second one is buffered.
  const big = Buffer.alloc(512 * 1024, 7);
  await Promise.all([sendBinary(client, big), sendText(client, 'after')]);
  // Both are buffered before the read starts, so it goes straight to inflating.
  const { clientSocket } = p;
  await until(() => server.unreadBytes === clientSocket.bytesWritten, 'both messages to arrive');
  const first = readData(server);
  await t.throwsAsync(server.readExact(1), { instanceOf: ConcurrencyError });
  const m = await within(first, 'the inflated message');
  t.true(m.data.equals(big));
  t.deepEqual(await within(readData(server), 'the second message'), { opcode: Opcode.Text, data: Buffer.from('after') });
});

test('new AsyncSocket on a socket its owner paused resumes it', async (t) => {
  const [a, b] = await socketPair();
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  b.pause(); // as after reading one's own HTTP request head from the socket
  a.write(makeFrame(Opcode.Text, 'hello', true));
  const ws = new AsyncSocket(b, { role: 'server' });
  t.deepEqual(await within(readData(ws), 'a read on the paused socket'), { opcode: Opcode.Text, data: Buffer.from('hello') });
});

test('close() while a messages() loop reads: the loop sees the Close and ends, close() reports the real result', async (t) => {
  const { client, server } = await pair(t);
  const got: string[] = [];
  const loop = (async () => {
    for await (const m of messages(server)) got.push(m.data.toString());
    return 'ended';
  })();
  // The peer echoes the Close (its own reader answers it).
  const peer = (async () => {
    for (;;) {
      const m = await readData(client);
      if (m.opcode === Opcode.Close) return m;
    }
  })();
  await sendText(client, 'before');
  await new Promise((resolve) => setImmediate(resolve));
  const result = await within(close(server, 1001, 'going away'), 'close()');
  t.deepEqual(result, { code: 1001, reason: 'going away', clean: true });
  t.is(await within(loop, 'the messages() loop'), 'ended');
  t.deepEqual(got, ['before']);
  const echo = await within(peer, 'the peer');
  t.is(echo.data.readUInt16BE(0), 1001);
  t.is(server.readyState, 'closed');
});

test('close() while the reading loop is busy between reads: the loop takes the reading back and ends cleanly', async (t) => {
  const { client, server } = await pair(t);
  let release!: () => void;
  const busy = new Promise<void>((resolve) => (release = resolve));
  const got: string[] = [];
  const loop = (async () => {
    for await (const m of messages(server)) {
      got.push(m.data.toString());
      if (got.length === 1) await busy; // the handler is slow: nobody reads meanwhile
    }
    return 'ended';
  })();
  const peer = (async () => {
    for (;;) if ((await readData(client)).opcode === Opcode.Close) return;
  })();
  await sendText(client, 'first');
  while (got.length === 0) await new Promise((resolve) => setImmediate(resolve));
  const closing = close(server, 4000, 'kicked');
  release();
  t.deepEqual(await within(closing, 'close()'), { code: 4000, reason: 'kicked', clean: true });
  t.is(await within(loop, 'the messages() loop'), 'ended');
  await within(peer, 'the peer');
});

test('close() with nobody reading reads the peer\'s Close itself (messages in between are dropped)', async (t) => {
  const { client, server } = await pair(t);
  const peer = (async () => {
    // The peer sends two more messages before it echoes our Close.
    const m = await readData(client);
    t.is(m.opcode, Opcode.Close);
  })();
  await sendText(client, 'late 1');
  await sendText(client, 'late 2');
  const result = await within(close(server, 1000, 'done'), 'close()');
  t.deepEqual(result, { code: 1000, reason: 'done', clean: true });
  await within(peer, 'the peer');
  await t.throwsAsync(readData(server), { instanceOf: IOError }, 'reads after the close reject');
});

test('close() when the peer never answers: the socket is destroyed after the timeout, result 1006', async (t) => {
  const { server } = await pair(t);
  const started = Date.now();
  const result = await within(close(server, 1000, '', 200), 'close()');
  t.deepEqual(result, { code: 1006, reason: '', clean: false });
  t.true(Date.now() - started >= 150, 'it waited for the peer');
  t.true(server.destroyed);
});

test('close() after the peer already closed: nothing is sent twice, the result is the peer\'s', async (t) => {
  const { client, server } = await pair(t);
  const reading = readData(server);
  await sendClose(client, 4001, 'peer first');
  const m = await within(reading, 'the Close');
  t.is(m.opcode, Opcode.Close);
  t.deepEqual(await within(close(server, 1000), 'close()'), { code: 4001, reason: 'peer first', clean: true });
});

test('close() while handleEvents runs a slow handler: onClose gets the peer\'s code, onError is not called', async (t) => {
  const { client, server } = await pair(t);
  let release!: () => void;
  const busy = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const inHandler = new Promise<void>((resolve) => (entered = resolve));
  const errors: unknown[] = [];
  const events = handleEvents(server, {
    onMessage: async () => {
      entered();
      await busy;
    },
    onError: (_ws, err) => errors.push(err)
  });
  const peer = (async () => {
    for (;;) if ((await readData(client)).opcode === Opcode.Close) return;
  })();
  await sendText(client, 'slow');
  await within(inHandler, 'the handler');
  const closing = close(server, 4002, 'bye');
  // close() reads the peer's Close itself while the handler is busy.
  await within(peer, 'the peer');
  release();
  t.deepEqual(await within(closing, 'close()'), { code: 4002, reason: 'bye', clean: true });
  t.deepEqual(await within(events, 'handleEvents'), { code: 4002, reason: 'bye', clean: true });
  t.deepEqual(errors, []);
});
