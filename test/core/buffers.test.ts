import test from 'ava';
import { FRAME_SLAB_MAX, FRAME_SLAB_SIZE, allocFrame } from '../../src/core/buffers';
import { makeFrame, Opcode } from '../../src';
import { applyMaskReference } from '../../src/core/mask';

test('small frames are 8-byte aligned views of a shared slab that never overlap', (t) => {
  const frames: Buffer[] = [];
  // Enough to fill more than two slabs, sizes 1 to FRAME_SLAB_MAX.
  for (let i = 0, total = 0; total < 2.5 * FRAME_SLAB_SIZE; i++) {
    const n = 1 + ((i * 977) % FRAME_SLAB_MAX);
    const f = allocFrame(n);
    t.is(f.length, n);
    t.true(Buffer.isBuffer(f));
    t.is(f.byteOffset % 8, 0);
    t.is(f.buffer.byteLength, FRAME_SLAB_SIZE);
    f.fill(i & 0xff);
    frames.push(f);
    total += n;
  }
  t.true(new Set(frames.map((f) => f.buffer)).size >= 3, 'a new slab when one is full');
  frames.forEach((f, i) => t.true(f.every((b) => b === (i & 0xff)), `frame ${i} was not overwritten`));
});

test('frames over FRAME_SLAB_MAX get a buffer of their own', (t) => {
  const f = allocFrame(FRAME_SLAB_MAX + 1);
  t.is(f.length, FRAME_SLAB_MAX + 1);
  t.not(f.buffer.byteLength, FRAME_SLAB_SIZE);
});

test('makeFrame builds every small payload length right, masked and unmasked', (t) => {
  const key = Uint8Array.of(0x12, 0x9a, 0xfe, 0x01);
  for (let n = 0; n <= 200; n++) {
    const payload = Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff));
    const plain = makeFrame(Opcode.Binary, payload, false);
    t.true(plain.subarray(plain.length - n).equals(payload), `unmasked, ${n} bytes`);
    // With a fresh key (the inline loop below 128 bytes) and with a given one.
    for (const given of [undefined, key]) {
      const f = makeFrame(Opcode.Binary, payload, true, given);
      const k = f.subarray(f.length - n - 4, f.length - n);
      if (given) t.deepEqual(new Uint8Array(k), key);
      const want = Buffer.alloc(n);
      applyMaskReference(payload, k, want);
      t.true(f.subarray(f.length - n).equals(want), `masked, ${n} bytes, key ${given ? 'given' : 'fresh'}`);
    }
  }
});
