/**
 * permessage-deflate (RFC 7692) on the wire, over loopback.
 *
 * - The examples of §7.2.3 byte for byte after real handshakes that negotiated deflate: a
 *   raw client against our `upgrade()` server and a raw server against our `connect()`
 *   client; what we read from their bytes, and exactly what we send.
 * - The frame rules of §6: RSV1 only on the first frame of a data message, 1007 for data that
 *   does not inflate or inflates to invalid UTF-8, readFragment and recvFrame on compressed
 *   messages, a Ping between compressed fragments.
 * - Round trips between our own client and server, and a compressed message that still goes
 *   out although the peer's Close is read while it is being compressed (§5.5.1).
 * - The zlib contexts: freed on close, pending work rejected with IOError, and never more
 *   than DEFLATE_CONCURRENCY zlib jobs at once in the process.
 */
import test, { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';
import { AsyncSocket, close, connect, DEFLATE_CONCURRENCY, DeflateOptions, DeflateParams, DeflateSettings, encodeClosePayload, Fragment, HandshakeError, InvalidUtf8Error, IOError, makeFrame, Opcode, PerMessageDeflate, ProtocolError, ProtocolErrorCode, readData, readFragment, recvFrame, sendBinary, sendClose, sendFragmented, sendText, whenClosed } from '../../src';
import { deflateLoad } from '../../src/compression/zlib-jobs';
import { Collector, RawFrame, delay, pair, rawPair, until, within } from '../helpers/socket-pair';
import { readHttpHead } from '../helpers/upgrade';
import { GOOD, rawServer, request, upgradeServer, write101 } from '../handshake/support';
import { hex, sha } from '../helpers/bytes';

const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

const PARAMS: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15
};

/**
 * A frame from the RFC's bytes (header byte, then the payload), masked with KEY when the
 * sender is a client.
 */
function wire(b0: number, payload: Buffer, masked: boolean): Buffer {
  return makeFrame(
    {
      fin: (b0 & 0x80) !== 0,
      rsv1: (b0 & 0x40) !== 0,
      rsv2: (b0 & 0x20) !== 0,
      rsv3: (b0 & 0x10) !== 0,
      masked,
      opcode: (b0 & 0x0f) as Opcode,
      data: payload
    },
    KEY
  );
}

/** `data` deflated as one message of §7.2.1: a sync flush without its 00 00 ff ff tail. */
function compress(data: string | Buffer, windowBits = 15): Buffer {
  const out = zlib.deflateRawSync(data, { windowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  if (!out.subarray(-4).equals(hex('0000ffff'))) throw new Error('no sync flush tail');
  return out.subarray(0, out.length - 4);
}

// ---------------------------------------------------------------------------------------
// Peers: a raw client after a real handshake with our upgrade(); a raw server after a real
// handshake with our connect().

interface RawPeer {
  /** Our end. */
  ws: AsyncSocket;
  /** The raw peer's socket and what it received. */
  socket: net.Socket;
  peer: Collector;
  /** The Sec-WebSocket-Extensions value of the 101 (our server) or of the request (our client). */
  extensions: string | undefined;
  /** True when the raw peer is the client (its frames must be masked). */
  peerMasks: boolean;
}

/** Our upgrade() server with `options`, and a raw client that offered `offer`. */
async function ourServer(t: ExecutionContext, offer: string | null, options: boolean | DeflateOptions = { threshold: 0 }): Promise<RawPeer> {
  const srv = await upgradeServer(t, { perMessageDeflate: options });
  const socket = net.connect({ host: '127.0.0.1', port: srv.port });
  t.teardown(() => socket.destroy());
  await within(new Promise<void>((resolve) => socket.once('connect', () => resolve())), 'connect');
  socket.write(request(offer === null ? GOOD : [...GOOD, `Sec-WebSocket-Extensions: ${offer}`]));
  const head = await readHttpHead(socket);
  t.regex(head.startLine, /^HTTP\/1\.1 101 /);
  const ws = await srv.nextSocket();
  const peer = new Collector(socket);
  if (head.head.length > 0) peer.chunks.push(head.head);
  socket.resume();
  return { ws, socket, peer, extensions: head.headers['sec-websocket-extensions'], peerMasks: true };
}

/** Our connect() client with `options`, and a raw server that answers `response`. */
async function ourClient(t: ExecutionContext, response: string | null, options: boolean | DeflateOptions = { threshold: 0 }): Promise<RawPeer> {
  let gotSocket!: (v: [net.Socket, string | undefined]) => void;
  const accepted = new Promise<[net.Socket, string | undefined]>((resolve) => (gotSocket = resolve));
  const { port } = await rawServer(t, (socket, req) => {
    write101(socket, req, response === null ? [] : [`Sec-WebSocket-Extensions: ${response}`]);
    gotSocket([socket, req.headers['sec-websocket-extensions']]);
  });
  const ws = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: options });
  t.teardown(() => ws.destroy());
  const [socket, offered] = await within(accepted, 'the raw server to accept');
  const peer = new Collector(socket);
  socket.resume();
  return { ws, socket, peer, extensions: offered, peerMasks: false };
}

const ROLES: Array<['server' | 'client', typeof ourServer]> = [
  ['server', ourServer],
  ['client', ourClient]
];

/** The frames our end sent, as the raw peer parsed them (payloads unmasked). */
async function framesFrom(p: RawPeer, n: number): Promise<RawFrame[]> {
  const frames = await p.peer.waitFrames(n);
  for (const f of frames) if (f.masked !== !p.peerMasks) throw new Error(`frame masked=${f.masked} from ${p.peerMasks ? 'a server' : 'a client'}`);
  return frames;
}

/** Asserts that `f` carries exactly this header byte and payload (masked frames compared unmasked). */
function sameFrame(t: ExecutionContext, f: RawFrame | undefined, b0: number, payload: string, what: string): void {
  if (f === undefined) return void t.fail(`${what}: no frame`);
  t.is(f.wire[0], b0, `${what}: first byte`);
  t.is(f.data.toString('hex'), payload.replace(/\s+/g, ''), `${what}: payload`);
}

// ---------------------------------------------------------------------------------------
// RFC 7692 §7.2.3: the examples, both roles

const HELLO = 'f2 48 cd c9 c9 07 00'; // §7.2.3.1
const HELLO_AGAIN = 'f2 00 11 00 00'; // §7.2.3.2, the same "Hello" with the window taken over

test('the handshakes negotiate permessage-deflate (the offer and the answer on the wire)', async (t) => {
  const s = await ourServer(t, 'permessage-deflate; client_max_window_bits');
  t.is(s.extensions, 'permessage-deflate');
  t.deepEqual(s.ws.deflate?.params, PARAMS);
  const c = await ourClient(t, 'permessage-deflate');
  t.is(c.extensions, 'permessage-deflate; client_max_window_bits');
  t.deepEqual(c.ws.deflate?.params, PARAMS);
  // Off on either side: no extension, and ws.deflate is null.
  const off = await ourServer(t, null);
  t.is(off.extensions, undefined);
  t.is(off.ws.deflate, null);
  const noOffer = await ourClient(t, null);
  t.is(noOffer.ws.deflate, null);
});

for (const [role, open] of ROLES) {
  test(`${role}: §7.2.3.1 "Hello" is sent as c1 07 ${HELLO}; §7.2.3.2 the second as c1 05 ${HELLO_AGAIN}`, async (t) => {
    const p = await open(t, 'permessage-deflate');
    await sendText(p.ws, 'Hello');
    await sendText(p.ws, 'Hello');
    const [a, b] = await framesFrom(p, 2);
    sameFrame(t, a, 0xc1, HELLO, 'first');
    sameFrame(t, b, 0xc1, HELLO_AGAIN, 'second');
    if (role === 'server') {
      t.deepEqual(a!.wire, hex(`c1 07 ${HELLO}`));
      t.deepEqual(b!.wire, hex(`c1 05 ${HELLO_AGAIN}`));
    } else {
      t.is(a!.wire[1], 0x87);
      t.is(b!.wire[1], 0x85);
    }
  });

  test(`${role}: without context takeover each "Hello" is sent as c1 07 ${HELLO} (§7.2.3.2)`, async (t) => {
    // The server is asked by the client's offer; the client is told by the server's answer.
    const p =
      role === 'server'
        ? await open(t, 'permessage-deflate; server_no_context_takeover')
        : await open(t, 'permessage-deflate; client_no_context_takeover');
    if (role === 'server') t.is(p.extensions, 'permessage-deflate; server_no_context_takeover');
    t.true(role === 'server' ? p.ws.deflate!.params.serverNoContextTakeover : p.ws.deflate!.params.clientNoContextTakeover);
    for (let i = 0; i < 3; i++) await sendText(p.ws, 'Hello');
    const frames = await framesFrom(p, 3);
    for (const [i, f] of frames.entries()) sameFrame(t, f, 0xc1, HELLO, `message ${i}`);
  });

  test(`${role}: reads each §7.2.3 example, then a message after it`, async (t) => {
    const p = await open(t, 'permessage-deflate');
    const m = p.peerMasks;
    const examples: Array<[string, Buffer[], string]> = [
      ['7.2.3.1 one frame', [wire(0xc1, hex(HELLO), m)], 'Hello'],
      ['7.2.3.2 window taken over', [wire(0xc1, hex(HELLO_AGAIN), m)], 'Hello'],
      ['7.2.3.1 fragmented', [wire(0x41, hex('f2 48 cd'), m), wire(0x80, hex('c9 c9 07 00'), m)], 'Hello'],
      ['7.2.3.3 no compression', [wire(0xc1, hex('00 05 00 fa ff 48 65 6c 6c 6f 00'), m)], 'Hello'],
      ['7.2.3.4 BFINAL', [wire(0xc1, hex('f3 48 cd c9 c9 07 00 00'), m)], 'Hello'],
      ['7.2.3.1 after BFINAL (a new deflate stream)', [wire(0xc1, hex(HELLO), m)], 'Hello'],
      ['7.2.3.5 two DEFLATE blocks', [wire(0xc1, hex('f2 48 05 00 00 00 ff ff ca c9 c9 07 00'), m)], 'Hello'],
      ['7.2.3.6 an empty message: one 00 octet', [wire(0xc1, hex('00'), m)], ''],
      ['7.2.3.6 an empty last fragment', [wire(0x41, hex(`${HELLO} 00 00 ff ff`), m), wire(0x80, hex('00'), m)], 'Hello'],
      ['7.2.3.4 BFINAL again', [wire(0xc1, hex('f3 48 cd c9 c9 07 00 00'), m)], 'Hello'],
      ['an empty first fragment with RSV1', [wire(0x41, Buffer.alloc(0), m), wire(0x80, hex(HELLO), m)], 'Hello'],
      // §7.2.1: "The next DEFLATE block follows the padded data": blocks after one with BFINAL
      // (a sender that finishes its stream and resets it) are more of the same message.
      ['§7.2.1 a block after a BFINAL block', [wire(0xc1, hex(`f3 48 cd c9 c9 07 00 ${HELLO}`), m)], 'HelloHello'],
      ['§7.2.1 a block after a BFINAL block, next frame', [wire(0x41, hex('f3 48 cd c9 c9 07 00'), m), wire(0x80, hex(HELLO), m)], 'HelloHello'],
      ['§7.2.3.4 BFINAL, then an empty last frame', [wire(0x41, hex('f3 48 cd c9 c9 07 00 00'), m), wire(0x80, Buffer.alloc(0), m)], 'Hello'],
      ['a BFINAL block without the trailing 00', [wire(0xc1, hex('f3 48 cd c9 c9 07 00'), m)], 'Hello'],
      ['7.2.3.1 after all that', [wire(0xc1, hex(HELLO), m)], 'Hello']
    ];
    // One at a time, then all in one TCP write (each message's inflation must not leak into
    // the next one's, however the bytes arrive).
    for (const [what, frames, text] of examples) {
      for (const f of frames) p.socket.write(f);
      const got = await within(readData(p.ws), what);
      t.deepEqual([got.opcode, got.data.toString()], [Opcode.Text, text], what);
    }
    p.socket.write(Buffer.concat([...examples.flatMap(([, frames]) => frames), wire(0x81, Buffer.from('plain'), m)]));
    for (const [what, , text] of examples) {
      const got = await within(readData(p.ws), what);
      t.deepEqual([got.opcode, got.data.toString()], [Opcode.Text, text], `${what}, all in one write`);
    }
    const plain = await readData(p.ws);
    t.deepEqual([plain.opcode, plain.data.toString()], [Opcode.Text, 'plain']);
  });

  test(`${role}: the §7.2.3.2 second message needs the first one's window (no reset between messages)`, async (t) => {
    const p = await open(t, 'permessage-deflate');
    p.socket.write(Buffer.concat([wire(0xc1, hex(HELLO), p.peerMasks), wire(0xc1, hex(HELLO_AGAIN), p.peerMasks)]));
    t.is((await readData(p.ws)).data.toString(), 'Hello');
    t.is((await readData(p.ws)).data.toString(), 'Hello');
  });

  test(`${role}: with the peer's no context takeover, its window is reset after each message`, async (t) => {
    // The peer promised not to take its window over: each message is inflated on its own.
    // (A message that does refer back then fails: proof the window was dropped.)
    const p =
      role === 'server'
        ? await open(t, 'permessage-deflate; client_no_context_takeover')
        : await open(t, 'permessage-deflate; server_no_context_takeover');
    p.socket.write(Buffer.concat([wire(0xc1, hex(HELLO), p.peerMasks), wire(0xc1, hex(HELLO), p.peerMasks)]));
    t.is((await readData(p.ws)).data.toString(), 'Hello');
    t.is((await readData(p.ws)).data.toString(), 'Hello');
    p.socket.write(wire(0xc1, hex(HELLO_AGAIN), p.peerMasks));
    const err = await t.throwsAsync(readData(p.ws), { instanceOf: ProtocolError });
    t.is(err?.closeCode, 1007);
  });
}

// Frames received before TCP closed are still read, and a compressed one must still inflate:
// the decompressor is freed only once they are read (a server's goodbye before it closes TCP).
// (Our server's socket stays half-open after the client's FIN, so this shows on the client.)
test('client: a compressed message received just before the server closed TCP is still read', async (t) => {
  const p = await ourClient(t, 'permessage-deflate');
  p.socket.end(Buffer.concat([wire(0xc1, hex(HELLO), false), wire(0x88, hex('03e8'), false)]));
  await until(() => p.ws.socket.destroyed, 'our socket to close');
  await delay(20);
  const m = await within(readData(p.ws), 'the last message');
  t.deepEqual([m.opcode, m.data.toString()], [Opcode.Text, 'Hello']);
  t.is((await within(readData(p.ws), 'the Close')).opcode, Opcode.Close);
});

// ---------------------------------------------------------------------------------------
// §6 frame rules, with a raw peer on one side of a socket pair and our end set up as if the
// handshake had agreed on deflate.

async function fails(
  t: ExecutionContext,
  read: Promise<unknown>,
  peer: Collector,
  cls: typeof ProtocolError,
  code: ProtocolErrorCode,
  closeCode: number
): Promise<void> {
  const err = await t.throwsAsync(within(read, 'the read to fail'), { instanceOf: cls });
  t.is(err?.code, code);
  t.is(err?.closeCode, closeCode);
  await peer.waitEnd();
  const frames = peer.bytes.length > 0 ? await peer.waitFrames(1) : [];
  const closeFrame = frames.find((f) => f.opcode === Opcode.Close);
  t.is(closeFrame?.data.readUInt16BE(0), closeCode, 'the Close frame the peer got');
}

for (const role of ['server', 'client'] as const) {
  const masked = role === 'server'; // the raw peer masks when it plays the client
  test(`${role}: RSV1 on a control frame fails with 1002`, async (t) => {
    const p = await rawPair(t, role, { deflate: { ...PARAMS } });
    p.raw.write(wire(0xc9, Buffer.from('x'), masked)); // Ping with RSV1
    await fails(t, readData(p.ws), p.peer, ProtocolError, 'WS_ERR_UNEXPECTED_RSV', 1002);
  });

  test(`${role}: RSV1 on a continuation frame fails with 1002, compressed message or not`, async (t) => {
    const p = await rawPair(t, role, { deflate: { ...PARAMS } });
    p.raw.write(Buffer.concat([wire(0x41, hex('f2 48 cd'), masked), wire(0xc0, hex('c9 c9 07 00'), masked)]));
    await fails(t, readData(p.ws), p.peer, ProtocolError, 'WS_ERR_UNEXPECTED_RSV', 1002);
    const q = await rawPair(t, role, { deflate: { ...PARAMS } });
    q.raw.write(Buffer.concat([wire(0x01, Buffer.from('He'), masked), wire(0xc0, Buffer.from('llo'), masked)]));
    await fails(t, readData(q.ws), q.peer, ProtocolError, 'WS_ERR_UNEXPECTED_RSV', 1002);
  });

  test(`${role}: RSV1 without permessage-deflate fails with 1002`, async (t) => {
    const p = await rawPair(t, role);
    p.raw.write(wire(0xc1, hex(HELLO), masked));
    await fails(t, readData(p.ws), p.peer, ProtocolError, 'WS_ERR_UNEXPECTED_RSV', 1002);
    const q = await rawPair(t, role);
    q.raw.write(wire(0xc1, hex(HELLO), masked));
    await fails(t, recvFrame(q.ws), q.peer, ProtocolError, 'WS_ERR_UNEXPECTED_RSV', 1002);
  });

  test(`${role}: data that does not inflate fails with 1007`, async (t) => {
    // ff: BFINAL 1, BTYPE 11 (reserved): "invalid block type".
    const p = await rawPair(t, role, { deflate: { ...PARAMS } });
    p.raw.write(wire(0xc2, hex('ff ff ff ff'), masked));
    await fails(t, readData(p.ws), p.peer, ProtocolError, 'WS_ERR_INVALID_COMPRESSED_DATA', 1007);
    // A back-reference before the start of the stream, in the second fragment.
    const q = await rawPair(t, role, { deflate: { ...PARAMS } });
    q.raw.write(Buffer.concat([wire(0x42, hex('f2 48 cd'), masked), wire(0x80, hex('f2 00 11 00 00'), masked)]));
    await fails(t, readData(q.ws), q.peer, ProtocolError, 'WS_ERR_INVALID_COMPRESSED_DATA', 1007);
    // The same through readFragment.
    const r = await rawPair(t, role, { deflate: { ...PARAMS } });
    r.raw.write(wire(0xc1, hex('ff ff ff ff'), masked));
    await fails(t, readFragment(r.ws), r.peer, ProtocolError, 'WS_ERR_INVALID_COMPRESSED_DATA', 1007);
  });

  test(`${role}: compressed text that inflates to invalid UTF-8 fails with 1007`, async (t) => {
    const bad = Buffer.concat([Buffer.from('valid text, then '), Buffer.from([0xc3, 0x28]), Buffer.from(' and more')]);
    const p = await rawPair(t, role, { deflate: { ...PARAMS } });
    p.raw.write(wire(0xc1, compress(bad), masked));
    await fails(t, readData(p.ws), p.peer, InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);
    // Split between fragments: the first piece is fine, the second breaks the character.
    const r = await rawPair(t, role, { deflate: { ...PARAMS } });
    const stream = compress(Buffer.concat([Buffer.from('abc'), Buffer.from([0xe2, 0x82]), Buffer.from('x')]));
    r.raw.write(Buffer.concat([wire(0x41, stream.subarray(0, 3), masked), wire(0x80, stream.subarray(3), masked)]));
    await fails(t, readFragment(r.ws).then(() => readFragment(r.ws)), r.peer, InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);
    // Valid text split mid-character across compressed fragments is fine.
    const s = await rawPair(t, role, { deflate: { ...PARAMS } });
    const euro = compress('price: 5€ each');
    s.raw.write(Buffer.concat([wire(0x41, euro.subarray(0, 5), masked), wire(0x80, euro.subarray(5), masked)]));
    t.is((await readData(s.ws)).data.toString(), 'price: 5€ each');
  });

  test(`${role}: a compressed message with no payload at all fails with 1007 (it is not DEFLATE data)`, async (t) => {
    // Empty + 00 00 ff ff leaves zlib inside a stored-block header: taken as an empty message,
    // the next message's first bytes would complete that header and the rest come out raw.
    const p = await rawPair(t, role, { deflate: { ...PARAMS } });
    p.raw.write(Buffer.concat([wire(0xc1, Buffer.alloc(0), masked), wire(0xc1, hex('00 05 00 fa ff 48 65 6c 6c 6f 00'), masked)]));
    await fails(t, readData(p.ws), p.peer, ProtocolError, 'WS_ERR_INVALID_COMPRESSED_DATA', 1007);
    // Fragments that are all empty, through readFragment.
    const q = await rawPair(t, role, { deflate: { ...PARAMS } });
    q.raw.write(Buffer.concat([wire(0x42, Buffer.alloc(0), masked), wire(0x00, Buffer.alloc(0), masked), wire(0x80, Buffer.alloc(0), masked)]));
    const parts = [await readFragment(q.ws), await readFragment(q.ws)];
    t.deepEqual(parts.map((f) => [f.opcode, f.data.length, f.fin]), [[Opcode.Binary, 0, false], [Opcode.Binary, 0, false]]);
    await fails(t, readFragment(q.ws), q.peer, ProtocolError, 'WS_ERR_INVALID_COMPRESSED_DATA', 1007);
  });

  test(`${role}: readFragment hands out the inflated pieces of a compressed fragmented message`, async (t) => {
    const p = await rawPair(t, role, { deflate: { ...PARAMS } });
    // Mostly incompressible, so every third of the stream inflates to bytes of its own.
    const text = randomBytes(30_000).toString('base64') + ' and the end.'.repeat(100);
    const stream = compress(text);
    const cuts = [0, Math.floor(stream.length / 3), Math.floor((2 * stream.length) / 3), stream.length];
    const frames = [0, 1, 2].map((i) => wire((i === 2 ? 0x80 : 0) | (i === 0 ? 0x41 : 0x00), stream.subarray(cuts[i], cuts[i + 1]), masked));
    // §7.2.3.1's fragmented "Hello" first, then the longer one.
    p.raw.write(Buffer.concat([wire(0x41, hex('f2 48 cd'), masked), wire(0x80, hex('c9 c9 07 00'), masked), ...frames]));
    const hello: Fragment[] = [await readFragment(p.ws), await readFragment(p.ws)];
    t.deepEqual(hello.map((f) => [f.opcode, f.fin]), [[Opcode.Text, false], [Opcode.Text, true]]);
    t.is(Buffer.concat(hello.map((f) => f.data)).toString(), 'Hello');
    const pieces: Fragment[] = [await readFragment(p.ws), await readFragment(p.ws), await readFragment(p.ws)];
    t.deepEqual(pieces.map((f) => [f.opcode, f.fin]), [[Opcode.Text, false], [Opcode.Text, false], [Opcode.Text, true]]);
    t.is(Buffer.concat(pieces.map((f) => f.data)).toString(), text);
    // Each piece is what its frame inflated to, handed out as it came (not the whole message at the end).
    for (const [i, f] of pieces.entries()) t.true(f.data.length > 10_000 && f.data.length < 25_000, `piece ${i}: ${f.data.length} bytes`);
  });

  test(`${role}: recvFrame shows RSV1 and the raw compressed payload`, async (t) => {
    const p = await rawPair(t, role, { deflate: { ...PARAMS } });
    p.raw.write(Buffer.concat([wire(0xc1, hex(HELLO), masked), wire(0x41, hex('f2 48 cd'), masked), wire(0x80, hex('c9 c9 07 00'), masked)]));
    const a = await recvFrame(p.ws);
    t.deepEqual([a.fin, a.rsv1, a.rsv2, a.rsv3, a.opcode, a.masked, a.data.toString('hex')], [true, true, false, false, Opcode.Text, masked, hex(HELLO).toString('hex')]);
    const b = await recvFrame(p.ws);
    t.deepEqual([b.fin, b.rsv1, b.opcode, b.data.toString('hex')], [false, true, Opcode.Text, 'f248cd']);
    const c = await recvFrame(p.ws);
    t.deepEqual([c.fin, c.rsv1, c.opcode, c.data.toString('hex')], [true, false, Opcode.Cont, 'c9c90700']);
  });

  test(`${role}: a Ping between the fragments of a compressed message is answered; the message is intact`, async (t) => {
    const p = await rawPair(t, role, { deflate: { ...PARAMS } });
    p.raw.write(Buffer.concat([wire(0x41, hex('f2 48 cd'), masked), wire(0x89, Buffer.from('mid'), masked)]));
    const ping = await readData(p.ws);
    t.deepEqual([ping.opcode, ping.data.toString()], [Opcode.Ping, 'mid']);
    const [pong] = await p.peer.waitFrames(1);
    t.deepEqual([pong!.opcode, pong!.data.toString(), pong!.rsv], [Opcode.Pong, 'mid', 0]);
    p.raw.write(wire(0x80, hex('c9 c9 07 00'), masked));
    const m = await readData(p.ws);
    t.deepEqual([m.opcode, m.data.toString()], [Opcode.Text, 'Hello']);
    // And with readFragment: the Ping comes out between the two inflated pieces.
    p.raw.write(Buffer.concat([wire(0x41, hex('f2 48 cd'), masked), wire(0x89, Buffer.from('two'), masked), wire(0x80, hex('c9 c9 07 00'), masked)]));
    const parts = [await readFragment(p.ws), await readFragment(p.ws), await readFragment(p.ws)];
    t.deepEqual(parts.map((f) => f.opcode), [Opcode.Text, Opcode.Ping, Opcode.Text]);
    t.is(parts[0]!.data.toString() + parts[2]!.data.toString(), 'Hello');
  });

  test(`${role}: a compressed message is bounded by maxMessageSize as it inflates (1009), across fragments too`, async (t) => {
    const limit = 64 * 1024;
    const p = await rawPair(t, role, { deflate: { ...PARAMS }, maxMessageSize: limit });
    p.raw.write(wire(0xc2, compress(Buffer.alloc(limit + 1)), masked));
    await fails(t, readData(p.ws), p.peer, ProtocolError, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
    // Exactly the limit is fine.
    const q = await rawPair(t, role, { deflate: { ...PARAMS }, maxMessageSize: limit });
    q.raw.write(wire(0xc2, compress(Buffer.alloc(limit, 7)), masked));
    t.is((await readData(q.ws)).data.length, limit);
    // Three fragments of 30 KiB each inflate past 64 KiB in the third.
    const r = await rawPair(t, role, { deflate: { ...PARAMS }, maxMessageSize: limit });
    const stream = compress(Buffer.alloc(90 * 1024, 1));
    const third = Math.floor(stream.length / 3);
    r.raw.write(
      Buffer.concat([
        wire(0x42, stream.subarray(0, third), masked),
        wire(0x00, stream.subarray(third, 2 * third), masked),
        wire(0x80, stream.subarray(2 * third), masked)
      ])
    );
    await fails(t, readData(r.ws), r.peer, ProtocolError, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
    // Blocks after a BFINAL block (a new zlib stream) count against the same limit.
    const bfinal = hex('f3 48 cd c9 c9 07 00');
    const u = await rawPair(t, role, { deflate: { ...PARAMS }, maxMessageSize: limit });
    u.raw.write(wire(0xc2, Buffer.concat([bfinal, compress(Buffer.alloc(limit - 5, 1))]), masked));
    const exact = await readData(u.ws);
    t.deepEqual([exact.data.length, exact.data.subarray(0, 6).toString()], [limit, 'Hello\x01']);
    const v = await rawPair(t, role, { deflate: { ...PARAMS }, maxMessageSize: limit });
    v.raw.write(wire(0xc2, Buffer.concat([bfinal, compress(Buffer.alloc(limit - 4, 1))]), masked));
    await fails(t, readData(v.ws), v.peer, ProtocolError, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
  });
}

// ---------------------------------------------------------------------------------------
// Round trips between our own client and server

/** Our client and server over loopback with deflate agreed as given. */
function deflatePair(t: ExecutionContext, server: DeflateSettings, client: DeflateSettings = server) {
  return pair(t, { server: { deflate: server }, client: { deflate: client } });
}

test('our client and server: messages of every size and kind round-trip under each parameter set', async (t) => {
  const sets: DeflateSettings[] = [
    { ...PARAMS, threshold: 0 },
    { ...PARAMS, serverNoContextTakeover: true, clientNoContextTakeover: true },
    { ...PARAMS, serverMaxWindowBits: 9, clientMaxWindowBits: 10, threshold: 16 },
    { ...PARAMS, level: 1, memLevel: 1, threshold: 100 }
  ];
  const text = 'permessage-deflate ✓ '.repeat(4000);
  const payloads: Buffer[] = [Buffer.alloc(0), Buffer.from('x'), randomBytes(2000), Buffer.from(text), Buffer.alloc(300_000, 0x41), randomBytes(200_000)];
  for (const set of sets) {
    const { client, server } = await deflatePair(t, set);
    for (const data of payloads) {
      for (const [from, to] of [
        [client, server],
        [server, client]
      ] as const) {
        await sendBinary(from, data);
        const m = await readData(to);
        t.is(m.opcode, Opcode.Binary);
        t.is(sha(m.data), sha(data), `${data.length} bytes with ${JSON.stringify(set)}`);
      }
    }
    await sendText(client, text);
    t.is((await readData(server)).data.toString(), text);
    await sendFragmented(server, Opcode.Text, text, 1000); // not compressed, and still fine
    t.is((await readData(client)).data.toString(), text);
  }
});

test('compression follows the threshold: smaller messages go out without RSV1', async (t) => {
  const p = await ourServer(t, 'permessage-deflate', { threshold: 100 });
  await sendText(p.ws, 'x'.repeat(99));
  await sendText(p.ws, 'x'.repeat(100));
  await sendBinary(p.ws, Buffer.alloc(99));
  await sendBinary(p.ws, Buffer.alloc(100));
  const frames = await framesFrom(p, 4);
  t.deepEqual(frames.map((f) => f.wire[0]), [0x81, 0xc1, 0x82, 0xc2]);
  t.true(frames[1]!.data.length < 20);
});

test('a window of 8 bits agreed: what we send inflates with a 256-byte window, across messages', async (t) => {
  // Node's raw deflate is asked for 8 bits and uses 9 (zlib cannot compress with 256 bytes),
  // but a 9-bit zlib window never refers back more than 250 bytes (512 less zlib's 262-byte
  // lookahead), so a peer holding only the agreed 256 bytes still inflates everything.
  const s = await ourServer(t, 'permessage-deflate; server_max_window_bits=8');
  t.is(s.extensions, 'permessage-deflate; server_max_window_bits=8');
  const c = await ourClient(t, 'permessage-deflate; client_max_window_bits=8');
  t.is(c.ws.deflate!.params.clientMaxWindowBits, 8);
  const chunk = randomBytes(100).toString('hex'); // 200 characters that repeat 200-400 bytes back
  const texts = Array.from({ length: 6 }, (_, i) => `${chunk}${i}${chunk.slice(i * 10)}${'z'.repeat(i * 60)}`);
  for (const p of [s, c]) {
    for (const text of texts) await sendText(p.ws, text);
    const frames = await framesFrom(p, texts.length);
    const inflater = zlib.createInflateRaw({ windowBits: 8 });
    for (const [i, f] of frames.entries()) {
      t.is(f.wire[0], 0xc1, 'compressed');
      t.true(f.data.length < texts[i]!.length);
      const got: Buffer[] = [];
      const onData = (d: Buffer): void => void got.push(d);
      inflater.on('data', onData);
      inflater.write(Buffer.concat([f.data, hex('0000ffff')]));
      await new Promise<void>((resolve) => inflater.flush(() => resolve()));
      inflater.off('data', onData);
      t.is(Buffer.concat(got).toString(), texts[i]);
    }
    inflater.close();
    // Receiving with the 8-bit window we agreed on works too.
    const stream = compress(texts[5]!, 9);
    p.socket.write(wire(0xc1, stream, p.peerMasks));
    t.is((await readData(p.ws)).data.toString(), texts[5]);
  }
});

test('our client fails the handshake on a permessage-deflate answer it must not accept (HandshakeError)', async (t) => {
  const answers = [
    'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; client_max_window_bits',
    'permessage-deflate; mystery=1',
    'permessage-deflate, permessage-deflate',
    'x-webkit-deflate-frame',
    'permessage-deflate;;'
  ];
  for (const answer of answers) {
    const { port } = await rawServer(t, (socket, req) => write101(socket, req, [`Sec-WebSocket-Extensions: ${answer}`]));
    await t.throwsAsync(connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true }), { instanceOf: HandshakeError }, answer);
    // Not offered at all: any extension in the answer fails.
    await t.throwsAsync(connect(`ws://127.0.0.1:${port}/`), { instanceOf: HandshakeError }, `${answer}, not offered`);
  }
  const { port } = await rawServer(t, (socket, req) => write101(socket, req, ['Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12']));
  await t.throwsAsync(connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { serverMaxWindowBits: 10 } }), {
    instanceOf: HandshakeError,
    message: /above the offer/
  });
});

test('a compressed message queued before our Close still goes out when the peer\'s Close is read meanwhile (§5.5.1)', async (t) => {
  const p = await deflatePair(t, { ...PARAMS, threshold: 0 });
  // Compressible but not trivially so: zlib takes a few ms on it, on the thread pool.
  const word = randomBytes(64);
  const data = Buffer.alloc(1 << 20);
  for (let i = 0; i < data.length; i += 64) word.copy(data, i);
  for (let i = 0; i < data.length; i += 997) data[i] = i & 0xff;
  // The message is being compressed, and our Close waits behind it.
  const sent = sendBinary(p.server, data);
  const closed = sendClose(p.server, 1000, 'bye');
  // The peer's Close arrives before ours went out: the message in progress may finish (§5.5.1).
  p.server.feed(makeFrame({ fin: true, rsv1: false, rsv2: false, rsv3: false, masked: true, opcode: Opcode.Close, data: encodeClosePayload(1001) }));
  const m = await within(readData(p.server), 'the server to read the peer\'s Close');
  t.is(m.opcode, Opcode.Close);
  await t.notThrowsAsync(within(sent, 'the compressed send'));
  await t.notThrowsAsync(within(closed, 'our Close'));
  const got = await within(readData(p.client), 'the client to read the message');
  t.is(got.opcode, Opcode.Binary);
  t.true(got.data.equals(data));
  const c = await within(readData(p.client), 'the client to read the Close');
  t.is(c.opcode, Opcode.Close);
});

// ---------------------------------------------------------------------------------------
// The zlib contexts: freed on close, pending work rejected, bounded concurrency. The heavy
// ones are serial: the limiter is one per process, and their long jobs would hold up the
// slots every other test here waits on.

test('zlib streams are made lazily and freed when the connection closes', async (t) => {
  const { client, server } = await deflatePair(t, { ...PARAMS, threshold: 0 });
  t.is(client.deflate!.zlibStreams, 0);
  t.is(server.deflate!.zlibStreams, 0);
  await sendText(client, 'Hello');
  t.is(client.deflate!.zlibStreams, 1, 'the client deflated');
  t.is((await readData(server)).data.toString(), 'Hello');
  t.is(server.deflate!.zlibStreams, 1, 'the server inflated');
  await sendText(server, 'Hello');
  t.is((await readData(client)).data.toString(), 'Hello');
  t.is(client.deflate!.zlibStreams, 2);
  t.is(server.deflate!.zlibStreams, 2);
  const closing = close(client, 1000);
  t.is((await readData(server)).opcode, Opcode.Close);
  t.deepEqual(await closing, { code: 1000, reason: '', clean: true } as Awaited<typeof closing>);
  await whenClosed(server);
  await whenClosed(client);
  t.is(client.deflate!.zlibStreams, 0);
  t.is(server.deflate!.zlibStreams, 0);
  // Nothing is made again after close.
  await t.throwsAsync(client.deflate!.deflate(Buffer.from('late')), { instanceOf: IOError });
  await t.throwsAsync(server.deflate!.inflate(hex(HELLO), true, true, 100), { instanceOf: IOError });
  t.is(client.deflate!.zlibStreams, 0);
  t.is(server.deflate!.zlibStreams, 0);
});

test.serial('a connection destroyed mid-inflate or mid-deflate rejects that work with IOError and frees its streams', async (t) => {
  // Big enough to keep zlib busy well past the destroy.
  const big = randomBytes(8 * 1024 * 1024);
  const { client, server } = await deflatePair(t, { ...PARAMS, threshold: 0 }, { ...PARAMS, threshold: 0 });
  const sending = sendBinary(client, big);
  const inflating = server.deflate!.inflate(compress(big), true, true, Infinity);
  client.destroy();
  server.destroy();
  await t.throwsAsync(within(sending, 'the send'), { instanceOf: IOError });
  await t.throwsAsync(within(inflating, 'the inflate'), { instanceOf: IOError });
  await until(() => client.deflate!.zlibStreams === 0 && server.deflate!.zlibStreams === 0, 'the streams to be freed');
  // The read that was waiting on an inflating frame rejects too.
  const p = await deflatePair(t, { ...PARAMS, threshold: 0 });
  const reading = readData(p.server);
  p.client.socket.write(wire(0xc2, compress(big), true));
  await until(() => p.server.deflate!.zlibStreams === 1, 'the inflater to start');
  p.server.destroy();
  await t.throwsAsync(within(reading, 'the read'), { instanceOf: IOError });
  await until(() => p.server.deflate!.zlibStreams === 0, 'the inflater to be freed');
});

test.serial('work waiting for a zlib slot when its connection closes is rejected and makes no stream', async (t) => {
  // Fill every slot with long jobs on other contexts, then queue work on a connection and close it.
  const busy = Array.from({ length: DEFLATE_CONCURRENCY }, () => new PerMessageDeflate({ ...PARAMS }, false));
  const big = randomBytes(4 * 1024 * 1024);
  const jobs = busy.map((d) => d.deflate(big));
  t.is(deflateLoad().running, DEFLATE_CONCURRENCY);
  const { client, server } = await deflatePair(t, { ...PARAMS, threshold: 0 });
  const sending = sendBinary(client, Buffer.alloc(5000));
  const inflating = server.deflate!.inflate(hex(HELLO), true, true, 100);
  t.true(deflateLoad().waiting >= 2, JSON.stringify(deflateLoad()));
  client.destroy();
  server.destroy();
  await whenClosed(client);
  await whenClosed(server);
  await t.throwsAsync(within(sending, 'the queued send', 30_000), { instanceOf: IOError });
  await t.throwsAsync(within(inflating, 'the queued inflate', 30_000), { instanceOf: IOError });
  await Promise.all(jobs);
  busy.forEach((d) => d.close());
  t.is(client.deflate!.zlibStreams, 0);
  t.is(server.deflate!.zlibStreams, 0);
  await until(() => deflateLoad().running === 0 && deflateLoad().waiting === 0, 'the limiter to drain');
});

test.serial(`many connections compressing at once never run more than DEFLATE_CONCURRENCY (${DEFLATE_CONCURRENCY}) zlib jobs`, async (t) => {
  const N = 24;
  const pairs = await Promise.all(Array.from({ length: N }, () => deflatePair(t, { ...PARAMS, threshold: 0 })));
  const contexts = pairs.flatMap((p) => [p.client.deflate!, p.server.deflate!]);
  // Counted from the contexts themselves (a job in flight holds inflateJob or deflateJob),
  // independently of the limiter's own counter.
  const inFlight = (): number =>
    contexts.filter((d) => {
      const jobs = d as unknown as { inflateJob: unknown; deflateJob: unknown };
      return jobs.inflateJob !== null || jobs.deflateJob !== null;
    }).length;
  let most = 0;
  let mostRunning = 0;
  let sawWaiting = false;
  let sampling = true;
  const sample = (): void => {
    most = Math.max(most, inFlight());
    const load = deflateLoad();
    mostRunning = Math.max(mostRunning, load.running);
    if (load.waiting > 0) sawWaiting = true;
    if (sampling) setImmediate(sample);
  };
  sample();
  const payload = (i: number, j: number): Buffer => {
    const b = Buffer.alloc(256 * 1024, `${i}:${j} some fairly compressible text `);
    randomBytes(16 * 1024).copy(b, 1000);
    return b;
  };
  await within(
    Promise.all(
      pairs.map(async ({ client, server }, i) => {
        for (let j = 0; j < 3; j++) {
          const data = payload(i, j);
          await sendBinary(client, data);
          const m = await readData(server);
          await sendBinary(server, m.data);
          const back = await readData(client);
          if (sha(back.data) !== sha(data)) throw new Error(`pair ${i} message ${j} came back different`);
        }
      })
    ),
    'the exchanges',
    20_000
  );
  sampling = false;
  t.true(most <= DEFLATE_CONCURRENCY, `${most} jobs in flight at once`);
  t.true(mostRunning <= DEFLATE_CONCURRENCY, `limiter said ${mostRunning}`);
  t.true(most >= 2, `${most}: the contexts did work in parallel`);
  t.true(sawWaiting, 'jobs had to wait for a slot');
  await until(() => deflateLoad().running === 0 && deflateLoad().waiting === 0, 'the limiter to drain');
});

test('a server with deflate off answers an offer without the extension and rejects RSV1 (1002)', async (t) => {
  const srv = await upgradeServer(t, {});
  const client = await connect(`ws://127.0.0.1:${srv.port}/`, { perMessageDeflate: true });
  t.teardown(() => client.destroy());
  const server = await srv.nextSocket();
  t.is(client.deflate, null);
  t.is(server.deflate, null);
  await sendText(client, 'x'.repeat(5000));
  t.is((await readData(server)).data.length, 5000);
});

test('an unparseable Sec-WebSocket-Extensions is answered 400 by a server with deflate on', async (t) => {
  const srv = await upgradeServer(t, { perMessageDeflate: true });
  const socket = net.connect({ host: '127.0.0.1', port: srv.port });
  t.teardown(() => socket.destroy());
  const peer = new Collector(socket);
  socket.write(request([...GOOD, 'Sec-WebSocket-Extensions: permessage-deflate;;']));
  await peer.waitClose();
  t.regex(peer.bytes.toString('latin1'), /^HTTP\/1\.1 400 /);
  const outcome = await srv.outcomes.next();
  t.true(outcome.err instanceof Error);
});
