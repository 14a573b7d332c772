/**
 * Frame-level interop with `ws` (8.x, with bufferutil), before wsframe has handshakes: the
 * upgrade is done by hand (test/helpers/upgrade.ts), then the raw socket is wrapped as an
 * `AsyncSocket`. (a) our client against a `ws` echo server; (b) our echo server against a
 * `ws` client.
 */
import test, { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { WebSocket, WebSocketServer, RawData } from 'ws';
import { AsyncSocket, Message, Opcode, readData, sendBinary, sendClose, sendFragmented, sendPing, sendText } from '../../src';
import { within } from '../helpers/socket-pair';
import { clientUpgrade, serverAccept, wrap } from '../helpers/upgrade';
import { listeningWsServer } from '../helpers/ws-server';
import { sha } from '../helpers/bytes';

function toBuffer(data: RawData): Buffer {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
}

// ---------------------------------------------------------------------------------------
// (a) our client ↔ ws server

async function wsEchoServer(t: ExecutionContext): Promise<{ port: number; wss: WebSocketServer; closes: Promise<[number, string]> }> {
  const wss = await listeningWsServer(t);
  let closed!: (v: [number, string]) => void;
  const closes = new Promise<[number, string]>((resolve) => (closed = resolve));
  wss.on('connection', (sock) => {
    sock.on('close', (code, reason) => closed([code, reason.toString()]));
    sock.on('pong', (data) => sock.send(`pong:${data.toString()}`));
    sock.on('message', (data, isBinary) => {
      const buf = toBuffer(data);
      if (!isBinary && buf.toString() === 'fragment me') {
        // A fragmented text message from ws, with a ping between its fragments.
        sock.send('abc', { fin: false });
        sock.ping('mid');
        sock.send('déf', { fin: true });
        return;
      }
      sock.send(buf, { binary: isBinary });
    });
  });
  return { port: (wss.address() as net.AddressInfo).port, wss, closes };
}

async function ourClient(t: ExecutionContext, port: number): Promise<{ ws: AsyncSocket; socket: net.Socket }> {
  const { socket, response } = await clientUpgrade(port);
  t.teardown(() => socket.destroy());
  return { ws: wrap(socket, 'client', response.head), socket };
}

async function echo(ws: AsyncSocket, send: Promise<void>): Promise<Message> {
  const [, m] = await within(Promise.all([send, readData(ws)]), 'the echo');
  return m;
}

test('our client ↔ ws server: text, binary (1 MiB), fragmented, ping/pong, ws pings, close', async (t) => {
  const { port, closes } = await wsEchoServer(t);
  const { ws, socket } = await ourClient(t, port);
  const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));

  t.deepEqual(await echo(ws, sendText(ws, 'hello, ws')), { opcode: Opcode.Text, data: Buffer.from('hello, ws') });
  t.deepEqual(await echo(ws, sendText(ws, '')), { opcode: Opcode.Text, data: Buffer.alloc(0) });

  const mib = randomBytes(1024 * 1024);
  const big = await echo(ws, sendBinary(ws, mib));
  t.is(big.opcode, Opcode.Binary);
  t.is(sha(big.data), sha(mib));

  const text = 'fragments: ü€😀 '.repeat(50);
  const frag = await echo(ws, sendFragmented(ws, Opcode.Text, text, 7));
  t.deepEqual(frag, { opcode: Opcode.Text, data: Buffer.from(text) });

  const bin = randomBytes(256 * 1024 + 3);
  const fragBin = await echo(ws, sendFragmented(ws, Opcode.Binary, bin, 16 * 1024));
  t.is(fragBin.opcode, Opcode.Binary);
  t.is(sha(fragBin.data), sha(bin));

  // Our ping: ws answers with a Pong carrying the same payload.
  t.deepEqual(await echo(ws, sendPing(ws, undefined, 'are you there').then(() => {})), {
    opcode: Opcode.Pong,
    data: Buffer.from('are you there')
  });

  // ws's fragmented message with its ping in between: we answer the ping (masked Pong, which
  // ws accepts and reports as 'pong'), and the message arrives whole.
  await sendText(ws, 'fragment me');
  t.deepEqual(await within(readData(ws), 'the ping'), { opcode: Opcode.Ping, data: Buffer.from('mid') });
  t.deepEqual(await within(readData(ws), 'the message'), { opcode: Opcode.Text, data: Buffer.from('abcdéf') });
  t.deepEqual(await within(readData(ws), "ws's pong report"), { opcode: Opcode.Text, data: Buffer.from('pong:mid') });

  // Close: ws echoes code and reason, then closes TCP; we close after it.
  await sendClose(ws, 1000, 'bye');
  const close = await within(readData(ws), 'the Close echo');
  t.is(close.opcode, Opcode.Close);
  t.is(close.data.readUInt16BE(0), 1000);
  t.deepEqual(await within(closes, "ws's close event"), [1000, 'bye']);
  await within(socketClosed, 'our socket to close');
});

test('our client ↔ ws server: ws closes first with 4001; we echo it', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  t.teardown(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  await within(new Promise<void>((resolve) => wss.once('listening', () => resolve())), 'the ws server');
  let serverClose!: (v: [number, string]) => void;
  const serverClosed = new Promise<[number, string]>((resolve) => (serverClose = resolve));
  wss.on('connection', (sock) => {
    sock.on('close', (code, reason) => serverClose([code, reason.toString()]));
    sock.send(Buffer.from([1, 2, 3]));
    sock.close(4001, 'server done');
  });
  const { ws, socket } = await ourClient(t, (wss.address() as net.AddressInfo).port);
  const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  t.deepEqual(await within(readData(ws), 'the message'), { opcode: Opcode.Binary, data: Buffer.from([1, 2, 3]) });
  const close = await within(readData(ws), 'the Close');
  t.is(close.opcode, Opcode.Close);
  t.is(close.data.readUInt16BE(0), 4001);
  t.is(close.data.subarray(2).toString(), 'server done');
  const [code] = await within(serverClosed, "ws's close event");
  t.is(code, 4001, 'ws received our echo of its code');
  await within(socketClosed, 'our socket to close');
});

// ---------------------------------------------------------------------------------------
// (b) ws client ↔ our server

interface OurServer {
  port: number;
  /** Resolves with what the echo loop saw, once it has ended. */
  seen: Promise<Message[]>;
  socketClosed: Promise<void>;
}

async function ourEchoServer(t: ExecutionContext): Promise<OurServer> {
  const server = net.createServer();
  const sockets: net.Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve())), 'listen');
  let connected!: (s: net.Socket) => void;
  const accepted = new Promise<net.Socket>((resolve) => (connected = resolve));
  server.once('connection', (s) => {
    sockets.push(s);
    connected(s);
  });
  const seen = accepted.then(async (socket) => {
    const request = await serverAccept(socket);
    const ws = wrap(socket, 'server', request.head);
    const log: Message[] = [];
    for (let i = 0; i < 1000; i++) {
      const m = await readData(ws);
      log.push({ opcode: m.opcode, data: Buffer.from(m.data) });
      if (m.opcode === Opcode.Text) await sendText(ws, m.data.toString());
      else if (m.opcode === Opcode.Binary) await sendBinary(ws, m.data);
      else if (m.opcode === Opcode.Close) break;
    }
    return log;
  });
  const socketClosed = accepted.then((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
  return { port: (server.address() as net.AddressInfo).port, seen, socketClosed };
}

/** Sequential access to a ws client's message events. */
function inbox(client: WebSocket): () => Promise<{ data: Buffer; isBinary: boolean }> {
  const queue: { data: Buffer; isBinary: boolean }[] = [];
  const waiters: ((m: { data: Buffer; isBinary: boolean }) => void)[] = [];
  client.on('message', (data, isBinary) => {
    const m = { data: toBuffer(data), isBinary };
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  return () => {
    const m = queue.shift();
    if (m) return Promise.resolve(m);
    return within(new Promise((resolve) => waiters.push(resolve)), 'a message at the ws client');
  };
}

test('ws client ↔ our server: text, binary, fragmented, pings (also between fragments), close 4000', async (t) => {
  const ours = await ourEchoServer(t);
  const client = new WebSocket(`ws://127.0.0.1:${ours.port}`);
  t.teardown(() => client.terminate());
  await within(new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve());
    client.once('error', reject);
  }), 'the ws client to open');
  const next = inbox(client);
  const pongs: string[] = [];
  client.on('pong', (data) => pongs.push(data.toString()));

  client.send('hello, wsframe');
  t.deepEqual(await next(), { data: Buffer.from('hello, wsframe'), isBinary: false });

  const mib = randomBytes(1024 * 1024);
  client.send(mib);
  const big = await next();
  t.true(big.isBinary);
  t.is(sha(big.data), sha(mib));

  // Fragmented text and binary (ws: send(..., { fin: false }) then the last part).
  client.send('part one, ', { fin: false });
  client.send('part twö, ', { fin: false });
  client.send('part three', { fin: true });
  t.deepEqual(await next(), { data: Buffer.from('part one, part twö, part three'), isBinary: false });
  const b1 = randomBytes(70_000);
  const b2 = randomBytes(5);
  client.send(b1, { binary: true, fin: false });
  client.send(b2, { binary: true, fin: true });
  const fragBin = await next();
  t.true(fragBin.isBinary);
  t.is(sha(fragBin.data), sha(Buffer.concat([b1, b2])));

  // Pings: answered by readData with the same payload.
  const pong1 = within(new Promise<Buffer>((resolve) => client.once('pong', resolve)), 'the pong');
  client.ping('heartbeat');
  t.is((await pong1).toString(), 'heartbeat');
  // A ping between fragments: answered, and the message still arrives whole.
  const pong2 = within(new Promise<Buffer>((resolve) => client.once('pong', resolve)), 'the second pong');
  client.send('x', { fin: false });
  client.ping('mid');
  client.send('y', { fin: true });
  t.is((await pong2).toString(), 'mid');
  t.deepEqual(await next(), { data: Buffer.from('xy'), isBinary: false });
  t.deepEqual(pongs, ['heartbeat', 'mid']);

  const closed = within(
    new Promise<[number, string]>((resolve) => client.once('close', (code, reason) => resolve([code, reason.toString()]))),
    'the ws client close event'
  );
  client.close(4000, 'done');
  const [code, reason] = await closed;
  t.is(code, 4000, 'our server echoed the code');
  t.is(reason, 'done', 'the reason is echoed too');

  const seen = await within(ours.seen, 'our echo loop to end');
  t.deepEqual(
    seen.map((m) => m.opcode),
    [Opcode.Text, Opcode.Binary, Opcode.Text, Opcode.Binary, Opcode.Ping, Opcode.Ping, Opcode.Text, Opcode.Close]
  );
  t.deepEqual(seen[7]!.data, Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from('done')]));
  await within(ours.socketClosed, 'our server socket to close');
});

test('ws client ↔ our server: the server closes first with 1001; ws echoes and we close TCP', async (t) => {
  const server = net.createServer();
  const sockets: net.Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve())), 'listen');
  const result = new Promise<Message[]>((resolve, reject) => {
    server.once('connection', (socket) => {
      sockets.push(socket);
      (async () => {
        const request = await serverAccept(socket);
        const ws = wrap(socket, 'server', request.head);
        await sendText(ws, 'welcome');
        await sendClose(ws, 1001, 'bye');
        const got: Message[] = [];
        for (let i = 0; i < 10; i++) {
          const m = await readData(ws);
          got.push({ opcode: m.opcode, data: Buffer.from(m.data) });
          if (m.opcode === Opcode.Close) break;
        }
        await new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r())));
        return got;
      })().then(resolve, reject);
    });
  });
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  t.teardown(() => client.terminate());
  const next = inbox(client);
  const closed = within(
    new Promise<[number, string]>((resolve) => client.once('close', (code, reason) => resolve([code, reason.toString()]))),
    'the ws client close event'
  );
  t.deepEqual(await next(), { data: Buffer.from('welcome'), isBinary: false });
  t.deepEqual(await closed, [1001, 'bye']);
  const got = await within(result, 'our server');
  t.is(got.length, 1);
  t.is(got[0]!.opcode, Opcode.Close);
  t.is(got[0]!.data.readUInt16BE(0), 1001, 'ws echoed our code');
});
