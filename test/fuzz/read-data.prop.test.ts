/**
 * Random input at the socket level: whatever bytes arrive, in whatever chunks, `readData`
 * (and `recvFrame`, `readFragment`) only ever reject with ProtocolError or IOError, never
 * throw anything else, never hang, and after a ProtocolError the first frame written back
 * is a Close carrying its closeCode. With permessage-deflate on as well: frames with RSV1
 * whose payloads are compressed (node:zlib, by the test), corrupted, or inflate past the
 * message limit. No network: the bytes are pushed into an in-memory Duplex, which is what the
 * socket's 'data' events look like to AsyncSocket.
 * FUZZ_RUNS sets the number of runs (300 by default; CI's long run uses 25000).
 */
import test from 'ava';
import fc from 'fast-check';
import { applyMask, AsyncSocket, decodeHeader, DeflateSettings, IOError, makeFrame, Opcode, ProtocolError, readData, readFragment, recvFrame, Role } from '../../src';
import { newFrameHeader } from '../../src/core/frame';
import { deflateLoad } from '../../src/compression/zlib-jobs';
import { compressMessage } from '../conformance/compression';
import { memorySocket } from '../helpers/memory-socket';
import { within } from '../helpers/wait';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** The first frame in `bytes`, unmasked, or null. */
function firstFrame(bytes: Buffer): { opcode: number; data: Buffer } | null {
  const h = newFrameHeader();
  if (decodeHeader(bytes, 0, bytes.length, h) !== 0 || bytes.length < h.headerSize + h.length) return null;
  const data = Buffer.from(bytes.subarray(h.headerSize, h.headerSize + h.length));
  if (h.maskKey) applyMask(data, h.maskKey);
  return { opcode: h.opcode, data };
}

/** permessage-deflate as agreed for the deflate runs: context takeover, full windows. */
const DEFLATE: DeflateSettings = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15
};

// Inputs: random bytes, and valid frames with a few bytes flipped, cut into random chunks.
// With deflate, a frame may carry RSV1 and a compressed payload: random bytes, or a run of
// one byte that inflates far past maxMessageSize; and most frames are data frames, whole and
// masked as the peer must, so that the corrupted and oversized ones reach the inflater.
function frameBytes(deflate: boolean, peerMasks: boolean): fc.Arbitrary<Buffer> {
  const compressed = fc.oneof(fc.uint8Array({ maxLength: 150 }).map((b) => Buffer.from(b)), fc.integer({ min: 0, max: 5000 }).map((n) => Buffer.alloc(n, 0x61)));
  const usually = <T>(likely: fc.Arbitrary<T>, any: fc.Arbitrary<T>): fc.Arbitrary<T> =>
    deflate ? fc.oneof({ weight: 4, arbitrary: likely }, { weight: 1, arbitrary: any }) : any;
  return fc
    .record({
      opcode: usually(fc.constantFrom(1, 2), fc.constantFrom(0, 1, 2, 8, 9, 10)),
      fin: usually(fc.constant(true), fc.boolean()),
      masked: usually(fc.constant(peerMasks), fc.boolean()),
      data: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      deflated: deflate ? fc.option(compressed, { freq: 2 }) : fc.constant(null)
    })
    .map((f) =>
      makeFrame({
        fin: f.fin,
        rsv1: f.deflated !== null,
        rsv2: false,
        rsv3: false,
        masked: f.masked,
        opcode: f.opcode as Opcode,
        data: f.deflated !== null ? compressMessage(f.deflated, 15) : f.data
      })
    );
}
function input(deflate: boolean, role: Role): fc.Arbitrary<Buffer> {
  const mutated = fc
    .tuple(fc.array(frameBytes(deflate, role === 'server'), { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
    .map(([frames, flips]) => {
      const bytes = Buffer.concat(frames);
      for (const [at, value] of flips) bytes[at % bytes.length] = value;
      return bytes;
    });
  return fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 600 }).map((b) => Buffer.from(b)), mutated);
}
const cuts = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 });

async function drive(bytes: Buffer, sizes: number[], role: Role, mode: number, deflate: boolean): Promise<void> {
  const { duplex, written } = memorySocket();
  const ws = new AsyncSocket(duplex, {
    role,
    maxFrameSize: 200,
    maxMessageSize: 400,
    maxFragments: 4,
    closeTimeout: 50,
    ...(deflate ? { deflate: { ...DEFLATE } } : {})
  });
  try {
    await readUntilFailure(ws, bytes, sizes, role, mode, duplex, written);
  } finally {
    ws.destroy(); // frees its zlib streams at once
  }
}

async function readUntilFailure(
  ws: AsyncSocket,
  bytes: Buffer,
  sizes: number[],
  role: Role,
  mode: number,
  duplex: ReturnType<typeof memorySocket>['duplex'],
  written: Buffer[]
): Promise<void> {
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
    try {
      // A generous bound: only a read that never settles may take this long.
      await within(read(ws), 'a read to settle', 10_000);
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

for (const [role, mode, deflate, name] of [
  ['server', 0, false, 'readData as server'],
  ['client', 0, false, 'readData as client'],
  ['server', 1, false, 'readFragment as server'],
  ['client', 2, false, 'recvFrame as client'],
  ['server', 0, true, 'readData as server with permessage-deflate'],
  ['client', 1, true, 'readFragment as client with permessage-deflate']
] as [Role, number, boolean, string][]) {
  test(`fuzz: ${name} only ever rejects with ProtocolError or IOError`, async (t) => {
    t.timeout(Math.max(60_000, RUNS * 20)); // see decoder.prop.test.ts
    await fc.assert(fc.asyncProperty(input(deflate, role), cuts, (bytes, sizes) => drive(bytes, sizes, role, mode, deflate)), { numRuns: RUNS, verbose: 1, includeErrorInReport: true, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) });
    // Wake-ups of a thread pool that left a zlib job asleep (src/compression/zlib-jobs.ts): without them
    // this run hung now and then under load, a read never settling.
    if (deflate) t.log(`thread-pool wake-ups so far: ${deflateLoad().kicks}`);
    t.pass();
  });
}
