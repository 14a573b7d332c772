/**
 * Section 6: UTF-8 in text messages (RFC 6455 §5.6, §8.1; RFC 3629). The byte sequences
 * are the classic boundary, overlong, surrogate and noncharacter families; valid ones must
 * be echoed byte for byte, invalid ones must fail the connection with 1007, as early as the
 * first byte that makes the message invalid.
 */
import { isUtf8 } from 'node:buffer';
import { Case, OP } from '../types';
import { FAIL_1007, checkpoint, cont, eText, fragments, hex, numbered, send, text } from './build';

/** One case for a byte sequence sent as a single text frame: echo if valid, else 1007. */
function one(title: string, bytes: Buffer): Omit<Case, 'id'> {
  const valid = isUtf8(bytes);
  return valid
    ? { title: `valid: ${title}`, steps: [send([text(bytes)])], expect: [eText(bytes)] }
    : { title: `invalid: ${title}`, steps: [send([text(bytes)])], expect: [], end: FAIL_1007 };
}

/** A family of sequences, each a case. */
function family(prefix: string, list: Array<[string, string]>): Case[] {
  return numbered(prefix, list.map(([title, h]) => one(`${title} (${h.replace(/\s+/g, ' ').trim()})`, hex(h))));
}

const KOSME = hex('cebae1bdb9cf83cebcceb5'); // the Greek word kosme, 11 bytes
const MIXED = Buffer.from('aé€𝄞', 'utf8'); // 1 + 2 + 3 + 4 bytes

/** Each byte of `b` as its own fragment. */
const perByte = (b: Buffer) => fragments(OP.text, b, () => 1);

function basics(): Case[] {
  const hello = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!', 'utf8');
  const invalid = Buffer.concat([KOSME, hex('eda080'), Buffer.from('edited')]);
  const cps = (s: string) => [...s].map((ch) => Buffer.byteLength(ch));
  return [
    ...numbered('6.1.', [
      { title: 'empty text message', steps: [send([text('')])], expect: [eText('')] },
      {
        title: 'text message in three empty fragments',
        steps: [send([text('', { fin: false }), cont('', { fin: false }), cont('')])],
        expect: [eText('')]
      },
      {
        title: 'text message in three fragments, the first and last empty',
        steps: [send([text('', { fin: false }), cont('middle', { fin: false }), cont('')])],
        expect: [eText('middle')]
      }
    ]),
    ...numbered('6.2.', [
      { title: 'valid UTF-8 text with 2-byte characters, one frame', steps: [send([text(hello)])], expect: [eText(hello)] },
      {
        title: 'the same in two fragments split on a character boundary',
        steps: [send(fragments(OP.text, hello, [8]))],
        expect: [eText(hello)]
      },
      { title: 'the same with one byte per fragment', steps: [send(perByte(hello))], expect: [eText(hello)] },
      { title: 'kosme with one byte per fragment (every split inside a character)', steps: [send(perByte(KOSME))], expect: [eText(KOSME)] }
    ]),
    ...numbered('6.3.', [
      { title: 'text containing a surrogate (invalid), one frame', steps: [send([text(invalid)])], expect: [], end: FAIL_1007 },
      { title: 'the same with one byte per fragment', steps: [send(perByte(invalid))], expect: [], end: FAIL_1007 }
    ]),
    ...numbered('6.4.', [
      {
        title: 'fail-fast: three fragments, the second an out-of-range 4-byte sequence; pause before the third',
        steps: [send([text(KOSME, { fin: false })]), send([cont(hex('f4908080'), { fin: false })]), checkpoint(), send([cont('edited')])],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'fail-fast: a 4-byte sequence split over fragments, its second byte out of range; pause before the rest',
        steps: [send([text(Buffer.concat([KOSME, hex('f4')]), { fin: false })]), send([cont(hex('90'), { fin: false })]), checkpoint(), send([cont(hex('8080656469746564'))])],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'fail-fast within one frame: header and valid text, then invalid bytes, then the rest, as three TCP writes',
        steps: [{ send: [text(Buffer.concat([KOSME, hex('f4908080'), Buffer.from('edited')]))], chop: { payloadCuts: [KOSME.length, KOSME.length + 4] }, checkpointAfter: 2 }],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'fail-fast within one frame: a sequence cut by TCP writes, its second byte out of range',
        steps: [{ send: [text(Buffer.concat([KOSME, hex('f4908080'), Buffer.from('edited')]))], chop: { payloadCuts: [KOSME.length + 1, KOSME.length + 2] }, checkpointAfter: 2 }],
        expect: [],
        end: FAIL_1007
      }
    ]),
    ...numbered('6.5.', [
      { title: 'kosme in one frame', steps: [send([text(KOSME)])], expect: [eText(KOSME)] },
      { title: 'kosme with one character per fragment', steps: [send(fragments(OP.text, KOSME, cps(KOSME.toString('utf8'))))], expect: [eText(KOSME)] },
      { title: 'kosme in one frame written one byte at a time', steps: [send([text(KOSME)], 1)], expect: [eText(KOSME)] },
      { title: 'kosme with one byte per fragment, written one byte at a time', steps: [send(perByte(KOSME), 1)], expect: [eText(KOSME)] },
      { title: 'kosme in one frame, TCP writes of 3 bytes', steps: [send([text(KOSME)], 3)], expect: [eText(KOSME)] }
    ]),
    // Every prefix of kosme: complete characters are echoed, a cut character fails at the end of the message.
    ...numbered(
      '6.6.',
      Array.from({ length: 11 }, (_, i) => one(`first ${i + 1} byte(s) of kosme`, KOSME.subarray(0, i + 1)))
    )
  ];
}

function families(): Case[] {
  const cont64 = Array.from({ length: 64 }, (_, i) => (0x80 + i).toString(16)).join(' ');
  const lonely = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => `${(from + i).toString(16)} 20`).join(' ');
  const missing = ['c0', 'e0 80', 'f0 80 80', 'f8 80 80 80', 'fc 80 80 80 80', 'df', 'ef bf', 'f7 bf bf', 'fb bf bf bf', 'fd bf bf bf bf'];
  const surrogates = ['eda080', 'edadbf', 'edae80', 'edafbf', 'edb080', 'edbe80', 'edbfbf'];
  const high = ['eda080', 'edadbf', 'edae80', 'edafbf'];
  const low = ['edb080', 'edbfbf'];
  const nonchars: Array<[string, string]> = [];
  for (let plane = 0; plane <= 16; plane++) {
    for (const last of [0xfffe, 0xffff]) {
      const cp = plane * 0x10000 + last;
      nonchars.push([`noncharacter U+${cp.toString(16).toUpperCase()}`, Buffer.from(String.fromCodePoint(cp), 'utf8').toString('hex')]);
    }
  }
  return [
    ...family('6.7.', [
      ['first 1-byte character U+0000', '00'],
      ['first 2-byte character U+0080', 'c2 80'],
      ['first 3-byte character U+0800', 'e0 a0 80'],
      ['first 4-byte character U+10000', 'f0 90 80 80']
    ]),
    ...family('6.8.', [
      ['5-byte sequence', 'f8 88 80 80 80'],
      ['6-byte sequence', 'fc 84 80 80 80 80']
    ]),
    ...family('6.9.', [
      ['last 1-byte character U+007F', '7f'],
      ['last 2-byte character U+07FF', 'df bf'],
      ['last 3-byte character U+FFFF', 'ef bf bf'],
      ['last code point U+10FFFF', 'f4 8f bf bf']
    ]),
    ...family('6.10.', [
      ['4-byte sequence beyond U+10FFFF', 'f7 bf bf bf'],
      ['largest 5-byte sequence', 'fb bf bf bf bf'],
      ['largest 6-byte sequence', 'fd bf bf bf bf bf']
    ]),
    ...family('6.11.', [
      ['U+D7FF, just below the surrogates', 'ed 9f bf'],
      ['U+E000, just above the surrogates', 'ee 80 80'],
      ['U+FFFD replacement character', 'ef bf bd'],
      ['U+10FFFF, the last code point', 'f4 8f bf bf'],
      ['U+110000, one past the last code point', 'f4 90 80 80']
    ]),
    ...family('6.12.', [
      ['lone continuation byte 0x80', '80'],
      ['lone continuation byte 0xbf', 'bf'],
      ['two continuation bytes', '80 bf'],
      ['three continuation bytes', '80 bf 80'],
      ['four continuation bytes', '80 bf 80 bf'],
      ['five continuation bytes', '80 bf 80 bf 80'],
      ['six continuation bytes', '80 bf 80 bf 80 bf'],
      ['all 64 continuation bytes', cont64]
    ]),
    ...family('6.13.', [
      ['every 2-byte lead byte followed by a space', lonely(0xc0, 0xdf)],
      ['every 3-byte lead byte followed by a space', lonely(0xe0, 0xef)],
      ['every 4-byte lead byte followed by a space', lonely(0xf0, 0xf7)],
      ['every 5-byte lead byte followed by a space', lonely(0xf8, 0xfb)],
      ['every 6-byte lead byte followed by a space', lonely(0xfc, 0xfd)]
    ]),
    ...family(
      '6.14.',
      missing.map((h) => [`sequence missing its last continuation byte`, h] as [string, string])
    ),
    ...family('6.15.', [['all the truncated sequences of 6.14 concatenated', missing.join(' ')]]),
    ...family('6.16.', [
      ['impossible byte 0xfe', 'fe'],
      ['impossible byte 0xff', 'ff'],
      ['impossible bytes fe fe ff ff', 'fe fe ff ff']
    ]),
    ...family('6.17.', [
      ['overlong "/" in 2 bytes', 'c0 af'],
      ['overlong "/" in 3 bytes', 'e0 80 af'],
      ['overlong "/" in 4 bytes', 'f0 80 80 af'],
      ['overlong "/" in 5 bytes', 'f8 80 80 80 af'],
      ['overlong "/" in 6 bytes', 'fc 80 80 80 80 af']
    ]),
    ...family('6.18.', [
      ['largest overlong 2-byte sequence', 'c1 bf'],
      ['largest overlong 3-byte sequence', 'e0 9f bf'],
      ['largest overlong 4-byte sequence', 'f0 8f bf bf'],
      ['largest overlong 5-byte sequence', 'f8 87 bf bf bf'],
      ['largest overlong 6-byte sequence', 'fc 83 bf bf bf bf']
    ]),
    ...family('6.19.', [
      ['overlong NUL in 2 bytes', 'c0 80'],
      ['overlong NUL in 3 bytes', 'e0 80 80'],
      ['overlong NUL in 4 bytes', 'f0 80 80 80'],
      ['overlong NUL in 5 bytes', 'f8 80 80 80 80'],
      ['overlong NUL in 6 bytes', 'fc 80 80 80 80 80']
    ]),
    ...family(
      '6.20.',
      surrogates.map((h) => [`single UTF-16 surrogate encoded in UTF-8`, h] as [string, string])
    ),
    ...family(
      '6.21.',
      high.flatMap((h) => low.map((l) => [`surrogate pair encoded as two 3-byte sequences`, `${h} ${l}`] as [string, string]))
    ),
    ...family('6.22.', nonchars),
    ...family('6.23.', [
      ['U+FFFD replacement character inside text', '61 ef bf bd 62'],
      ['U+FEFF byte order mark at the start', 'ef bb bf 61'],
      ['U+0000 inside text', '61 00 62'],
      ['noncharacter U+FDD0', 'ef b7 90'],
      ['noncharacter U+FDEF', 'ef b7 af'],
      ['U+2060 word joiner', 'e2 81 a0'],
      ['U+10FFFD, the last private-use character', 'f4 8f bf bd']
    ])
  ];
}

/** Our own: sequences split across fragments and across TCP writes. */
function splits(): Case[] {
  const out: Array<Omit<Case, 'id'>> = [];
  for (let at = 1; at < MIXED.length; at++) {
    out.push({
      title: `"aé€𝄞" in two fragments split after byte ${at}`,
      steps: [send(fragments(OP.text, MIXED, [at]), 'frame')],
      expect: [eText(MIXED)]
    });
  }
  const a = numbered('6.24.', out);
  const b = numbered(
    '6.25.',
    Array.from({ length: MIXED.length - 1 }, (_, i) => ({
      title: `"aé€𝄞" in one frame, TCP writes cut after payload byte ${i + 1}`,
      steps: [send([text(MIXED)], { payloadCuts: [i + 1] })],
      expect: [eText(MIXED)]
    }))
  );
  const ff = (first: string, second: string, third: string, title: string): Omit<Case, 'id'> => ({
    title: `fail-fast across fragments: ${title}`,
    steps: [send([text(hex(first), { fin: false })]), send([cont(hex(second), { fin: false })]), checkpoint(), send([cont(hex(third))])],
    expect: [],
    end: FAIL_1007
  });
  const c = numbered('6.26.', [
    ff('61 e0', '80 80', '62', 'overlong 3-byte sequence whose lead byte ends the first fragment'),
    ff('61 ed', 'a0 80', '62', 'surrogate whose lead byte ends the first fragment'),
    ff('61 f4', '90 80 80', '62', 'out-of-range sequence whose lead byte ends the first fragment'),
    ff('61 c3', '28', '62', '2-byte sequence cut by an ASCII byte in the next fragment'),
    ff('61 f0 9f', '98 ff', '62', '4-byte sequence broken by 0xff in the next fragment'),
    {
      title: 'a 4-byte sequence cut short by the end of a fragmented message',
      steps: [send([text(hex('61 f0 9f'), { fin: false }), cont(hex('98'))], 'frame')],
      expect: [],
      end: FAIL_1007
    }
  ]);
  const long = Buffer.from('Ünïcödé ✓ 𝄞 ~ κόσμε', 'utf8');
  const d = numbered('6.27.', [
    { title: 'mixed text in fragments of 3 bytes, written one byte at a time', steps: [send(fragments(OP.text, long, () => 3), 1)], expect: [eText(long)] },
    {
      title: 'mixed text in fragments of 5 bytes with a ping after each, one byte at a time',
      steps: [send(fragments(OP.text, long, () => 5).flatMap((f) => (f.fin ? [f] : [f, { op: OP.ping, data: Buffer.from('p') }])), 1)],
      expect: [...Array.from({ length: Math.ceil(long.length / 5) - 1 }, () => ({ op: 'pong' as const, data: Buffer.from('p') })), eText(long)]
    },
    {
      title: 'invalid byte in the last of many 2-byte fragments, written one byte at a time',
      steps: [send(fragments(OP.text, Buffer.concat([long, hex('ff')]), () => 2), 1)],
      expect: [],
      end: FAIL_1007
    }
  ]);
  return [...a, ...b, ...c, ...d];
}

export function utf8Cases(): Case[] {
  return [...basics(), ...families(), ...splits()];
}
