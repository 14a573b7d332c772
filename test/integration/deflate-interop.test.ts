/**
 * permessage-deflate interop with `ws` (8.x) in both roles: our connect() against a `ws`
 * WebSocketServer, and a `ws` client against our upgrade() server, each echoing. For each
 * parameter set: what was agreed (both ends must hold the same parameters), text and binary
 * messages from 0 B to 1 MiB both ways (compressible and random, several in a row so context
 * takeover is exercised), that compression really happened on the wire, and fragmented
 * compressed messages from `ws`. With deflate on one side only, everything goes uncompressed.
 * The parameter-set tests are serial: run all at once they only compete for the same two cores
 * (and the same zlib slots) and take longer.
 */
import test, { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { PerMessageDeflateOptions, RawData, WebSocket } from 'ws';
import { AsyncSocket, connect, DeflateOptions, DeflateParams, Fragment, listen, messages as iterate, Opcode, readData, readFragment, sendBinary, sendText } from '../../src';
import { within } from '../helpers/socket-pair';
import { Queue, echo, upgradeServer } from '../handshake/support';
import { listeningWsServer } from '../helpers/ws-server';
import { sha } from '../helpers/bytes';

const toBuffer = (d: RawData): Buffer => (Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d as ArrayBuffer));
const KiB = 1024;
const MiB = 1024 * 1024;
// Bound for one echo of up to 1 MiB, compressed both ways on a busy 2-core machine.
const SLOW = 15_000;

/** Compressible text: words, a little random, repeated with variation. */
function prose(size: number, seed: string): string {
  const words = ['deflate', 'window', 'context', 'takeover', 'frame', seed, 'message', 'ö', '€', '😀'];
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const w = words[(i * 7 + (i >> 3)) % words.length] + (i % 13 === 0 ? '\n' : ' ');
    parts.push(w);
    n += Buffer.byteLength(w);
  }
  // Cut to `size` bytes, dropping a character cut in two.
  return Buffer.from(parts.join('')).subarray(0, size).toString('utf8').replace(/\uFFFD+$/, '');
}

interface Outgoing {
  binary: boolean;
  data: Buffer;
  /** Compresses well: it must take far fewer bytes on the wire. */
  compressible: boolean;
}

function messages(seed: string): Outgoing[] {
  const text = (n: number): Outgoing => ({ binary: false, data: Buffer.from(prose(n, seed)), compressible: n >= 4 * KiB });
  return [
    { binary: false, data: Buffer.alloc(0), compressible: false },
    { binary: true, data: Buffer.alloc(0), compressible: false },
    text(1),
    text(1023),
    text(1024),
    { binary: true, data: randomBytes(1500), compressible: false },
    text(16 * KiB),
    text(16 * KiB), // the same again: with context takeover it refers back to the one before
    { binary: true, data: Buffer.alloc(64 * KiB, `${seed}-binary `), compressible: true },
    { binary: true, data: randomBytes(64 * KiB), compressible: false },
    text(MiB),
    { binary: true, data: randomBytes(MiB), compressible: false },
    { binary: true, data: Buffer.concat([randomBytes(300 * KiB), Buffer.alloc(724 * KiB, 7)]), compressible: true }
  ];
}

type WsParams = Record<string, number | true | undefined>;

/** The parameters `ws` holds for a connection (its own view of the negotiation). */
function wsParams(sock: WebSocket): WsParams | undefined {
  const ext = (sock as unknown as { _extensions: Record<string, { params: WsParams } | undefined> })._extensions;
  return ext['permessage-deflate']?.params;
}

/** ws's parameters written as ours: what both ends must agree on. */
function asOurs(p: WsParams): DeflateParams {
  const bits = (v: number | true | undefined): number => (typeof v === 'number' ? v : 15);
  return {
    serverNoContextTakeover: p.server_no_context_takeover === true,
    clientNoContextTakeover: p.client_no_context_takeover === true,
    serverMaxWindowBits: bits(p.server_max_window_bits),
    clientMaxWindowBits: bits(p.client_max_window_bits)
  };
}

/** Sends each message from our end and checks the echo; returns bytes written and read on the wire. */
async function exchange(t: ExecutionContext, ws: AsyncSocket, list: Outgoing[], label: string): Promise<void> {
  for (const m of list) {
    const socket = ws.socket as net.Socket;
    const written = socket.bytesWritten;
    const read = socket.bytesRead;
    const sending = m.binary ? sendBinary(ws, m.data) : sendText(ws, m.data.toString());
    const [, got] = await within(Promise.all([sending, readData(ws)]), `${label}: echo of ${m.data.length} bytes`, SLOW);
    t.is(got.opcode, m.binary ? Opcode.Binary : Opcode.Text, label);
    if (sha(got.data) !== sha(m.data)) t.fail(`${label}: the echo of ${m.data.length} bytes differs`);
    if (m.compressible && ws.deflate !== null) {
      // Compressed both ways: far fewer bytes than the message on the wire.
      const out = socket.bytesWritten - written;
      const back = socket.bytesRead - read;
      t.true(out < m.data.length / 3, `${label}: ${out} bytes written for ${m.data.length}`);
      t.true(back < m.data.length / 3, `${label}: ${back} bytes read for ${m.data.length}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Our client against a ws server

async function wsServer(t: ExecutionContext, perMessageDeflate: PerMessageDeflateOptions | false): Promise<{ port: number; agreed: Queue<WsParams | undefined> }> {
  const wss = await listeningWsServer(t, { perMessageDeflate });
  const agreed = new Queue<WsParams | undefined>();
  wss.on('connection', (sock) => {
    agreed.push(wsParams(sock));
    sock.on('message', (data, isBinary) => {
      const buf = toBuffer(data);
      const cmd = /^fragments:(\d+):(\d+)$/.exec(isBinary ? '' : buf.toString());
      if (cmd !== null) {
        // A compressed message in `count` fragments of `size` bytes, sent with fin: false.
        const [count, size] = [Number(cmd[1]), Number(cmd[2])];
        for (let i = 0; i < count; i++) sock.send(Buffer.from(prose(size, `part${i}`)), { fin: i === count - 1, binary: false });
        return;
      }
      sock.send(buf, { binary: isBinary });
    });
  });
  return { port: (wss.address() as net.AddressInfo).port, agreed };
}

// [label, ws server options, our client options]
const CLIENT_SETS: Array<[string, PerMessageDeflateOptions, DeflateOptions]> = [
  ['defaults', {}, {}],
  ['threshold 0 both ends', { threshold: 0 }, { threshold: 0 }],
  ['we ask server_no_context_takeover', { threshold: 0 }, { serverNoContextTakeover: true, threshold: 0 }],
  ['we ask client_no_context_takeover', { threshold: 0 }, { clientNoContextTakeover: true, threshold: 0 }],
  ['we ask server_max_window_bits=9', { threshold: 0 }, { serverMaxWindowBits: 9 }],
  ['we offer client_max_window_bits=10', { threshold: 0 }, { clientMaxWindowBits: 10 }],
  ['ws limits itself to 10 bits and us to 9', { serverMaxWindowBits: 10, clientMaxWindowBits: 9, threshold: 0 }, {}],
  ['ws drops both contexts', { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 }, {}],
  ['8-bit windows both ways', { serverMaxWindowBits: 8, clientMaxWindowBits: 8, threshold: 0 }, { threshold: 0 }],
  ['everything at once', { threshold: 0 }, { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 11, clientMaxWindowBits: 12, level: 9, memLevel: 9 }]
];

for (const [label, wsOptions, ours] of CLIENT_SETS) {
  test.serial(`our client ↔ ws server, ${label}`, async (t) => {
    const { port, agreed } = await wsServer(t, wsOptions);
    const ws = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: ours });
    t.teardown(() => ws.destroy());
    const theirs = await agreed.next('the ws connection');
    t.not(ws.deflate, null);
    t.not(theirs, undefined);
    t.deepEqual(ws.deflate!.params, asOurs(theirs!), JSON.stringify(theirs));
    await exchange(t, ws, messages(label), label);
  });
}

test('our client ↔ ws server: fragmented compressed messages from ws, read whole and piece by piece', async (t) => {
  for (const options of [{ threshold: 0 }, { threshold: 0, serverNoContextTakeover: true }]) {
    const { port } = await wsServer(t, options);
    const ws = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true });
    t.teardown(() => ws.destroy());
    for (const [count, size] of [
      [2, 5],
      [3, 1000],
      [5, 40 * KiB],
      [2, 300 * KiB]
    ] as const) {
      const want = Array.from({ length: count }, (_, i) => prose(size, `part${i}`)).join('');
      await sendText(ws, `fragments:${count}:${size}`);
      const whole = await within(readData(ws), 'the fragmented message');
      t.deepEqual([whole.opcode, sha(whole.data)], [Opcode.Text, sha(Buffer.from(want))], `${count} x ${size}`);
      await sendText(ws, `fragments:${count}:${size}`);
      const pieces: Fragment[] = [];
      do pieces.push(await within(readFragment(ws), 'a fragment'));
      while (!pieces[pieces.length - 1]!.fin);
      t.is(pieces.length, count, `${count} x ${size}: one piece per frame`);
      t.is(Buffer.concat(pieces.map((p) => p.data)).toString(), want);
    }
    // ws compressed them: the 600 KiB message arrived in far fewer bytes.
    const socket = ws.socket as net.Socket;
    const before = socket.bytesRead;
    await sendText(ws, 'fragments:2:307200');
    await readData(ws);
    t.true(socket.bytesRead - before < 100 * KiB, `${socket.bytesRead - before} bytes read`);
  }
});

test('our client with deflate off ↔ ws server with it on: no extension, everything uncompressed', async (t) => {
  const { port, agreed } = await wsServer(t, { threshold: 0 });
  const ws = await connect(`ws://127.0.0.1:${port}/`);
  t.teardown(() => ws.destroy());
  t.is(await agreed.next(), undefined);
  t.is(ws.deflate, null);
  await exchange(t, ws, messages('off'), 'off');
  const socket = ws.socket as net.Socket;
  const before = socket.bytesWritten;
  await sendText(ws, 'x'.repeat(100 * KiB));
  await readData(ws);
  t.true(socket.bytesWritten - before > 100 * KiB, 'sent uncompressed');
});

// ---------------------------------------------------------------------------------------
// A ws client against our server

class WsClient {
  readonly ws: WebSocket;
  readonly messages = new Queue<{ data: Buffer; binary: boolean }>();
  readonly opened: Promise<void>;

  constructor(t: ExecutionContext, port: number, perMessageDeflate: PerMessageDeflateOptions | false) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate });
    t.teardown(() => this.ws.terminate());
    this.ws.on('message', (data, binary) => this.messages.push({ data: toBuffer(data), binary }));
    this.opened = within(
      new Promise((resolve, reject) => {
        this.ws.once('open', () => resolve());
        this.ws.once('error', reject);
      }),
      'the ws client to open'
    );
  }

  /** Sends each message and checks its echo; returns the bytes ws's socket wrote and read. */
  async exchange(t: ExecutionContext, list: Outgoing[], label: string): Promise<void> {
    const socket = (this.ws as unknown as { _socket: net.Socket })._socket;
    for (const m of list) {
      const written = socket.bytesWritten;
      const read = socket.bytesRead;
      this.ws.send(m.data, { binary: m.binary });
      const got = await this.messages.next(`${label}: echo of ${m.data.length} bytes`, SLOW);
      t.is(got.binary, m.binary, label);
      if (sha(got.data) !== sha(m.data)) t.fail(`${label}: the echo of ${m.data.length} bytes differs`);
      if (m.compressible && this.ws.extensions !== '') {
        t.true(socket.bytesWritten - written < m.data.length / 3, `${label}: ws wrote ${socket.bytesWritten - written}`);
        t.true(socket.bytesRead - read < m.data.length / 3, `${label}: ws read ${socket.bytesRead - read}`);
      }
    }
  }
}

// [label, ws client options, our server options]
const SERVER_SETS: Array<[string, PerMessageDeflateOptions, DeflateOptions | true]> = [
  ['defaults', {}, true],
  ['threshold 0 both ends', { threshold: 0 }, { threshold: 0 }],
  ['ws asks server_no_context_takeover', { serverNoContextTakeover: true, threshold: 0 }, { threshold: 0 }],
  ['ws asks client_no_context_takeover', { clientNoContextTakeover: true, threshold: 0 }, { threshold: 0 }],
  ['ws asks server_max_window_bits=9', { serverMaxWindowBits: 9, threshold: 0 }, { threshold: 0 }],
  ['ws asks server_max_window_bits=10', { serverMaxWindowBits: 10, threshold: 0 }, {}],
  ['ws offers client_max_window_bits=9', { clientMaxWindowBits: 9, threshold: 0 }, { threshold: 0 }],
  ['we drop our context and limit ws to 10 bits', { threshold: 0 }, { serverNoContextTakeover: true, clientMaxWindowBits: 10, threshold: 0 }],
  ['we limit ourselves to 9 bits and ws to 9', { threshold: 0 }, { serverMaxWindowBits: 9, clientMaxWindowBits: 9, threshold: 0 }],
  ['we require client_no_context_takeover', { threshold: 0 }, { clientNoContextTakeover: true, threshold: 0 }],
  ['8-bit windows both ways', { serverMaxWindowBits: 8, clientMaxWindowBits: 8, threshold: 0 }, { threshold: 0 }]
];

for (const [label, wsOptions, ours] of SERVER_SETS) {
  test.serial(`ws client ↔ our server, ${label}`, async (t) => {
    const srv = await upgradeServer(t, { perMessageDeflate: ours });
    const client = new WsClient(t, srv.port, wsOptions);
    const server = await srv.nextSocket();
    await client.opened;
    t.not(server.deflate, null);
    const theirs = wsParams(client.ws);
    t.not(theirs, undefined);
    t.deepEqual(server.deflate!.params, asOurs(theirs!), JSON.stringify(theirs));
    const echoing = echo(server).catch(() => undefined);
    await client.exchange(t, messages(label), label);
    // A fragmented compressed message from ws (fin: false), echoed whole.
    const parts = [prose(3000, 'a'), prose(5, 'b'), prose(70_000, 'c')];
    parts.forEach((p, i) => client.ws.send(p, { fin: i === parts.length - 1 }));
    const whole = await client.messages.next('the fragmented echo');
    t.is(whole.data.toString(), parts.join(''));
    client.ws.close(1000);
    await within(echoing, 'the echo loop to end');
  });
}

test('ws client with deflate on ↔ our server with it off: no extension, everything uncompressed', async (t) => {
  const srv = await upgradeServer(t, {});
  const client = new WsClient(t, srv.port, { threshold: 0 });
  const server = await srv.nextSocket();
  await client.opened;
  t.is(client.ws.extensions, '');
  t.is(server.deflate, null);
  void echo(server).catch(() => undefined);
  await client.exchange(t, messages('off'), 'off');
  const parts = ['frag', 'mented'];
  parts.forEach((p, i) => client.ws.send(p, { fin: i === 1 }));
  t.is((await client.messages.next()).data.toString(), 'fragmented');
});

test('ws client ↔ our server: readFragment hands out the inflated pieces of a fragmented ws message', async (t) => {
  const srv = await upgradeServer(t, { perMessageDeflate: true });
  const client = new WsClient(t, srv.port, { threshold: 0 });
  const server = await srv.nextSocket();
  await client.opened;
  const parts = [prose(20_000, 'x'), prose(1, 'y'), prose(50_000, 'z')];
  parts.forEach((p, i) => client.ws.send(p, { fin: i === parts.length - 1 }));
  const pieces: Fragment[] = [];
  do pieces.push(await within(readFragment(server), 'a fragment'));
  while (!pieces[pieces.length - 1]!.fin);
  t.deepEqual(pieces.map((p) => p.data.toString()), parts);
  t.deepEqual(pieces.map((p) => p.opcode), [Opcode.Text, Opcode.Text, Opcode.Text]);
});

// ---------------------------------------------------------------------------------------
// Issue 23: a message that compresses far better than ordinary data is still a valid
// message. 16 MiB whose byte i is i mod 251 compresses about 250x; with every option at its
// default both ways, it is echoed intact.

const pattern = (): Buffer => {
  const b = Buffer.allocUnsafe(16 * MiB);
  for (let i = 0; i < b.length; i++) b[i] = i % 251;
  return b;
};

test.serial('ws client ↔ our listen() server, defaults: the 16 MiB message that compresses 250x is echoed intact', async (t) => {
  t.timeout(60_000);
  const server = await listen({ host: '127.0.0.1', port: 0, perMessageDeflate: true }, async (ws) => {
    for await (const m of iterate(ws)) await (m.opcode === Opcode.Text ? sendText(ws, m.data.toString()) : sendBinary(ws, m.data));
  });
  t.teardown(() => server.close());
  const data = pattern();
  const client = new WsClient(t, server.port, {});
  await client.opened;
  t.regex(client.ws.extensions, /^permessage-deflate/);
  const socket = (client.ws as unknown as { _socket: net.Socket })._socket;
  client.ws.send(data, { binary: true });
  const got = await client.messages.next('the echo of 16 MiB', 30_000);
  t.true(got.binary);
  t.is(sha(got.data), sha(data));
  t.true(socket.bytesWritten < data.length / 100, `${socket.bytesWritten} bytes on the wire`);
  t.log(`16 MiB from ws in ${socket.bytesWritten} bytes on the wire, echoed intact`);
});

test.serial('our client ↔ ws server, defaults: the 16 MiB message that compresses 250x is echoed intact', async (t) => {
  t.timeout(60_000);
  const { port } = await wsServer(t, {});
  const ws = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true });
  t.teardown(() => ws.destroy());
  const data = pattern();
  const socket = ws.socket as net.Socket;
  await sendBinary(ws, data);
  const got = await within(readData(ws), 'the echo of 16 MiB', 30_000);
  t.is(got.opcode, Opcode.Binary);
  t.is(sha(got.data), sha(data));
  t.true(socket.bytesRead < data.length / 100, `${socket.bytesRead} bytes on the wire`);
});
