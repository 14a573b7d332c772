// The frame reader on its own (src/core/frame-reader.ts): a parse step over a receive queue,
// with no socket, no promise and no timer: what it returns for each kind of input.
import test from 'ava';
import { InvalidUtf8Error, makeFrame, Opcode, ProtocolError } from '../../src';
import { FrameReader, NEED_MORE, ReadMode } from '../../src/core/frame-reader';
import { ReceiveQueue } from '../../src/core/receive-queue';

const limits = { maxMessageSize: 1 << 20, maxFragments: 100 };
const MAX_FRAME = 1 << 20;

function frame(opcode: Opcode, data: string | Buffer, fin = true, rsv1 = false): Buffer {
  return makeFrame({ fin, rsv1, rsv2: false, rsv3: false, masked: true, opcode, data: Buffer.from(data) });
}

function setup(): { q: ReceiveQueue; r: FrameReader; parse: (mode?: ReadMode, deflate?: boolean) => ReturnType<FrameReader['parse']> } {
  const q = new ReceiveQueue();
  const r = new FrameReader(limits);
  return { q, r, parse: (mode = ReadMode.MESSAGE, deflate = false) => r.parse(q, mode, false, MAX_FRAME, deflate) };
}

test('need more: says how many bytes the frame needs, and consumes nothing', (t) => {
  const { q, r, parse } = setup();
  t.is(parse(), NEED_MORE);
  t.is(r.needed, 2);
  const f = frame(Opcode.Binary, Buffer.alloc(300));
  q.push(f.subarray(0, 3));
  t.is(parse(), NEED_MORE);
  t.is(r.needed, 8, 'the header: 2 + 2 length bytes + 4 key bytes');
  q.push(f.subarray(3, 20));
  t.is(parse(), NEED_MORE);
  t.is(r.needed, f.length);
  t.is(r.wakeAt, f.length, 'binary is not looked at before it is all in');
  t.is(q.length, 20);
  q.push(f.subarray(20));
  t.deepEqual(parse(), { opcode: Opcode.Binary, data: Buffer.alloc(300) });
  t.is(q.length, 0);
});

test('fragments with a control frame between them: the control frame comes out alone, the message after', (t) => {
  const { q, parse } = setup();
  q.push(frame(Opcode.Text, 'Hel', false));
  q.push(frame(Opcode.Ping, 'p'));
  q.push(frame(Opcode.Cont, 'lo'));
  t.deepEqual(parse(), { opcode: Opcode.Ping, data: Buffer.from('p') });
  t.deepEqual(parse(), { opcode: Opcode.Text, data: Buffer.from('Hello') });
  t.is(parse(), NEED_MORE);
});

test('the three modes: a raw frame, a whole message, a piece of one', (t) => {
  const { q, parse } = setup();
  q.push(frame(Opcode.Text, 'ab', false));
  const raw = parse(ReadMode.FRAME);
  t.like(raw, { fin: false, opcode: Opcode.Text, masked: true, data: Buffer.from('ab') });
  q.push(frame(Opcode.Binary, 'cd', false));
  q.push(frame(Opcode.Cont, 'ef'));
  t.deepEqual(parse(ReadMode.FRAGMENT), { opcode: Opcode.Binary, data: Buffer.from('cd'), fin: false });
  t.deepEqual(parse(ReadMode.FRAGMENT), { opcode: Opcode.Binary, data: Buffer.from('ef'), fin: true });
});

test('text is checked as it trickles in: invalid UTF-8 fails before the frame is all in', (t) => {
  const { q, r, parse } = setup();
  const f = frame(Opcode.Text, Buffer.concat([Buffer.from('valid start '), Buffer.from([0xff]), Buffer.alloc(200, 0x61)]));
  q.push(f.subarray(0, 12));
  t.is(parse(), NEED_MORE);
  t.true(r.wakeAt < r.needed, 'text wants to look again before the frame is all in');
  t.true(r.validatedAhead > 0);
  q.push(f.subarray(12, 30));
  t.throws(() => parse(), { instanceOf: InvalidUtf8Error });
});

test('a compressed message is handed out to inflate, then taken back whole', (t) => {
  const { q, r, parse } = setup();
  q.push(frame(Opcode.Text, 'zz', false, true));
  const c = parse(ReadMode.MESSAGE, true);
  t.like(c, { kind: 'inflate', opcode: Opcode.Text, fin: false });
  t.is(r.inflated(c as never, Buffer.from('hé'), ReadMode.MESSAGE), null);
  q.push(frame(Opcode.Cont, 'yy'));
  const d = parse(ReadMode.MESSAGE, true);
  t.like(d, { kind: 'inflate', opcode: Opcode.Cont, fin: true });
  t.deepEqual(r.inflated(d as never, Buffer.from('llo'), ReadMode.MESSAGE), { opcode: Opcode.Text, data: Buffer.from('héllo') });
  t.is(r.inflateLimit(ReadMode.MESSAGE, MAX_FRAME, 1000), 1000, 'a new message may use the whole limit');
});

test('rule breaks throw ProtocolError with the close code, before the payload is read', (t) => {
  const { q, parse } = setup();
  q.push(frame(Opcode.Cont, 'no message to continue'));
  const err = t.throws(() => parse(), { instanceOf: ProtocolError });
  t.is(err?.closeCode, 1002);
  const other = setup();
  other.q.push(makeFrame(Opcode.Text, 'unmasked from a client', false));
  t.is(t.throws(() => other.parse(), { instanceOf: ProtocolError })?.code, 'WS_ERR_EXPECTED_MASK');
  const rsv = setup();
  rsv.q.push(frame(Opcode.Ping, 'x', true, true));
  t.is(t.throws(() => rsv.parse(ReadMode.MESSAGE, true), { instanceOf: ProtocolError })?.code, 'WS_ERR_UNEXPECTED_RSV');
});
