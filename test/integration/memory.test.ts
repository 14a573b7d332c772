/**
 * Memory a peer can make us hold: a large frame trickled in 1-byte chunks is coalesced into
 * a few buffers (not one Buffer object per byte), and messages already handed out stay intact
 * while later small chunks are coalesced.
 */
import test from 'ava';
import { AsyncSocket, makeFrame, Opcode, readData } from '../../src';
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
    most = Math.max(most, ws.queue.chunkCount);
  }
  const m = await pending;
  // 8 chunks queue as they come; from then on they are copied into 16 KiB tail buffers.
  t.true(most <= 8 + Math.ceil(frame.length / 16384) + 1, `${most} buffers held for ${frame.length} bytes`);
  t.is(sha(m.data), sha(payload));
});

test('messages handed out earlier are not overwritten by bytes coalesced later', async (t) => {
  const ws = new AsyncSocket(memorySocket().duplex, { role: 'server' });
  const frames = Array.from({ length: 300 }, (_, i) => makeFrame(Opcode.Text, `message ${i}`, true));
  let fed = 0;
  // Each frame arrives in three small chunks, so the queue piles up chunks and coalesces them.
  const feed = (from: number, to: number): void => {
    for (const frame of frames.slice(from, to)) {
      ws.feed(Buffer.from(frame.subarray(0, 1)));
      ws.feed(Buffer.from(frame.subarray(1, 5)));
      ws.feed(Buffer.from(frame.subarray(5)));
      fed += 3;
    }
  };
  const got: Buffer[] = [];
  feed(0, 100);
  t.true(ws.queue.chunkCount < fed / 10, `${fed} chunks fed, ${ws.queue.chunkCount} held: coalesced`);
  // Read half, keep those views, then more bytes arrive and are coalesced behind them.
  for (let i = 0; i < 50; i++) got.push((await readData(ws)).data);
  feed(100, 200);
  // Read everything: the queue runs empty, and the next bytes start coalescing afresh.
  for (let i = 50; i < 200; i++) got.push((await readData(ws)).data);
  t.is(ws.unreadBytes, 0);
  feed(200, 300);
  for (let i = 200; i < 300; i++) got.push((await readData(ws)).data);
  t.deepEqual(
    got.map((b) => b.toString()),
    Array.from({ length: 300 }, (_, i) => `message ${i}`)
  );
  // The proof that it was put to the test: a message read before the second batch arrived
  // shares its buffer with one from that batch (they were coalesced into the same one).
  t.true(got.slice(100, 200).some((later) => later.buffer === got[49]!.buffer), 'a later message lives in the same buffer');
});
