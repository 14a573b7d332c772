/**
 * `toDuplex(ws)`: a connection as a node:stream Duplex. A 16 MiB file through `pipeline()` to
 * a server that pipes its end into a hash; a source that fails half-way (the server sees 1011);
 * object mode keeping message types; close codes mapped to 'end' or to an error; and the read
 * side's backpressure.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AsyncSocket, close, CloseCode, connect, listen, Opcode, readData, sendBinary, sendPing, sendText, toDuplex, WebSocketStreamError } from '../../src';
import { parseFrames } from '../helpers/socket-pair';
import { within } from '../helpers/wait';

const MiB = 1024 * 1024;

/** A Writable that hashes what it gets. */
function hashSink(): { sink: Writable; digest: () => string; bytes: () => number } {
  const hash = createHash('sha256');
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb();
    }
  });
  return { sink, digest: () => hash.digest('hex'), bytes: () => bytes };
}

test('pipeline(): a 16 MiB file to a socket, and the server pipes its end into a hash; both pipelines finish, the bytes match', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wsframe-duplex-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = randomBytes(16 * MiB);
  writeFileSync(join(dir, 'data.bin'), data);
  let received!: Promise<{ digest: string; bytes: number }>;
  const server = await listen({}, (ws) => {
    const { sink, digest, bytes } = hashSink();
    received = pipeline(toDuplex(ws), sink).then(() => ({ digest: digest(), bytes: bytes() }));
    return received.then(() => undefined);
  });
  t.teardown(() => server.close());
  const ws = await within(connect(`ws://127.0.0.1:${server.port}/`), 'connect');
  const started = Date.now();
  await within(pipeline(createReadStream(join(dir, 'data.bin')), toDuplex(ws)), 'the client pipeline', 30_000);
  const got = await within(received, 'the server pipeline', 30_000);
  t.log(`16 MiB file through pipeline() to the server's hash in ${Date.now() - started} ms`);
  t.is(got.bytes, 16 * MiB);
  t.is(got.digest, createHash('sha256').update(data).digest('hex'));
});

test('pipeline(): a source that fails half-way rejects the client pipeline, and the server pipeline fails with 1011', async (t) => {
  let received!: Promise<unknown>;
  const server = await listen({ onError: () => undefined }, (ws) => {
    received = pipeline(toDuplex(ws), hashSink().sink).then(
      () => null,
      (e: unknown) => e
    );
    return received.then(() => undefined);
  });
  t.teardown(() => server.close());
  const ws = await within(connect(`ws://127.0.0.1:${server.port}/`), 'connect');
  async function* failing(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 4; i++) yield Buffer.alloc(MiB, i);
    throw new Error('disk on fire');
  }
  const err = await within(
    pipeline(Readable.from(failing()), toDuplex(ws)).then(
      () => null,
      (e: unknown) => e
    ),
    'the client pipeline'
  );
  t.is((err as Error).message, 'disk on fire');
  const serverErr = (await within(received, 'the server pipeline')) as WebSocketStreamError;
  t.true(WebSocketStreamError.isError(serverErr), String(serverErr));
  t.is(serverErr.closeCode, 1011);
});

test('object mode keeps message types; the peer closing with 1000 ends the stream, with 4000 errors it with that code', async (t) => {
  const server = await listen({ selectProtocol: (offered) => offered[0] }, async (ws: AsyncSocket) => {
    await sendText(ws, 'a text');
    await sendBinary(ws, Buffer.from([1, 2, 3]));
    const code = ws.protocol === 'fail' ? 4000 : 1000;
    await close(ws, code, 'done');
  });
  t.teardown(() => server.close());
  for (const [protocol, expectError] of [
    ['ok', false],
    ['fail', true]
  ] as const) {
    const ws = await within(connect(`ws://127.0.0.1:${server.port}/`, { protocols: [protocol] }), 'connect');
    const duplex = toDuplex(ws, { objectMode: true });
    const chunks: unknown[] = [];
    const ended = await within(
      new Promise<unknown>((resolve) => {
        duplex.on('data', (c: unknown) => chunks.push(c));
        duplex.on('end', () => resolve('end'));
        duplex.on('error', resolve);
      }),
      'the end'
    );
    t.is(chunks[0], 'a text');
    t.deepEqual(chunks[1], Buffer.from([1, 2, 3]));
    if (expectError) {
      t.true(WebSocketStreamError.isError(ended));
      t.is((ended as WebSocketStreamError).closeCode, 4000);
      t.is((ended as WebSocketStreamError).reason, 'done');
    } else {
      t.is(ended, 'end');
    }
    duplex.destroy();
  }
});

test('a Duplex nobody reads stops reading the socket: what a fast sender gets in stays bounded', async (t) => {
  let sent = 0;
  const server = await listen({}, async (ws: AsyncSocket) => {
    for (let i = 0; i < 64; i++) {
      await sendBinary(ws, Buffer.alloc(MiB));
      sent++;
    }
  });
  t.teardown(() => server.close());
  const ws = await within(connect(`ws://127.0.0.1:${server.port}/`), 'connect');
  const duplex = toDuplex(ws, { objectMode: true }); // one message ahead by default
  duplex.once('readable', () => undefined); // starts reading, then nobody consumes
  await new Promise((resolve) => setTimeout(resolve, 500));
  const held = ws.unreadBytes + duplex.readableLength * MiB;
  t.log(`after 500 ms unread: ${sent} of 64 MiB sent, ${(ws.unreadBytes / 1024).toFixed(0)} KiB in the socket's buffer, ${duplex.readableLength} message(s) in the Duplex`);
  t.true(sent < 64, 'the sender was held back');
  t.true(held <= 4 * MiB, `${held} bytes held`);
  t.true(duplex.readableLength <= 1, `${duplex.readableLength} messages waiting in the Duplex`);
  duplex.destroy();
});

test('a WebSocket inside a WebSocket (bytes mode): no empty outer message, the inner frames arrive whole and in order', async (t) => {
  // The inner socket writes zero bytes to learn when what is ahead of a frame has gone (its
  // backlog, a Pong it owes): in bytes those carry nothing and must not become messages.
  const outerMessages: Buffer[] = [];
  let serverDone!: () => void;
  const finished = new Promise<void>((resolve) => (serverDone = resolve));
  const server = await listen({}, async (ws: AsyncSocket) => {
    for (;;) {
      const m = await readData(ws).catch(() => null);
      if (m === null || m.opcode === Opcode.Close) break;
      if (m.opcode === Opcode.Binary) outerMessages.push(Buffer.from(m.data));
    }
    serverDone();
  });
  t.teardown(() => server.close());
  const outer = await within(connect(`ws://127.0.0.1:${server.port}/`), 'connect');
  const inner = new AsyncSocket(toDuplex(outer), { role: 'client' });
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < 200; i++) {
    sends.push(sendBinary(inner, Buffer.alloc(16, i)));
    if (i % 50 === 0) sends.push(sendPing(inner, true, `p${i}`));
  }
  await within(Promise.all(sends.map((p) => p.catch((err: unknown) => err))), 'the inner sends');
  inner.socket.end(); // the outer connection closes with 1000
  await within(finished, 'the outer connection to end');
  t.is(outerMessages.filter((m) => m.length === 0).length, 0, 'no empty outer message');
  const frames = parseFrames(Buffer.concat(outerMessages));
  const data = frames.filter((f) => f.opcode === Opcode.Binary);
  t.is(data.length, 200);
  t.true(data.every((f, i) => f.data.equals(Buffer.alloc(16, i))), 'the inner messages, in order');
  t.deepEqual(
    frames.filter((f) => f.opcode === Opcode.Ping).map((f) => f.data.toString()),
    ['p0', 'p50', 'p100', 'p150']
  );
  t.log(`${frames.length} inner frames in ${outerMessages.length} outer messages`);
});

test('toDuplex: an empty Buffer written in bytes mode sends nothing; in object mode it is an empty binary message', async (t) => {
  const got: string[] = [];
  const server = await listen({}, async (ws: AsyncSocket) => {
    for (;;) {
      const m = await readData(ws).catch(() => null);
      if (m === null || m.opcode === Opcode.Close) break;
      if (m.opcode === Opcode.Binary || m.opcode === Opcode.Text) got.push(`${m.opcode}:${m.data.length}`);
    }
  });
  t.teardown(() => server.close());
  for (const objectMode of [false, true]) {
    const ws = await within(connect(`ws://127.0.0.1:${server.port}/`), 'connect');
    const duplex = toDuplex(ws, { objectMode });
    await new Promise<void>((resolve, reject) => duplex.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => duplex.write(Buffer.from('x'), (err) => (err ? reject(err) : resolve())));
    await within(close(ws, CloseCode.Normal), 'close');
    got.push('|');
  }
  t.deepEqual(got, ['2:1', '|', '2:0', '2:1', '|']);
});
