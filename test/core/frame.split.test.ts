/**
 * Every split point: a stream of frames cut anywhere decodes to the same frames as the whole
 * stream (pure: decodeHeader on an accumulating buffer, see test/helpers/chunked.ts).
 */
import test, { ExecutionContext } from 'ava';
import { Frame, HeaderRules, makeFrame, Opcode, ProtocolError } from '../../src';
import { DecodedFrame, IncrementalDecoder, chunked, decodeChunks, splitAt } from '../helpers/chunked';
import { hex, noise } from '../helpers/bytes';

const KEY = hex('37fa213d');

function frame(opcode: Opcode, data: string | Buffer, fin: boolean, masked: boolean): Frame {
  return { fin, rsv1: false, rsv2: false, rsv3: false, masked, opcode, data: typeof data === 'string' ? Buffer.from(data) : data };
}

interface Stream {
  name: string;
  bytes: Buffer;
  rules?: HeaderRules;
  /** What the stream holds, checked against the whole-stream decode. */
  expected: Array<Pick<DecodedFrame, 'fin' | 'opcode' | 'masked' | 'lengthBytes'> & { data: Buffer }>;
}

function stream(name: string, frames: Frame[], keys: Array<Buffer | undefined>, rules?: HeaderRules): Stream {
  const bytes = Buffer.concat(frames.map((f, i) => makeFrame(f, keys[i])));
  const expected = frames.map((f) => ({
    fin: f.fin,
    opcode: f.opcode,
    masked: f.masked,
    lengthBytes: (f.data.length < 126 ? 0 : f.data.length <= 0xffff ? 2 : 8) as 0 | 2 | 8,
    data: f.data
  }));
  return { name, bytes, rules, expected };
}

const STREAMS: Stream[] = [
  {
    name: 'the small RFC 6455 §5.7 examples back to back (masked and unmasked)',
    bytes: hex(
      '81 05 48656c6c6f' + // unmasked "Hello"
        '81 85 37fa213d 7f9f4d5158' + // masked "Hello"
        '01 03 48656c' + // "Hel"
        '89 05 48656c6c6f' + // Ping "Hello" between the fragments
        '80 02 6c6f' + // "lo"
        '8a 85 37fa213d 7f9f4d5158' // masked Pong "Hello"
    ),
    expected: [
      { fin: true, opcode: Opcode.Text, masked: false, lengthBytes: 0, data: Buffer.from('Hello') },
      { fin: true, opcode: Opcode.Text, masked: true, lengthBytes: 0, data: Buffer.from('Hello') },
      { fin: false, opcode: Opcode.Text, masked: false, lengthBytes: 0, data: Buffer.from('Hel') },
      { fin: true, opcode: Opcode.Ping, masked: false, lengthBytes: 0, data: Buffer.from('Hello') },
      { fin: true, opcode: Opcode.Cont, masked: false, lengthBytes: 0, data: Buffer.from('lo') },
      { fin: true, opcode: Opcode.Pong, masked: true, lengthBytes: 0, data: Buffer.from('Hello') }
    ]
  },
  stream(
    'client frames (masked) with 7 and 16-bit lengths, empty frames and a control frame in a message',
    [
      frame(Opcode.Text, noise(300, 2).fill(0x61), false, true),
      frame(Opcode.Ping, '', true, true),
      frame(Opcode.Cont, '', false, true),
      frame(Opcode.Cont, 'é€😀', true, true),
      frame(Opcode.Binary, noise(126, 3), true, true),
      frame(Opcode.Binary, Buffer.alloc(0), true, true),
      frame(Opcode.Close, hex('03e8 627965'), true, true)
    ],
    [KEY, hex('00000000'), hex('ffffffff'), KEY, hex('01020304'), KEY, hex('a0b0c0d0')],
    { expectMasked: true, maxFrameSize: 1 << 20 }
  ),
  stream(
    'server frames (unmasked) with a 64-bit length',
    [
      frame(Opcode.Text, 'a', true, false),
      frame(Opcode.Binary, noise(65536 + 7, 4), true, false),
      frame(Opcode.Pong, noise(125, 5), true, false),
      frame(Opcode.Text, noise(200, 6).fill(0x7a), true, false)
    ],
    [],
    { expectMasked: false, maxFrameSize: 1 << 20 }
  ),
  stream(
    'masked frames with a 64-bit length',
    [frame(Opcode.Binary, noise(65536, 7), false, true), frame(Opcode.Cont, 'Hello', true, true)],
    [hex('deadbeef'), KEY],
    { expectMasked: true, maxFrameSize: 1 << 20 }
  )
];

function sameFrames(a: DecodedFrame[], b: DecodedFrame[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (
      x.fin !== y.fin ||
      x.rsv1 !== y.rsv1 ||
      x.rsv2 !== y.rsv2 ||
      x.rsv3 !== y.rsv3 ||
      x.opcode !== y.opcode ||
      x.masked !== y.masked ||
      x.maskKey !== y.maskKey ||
      x.lengthBytes !== y.lengthBytes ||
      !x.data.equals(y.data)
    ) {
      return false;
    }
  }
  return true;
}

function checkWhole(t: ExecutionContext, s: Stream): DecodedFrame[] {
  const whole = decodeChunks([s.bytes], s.rules);
  t.is(whole.length, s.expected.length);
  s.expected.forEach((e, i) => {
    const f = whole[i]!;
    t.like(f, { fin: e.fin, opcode: e.opcode, masked: e.masked, lengthBytes: e.lengthBytes, rsv1: false, rsv2: false, rsv3: false });
    t.true(f.data.equals(e.data), `payload of frame ${i}`);
  });
  return whole;
}

for (const s of STREAMS) {
  test(`every split point into 2 chunks: ${s.name}`, (t) => {
    checkWhole(t, s);
    // Payloads are compared as they were on the wire (with their keys): unmasking is
    // covered elsewhere, and unmasking 64 KiB at each of 64 Ki offsets would take seconds.
    const whole = decodeChunks([s.bytes], s.rules, { unmask: false });
    // One decoder for all the splits (it is empty again after each whole stream), whose
    // frames are compared as they come out: no allocation per split.
    const decoder = new IncrementalDecoder(s.rules, { unmask: false, copy: false });
    const bad: number[] = [];
    for (let at = 0; at <= s.bytes.length; at++) {
      let n = 0;
      let ok = true;
      for (const chunk of splitAt(s.bytes, at)) {
        for (const f of decoder.push(chunk)) ok = ok && n < whole.length && sameFrames([f], [whole[n++]!]);
      }
      if (!ok || n !== whole.length || decoder.pending !== 0) bad.push(at);
    }
    t.deepEqual(bad, [], 'split offsets that decode differently');
  });

  test(`one byte at a time, with empty chunks in between: ${s.name}`, (t) => {
    const whole = checkWhole(t, s);
    // One-byte chunks for the headers and the first bytes of each payload would be enough,
    // but the streams are small enough to do all of it.
    const sizes = Array.from({ length: s.bytes.length * 2 }, (_, i) => i & 1);
    const chunks = chunked(s.bytes, sizes);
    t.is(chunks.length, s.bytes.length * 2);
    t.true(sameFrames(decodeChunks(chunks, s.rules), whole));
  });
}

test('every pair of split points into 3 chunks: the small §5.7 stream', (t) => {
  const s = STREAMS[0]!;
  const whole = checkWhole(t, s);
  const n = s.bytes.length;
  const bad: string[] = [];
  for (let i = 0; i <= n; i++) {
    for (let j = i; j <= n; j++) {
      if (!sameFrames(decodeChunks(chunked(s.bytes, [i, j - i]), s.rules), whole)) bad.push(`${i},${j}`);
    }
  }
  t.deepEqual(bad, []);
});

test('frames come out as soon as their last byte arrives, not later', (t) => {
  const s = STREAMS[0]!;
  const decoder = new IncrementalDecoder(s.rules);
  // Frame ends in the §5.7 stream: after 7, 18, 23, 30, 34, 45 bytes.
  const ends = new Set([7, 18, 23, 30, 34, 45]);
  t.is(s.bytes.length, 45);
  for (let i = 0; i < s.bytes.length; i++) {
    const out = decoder.push(s.bytes.subarray(i, i + 1));
    t.is(out.length, ends.has(i + 1) ? 1 : 0, `after byte ${i + 1}`);
  }
  t.is(decoder.pending, 0);
});

test('chunked: sizes, remainder and copies', (t) => {
  const bytes = hex('0102030405');
  t.deepEqual(chunked(bytes, [2, 0, 1]), [hex('0102'), hex(''), hex('03'), hex('0405')]);
  t.deepEqual(chunked(bytes, [5]), [hex('0102030405')]);
  t.deepEqual(chunked(bytes, [9, 1]), [hex('0102030405'), hex('')]);
  t.deepEqual(splitAt(bytes, 0), [hex(''), hex('0102030405')]);
  t.deepEqual(splitAt(bytes, 3), [hex('010203'), hex('0405')]);
  const [a] = chunked(bytes, [2]);
  a![0] = 0xff;
  t.is(bytes[0], 1, 'chunks are copies');
  t.throws(() => chunked(bytes, [-1]), { instanceOf: RangeError });
});

test('decodeChunks reports a truncated stream and validates headers when given rules', (t) => {
  const bytes = hex('81 05 48656c6c6f');
  t.throws(() => decodeChunks([bytes.subarray(0, 6)]), { message: /6 bytes left/ });
  const err = t.throws(() => decodeChunks(splitAt(bytes, 1), { expectMasked: true, maxFrameSize: 100 }), {
    instanceOf: ProtocolError
  });
  t.is(err?.code, 'WS_ERR_EXPECTED_MASK');
});
