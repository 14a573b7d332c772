/**
 * listen()'s handshake limits: a request head over maxHeaderSize gets 431, a client that
 * does not finish its request within handshakeTimeout gets 408 and is dropped, and an open
 * WebSocket is not subject to that timeout.
 */
import test from 'ava';
import net from 'node:net';
import { close, connect, listen, Opcode, readData, sendText } from '../../src';
import { delay, within } from '../helpers/socket-pair';

async function echoServer(t: { teardown(fn: () => Promise<void>): void }, options: Parameters<typeof listen>[0]) {
  const server = await listen({ port: 0, ...options }, async (ws) => {
    for (;;) {
      const m = await readData(ws);
      if (m.opcode === Opcode.Text) await sendText(ws, m.data.toString());
      if (m.opcode === Opcode.Close) return;
    }
  });
  t.teardown(() => server.close());
  return server;
}

/** Writes `request` on a raw socket; resolves to the status line received and the time to close. */
function rawRequest(port: number, request: string): Promise<{ status: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve({ status: got.split('\r\n')[0]!, ms: Date.now() - started }));
    s.write(request);
  });
}

test('a request head over maxHeaderSize is answered 431', async (t) => {
  const server = await echoServer(t, { maxHeaderSize: 4096 });
  const r = await within(rawRequest(server.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`), '431');
  t.is(r.status, 'HTTP/1.1 431 Request Header Fields Too Large');
});

test('a client that never finishes its request is dropped after handshakeTimeout', async (t) => {
  const server = await echoServer(t, { handshakeTimeout: 300 });
  const r = await within(rawRequest(server.port, 'GET / HTTP/1.1\r\nHost: x\r\n'), 'the slow client to be dropped');
  t.is(r.status, 'HTTP/1.1 408 Request Timeout');
  // Not before handshakeTimeout; well before the 10 s default, with room for a busy machine.
  t.true(r.ms >= 250 && r.ms < 8000, `dropped after ${r.ms} ms`);
});

test('an open WebSocket outlives handshakeTimeout', async (t) => {
  const server = await echoServer(t, { handshakeTimeout: 300 });
  const ws = await connect(`ws://127.0.0.1:${server.port}/`);
  await delay(900);
  await sendText(ws, 'still here');
  t.is((await within(readData(ws), 'the echo')).data.toString(), 'still here');
  t.like(await close(ws), { code: 1000, clean: true });
});
