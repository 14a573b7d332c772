import test, { ExecutionContext } from 'ava';
import { applyMask, decodeHeader, Frame, FrameHeader, HeaderRules, makeFrame, Opcode, PayloadTooBigError, ProtocolError, validateHeader } from '../../src';
import { MAX_SAFE_LENGTH } from '../../src/core/constants';
import { encodeFrame, encodeHeader, encodedHeaderSize, firstByte, headerSizeOf, newFrameHeader } from '../../src/core/frame';
import { throwsProtocol } from '../helpers/assert-protocol';
import { hex, pattern } from '../helpers/bytes';

const KEY = hex('37fa213d');
const CLIENT: HeaderRules = { expectMasked: true, maxFrameSize: 2 ** 53 };
const SERVER: HeaderRules = { expectMasked: false, maxFrameSize: 2 ** 53 };

/** Decodes one whole frame at the start of `bytes` (decodeHeader + applyMask). */
function decodeOne(t: ExecutionContext, bytes: Uint8Array): { h: FrameHeader; data: Buffer; rest: number } {
  const h = newFrameHeader();
  t.is(decodeHeader(bytes, 0, bytes.length, h), 0, 'the whole header is there');
  const data = Buffer.from(bytes.subarray(h.headerSize, h.headerSize + h.length));
  t.is(data.length, h.length, 'the whole payload is there');
  if (h.maskKey) applyMask(data, h.maskKey);
  return { h, data, rest: bytes.length - h.headerSize - h.length };
}

function frame(opcode: Opcode, data: string | Buffer, fin = true, masked = false): Frame {
  return {
    fin,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    masked,
    opcode,
    data: typeof data === 'string' ? Buffer.from(data) : data
  };
}

/** A header decoded from hex bytes; fails the test when the bytes are not a whole header. */
function header(bytesHex: string): FrameHeader {
  const bytes = hex(bytesHex);
  const h = newFrameHeader();
  const need = decodeHeader(bytes, 0, bytes.length, h);
  if (need !== 0) throw new Error(`header ${bytesHex} needs ${need} more bytes`);
  return h;
}

// ---------------------------------------------------------------------------------------------
// RFC 6455 §5.7 examples, both ways.

test('§5.7 single-frame unmasked text "Hello": encode', (t) => {
  const expected = hex('81 05 48 65 6c 6c 6f');
  t.deepEqual(makeFrame(Opcode.Text, 'Hello', false), expected);
  t.deepEqual(makeFrame(Opcode.Text, Buffer.from('Hello'), false), expected);
  t.deepEqual(makeFrame(frame(Opcode.Text, 'Hello')), expected);
});

test('§5.7 single-frame unmasked text "Hello": decode', (t) => {
  const { h, data, rest } = decodeOne(t, hex('81 05 48 65 6c 6c 6f'));
  t.like(h, { fin: true, rsv1: false, rsv2: false, rsv3: false, opcode: Opcode.Text, masked: false, length: 5 });
  t.is(h.maskKey, null);
  t.is(h.headerSize, 2);
  t.is(h.lengthBytes, 0);
  t.is(data.toString(), 'Hello');
  t.is(rest, 0);
  t.notThrows(() => validateHeader(h, SERVER));
});

test('§5.7 single-frame masked text "Hello": encode with the fixed key', (t) => {
  const expected = hex('81 85 37 fa 21 3d 7f 9f 4d 51 58');
  t.deepEqual(makeFrame(Opcode.Text, 'Hello', true, KEY), expected);
  t.deepEqual(makeFrame(frame(Opcode.Text, 'Hello', true, true), KEY), expected);
});

test('§5.7 single-frame masked text "Hello": decode', (t) => {
  const { h, data } = decodeOne(t, hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
  t.like(h, { fin: true, opcode: Opcode.Text, masked: true, length: 5, headerSize: 6, lengthBytes: 0 });
  t.deepEqual(Buffer.from(h.maskKey!), KEY);
  t.is(data.toString(), 'Hello');
  t.notThrows(() => validateHeader(h, CLIENT));
});

test('§5.7 fragmented unmasked text "Hel" + "lo": encode', (t) => {
  t.deepEqual(makeFrame(frame(Opcode.Text, 'Hel', false)), hex('01 03 48 65 6c'));
  t.deepEqual(makeFrame(frame(Opcode.Cont, 'lo', true)), hex('80 02 6c 6f'));
});

test('§5.7 fragmented unmasked text "Hel" + "lo": decode', (t) => {
  const stream = hex('01 03 48 65 6c 80 02 6c 6f');
  const first = decodeOne(t, stream);
  t.like(first.h, { fin: false, opcode: Opcode.Text, masked: false, length: 3 });
  t.is(first.data.toString(), 'Hel');
  t.is(first.rest, 4);
  const second = decodeOne(t, stream.subarray(5));
  t.like(second.h, { fin: true, opcode: Opcode.Cont, masked: false, length: 2 });
  t.is(second.data.toString(), 'lo');
  t.is(second.rest, 0);
  // decodeHeader at an offset inside the stream gives the same header.
  const h = newFrameHeader();
  t.is(decodeHeader(stream, 5, stream.length, h), 0);
  t.like(h, { fin: true, opcode: Opcode.Cont, length: 2, headerSize: 2 });
});

test('§5.7 unmasked Ping "Hello": encode and decode', (t) => {
  const expected = hex('89 05 48 65 6c 6c 6f');
  t.deepEqual(makeFrame(Opcode.Ping, 'Hello', false), expected);
  t.deepEqual(makeFrame(frame(Opcode.Ping, 'Hello')), expected);
  const { h, data } = decodeOne(t, expected);
  t.like(h, { fin: true, opcode: Opcode.Ping, masked: false, length: 5 });
  t.is(data.toString(), 'Hello');
  t.notThrows(() => validateHeader(h, SERVER));
});

test('§5.7 masked Pong "Hello": encode and decode', (t) => {
  const expected = hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58');
  t.deepEqual(makeFrame(Opcode.Pong, 'Hello', true, KEY), expected);
  t.deepEqual(makeFrame(frame(Opcode.Pong, 'Hello', true, true), KEY), expected);
  const { h, data } = decodeOne(t, expected);
  t.like(h, { fin: true, opcode: Opcode.Pong, masked: true, length: 5 });
  t.deepEqual(Buffer.from(h.maskKey!), KEY);
  t.is(data.toString(), 'Hello');
  t.notThrows(() => validateHeader(h, CLIENT));
});

test('§5.7 256-byte binary in one unmasked frame: encode and decode', (t) => {
  const payload = pattern(256);
  const expected = Buffer.concat([hex('82 7e 01 00'), payload]);
  t.deepEqual(makeFrame(Opcode.Binary, payload, false), expected);
  t.deepEqual(makeFrame(frame(Opcode.Binary, payload)), expected);
  const { h, data } = decodeOne(t, expected);
  t.like(h, { fin: true, opcode: Opcode.Binary, masked: false, length: 256, lengthBytes: 2, headerSize: 4 });
  t.true(data.equals(payload));
  t.notThrows(() => validateHeader(h, SERVER));
});

test('§5.7 64 KiB binary in one unmasked frame: encode and decode', (t) => {
  const payload = pattern(65536);
  const expected = Buffer.concat([hex('82 7f 00 00 00 00 00 01 00 00'), payload]);
  t.true(makeFrame(Opcode.Binary, payload, false).equals(expected));
  t.true(makeFrame(frame(Opcode.Binary, payload)).equals(expected));
  const { h, data } = decodeOne(t, expected);
  t.like(h, { fin: true, opcode: Opcode.Binary, masked: false, length: 65536, lengthBytes: 8, headerSize: 10 });
  t.true(data.equals(payload));
  t.notThrows(() => validateHeader(h, SERVER));
});

test('§5.7 256-byte and 64 KiB binary, masked with the fixed key, round trip', (t) => {
  for (const n of [256, 65536]) {
    const payload = pattern(n);
    const bytes = makeFrame(Opcode.Binary, payload, true, KEY);
    const ext = n === 256 ? 'fe 01 00' : 'ff 00 00 00 00 00 01 00 00';
    t.deepEqual(bytes.subarray(0, encodedHeaderSize(n, true)), hex(`82 ${ext} 37 fa 21 3d`));
    // The payload on the wire is the masked one, byte i XOR key[i % 4].
    const masked = Buffer.from(payload);
    for (let i = 0; i < n; i++) masked[i] = masked[i]! ^ KEY[i & 3]!;
    t.true(bytes.subarray(encodedHeaderSize(n, true)).equals(masked));
    const { h, data } = decodeOne(t, bytes);
    t.is(h.length, n);
    t.true(data.equals(payload));
  }
});

// ---------------------------------------------------------------------------------------------
// makeFrame details.

test('makeFrame never modifies the caller payload when masking', (t) => {
  const payload = Buffer.from('Hello, world');
  const copy = Buffer.from(payload);
  makeFrame(Opcode.Text, payload, true, KEY);
  makeFrame(frame(Opcode.Binary, payload, true, true), KEY);
  makeFrame(Opcode.Binary, payload, true);
  t.deepEqual(payload, copy);
});

test('makeFrame masks with a fresh random key when none is given', (t) => {
  const keys = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const bytes = makeFrame(Opcode.Text, 'Hello', true);
    const { h, data } = decodeOne(t, bytes);
    t.true(h.masked);
    t.is(data.toString(), 'Hello');
    keys.add(Buffer.from(h.maskKey!).toString('hex'));
  }
  t.true(keys.size >= 19, `only ${keys.size} distinct keys in 20 frames`);
});

test('makeFrame(frame) writes FIN and RSV bits as given (so tests can build bad frames)', (t) => {
  const f: Frame = { ...frame(Opcode.Binary, 'x', false), rsv1: true, rsv2: false, rsv3: true };
  const bytes = makeFrame(f);
  t.is(bytes[0], 0x52);
  const { h } = decodeOne(t, bytes);
  t.like(h, { fin: false, rsv1: true, rsv2: false, rsv3: true, opcode: Opcode.Binary });
  t.is(makeFrame({ ...frame(Opcode.Text, ''), rsv2: true })[0], 0xa1);
});

test('makeFrame(opcode, data, masked) sets FIN and encodes strings as UTF-8', (t) => {
  t.deepEqual(makeFrame(Opcode.Text, 'é€😀', false), hex('81 09 c3a9 e282ac f09f9880'));
  t.deepEqual(makeFrame(Opcode.Close, '', false), hex('88 00'));
  t.deepEqual(makeFrame(Opcode.Binary, new Uint8Array([1, 2, 3]), false), hex('82 03 010203'));
});

test('makeFrame ignores the key of an unmasked frame and rejects keys that are not 4 bytes', (t) => {
  t.deepEqual(makeFrame(frame(Opcode.Text, 'Hello'), KEY), hex('81 05 48 65 6c 6c 6f'));
  t.throws(() => makeFrame(frame(Opcode.Text, 'Hello', true, true), hex('010203')), { instanceOf: RangeError });
  t.throws(() => makeFrame(Opcode.Text, 'Hello', true, hex('0102030405')), { instanceOf: RangeError });
});

test('makeFrame masks payload views with any byteOffset', (t) => {
  const backing = pattern(200);
  for (let off = 0; off < 8; off++) {
    const view = backing.subarray(off, off + 150);
    const { data } = decodeOne(t, makeFrame(Opcode.Binary, view, true, hex('a1b2c3d4')));
    t.true(data.equals(view), `offset ${off}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Payload lengths.

const LENGTHS: Array<[number, string]> = [
  [0, '00'],
  [1, '01'],
  [125, '7d'],
  [126, '7e 00 7e'],
  [127, '7e 00 7f'],
  [65535, '7e ff ff'],
  [65536, '7f 00 00 00 00 00 01 00 00'],
  [65537, '7f 00 00 00 00 00 01 00 01']
];

for (const [n, lenHex] of LENGTHS) {
  test(`length ${n} is encoded minimally and decodes back (unmasked and masked)`, (t) => {
    const payload = pattern(n);
    const plain = makeFrame(Opcode.Binary, payload, false);
    const extra = n < 126 ? 0 : n <= 0xffff ? 2 : 8;
    t.deepEqual(plain.subarray(0, 2 + extra), hex(`82 ${lenHex}`));
    t.is(plain.length, 2 + extra + n);
    t.is(encodedHeaderSize(n, false), 2 + extra);
    t.is(headerSizeOf(plain[1]!), 2 + extra);
    let d = decodeOne(t, plain);
    t.like(d.h, { length: n, lengthBytes: extra, headerSize: 2 + extra, masked: false });
    t.true(d.data.equals(payload));
    t.notThrows(() => validateHeader(d.h, SERVER));

    const masked = makeFrame(Opcode.Binary, payload, true, KEY);
    t.is(masked[1], plain[1]! | 0x80);
    t.deepEqual(masked.subarray(2, 2 + extra), plain.subarray(2, 2 + extra));
    t.deepEqual(masked.subarray(2 + extra, 6 + extra), KEY);
    t.is(encodedHeaderSize(n, true), 6 + extra);
    t.is(headerSizeOf(masked[1]!), 6 + extra);
    d = decodeOne(t, masked);
    t.like(d.h, { length: n, lengthBytes: extra, headerSize: 6 + extra, masked: true });
    t.true(d.data.equals(payload));
    t.notThrows(() => validateHeader(d.h, CLIENT));
  });
}

test('encodeHeader writes 64-bit lengths above 2^32 in network byte order, at an offset', (t) => {
  const dst = Buffer.alloc(20, 0xee);
  const end = encodeHeader(dst, 3, firstByte(true, Opcode.Binary), 2 ** 32 + 5, true, KEY);
  t.is(end, 3 + 14);
  t.deepEqual(dst, hex('eeeeee 82 ff 0000000100000005 37fa213d eeeeee'));
  const end2 = encodeHeader(dst, 0, 0x02, MAX_SAFE_LENGTH, false);
  t.is(end2, 10);
  t.deepEqual(dst.subarray(0, 10), hex('02 7f 001fffffffffffff'));
});

test('decodeHeader reads a 64-bit length above 2^32 (header bytes only)', (t) => {
  const h = header('82 7f 00 00 00 01 00 00 00 05');
  t.like(h, { fin: true, opcode: Opcode.Binary, masked: false, length: 2 ** 32 + 5, lengthBytes: 8, headerSize: 10 });
  t.notThrows(() => validateHeader(h, SERVER));
  const m = header('02 ff 00 00 12 34 56 78 9a bc 01 02 03 04');
  t.like(m, { fin: false, masked: true, length: 0x123456789abc, lengthBytes: 8, headerSize: 14 });
  t.deepEqual(Buffer.from(m.maskKey!), hex('01020304'));
  t.like(header('82 7f 00 1f ff ff ff ff ff ff'), { length: MAX_SAFE_LENGTH });
  t.like(header('82 7f 00 00 00 00 ff ff ff ff'), { length: 0xffffffff });
  t.like(header('82 7f 00 00 00 00 80 00 00 00'), { length: 0x80000000 });
});

test('validateHeader: 64-bit length with the top bit set → WS_ERR_INVALID_LENGTH 1002', (t) => {
  for (const len of ['80 00 00 00 00 00 00 00', '80 00 00 00 00 00 00 01', 'ff ff ff ff ff ff ff ff', 'c0 00 00 00 00 01 00 00']) {
    const h = header(`82 7f ${len}`);
    throwsProtocol(t, () => validateHeader(h, SERVER), ProtocolError, 'WS_ERR_INVALID_LENGTH', 1002);
    throwsProtocol(t, () => validateHeader(h, { ...SERVER, maxFrameSize: Infinity }), ProtocolError, 'WS_ERR_INVALID_LENGTH', 1002);
  }
});

test('validateHeader: 64-bit lengths with the top bit clear but beyond 2^53-1 → 1009, not 1002', (t) => {
  // Regression: 0x7fff_ffff_ffff_ffff used to round up to 2^63 and was reported as "top bit set".
  for (const len of ['7f ff ff ff ff ff ff ff', '7f ff ff ff ff ff fc 00', '00 20 00 00 00 00 00 00', '40 00 00 00 00 00 00 00']) {
    const h = header(`82 7f ${len}`);
    t.true(h.length > MAX_SAFE_LENGTH);
    throwsProtocol(t, () => validateHeader(h, { ...SERVER, maxFrameSize: Infinity }), PayloadTooBigError, 'WS_ERR_FRAME_TOO_BIG', 1009);
  }
});

test('validateHeader: a payload above maxFrameSize → PayloadTooBigError 1009 (7, 16 and 64-bit forms)', (t) => {
  const cases: Array<[string, number, number]> = [
    ['82 65', 101, 100],
    ['82 7e 01 00', 256, 255],
    ['82 7f 00 00 00 00 00 01 00 00', 65536, 65535],
    ['82 7f 00 00 00 01 00 00 00 05', 2 ** 32 + 5, 2 ** 32]
  ];
  for (const [bytes, length, limit] of cases) {
    const h = header(bytes);
    const err = throwsProtocol(t, () => validateHeader(h, { expectMasked: false, maxFrameSize: limit }), PayloadTooBigError, 'WS_ERR_FRAME_TOO_BIG', 1009);
    t.is(err?.size, length);
    t.is(err?.limit, limit);
    // Exactly at the limit is fine.
    t.notThrows(() => validateHeader(h, { expectMasked: false, maxFrameSize: length }));
  }
});

test('validateHeader: non-minimal 16-bit and 64-bit lengths → WS_ERR_NON_MINIMAL_LENGTH 1002', (t) => {
  for (const bytes of [
    '82 7e 00 00',
    '82 7e 00 7d',
    '82 7f 00 00 00 00 00 00 00 00',
    '82 7f 00 00 00 00 00 00 00 7d',
    '82 7f 00 00 00 00 00 00 00 7e',
    '82 7f 00 00 00 00 00 00 ff ff'
  ]) {
    throwsProtocol(t, () => validateHeader(header(bytes), SERVER), ProtocolError, 'WS_ERR_NON_MINIMAL_LENGTH', 1002);
  }
  // The smallest lengths each form is for are accepted.
  t.notThrows(() => validateHeader(header('82 7e 00 7e'), SERVER));
  t.notThrows(() => validateHeader(header('82 7f 00 00 00 00 00 01 00 00'), SERVER));
});

// ---------------------------------------------------------------------------------------------
// "Need N more bytes".

const HEADERS: Array<[string, string]> = [
  ['2-byte', '81 05'],
  ['4-byte (16-bit length)', '82 7e 01 00'],
  ['10-byte (64-bit length)', '82 7f 00 00 00 00 00 01 00 00'],
  ['6-byte (masked)', '81 85 37 fa 21 3d'],
  ['8-byte (masked, 16-bit length)', '82 fe 01 00 37 fa 21 3d'],
  ['14-byte (masked, 64-bit length)', '82 ff 00 00 00 00 00 01 00 00 37 fa 21 3d']
];

for (const [name, bytesHex] of HEADERS) {
  test(`decodeHeader asks for the missing bytes of a ${name} header at every prefix length`, (t) => {
    const bytes = hex(bytesHex);
    const size = bytes.length;
    t.is(headerSizeOf(bytes[1]!), size);
    const expected = newFrameHeader();
    t.is(decodeHeader(bytes, 0, size, expected), 0);
    t.is(expected.headerSize, size);
    for (let k = 0; k < size; k++) {
      const need = k < 2 ? 2 - k : size - k;
      t.is(decodeHeader(bytes, 0, k, newFrameHeader()), need, `prefix of ${k} bytes`);
      // The same at an offset inside a bigger buffer, with junk on both sides.
      const framed = Buffer.concat([hex('ffffff'), bytes.subarray(0, k), Buffer.alloc(16, 0xff)]);
      t.is(decodeHeader(framed, 3, 3 + k, newFrameHeader()), need, `prefix of ${k} bytes at offset 3`);
    }
    // With the whole header at an offset, the junk after `end` is not read.
    const framed = Buffer.concat([hex('ffffff'), bytes, Buffer.alloc(16, 0xff)]);
    const h = newFrameHeader();
    t.is(decodeHeader(framed, 3, 3 + size, h), 0);
    t.deepEqual({ ...h, maskKey: h.maskKey && Buffer.from(h.maskKey) }, {
      ...expected,
      maskKey: expected.maskKey && Buffer.from(expected.maskKey)
    });
  });
}

test('decodeHeader reuses the header object and clears fields of the previous frame', (t) => {
  const h = newFrameHeader();
  t.is(decodeHeader(hex('82 ff 00 00 00 00 00 01 00 00 37 fa 21 3d'), 0, 14, h), 0);
  t.is(decodeHeader(hex('09 00'), 0, 2, h), 0);
  t.deepEqual(h, {
    fin: false,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    opcode: Opcode.Ping,
    masked: false,
    length: 0,
    lengthBytes: 0,
    maskKey: null,
    headerSize: 2
  });
});

// ---------------------------------------------------------------------------------------------
// validateHeader rules.

test('validateHeader accepts every defined opcode, masked from a client and unmasked from a server', (t) => {
  for (const op of [0x0, 0x1, 0x2, 0x8, 0x9, 0xa]) {
    const b0 = (0x80 | op).toString(16).padStart(2, '0');
    t.notThrows(() => validateHeader(header(`${b0} 05`), SERVER), `opcode ${op} unmasked`);
    t.notThrows(() => validateHeader(header(`${b0} 85 01020304`), CLIENT), `opcode ${op} masked`);
  }
  // Data frames may be fragmented.
  for (const b0 of ['00', '01', '02']) t.notThrows(() => validateHeader(header(`${b0} 00`), SERVER));
});

test('validateHeader: RSV1, RSV2, RSV3 → WS_ERR_UNEXPECTED_RSV 1002', (t) => {
  for (const b0 of ['c1', 'a1', '91', 'f1', '42', 'c8']) {
    throwsProtocol(t, () => validateHeader(header(`${b0} 00`), SERVER), ProtocolError, 'WS_ERR_UNEXPECTED_RSV', 1002);
  }
  // RSV1 is allowed when an extension gives it a meaning; RSV2 and RSV3 still are not.
  const withRsv1 = { ...SERVER, allowRsv1: true };
  t.notThrows(() => validateHeader(header('c1 00'), withRsv1));
  throwsProtocol(t, () => validateHeader(header('a1 00'), withRsv1), ProtocolError, 'WS_ERR_UNEXPECTED_RSV', 1002);
  throwsProtocol(t, () => validateHeader(header('91 00'), withRsv1), ProtocolError, 'WS_ERR_UNEXPECTED_RSV', 1002);
});

for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
  test(`validateHeader: reserved opcode ${op} → WS_ERR_INVALID_OPCODE 1002`, (t) => {
    for (const fin of [0x80, 0x00]) {
      const b0 = (fin | op).toString(16).padStart(2, '0');
      throwsProtocol(t, () => validateHeader(header(`${b0} 00`), SERVER), ProtocolError, 'WS_ERR_INVALID_OPCODE', 1002);
      throwsProtocol(t, () => validateHeader(header(`${b0} 80 00000000`), CLIENT), ProtocolError, 'WS_ERR_INVALID_OPCODE', 1002);
    }
    const err = t.throws(() => validateHeader(header(`8${op.toString(16)} 00`), SERVER));
    t.regex(err?.message ?? '', new RegExp(`0x${op.toString(16)}\\b`));
  });
}

test('validateHeader: fragmented control frames → WS_ERR_FRAGMENTED_CONTROL 1002', (t) => {
  for (const b0 of ['08', '09', '0a']) {
    throwsProtocol(t, () => validateHeader(header(`${b0} 00`), SERVER), ProtocolError, 'WS_ERR_FRAGMENTED_CONTROL', 1002);
    throwsProtocol(t, () => validateHeader(header(`${b0} 82 01020304`), CLIENT), ProtocolError, 'WS_ERR_FRAGMENTED_CONTROL', 1002);
  }
});

test('validateHeader: control frames over 125 bytes → WS_ERR_CONTROL_TOO_LONG 1002', (t) => {
  for (const b0 of ['88', '89', '8a']) {
    t.notThrows(() => validateHeader(header(`${b0} 7d`), SERVER), `${b0} with 125 bytes`);
    for (const len of ['7e 00 7e', '7e ff ff', '7f 00 00 00 00 00 01 00 00']) {
      throwsProtocol(t, () => validateHeader(header(`${b0} ${len}`), SERVER), ProtocolError, 'WS_ERR_CONTROL_TOO_LONG', 1002);
    }
  }
});

test('validateHeader: masking direction both ways', (t) => {
  // A server (expects masked) receiving an unmasked frame.
  throwsProtocol(t, () => validateHeader(header('81 05'), CLIENT), ProtocolError, 'WS_ERR_EXPECTED_MASK', 1002);
  throwsProtocol(t, () => validateHeader(header('89 00'), CLIENT), ProtocolError, 'WS_ERR_EXPECTED_MASK', 1002);
  // A client (expects unmasked) receiving a masked frame.
  throwsProtocol(t, () => validateHeader(header('81 85 37fa213d'), SERVER), ProtocolError, 'WS_ERR_UNEXPECTED_MASK', 1002);
  throwsProtocol(t, () => validateHeader(header('8a 80 00000000'), SERVER), ProtocolError, 'WS_ERR_UNEXPECTED_MASK', 1002);
});

test('encodeFrame builds exactly the frame described, legal or not', (t) => {
  t.deepEqual(encodeFrame(0x0b, hex('aa'), false), hex('0b 01 aa'));
  t.deepEqual(encodeFrame(0xf1, hex(''), true, KEY), hex('f1 80 37fa213d'));
  const pingTooLong = encodeFrame(0x89, pattern(200), false);
  t.deepEqual(pingTooLong.subarray(0, 4), hex('89 7e 00 c8'));
  throwsProtocol(t, () => validateHeader(decodeOne(t, pingTooLong).h, SERVER), ProtocolError, 'WS_ERR_CONTROL_TOO_LONG', 1002);
});
