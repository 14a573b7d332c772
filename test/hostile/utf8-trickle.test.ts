/**
 * A large text frame that arrives in many chunks is checked as UTF-8 as it comes (so invalid
 * bytes fail fast); the check must cost time in proportion to the bytes, not to the number of
 * chunks squared (issue 11, finding 10: 16/32/64 MiB took 0.55/2.4/8.9 s against
 * 0.22/0.45/0.85 s for binary, because each wake walked the queue from its first chunk).
 */
import test from 'ava';
import { AsyncSocket, makeFrame, Opcode, readData } from '../../src';
import { memorySocket } from '../helpers/memory-socket';

const CHUNK = 1024;
const LIMIT = 64 << 20;

// Feeds one masked frame of `size` bytes in 1 KiB chunks and returns the ms until the
// message is read (the reader wakes at every chunk, as it does on a socket).
async function trickle(opcode: Opcode, size: number): Promise<number> {
  const ws = new AsyncSocket(memorySocket().duplex, { role: 'server', maxFrameSize: LIMIT, maxMessageSize: LIMIT, readBufferSize: LIMIT });
  const frame = makeFrame(opcode, Buffer.alloc(size, 0x61), true);
  const started = performance.now();
  const reading = readData(ws);
  for (let i = 0; i < frame.length; i += CHUNK) ws.feed(frame.subarray(i, i + CHUNK));
  const m = await reading;
  if (m.data.length !== size) throw new Error(`read ${m.data.length} of ${size} bytes`);
  return performance.now() - started;
}

test('checking a text frame that trickles in is linear in its size', async (t) => {
  const small = 4 << 20;
  const large = 16 << 20;
  // Best of two, so one pause of a busy machine does not decide the verdict.
  const best = async (op: Opcode, size: number): Promise<number> => Math.min(await trickle(op, size), await trickle(op, size));
  await trickle(Opcode.Text, small); // warm-up: compiled code, not the first run, is measured
  const textSmall = await best(Opcode.Text, small);
  const textLarge = await best(Opcode.Text, large);
  const binaryLarge = await best(Opcode.Binary, large);
  const growth = textLarge / textSmall;
  t.log(
    `text 4 MiB ${textSmall.toFixed(0)} ms, text 16 MiB ${textLarge.toFixed(0)} ms (x${growth.toFixed(1)} for 4x the bytes), ` +
      `binary 16 MiB ${binaryLarge.toFixed(0)} ms; ${large / CHUNK} chunks of ${CHUNK} B`
  );
  // Linear: about 4x for 4x the bytes; quadratic in the chunk count would be about 16x.
  t.true(growth < 6, `4x the bytes cost x${growth.toFixed(1)} the time`);
  t.true(textLarge < binaryLarge * 4 + 300, 'text costs a small factor of binary');
});
