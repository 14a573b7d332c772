/**
 * When one side stops reading or goes silent: what we hold stays bounded both ways (a flood
 * nobody reads pauses our socket at readBufferSize; a Ping flood from a peer that reads
 * nothing does not pile up Pongs in our write buffer), and the timeouts end the connection
 * (keepalive, idleTimeout, the closeTimeout after our Close), with pending reads and writes
 * rejected with IOError and no unhandled rejection.
 */
import test from 'ava';
import { Duplex } from 'node:stream';
import { AsyncSocket, IOError, keepalive, makeFrame, Opcode, readData, sendBinary, sendClose } from '../../src';
import { PEER_KEY, delay, drain, pair, parseFrames, rawPair, until, within } from '../helpers/socket-pair';

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
  await until(() => ws.unreadBytes === 0, 'the pings to be read');
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
  t.true(p.server.unreadBytes <= 16 * 1024 + 8 * 1024 + 64 * 1024, `buffered ${p.server.unreadBytes}`);
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
  await until(() => ours.bytesRead >= 3 * 11 && ws.unreadBytes === 0, 'the pings to be read');
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

// A server AsyncSocket (no send timeout) over a Duplex whose writes complete only when the
// test lets them (a kernel that takes what it is told to), the bytes they put on the wire,
// and a read loop; `end` destroys it and waits for the loop.
interface Gated {
  ws: AsyncSocket;
  duplex: Duplex;
  wire: Buffer[];
  release: (n?: number) => void;
  end: () => Promise<unknown>;
}

function gatedServer(): Gated {
  const held: { chunk: Buffer; cb: () => void }[] = [];
  const wire: Buffer[] = [];
  const duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, cb) {
      held.push({ chunk, cb });
    }
  });
  const release = (n = Infinity): void => {
    for (let k = 0; k < n && held.length > 0; k++) {
      const h = held.shift()!;
      wire.push(h.chunk);
      h.cb();
    }
  };
  const ws = new AsyncSocket(duplex, { role: 'server', sendTimeout: 0 });
  const reading = drain(ws);
  const end = (): Promise<unknown> => {
    duplex.destroy();
    return within(reading, 'the read loop to end');
  };
  return { ws, duplex, wire, release, end };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const peerPing = (token: string): Buffer => makeFrame({ fin: true, rsv1: false, rsv2: false, rsv3: false, masked: true, opcode: Opcode.Ping, data: Buffer.from(token) }, PEER_KEY);

test('a peer that reads steadily while we keep 256 KiB unsent still gets a Pong for every Ping', async (t) => {
  // Past 64 KiB unsent only the latest Ping is answered; before, its Pong waited for the
  // output to fall below that again, which a busy sender never lets happen (0 of 20 Pongs).
  const g = gatedServer();
  const ws = g.ws;
  const message = Buffer.alloc(8 * 1024, 1);
  const tokens: string[] = [];
  for (let round = 0; round < 1000; round++) {
    while (ws.unsentBytes < 256 * 1024) sendBinary(ws, message).catch(() => {});
    if (round % 50 === 0) {
      tokens.push(`ping ${round}`);
      g.duplex.push(peerPing(`ping ${round}`));
    }
    g.release(2); // the peer takes one message (header and payload) per round
    await tick();
  }
  const pongs = parseFrames(Buffer.concat(g.wire), true)
    .filter((f) => f.opcode === Opcode.Pong)
    .map((f) => f.data.toString());
  t.log(`${tokens.length} Pings while 256 KiB stayed unsent: ${pongs.length} Pongs reached the wire`);
  t.deepEqual(pongs, tokens.slice(0, pongs.length), 'in order, none twice');
  t.true(pongs.length >= tokens.length - 2, `${pongs.length} Pongs for ${tokens.length} Pings`);
  await g.end();
});

test('a Ping held back is not answered after a later Ping that was answered at once', async (t) => {
  const g = gatedServer();
  const ws = g.ws;
  for (let i = 0; i < 5; i++) sendBinary(ws, Buffer.alloc(20_000, i)).catch(() => {});
  await tick();
  t.true(ws.unsentBytes >= 64 * 1024);
  g.duplex.push(peerPing('A')); // held back: 100 KB wait
  await tick();
  g.release(6); // three of the five messages go: under 64 KiB wait now
  await tick();
  t.true(ws.unsentBytes < 64 * 1024);
  g.duplex.push(peerPing('B')); // answered at once, and it answers A too (RFC 6455 §5.5.3)
  await tick();
  for (let i = 0; i < 20; i++) {
    g.release();
    await tick();
  }
  const wire = parseFrames(Buffer.concat(g.wire)).map((f) => (f.opcode === Opcode.Pong ? `Pong ${f.data.toString()}` : `op ${f.opcode}`));
  t.deepEqual(wire, ['op 2', 'op 2', 'op 2', 'op 2', 'op 2', 'Pong B']);
  await g.end();
});

test('a send waiting for its bytes to go settles once they have, even if a Pong is written after them', async (t) => {
  // It used to wait for the write buffer to empty, then for a 'drain' that a stream emits
  // only after a write it refused: the Pong behind it kept the send pending for good.
  const g = gatedServer();
  const ws = g.ws;
  let state = 'pending';
  sendBinary(ws, Buffer.alloc(1448, 1)).then(
    () => (state = 'resolved'),
    (err: unknown) => (state = `rejected: ${String(err)}`)
  );
  g.release(2); // header and payload taken
  g.duplex.push(peerPing('hi'));
  for (let i = 0; i < 50 && state === 'pending'; i++) {
    await tick();
    g.release();
  }
  t.is(state, 'resolved');
  await g.end();
});
