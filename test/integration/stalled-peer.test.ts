/**
 * Regressions from a review of the socket layer: a late Pong while a Ping is stuck behind
 * backpressure, Ping floods from a peer that does not read, the close handshake while a
 * fragmented send is queued, a message source that fails halfway, writes on a destroyed
 * socket, sendClose against a silent peer, and a failing event handler.
 */
import test from 'ava';
import { CloseCode, Opcode } from '../../src/core/constants';
import { IOError } from '../../src/core/errors';
import { makeFrame } from '../../src/core/frame';
import { handleEvents } from '../../src/events';
import { keepalive } from '../../src/keepalive';
import { readData } from '../../src/recv';
import { sendBinary, sendChain, sendClose, sendText } from '../../src/send';
import { delay, drain, parseFrames, rawPair, until, within } from '../helpers/socket-pair';

test('keepalive against a peer that stops reading fails the connection without an unhandled rejection', async (t) => {
  const { ws, raw } = await rawPair(t, 'server', { closeTimeout: 300 });
  raw.pause(); // the peer reads nothing: our writes back up
  const reading = drain(ws);
  void sendBinary(ws, Buffer.alloc(8 << 20)).catch(() => undefined);
  keepalive(ws, { interval: 50, timeout: 100 });
  const err = await within(reading, 'the connection to fail');
  t.true(err instanceof IOError);
  t.is((err as IOError).reason, 'timeout');
  await delay(200); // an unhandled rejection would fail this test file here
});

test('a Ping flood from a peer that does not read keeps our write buffer bounded', async (t) => {
  const { ws, raw } = await rawPair(t, 'server', { closeTimeout: 300 });
  raw.pause();
  const reading = drain(ws);
  const ping = makeFrame(Opcode.Ping, Buffer.alloc(125, 1), true);
  const burst = Buffer.concat(Array.from({ length: 1000 }, () => ping));
  let most = 0;
  for (let i = 0; i < 40; i++) {
    raw.write(burst); // 131 KB of Pings a round, 5 MB in all
    await delay(5);
    most = Math.max(most, ws.socket.writableLength);
  }
  await until(() => ws.bufferedAmount === 0, 'the pings to be read');
  most = Math.max(most, ws.socket.writableLength);
  t.true(most < 1 << 20, `write buffer reached ${most} bytes`);
  raw.resume();
  raw.end();
  t.true((await within(reading, 'the end')) instanceof IOError);
});

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
  await within(new Promise((resolve) => ours.once('close', resolve)), 'the socket to close within closeTimeout', 2000);
  release();
  await t.throwsAsync(sending, { instanceOf: IOError });
});

test('a message source that fails after the first frame fails the connection with 1011', async (t) => {
  const { ws, peer } = await rawPair(t, 'client', { closeTimeout: 300 });
  async function* broken(): AsyncGenerator<string> {
    yield 'a';
    yield 'b';
    throw new Error('source broke');
  }
  await t.throwsAsync(sendChain(ws, Opcode.Text, broken()), { message: 'source broke' });
  await t.throwsAsync(sendText(ws, 'next'), { instanceOf: IOError });
  const frames = await peer.waitFrames(2);
  t.is(frames[0]!.opcode, Opcode.Text);
  t.false(frames[0]!.fin);
  t.is(frames[1]!.opcode, Opcode.Close);
  t.is(frames[1]!.data.readUInt16BE(0), CloseCode.InternalError);
  t.is(parseFrames(peer.bytes, true).length, 2, 'nothing after the Close');
});

test('a write on a socket destroyed before it flushed rejects with IOError', async (t) => {
  const { ws, ours, raw } = await rawPair(t, 'server', { closeTimeout: 300 });
  raw.pause();
  const sending = sendBinary(ws, Buffer.alloc(16 << 20));
  await delay(10);
  ours.destroy();
  await t.throwsAsync(within(sending, 'the send to settle'), { instanceOf: IOError });
});

test('sendClose against a silent peer destroys the socket after closeTimeout', async (t) => {
  const { ws, ours } = await rawPair(t, 'server', { closeTimeout: 200 });
  const reading = drain(ws);
  const started = Date.now();
  await sendClose(ws, 1000);
  await within(new Promise((resolve) => ours.once('close', resolve)), 'the socket to close', 3000);
  const took = Date.now() - started;
  t.true(took >= 150 && took < 3000, `closed after ${took} ms`);
  t.true((await reading) instanceof IOError);
});

test('handleEvents: a handler that sends Close and then throws still ends the connection', async (t) => {
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
