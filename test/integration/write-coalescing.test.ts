/**
 * Small frames sent in one turn of the event loop go to the kernel together (one writev at
 * the end of the turn, or as soon as 64 KiB wait): what that changes and what it must not.
 */
import test from 'ava';
import { AsyncSocket, close, connect, IOError, listen, messages, Opcode, readData, sendBinary, sendPing, sendText } from '../../src';
import { parseFrames, socketPair } from '../helpers/socket-pair';
import { within } from '../helpers/wait';

async function serverFacingRaw(t: { teardown(fn: () => void): void }, sendTimeout?: number) {
  const [client, server] = await socketPair();
  t.teardown(() => {
    client.destroy();
    server.destroy();
  });
  const ws = new AsyncSocket(server, { role: 'server', ...(sendTimeout === undefined ? {} : { sendTimeout }) });
  return { client, ws };
}

/** Collects what the raw peer receives, chunk by chunk. */
function collect(client: import('node:net').Socket): { chunks: Buffer[]; bytes: () => number } {
  const chunks: Buffer[] = [];
  client.on('data', (c: Buffer) => chunks.push(c));
  return { chunks, bytes: () => chunks.reduce((n, c) => n + c.length, 0) };
}

async function received(got: { bytes: () => number }, n: number): Promise<void> {
  await within(
    new Promise<void>((resolve) => {
      const check = (): void => void (got.bytes() >= n ? resolve() : setImmediate(check));
      check();
    }),
    `${n} bytes to arrive`
  );
}

test('200 small messages awaited one by one in one turn leave in a few TCP chunks, in order', async (t) => {
  const { client, ws } = await serverFacingRaw(t);
  const got = collect(client);
  for (let i = 0; i < 200; i++) await sendBinary(ws, Buffer.from([i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i]));
  await received(got, 200 * 18);
  const all = Buffer.concat(got.chunks);
  for (let i = 0; i < 200; i++) {
    t.deepEqual([...all.subarray(i * 18, i * 18 + 2)], [0x82, 16]);
    t.true(all.subarray(i * 18 + 2, i * 18 + 18).every((b) => b === i));
  }
  t.log(`200 frames of 18 bytes arrived in ${got.chunks.length} TCP chunk(s)`);
  t.true(got.chunks.length <= 5, `${got.chunks.length} chunks`);
});

test('at most 64 KiB waits in one turn: the rest goes to the kernel as it comes', async (t) => {
  const { client, ws } = await serverFacingRaw(t);
  const got = collect(client);
  let most = 0;
  const payload = Buffer.alloc(1000, 7);
  for (let i = 0; i < 1000; i++) {
    void sendBinary(ws, payload);
    most = Math.max(most, ws.socket.writableLength);
  }
  await received(got, 1000 * 1004);
  t.log(`1000 sends of 1000 bytes in one turn: at most ${most} bytes held in the socket at once`);
  t.true(most <= 64 * 1024 + 1004, `${most}`);
});

test('a buffer passed to a send may be reused once the send resolved (large, by reference)', async (t) => {
  const { client, ws } = await serverFacingRaw(t);
  const got = collect(client);
  const buf = Buffer.alloc(4096, 1);
  await sendBinary(ws, buf);
  buf.fill(2);
  await sendBinary(ws, buf);
  buf.fill(3);
  await received(got, 2 * 4100);
  const all = Buffer.concat(got.chunks);
  t.true(all.subarray(4, 4100).every((b) => b === 1), 'the first message kept its bytes');
  t.true(all.subarray(4104, 8200).every((b) => b === 2), 'the second message kept its bytes');
});

test('destroy() right after a send that was held still delivers it first', async (t) => {
  const { client, ws } = await serverFacingRaw(t);
  const got = collect(client);
  const ended = new Promise((resolve) => client.once('close', resolve));
  void sendText(ws, 'last words').catch(() => undefined);
  ws.destroy();
  await within(ended, 'the peer to see the socket close');
  t.is(Buffer.concat(got.chunks).subarray(2).toString(), 'last words');
});

test('small sends to a peer that reads nothing: the send timeout still drops it', async (t) => {
  const { client, ws } = await serverFacingRaw(t, 400);
  client.pause();
  const reading = readData(ws).then(() => null, (e: unknown) => e);
  const payload = Buffer.alloc(16);
  let sent = 0;
  const started = Date.now();
  const err = await within(
    (async () => {
      for (;;) {
        await sendBinary(ws, payload);
        sent++;
      }
    })().then(() => null, (e: unknown) => e),
    'the sends to fail',
    30_000
  );
  t.true(err instanceof IOError, String(err));
  t.is(((await reading) as IOError).reason, 'timeout');
  t.log(`${sent} sends of 16 bytes went out before the peer was dropped after ${Date.now() - started} ms (sendTimeout 400 ms)`);
});

test('two sends not awaited arrive in the order they were made', async (t) => {
  const [clientSock, serverSock] = await socketPair();
  t.teardown(() => {
    clientSock.destroy();
    serverSock.destroy();
  });
  const client = new AsyncSocket(clientSock, { role: 'client' });
  const server = new AsyncSocket(serverSock, { role: 'server' });
  void sendText(server, 'a');
  void sendText(server, 'b');
  const answers = [await readData(client), await readData(client)];
  t.deepEqual(
    answers.map((m) => [m.opcode, m.data.toString()]),
    [
      [Opcode.Text, 'a'],
      [Opcode.Text, 'b']
    ]
  );
});

test('broadcast does not take frames held for the turn for a slow client: 50 broadcasts in one turn reach a reading client', async (t) => {
  const server = await listen({ port: 0, maxBackpressure: 4096, backpressurePolicy: 'close' }, async (ws) => {
    for await (const m of messages(ws)) void m;
  });
  t.teardown(() => server.close());
  const client = await connect(`ws://127.0.0.1:${server.port}/`);
  await within(
    new Promise<void>((resolve) => {
      const check = (): void => void (server.clients.size === 1 ? resolve() : setImmediate(check));
      check();
    }),
    'the server to register the client'
  );
  const payload = 'x'.repeat(200);
  for (let i = 0; i < 50; i++) void server.broadcast(payload);
  let got = 0;
  while (got < 50) {
    const m = await within(readData(client), `message ${got + 1}`);
    t.is(m.opcode, Opcode.Text, `message ${got + 1} is a Close with ${m.opcode === Opcode.Close ? m.data.readUInt16BE(0) : '-'}`);
    if (m.opcode !== Opcode.Text) break;
    got++;
  }
  t.is(got, 50);
  await close(client);
});

test('a Ping goes to the kernel at once, even while the sending task keeps the microtask queue busy', async (t) => {
  const { client, ws } = await serverFacingRaw(t);
  const got = collect(client);
  void sendText(ws, 'data').catch(() => undefined); // held for the turn
  void sendPing(ws, false, 'now').catch(() => undefined);
  const socket = ws.socket as import('node:net').Socket;
  t.is(socket.writableCorked, 0, 'nothing is held back behind the Ping');
  t.is(socket.writableLength, 0, 'both frames are with the kernel');
  for (let i = 0; i < 10_000; i++) await null; // a task that does not yield to the event loop
  await received(got, 6 + 5);
});

// Fills the kernel's buffers towards a peer that does not read, until our writes wait.
async function stall(ws: AsyncSocket): Promise<void> {
  for (let i = 0; i < 64 && ws.unsentBytes === 0; i++) {
    sendBinary(ws, Buffer.alloc(1 << 20, 0x55)).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (ws.unsentBytes === 0) throw new Error('the kernel took 64 MiB: cannot stall the socket');
}

test('frames sent while the peer is behind arrive complete and in order, whatever their kind', async (t) => {
  const { client, ws } = await serverFacingRaw(t);
  client.pause();
  await stall(ws);
  const stalledBytes = ws.socket.writableLength;
  // Small owned frames (into the backlog), a large one by reference, a Ping, text, in turns.
  const sent: { opcode: number; data: Buffer }[] = [];
  const sends: Promise<unknown>[] = [];
  const big = Buffer.alloc(5000, 0x42);
  for (let turn = 0; turn < 40; turn++) {
    for (let k = 0; k < 5; k++) {
      const data = Buffer.from(`turn ${turn} message ${k}`);
      sent.push({ opcode: Opcode.Binary, data });
      sends.push(sendBinary(ws, data));
    }
    if (turn % 7 === 3) {
      sent.push({ opcode: Opcode.Binary, data: big });
      sends.push(sendBinary(ws, big));
    }
    if (turn % 11 === 5) {
      const token = Buffer.from(`ping ${turn}`);
      sent.push({ opcode: Opcode.Ping, data: token });
      sends.push(sendPing(ws, undefined, token));
    }
    const text = `text ${turn} ${'é'.repeat(turn)}`;
    sent.push({ opcode: Opcode.Text, data: Buffer.from(text) });
    sends.push(sendText(ws, text));
    await new Promise((resolve) => setImmediate(resolve));
  }
  // All waiting: nothing may have resolved yet except what the kernel took.
  t.true(ws.unsentBytes > 0);
  const got = collect(client);
  client.resume();
  await within(Promise.all(sends), 'every send to settle once the peer reads', 30_000);
  await received(got, (ws.socket as import('node:net').Socket).bytesWritten);
  const frames = parseFrames(Buffer.concat(got.chunks));
  // The stalling frames first (1 MiB each), then ours in the order sent.
  const ours = frames.filter((f) => f.data.length !== 1 << 20);
  t.true(frames.length - ours.length >= Math.floor(stalledBytes / (1 << 20)));
  t.is(ours.length, sent.length);
  for (let i = 0; i < sent.length; i++) {
    t.is(ours[i]!.opcode, sent[i]!.opcode, `frame ${i}`);
    t.true(ours[i]!.data.equals(sent[i]!.data), `frame ${i} payload`);
  }
});

test('sends waiting for a peer that does not read fail with IOError when the socket is destroyed', async (t) => {
  const { client, ws } = await serverFacingRaw(t);
  client.pause();
  await stall(ws);
  const waiting = Array.from({ length: 20 }, (_, i) => sendBinary(ws, Buffer.from(`held ${i}`)));
  ws.destroy();
  const results = await within(Promise.allSettled(waiting), 'the held sends to settle');
  for (const r of results) {
    t.is(r.status, 'rejected');
    t.true((r as PromiseRejectedResult).reason instanceof IOError, String((r as PromiseRejectedResult).reason));
  }
});

test('frames waiting for a peer that then half-closes still reach it (socket without half-open)', async (t) => {
  // net.connect sockets (and http.request's) end their writable side themselves after the
  // peer's FIN: what waited for the kernel must be handed to the socket before that.
  const { client, ws } = await serverFacingRaw(t, 0);
  client.pause();
  const got = collect(client);
  const fill = sendBinary(ws, Buffer.alloc(4 << 20, 1));
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.true(ws.unsentBytes > 0, 'behind');
  const sends = Array.from({ length: 20 }, (_, i) => sendText(ws, `msg ${i}`));
  client.end(); // FIN
  await new Promise((resolve) => ws.socket.once('end', resolve));
  client.resume();
  const results = await within(Promise.allSettled([fill, ...sends]), 'the sends to settle');
  t.deepEqual(
    results.map((r) => r.status),
    results.map(() => 'fulfilled')
  );
  await received(got, (ws.socket as import('node:net').Socket).bytesWritten);
  const texts = parseFrames(Buffer.concat(got.chunks))
    .filter((f) => f.opcode === Opcode.Text)
    .map((f) => f.data.toString());
  t.deepEqual(texts, Array.from({ length: 20 }, (_, i) => `msg ${i}`));
});

test('a large frame sent while the peer is behind is written as it is, not copied into the backlog', async (t) => {
  const { client, ws } = await serverFacingRaw(t, 0);
  client.pause();
  await stall(ws);
  const small = sendText(ws, 'small, into the backlog');
  const before = ws.socket.writableLength;
  const text = 'x'.repeat(1 << 20);
  const large = sendText(ws, text); // an owned frame of 1 MiB
  // Handed to the socket at once (after the backlog), not held in another buffer of ours.
  t.true(ws.socket.writableLength - before >= text.length, `socket holds ${ws.socket.writableLength - before} more bytes`);
  const got = collect(client);
  client.resume();
  await within(Promise.all([small, large]), 'the sends');
  await received(got, (ws.socket as import('node:net').Socket).bytesWritten);
  const texts = parseFrames(Buffer.concat(got.chunks)).filter((f) => f.opcode === Opcode.Text);
  t.deepEqual(
    texts.map((f) => f.data.length),
    [23, 1 << 20]
  );
});
