/**
 * ping() with its matching Pong, keepalive() against live and dead peers, close() with its
 * result, and the event-style handleEvents() loop.
 */
import test from 'ava';
import { close, CloseCode, handleEvents, IOError, keepalive, makeFrame, Opcode, ping, readData, sendClose, sendPing, sendText } from '../../src';
import { delay, drain, pair, rawPair, until, within } from '../helpers/socket-pair';

test('ping() resolves with the round-trip time once the matching Pong is read', async (t) => {
  const p = await pair(t);
  const serverLoop = drain(p.server); // the server answers pings inside readData
  const clientLoop = drain(p.client); // and the client's reader sees the Pong
  const rtt = await within(ping(p.client, { token: 'tok-1', timeout: 2000 }), 'the pong');
  t.true(rtt >= 0 && rtt < 2000, `rtt ${rtt}`);
  const rtt2 = await within(ping(p.server), 'a pong to the server');
  t.true(rtt2 >= 0);
  await sendClose(p.client, 1000);
  t.is(await within(serverLoop, 'server loop'), 'close');
  t.is(await within(clientLoop, 'client loop'), 'close');
});

test('ping() times out with IOError when no Pong comes back', async (t) => {
  const { ws } = await rawPair(t, 'client');
  void drain(ws);
  const err = await t.throwsAsync(ping(ws, { timeout: 100 }), { instanceOf: IOError });
  t.is(err!.reason, 'timeout');
});

test('a Pong for a later Ping settles the earlier ones too (RFC 6455 §5.5.3)', async (t) => {
  const { ws, raw, peer } = await rawPair(t, 'server');
  void drain(ws);
  const first = ping(ws, { token: 'one', timeout: 3000 });
  const second = ping(ws, { token: 'two', timeout: 3000 });
  await peer.waitFrames(2);
  // The peer answers only the most recent Ping.
  raw.write(makeFrame(Opcode.Pong, 'two', true));
  const [a, b] = await within(Promise.all([first, second]), 'both pings to settle');
  t.true(a >= b, 'the earlier ping waited at least as long');
  // An unsolicited Pong with an unknown payload changes nothing.
  raw.write(makeFrame(Opcode.Pong, 'nobody', true));
  const third = ping(ws, { token: 'three', timeout: 150 });
  await t.throwsAsync(third, { instanceOf: IOError });
});

test('pending pings reject with IOError when the connection closes', async (t) => {
  const { ws, raw } = await rawPair(t, 'client');
  const reading = drain(ws);
  const p = ping(ws, { token: 'x' });
  await delay(20);
  raw.destroy();
  const err = await t.throwsAsync(within(p, 'the ping to reject'), { instanceOf: IOError });
  t.not(err!.reason, 'timeout');
  t.true((await reading) instanceof IOError);
});

test('ping() refuses a 126-byte token and a token already waiting, synchronously', async (t) => {
  const { ws, peer } = await rawPair(t, 'client');
  t.throws(() => ping(ws, { token: 'x'.repeat(126) }), { instanceOf: RangeError });
  const first = ping(ws, { token: 'same', timeout: 150 });
  t.throws(() => ping(ws, { token: 'same' }), { instanceOf: RangeError });
  // The refused call sent nothing and left the first ping's waiter alone: it still times out.
  await t.throwsAsync(first, { instanceOf: IOError, message: /no pong within 150 ms/ });
  t.is((await peer.waitFrames(1)).length, 1, 'one Ping on the wire');
});

test('keepalive() keeps a responsive connection open and pings on its interval', async (t) => {
  const p = await pair(t);
  const pings: number[] = []; // when the server read each Ping
  let marker = -1; // pings read before the message sent after stop()
  const serverLoop = (async () => {
    for (;;) {
      const m = await readData(p.server);
      if (m.opcode === Opcode.Ping) pings.push(Date.now());
      if (m.opcode === Opcode.Text) marker = pings.length;
      if (m.opcode === Opcode.Close) return;
    }
  })();
  serverLoop.catch(() => undefined); // awaited below; a failed test must not leave it unhandled
  const clientLoop = drain(p.client);
  const started = Date.now();
  const stop = keepalive(p.client, { interval: 40, timeout: 1000 });
  // Waits on the pings themselves, not on a fixed time: a busy machine only makes them late.
  await until(() => pings.length >= 3, 'three pings');
  // Never more often than the interval: the third Ping cannot leave before 3 x 40 ms.
  t.true(pings[2]! - started >= 3 * 40 - 5, `third ping read ${pings[2]! - started} ms after keepalive()`);
  t.false(p.client.destroyed);
  stop();
  // Everything sent before stop() is read before this message; nothing may follow it.
  await sendText(p.client, 'stopped');
  await until(() => marker >= 0, 'the message sent after stop()');
  await delay(150); // time for more pings if stop() had not stopped them (a slow machine only adds time)
  await sendClose(p.client, 1000);
  await within(serverLoop, 'the server loop');
  t.is(pings.length, marker, 'no pings after stop()');
  t.is(await within(clientLoop, 'client loop'), 'close');
});

test('keepalive() destroys the connection when the peer stops answering', async (t) => {
  const { ws, peer } = await rawPair(t, 'client');
  const started = Date.now();
  const reading = drain(ws);
  keepalive(ws, { interval: 50, timeout: 100 });
  const err = await within(reading, 'the read to fail', 10_000);
  t.true(err instanceof IOError, String(err));
  t.is((err as IOError).reason, 'timeout');
  // Not before interval + timeout; the upper bound only leaves room for a busy machine.
  const took = Date.now() - started;
  t.true(took >= 140 && took < 10_000, `failed after ${took} ms`);
  t.true(ws.destroyed);
  t.true((await peer.waitFrames(1))[0]!.opcode === Opcode.Ping, 'the peer saw a Ping');
});

test('keepalive() refuses non-positive intervals', async (t) => {
  const { ws } = await rawPair(t, 'client');
  t.throws(() => keepalive(ws, { interval: 0 }), { instanceOf: RangeError });
  t.throws(() => keepalive(ws, { interval: 10, timeout: -1 }), { instanceOf: RangeError });
});

test('close() runs the handshake and reports the peer code and reason, clean', async (t) => {
  const p = await pair(t);
  const serverLoop = (async () => {
    await sendText(p.server, 'dropped by close()');
    return drain(p.server);
  })();
  const result = await within(close(p.client, 4000, 'bye'), 'close()');
  t.deepEqual(result, { code: 4000, reason: 'bye', clean: true });
  t.is(await serverLoop, 'close');
  t.true(p.client.destroyed);
});

test('close() after the peer Close was already read reports it, clean', async (t) => {
  const p = await pair(t);
  await sendClose(p.server, 1001, 'going away');
  const m = await readData(p.client);
  t.is(m.opcode, Opcode.Close);
  const serverLoop = drain(p.server);
  const result = await within(close(p.client), 'close()');
  t.deepEqual(result, { code: 1001, reason: 'going away', clean: true });
  t.is(await serverLoop, 'close');
});

test('close() with a silent peer gives up after its timeout: 1006, not clean', async (t) => {
  // The socket's own closeTimeout is far longer, so finishing well before it shows close()
  // used its own 150 ms (with room for a busy machine).
  const { ws, peer } = await rawPair(t, 'server', { closeTimeout: 30_000 });
  const started = Date.now();
  const result = await within(close(ws, 1000, '', 150), 'close()', 10_000);
  t.deepEqual(result, { code: CloseCode.Abnormal, reason: '', clean: false });
  const took = Date.now() - started;
  t.true(took >= 140 && took < 10_000, `took ${took} ms`);
  t.is((await peer.waitFrames(1))[0]!.opcode, Opcode.Close);
});

test('handleEvents() calls onOpen, onMessage, onPing, onPong and onClose in order', async (t) => {
  const p = await pair(t);
  const seen: string[] = [];
  const done = handleEvents(p.server, {
    onOpen: () => void seen.push('open'),
    onMessage: async (ws, m) => {
      seen.push(`message ${m.opcode} ${m.data.toString()}`);
      await sendText(ws, m.data.toString().toUpperCase());
    },
    onPing: (_ws, data) => void seen.push(`ping ${data.toString()}`),
    onPong: (_ws, data) => void seen.push(`pong ${data.toString()}`),
    onError: (_ws, err) => void seen.push(`error ${String(err)}`),
    onClose: (_ws, r) => void seen.push(`close ${r.code} ${r.reason} ${r.clean}`)
  });
  await sendText(p.client, 'hi');
  t.deepEqual(await readData(p.client), { opcode: Opcode.Text, data: Buffer.from('HI') });
  await sendPing(p.client, undefined, 'p1');
  t.is((await readData(p.client)).opcode, Opcode.Pong);
  await p.client.write(makeFrame(Opcode.Pong, 'u', true));
  await sendClose(p.client, 1000, 'done');
  t.is((await readData(p.client)).opcode, Opcode.Close);
  const result = await within(done, 'handleEvents to end');
  t.deepEqual(result, { code: 1000, reason: 'done', clean: true });
  t.deepEqual(seen, ['open', 'message 1 hi', 'ping p1', 'pong u', 'close 1000 done true']);
});

test('handleEvents(): a handler that throws closes the connection with 1011 and reaches onError', async (t) => {
  const p = await pair(t);
  const errors: unknown[] = [];
  let closed: unknown = null;
  const done = handleEvents(p.server, {
    onMessage: () => {
      throw new Error('handler bug');
    },
    onError: (_ws, err) => void errors.push(err),
    onClose: (_ws, r) => void (closed = r)
  });
  await sendText(p.client, 'boom');
  const m = await within(readData(p.client), 'the Close');
  t.is(m.opcode, Opcode.Close);
  t.is(m.data.readUInt16BE(0), CloseCode.InternalError);
  await within(done, 'handleEvents to end');
  t.is(errors.length, 1);
  t.is((errors[0] as Error).message, 'handler bug');
  t.deepEqual(closed, { code: CloseCode.Abnormal, reason: '', clean: false });
});

test('handleEvents(): a handler that sends Close and then throws still ends the connection', async (t) => {
  const { ws } = await rawPair(t, 'server', { closeTimeout: 200 });
  const done = handleEvents(ws, {
    onMessage: async (w) => {
      await sendClose(w, 4000);
      throw new Error('after close');
    }
  });
  // Any data message triggers the handler.
  ws.feed(makeFrame(Opcode.Text, 'go', true));
  const result = await within(done, 'handleEvents to end', 3000);
  t.false(result.clean);
  t.true(ws.destroyed);
});
