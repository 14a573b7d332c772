import test from 'ava';
import { InvalidUtf8Error, MessageAssembler, MessageLimits, Opcode, PayloadTooBigError, ProtocolError } from '../../src';
import { throwsProtocol } from '../helpers/assert-protocol';
import { hex } from '../helpers/bytes';

const LIMITS: MessageLimits = { maxMessageSize: 1 << 20, maxFragments: 1000 };

interface Part {
  opcode: number;
  fin: boolean;
  data: Buffer;
}

/** Feeds frames as a reader would (check the header, then push the payload); returns the messages completed. */
function feed(m: MessageAssembler, parts: Part[]): Buffer[] {
  const out: Buffer[] = [];
  for (const p of parts) {
    m.check(p.opcode, p.data.length, false);
    const msg = m.push(p.opcode, p.fin, p.data);
    if (msg !== null) out.push(msg);
  }
  return out;
}

const part = (opcode: number, fin: boolean, data: string | Buffer): Part => ({
  opcode,
  fin,
  data: typeof data === 'string' ? Buffer.from(data) : data
});

test('a message in one frame is returned as it is (same Buffer, no copy)', (t) => {
  const m = new MessageAssembler(LIMITS);
  for (const opcode of [Opcode.Text, Opcode.Binary]) {
    const payload = Buffer.from('Hello');
    m.check(opcode, payload.length, false);
    t.is(m.push(opcode, true, payload), payload);
    t.is(m.opcode, 0, 'no message in progress afterwards');
  }
  const empty = Buffer.alloc(0);
  m.check(Opcode.Text, 0, false);
  t.is(m.push(Opcode.Text, true, empty), empty);
});

test('fragments are joined: §5.7 "Hel" + "lo"', (t) => {
  const m = new MessageAssembler(LIMITS);
  m.check(Opcode.Text, 3, false);
  t.is(m.push(Opcode.Text, false, Buffer.from('Hel')), null);
  t.is(m.opcode, Opcode.Text);
  t.false(m.streaming);
  m.check(Opcode.Cont, 2, false);
  const msg = m.push(Opcode.Cont, true, Buffer.from('lo'));
  t.is(msg?.toString(), 'Hello');
  t.is(m.opcode, 0);
});

test('fragments are joined: many, empty ones, and bigger than the first buffer', (t) => {
  const m = new MessageAssembler(LIMITS);
  const chunks = [0, 1, 0, 700, 1023, 1, 1024, 5000, 0, 3].map((n, i) => Buffer.alloc(n, 0x41 + i));
  const parts = chunks.map((c, i) => part(i === 0 ? Opcode.Binary : Opcode.Cont, i === chunks.length - 1, c));
  const out = feed(m, parts);
  t.is(out.length, 1);
  t.true(out[0]!.equals(Buffer.concat(chunks)));
  // The assembler does not keep the caller's buffers: changing them afterwards changes nothing.
  chunks[3]!.fill(0);
  t.is(out[0]![1], 0x44, 'first byte of chunks[3], still there');
  // Two messages in a row: the second starts empty.
  const again = feed(m, [part(Opcode.Text, false, 'ab'), part(Opcode.Cont, true, 'c')]);
  t.deepEqual(again.map(String), ['abc']);
  // An all-empty fragmented message.
  const empty = feed(m, [part(Opcode.Binary, false, ''), part(Opcode.Cont, true, '')]);
  t.is(empty.length, 1);
  t.is(empty[0]!.length, 0);
});

test('a continuation frame without a message → WS_ERR_UNEXPECTED_CONTINUATION 1002', (t) => {
  const m = new MessageAssembler(LIMITS);
  throwsProtocol(t, () => m.check(Opcode.Cont, 5, false), ProtocolError, 'WS_ERR_UNEXPECTED_CONTINUATION', 1002);
  throwsProtocol(t, () => m.check(Opcode.Cont, 0, true), ProtocolError, 'WS_ERR_UNEXPECTED_CONTINUATION', 1002);
  // Also right after a message completed.
  feed(m, [part(Opcode.Text, false, 'a'), part(Opcode.Cont, true, 'b')]);
  throwsProtocol(t, () => m.check(Opcode.Cont, 1, false), ProtocolError, 'WS_ERR_UNEXPECTED_CONTINUATION', 1002);
});

test('a new data frame inside a fragmented message → WS_ERR_EXPECTED_CONTINUATION 1002', (t) => {
  for (const [first, next] of [
    [Opcode.Text, Opcode.Text],
    [Opcode.Text, Opcode.Binary],
    [Opcode.Binary, Opcode.Text],
    [Opcode.Binary, Opcode.Binary]
  ] as const) {
    const m = new MessageAssembler(LIMITS);
    feed(m, [part(first, false, 'a')]);
    throwsProtocol(t, () => m.check(next, 1, false), ProtocolError, 'WS_ERR_EXPECTED_CONTINUATION', 1002);
    throwsProtocol(t, () => m.check(next, 1, true), ProtocolError, 'WS_ERR_EXPECTED_CONTINUATION', 1002);
  }
});

test('maxMessageSize on one frame → PayloadTooBigError 1009 from check(), before the payload', (t) => {
  const m = new MessageAssembler({ maxMessageSize: 100, maxFragments: 10 });
  t.notThrows(() => m.check(Opcode.Binary, 100, false));
  const err = throwsProtocol(t, () => m.check(Opcode.Binary, 101, false), PayloadTooBigError, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
  t.is(err?.size, 101);
  t.is(err?.limit, 100);
  throwsProtocol(t, () => m.check(Opcode.Text, 2 ** 40, false), PayloadTooBigError, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
});

test('maxMessageSize across fragments → PayloadTooBigError 1009 from check() of the frame that crosses it', (t) => {
  const m = new MessageAssembler({ maxMessageSize: 100, maxFragments: 10 });
  feed(m, [part(Opcode.Binary, false, Buffer.alloc(60)), part(Opcode.Cont, false, Buffer.alloc(30))]);
  const err = throwsProtocol(t, () => m.check(Opcode.Cont, 11, false), PayloadTooBigError, 'WS_ERR_MESSAGE_TOO_BIG', 1009);
  t.is(err?.size, 101);
  t.is(err?.limit, 100);
  // Exactly up to the limit is fine.
  m.check(Opcode.Cont, 10, false);
  const msg = m.push(Opcode.Cont, true, Buffer.alloc(10, 1));
  t.is(msg?.length, 100);
});

test('streaming mode has no whole-message limit (nothing is buffered)', (t) => {
  const m = new MessageAssembler({ maxMessageSize: 100, maxFragments: 10 });
  t.notThrows(() => m.check(Opcode.Binary, 1000, true));
  t.is(m.pushPart(Opcode.Binary, false, Buffer.alloc(1000)), Opcode.Binary);
  t.notThrows(() => m.check(Opcode.Cont, 1000, false), 'the message in progress decides, not the argument');
  t.is(m.pushPart(Opcode.Cont, true, Buffer.alloc(1000)), Opcode.Binary);
});

test('maxFragments → WS_ERR_TOO_MANY_FRAGMENTS 1008', (t) => {
  const m = new MessageAssembler({ maxMessageSize: 1000, maxFragments: 3 });
  feed(m, [part(Opcode.Text, false, 'a'), part(Opcode.Cont, false, 'b'), part(Opcode.Cont, false, 'c')]);
  throwsProtocol(t, () => m.check(Opcode.Cont, 1, false), ProtocolError, 'WS_ERR_TOO_MANY_FRAGMENTS', 1008);
  // Exactly maxFragments frames make a message.
  const n = new MessageAssembler({ maxMessageSize: 1000, maxFragments: 3 });
  const out = feed(n, [part(Opcode.Text, false, 'a'), part(Opcode.Cont, false, 'b'), part(Opcode.Cont, true, 'c')]);
  t.deepEqual(out.map(String), ['abc']);
  // The count starts again with each message.
  t.deepEqual(feed(n, [part(Opcode.Binary, false, 'd'), part(Opcode.Cont, false, 'e'), part(Opcode.Cont, true, 'f')]).map(String), ['def']);
  // Streaming messages count fragments too.
  const s = new MessageAssembler({ maxMessageSize: 1000, maxFragments: 2 });
  s.check(Opcode.Binary, 1, true);
  s.pushPart(Opcode.Binary, false, Buffer.from('a'));
  s.check(Opcode.Cont, 1, true);
  s.pushPart(Opcode.Cont, false, Buffer.from('b'));
  throwsProtocol(t, () => s.check(Opcode.Cont, 1, true), ProtocolError, 'WS_ERR_TOO_MANY_FRAGMENTS', 1008);
});

test('invalid UTF-8 in a single-frame text message → InvalidUtf8Error 1007; binary is not checked', (t) => {
  const m = new MessageAssembler(LIMITS);
  for (const bad of ['ff', 'c3', 'ed a0 80', '61'.repeat(30) + 'c0 af']) {
    m.check(Opcode.Text, 1, false);
    throwsProtocol(t, () => m.push(Opcode.Text, true, hex(bad)), InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);
    m.check(Opcode.Binary, 1, false);
    t.deepEqual(m.push(Opcode.Binary, true, hex(bad)), hex(bad));
  }
});

test('invalid UTF-8 is detected in the fragment that contains it', (t) => {
  const m = new MessageAssembler(LIMITS);
  m.check(Opcode.Text, 5, false);
  t.is(m.push(Opcode.Text, false, Buffer.from('Hello')), null);
  m.check(Opcode.Cont, 3, false);
  // Autobahn 6.4.1: U+110000 in the middle fragment; the fragment after it is never needed.
  throwsProtocol(t, () => m.push(Opcode.Cont, false, hex('f4 90 80 80')), InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);
});

test('invalid UTF-8 split across fragments is detected in the fragment that makes it invalid', (t) => {
  const m = new MessageAssembler(LIMITS);
  feed(m, [part(Opcode.Text, false, hex('41 f4'))]);
  m.check(Opcode.Cont, 1, false);
  throwsProtocol(t, () => m.push(Opcode.Cont, false, hex('90')), InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);
});

test('a text message that ends inside a UTF-8 sequence → InvalidUtf8Error 1007 on its last fragment', (t) => {
  const m = new MessageAssembler(LIMITS);
  feed(m, [part(Opcode.Text, false, 'ok '), part(Opcode.Cont, false, hex('e2 82'))]);
  m.check(Opcode.Cont, 0, false);
  throwsProtocol(t, () => m.push(Opcode.Cont, true, Buffer.alloc(0)), InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);
});

test('UTF-8 sequences split across fragments are accepted', (t) => {
  const text = 'é€😀 κόσμε';
  const bytes = Buffer.from(text);
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) {
      const m = new MessageAssembler(LIMITS);
      const out = feed(m, [
        part(Opcode.Text, false, bytes.subarray(0, i)),
        part(Opcode.Cont, false, bytes.subarray(i, j)),
        part(Opcode.Cont, true, bytes.subarray(j))
      ]);
      t.is(out[0]?.toString(), text);
    }
  }
});

test('reset() drops the message in progress, including an open UTF-8 sequence', (t) => {
  const m = new MessageAssembler(LIMITS);
  feed(m, [part(Opcode.Text, false, hex('e2 82'))]);
  m.reset();
  t.is(m.opcode, 0);
  throwsProtocol(t, () => m.check(Opcode.Cont, 1, false), ProtocolError, 'WS_ERR_UNEXPECTED_CONTINUATION', 1002);
  // A new text message does not see the E2 82 of the dropped one.
  t.deepEqual(feed(m, [part(Opcode.Text, false, 'A'), part(Opcode.Cont, true, 'B')]).map(String), ['AB']);
});

test('reset() drops a binary message in progress: the next one does not include its bytes', (t) => {
  const m = new MessageAssembler(LIMITS);
  feed(m, [part(Opcode.Binary, false, 'xyz')]);
  m.reset();
  const out = feed(m, [part(Opcode.Binary, false, 'a'), part(Opcode.Cont, true, 'b')]);
  t.deepEqual(out.map(String), ['ab']);
});

test('streaming mode: pushPart returns the message opcode for continuation frames', (t) => {
  const m = new MessageAssembler(LIMITS);
  for (const opcode of [Opcode.Text, Opcode.Binary] as const) {
    m.check(opcode, 3, true);
    t.is(m.pushPart(opcode, false, Buffer.from('abc')), opcode);
    t.is(m.opcode, opcode);
    t.true(m.streaming);
    m.check(Opcode.Cont, 3, true);
    t.is(m.pushPart(Opcode.Cont, false, Buffer.from('def')), opcode);
    m.check(Opcode.Cont, 3, true);
    t.is(m.pushPart(Opcode.Cont, true, Buffer.from('ghi')), opcode);
    t.is(m.opcode, 0, 'message over');
    t.false(m.streaming);
  }
  // A single-frame message in streaming mode.
  m.check(Opcode.Binary, 1, true);
  t.is(m.pushPart(Opcode.Binary, true, Buffer.from('z')), Opcode.Binary);
  t.is(m.opcode, 0);
});

test('streaming mode enforces UTF-8, fail fast and at the end', (t) => {
  const m = new MessageAssembler(LIMITS);
  m.check(Opcode.Text, 2, true);
  t.is(m.pushPart(Opcode.Text, false, hex('c3')), Opcode.Text);
  m.check(Opcode.Cont, 1, true);
  t.is(m.pushPart(Opcode.Cont, false, hex('a9')), Opcode.Text, 'é split across fragments');
  m.check(Opcode.Cont, 1, true);
  throwsProtocol(t, () => m.pushPart(Opcode.Cont, false, hex('ff')), InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);

  const n = new MessageAssembler(LIMITS);
  n.check(Opcode.Text, 1, true);
  n.pushPart(Opcode.Text, false, Buffer.from('a'));
  n.check(Opcode.Cont, 1, true);
  throwsProtocol(t, () => n.pushPart(Opcode.Cont, true, hex('f0 9f')), InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);

  const single = new MessageAssembler(LIMITS);
  single.check(Opcode.Text, 1, true);
  throwsProtocol(t, () => single.pushPart(Opcode.Text, true, hex('c0')), InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);

  // Binary in streaming mode is not checked.
  const bin = new MessageAssembler(LIMITS);
  bin.check(Opcode.Binary, 1, true);
  t.is(bin.pushPart(Opcode.Binary, true, hex('ff')), Opcode.Binary);
});
