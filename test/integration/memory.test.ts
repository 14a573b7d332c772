/**
 * Memory a peer can make us hold: a large frame trickled in 1-byte chunks is coalesced into
 * a few buffers (not one Buffer object per byte), and views already handed out stay intact.
 */
import test from 'ava';
import { AsyncSocket } from '../../src/async-socket';
import { Opcode } from '../../src/core/constants';
import { makeFrame } from '../../src/core/frame';
import { readData } from '../../src/recv';
import { pattern, sha } from '../helpers/bytes';
import { memorySocket } from '../helpers/memory-socket';

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
  const got: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const frame = makeFrame(Opcode.Text, `message ${i}`, true);
    // Mixed chunking: whole frames, and frames cut in two.
    if (i % 3 === 0) {
      ws.feed(frame.subarray(0, 3));
      ws.feed(frame.subarray(3));
    } else {
      ws.feed(Buffer.from(frame));
    }
    got.push((await readData(ws)).data);
  }
  t.deepEqual(
    got.map((b) => b.toString()),
    Array.from({ length: 300 }, (_, i) => `message ${i}`)
  );
});
