/**
 * The real decoder, fuzzed: random message sequences (text and binary, fragmented, with
 * Pings and Pongs between the fragments, compressed or not when permessage-deflate is on,
 * ended by a Close) are encoded as the peer would send them, cut into random chunks and fed
 * to an `AsyncSocket` with `ws.feed(chunk)` while it reads. Read with `readData`,
 * `readFragment` or `recvFrame`, in both roles, they must come out exactly as they went in.
 * Compressed messages are made by the conformance suite's own permessage-deflate
 * (node:zlib, context takeover across messages), not by src/compression/deflate.ts.
 *
 * Random and corrupted bytes (which must only ever give ProtocolError or IOError) are fed in
 * read-data.prop.test.ts, with permessage-deflate on as well.
 * FUZZ_RUNS sets the number of runs (300 by default; CI's long run uses 25000).
 */
import test from 'ava';
import fc from 'fast-check';
import { AsyncSocket, DeflateSettings, Frame, makeFrame, Opcode, readData, readFragment, recvFrame, Role } from '../../src';
import { DeflateCodec } from '../conformance/compression';
import { memorySocket } from '../helpers/memory-socket';
import { within } from '../helpers/wait';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** permessage-deflate agreed with context takeover and full windows both ways. */
const DEFLATE: DeflateSettings = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15
};

interface Control {
  opcode: typeof Opcode.Ping | typeof Opcode.Pong;
  data: Buffer;
}

interface DataMessage {
  text: boolean;
  data: Buffer;
  /** Sent compressed (RSV1 on the first frame); only when deflate is on. */
  compressed: boolean;
  /** Where the payload is cut into frames (fractions of its length, sorted). */
  cuts: number[];
  /** Control frames after fragment `after` (before the next one). */
  controls: Array<{ after: number; control: Control }>;
}

type Item = DataMessage | Control;

const control: fc.Arbitrary<Control> = fc.record({
  opcode: fc.constantFrom(Opcode.Ping, Opcode.Pong),
  data: fc.uint8Array({ maxLength: 125 }).map((b) => Buffer.from(b))
});

// Mostly small payloads; now and then one past the 16-bit length boundary.
const size = fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 300 }) }, { weight: 1, arbitrary: fc.integer({ min: 65_530, max: 66_000 }) });

function dataMessage(deflate: boolean): fc.Arbitrary<DataMessage> {
  return fc
    .record({
      text: fc.boolean(),
      size,
      seed: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      compressed: deflate ? fc.boolean() : fc.constant(false),
      cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
      controls: fc.array(fc.record({ after: fc.nat(), control }), { maxLength: 3 })
    })
    .map(({ text, size: n, seed, bytes, compressed, cuts, controls }) => {
      // Text repeats a random string (multi-byte characters, cut anywhere by the frames);
      // binary repeats random bytes. Repetition gives deflate something to refer back to.
      const unit = text ? Buffer.from(seed, 'utf8') : Buffer.from(bytes);
      let data = Buffer.alloc(0);
      if (n > 0) {
        data = Buffer.concat(Array.from({ length: Math.ceil(n / unit.length) }, () => unit));
        if (!text) data = data.subarray(0, n); // text keeps whole characters
      }
      const sorted = [...cuts].sort((a, b) => a - b);
      return { text, data, compressed, cuts: sorted, controls: controls.map((c) => ({ after: c.after % (sorted.length + 1), control: c.control })) };
    });
}

function items(deflate: boolean): fc.Arbitrary<Item[]> {
  return fc.array(fc.oneof({ weight: 4, arbitrary: dataMessage(deflate) }, { weight: 1, arbitrary: control }), { maxLength: 6 });
}

/** Bytes after bytes: chunk sizes cycled until the stream is used up. */
const chunkSizes = fc.array(fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 2000 })), { minLength: 1, maxLength: 12 });

const isData = (i: Item): i is DataMessage => 'cuts' in i;

/** What each reader must return, and the frames that carry it. */
interface Encoded {
  frames: Frame[];
  /** readData: messages (whole, inflated) and control frames, in order. */
  messages: Array<{ opcode: Opcode; data: Buffer }>;
  /**
   * readFragment: one per frame, data frames with their message's opcode; `whole`: the
   * message a compressed frame belongs to (its pieces are whatever each frame inflated to).
   */
  fragments: Array<{ opcode: Opcode; fin: boolean; data: Buffer; whole: Buffer | null }>;
}

const CLOSE = Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65]); // 1000 "bye"

function frame(opcode: Opcode, data: Buffer, fin = true, rsv1 = false): Frame {
  return { fin, rsv1, rsv2: false, rsv3: false, masked: false, opcode, data };
}

/** Encodes the items as the peer of `role` sends them (compressing with `codec`), then a Close. */
function encode(list: Item[], codec: DeflateCodec): Encoded {
  const out: Encoded = { frames: [], messages: [], fragments: [] };
  const pushControl = (c: Control): void => {
    out.frames.push(frame(c.opcode, c.data));
    out.messages.push({ opcode: c.opcode, data: c.data });
    out.fragments.push({ opcode: c.opcode, fin: true, data: c.data, whole: null });
  };
  for (const item of list) {
    if (!isData(item)) {
      pushControl(item);
      continue;
    }
    const opcode = item.text ? Opcode.Text : Opcode.Binary;
    const payload = item.compressed ? codec.compress(item.data) : item.data;
    const at = [0, ...item.cuts.map((c) => Math.floor(c * payload.length)), payload.length];
    for (let i = 0; i + 1 < at.length; i++) {
      const last = i + 2 === at.length;
      const piece = payload.subarray(at[i], at[i + 1]);
      out.frames.push(frame(i === 0 ? opcode : Opcode.Cont, piece, last, item.compressed && i === 0));
      out.fragments.push({ opcode, fin: last, data: piece, whole: item.compressed ? item.data : null });
      for (const c of item.controls) if (c.after === i && !last) pushControl(c.control);
    }
    out.messages.push({ opcode, data: item.data });
  }
  out.frames.push(frame(Opcode.Close, CLOSE));
  out.messages.push({ opcode: Opcode.Close, data: CLOSE });
  out.fragments.push({ opcode: Opcode.Close, fin: true, data: CLOSE, whole: null });
  return out;
}

type Mode = 'readData' | 'readFragment' | 'recvFrame';

/** Reads what `mode` returns for `enc` and throws at the first difference. */
async function readAll(ws: AsyncSocket, mode: Mode, enc: Encoded): Promise<void> {
  const differ = (what: string, got: unknown, want: unknown): Error =>
    new Error(`${mode}: ${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  const show = (x: { opcode: number; data: Buffer }): string => `${x.opcode}:${x.data.toString('hex')}`;
  if (mode === 'readData') {
    for (const [i, want] of enc.messages.entries()) {
      const got = await readData(ws);
      if (got.opcode !== want.opcode || !got.data.equals(want.data)) throw differ(`message ${i}`, show(got), show(want));
    }
  } else if (mode === 'recvFrame') {
    for (const [i, want] of enc.frames.entries()) {
      const got = await recvFrame(ws);
      const a = [got.fin, got.rsv1, got.rsv2, got.rsv3, got.opcode, got.data.toString('hex')];
      const b = [want.fin, want.rsv1, false, false, want.opcode, want.data.toString('hex')];
      if (a.join() !== b.join()) throw differ(`frame ${i}`, a, b);
    }
  } else {
    // An inflated piece is whatever its frame inflated to: compare a compressed message whole.
    let inflated: Buffer[] = [];
    for (const [i, want] of enc.fragments.entries()) {
      const got = await readFragment(ws);
      if (got.opcode !== want.opcode || got.fin !== want.fin) throw differ(`fragment ${i}`, [got.opcode, got.fin], [want.opcode, want.fin]);
      if (want.whole === null) {
        if (!got.data.equals(want.data)) throw differ(`fragment ${i}`, show(got), show(want));
        continue;
      }
      inflated.push(Buffer.from(got.data));
      if (want.fin) {
        const whole = Buffer.concat(inflated);
        if (!whole.equals(want.whole)) throw differ(`compressed message ending at fragment ${i}`, whole.toString('hex'), want.whole.toString('hex'));
        inflated = [];
      }
    }
  }
}

async function roundTrip(role: Role, deflate: boolean, mode: Mode, list: Item[], key: Uint8Array, sizes: number[]): Promise<void> {
  // The peer plays the other role: a client peer masks every frame, a server peer none.
  const peer: Role = role === 'server' ? 'client' : 'server';
  const enc = encode(list, new DeflateCodec({ ...DEFLATE }, peer));
  const bytes = Buffer.concat(enc.frames.map((f) => (peer === 'client' ? makeFrame({ ...f, masked: true }, key) : makeFrame(f))));
  const { duplex } = memorySocket();
  const ws = new AsyncSocket(duplex, { role, closeTimeout: 50, ...(deflate ? { deflate: { ...DEFLATE } } : {}) });
  try {
    const reading = readAll(ws, mode, enc);
    reading.catch(() => undefined); // awaited below, after the bytes went in
    // The reader runs while the bytes arrive: frames and headers split across chunks.
    let at = 0;
    for (let i = 0; at < bytes.length; i++) {
      const n = sizes[i % sizes.length]!;
      ws.feed(bytes.subarray(at, at + n));
      at += n;
      // The reader takes what it can before the next chunk; now and then a full turn of the
      // event loop lets zlib's work come back as well.
      if (i % 4 === 3) await new Promise<void>((resolve) => setImmediate(resolve));
      else await null;
    }
    await within(reading, `${mode} to read everything`, 10_000);
  } finally {
    ws.destroy();
  }
}

for (const role of ['server', 'client'] as Role[]) {
  for (const deflate of [false, true]) {
    test(`fuzz: message sequences fed in random chunks to ${role === 'server' ? 'a server' : 'a client'}${deflate ? ' with permessage-deflate' : ''} read back exactly`, async (t) => {
      // 20 ms a run: on a busy machine 25,000 runs took 111 s (37 s of CPU), and over 250 s beside two CI runs.
      t.timeout(Math.max(60_000, RUNS * 20));
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom<Mode>('readData', 'readFragment', 'recvFrame'),
          items(deflate),
          fc.uint8Array({ minLength: 4, maxLength: 4 }),
          chunkSizes,
          (mode, list, key, sizes) => roundTrip(role, deflate, mode, list, key, sizes)
        ),
        { numRuns: RUNS }
      );
      t.pass();
    });
  }
}
