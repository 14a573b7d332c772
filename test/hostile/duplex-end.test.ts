/**
 * The stream adapters against what a peer sends around the end (issue 24, findings 2 and 4):
 * - `pipeline(Readable.from(256 × 1 KiB), toDuplex(ws), sink)` against an echo server: the
 *   sink got 32,768 of 262,144 bytes (object mode: 17,408) and `pipeline()` fulfilled, since
 *   ending the writable side ran `close()`, whose drain read and dropped every message the
 *   Duplex was not reading at that moment. Bound: ending the writable side sends our Close and
 *   the readable side reads on to the peer's Close; nothing is dropped. The same for
 *   WebSocketStream (the writer closed while the readable is piped) and for `halfClose()`.
 * - `toDuplex` in byte mode counted its read-ahead in bytes but kept one Buffer per message:
 *   10 clients each sending 60,000 one-byte messages into `pipeline(toDuplex(ws), stalled)`
 *   held 4,664 KiB per connection. Bound: small messages are joined into 16 KiB chunks, so the
 *   read-ahead costs its bytes (the server runs in a child process, so its memory is its own).
 */
import test, { ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AsyncSocket, connect, halfClose, listen, makeFrame, messages, Opcode, sendBinary, sendText, toDuplex, toWebSocketStream, WebSocketStreamError } from '../../src';
import { within } from '../helpers/socket-pair';
import { startChild, Child } from './harness';
import type { ChildMemory } from './server-child';

const KiB = 1024;
const COUNT = 256;
const chunks = (): Buffer[] => Array.from({ length: COUNT }, (_, i) => Buffer.alloc(KiB, i & 0xff));
const digest = (parts: Buffer[]): string => createHash('sha256').update(Buffer.concat(parts)).digest('hex');

/** An echo server (README's loop) and a client connected to it, torn down with the test. */
async function echoPair(t: ExecutionContext): Promise<AsyncSocket> {
  const server = await listen({ host: '127.0.0.1', port: 0 }, async (ws) => {
    for await (const m of messages(ws)) await (m.opcode === Opcode.Text ? sendText(ws, m.data.toString()) : sendBinary(ws, m.data));
  });
  t.teardown(() => server.close());
  const ws = await connect(`ws://127.0.0.1:${server.port}/`);
  t.teardown(() => ws.destroy());
  return ws;
}

/** A sink that takes each chunk a turn later (a consumer that is not always reading). */
function slowSink(into: Buffer[]): Writable {
  return new Writable({
    objectMode: true,
    write(chunk: Buffer | string, _enc, cb) {
      into.push(Buffer.from(chunk));
      setImmediate(cb);
    }
  });
}

for (const objectMode of [false, true]) {
  test(`pipeline(source, toDuplex(ws${objectMode ? ', objectMode' : ''}), sink) against an echo server: every byte reaches the sink`, async (t) => {
    const ws = await echoPair(t);
    const got: Buffer[] = [];
    await within(pipeline(Readable.from(chunks()), toDuplex(ws, { objectMode }), slowSink(got)), 'the pipeline', 20_000);
    const bytes = got.reduce((n, b) => n + b.length, 0);
    t.log(`the sink got ${bytes} of ${COUNT * KiB} bytes in ${got.length} chunks`);
    t.is(bytes, COUNT * KiB);
    t.is(digest(got), digest(chunks()));
    if (objectMode) t.is(got.length, COUNT, 'one chunk per message');
  });
}

test('WebSocketStream: the writer closed while the readable is piped: every message reaches the sink', async (t) => {
  const ws = await echoPair(t);
  const wss = toWebSocketStream(ws);
  const { readable, writable } = await wss.opened;
  const got: Buffer[] = [];
  const reading = readable.pipeTo(
    new WritableStream({
      write: async (chunk: string | Uint8Array) => {
        got.push(Buffer.from(chunk));
        await new Promise((r) => setImmediate(r));
      }
    })
  );
  const writer = writable.getWriter();
  for (const c of chunks()) await writer.write(c);
  await within(writer.close(), 'the writer to close', 20_000);
  await within(reading, 'the readable to end', 20_000);
  t.log(`the sink got ${got.length} of ${COUNT} messages`);
  t.is(got.length, COUNT);
  t.is(digest(got), digest(chunks()));
  t.deepEqual(await wss.closed, { closeCode: 1005, reason: '' });
});

test('halfClose(): our Close goes out, and what the peer sent before its Close is read to the end', async (t) => {
  const ws = await echoPair(t);
  for (const c of chunks()) void sendBinary(ws, c);
  await halfClose(ws, 1000, 'no more');
  const got: Buffer[] = [];
  for await (const m of messages(ws)) got.push(Buffer.from(m.data));
  t.is(got.length, COUNT);
  t.is(digest(got), digest(chunks()));
  t.is(ws.peerClose?.code, 1000);
});

// The bound: what one connection whose Duplex consumer stalled may make the server hold:
// readBufferSize (256 KiB) of input, the Duplex's 16 KiB read-ahead and one 16 KiB chunk,
// with room for what the socket and its frames cost.
const PER_CONNECTION = 768 * KiB;
const CLIENTS = 10;
const MESSAGES = 60_000;

test.serial(`${CLIENTS} clients × ${MESSAGES} one-byte messages into a stalled toDuplex pipeline: under ${PER_CONNECTION / KiB} KiB held per connection`, async (t) => {
  t.timeout(90_000);
  const child: Child = await startChild(t, { loop: 'duplex-stalled', options: { host: '127.0.0.1', port: 0 } }, ['--expose-gc']);
  const mem = (): Promise<ChildMemory> => {
    const m = child.next<ChildMemory>('mem', 'the server child to report its memory', 30_000);
    child.send('mem');
    return m;
  };
  const before = await mem();
  const wire = Buffer.concat(Array.from({ length: MESSAGES }, (_, i) => makeFrame({ fin: true, rsv1: false, rsv2: false, rsv3: false, masked: true, opcode: Opcode.Binary, data: Buffer.from([i & 0xff]) })));
  const clients: AsyncSocket[] = [];
  t.teardown(() => clients.forEach((w) => w.destroy()));
  for (let i = 0; i < CLIENTS; i++) clients.push(await connect(`ws://127.0.0.1:${child.port}/`));
  // Each client writes what the server will take; the rest waits in our socket.
  for (const c of clients) void c.write(wire).catch(() => undefined);
  // Until the server holds still (its reads paused behind the stalled consumer).
  let last = 0;
  let m = before;
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 250));
    m = await mem();
    const held = m.heapUsed + m.external;
    if (i > 4 && Math.abs(held - last) < 64 * KiB) break;
    last = held;
  }
  const per = (m.heapUsed + m.external - before.heapUsed - before.external) / CLIENTS;
  t.log(`${CLIENTS} stalled connections: ${(per / KiB).toFixed(0)} KiB held per connection (heap and external, after GC), open ${m.open}`);
  t.is(m.open, CLIENTS);
  t.true(per < PER_CONNECTION, `${(per / KiB).toFixed(0)} KiB per connection`);
});

// From an attacker's review of the change above: a large message pushed while the consumer's
// buffer was full was dropped (byte mode), and end() on a Duplex whose consumer stopped
// reading never finished, even once its socket was destroyed.
test('byte mode, a consumer that reads 1 KiB at a time: small and large messages all arrive', async (t) => {
  const ROUNDS = 200;
  const server = await listen({ host: '127.0.0.1', port: 0 }, async (ws) => {
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < 3; i++) void sendBinary(ws, Buffer.alloc(512, 1));
      void sendBinary(ws, Buffer.alloc(2 * KiB, 2));
    }
    await halfClose(ws, 1000);
    for await (const m of messages(ws)) void m;
  });
  t.teardown(() => server.close());
  const ws = await connect(`ws://127.0.0.1:${server.port}/`);
  t.teardown(() => ws.destroy());
  const d = toDuplex(ws);
  let got = 0;
  let large = 0;
  const ended = new Promise<void>((resolve, reject) => {
    d.once('end', resolve);
    d.once('error', reject);
  });
  // Paused mode: a read of 1 KiB every millisecond, so the buffer is often full.
  const pull = setInterval(() => {
    const c = d.read(KiB) as Buffer | null;
    if (c === null) return;
    got += c.length;
    for (const b of c) if (b === 2) large++;
  }, 1);
  d.on('readable', () => undefined);
  await within(ended, 'the end', 30_000).finally(() => clearInterval(pull));
  for (let c = d.read() as Buffer | null; c !== null; c = d.read() as Buffer | null) got += c.length;
  t.log(`received ${got} of ${ROUNDS * 3.5 * KiB} bytes, ${large} of ${ROUNDS * 2 * KiB} large`);
  t.is(got, ROUNDS * 3.5 * KiB);
});

/** A client (closeTimeout 500 ms) of a server that sends 400 KiB, then never reads nor answers a Close. */
async function silentPeer(t: ExecutionContext): Promise<AsyncSocket> {
  const server = await listen({ host: '127.0.0.1', port: 0 }, async (ws) => {
    for (let i = 0; i < 200; i++) void sendBinary(ws, Buffer.alloc(2 * KiB, 1));
    await new Promise((r) => setTimeout(r, 5000));
  });
  t.teardown(() => server.close());
  const ws = await connect(`ws://127.0.0.1:${server.port}/`, { closeTimeout: 500 });
  t.teardown(() => ws.destroy());
  return ws;
}

test('end() on a Duplex whose consumer stopped reading fails it within closeTimeout instead of hanging', async (t) => {
  const d = toDuplex(await silentPeer(t));
  const failed = new Promise<unknown>((resolve) => d.once('error', resolve));
  await new Promise<void>((resolve) =>
    d.once('readable', () => {
      d.read(KiB); // a little, then no more
      resolve();
    })
  );
  const started = Date.now();
  d.end();
  const err = await within(failed, 'the Duplex to fail', 10_000);
  const ms = Date.now() - started;
  t.log(`failed ${ms} ms after end(): ${String(err)}`);
  t.true(d.destroyed);
  t.true(ms < 3000, `${ms} ms`);
});

test('WebSocketStream: writer.close() while a reader holds the readable but stopped reading ends within closeTimeout', async (t) => {
  const wss = toWebSocketStream(await silentPeer(t));
  const { readable, writable } = await wss.opened;
  const reader = readable.getReader();
  await reader.read(); // one message, then no more
  const started = Date.now();
  const closing = writable.getWriter().close().then(
    () => 'closed',
    (e: unknown) => String(e)
  );
  const outcome = await within(closing, 'writer.close() to settle', 10_000);
  const ms = Date.now() - started;
  t.log(`writer.close() settled ${ms} ms later: ${outcome}`);
  t.true(ms < 3000, `${ms} ms`);
  const closed = await wss.closed.then(
    () => 'resolved',
    (e: unknown) => e
  );
  t.true(WebSocketStreamError.isError(closed), 'closed rejects: the close was not clean');
});
