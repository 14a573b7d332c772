// applyMask with bufferutil: which sizes go to the addon, what never reaches it (it aborts the
// process on a bad argument and writes past the end of a short dst), and which modules count
// as the addon. mask.test.ts checks the results against the reference with and without it.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { applyMask } from '../../src';
import { applyMaskReference, getNativeMask, nativeMaskFrom, setNativeMask, type NativeMask } from '../../src/core/mask';
import { pattern } from '../helpers/bytes';

// bufferutil is a devDependency here and ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bufferutilModule = require('bufferutil') as NativeMask;
const bufferutil = nativeMaskFrom(bufferutilModule);
const initialNative = getNativeMask();
const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** Runs `body` with applyMask calling bufferutil through a recorder; returns the calls made. */
function calls(body: () => void): string[] {
  const made: string[] = [];
  const real = bufferutil!;
  setNativeMask({
    mask(source, mask, output, offset, length) {
      made.push(`mask ${length}`);
      real.mask(source, mask, output, offset, length);
    },
    unmask(buffer, mask) {
      made.push(`unmask ${buffer.length}`);
      real.unmask(buffer, mask);
    }
  });
  try {
    body();
  } finally {
    setNativeMask(initialNative);
  }
  return made;
}

test('bufferutil from node_modules loads as native (else the bufferutil runs of mask.test.ts test nothing)', (t) => {
  t.not(bufferutil, null);
  t.is(bufferutil!.mask, bufferutilModule.mask);
});

test('nativeMaskFrom refuses what is not the native addon, or masks wrong', (t) => {
  t.is(nativeMaskFrom(undefined), null);
  t.is(nativeMaskFrom(null), null);
  t.is(nativeMaskFrom({}), null);
  t.is(nativeMaskFrom({ mask: 1, unmask: 2 }), null);
  // bufferutil's own JS fallback (what it exports when its addon does not load): slower than ours.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  t.is(nativeMaskFrom(require('bufferutil/fallback')), null);
  // Native functions that do not mask: caught by the check against the reference.
  t.is(nativeMaskFrom({ mask: Math.max, unmask: Math.max }), null);
});

test('in place: bufferutil from 128 bytes, the byte loop below; the key phase is rotated in', (t) => {
  for (const [n, want] of [
    [127, []],
    [128, ['unmask 128']],
    [5000, ['unmask 5000']],
    [1 << 20, [`unmask ${1 << 20}`]]
  ] as const) {
    for (let phase = 0; phase < 4; phase++) {
      const got = pattern(n + 1).subarray(1);
      const expected = Buffer.from(got);
      applyMaskReference(expected, key, expected, 0, phase);
      t.deepEqual(
        calls(() => applyMask(got, key, got, 0, phase)),
        [...want],
        `n ${n} phase ${phase}`
      );
      t.true(got.equals(expected), `n ${n} phase ${phase}`);
    }
  }
});

test('in place through another view of the same bytes (dst the whole buffer, at an offset) goes to mask()', (t) => {
  const buf = pattern(3000);
  const expected = Buffer.from(buf);
  applyMaskReference(expected.subarray(1001), key, expected, 1001, 2);
  t.deepEqual(
    calls(() => applyMask(buf.subarray(1001), key, buf, 1001, 2)),
    ['mask 1999']
  );
  t.true(buf.equals(expected));
});

test('into another buffer: bufferutil from 128 bytes, the byte loop below; the key phase is rotated in', (t) => {
  for (const n of [127, 128, 255, 256, 16383, 16384, (1 << 20) + 3]) {
    for (const [dstOffset, phase] of [
      [0, 0],
      [5, 3]
    ]) {
      const src = pattern(n + 3).subarray(3);
      const got = Buffer.alloc(n + 8, 0xee);
      const expected = Buffer.alloc(n + 8, 0xee);
      applyMaskReference(src, key, expected, dstOffset, phase);
      t.deepEqual(
        calls(() => applyMask(src, key, got, dstOffset, phase)),
        n >= 128 ? [`mask ${n}`] : [],
        `n ${n} dstOffset ${dstOffset}`
      );
      t.true(got.equals(expected), `n ${n} dstOffset ${dstOffset} phase ${phase}`);
    }
  }
});

test('a dst too short, a negative or fractional offset never reach bufferutil (it would write outside dst)', (t) => {
  for (const n of [200, 20000]) {
    const backing = Buffer.alloc(n + 64, 0xee);
    const dst = backing.subarray(16, 16 + n - 10); // 10 bytes short
    const made = calls(() => {
      try {
        applyMask(pattern(n), key, dst, 0);
      } catch (e) {
        t.true(e instanceof RangeError, String(e)); // the SIMD kernel's dst.set() refuses
      }
    });
    t.deepEqual(made, [], `n ${n}`);
    t.true(backing.subarray(0, 16).every((b) => b === 0xee), `before dst, n ${n}`);
    t.true(backing.subarray(16 + n - 10).every((b) => b === 0xee), `after dst, n ${n}`);
  }
  for (const dstOffset of [-1, 1.5]) {
    const backing = Buffer.alloc(300, 0xee);
    const dst = backing.subarray(8, 292);
    t.deepEqual(
      calls(() => applyMask(pattern(200), key, dst, dstOffset)),
      [],
      `dstOffset ${dstOffset}`
    );
    t.true(backing.subarray(0, 8).every((b) => b === 0xee), `before dst, dstOffset ${dstOffset}`);
  }
});

test('plain arrays never reach bufferutil (it would abort the process) and are masked as before', (t) => {
  const bytes = [...pattern(200)];
  const expected = Buffer.from(bytes);
  applyMaskReference(expected, key);
  const inPlace = bytes.slice() as unknown as Uint8Array;
  const out = Buffer.alloc(200);
  const unmasked = Buffer.alloc(150);
  const made = calls(() => {
    applyMask(inPlace, key);
    applyMask(bytes as unknown as Uint8Array, key, out);
    // A plain-array key is fine: the addon gets a copy, rotated.
    applyMask(expected.subarray(0, 150), [...key] as unknown as Uint8Array, unmasked);
  });
  t.deepEqual(made, ['mask 150']);
  t.deepEqual(Buffer.from(inPlace as unknown as number[]), expected);
  t.deepEqual(out, expected);
  t.deepEqual(unmasked, pattern(150));
});

test('bufferutil is loaded when installed, unless WSFRAME_NO_BUFFERUTIL is set', (t) => {
  const loaded = (noBufferutil: string | undefined): string => {
    const env = { ...process.env };
    delete env.WSFRAME_NO_BUFFERUTIL;
    if (noBufferutil !== undefined) env.WSFRAME_NO_BUFFERUTIL = noBufferutil;
    const script = "process.stdout.write(String(require('./src/core/mask').getNativeMask() !== null))";
    return execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
      cwd: join(__dirname, '..', '..'),
      env,
      encoding: 'utf8'
    });
  };
  t.is(loaded(undefined), 'true');
  t.is(loaded(''), 'true');
  t.is(loaded('1'), 'false');
});
