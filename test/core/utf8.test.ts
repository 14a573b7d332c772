import test from 'ava';
import fc from 'fast-check';
import { isValidUtf8, Utf8Validator } from '../../src';
import { isValidUtf8Reference } from '../../src/core/utf8';
import { hex } from '../helpers/bytes';

/** The oracle: WHATWG's fatal UTF-8 decoder. */
function oracle(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * How a stream of pieces fares: the index of the first piece after which the input is known
 * to be invalid (-1 if none), and whether the whole input is valid.
 */
interface StreamResult {
  firstBad: number;
  valid: boolean;
}

/** The streaming oracle: a fatal TextDecoder with `stream: true` fails on the first bad piece. */
function streamOracle(pieces: readonly Uint8Array[]): StreamResult {
  const d = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < pieces.length; i++) {
    try {
      d.decode(pieces[i], { stream: true });
    } catch {
      return { firstBad: i, valid: false };
    }
  }
  try {
    d.decode();
    return { firstBad: -1, valid: true };
  } catch {
    return { firstBad: -1, valid: false };
  }
}

/** The same with Utf8Validator: push until it says false. */
function validatorRun(pieces: readonly Uint8Array[], v = new Utf8Validator()): StreamResult {
  for (let i = 0; i < pieces.length; i++) {
    if (!v.push(pieces[i]!)) return { firstBad: i, valid: false };
  }
  return { firstBad: -1, valid: v.end() };
}

/** Cuts `bytes` at the given sorted offsets. */
function cut(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const bounds = [0, ...offsets, bytes.length];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) out.push(bytes.subarray(bounds[i], bounds[i + 1]));
  return out;
}

const ASCII_PAD = Buffer.from('The quick brown fox jumps over'); // 30 bytes: past the native threshold

// [name, hex, valid]
const CASES: Array<[string, string, boolean]> = [
  ['empty', '', true],
  ['ASCII', '48656c6c6f', true],
  ['NUL and DEL', '00 7f', true],
  ['U+0080, the smallest 2-byte', 'c2 80', true],
  ['U+07FF, the largest 2-byte', 'df bf', true],
  ['U+0800, the smallest 3-byte', 'e0 a0 80', true],
  ['U+D7FF, just below the surrogates', 'ed 9f bf', true],
  ['U+E000, just above the surrogates', 'ee 80 80', true],
  ['U+FEFF BOM', 'ef bb bf', true],
  ['U+FFFE noncharacter (valid UTF-8)', 'ef bf be', true],
  ['U+FFFF', 'ef bf bf', true],
  ['U+10000, the smallest 4-byte', 'f0 90 80 80', true],
  ['U+10FFFF, the largest code point', 'f4 8f bf bf', true],
  ['κόσμε', 'ce ba e1 bd b9 cf 83 ce bc ce b5', true],
  ['overlong NUL (2 bytes)', 'c0 80', false],
  ['overlong "/" (2 bytes)', 'c0 af', false],
  ['overlong U+007F (2 bytes)', 'c1 bf', false],
  ['overlong NUL (3 bytes)', 'e0 80 80', false],
  ['overlong U+07FF (3 bytes)', 'e0 9f bf', false],
  ['overlong NUL (4 bytes)', 'f0 80 80 80', false],
  ['overlong U+FFFF (4 bytes)', 'f0 8f bf bf', false],
  ['overlong "/" (5 bytes)', 'f8 80 80 80 af', false],
  ['overlong "/" (6 bytes)', 'fc 80 80 80 80 af', false],
  ['surrogate U+D800', 'ed a0 80', false],
  ['surrogate U+DB7F', 'ed ad bf', false],
  ['surrogate U+DB80', 'ed ae 80', false],
  ['surrogate U+DBFF', 'ed af bf', false],
  ['surrogate U+DC00', 'ed b0 80', false],
  ['surrogate U+DFFF', 'ed bf bf', false],
  ['surrogate pair U+D800 U+DC00 (CESU-8)', 'ed a0 80 ed b0 80', false],
  ['U+110000', 'f4 90 80 80', false],
  ['U+13FFFF', 'f4 bf bf bf', false],
  ['U+1FFFFF (F7)', 'f7 bf bf bf', false],
  ['F5 lead', 'f5 80 80 80', false],
  ['truncated 2-byte', 'c3', false],
  ['truncated 3-byte (1 of 3)', 'e2', false],
  ['truncated 3-byte (2 of 3)', 'e2 82', false],
  ['truncated 4-byte (3 of 4)', 'f0 9f 98', false],
  ['truncated at the end after ASCII', '41 42 f0 9f', false],
  ['truncated 2-byte then ASCII', 'c3 28', false],
  ['truncated 3-byte then ASCII', 'e2 82 41', false],
  ['truncated 4-byte then ASCII', 'f0 9f 98 41', false],
  ['lone continuation 80', '80', false],
  ['lone continuation BF', 'bf', false],
  ['continuation after ASCII', '41 80', false],
  ['extra continuation', 'c3 a9 a9', false],
  ['4-byte sequence with 5 continuations', 'f0 90 80 80 80', false],
  ['Autobahn 6.4.1 (κόσμε, U+110000, "edited")', 'cebae1bdb9cf83cebcceb5 f4908080 656469746564', false],
  ...['c0', 'c1', 'f5', 'f6', 'f7', 'f8', 'f9', 'fa', 'fb', 'fc', 'fd', 'fe', 'ff'].map(
    (b): [string, string, boolean] => [`byte ${b.toUpperCase()} alone`, b, false]
  ),
  ...['c0', 'c1', 'f5', 'ff'].map((b): [string, string, boolean] => [`byte ${b.toUpperCase()} then continuations`, `${b} 80 80 80`, false])
];

for (const [name, bytesHex, valid] of CASES) {
  test(`isValidUtf8 and Utf8Validator agree with TextDecoder: ${name}`, (t) => {
    const bytes = hex(bytesHex);
    t.is(oracle(bytes), valid, 'the table agrees with TextDecoder');
    t.is(isValidUtf8(bytes), valid, 'isValidUtf8');
    t.is(isValidUtf8Reference(bytes), valid, 'isValidUtf8Reference');
    t.is(validatorRun([bytes]).valid, valid, 'Utf8Validator in one piece');
    // Long enough for the native paths, with the case at the start, middle and end.
    for (const long of [Buffer.concat([bytes, ASCII_PAD]), Buffer.concat([ASCII_PAD, bytes, ASCII_PAD]), Buffer.concat([ASCII_PAD, bytes])]) {
      t.is(oracle(long), valid);
      t.is(isValidUtf8(long), valid, 'isValidUtf8 (native path)');
      t.is(validatorRun([long]).valid, valid, 'Utf8Validator (native path)');
    }
    // Every split into 2 and 3 pieces: same verdict, and fail fast exactly where TextDecoder does.
    const padded = Buffer.concat([ASCII_PAD.subarray(0, 3), bytes, ASCII_PAD.subarray(0, 2)]);
    const bad: string[] = [];
    for (let i = 0; i <= padded.length; i++) {
      for (let j = i; j <= padded.length; j++) {
        const pieces = cut(padded, j === i ? [i] : [i, j]);
        const got = validatorRun(pieces);
        const want = streamOracle(pieces);
        if (got.valid !== valid || got.firstBad !== want.firstBad || want.valid !== valid) {
          bad.push(`${i},${j}: got ${JSON.stringify(got)}, TextDecoder ${JSON.stringify(want)}`);
        }
      }
    }
    t.deepEqual(bad, []);
  });
}

test('fail fast: Autobahn 6.4.1, the piece with F4 90 80 80 is rejected', (t) => {
  const v = new Utf8Validator();
  t.true(v.push(hex('cebae1bdb9cf83cebcceb5')));
  t.false(v.push(hex('f4908080')));
});

test('fail fast: Autobahn 6.4.2, "F4" is a valid start, the "90" after it is not', (t) => {
  const v = new Utf8Validator();
  t.true(v.push(hex('cebae1bdb9cf83cebcceb5 f4')));
  t.false(v.push(hex('90')));
});

test('fail fast: Autobahn 6.4.3 and 6.4.4, one byte at a time', (t) => {
  const bytes = hex('cebae1bdb9cf83cebcceb5 f4908080 656469746564');
  const v = new Utf8Validator();
  const results: boolean[] = [];
  for (const b of bytes) {
    const ok = v.push(Uint8Array.of(b));
    results.push(ok);
    if (!ok) break;
  }
  t.is(results.length, 13, 'rejected at the 13th byte, the 0x90');
  t.deepEqual(results.slice(0, 12), Array(12).fill(true));
  t.false(results[12]);
});

test('fail fast: an invalid byte far from the end of a long piece is rejected in that piece', (t) => {
  const v = new Utf8Validator();
  t.true(v.push(Buffer.alloc(100, 0x61)));
  t.false(v.push(Buffer.concat([Buffer.alloc(50, 0x61), hex('ff'), Buffer.alloc(50, 0x61)])));
});

test('Utf8Validator: end() is false while a sequence is open; reset() forgets it', (t) => {
  const v = new Utf8Validator();
  t.true(v.end(), 'nothing pushed');
  t.true(v.push(hex('e2 82')));
  t.false(v.end());
  t.true(v.push(hex('ac')));
  t.true(v.end(), '€ completed');
  t.true(v.push(hex('f0')));
  t.false(v.end());
  v.reset();
  t.true(v.end());
  t.true(v.push(hex('41')), 'an ASCII byte after reset is not read as a continuation of F0');
  t.true(v.end());
  t.true(v.push(new Uint8Array(0)), 'an empty piece changes nothing');
  t.true(v.end());
});

test('Utf8Validator: pieces that are views with any byteOffset', (t) => {
  const text = Buffer.from('x'.repeat(40) + 'é€😀'.repeat(10) + 'y'.repeat(40));
  for (let off = 0; off < 4; off++) {
    const backing = Buffer.alloc(text.length + off);
    text.copy(backing, off);
    const view = backing.subarray(off);
    t.true(validatorRun(cut(view, [33, 47, 48, 101])).valid);
    t.true(isValidUtf8(view));
  }
});

// -------------------------------------------------------------------------------------------
// Properties.

/** Bytes that are often nearly UTF-8: valid encodings mixed with bytes at the edges of the ranges. */
const utf8ish = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }).map((s) => Buffer.from(s, 'utf8')) },
      {
        weight: 2,
        arbitrary: fc
          .constantFrom(0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff)
          .map((b) => Buffer.of(b))
      },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => Buffer.from(b)) }
    ),
    { maxLength: 24 }
  )
  .map((parts) => Buffer.concat(parts));

const anyBytes = fc.oneof(utf8ish, fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)));

test('property: isValidUtf8, the reference and Utf8Validator agree with TextDecoder on generated bytes', (t) => {
  fc.assert(
    fc.property(anyBytes, fc.boolean(), (bytes, pad) => {
      const input = pad ? Buffer.concat([ASCII_PAD, bytes]) : bytes;
      const want = oracle(input);
      return (
        isValidUtf8(input) === want &&
        isValidUtf8Reference(input) === want &&
        validatorRun([input]).valid === want
      );
    }),
    { numRuns: 2000 }
  );
  t.pass();
});

test('property: Utf8Validator over random pieces fails on the same piece as a streaming TextDecoder', (t) => {
  fc.assert(
    fc.property(
      fc.array(anyBytes, { minLength: 1, maxLength: 6 }).map((parts) => Buffer.concat(parts)),
      fc.array(fc.nat(), { maxLength: 6 }),
      (bytes, rawCuts) => {
        const offsets = rawCuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
        const pieces = cut(bytes, offsets);
        const got = validatorRun(pieces);
        const want = streamOracle(pieces);
        return got.firstBad === want.firstBad && got.valid === want.valid && want.valid === oracle(bytes);
      }
    ),
    { numRuns: 1000 }
  );
  t.pass();
});

test('property: a valid string split at every point into 2 and 3 pieces is accepted', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 16 }), (s) => {
      const bytes = Buffer.from(s, 'utf8');
      for (let i = 0; i <= bytes.length; i++) {
        if (!validatorRun(cut(bytes, [i])).valid) return false;
        for (let j = i; j <= bytes.length; j++) {
          if (!validatorRun(cut(bytes, [i, j])).valid) return false;
        }
      }
      return isValidUtf8(bytes) && isValidUtf8Reference(bytes);
    }),
    { numRuns: 150 }
  );
  t.pass();
});

test('property: a long valid string (native paths) split at every point into 2 pieces is accepted', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', minLength: 10, maxLength: 80 }), (s) => {
      const bytes = Buffer.from(s, 'utf8');
      for (let i = 0; i <= bytes.length; i++) {
        if (!validatorRun(cut(bytes, [i])).valid) return false;
      }
      return isValidUtf8(bytes);
    }),
    { numRuns: 100 }
  );
  t.pass();
});

test('property: a valid string with one byte replaced by an invalid one is rejected in the right piece', (t) => {
  fc.assert(
    fc.property(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
      fc.nat(),
      fc.constantFrom(0xc0, 0xc1, 0xf5, 0xf8, 0xfe, 0xff),
      fc.nat(),
      (s, at, bad, cutAt) => {
        const bytes = Buffer.from(s, 'utf8');
        bytes[at % bytes.length] = bad;
        const pieces = cut(bytes, [cutAt % (bytes.length + 1)]);
        const got = validatorRun(pieces);
        const want = streamOracle(pieces);
        return !got.valid && got.firstBad === want.firstBad && got.firstBad !== -1;
      }
    ),
    { numRuns: 500 }
  );
  t.pass();
});
