/**
 * The process-wide budget of plain bytes in flight through zlib, the process-wide allowance
 * of amplified bytes (issue 23), the per-message ratio bound a user may turn on
 * (maxInflateRatio) and the read loops that keep nothing of a message once it is handled
 * (issue 11, finding 3). AVA runs each test file in a worker of its own, so the budget set
 * here is this file's.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import zlib from 'node:zlib';
import { DeflateParams, handleEvents, makeFrame, messages, Opcode, PerMessageDeflate, ProtocolError, readData, sendBinary, setZlibLimits } from '../../src';
import { deflateLoad } from '../../src/compression/zlib-jobs';
import { PEER_KEY, pair, rawPair, until, within } from '../helpers/socket-pair';

const KiB = 1024;
const MiB = 1024 * KiB;
const PARAMS: DeflateParams = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

/** `data` deflated as one message of §7.2.1: a sync flush without its 00 00 ff ff tail. */
function compress(data: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/**
 * `n` random letters of a `k`-letter alphabet: data that compresses only a little (16
 * letters: about 1.9x; 2 letters: about 6x), so all of it counts in the budget, none in the
 * allowance of amplified bytes (past 10x).
 */
function letters(n: number, k = 16): Buffer {
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) b[i] = 97 + (b[i]! % k);
  return b;
}

/** A masked client frame with RSV1 (the first of a compressed message) or without. */
function compressedFrame(opcode: Opcode, payload: Buffer, fin: boolean, rsv1: boolean): Buffer {
  return makeFrame({ fin, rsv1, rsv2: false, rsv3: false, masked: true, opcode, data: payload }, PEER_KEY);
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test.serial('inflations start only while their reservation fits in the budget: bytes in flight stay within it', async (t) => {
  const before = setZlibLimits({ inflateBudget: 4 * MiB });
  t.teardown(() => setZlibLimits(before));
  const plain = letters(MiB);
  const payload = compress(plain);
  const contexts = Array.from({ length: 12 }, () => new PerMessageDeflate(PARAMS, false));
  t.teardown(() => contexts.forEach((d) => d.close()));
  let most = 0;
  let sampling = true;
  const sample = (): void => {
    most = Math.max(most, deflateLoad().inFlight);
    if (sampling) setImmediate(sample);
  };
  sample();
  // Each message is handed out (given back) once inflated, as readData does.
  const outs = await within(
    Promise.all(
      contexts.map(async (d) => {
        const out = await d.inflate(payload, true, true, MiB);
        d.handedOut();
        return out.length;
      })
    ),
    'every inflation'
  );
  sampling = false;
  t.deepEqual(outs, contexts.map(() => MiB));
  t.log(
    `12 messages of 1 MiB (${(plain.length / payload.length).toFixed(1)}x) with a budget of 4 MiB: at most ${(most / MiB).toFixed(2)} MiB in flight`
  );
  t.true(most <= 4 * MiB, `${most} bytes in flight`);
  t.true(most >= 2 * MiB, 'several ran at once');
  await until(() => deflateLoad().inFlight === 0, 'the budget to come back whole');
});

test.serial('a message larger than the budget still goes through, alone', async (t) => {
  const before = setZlibLimits({ inflateBudget: 1 * MiB });
  t.teardown(() => setZlibLimits(before));
  const d = new PerMessageDeflate(PARAMS, false);
  t.teardown(() => d.close());
  const out = await within(d.inflate(compress(Buffer.alloc(3 * MiB)), true, true, 16 * MiB), 'the inflation');
  d.handedOut();
  t.is(out.length, 3 * MiB);
  t.is(deflateLoad().inFlight, 0);
});

test.serial('over the budget, a message in progress that waits on its peer is dropped (1013) so others can go on', async (t) => {
  const before = setZlibLimits({ inflateBudget: 4 * MiB });
  t.teardown(() => setZlibLimits(before));
  const stalled = await rawPair(t, 'server', { deflate: PARAMS });
  const other = await rawPair(t, 'server', { deflate: PARAMS });
  const evictionsBefore = deflateLoad().evictions;
  // The first frame of a message that inflates to 5 MiB, past the whole budget (it went
  // through alone), and nothing more from that peer.
  const part = zlib.deflateRawSync(letters(5 * MiB), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const stalledRead = readData(stalled.ws).then(
    () => null,
    (e: unknown) => e
  );
  stalled.raw.write(compressedFrame(Opcode.Binary, part, false, true));
  await until(() => deflateLoad().inFlight >= 5 * MiB && deflateLoad().running === 0, 'the first frame to inflate');
  // Another connection's message may not start while the budget is spent by the other.
  const data = letters(2 * MiB);
  other.raw.write(compressedFrame(Opcode.Binary, compress(data), true, true));
  const m = await within(readData(other.ws), 'the other message', 10_000);
  t.true(m.data.equals(data));
  const err = await within(stalledRead, 'the stalled read to fail');
  t.true(err instanceof ProtocolError, String(err));
  t.is((err as ProtocolError).code, 'WS_ERR_INFLATE_BUDGET');
  t.is((err as ProtocolError).closeCode, 1013);
  const [close] = await stalled.peer.waitFrames(1);
  t.is(close!.opcode, Opcode.Close);
  t.is(close!.data.readUInt16BE(0), 1013);
  t.is(deflateLoad().evictions, evictionsBefore + 1);
  await until(() => deflateLoad().inFlight === 0, 'the budget to come back whole');
});

test.serial('a message in progress within the budget is not dropped, and others go on beside it', async (t) => {
  const before = setZlibLimits({ inflateBudget: 8 * MiB });
  t.teardown(() => setZlibLimits(before));
  const slow = await rawPair(t, 'server', { deflate: PARAMS });
  const other = await rawPair(t, 'server', { deflate: PARAMS });
  const evictionsBefore = deflateLoad().evictions;
  const data = letters(3 * MiB);
  const whole = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const half = whole.length >> 1;
  const reading = readData(slow.ws);
  reading.catch(() => undefined);
  slow.raw.write(compressedFrame(Opcode.Binary, whole.subarray(0, half), false, true));
  await until(() => deflateLoad().inFlight > 0 && deflateLoad().running === 0, 'the first half to inflate');
  const second = letters(2 * MiB);
  other.raw.write(compressedFrame(Opcode.Binary, compress(second), true, true));
  t.true((await within(readData(other.ws), 'the other message')).data.equals(second));
  // The rest comes later; the tail 00 00 ff ff stays off (§7.2.1).
  slow.raw.write(compressedFrame(Opcode.Cont, whole.subarray(half, whole.length - 4), true, false));
  t.true((await within(reading, 'the slow message')).data.equals(data));
  t.is(deflateLoad().evictions, evictionsBefore, 'no eviction');
});

test.serial('the budget drops the message that cost most per byte its peer sent, not the largest', async (t) => {
  const before = setZlibLimits({ inflateBudget: 4 * MiB });
  t.teardown(() => setZlibLimits(before));
  const honest = await rawPair(t, 'server', { deflate: PARAMS });
  const dense = await rawPair(t, 'server', { deflate: PARAMS });
  const other = await rawPair(t, 'server', { deflate: PARAMS });
  const evictionsBefore = deflateLoad().evictions;
  // Half of an honest 6 MiB message at under 2x, and a stalled 2 MiB one at about 8x (under
  // the ratio, so all of it counts in the budget): together they spend it.
  const data = letters(6 * MiB);
  const whole = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const half = whole.length >> 1;
  const honestRead = readData(honest.ws);
  honestRead.catch(() => undefined);
  honest.raw.write(compressedFrame(Opcode.Binary, whole.subarray(0, half), false, true));
  // (Half the compressed bytes inflate to about half the message: zlib may keep a little back.)
  await until(() => deflateLoad().inFlight >= 2.5 * MiB && deflateLoad().running === 0, 'half of the honest message to inflate', 20_000);
  const honestHeld = deflateLoad().inFlight;
  const sparse = Buffer.alloc(2 * MiB);
  const r = randomBytes(sparse.length >> 4);
  for (let i = 0; i < r.length; i++) sparse[i << 4] = r[i]!;
  const densePart = zlib.deflateRawSync(sparse, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const denseRead = readData(dense.ws).then(
    () => null,
    (e: unknown) => e
  );
  dense.raw.write(compressedFrame(Opcode.Binary, densePart, false, true));
  await until(() => deflateLoad().inFlight >= honestHeld + 1.9 * MiB && deflateLoad().running === 0, 'the dense part to inflate', 20_000);
  // A third message needs room: the dense one goes, the larger honest one stays.
  const third = letters(2 * MiB);
  other.raw.write(compressedFrame(Opcode.Binary, compress(third), true, true));
  t.true((await within(readData(other.ws), 'the third message', 20_000)).data.equals(third));
  const err = await within(denseRead, 'the dense read to fail');
  t.is((err as ProtocolError).code, 'WS_ERR_INFLATE_BUDGET');
  honest.raw.write(compressedFrame(Opcode.Cont, whole.subarray(half, whole.length - 4), true, false));
  t.true((await within(honestRead, 'the honest message')).data.equals(data));
  t.is(deflateLoad().evictions, evictionsBefore + 1, 'only the dense one was dropped');
  t.log(
    `honest ${(data.length / whole.length).toFixed(1)}x (${(data.length / MiB).toFixed(1)} MiB) kept, ` +
      `dense ${(sparse.length / densePart.length).toFixed(1)}x (${(sparse.length / MiB).toFixed(1)} MiB) dropped`
  );
});

test('by default any compressed message within maxMessageSize inflates, whatever its ratio; maxInflateRatio turned on bounds it past 1 MiB (1009)', async (t) => {
  // 4 MiB of zeros (about 4 KB): 1000x.
  const bomb = compress(Buffer.alloc(4 * MiB));
  const ok = await rawPair(t, 'server', { deflate: PARAMS });
  ok.raw.write(compressedFrame(Opcode.Binary, bomb, true, true));
  t.is((await within(readData(ok.ws), 'the message')).data.length, 4 * MiB);
  // Turned on: a message may inflate to 1 MiB freely, and fails once the output passes it.
  const small = await rawPair(t, 'server', { deflate: PARAMS, maxInflateRatio: 100 });
  small.raw.write(compressedFrame(Opcode.Binary, compress(Buffer.alloc(MiB)), true, true));
  t.is((await within(readData(small.ws), 'the 1 MiB message')).data.length, MiB);
  const bad = await rawPair(t, 'server', { deflate: PARAMS, maxInflateRatio: 100 });
  bad.raw.write(compressedFrame(Opcode.Binary, bomb, true, true));
  const err = await within(readData(bad.ws).catch((e: unknown) => e), 'the bomb to fail');
  t.true(err instanceof ProtocolError, String(err));
  t.is((err as ProtocolError).code, 'WS_ERR_INFLATE_RATIO');
  t.is((err as ProtocolError).closeCode, 1009);
  t.regex((err as Error).message, /inflated past 1048576 bytes \(maxInflateRatio 100\)/);
  // Raised past the bomb's ratio.
  const high = await rawPair(t, 'server', { deflate: PARAMS, maxInflateRatio: 2000 });
  high.raw.write(compressedFrame(Opcode.Binary, bomb, true, true));
  t.is((await within(readData(high.ws), 'the message')).data.length, 4 * MiB);
  // Ordinary data far past 1 MiB is well within a ratio of 100.
  const text = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `{"id":${i},"name":"user ${i}","ok":true}`).join(','));
  const json = await rawPair(t, 'server', { deflate: PARAMS, maxInflateRatio: 100 });
  json.raw.write(compressedFrame(Opcode.Text, compress(text), true, true));
  t.true((await within(readData(json.ws), 'the JSON')).data.equals(text));
  t.log(`${(text.length / MiB).toFixed(1)} MiB of JSON compresses ${(text.length / compress(text).length).toFixed(0)}x`);
});

/** Lets a FinalizationRegistry run after a full GC (its callbacks come in a later task). */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
}

test.serial('amplified bytes count against the allowance while the message handed out lives, and come back once it is collected', async (t) => {
  await collect();
  const base = deflateLoad().amplified;
  const d = new PerMessageDeflate(PARAMS, false);
  t.teardown(() => d.close());
  const payload = compress(Buffer.alloc(16 * MiB));
  const out = await within(d.inflate(payload, true, true, 16 * MiB), 'the inflation');
  t.is(out.length, 16 * MiB);
  // While in progress and once handed out, all but 10 bytes per compressed byte count.
  const expected = 16 * MiB - 10 * payload.length;
  t.is(deflateLoad().amplified - base, expected);
  t.is(deflateLoad().inFlight, 10 * payload.length, 'only the part under the ratio is in the budget');
  d.handedOut(out);
  t.is(deflateLoad().inFlight, 0, 'and it comes back once the message is handed out');
  t.is(deflateLoad().amplified - base, expected, 'kept while the message lives');
  // The same connection's next message takes the place of the last one it handed out.
  const next = await within(d.inflate(payload, true, true, 16 * MiB), 'the second inflation');
  d.handedOut(next);
  t.is(deflateLoad().amplified - base, expected, 'one message per connection stays counted');
  await collect();
  t.is(deflateLoad().amplified - base, expected, 'the second one still lives');
  t.is(next.length, 16 * MiB);
  // A small message's few amplified bytes stop counting once it is handed out.
  const small = await within(d.inflate(compress(Buffer.alloc(8 * KiB)), true, true, 16 * MiB), 'a small one');
  d.handedOut(small);
  t.is(deflateLoad().amplified, base);
  // A connection that closes lets go of what its last message counted (its loop ends too).
  d.handedOut(await d.inflate(payload, true, true, 16 * MiB));
  t.is(deflateLoad().amplified - base, expected);
  d.close();
  t.is(deflateLoad().amplified, base);
  t.log(`16 MiB of zeros in ${payload.length} bytes: ${(expected / MiB).toFixed(2)} MiB amplified, counted while the message lived`);
});

test.serial('a message that dies gives its amplified bytes back (FinalizationRegistry)', async (t) => {
  await collect();
  const base = deflateLoad().amplified;
  const d = new PerMessageDeflate(PARAMS, false);
  t.teardown(() => d.close());
  // Made and dropped in a function of its own, so no frame of ours keeps it.
  const inflateAndDrop = async (): Promise<number> => {
    const out = await d.inflate(compress(Buffer.alloc(4 * MiB)), true, true, 16 * MiB);
    d.handedOut(out);
    return deflateLoad().amplified - base;
  };
  const held = await within(inflateAndDrop(), 'the inflation');
  t.true(held > 3 * MiB, `${held} bytes counted`);
  await collect();
  t.is(deflateLoad().amplified, base);
});

test.serial('past the allowance, an inflation that would amplify more fails with 1013; the part under the ratio never counts against it', async (t) => {
  const before = setZlibLimits({ amplifiedBudget: 8 * MiB });
  t.teardown(() => setZlibLimits(before));
  await collect();
  const base = deflateLoad().amplified;
  const refusalsBefore = deflateLoad().refusals;
  const bomb = await rawPair(t, 'server', { deflate: PARAMS });
  bomb.raw.write(compressedFrame(Opcode.Binary, compress(Buffer.alloc(16 * MiB)), true, true));
  const err = await within(readData(bomb.ws).catch((e: unknown) => e), 'the bomb to fail');
  t.true(err instanceof ProtocolError, String(err));
  t.is((err as ProtocolError).code, 'WS_ERR_AMPLIFIED_BUDGET');
  t.is((err as ProtocolError).closeCode, 1013);
  t.regex((err as Error).message, /allowance of amplified bytes is spent/);
  const [close] = await bomb.peer.waitFrames(1);
  t.is(close!.data.readUInt16BE(0), 1013);
  t.is(deflateLoad().refusals, refusalsBefore + 1);
  t.is(deflateLoad().amplified, base, 'what it had amplified came back');
  // Data under the ratio is not amplified: a 16 MiB message at about 2x goes through.
  const data = letters(16 * MiB);
  const plain = await rawPair(t, 'server', { deflate: PARAMS });
  plain.raw.write(compressedFrame(Opcode.Binary, compress(data), true, true));
  t.true((await within(readData(plain.ws), 'the message under the ratio', 20_000)).data.equals(data));
  // With the allowance at 0, a message under the ratio still inflates; zeros do not.
  setZlibLimits({ amplifiedBudget: 0 });
  const d = new PerMessageDeflate(PARAMS, false);
  t.teardown(() => d.close());
  const few = letters(64 * KiB);
  t.true((await d.inflate(compress(few), true, true, MiB)).equals(few));
  d.handedOut();
  await t.throwsAsync(d.inflate(compress(Buffer.alloc(64 * KiB)), true, true, MiB), { code: 'WS_ERR_AMPLIFIED_BUDGET' });
  t.throws(() => setZlibLimits({ amplifiedBudget: -1 }), { instanceOf: RangeError });
  t.throws(() => setZlibLimits({ amplificationRatio: 0.5 }), { instanceOf: RangeError });
  t.throws(() => setZlibLimits({ amplifiedBudget: '1MB' as unknown as number }), { instanceOf: TypeError, message: /amplifiedBudget must be a number/ });
});

test('the ratio counts the whole message: frames that add input raise what it may inflate to', async (t) => {
  // 3 MiB of random-ish text in three frames: each frame alone is far under 100x.
  const data = Buffer.from(Array.from({ length: 3 * 1024 * 32 }, (_, i) => `${(i * 2654435761) % 1000003} `.padEnd(32, '.')).join(''));
  const whole = compress(data);
  const { ws, raw } = await rawPair(t, 'server', { deflate: PARAMS });
  const third = Math.ceil(whole.length / 3);
  raw.write(compressedFrame(Opcode.Binary, whole.subarray(0, third), false, true));
  raw.write(compressedFrame(Opcode.Cont, whole.subarray(third, 2 * third), false, false));
  raw.write(compressedFrame(Opcode.Cont, whole.subarray(2 * third), true, false));
  t.true((await within(readData(ws), 'the message')).data.equals(data));
});

async function freedAfter(t: { teardown(f: () => void): void }, loop: 'messages' | 'handleEvents'): Promise<boolean> {
  const { client, server } = await pair(t);
  let ref: WeakRef<Buffer> | null = null;
  let got!: () => void;
  const first = new Promise<void>((resolve) => (got = resolve));
  // (A loop of the test's own could keep `m` in its suspended frame: V8 keeps a suspended
  // function's registers. So the iterator is driven by a function that returns.)
  const it = messages(server);
  const firstRef = async (): Promise<void> => {
    const r = await it.next();
    ref = new WeakRef((r.value as { data: Buffer }).data);
    got();
    void it.next().catch(() => undefined);
  };
  const done =
    loop === 'messages'
      ? firstRef()
      : handleEvents(server, {
          onMessage: (_ws, m) => {
            ref ??= new WeakRef(m.data);
            got();
          }
        });
  void done.catch(() => undefined);
  await sendBinary(client, Buffer.alloc(MiB, 1));
  await within(first, 'the message');
  // The loop now waits for the next message: nothing of ours should keep the last one.
  await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 3; i++) gc();
  return ref!.deref() === undefined;
}

test('messages() keeps nothing of a message once the loop has moved on', async (t) => {
  t.true(await freedAfter(t, 'messages'));
});

test('handleEvents keeps nothing of a message once its handler is done', async (t) => {
  t.true(await freedAfter(t, 'handleEvents'));
});

test.serial('an unbounded limit (maxMessageSize Infinity, no ratio) reserves at most the budget: the counts stay whole', async (t) => {
  const d = new PerMessageDeflate(PARAMS, false);
  t.teardown(() => d.close());
  const out = await within(d.inflate(compress(Buffer.alloc(1000)), true, true, Infinity, 0), 'the inflation');
  d.handedOut();
  t.is(out.length, 1000);
  t.is(deflateLoad().inFlight, 0);
  t.throws(() => setZlibLimits({ inflateBudget: 0 }), { instanceOf: RangeError });
  t.throws(() => setZlibLimits({ concurrency: 0 }), { instanceOf: RangeError });
});

test.serial('what waits for compression never gets a message in progress dropped: new inflation waits for it instead', async (t) => {
  const before = setZlibLimits({ inflateBudget: 4 * MiB });
  t.teardown(() => setZlibLimits(before));
  const evictionsBefore = deflateLoad().evictions;
  const holder = new PerMessageDeflate(PARAMS, false);
  let evicted = false;
  holder.onEvicted = () => (evicted = true);
  const sender = new PerMessageDeflate(PARAMS, false);
  const other = new PerMessageDeflate(PARAMS, false);
  t.teardown(() => [holder, sender, other].forEach((d) => d.close()));
  // A message in progress holding 1 MiB, then 3.5 MiB of our own sends to compress.
  const part = zlib.deflateRawSync(Buffer.alloc(MiB, 'h'), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  t.is((await holder.inflate(part, true, false, 16 * MiB, 0)).length, MiB);
  const sending = sender.deflate(Buffer.alloc(3.5 * MiB, 's'));
  const inflating = other.inflate(compress(Buffer.alloc(MiB, 'o')), true, true, MiB, 0);
  t.is((await within(inflating, 'the other message')).length, MiB);
  other.handedOut();
  await sending;
  await new Promise((r) => setImmediate(r));
  t.false(evicted);
  t.is(deflateLoad().evictions, evictionsBefore);
  holder.handedOut();
  t.is(deflateLoad().inFlight, 0);
});

test.serial('an unfinished message whose amplified bytes stalled for a second is dropped (1013) when another needs the allowance', async (t) => {
  const before = setZlibLimits({ amplifiedBudget: 8 * MiB });
  t.teardown(() => setZlibLimits(before));
  await collect();
  const stalled = await rawPair(t, 'server', { deflate: PARAMS });
  const early = await rawPair(t, 'server', { deflate: PARAMS });
  const honest = await rawPair(t, 'server', { deflate: PARAMS });
  // The first frame of a message of zeros that amplifies 6 MiB, and nothing more.
  const part = zlib.deflateRawSync(Buffer.alloc(6 * MiB), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const stalledRead = readData(stalled.ws).then(
    () => null,
    (e: unknown) => e
  );
  stalled.raw.write(compressedFrame(Opcode.Binary, part, false, true));
  await until(() => deflateLoad().amplified >= 5.9 * MiB && deflateLoad().running === 0, 'the first frame to inflate');
  // At once, another message that needs 4 MiB of it is refused: the first one is not stalled yet.
  early.raw.write(compressedFrame(Opcode.Binary, compress(Buffer.alloc(4 * MiB)), true, true));
  const refused = await within(readData(early.ws).catch((e: unknown) => e), 'the early one to be refused');
  t.is((refused as ProtocolError).code, 'WS_ERR_AMPLIFIED_BUDGET');
  // A second later, the stalled one goes and the new one gets its room.
  await new Promise((r) => setTimeout(r, 1100));
  honest.raw.write(compressedFrame(Opcode.Binary, compress(Buffer.alloc(4 * MiB)), true, true));
  t.is((await within(readData(honest.ws), 'the honest message')).data.length, 4 * MiB);
  const err = await within(stalledRead, 'the stalled read to fail');
  t.is((err as ProtocolError).code, 'WS_ERR_INFLATE_BUDGET');
  t.is((err as ProtocolError).closeCode, 1013);
});
