/**
 * CPU a peer can make us spend through permessage-deflate by beginning new deflate streams
 * (issue 11, finding 2): a new stream after a block marked final (BFINAL) costs a zlib stream
 * of its own and one more thread-pool trip. Continuation frames of 38 bytes, each packed with
 * 16 empty final streams (`03 00`), cost 17.4 s of CPU per 760 KB against 1.1 s for as many
 * ordinary compressed frames. A frame may now begin one new stream, plus one per 1 KiB of its
 * payload; the rest fails the connection with 1008.
 */
import test from 'ava';
import { constants, createDeflateRaw, deflateRawSync } from 'node:zlib';
import { PerMessageDeflate, ProtocolError } from '../../src';

const DEFLATE = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
const EMPTY_STREAM = Buffer.from([0x03, 0x00]); // one empty fixed-Huffman block, BFINAL set
const HEADER = 6; // a masked client frame's header, for the bytes on the wire

interface Cost {
  frames: number;
  wireBytes: number;
  cpuMs: number;
  error: unknown;
}

// Inflates `frames` through one connection's decompressor, as readData does: as one message,
// or as one message each.
async function inflateAll(frames: Buffer[], eachAMessage = false, params = DEFLATE): Promise<Cost> {
  const d = new PerMessageDeflate(params, false);
  const before = process.cpuUsage();
  let wireBytes = 0;
  let error: unknown = null;
  let i = 0;
  try {
    for (; i < frames.length; i++) {
      wireBytes += HEADER + frames[i]!.length;
      await d.inflate(frames[i]!, eachAMessage || i === 0, eachAMessage || i === frames.length - 1, 1 << 30);
    }
  } catch (err) {
    error = err;
  } finally {
    d.close();
  }
  const used = process.cpuUsage(before);
  return { frames: i, wireBytes, cpuMs: (used.user + used.system) / 1000, error };
}

// Ordinary compressed frames: one stream with context takeover, a sync flush per frame.
async function ordinaryFrames(n: number): Promise<Buffer[]> {
  const z = createDeflateRaw();
  const out: Buffer[] = [];
  let pending: Buffer[] = [];
  z.on('data', (c: Buffer) => pending.push(c));
  for (let i = 0; i < n; i++) {
    z.write(`message text ${i}`);
    await new Promise<void>((resolve) => z.flush(constants.Z_SYNC_FLUSH, () => resolve()));
    const frame = Buffer.concat(pending);
    pending = [];
    out.push(i === n - 1 ? frame.subarray(0, frame.length - 4) : frame);
  }
  z.close();
  return out;
}

const perFrameUs = (c: Cost): number => (c.cpuMs * 1000) / c.frames;

test('frames packed with empty final streams fail at the first frame, with 1008', async (t) => {
  const packed = Buffer.concat(Array.from({ length: 16 }, () => EMPTY_STREAM)); // the 38-byte frame of the report, less its header
  const cost = await inflateAll(Array.from({ length: 1000 }, () => packed));
  t.true(cost.error instanceof ProtocolError, String(cost.error));
  t.is((cost.error as ProtocolError).closeCode, 1008);
  t.is(cost.frames, 0, 'the first frame fails');
  t.log(`16 empty streams per frame: failed at frame ${cost.frames + 1}, ${cost.cpuMs.toFixed(1)} ms of CPU`);
});

test('the most a peer may do (one new stream per frame) costs what ordinary traffic without context takeover costs', async (t) => {
  const n = 4000;
  // Ordinary traffic with context takeover: one stream for the whole connection.
  const takeover = await inflateAll(await ordinaryFrames(n));
  t.is(takeover.error, null);
  // Ordinary traffic without it (client_no_context_takeover): a new stream for every message.
  const messages = Array.from({ length: n }, (_, i) => {
    const z = deflateRawSync(`message text ${i}`, { finishFlush: constants.Z_SYNC_FLUSH });
    return z.subarray(0, z.length - 4);
  });
  const noTakeover = await inflateAll(messages, true, { ...DEFLATE, clientNoContextTakeover: true });
  t.is(noTakeover.error, null);
  // The attack: each frame of one message is one empty final stream, so every frame begins a
  // new stream (allowed: one per frame).
  const hostile = await inflateAll(Array.from({ length: n }, () => EMPTY_STREAM));
  t.is(hostile.error, null);
  // Two per small frame are refused at once.
  const twice = await inflateAll(Array.from({ length: n }, () => Buffer.concat([EMPTY_STREAM, EMPTY_STREAM])));
  t.true(twice.error instanceof ProtocolError);
  t.true(twice.frames <= 1, `refused at frame ${twice.frames + 1}`);
  const vsNoTakeover = perFrameUs(hostile) / perFrameUs(noTakeover);
  const vsTakeover = perFrameUs(hostile) / perFrameUs(takeover);
  t.log(
    `CPU per frame: ordinary with context takeover ${perFrameUs(takeover).toFixed(1)} µs, without ${perFrameUs(noTakeover).toFixed(1)} µs; ` +
      `a new stream in every frame ${perFrameUs(hostile).toFixed(1)} µs (x${vsNoTakeover.toFixed(1)} and x${vsTakeover.toFixed(1)}); ` +
      `per byte on the wire x${(hostile.cpuMs / hostile.wireBytes / (noTakeover.cpuMs / noTakeover.wireBytes)).toFixed(1)} of ordinary traffic without takeover`
  );
  // A new zlib stream per frame is what every message costs without context takeover; before
  // the bound a frame could begin 17 (about 40 times an ordinary frame).
  t.true(vsNoTakeover < 2.5, `x${vsNoTakeover.toFixed(1)} the CPU of ordinary frames without context takeover`);
  t.true(vsTakeover < 12, `x${vsTakeover.toFixed(1)} the CPU of ordinary frames with context takeover`);
});

test('a large frame may begin one new stream per KiB; a §7.2.3.4 sender (BFINAL, then the rest) still inflates', async (t) => {
  const d = new PerMessageDeflate(DEFLATE, false);
  t.teardown(() => d.close());
  const hello = Buffer.from('f348cdc9c90700', 'hex'); // "Hello" in a stream that ends with BFINAL
  t.is((await d.inflate(Buffer.concat([hello, Buffer.from('00', 'hex')]), true, true, 100)).toString(), 'Hello');
  // In a frame of at least 1 KiB, two streams after the first are within the allowance.
  const filler = Buffer.from(Array.from({ length: 1030 }, () => 'x').join(''));
  const stored = Buffer.concat([Buffer.from([0x01, filler.length & 0xff, filler.length >> 8, ~filler.length & 0xff, (~filler.length >> 8) & 0xff]), filler]);
  const out = await d.inflate(Buffer.concat([stored, hello, hello]), true, true, 1 << 20);
  t.is(out.toString(), `${filler.toString()}HelloHello`);
});
