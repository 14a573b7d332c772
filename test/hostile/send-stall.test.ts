/**
 * What a peer that stops reading can hold (issue 11, finding 3, the send side): a send that
 * the peer never takes pinned the message (and, for an echo, the inflated message behind it)
 * for as long as the peer stayed connected. `sendTimeout` (default 15 s) destroys the socket
 * when our unsent bytes see no progress for that long; a slow but steady reader is kept.
 */
import test from 'ava';
import { AsyncSocket, DEFAULTS, IOError, readData, sendBinary } from '../../src';
import { socketPair } from '../helpers/socket-pair';
import { within } from '../helpers/wait';

const SEND_TIMEOUT = 400;

async function serverFacing(t: { teardown(fn: () => void): void }, sendTimeout = SEND_TIMEOUT) {
  const [client, server] = await socketPair();
  t.teardown(() => {
    client.destroy();
    server.destroy();
  });
  const ws = new AsyncSocket(server, { role: 'server', sendTimeout });
  return { client, ws };
}

test('the default send timeout is 15 s', (t) => {
  t.is(DEFAULTS.sendTimeout, 15_000);
});

test('a peer that reads nothing of a large send is dropped after sendTimeout, and its memory goes', async (t) => {
  const { client, ws } = await serverFacing(t);
  client.pause(); // never reads
  const reading = readData(ws);
  reading.catch(() => undefined);
  const started = Date.now();
  const send = sendBinary(ws, Buffer.alloc(16 << 20));
  const err = await within(send.then(() => null, (e: unknown) => e), 'the send to fail', 10_000);
  const elapsed = Date.now() - started;
  t.true(err instanceof IOError, String(err));
  const readErr = await within(reading.then(() => null, (e: unknown) => e), 'the read to fail');
  t.true(readErr instanceof IOError);
  t.is((readErr as IOError).reason, 'timeout');
  t.regex((readErr as IOError).message, /took none of \d+ unsent bytes for 400 ms/);
  t.true(ws.destroyed);
  t.is(ws.socket.writableLength, 0, 'nothing is held for the peer any more');
  t.log(`16 MiB to a peer that reads nothing: dropped after ${elapsed} ms (sendTimeout ${SEND_TIMEOUT} ms)`);
  t.true(elapsed >= SEND_TIMEOUT, 'not before the timeout');
});

test('a peer that reads slowly but steadily is not cut off, however long the send takes', async (t) => {
  // Progress shows once the kernel's buffers (a few MiB on loopback) have room again, so the
  // timeout must cover draining them at the reader's pace: here about 1 s of 1.5.
  const timeout = 1500;
  const { client, ws } = await serverFacing(t, timeout);
  // Reads one chunk, then nothing for 5 ms: far slower than the socket could go.
  let received = 0;
  client.on('data', (chunk: Buffer) => {
    received += chunk.length;
    client.pause();
    setTimeout(() => client.resume(), 5).unref();
  });
  const started = Date.now();
  const size = 24 << 20;
  await within(sendBinary(ws, Buffer.alloc(size)), 'the slow send', 60_000);
  const elapsed = Date.now() - started;
  t.false(ws.destroyed);
  t.log(`24 MiB to a slow reader: flushed in ${elapsed} ms with sendTimeout ${timeout} ms (${(received / 2 ** 20).toFixed(1)} MiB read by then)`);
  t.true(elapsed > timeout, 'the send took longer than the timeout, and was kept because it moved');
});

test('sendTimeout 0 turns it off', async (t) => {
  const [client, server] = await socketPair();
  t.teardown(() => {
    client.destroy();
    server.destroy();
  });
  const ws = new AsyncSocket(server, { role: 'server', sendTimeout: 0 });
  client.pause();
  const send = sendBinary(ws, Buffer.alloc(16 << 20));
  send.catch(() => undefined);
  const late = await Promise.race([send.then(() => 'sent', () => 'failed'), new Promise((r) => setTimeout(() => r('still pending'), 1500))]);
  t.is(late, 'still pending');
  t.false(ws.destroyed);
});
