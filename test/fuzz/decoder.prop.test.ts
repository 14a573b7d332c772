/**
 * Random input to the pure decoder: header decoding, header validation and message
 * assembly over arbitrary byte streams only ever give a frame, "need more bytes" or a
 * ProtocolError; never another exception, and never a loop that does not advance.
 * FUZZ_RUNS sets the number of runs (300 by default; CI's long run uses 25000).
 */
import test from 'ava';
import fc from 'fast-check';
import { isControlOpcode } from '../../src/core/constants';
import { ProtocolError } from '../../src/core/errors';
import { decodeHeader, newFrameHeader, validateHeader } from '../../src/core/frame';
import { applyMask } from '../../src/core/mask';
import { MessageAssembler } from '../../src/core/message';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

function decodeAll(bytes: Uint8Array, expectMasked: boolean, maxFrameSize: number): void {
  const h = newFrameHeader();
  const assembler = new MessageAssembler({ maxMessageSize: 4 * maxFrameSize, maxFragments: 8 });
  let at = 0;
  for (let frames = 0; frames <= bytes.length; frames++) {
    if (decodeHeader(bytes, at, bytes.length, h) > 0) return; // needs more bytes
    validateHeader(h, { expectMasked, maxFrameSize });
    const end = at + h.headerSize + h.length;
    if (end > bytes.length) return;
    const payload = Buffer.from(bytes.subarray(at + h.headerSize, end));
    if (h.maskKey) applyMask(payload, h.maskKey);
    if (!isControlOpcode(h.opcode)) {
      assembler.check(h.opcode, h.length, false);
      assembler.push(h.opcode, h.fin, payload);
    }
    if (end <= at) throw new Error('the decoder did not advance');
    at = end;
  }
  throw new Error('more frames than bytes');
}

const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 400 }),
  // Streams that start like real headers, so validation and assembly are reached often.
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 })), {
      maxLength: 8
    })
    .map((parts) => Uint8Array.from(parts.flatMap(([b0, b1, rest]) => [b0 | 0x80, (b1 & 0x80) | (b1 % 48), ...rest])))
);

for (const expectMasked of [true, false]) {
  test(`fuzz: the decoder (${expectMasked ? 'server' : 'client'} rules) only ever throws ProtocolError`, (t) => {
    fc.assert(
      fc.property(bytes, fc.integer({ min: 0, max: 300 }), (input, maxFrameSize) => {
        try {
          decodeAll(input, expectMasked, maxFrameSize);
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      { numRuns: RUNS }
    );
    t.pass();
  });
}
