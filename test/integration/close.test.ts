/**
 * The close handshake (RFC 6455 §5.5.1, §7.1.1; DESIGN §3): the Close is echoed with its
 * code and reason, the server closes TCP first, the client waits for that (at most `closeTimeout`),
 * and afterwards every read and send rejects with `IOError`. Bytes after the peer's Close are
 * dropped; messages it sent before echoing ours are still read; its Close ends reads at once
 * even while a fragmented send of ours is stalled. Also the synchronous argument checks of
 * `sendClose`, `sendPing` and `sendPong`.
 */
import test, { ExecutionContext } from 'ava';
import { AsyncSocket, IOError, makeFrame, Opcode, readData, Role, sendBinary, sendChain, sendClose, sendFragmented, sendFrame, sendPing, sendPong, sendText } from '../../src';
import { delay, pair, parseFrames, rawPair, within } from '../helpers/socket-pair';

function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

function onClose(sock: { once(ev: 'close', cb: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => sock.once('close', () => resolve()));
}

async function assertAllRejectIOError(t: ExecutionContext, ws: AsyncSocket): Promise<void> {
  await t.throwsAsync(readData(ws), { instanceOf: IOError });
  await t.throwsAsync(sendText(ws, 'x'), { instanceOf: IOError });
  await t.throwsAsync(sendBinary(ws, Buffer.from([1])), { instanceOf: IOError });
  await t.throwsAsync(sendPing(ws), { instanceOf: IOError });
  await t.throwsAsync(sendPong(ws, 'x'), { instanceOf: IOError });
  await t.throwsAsync(sendClose(ws, 1000), { instanceOf: IOError });
  await t.throwsAsync(sendFragmented(ws, Opcode.Binary, Buffer.alloc(10), 3), { instanceOf: IOError });
}

test('client-initiated close: echoed code 1000 and reason, server closes TCP, everything closed after', async (t) => {
  const { client, server, clientSocket, serverSocket } = await pair(t);
  const clientClosed = onClose(clientSocket);
  const serverClosed = onClose(serverSocket);
  const serverEnded = new Promise<void>((resolve) => clientSocket.once('end', () => resolve()));

  await sendClose(client, 1000, 'bye');
  // Sends after sendClose reject at once, before the handshake is over.
  await t.throwsAsync(sendText(client, 'too late'), { instanceOf: IOError });

  const got = await within(readData(server), 'the server to read the Close');
  t.is(got.opcode, Opcode.Close);
  t.deepEqual(got.data, closePayload(1000, 'bye'));

  const echo = await within(readData(client), 'the client to read the echo');
  t.is(echo.opcode, Opcode.Close);
  t.is(echo.data.readUInt16BE(0), 1000);
  t.deepEqual(echo.data, closePayload(1000, 'bye'), 'the code and reason are echoed');

  await within(serverEnded, 'the server to end TCP');
  await within(Promise.all([clientClosed, serverClosed]), 'both sockets to close');
  t.true(client.destroyed);
  t.true(server.destroyed);
  await assertAllRejectIOError(t, client);
  await assertAllRejectIOError(t, server);
});

test('server-initiated close: the client echoes 1001, the server ends TCP, the client closes', async (t) => {
  const { client, server, clientSocket, serverSocket } = await pair(t);
  const clientClosed = onClose(clientSocket);
  const serverClosed = onClose(serverSocket);

  await sendClose(server, 1001, 'going away');
  await t.throwsAsync(sendBinary(server, Buffer.from('x')), { instanceOf: IOError });

  const got = await within(readData(client), 'the client to read the Close');
  t.deepEqual(got, { opcode: Opcode.Close, data: closePayload(1001, 'going away') });
  const echo = await within(readData(server), 'the server to read the echo');
  t.deepEqual(echo, { opcode: Opcode.Close, data: closePayload(1001, 'going away') });

  await within(Promise.all([clientClosed, serverClosed]), 'both sockets to close');
  await assertAllRejectIOError(t, client);
  await assertAllRejectIOError(t, server);
});

test('Close without a payload is echoed with an empty payload (both ways, our own pair)', async (t) => {
  const { client, server, clientSocket, serverSocket } = await pair(t);
  const closed = Promise.all([onClose(clientSocket), onClose(serverSocket)]);
  await sendClose(client);
  const got = await within(readData(server), 'the Close');
  t.is(got.opcode, Opcode.Close);
  t.is(got.data.length, 0);
  const echo = await within(readData(client), 'the echo');
  t.is(echo.opcode, Opcode.Close);
  t.is(echo.data.length, 0);
  await within(closed, 'both sockets to close');
  t.true(clientSocket.destroyed && serverSocket.destroyed);
});

// Against a raw peer: the exact echo bytes, and who closes TCP.
for (const role of ['server', 'client'] as Role[]) {
  for (const payload of [closePayload(1000, 'bye'), Buffer.alloc(0), closePayload(4999, 'é'), closePayload(1014)]) {
    const what = payload.length === 0 ? 'no payload' : `code ${payload.readUInt16BE(0)}`;
    test(`${role}: raw peer's Close (${what}) is echoed exactly`, async (t) => {
      const { ws, ours, raw, peer, frame } = await rawPair(t, role, { closeTimeout: 1000 });
      raw.write(frame(Opcode.Close, payload));
      const got = await within(readData(ws), 'the Close');
      t.deepEqual(got, { opcode: Opcode.Close, data: payload });
      const [echo] = await peer.waitFrames(1);
      const echoed = payload;
      if (role === 'server') {
        t.deepEqual(echo!.wire, makeFrame(Opcode.Close, echoed, false));
        // The server closes TCP first.
        await peer.waitEnd();
      } else {
        t.true(echo!.masked);
        t.deepEqual(echo!.wire, makeFrame(Opcode.Close, echoed, true, echo!.maskKey!));
        // The client waits for the server to close TCP...
        await delay(50);
        t.false(peer.ended, 'the client does not end TCP first');
        t.false(ours.destroyed);
        // ...and closes once it does.
        raw.end();
        await peer.waitClose();
      }
      t.is(parseFrames(peer.bytes).length, 1, 'only the echo was sent');
      await t.throwsAsync(readData(ws), { instanceOf: IOError });
      await t.throwsAsync(sendText(ws, 'x'), { instanceOf: IOError });
    });
  }
}

// Around the Close: what the peer sends after its own Close is dropped; what it sent before
// echoing ours is still read.
for (const role of ['server', 'client'] as Role[]) {
  test(`${role}: bytes after the peer's Close are dropped, never returned`, async (t) => {
    const { ws, raw, peer, frame } = await rawPair(t, role);
    raw.write(Buffer.concat([frame(Opcode.Close, Buffer.from([0x03, 0xe8])), frame(Opcode.Text, 'after close'), frame(Opcode.Ping, 'x')]));
    t.is((await within(readData(ws), 'the Close')).opcode, Opcode.Close);
    await t.throwsAsync(readData(ws), { instanceOf: IOError });
    raw.end();
    await peer.waitClose();
    const frames = peer.bytes;
    // Only the Close echo: no Pong for the ping that followed the Close.
    t.is(frames[0]! & 0x0f, Opcode.Close);
    t.is(frames.length, role === 'client' ? 2 + 4 + 2 : 2 + 2);
  });

  test(`${role}: after our sendClose, messages the peer sent before its echo are still returned`, async (t) => {
    const { ws, raw, peer, frame } = await rawPair(t, role);
    await sendClose(ws, 1000);
    await peer.waitFrames(1);
    raw.write(Buffer.concat([frame(Opcode.Text, 'late but legal'), frame(Opcode.Ping, 'p'), frame(Opcode.Close, Buffer.from([0x03, 0xe8]))]));
    t.deepEqual(await within(readData(ws), 'the message'), { opcode: Opcode.Text, data: Buffer.from('late but legal') });
    t.deepEqual(await within(readData(ws), 'the ping'), { opcode: Opcode.Ping, data: Buffer.from('p') });
    t.deepEqual(await within(readData(ws), 'the echo'), { opcode: Opcode.Close, data: Buffer.from([0x03, 0xe8]) });
    if (role === 'client') raw.end();
    await peer.waitClose();
    t.is(peer.bytes.length, role === 'client' ? 8 : 4, 'only our Close: no Pong after our Close, no second Close');
  });
}

test('the peer Close while a fragmented send is queued stops reads at once and closes within closeTimeout', async (t) => {
  const { ws, raw, ours, peer } = await rawPair(t, 'server', { closeTimeout: 300 });
  // A message whose source stalls: its first fragment goes out, the rest never comes.
  let release!: () => void;
  const stalled = new Promise<void>((resolve) => (release = resolve));
  async function* slow(): AsyncGenerator<string> {
    yield 'first';
    yield 'second';
    await stalled;
    yield 'never';
  }
  const sending = sendChain(ws, Opcode.Text, slow());
  sending.catch(() => undefined);
  await peer.waitFrames(1);
  raw.write(makeFrame(Opcode.Close, Buffer.from([0x03, 0xe8]), true));
  raw.write(makeFrame(Opcode.Text, 'after the close', true));
  const first = await within(readData(ws), 'the Close');
  t.is(first.opcode, Opcode.Close);
  await t.throwsAsync(within(readData(ws), 'the next read'), { instanceOf: IOError, message: /closed/ });
  // Within closeTimeout (300 ms), not the 10 s default: the bound leaves room for a busy machine.
  await within(new Promise((resolve) => ours.once('close', resolve)), 'the socket to close within closeTimeout', 8000);
  release();
  await t.throwsAsync(sending, { instanceOf: IOError });
});

test('client: when the server never closes TCP, the client destroys the socket after closeTimeout', async (t) => {
  const { ws, ours, raw, peer } = await rawPair(t, 'client', { closeTimeout: 150 });
  const start = Date.now();
  raw.write(makeFrame(Opcode.Close, closePayload(1000), false));
  await within(readData(ws), 'the Close');
  await peer.waitClose();
  t.true(Date.now() - start >= 140, 'not before closeTimeout');
  t.true(ours.destroyed);
});

test('client: after its own sendClose the client still waits for the server to close TCP', async (t) => {
  const { ws, ours, raw, peer } = await rawPair(t, 'client', { closeTimeout: 5000 });
  await sendClose(ws, 1000);
  const [close] = await peer.waitFrames(1);
  t.deepEqual(close!.data, closePayload(1000));
  // The raw server echoes and closes TCP: the client's read returns the echo, then it closes.
  raw.end(makeFrame(Opcode.Close, closePayload(1000), false));
  const echo = await within(readData(ws), 'the echo');
  t.deepEqual(echo, { opcode: Opcode.Close, data: closePayload(1000) });
  await peer.waitClose();
  t.true(ours.destroyed);
});

test('sendClose with a code that may not be sent throws RangeError synchronously', async (t) => {
  const { client, server } = await pair(t);
  for (const code of [0, 999, 1004, 1006, 1015, 1016, 2999, 5000, 1000.5, NaN]) {
    t.throws(() => sendClose(client, code), { instanceOf: RangeError }, `code ${code}`);
    t.throws(() => sendClose(server, code, 'why'), { instanceOf: RangeError }, `code ${code}`);
  }
  t.throws(() => sendClose(client, undefined, 'reason without code'), { instanceOf: TypeError });
  t.false(client.closeSent, 'a rejected call sends nothing');
  // A valid call still works afterwards.
  await sendClose(client, 3000);
  t.deepEqual(await within(readData(server), 'the Close'), { opcode: Opcode.Close, data: closePayload(3000) });
});

test('sendClose with a 124-byte reason throws RangeError synchronously; 123 bytes is fine', async (t) => {
  const { client, server } = await pair(t);
  t.throws(() => sendClose(client, 1000, 'r'.repeat(124)), { instanceOf: RangeError });
  // 62 two-byte characters are 124 bytes too.
  t.throws(() => sendClose(client, 1000, 'é'.repeat(62)), { instanceOf: RangeError });
  t.false(client.closeSent);
  await sendClose(client, 1000, 'r'.repeat(123));
  const got = await within(readData(server), 'the Close');
  t.is(got.data.length, 125);
  t.is(got.data.subarray(2).toString(), 'r'.repeat(123));
});

test('sendPing / sendPong / sendFrame with a 126-byte control payload throw RangeError synchronously', async (t) => {
  const { client, server } = await pair(t);
  t.throws(() => sendPing(client, undefined, Buffer.alloc(126)), { instanceOf: RangeError });
  t.throws(() => sendPing(server, undefined, 'x'.repeat(126)), { instanceOf: RangeError });
  t.throws(() => sendPong(client, Buffer.alloc(126)), { instanceOf: RangeError });
  t.throws(() => sendFrame(client, Opcode.Ping, Buffer.alloc(200)), { instanceOf: RangeError });
  // 125 bytes is allowed and the Pong comes back with it.
  const token = await sendPing(client, undefined, Buffer.alloc(125, 7));
  t.deepEqual(await within(readData(server), 'the ping'), { opcode: Opcode.Ping, data: Buffer.alloc(125, 7) });
  t.deepEqual(await within(readData(client), 'the pong'), { opcode: Opcode.Pong, data: token });
});

test('sendPing without a token sends a random one and resolves with it; the Pong carries it', async (t) => {
  const { client, server } = await pair(t);
  const token = await sendPing(server);
  t.true(token.length > 0 && token.length <= 125);
  const ping = await within(readData(client), 'the ping');
  t.deepEqual(ping, { opcode: Opcode.Ping, data: token });
  const pong = await within(readData(server), 'the pong');
  t.deepEqual(pong, { opcode: Opcode.Pong, data: token });
});
