/**
 * DESIGN §3 "Every protocol violation fails the connection": raw bytes from a plain
 * `net.Socket` peer to an `AsyncSocket` reading with `readData`, in both roles. For each
 * violation: `readData` rejects with the right class, `code` and `closeCode`; the peer
 * receives exactly one Close frame carrying that code (masked from a client, unmasked from
 * a server) and then the end of the stream; later reads and sends reject with `IOError`.
 */
import test, { ExecutionContext } from 'ava';
import { AsyncSocketOptions, encodeClosePayload, InvalidUtf8Error, IOError, makeFrame, Opcode, PayloadTooBigError, ProtocolError, ProtocolErrorCode, readData, Role, sendText } from '../../src';
import { PEER_KEY, parseFrames, rawPair, within } from '../helpers/socket-pair';

/** Builds frames as the raw peer sends them: masked when the peer is the client. */
class Peer {
  constructor(readonly masked: boolean) {}

  frame(
    opcode: number,
    data: string | Uint8Array = Buffer.alloc(0),
    flags: { fin?: boolean; rsv1?: boolean; rsv2?: boolean; rsv3?: boolean; masked?: boolean } = {}
  ): Buffer {
    return makeFrame(
      {
        fin: flags.fin ?? true,
        rsv1: flags.rsv1 ?? false,
        rsv2: flags.rsv2 ?? false,
        rsv3: flags.rsv3 ?? false,
        masked: flags.masked ?? this.masked,
        opcode: opcode as Opcode,
        data: typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)
      },
      PEER_KEY
    );
  }

  /** Only the header of a frame with `length` payload bytes (the payload is never sent). */
  headerOnly(opcode: number, length: number, fin = true): Buffer {
    const full = this.frame(opcode, Buffer.alloc(length), { fin });
    return full.subarray(0, full.length - length);
  }

  /** A hand-made header with a 64-bit length field (used for non-minimal and top-bit cases). */
  header64(opcode: number, hi: number, lo: number): Buffer {
    const h = Buffer.alloc(this.masked ? 14 : 10);
    h[0] = 0x80 | opcode;
    h[1] = (this.masked ? 0x80 : 0) | 127;
    h.writeUInt32BE(hi >>> 0, 2);
    h.writeUInt32BE(lo >>> 0, 6);
    if (this.masked) PEER_KEY.copy(h, 10);
    return h;
  }
}

interface Violation {
  name: string;
  /** Roles of the reading AsyncSocket this case applies to (default both). */
  roles?: Role[];
  options?: Partial<AsyncSocketOptions>;
  /** Messages `readData` returns before the failing call (default 0). */
  okReads?: number;
  /** The bytes the peer sends; nothing more is ever sent. */
  bytes(p: Peer): Buffer[];
  error: new (...args: never[]) => ProtocolError;
  code: ProtocolErrorCode;
  closeCode: number;
}

const closePayload = (code: number, reason: Uint8Array = Buffer.alloc(0)): Buffer => {
  const b = Buffer.alloc(2 + reason.length);
  b.writeUInt16BE(code, 0);
  Buffer.from(reason).copy(b, 2);
  return b;
};

const violations: Violation[] = [
  ...(['rsv1', 'rsv2', 'rsv3'] as const).map(
    (bit): Violation => ({
      name: `${bit.toUpperCase()} set`,
      bytes: (p) => [p.frame(Opcode.Text, 'hi', { [bit]: true })],
      error: ProtocolError,
      code: 'WS_ERR_UNEXPECTED_RSV',
      closeCode: 1002
    })
  ),
  ...[3, 4, 5, 6, 7, 11, 12, 13, 14, 15].map(
    (op): Violation => ({
      name: `reserved opcode ${op}`,
      bytes: (p) => [p.frame(op, 'x')],
      error: ProtocolError,
      code: 'WS_ERR_INVALID_OPCODE',
      closeCode: 1002
    })
  ),
  {
    name: 'ping over 125 bytes',
    bytes: (p) => [p.frame(Opcode.Ping, Buffer.alloc(126, 1))],
    error: ProtocolError,
    code: 'WS_ERR_CONTROL_TOO_LONG',
    closeCode: 1002
  },
  {
    name: 'close over 125 bytes (header only)',
    bytes: (p) => [p.headerOnly(Opcode.Close, 200)],
    error: ProtocolError,
    code: 'WS_ERR_CONTROL_TOO_LONG',
    closeCode: 1002
  },
  {
    name: 'fragmented ping',
    bytes: (p) => [p.frame(Opcode.Ping, 'a', { fin: false })],
    error: ProtocolError,
    code: 'WS_ERR_FRAGMENTED_CONTROL',
    closeCode: 1002
  },
  {
    name: 'fragmented close inside a message',
    bytes: (p) => [p.frame(Opcode.Text, 'a', { fin: false }), p.frame(Opcode.Close, closePayload(1000), { fin: false })],
    error: ProtocolError,
    code: 'WS_ERR_FRAGMENTED_CONTROL',
    closeCode: 1002
  },
  {
    name: 'unmasked frame to a server',
    roles: ['server'],
    bytes: (p) => [p.frame(Opcode.Text, 'hi', { masked: false })],
    error: ProtocolError,
    code: 'WS_ERR_EXPECTED_MASK',
    closeCode: 1002
  },
  {
    name: 'unmasked ping to a server in the middle of a message',
    roles: ['server'],
    bytes: (p) => [p.frame(Opcode.Binary, 'a', { fin: false }), p.frame(Opcode.Ping, 'p', { masked: false })],
    error: ProtocolError,
    code: 'WS_ERR_EXPECTED_MASK',
    closeCode: 1002
  },
  {
    name: 'masked frame to a client',
    roles: ['client'],
    bytes: (p) => [p.frame(Opcode.Text, 'hi', { masked: true })],
    error: ProtocolError,
    code: 'WS_ERR_UNEXPECTED_MASK',
    closeCode: 1002
  },
  {
    name: 'continuation with no message',
    bytes: (p) => [p.frame(Opcode.Cont, 'x')],
    error: ProtocolError,
    code: 'WS_ERR_UNEXPECTED_CONTINUATION',
    closeCode: 1002
  },
  {
    name: 'continuation after a finished message',
    okReads: 1,
    bytes: (p) => [p.frame(Opcode.Text, 'a', { fin: false }), p.frame(Opcode.Cont, 'b'), p.frame(Opcode.Cont, 'c')],
    error: ProtocolError,
    code: 'WS_ERR_UNEXPECTED_CONTINUATION',
    closeCode: 1002
  },
  {
    name: 'new Text inside a fragmented message',
    bytes: (p) => [p.frame(Opcode.Text, 'a', { fin: false }), p.frame(Opcode.Text, 'b')],
    error: ProtocolError,
    code: 'WS_ERR_EXPECTED_CONTINUATION',
    closeCode: 1002
  },
  {
    name: 'new Binary inside a fragmented message',
    bytes: (p) => [p.frame(Opcode.Binary, 'a', { fin: false }), p.frame(Opcode.Cont, 'b', { fin: false }), p.frame(Opcode.Binary, 'c')],
    error: ProtocolError,
    code: 'WS_ERR_EXPECTED_CONTINUATION',
    closeCode: 1002
  },
  {
    name: 'invalid UTF-8 in a single text frame',
    bytes: (p) => [p.frame(Opcode.Text, Buffer.from([0x68, 0x69, 0xff]))],
    error: InvalidUtf8Error,
    code: 'WS_ERR_INVALID_UTF8',
    closeCode: 1007
  },
  {
    name: 'overlong UTF-8 in a long text frame (native path)',
    bytes: (p) => [p.frame(Opcode.Text, Buffer.concat([Buffer.alloc(40, 0x61), Buffer.from([0xc0, 0x80])]))],
    error: InvalidUtf8Error,
    code: 'WS_ERR_INVALID_UTF8',
    closeCode: 1007
  },
  {
    name: 'truncated UTF-8 at the end of a single text frame',
    bytes: (p) => [p.frame(Opcode.Text, Buffer.from([0x61, 0xe2, 0x82]))],
    error: InvalidUtf8Error,
    code: 'WS_ERR_INVALID_UTF8',
    closeCode: 1007
  },
  {
    // Fail fast: fragment 2 is invalid and the message is not finished; no fragment 3 is sent.
    name: 'invalid UTF-8 in fragment 2 of 3, before the rest is sent',
    bytes: (p) => [
      p.frame(Opcode.Text, 'κόσμε', { fin: false }),
      p.frame(Opcode.Cont, Buffer.from([0xce, 0xba, 0xf5, 0x80]), { fin: false })
    ],
    error: InvalidUtf8Error,
    code: 'WS_ERR_INVALID_UTF8',
    closeCode: 1007
  },
  {
    name: 'invalid UTF-8 split across fragments, before the rest is sent',
    bytes: (p) => [
      p.frame(Opcode.Text, Buffer.from([0x61, 0xe2]), { fin: false }),
      p.frame(Opcode.Cont, Buffer.from([0x28, 0x61]), { fin: false })
    ],
    error: InvalidUtf8Error,
    code: 'WS_ERR_INVALID_UTF8',
    closeCode: 1007
  },
  {
    name: 'surrogate code point (ED A0 80) across fragments',
    bytes: (p) => [
      p.frame(Opcode.Text, Buffer.from([0xed]), { fin: false }),
      p.frame(Opcode.Cont, Buffer.from([0xa0, 0x80]), { fin: false })
    ],
    error: InvalidUtf8Error,
    code: 'WS_ERR_INVALID_UTF8',
    closeCode: 1007
  },
  {
    name: 'text message ending inside a UTF-8 sequence',
    bytes: (p) => [p.frame(Opcode.Text, Buffer.from([0x61, 0xf0, 0x9f]), { fin: false }), p.frame(Opcode.Cont, Buffer.from([0x98]))],
    error: InvalidUtf8Error,
    code: 'WS_ERR_INVALID_UTF8',
    closeCode: 1007
  },
  {
    name: 'invalid UTF-8 in a close reason',
    bytes: (p) => [p.frame(Opcode.Close, closePayload(1000, Buffer.from([0x62, 0x79, 0xff])))],
    error: InvalidUtf8Error,
    code: 'WS_ERR_INVALID_UTF8',
    closeCode: 1007
  },
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 1999, 2000, 2999, 5000, 65535].map(
    (code): Violation => ({
      name: `invalid close code ${code}`,
      bytes: (p) => [p.frame(Opcode.Close, closePayload(code, Buffer.from('r')))],
      error: ProtocolError,
      code: 'WS_ERR_INVALID_CLOSE_CODE',
      closeCode: 1002
    })
  ),
  {
    name: '1-byte close payload',
    bytes: (p) => [p.frame(Opcode.Close, Buffer.from([0x03]))],
    error: ProtocolError,
    code: 'WS_ERR_INVALID_CLOSE_PAYLOAD',
    closeCode: 1002
  },
  {
    name: 'frame over maxFrameSize (header only)',
    options: { maxFrameSize: 1000 },
    bytes: (p) => [p.headerOnly(Opcode.Binary, 1001)],
    error: PayloadTooBigError,
    code: 'WS_ERR_FRAME_TOO_BIG',
    closeCode: 1009
  },
  {
    name: 'frame over the default maxFrameSize of 16 MiB (header only, 64-bit length)',
    bytes: (p) => [p.headerOnly(Opcode.Binary, 16 * 1024 * 1024 + 1)],
    error: PayloadTooBigError,
    code: 'WS_ERR_FRAME_TOO_BIG',
    closeCode: 1009
  },
  {
    name: 'continuation frame over maxFrameSize (header only)',
    options: { maxFrameSize: 1000 },
    bytes: (p) => [p.frame(Opcode.Text, 'abc', { fin: false }), p.headerOnly(Opcode.Cont, 70000)],
    error: PayloadTooBigError,
    code: 'WS_ERR_FRAME_TOO_BIG',
    closeCode: 1009
  },
  {
    name: 'message over maxMessageSize in one frame (header only)',
    options: { maxMessageSize: 100 },
    bytes: (p) => [p.headerOnly(Opcode.Binary, 101)],
    error: PayloadTooBigError,
    code: 'WS_ERR_MESSAGE_TOO_BIG',
    closeCode: 1009
  },
  {
    name: 'message over maxMessageSize across fragments (header of the third only)',
    options: { maxMessageSize: 100 },
    bytes: (p) => [
      p.frame(Opcode.Binary, Buffer.alloc(40, 1), { fin: false }),
      p.frame(Opcode.Cont, Buffer.alloc(40, 2), { fin: false }),
      p.headerOnly(Opcode.Cont, 21)
    ],
    error: PayloadTooBigError,
    code: 'WS_ERR_MESSAGE_TOO_BIG',
    closeCode: 1009
  },
  {
    name: 'too many fragments',
    options: { maxFragments: 3 },
    bytes: (p) => [
      p.frame(Opcode.Text, 'a', { fin: false }),
      p.frame(Opcode.Cont, 'b', { fin: false }),
      p.frame(Opcode.Cont, 'c', { fin: false }),
      p.frame(Opcode.Cont, 'd')
    ],
    error: ProtocolError,
    code: 'WS_ERR_TOO_MANY_FRAGMENTS',
    closeCode: 1008
  },
  {
    name: '64-bit length with its top bit set (header only)',
    bytes: (p) => [p.header64(Opcode.Binary, 0x8000_0000, 0)],
    error: ProtocolError,
    code: 'WS_ERR_INVALID_LENGTH',
    closeCode: 1002
  },
  {
    name: 'non-minimal 16-bit length',
    bytes: (p) => {
      const f = p.frame(Opcode.Binary, Buffer.alloc(0));
      // Length 5 written in the 16-bit form: 126, then 0x0005.
      const h = Buffer.from([f[0]!, (f[1]! & 0x80) | 126, 0, 5]);
      return [Buffer.concat([h, p.masked ? PEER_KEY : Buffer.alloc(0), Buffer.alloc(5)])];
    },
    error: ProtocolError,
    code: 'WS_ERR_NON_MINIMAL_LENGTH',
    closeCode: 1002
  },
  {
    name: 'non-minimal 64-bit length (header only)',
    bytes: (p) => [p.header64(Opcode.Binary, 0, 5)],
    error: ProtocolError,
    code: 'WS_ERR_NON_MINIMAL_LENGTH',
    closeCode: 1002
  }
];

async function runViolation(t: ExecutionContext, role: Role, v: Violation): Promise<void> {
  const { ws, raw, peer } = await rawPair(t, role, v.options);
  // The peer is the other role: a client peer masks, a server peer does not.
  const p = new Peer(role === 'server');

  raw.write(Buffer.concat(v.bytes(p)));
  for (let i = 0; i < (v.okReads ?? 0); i++) await within(readData(ws), 'a message before the violation');
  const reading = readData(ws);
  const err = await within(
    t.throwsAsync(reading, { instanceOf: v.error }),
    'readData to reject'
  );
  t.is(err?.code, v.code);
  t.is(err?.closeCode, v.closeCode);

  // The peer receives one Close frame with that code (and nothing else), then the FIN.
  await peer.waitEnd();
  const frames = parseFrames(peer.bytes);
  t.is(frames.length, 1, 'exactly one frame: the Close, and no echo of data');
  const close = frames[0]!;
  t.is(close.opcode, Opcode.Close);
  t.true(close.fin);
  t.is(close.rsv, 0);
  t.is(close.masked, role === 'client', 'a client masks its Close, a server does not');
  t.is(close.data.readUInt16BE(0), v.closeCode);
  const payload = encodeClosePayload(v.closeCode, v.code);
  t.deepEqual(close.data, payload);
  // Exact bytes on the wire.
  const expected =
    role === 'client' ? makeFrame(Opcode.Close, payload, true, close.maskKey!) : makeFrame(Opcode.Close, payload, false);
  t.deepEqual(close.wire, expected);

  // After the failure every read and send rejects with IOError.
  await t.throwsAsync(readData(ws), { instanceOf: IOError });
  await t.throwsAsync(readData(ws), { instanceOf: IOError });
  await t.throwsAsync(sendText(ws, 'late'), { instanceOf: IOError });
}

for (const v of violations) {
  for (const role of v.roles ?? (['server', 'client'] as Role[])) {
    const peerDesc = role === 'server' ? 'masked client bytes to our server' : 'unmasked server bytes to our client';
    test(`${v.name}: ${peerDesc}`, (t) => runViolation(t, role, v));
  }
}

// A failure found while a fragmented message is pending still answers nothing and drops the
// partial message: the ping before the violation was answered, the data never echoed.
test('ping answered before a later violation; the violation still fails the connection', async (t) => {
  const { ws, raw, peer } = await rawPair(t, 'server');
  const p = new Peer(true);
  raw.write(Buffer.concat([p.frame(Opcode.Text, 'a', { fin: false }), p.frame(Opcode.Ping, 'tok'), p.frame(Opcode.Binary, 'x')]));
  const ping = await within(readData(ws), 'the ping');
  t.is(ping.opcode, Opcode.Ping);
  t.is(ping.data.toString(), 'tok');
  const err = await t.throwsAsync(readData(ws), { instanceOf: ProtocolError });
  t.is(err?.code, 'WS_ERR_EXPECTED_CONTINUATION');
  await peer.waitEnd();
  const frames = parseFrames(peer.bytes);
  t.deepEqual(
    frames.map((f) => [f.opcode, f.data.toString('latin1')]),
    [
      [Opcode.Pong, 'tok'],
      [Opcode.Close, encodeClosePayload(1002, 'WS_ERR_EXPECTED_CONTINUATION').toString('latin1')]
    ]
  );
  t.deepEqual(frames[0]!.wire, makeFrame(Opcode.Pong, 'tok', false));
});
