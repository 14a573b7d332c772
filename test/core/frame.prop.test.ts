/**
 * Properties of the frame codec (fast-check): what makeFrame encodes, cut anywhere, decodes to
 * the same frames and messages; headers round-trip; random bytes only ever give ProtocolError.
 */
import test from 'ava';
import fc from 'fast-check';
import { decodeHeader, Frame, HeaderRules, makeFrame, MessageAssembler, Opcode, ProtocolError, validateHeader } from '../../src';
import { MAX_SAFE_LENGTH, isControlOpcode } from '../../src/core/constants';
import { encodeHeader, firstByte, newFrameHeader } from '../../src/core/frame';
import { noise } from '../helpers/bytes';
import { IncrementalDecoder, chunked, decodeChunks } from '../helpers/chunked';

/** Payload sizes: mostly small, some around the 16-bit boundaries, rarely over 64 KiB. */
const payloadSize = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 3, arbitrary: fc.constantFrom(125, 126, 127, 65535, 65536) },
  { weight: 2, arbitrary: fc.integer({ min: 126, max: 3000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 65536, max: 70000 }) }
);
const binaryPayload = fc.tuple(payloadSize, fc.nat()).map(([n, seed]) => noise(n, seed));
const textPayload = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((s) => Buffer.from(s, 'utf8')) },
  { weight: 1, arbitrary: fc.tuple(payloadSize, fc.nat()).map(([n, seed]) => Buffer.from(noise(n, seed).toString('base64').slice(0, n))) }
);
const maskKey = fc.option(fc.uint8Array({ minLength: 4, maxLength: 4 }).map((k) => Buffer.from(k)), { nil: undefined });

interface ControlItem {
  opcode: 0x8 | 0x9 | 0xa;
  data: Buffer;
  key: Buffer | undefined;
}
const control = fc.record({
  opcode: fc.constantFrom(Opcode.Close, Opcode.Ping, Opcode.Pong),
  data: fc.tuple(fc.integer({ min: 0, max: 125 }), fc.nat()).map(([n, seed]) => noise(n, seed)),
  key: maskKey
});

interface MessageItem {
  opcode: 0x1 | 0x2;
  data: Buffer;
  /** Where the payload is cut into fragments (any byte offset, UTF-8 sequences included). */
  cuts: number[];
  /** Control frames sent between the fragments, each after fragment `at % fragments`. */
  between: Array<{ at: number; frame: ControlItem }>;
  keys: Array<Buffer | undefined>;
  /** Encode a single-frame message with makeFrame(opcode, data, masked, key) instead of makeFrame(frame, key). */
  shortForm: boolean;
}
const message: fc.Arbitrary<MessageItem> = fc.record({
  opcode: fc.constantFrom(Opcode.Text, Opcode.Binary),
  data: fc.constant(Buffer.alloc(0)),
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
  between: fc.array(fc.record({ at: fc.nat(), frame: control }), { maxLength: 2 }),
  keys: fc.array(maskKey, { minLength: 5, maxLength: 5 }),
  shortForm: fc.boolean()
}).chain((m) => (m.opcode === Opcode.Text ? textPayload : binaryPayload).map((data) => ({ ...m, data })));

const item = fc.oneof({ weight: 3, arbitrary: message.map((m) => ({ kind: 'message' as const, m })) }, { weight: 1, arbitrary: control.map((c) => ({ kind: 'control' as const, c })) });

interface Planned {
  frame: Frame;
  key: Buffer | undefined;
  shortForm: boolean;
}

/** Turns items into the frames to send, with control frames between fragments. */
function plan(items: Array<{ kind: 'message'; m: MessageItem } | { kind: 'control'; c: ControlItem }>, masked: boolean): Planned[] {
  const out: Planned[] = [];
  const controlFrame = (c: ControlItem): Planned => ({
    frame: { fin: true, rsv1: false, rsv2: false, rsv3: false, masked, opcode: c.opcode, data: c.data },
    key: c.key,
    shortForm: false
  });
  for (const it of items) {
    if (it.kind === 'control') {
      out.push(controlFrame(it.c));
      continue;
    }
    const { m } = it;
    const points = [...new Set(m.cuts.map((c) => c % (m.data.length + 1)))].sort((a, b) => a - b);
    const bounds = [0, ...points, m.data.length];
    const fragments = bounds.length - 1;
    for (let i = 0; i < fragments; i++) {
      const fin = i === fragments - 1;
      out.push({
        frame: {
          fin,
          rsv1: false,
          rsv2: false,
          rsv3: false,
          masked,
          opcode: i === 0 ? m.opcode : Opcode.Cont,
          data: m.data.subarray(bounds[i], bounds[i + 1])
        },
        key: m.keys[i],
        shortForm: m.shortForm && fragments === 1
      });
      if (!fin) for (const b of m.between) if (b.at % (fragments - 1) === i) out.push(controlFrame(b.frame));
    }
  }
  return out;
}

function encode(p: Planned): Buffer {
  return p.shortForm ? makeFrame(p.frame.opcode, p.frame.data, p.frame.masked, p.key) : makeFrame(p.frame, p.key);
}

/** Cut points given as millionths of the stream length (so they scale with it). */
const cutFractions = fc.array(fc.integer({ min: 0, max: 1_000_000 }), { maxLength: 12 });

function cutAt(bytes: Buffer, fractions: number[]): Buffer[] {
  const points = fractions.map((f) => Math.floor((f / 1_000_000) * bytes.length)).sort((a, b) => a - b);
  const sizes = points.map((p, i) => p - (i === 0 ? 0 : points[i - 1]!));
  return chunked(bytes, sizes);
}

test('property: any frame sequence, encoded with makeFrame and cut anywhere, decodes to the same frames and messages', (t) => {
  let bigSeen = 0;
  fc.assert(
    fc.property(fc.array(item, { minLength: 1, maxLength: 6 }), fc.boolean(), cutFractions, (items, masked, fractions) => {
      const planned = plan(items, masked);
      const wire = Buffer.concat(planned.map(encode));
      const rules: HeaderRules = { expectMasked: masked, maxFrameSize: 1 << 20 };
      const frames = decodeChunks(cutAt(wire, fractions), rules);
      if (frames.length !== planned.length) return false;
      let expectedSize = 0;
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        const p = planned[i]!;
        const n = p.frame.data.length;
        const lengthBytes = n < 126 ? 0 : n <= 0xffff ? 2 : 8;
        if (n > 0xffff) bigSeen++;
        expectedSize += 2 + lengthBytes + (masked ? 4 : 0) + n;
        if (
          f.fin !== p.frame.fin ||
          f.opcode !== p.frame.opcode ||
          f.masked !== masked ||
          f.rsv1 ||
          f.rsv2 ||
          f.rsv3 ||
          f.lengthBytes !== lengthBytes ||
          !f.data.equals(p.frame.data) ||
          (p.key !== undefined && masked && f.maskKey !== p.key.toString('hex'))
        ) {
          return false;
        }
      }
      if (wire.length !== expectedSize) return false;
      // The data frames make the original messages; control frames stay out of them.
      const assembler = new MessageAssembler({ maxMessageSize: 1 << 20, maxFragments: 10 });
      const messages: Buffer[] = [];
      for (const f of frames) {
        if (isControlOpcode(f.opcode)) continue;
        assembler.check(f.opcode, f.data.length, false);
        const msg = assembler.push(f.opcode, f.fin, f.data);
        if (msg) messages.push(msg);
      }
      const originals = items.flatMap((it) => (it.kind === 'message' ? [it.m.data] : []));
      return assembler.opcode === 0 && messages.length === originals.length && messages.every((m, i) => m.equals(originals[i]!));
    }),
    { numRuns: 300 }
  );
  t.true(bigSeen > 0, 'some frames used the 64-bit length');
});

test('property: encodeHeader then decodeHeader round-trips every length up to 2^53-1, and the header validates', (t) => {
  const length = fc.oneof(
    fc.integer({ min: 0, max: 300 }),
    fc.integer({ min: 0xff00, max: 0x1_0100 }),
    fc.integer({ min: 0, max: 0xffff_ffff }),
    fc.integer({ min: 2 ** 32 - 10, max: 2 ** 32 + 10 }),
    fc.maxSafeNat()
  );
  fc.assert(
    fc.property(
      length,
      fc.boolean(),
      fc.constantFrom(0x0, 0x1, 0x2, 0x8, 0x9, 0xa),
      fc.boolean(),
      fc.uint8Array({ minLength: 4, maxLength: 4 }),
      fc.integer({ min: 0, max: 5 }),
      (len, masked, opcode, fin, key, offset) => {
        const control = isControlOpcode(opcode);
        const n = control ? len % 126 : len;
        const isFin = control || fin;
        const dst = Buffer.alloc(offset + 14 + 3, 0xee);
        const end = encodeHeader(dst, offset, firstByte(isFin, opcode), n, masked, key);
        const h = newFrameHeader();
        if (decodeHeader(dst, offset, end, h) !== 0) return false;
        if (decodeHeader(dst, offset, end - 1, newFrameHeader()) !== 1) return false;
        validateHeader(h, { expectMasked: masked, maxFrameSize: MAX_SAFE_LENGTH });
        return (
          h.length === n &&
          h.fin === isFin &&
          h.opcode === opcode &&
          h.masked === masked &&
          h.headerSize === end - offset &&
          (masked ? Buffer.from(h.maskKey!).equals(key) : h.maskKey === null) &&
          dst[end] === 0xee &&
          (offset === 0 || dst[offset - 1] === 0xee)
        );
      }
    ),
    { numRuns: 1000 }
  );
  t.pass();
});

/** Header-like bytes: valid-looking first bytes, any second byte, boundary lengths, random rest. */
const headerish = fc
  .tuple(
    fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x00, 0x01, 0x02, 0x08, 0x09, 0x0a, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8a)),
    fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff)),
    fc.oneof(
      fc.uint8Array({ maxLength: 12 }),
      fc.constantFrom('007d', '007e', 'ffff', '0000000000000000', '000000000000ffff', '0000000000010000', '7fffffffffffffff', '8000000000000000', 'ffffffffffffffff').map((h) => Buffer.from(h, 'hex'))
    ),
    fc.uint8Array({ maxLength: 6 })
  )
  .map(([b0, b1, ext, rest]) => Buffer.concat([Buffer.of(b0, b1), ext, rest]));

const anyRules: fc.Arbitrary<HeaderRules> = fc.record({
  expectMasked: fc.boolean(),
  maxFrameSize: fc.oneof(fc.constant(Infinity), fc.constant(MAX_SAFE_LENGTH), fc.nat({ max: 1 << 20 })),
  allowRsv1: fc.boolean()
});

test('property: random bytes into decodeHeader + validateHeader give a header, "need N", or a ProtocolError, never another exception', (t) => {
  let accepted = 0;
  let rejected = 0;
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b)), headerish), fc.nat(), fc.nat(), anyRules, (bytes, o, e, rules) => {
      const offset = o % (bytes.length + 1);
      const end = offset + (e % (bytes.length - offset + 1));
      const avail = end - offset;
      const h = newFrameHeader();
      const need = decodeHeader(bytes, offset, end, h);
      if (!Number.isInteger(need) || need < 0) return false;
      if (need > 0) return avail < 2 ? need === 2 - avail : avail + need <= 14 && avail + need >= 2;
      if (![2, 4, 6, 8, 10, 14].includes(h.headerSize) || h.headerSize > avail) return false;
      try {
        validateHeader(h, rules);
      } catch (err) {
        rejected++;
        return (
          err instanceof ProtocolError &&
          (err.closeCode === 1002 || err.closeCode === 1009) &&
          err.code.startsWith('WS_ERR_') &&
          err.message.startsWith('Invalid WebSocket frame: ')
        );
      }
      accepted++;
      // A header that passes is canonical: encoding its fields gives back the same bytes.
      const again = Buffer.alloc(14);
      const size = encodeHeader(again, 0, bytes[offset]!, h.length, h.masked, h.maskKey ?? undefined);
      return (
        size === h.headerSize &&
        again.subarray(0, size).equals(bytes.subarray(offset, offset + size)) &&
        h.length <= rules.maxFrameSize &&
        (!isControlOpcode(h.opcode) || (h.fin && h.length <= 125)) &&
        h.masked === rules.expectMasked
      );
    }),
    { numRuns: 3000 }
  );
  t.true(accepted > 50, `${accepted} headers accepted`);
  t.true(rejected > 50, `${rejected} headers rejected`);
});

test('property: random byte streams fed to the incremental decoder in random chunks only ever throw ProtocolError', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(headerish, fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b))), { maxLength: 8 }).map((parts) => Buffer.concat(parts)),
      cutFractions,
      anyRules.map((r) => ({ ...r, maxFrameSize: Math.min(r.maxFrameSize, 4096) })),
      (bytes, fractions, rules) => {
        const decoder = new IncrementalDecoder(rules);
        try {
          for (const chunk of cutAt(bytes, fractions)) decoder.push(chunk);
        } catch (err) {
          return err instanceof ProtocolError;
        }
        return decoder.pending >= 0;
      }
    ),
    { numRuns: 1000 }
  );
  t.pass();
});
