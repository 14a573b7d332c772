import test from 'ava';
import fc from 'fast-check';
import { applyMask, generateMaskingKey } from '../../src';
import { applyMaskReference, applyMaskWordsForTest, fillMaskingKey, getNativeMask, nativeMaskFrom, setNativeMask, type NativeMask } from '../../src/core/mask';
import { hex, noise } from '../helpers/bytes';

// The masking tests run twice: on the WebAssembly and JS paths alone, and with bufferutil (a
// devDependency here; ships no types) taking the sizes it measured faster at.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bufferutil = nativeMaskFrom(require('bufferutil'));
const MODES: [string, NativeMask | null][] = [
  ['pure', null],
  ['bufferutil', bufferutil]
];
const initialNative = getNativeMask();

/** Runs `body` with `impl` as applyMask's native functions (the tests are synchronous). */
function withNative(impl: NativeMask | null, body: () => void): void {
  setNativeMask(impl);
  try {
    body();
  } finally {
    setNativeMask(initialNative);
  }
}

/** A view of `n` bytes at `offset` inside a fresh ArrayBuffer, filled from `seed`, with guard bytes around. */
function viewAt(n: number, offset: number, seed: number): Uint8Array {
  const backing = noise(offset + n + 8, seed);
  return new Uint8Array(backing.buffer, offset, n);
}

/** The whole backing store of a view, guards included, as a copy. */
function backingOf(v: Uint8Array): Buffer {
  return Buffer.from(new Uint8Array(v.buffer).slice());
}

interface Case {
  len: number;
  srcOff: number;
  dstOff: number;
  dstOffset: number;
  phase: number;
  key: Uint8Array;
  seed: number;
}

/** Checks applyMask against applyMaskReference into another buffer and in place; returns a failure or ''. */
function check(c: Case): string {
  const what = JSON.stringify({ ...c, key: Buffer.from(c.key).toString('hex') });
  // Into another buffer (dst view at its own byteOffset, then dstOffset inside it).
  const src = viewAt(c.len, c.srcOff, c.seed);
  const srcBefore = backingOf(src);
  const dstA = viewAt(c.len + c.dstOffset + 3, c.dstOff, c.seed + 1);
  const dstB = viewAt(c.len + c.dstOffset + 3, c.dstOff, c.seed + 1);
  applyMask(src, c.key, dstA, c.dstOffset, c.phase);
  applyMaskReference(src, c.key, dstB, c.dstOffset, c.phase);
  if (!backingOf(dstA).equals(backingOf(dstB))) return `into dst differs: ${what}`;
  if (!backingOf(src).equals(srcBefore)) return `src modified: ${what}`;
  // In place.
  const a = viewAt(c.len, c.srcOff, c.seed);
  const b = viewAt(c.len, c.srcOff, c.seed);
  applyMask(a, c.key, a, 0, c.phase);
  applyMaskReference(b, c.key, b, 0, c.phase);
  if (!backingOf(a).equals(backingOf(b))) return `in place differs: ${what}`;
  // In place with the default arguments.
  if (c.phase === 0) {
    const d = viewAt(c.len, c.srcOff, c.seed);
    applyMask(d, c.key);
    if (!backingOf(d).equals(backingOf(b))) return `default in place differs: ${what}`;
  }
  return '';
}

for (const [mode, impl] of MODES) {
  test(`${mode}: applyMask on the RFC 6455 §5.7 example`, (t) => {
    withNative(impl, () => {
      const data = Buffer.from('Hello');
      applyMask(data, hex('37fa213d'));
      t.deepEqual(data, hex('7f9f4d5158'));
      applyMask(data, hex('37fa213d'));
      t.is(data.toString(), 'Hello', 'masking twice is the identity');
    });
  });
}

test('applyMaskReference is byte i XOR key[(phase + i) % 4]', (t) => {
  const src = hex('00 00 00 00 00 00 ff ff');
  const dst = Buffer.alloc(10, 0xee);
  applyMaskReference(src, hex('01020304'), dst, 1, 2);
  t.deepEqual(dst, hex('ee 03 04 01 02 03 04 fe fd ee'));
});

for (const [mode, impl] of MODES) {
  test(`${mode}: applyMask equals the reference: every length 0..300 × src/dst alignment × dstOffset × key phase`, (t) => {
    withNative(impl, () => {
      const key = hex('a5 3c 0f f1');
      const failures: string[] = [];
      for (let len = 0; len <= 300; len++) {
        for (let srcOff = 0; srcOff < 4; srcOff++) {
          for (let dstOff = 0; dstOff < 4; dstOff++) {
            for (let phase = 0; phase < 4; phase++) {
              const dstOffset = (len + srcOff * 3 + phase) % 5;
              const f = check({ len, srcOff, dstOff, dstOffset, phase, key, seed: len * 64 + srcOff * 16 + dstOff * 4 + phase + 1 });
              if (f) failures.push(f);
            }
          }
        }
      }
      t.deepEqual(failures.slice(0, 5), []);
    });
  });
}

for (const [mode, impl] of MODES) {
  test(`${mode}: applyMask equals the reference: random lengths, offsets, keys and phases (fast-check)`, (t) => {
    withNative(impl, () => {
      fc.assert(
        fc.property(
          fc.record({
            len: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 300 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 5000 }) }),
            srcOff: fc.integer({ min: 0, max: 15 }),
            dstOff: fc.integer({ min: 0, max: 15 }),
            dstOffset: fc.integer({ min: 0, max: 9 }),
            phase: fc.integer({ min: 0, max: 3 }),
            key: fc.uint8Array({ minLength: 4, maxLength: 4 }),
            seed: fc.integer({ min: 1, max: 0x7fffffff })
          }),
          (c) => check(c) === ''
        ),
        { numRuns: 500 }
      );
      t.pass();
    });
  });
}

for (const [mode, impl] of MODES) {
  test(`${mode}: applyMask equals the reference on large payloads, aligned and misaligned`, (t) => {
    withNative(impl, () => {
      const key = hex('de ad be ef');
      for (const len of [16383, 16384, 16385, 65536, 65537, 1 << 20, (1 << 20) + 3]) {
        for (const [srcOff, dstOff, dstOffset, phase] of [
          [0, 0, 0, 0],
          [1, 1, 0, 3],
          [3, 0, 1, 1],
          [2, 1, 6, 2]
        ] as const) {
          t.is(check({ len, srcOff, dstOff, dstOffset, phase, key, seed: len + srcOff }), '', `len ${len} srcOff ${srcOff} dstOff ${dstOff}`);
        }
      }
    });
  });
}

for (const [mode, impl] of MODES) {
  test(`${mode}: applyMask with an all-zero key: identity in place, a plain copy into dst`, (t) => {
    withNative(impl, () => {
      const zero = new Uint8Array(4);
      for (const len of [0, 5, 31, 32, 100, 4099]) {
        const src = viewAt(len, 1, len + 7);
        const before = backingOf(src);
        applyMask(src, zero);
        t.deepEqual(backingOf(src), before, `in place, len ${len}`);
        const dst = Buffer.alloc(len + 4, 0xee);
        applyMask(src, zero, dst, 2, 3);
        t.deepEqual(dst, Buffer.concat([hex('eeee'), Buffer.from(src), hex('eeee')]), `into dst, len ${len}`);
        t.is(check({ len, srcOff: 3, dstOff: 0, dstOffset: 1, phase: 2, key: zero, seed: len + 1 }), '');
      }
      // A key that is zero only in the bytes a short payload uses is not the zero key.
      const key = hex('00 00 00 01');
      const short = hex('aa bb cc dd');
      applyMask(short, key);
      t.deepEqual(short, hex('aa bb cc dc'));
    });
  });
}

for (const [mode, impl] of MODES) {
  test(`${mode}: masking in pieces with the running key phase equals masking whole`, (t) => {
    withNative(impl, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2000 }),
          fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 8 }),
          fc.uint8Array({ minLength: 4, maxLength: 4 }),
          fc.integer({ min: 1, max: 0x7fffffff }),
          (len, cuts, key, seed) => {
            const data = noise(len, seed);
            const whole = Buffer.from(data);
            applyMaskReference(whole, key);
            const points = [...new Set(cuts.map((c) => c % (len + 1)))].sort((a, b) => a - b);
            const bounds = [0, ...points, len];
            // Piece by piece in place (as a reader unmasking chunks as they arrive) ...
            const inPlace = Buffer.from(data);
            // ... in place with the whole buffer as dst at the piece's offset (as recvFrame does) ...
            const atOffset = Buffer.from(data);
            // ... and piece by piece into one destination (as when assembling a payload).
            const into = Buffer.alloc(len + 1, 0xee);
            for (let i = 0; i + 1 < bounds.length; i++) {
              const [a, b] = [bounds[i]!, bounds[i + 1]!];
              applyMask(inPlace.subarray(a, b), key, inPlace.subarray(a, b), 0, a & 3);
              applyMask(atOffset.subarray(a, b), key, atOffset, a, a & 3);
              applyMask(data.subarray(a, b), key, into, 1 + a, a & 3);
            }
            return inPlace.equals(whole) && atOffset.equals(whole) && into.subarray(1).equals(whole) && into[0] === 0xee;
          }
        ),
        { numRuns: 300 }
      );
      t.pass();
    });
  });
}

test('generateMaskingKey gives 4 fresh bytes each call, across pool refills', (t) => {
  const first = generateMaskingKey();
  t.true(Buffer.isBuffer(first));
  t.is(first.length, 4);
  const keys = new Set<string>();
  // 8 KiB pool / 4 bytes = 2048 keys per fill: 5000 keys cross at least two refills.
  for (let i = 0; i < 5000; i++) {
    const k = generateMaskingKey();
    t.is(k.length, 4);
    keys.add(k.toString('hex'));
  }
  // Collisions among 5000 random 32-bit values are expected about 0.003 times.
  t.true(keys.size >= 4995, `${keys.size} distinct keys of 5000`);
});

test('generateMaskingKey returns copies: changing one key does not change the next', (t) => {
  const a = generateMaskingKey();
  const aHex = a.toString('hex');
  a.fill(0);
  const b = generateMaskingKey();
  t.not(b.toString('hex'), '00000000');
  t.not(b.toString('hex'), aHex);
});

test('fillMaskingKey writes exactly 4 bytes at the offset', (t) => {
  const dst = Buffer.alloc(10, 0xee);
  fillMaskingKey(dst, 3);
  t.deepEqual(dst.subarray(0, 3), hex('eeeeee'));
  t.deepEqual(dst.subarray(7), hex('eeeeee'));
  // The 4 bytes are random: over a few tries they cannot all stay 0xee.
  let changed = dst.subarray(3, 7).some((b) => b !== 0xee);
  for (let i = 0; i < 4 && !changed; i++) {
    fillMaskingKey(dst, 3);
    changed = dst.subarray(3, 7).some((b) => b !== 0xee);
  }
  t.true(changed);
});

test('the word loop (the fallback without WebAssembly SIMD) equals the byte-loop reference', (t) => {
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const backing = Buffer.alloc(5000);
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 31 + 7) & 0xff;
  let checked = 0;
  for (const n of [256, 257, 258, 259, 300, 1000, 4095]) {
    for (let srcOff = 0; srcOff < 4; srcOff++) {
      for (const dstShift of [0, 4, 8]) {
        for (let phase = 0; phase < 4; phase++) {
          const src = backing.subarray(srcOff, srcOff + n);
          const want = Buffer.alloc(n + 16);
          applyMaskReference(src, key, want, srcOff + dstShift, phase);
          const got = Buffer.alloc(n + 16);
          applyMaskWordsForTest(src, key, got, srcOff + dstShift, phase);
          t.true(got.equals(want), `n=${n} srcOff=${srcOff} dstShift=${dstShift} phase=${phase}`);
          const inPlace = Buffer.from(backing.subarray(0, srcOff + n)).subarray(srcOff);
          applyMaskWordsForTest(inPlace, key, inPlace, 0, phase);
          t.true(inPlace.equals(want.subarray(srcOff + dstShift, srcOff + dstShift + n)));
          checked++;
        }
      }
    }
  }
  t.is(checked, 7 * 4 * 3 * 4);
});
