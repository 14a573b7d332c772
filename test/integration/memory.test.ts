/**
 * Memory a peer can make us hold: a large frame trickled in 1-byte chunks is coalesced into
 * a few buffers (not one Buffer object per byte), and messages already handed out stay intact
 * while later small chunks are coalesced.
 */
import test from 'ava';
import { AsyncSocket } from '../../src/async-socket';
import { Opcode } from '../../src/core/constants';
import { makeFrame } from '../../src/core/frame';
import { readData } from '../../src/recv';
import { pattern, sha } from '../helpers/bytes';
import { memorySocket } from '../helpers/memory-socket';
import { within } from '../helpers/wait';

test('a 200 KB frame arriving one byte at a time is held in a few buffers', async (t) => {
  const ws = new AsyncSocket(memorySocket().duplex, { role: 'server', readBufferSize: 4096 });
  const payload = pattern(200_000);
  const frame = makeFrame(Opcode.Binary, payload, true);
  const pending = readData(ws);
  let most = 0;
  for (let i = 0; i < frame.length; i++) {
    ws.feed(frame.subarray(i, i + 1));
    most = Math.max(most, ws.bufferedChunks);
  }
  const m = await pending;
  // 8 chunks queue as they come; from then on they are copied into 16 KiB tail buffers.
  t.true(most <= 8 + Math.ceil(frame.length / 16384) + 1, `${most} buffers held for ${frame.length} bytes`);
  t.is(sha(m.data), sha(payload));
});

test('messages handed out earlier are not overwritten by bytes coalesced later', async (t) => {
  const ws = new AsyncSocket(memorySocket().duplex, { role: 'server' });
  // 300 messages of 100-900 bytes (about 150 KB, many 16 KiB tail buffers' worth), each in
  // small chunks (whole, or cut in two), so that they are coalesced once the queue is long.
  const texts = Array.from({ length: 300 }, (_, i) => `message ${i} `.padEnd(100 + ((i * 37) % 800), String.fromCharCode(97 + (i % 26))));
  const chunks = texts.flatMap((text, i) => {
    const frame = makeFrame(Opcode.Text, text, true);
    return i % 3 === 0 ? [frame.subarray(0, 3), frame.subarray(3)] : [frame];
  });
  // A backlog first: 40 chunks fed before anything is read must not stay 40 queued chunks.
  let fed = 0;
  while (fed < 40) ws.feed(Buffer.from(chunks[fed++]!));
  t.true(ws.bufferedChunks < 40, `${ws.bufferedChunks} chunks queued for 40 fed: nothing was coalesced`);
  // Then read one message, feed two more chunks (as many as one message has at most), and so
  // on: every message handed out may be a view of a coalescing buffer that later chunks are
  // copied into.
  const got: Buffer[] = [];
  while (got.length < texts.length) {
    got.push((await within(readData(ws), `message ${got.length}`)).data);
    for (let k = 0; k < 2 && fed < chunks.length; k++) ws.feed(Buffer.from(chunks[fed++]!));
  }
  t.deepEqual(
    got.map((b) => b.toString()),
    texts
  );
});
