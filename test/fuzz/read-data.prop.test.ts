/**
 * Random input at the socket level: whatever bytes arrive, in whatever chunks, `readData`
 * (and `recvFrame`, `readFragment`) only ever reject with ProtocolError or IOError, never
 * throw anything else, never hang, and after a ProtocolError the first frame written back
 * is a Close carrying its closeCode. No network: the bytes are pushed into an in-memory
 * Duplex, which is what the socket's 'data' events look like to AsyncSocket.
 */
import test from 'ava';
import fc from 'fast-check';
import { AsyncSocket, Role } from '../../src/async-socket';
import { Opcode } from '../../src/core/constants';
import { IOError, ProtocolError } from '../../src/core/errors';
import { decodeHeader, makeFrame, newFrameHeader } from '../../src/core/frame';
import { applyMask } from '../../src/core/mask';
import { readData, readFragment, recvFrame } from '../../src/recv';
import { memorySocket } from '../helpers/memory-socket';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** The first frame in `bytes`, unmasked, or null. */
function firstFrame(bytes: Buffer): { opcode: number; data: Buffer } | null {
  const h = newFrameHeader();
  if (decodeHeader(bytes, 0, bytes.length, h) !== 0 || bytes.length < h.headerSize + h.length) return null;
  const data = Buffer.from(bytes.subarray(h.headerSize, h.headerSize + h.length));
  if (h.maskKey) applyMask(data, h.maskKey);
  return { opcode: h.opcode, data };
}

// Inputs: random bytes, and valid frames with a few bytes flipped, cut into random chunks.
const frameBytes = fc
  .record({
    opcode: fc.constantFrom(0, 1, 2, 8, 9, 10),
    fin: fc.boolean(),
    masked: fc.boolean(),
    data: fc.uint8Array({ maxLength: 300 })
  })
  .map((f) =>
    makeFrame({ fin: f.fin, rsv1: false, rsv2: false, rsv3: false, masked: f.masked, opcode: f.opcode as Opcode, data: Buffer.from(f.data) })
  );
const mutated = fc
  .tuple(fc.array(frameBytes, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
  .map(([frames, flips]) => {
    const bytes = Buffer.concat(frames);
    for (const [at, value] of flips) bytes[at % bytes.length] = value;
    return bytes;
  });
const input = fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 600 }).map((b) => Buffer.from(b)), mutated);
const cuts = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 });

async function drive(bytes: Buffer, sizes: number[], role: Role, mode: number): Promise<void> {
  const { duplex, written } = memorySocket();
  const ws = new AsyncSocket(duplex, { role, maxFrameSize: 200, maxMessageSize: 400, maxFragments: 4, closeTimeout: 50 });
  const read = mode === 0 ? readData : mode === 1 ? readFragment : recvFrame;
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    duplex.push(bytes.subarray(at, at + n));
    at += n;
  }
  duplex.push(null);
  // Each successful read consumes at least 2 bytes, so this many reads must end it.
  for (let i = 0; i <= bytes.length / 2 + 2; i++) {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('readData hung')), 2000);
    });
    try {
      await Promise.race([read(ws), hang]);
    } catch (err) {
      if (err instanceof ProtocolError) {
        const close = firstFrame(Buffer.concat(written).subarray(closeStart(written, role)));
        if (close === null || close.opcode !== Opcode.Close || close.data.readUInt16BE(0) !== err.closeCode) {
          throw new Error(`after ${err.code} the Close sent does not carry ${err.closeCode}`, { cause: err });
        }
        return;
      }
      if (err instanceof IOError) return;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
  throw new Error('reads did not end');
}

// Pongs and close echoes may precede the failure's Close: skip to the last frame written.
function closeStart(written: Buffer[], _role: Role): number {
  let total = 0;
  for (let i = 0; i < written.length - 1; i++) total += written[i]!.length;
  return total;
}

for (const [role, mode, name] of [
  ['server', 0, 'readData as server'],
  ['client', 0, 'readData as client'],
  ['server', 1, 'readFragment as server'],
  ['client', 2, 'recvFrame as client']
] as [Role, number, string][]) {
  test(`fuzz: ${name} only ever rejects with ProtocolError or IOError`, async (t) => {
    await fc.assert(fc.asyncProperty(input, cuts, (bytes, sizes) => drive(bytes, sizes, role, mode)), { numRuns: RUNS });
    t.pass();
  });
}
