/**
 * When one side stops reading or goes silent: what we hold stays bounded both ways (a flood
 * nobody reads pauses our socket at readBufferSize; a Ping flood from a peer that reads
 * nothing does not pile up Pongs in our write buffer), and the timeouts end the connection
 * (keepalive, idleTimeout, the closeTimeout after our Close), with pending reads and writes
 * rejected with IOError and no unhandled rejection.
 */
import test from 'ava';
import { Opcode } from '../../src/core/constants';
import { IOError } from '../../src/core/errors';
import { makeFrame } from '../../src/core/frame';
import { keepalive } from '../../src/keepalive';
import { readData } from '../../src/recv';
import { sendBinary, sendClose } from '../../src/send';
import { delay, drain, pair, parseFrames, rawPair, until, within } from '../helpers/socket-pair';

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
  // Not before closeTimeout; well before the 10 s default, with room for a busy machine.
  await within(new Promise((resolve) => ours.once('close', resolve)), 'the socket to close', 8000);
  const took = Date.now() - started;
  t.true(took >= 150 && took < 8000, `closed after ${took} ms`);
  t.true((await reading) instanceof IOError);
});

test('a flood with nobody reading pauses the socket (readBufferSize) and is read intact afterwards', async (t) => {
  const p = await pair(t, { server: { readBufferSize: 16 * 1024 } });
  const count = 200;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < count; i++) sends.push(sendBinary(p.client, Buffer.alloc(8 * 1024, i & 0xff)));
  // Nobody reads yet: the server stops pulling from the kernel once 16 KiB is buffered.
  await until(() => p.serverSocket.isPaused(), 'the server socket to pause');
  t.true(p.server.bufferedAmount <= 16 * 1024 + 8 * 1024 + 64 * 1024, `buffered ${p.server.bufferedAmount}`);
  for (let i = 0; i < count; i++) {
    const m = await within(readData(p.server), `message ${i}`);
    t.is(m.data.length, 8 * 1024);
    if (m.data[0] !== (i & 0xff) || m.data[m.data.length - 1] !== (i & 0xff)) {
      t.fail(`message ${i} corrupted or out of order`);
      return;
    }
  }
  await within(Promise.all(sends), 'all sends to resolve');
});

test('idleTimeout destroys a silent connection; the pending read rejects IOError timeout', async (t) => {
  const p = await pair(t, { server: { idleTimeout: 100 } });
  const err = await within(t.throwsAsync(readData(p.server), { instanceOf: IOError }), 'the timeout');
  t.is(err?.reason, 'timeout');
  t.true(p.server.destroyed);
  await t.throwsAsync(readData(p.client), { instanceOf: IOError });
});

test('the latest Ping is answered once the peer reads again, after what was sent before', async (t) => {
  const { ws, raw } = await rawPair(t, 'server', { closeTimeout: 300, sendTimeout: 0 });
  raw.pause();
  const reading = drain(ws);
  const big = Buffer.alloc(4 << 20, 7);
  const sent = sendBinary(ws, big);
  await until(() => ws.unsentBytes > 0, 'our writes to wait');
  for (const token of ['first', 'second', 'last']) raw.write(makeFrame(Opcode.Ping, Buffer.from(token), true));
  const ours = ws.socket as import('node:net').Socket;
  await until(() => ours.bytesRead >= 3 * 11 && ws.bufferedAmount === 0, 'the pings to be read');
  const got: Buffer[] = [];
  raw.on('data', (c: Buffer) => got.push(c));
  raw.resume();
  await within(sent, 'the large send');
  await until(() => parseFrames(Buffer.concat(got), true).some((f) => f.opcode === Opcode.Pong), 'a Pong');
  const frames = parseFrames(Buffer.concat(got), true);
  t.is(frames[0]!.opcode, Opcode.Binary);
  t.is(frames[0]!.data.length, big.length);
  const pongs = frames.filter((f) => f.opcode === Opcode.Pong).map((f) => f.data.toString());
  t.deepEqual(pongs, ['last']);
  raw.end();
  await within(reading, 'the end');
});
