/**
 * Sections 12 and 13: permessage-deflate (RFC 7692). The suite compresses with its own zlib
 * use (compression.ts) and checks every echo inflates to what it sent.
 *
 * 12.1-12.5 follow the public Autobahn case list: messages of 16 B to 128 KiB cut from five
 * payload kinds, each sent once the previous echo is back, with the default offer; the last
 * eight rows cut the compressed payload into frames of 256 B to 32 KiB. Autobahn sends 1000
 * messages per case; here the count falls with the size (at most about 1 MiB per case) so
 * the full run stays within minutes. 12.6 and 12.7 are our own: the RFC 7692 §7.2.3 payloads
 * and edge forms, and the violations a receiver must fail. 13.x repeat the rows with the
 * parameter sets of RFC 7692 §7.1, asked by the suite or set in wsframe.
 *
 * The payload kinds are generated (Autobahn uses real files): JSON records, an 8-bit
 * greyscale bitmap, German prose with umlauts (UTF-8 text), HTML, and random bytes, which
 * deflate cannot shrink.
 */
import { Negotiation, WSFRAME_THRESHOLD, compressMessage } from '../compression';
import { Case, CompressedSpec, Expected, FrameSpec, OP, Step } from '../types';
import { binaryPayload, prng } from '../wire';
import {
  FAIL_1002,
  FAIL_1007,
  awaitMessages,
  binary,
  checkpoint,
  close,
  cont,
  hex,
  numbered,
  ping,
  pingAfterFrame,
  pong,
  send,
  text
} from './build';
import { MAX_MESSAGE_SIZE } from '../peers';

const KiB = 1024;
const MiB = 1024 * KiB;
const CORPUS_SIZE = 256 * KiB;

/**
 * Autobahn's rows: payload size and the size of the frames the compressed payload is cut
 * into (0: one frame), with our message counts. Autobahn sends 1000 messages in every row;
 * here 1000 only of 16 B, then fewer as they grow (from 256 B on, every case still sends
 * more than the 32 KiB window), which keeps the full run of both roles within minutes.
 */
const ROWS: Array<[size: number, fragment: number, count: number]> = [
  [16, 0, 1000],
  [64, 0, 500],
  [256, 0, 250],
  [KiB, 0, 125],
  [4 * KiB, 0, 60],
  [8 * KiB, 0, 30],
  [16 * KiB, 0, 16],
  [32 * KiB, 0, 12],
  [64 * KiB, 0, 8],
  [128 * KiB, 0, 8],
  [8 * KiB, 256, 16],
  [16 * KiB, 256, 8],
  [32 * KiB, 256, 8],
  [64 * KiB, 256, 8],
  [128 * KiB, 256, 4],
  [128 * KiB, KiB, 8],
  [128 * KiB, 4 * KiB, 8],
  [128 * KiB, 32 * KiB, 8]
];

/**
 * Rows in the default run (the others only with CONFORMANCE_FULL=1). Section 12: 4 KiB,
 * 128 KiB, and 128 KiB in 1 KiB frames; section 13: 4 KiB, and 128 KiB in 1 KiB frames.
 */
const DEFAULT_ROWS: Record<number, Set<number>> = { 12: new Set([5, 10, 16]), 13: new Set([5, 16]) };

function sizeText(n: number): string {
  return n >= KiB ? `${n / KiB} KiB` : `${n} B`;
}

// ---------------------------------------------------------------------------------------
// Payload kinds.

interface Corpus {
  name: string;
  text: boolean;
  bytes: Buffer;
}

function pick<T>(r: () => number, list: readonly T[]): T {
  return list[Math.floor(r() * list.length)]!;
}

/** Builds a corpus of CORPUS_SIZE bytes out of generated pieces, ending on a whole piece. */
function grow(piece: (i: number) => string): Buffer {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < CORPUS_SIZE; i++) {
    const p = piece(i);
    parts.push(p);
    size += Buffer.byteLength(p);
  }
  return Buffer.from(parts.join(''), 'utf8');
}

function jsonCorpus(): Buffer {
  const r = prng(1201);
  const tags = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
  const cities = ['München', 'Berlin', 'Zürich', 'Wien', 'Köln', 'Graz'];
  return grow((i) =>
    JSON.stringify({
      id: 100000 + i,
      user: `user_${String(Math.floor(r() * 5000)).padStart(4, '0')}`,
      active: r() < 0.7,
      score: Math.round(r() * 100000) / 1000,
      tags: [pick(r, tags), pick(r, tags)],
      city: pick(r, cities),
      created: new Date(Date.UTC(2024, 0, 1) + Math.floor(r() * 3e10)).toISOString(),
      location: { lat: Math.round(r() * 180_0000 - 90_0000) / 10000, lon: Math.round(r() * 360_0000 - 180_0000) / 10000 }
    }) + ',\n'
  );
}

function bitmapCorpus(): Buffer {
  // A BMP-like 54-byte header, then 8-bit greyscale rows of 512 pixels: smooth shapes plus noise.
  const r = prng(1202);
  const out = Buffer.alloc(CORPUS_SIZE);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(CORPUS_SIZE, 2);
  out.writeUInt32LE(54, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(512, 18);
  out.writeInt32LE((CORPUS_SIZE - 54) >> 9, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(8, 28);
  for (let i = 54; i < CORPUS_SIZE; i++) {
    const x = (i - 54) & 511;
    const y = (i - 54) >> 9;
    const v = 128 + 60 * Math.sin(x / 23) * Math.cos(y / 31) + 40 * Math.sin((x + y) / 57) + (r() - 0.5) * 24;
    out[i] = Math.max(0, Math.min(255, Math.round(v / 4) * 4));
  }
  return out;
}

function proseCorpus(): Buffer {
  const r = prng(1203);
  const words = [
    'der', 'die', 'das', 'und', 'nicht', 'ich', 'du', 'mit', 'sich', 'auf', 'für', 'über', 'schön', 'Größe',
    'Straße', 'Mädchen', 'Bäume', 'früh', 'heißt', 'Glück', 'Übermut', 'Geist', 'Himmel', 'Erde', 'weiß',
    'König', 'Tür', 'Frühling', 'Äpfel', 'Nacht', 'Welt', 'Herz', 'müssen', 'können', 'Blüte', 'Öl', 'Flöte',
    'Brücke', 'Kräfte', 'Gefühl', 'wär', 'hätt', 'Zauber', 'Dämmerung'
  ];
  return grow((i) => {
    const n = 4 + Math.floor(r() * 10);
    const sentence = Array.from({ length: n }, () => pick(r, words)).join(' ');
    return sentence[0]!.toUpperCase() + sentence.slice(1) + (i % 7 === 6 ? '!\n\n' : i % 3 === 2 ? '?\n' : '. ');
  });
}

function htmlCorpus(): Buffer {
  const r = prng(1204);
  const words = ['news', 'sport', 'weather', 'markets', 'science', 'travel', 'culture', 'opinion', 'video', 'local'];
  return grow((i) => {
    const a = pick(r, words);
    const b = pick(r, words);
    return (
      `<div class="teaser teaser-${i % 5}" data-id="${1000 + i}">\n` +
      `  <a href="/${a}/2024/${String(1 + (i % 12)).padStart(2, '0')}/${b}-story-${i}.html" title="${a} ${b}">` +
      `<img src="/img/${a}/${i}.jpg" width="${160 + (i % 4) * 40}" height="90" alt=""></a>\n` +
      `  <h3 class="headline">${a[0]!.toUpperCase()}${a.slice(1)}: ${b} report number ${i}</h3>\n` +
      `  <p class="meta"><span class="time">${Math.floor(r() * 24)}:${String(Math.floor(r() * 60)).padStart(2, '0')}</span></p>\n</div>\n`
    );
  });
}

let corpora: Corpus[] | undefined;

/** The five payload kinds of 12.1-12.5 (built once). */
function allCorpora(): Corpus[] {
  corpora ??= [
    { name: 'JSON records (UTF-8 text)', text: true, bytes: jsonCorpus() },
    { name: 'greyscale bitmap (binary)', text: false, bytes: bitmapCorpus() },
    { name: 'German prose with umlauts (UTF-8 text)', text: true, bytes: proseCorpus() },
    { name: 'HTML (UTF-8 text)', text: true, bytes: htmlCorpus() },
    { name: 'random bytes, which do not compress (binary)', text: false, bytes: binaryPayload(CORPUS_SIZE, 1205) }
  ];
  return corpora;
}

/**
 * `count` consecutive slices of `size` bytes of a corpus, wrapping around (as Autobahn
 * reads its files). Text slices are kept valid UTF-8: a character cut at either end is
 * replaced by spaces, so the size stays exact.
 */
function slices(corpus: Corpus, size: number, count: number): Buffer[] {
  const src = corpus.bytes;
  const out: Buffer[] = [];
  let at = 0;
  for (let k = 0; k < count; k++) {
    let m: Buffer;
    if (at + size <= src.length) m = src.subarray(at, at + size);
    else {
      m = Buffer.alloc(size);
      for (let i = 0; i < size; i++) m[i] = src[(at + i) % src.length]!;
    }
    at = (at + size) % src.length;
    out.push(corpus.text ? wholeCharacters(m) : m);
  }
  return out;
}

function wholeCharacters(m: Buffer): Buffer {
  const isCont = (b: number): boolean => (b & 0xc0) === 0x80;
  let head = 0;
  while (head < m.length && isCont(m[head]!)) head++;
  // The last lead byte and how long its sequence should be.
  let lead = m.length - 1;
  while (lead >= 0 && isCont(m[lead]!)) lead--;
  const b = lead >= 0 ? m[lead]! : 0;
  const want = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
  const cut = lead >= 0 && lead + want > m.length ? lead : m.length;
  if (head === 0 && cut === m.length) return m;
  const copy = Buffer.from(m);
  copy.fill(0x20, 0, head);
  copy.fill(0x20, cut);
  return copy;
}

// ---------------------------------------------------------------------------------------
// Builders.

/** wsframe's echo of a message of `size` bytes is compressed exactly from its threshold on. */
function echoed(op: number, data: Buffer, threshold = WSFRAME_THRESHOLD): Expected {
  return { op: op === OP.text ? 'text' : 'binary', data, compressed: data.length >= threshold };
}

const compressed = (op: number, data: Buffer, x: Omit<CompressedSpec, 'op' | 'data'> = {}): CompressedSpec => ({ op, data, ...x });

/** Each message is sent once the echo of the previous one is back (as Autobahn does). */
function roundTrips(messages: CompressedSpec[], threshold?: number): Pick<Case, 'steps' | 'expect'> {
  const steps: Step[] = [];
  messages.forEach((m, i) => steps.push({ sendCompressed: [m] }, awaitMessages(i + 1)));
  return { steps, expect: messages.map((m) => echoed(m.op, m.data, threshold)) };
}

/**
 * The timeout of a case moving `bytes` in `messages` round trips, compressed both ways: a bound
 * on the peer's silence (see Conn.waitFor), ample for inflating and compressing a message.
 */
function timeoutFor(bytes: number, messages: number): number {
  return 10_000 + Math.ceil(bytes / MiB) * 4000 + messages * 10;
}

/** The default negotiation: the suite offers client_max_window_bits (no value) and nothing else. */
const DEFAULT: Negotiation = { response: '' };

/** 18 cases of Autobahn's rows, one payload kind, one negotiation. */
function rows(prefix: string, corpus: Corpus, deflate: Negotiation, what: string): Case[] {
  return ROWS.map(([size, fragment, count], i) => {
    const op = corpus.text ? OP.text : OP.binary;
    const messages = slices(corpus, size, count).map((data) => compressed(op, data, fragment > 0 ? { fragmentSize: fragment } : {}));
    return {
      id: `${prefix}${i + 1}`,
      title:
        `${count} compressed messages of ${sizeText(size)}${fragment > 0 ? ` in frames of ${sizeText(fragment)}` : ''}, ` +
        `${corpus.name}, ${what}, each sent once the previous echo is back`,
      ...roundTrips(messages, deflate.peer?.threshold),
      deflate,
      timeout: timeoutFor(size * count, count),
      full: !DEFAULT_ROWS[Number(prefix.split('.')[0])]!.has(i + 1)
    };
  });
}

// ---------------------------------------------------------------------------------------
// Section 12.

/** The end of a sync flush, which §7.2.1 strips. */
const SYNC_TAIL = hex('00 00 ff ff');
/** RFC 7692 §7.2.3.1: "Hello" in one compressed block. */
const HELLO = hex('f2 48 cd c9 c9 07 00');
/** RFC 7692 §7.2.3.2: a second "Hello", all of it a back-reference into the first. */
const HELLO_AGAIN = hex('f2 00 11 00 00');
const hello = Buffer.from('Hello');

/**
 * The payloads of a message of `n` MiB (and `extra` bytes) of zeros in pieces of about 1 KiB:
 * each a fresh deflate stream of 1 MiB of zeros ended by a whole sync flush, the last one
 * without its tail (§7.2.1). A piece only refers back to zeros, so they chain into one valid
 * stream.
 */
function zerosInPieces(n: number, extra = 0): Buffer[] {
  const piece = Buffer.concat([compressMessage(Buffer.alloc(MiB), 15), SYNC_TAIL]);
  const pieces = Array.from({ length: n }, () => piece);
  if (extra > 0) pieces.push(Buffer.concat([compressMessage(Buffer.alloc(extra), 15), SYNC_TAIL]));
  const last = pieces.length - 1;
  pieces[last] = pieces[last]!.subarray(0, pieces[last]!.length - SYNC_TAIL.length);
  return pieces;
}

function section12(): Case[] {
  const out: Case[] = [];
  allCorpora().forEach((corpus, k) => out.push(...rows(`12.${k + 1}.`, corpus, DEFAULT, 'default parameters')));

  const t64 = slices(allCorpora()[0]!, 64 * KiB, 1)[0]!;
  const b8 = slices(allCorpora()[1]!, 8 * KiB, 1)[0]!;
  const prose = slices(allCorpora()[2]!, 8 * KiB, 3);
  const bfinal = hex('f3 48 cd c9 c9 07 00 00'); // RFC 7692 §7.2.3.4
  const helloWorld = Buffer.from('HelloWorld');
  const world = compressMessage(Buffer.from('World'), 15);
  const t256 = slices(allCorpora()[0]!, 256 * KiB, 1)[0]!;
  const prose4m = slices(allCorpora()[2]!, 4 * MiB, 1)[0]!;
  const random4m = binaryPayload(4 * MiB, 1206);
  const limit = MAX_MESSAGE_SIZE / MiB;
  const atLimit = zerosInPieces(limit);
  const mixed = slices(allCorpora()[3]!, 3000, 100).map((d, i) =>
    compressed(i % 3 === 2 ? OP.binary : OP.text, i % 4 === 1 ? d.subarray(0, 100 + i) : d)
  );
  out.push(
    ...numbered('12.6.', [
      {
        title: 'RFC 7692 §7.2.3.1: "Hello" compressed in one block',
        steps: [{ sendCompressed: [compressed(OP.text, hello, { raw: [HELLO] })] }],
        expect: [echoed(OP.text, hello)]
      },
      {
        title: 'RFC 7692 §7.2.3.2: two "Hello" messages, the second a back-reference into the first (context takeover)',
        steps: [{ sendCompressed: [compressed(OP.text, hello, { raw: [HELLO] }), compressed(OP.text, hello, { raw: [HELLO_AGAIN] })] }],
        expect: [echoed(OP.text, hello), echoed(OP.text, hello)]
      },
      {
        title: 'RFC 7692 §7.2.3.3: "Hello" in a stored (uncompressed) block',
        steps: [{ sendCompressed: [compressed(OP.text, hello, { raw: [hex('00 05 00 fa ff 48 65 6c 6c 6f 00')] })] }],
        expect: [echoed(OP.text, hello)]
      },
      {
        title: 'RFC 7692 §7.2.3.4: "Hello" in a block with BFINAL set, then "Hello" in a new stream, then a back-reference into it',
        steps: [
          {
            sendCompressed: [
              compressed(OP.text, hello, { raw: [bfinal], endsStream: true }),
              compressed(OP.text, hello, { raw: [HELLO] }),
              compressed(OP.text, hello, { raw: [HELLO_AGAIN] })
            ]
          }
        ],
        expect: [echoed(OP.text, hello), echoed(OP.text, hello), echoed(OP.text, hello)]
      },
      {
        title: 'RFC 7692 §7.2.3.4: the BFINAL payload in two frames, its padding byte 00 alone in the second',
        steps: [{ sendCompressed: [compressed(OP.text, hello, { raw: [bfinal.subarray(0, 7), bfinal.subarray(7)], endsStream: true })] }],
        expect: [echoed(OP.text, hello)]
      },
      {
        title: 'RFC 7692 §7.2.1: "Hello" in a block with BFINAL set, then "World" in a new deflate stream, in one frame; then compressed prose',
        steps: [{ sendCompressed: [compressed(OP.text, helloWorld, { raw: [Buffer.concat([bfinal.subarray(0, 7), world])], endsStream: true }), compressed(OP.text, prose[0]!)] }],
        expect: [echoed(OP.text, helloWorld), echoed(OP.text, prose[0]!)]
      },
      {
        title: 'RFC 7692 §7.2.1: the same with "World" in the second frame',
        steps: [{ sendCompressed: [compressed(OP.text, helloWorld, { raw: [bfinal.subarray(0, 7), world], endsStream: true }), compressed(OP.text, prose[0]!)] }],
        expect: [echoed(OP.text, helloWorld), echoed(OP.text, prose[0]!)]
      },
      {
        title: 'RFC 7692 §7.2.3.5: "Hello" in two deflate blocks',
        steps: [{ sendCompressed: [compressed(OP.text, hello, { raw: [hex('f2 48 05 00 00 00 ff ff ca c9 c9 07 00')] })] }],
        expect: [echoed(OP.text, hello)]
      },
      {
        title: 'RFC 7692 §7.2.3.6: "Hello" sync-flushed with its tail kept, then a last frame of the single byte 00',
        steps: [{ sendCompressed: [compressed(OP.text, hello, { raw: [Buffer.concat([HELLO, SYNC_TAIL]), hex('00')] })] }],
        expect: [echoed(OP.text, hello)]
      },
      {
        title: 'empty text message compressed (payload 00)',
        steps: [{ sendCompressed: [compressed(OP.text, Buffer.alloc(0), { raw: [hex('00')] })] }],
        expect: [echoed(OP.text, Buffer.alloc(0))]
      },
      {
        title: 'compressed binary message of 8 KiB (bitmap) in frames of 1 byte',
        steps: [{ sendCompressed: [compressed(OP.binary, b8, { fragmentSize: 1 })] }],
        expect: [echoed(OP.binary, b8)],
        // Each 1-byte frame is a zlib job of its own, and the peer says nothing until the last:
        // on a loaded machine it was silent for over 5 s while it worked (CI, over HTTP/2).
        timeout: 30_000
      },
      {
        title: 'compressed text message whose first frame is empty (RSV1, no payload)',
        steps: [{ sendCompressed: [compressed(OP.text, t64, { raw: [Buffer.alloc(0), compressMessage(t64, 15)] })] }],
        expect: [echoed(OP.text, t64)]
      },
      {
        title: 'compressed text message of 64 KiB in frames of 2 KiB, a ping after the first and the fourth frame',
        steps: [{ sendCompressed: [compressed(OP.text, t64, { fragmentSize: 2 * KiB, pingsAfter: [0, 3] })] }],
        expect: [{ op: 'pong', data: pingAfterFrame(0) }, { op: 'pong', data: pingAfterFrame(3) }, echoed(OP.text, t64)]
      },
      {
        title: 'compressed, uncompressed, then compressed prose referring back to the first (the uncompressed one is not in the window)',
        steps: [{ sendCompressed: [compressed(OP.text, prose[0]!)] }, send([text(prose[1]!)]), { sendCompressed: [compressed(OP.text, prose[0]!)] }],
        expect: [echoed(OP.text, prose[0]!), echoed(OP.text, prose[1]!), echoed(OP.text, prose[0]!)]
      },
      {
        title: 'compressed text in 3 frames, uncompressed text in 3 frames, then compressed text in one frame',
        steps: [
          { sendCompressed: [compressed(OP.text, prose[0]!, { fragmentSize: 1000 })] },
          send(fragmentsOf(OP.text, prose[1]!, 3000, false)),
          { sendCompressed: [compressed(OP.text, prose[2]!)] }
        ],
        expect: [echoed(OP.text, prose[0]!), echoed(OP.text, prose[1]!), echoed(OP.text, prose[2]!)]
      },
      {
        title: '100 compressed text and binary messages of 100 B to 3000 B (HTML) in one TCP write: echoed in order',
        steps: [{ sendCompressed: mixed }],
        expect: mixed.map((m) => echoed(m.op, m.data))
      },
      {
        title: 'compressed text message of 256 KiB, then a Close, then a ping, in one write: the text is echoed, the ping is not answered',
        steps: [{ sendCompressed: [compressed(OP.text, t256)] }, send([close(1000), ping('too late')])],
        expect: [echoed(OP.text, t256)]
      },
      {
        title: `compressed binary message that inflates to exactly the peer's limit (${limit} MiB of zeros)`,
        steps: [send(atLimit.map((data, i) => ({ op: i === 0 ? OP.binary : OP.cont, data, rsv: i === 0 ? 4 : 0, fin: i === atLimit.length - 1 })))],
        expect: [{ op: 'binary', data: Buffer.alloc(MAX_MESSAGE_SIZE), compressed: true }],
        timeout: 30_000,
        full: true
      },
      {
        title: 'compressed text message of 4 MiB (prose) in one frame',
        steps: [{ sendCompressed: [compressed(OP.text, prose4m)] }],
        expect: [echoed(OP.text, prose4m)],
        timeout: 30_000,
        full: true
      },
      {
        title: 'compressed binary message of 4 MiB (random bytes) in frames of 64 KiB',
        steps: [{ sendCompressed: [compressed(OP.binary, random4m, { fragmentSize: 64 * KiB })] }],
        expect: [echoed(OP.binary, random4m)],
        timeout: 30_000,
        full: true
      }
    ])
  );

  // Our own: what a receiver must fail. A valid compressed message goes first where it helps
  // to see that the peer inflated before the violation.
  const bomb = Buffer.concat(zerosInPieces(3 * limit));
  const bombFrames = zerosInPieces(limit + 4);
  const overLimit = zerosInPieces(limit, 1);
  const badUtf8 = hex('cebae1bdb9cf83cebcceb5eda080656469746564');
  const lateBad = compressMessage(Buffer.concat([t64, badUtf8]), 15);
  const earlyBad = fragmentsOf(OP.text, compressMessage(Buffer.concat([badUtf8, t64]), 15), KiB, true);
  const split = HELLO.length - 3;
  out.push(
    ...numbered('12.7.', [
      {
        title: 'compressed "Hello", then a compressed message with RSV1 on its continuation frame too',
        steps: [send([text(HELLO, { rsv: 4 }), text(HELLO.subarray(0, split), { rsv: 4, fin: false }), cont(HELLO.subarray(split), { rsv: 4 })])],
        expect: [echoed(OP.text, hello)],
        end: FAIL_1002
      },
      {
        title: 'uncompressed first frame, RSV1 on the continuation frame only',
        steps: [send([text('Hel', { fin: false }), cont(HELLO, { rsv: 4 })])],
        expect: [],
        end: FAIL_1002
      },
      {
        title: 'compressed "Hello", then a compressed ping (RSV1, deflated payload)',
        steps: [send([text(HELLO, { rsv: 4 }), ping(HELLO, { rsv: 4 })])],
        expect: [echoed(OP.text, hello)],
        end: FAIL_1002
      },
      { title: 'pong with RSV1', steps: [send([pong(HELLO, { rsv: 4 })])], expect: [], end: FAIL_1002 },
      { title: 'Close 1000 with RSV1', steps: [send([close(1000, '', { rsv: 4 })])], expect: [], end: FAIL_1002 },
      { title: 'compressed text frame with RSV2 set as well', steps: [send([text(HELLO, { rsv: 6 })])], expect: [], end: FAIL_1002 },
      { title: 'uncompressed text frame with RSV3 set', steps: [send([text('Hello', { rsv: 1 })])], expect: [], end: FAIL_1002 },
      {
        title: 'invalid deflate data: a block of the reserved type 11',
        steps: [send([binary(hex('ff'), { rsv: 4 })])],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'invalid deflate data: a stored block whose LEN and NLEN do not match',
        steps: [send([text(hex('00 05 00 00 00 48 65 6c 6c 6f'), { rsv: 4 })])],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'invalid deflate data: a compressed text message of three frames with no payload at all (not even the 00 of §7.2.3.6)',
        steps: [send([text('', { rsv: 4, fin: false }), cont('', { fin: false }), cont('')])],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'invalid deflate data: the first message of the connection refers back before its start (RFC 7692 §7.2.3.2 bytes alone)',
        steps: [send([text(HELLO_AGAIN, { rsv: 4 })])],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'compressed text that inflates to invalid UTF-8',
        steps: [send([text(compressMessage(badUtf8, 15), { rsv: 4 })])],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'compressed text of 64 KiB in frames of 1 KiB, invalid UTF-8 at its very end',
        steps: [send(fragmentsOf(OP.text, lateBad, KiB, true))],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'fail-fast: compressed text in frames of 1 KiB whose first frame inflates to invalid UTF-8; pause before the rest',
        steps: [send(earlyBad.slice(0, 1)), checkpoint(), send(earlyBad.slice(1))],
        expect: [],
        end: FAIL_1007
      },
      {
        title: `compressed binary message that inflates to 1 byte more than the peer's limit (${limit} MiB of zeros and one more)`,
        steps: [send(overLimit.map((data, i) => ({ op: i === 0 ? OP.binary : OP.cont, data, rsv: i === 0 ? 4 : 0, fin: i === overLimit.length - 1 })))],
        expect: [],
        end: { fail: [1009] },
        timeout: 20_000
      },
      {
        title: 'compressed text message of 256 KiB and a frame with the reserved opcode 3, in one write: the text is echoed, then 1002',
        steps: [{ sendCompressed: [compressed(OP.text, t256)] }, send([{ op: 3, data: Buffer.from('reserved') }])],
        expect: [echoed(OP.text, t256)],
        end: FAIL_1002
      },
      {
        title: `decompression bomb: a ${Math.round(bomb.length / KiB)} KiB frame that inflates to ${3 * limit} MiB (the peer's limit is ${limit} MiB)`,
        steps: [send([binary(bomb, { rsv: 4 })])],
        expect: [],
        end: { fail: [1009] },
        timeout: 20_000
      },
      {
        title: `decompression bomb in ${limit + 4} frames that each inflate to 1 MiB (the peer's limit is ${limit} MiB)`,
        steps: [send(bombFrames.map((data, i) => ({ op: i === 0 ? OP.binary : OP.cont, data, rsv: i === 0 ? 4 : 0, fin: i === bombFrames.length - 1 })))],
        expect: [],
        end: { fail: [1009] },
        timeout: 20_000
      }
    ])
  );
  // wsframe told to compress every message (threshold 0): its compression of tiny and empty
  // messages, and the suite's inflation of them.
  const everything: Negotiation = { response: '', peer: { threshold: 0 } };
  const tiny = [0, 1, 2, 16, 125, 1023];
  out.push(
    ...numbered(
      '12.8.',
      tiny.flatMap((n) =>
        [OP.text, OP.binary].map((op) => {
          const kind = op === OP.text ? allCorpora()[3]! : allCorpora()[4]!;
          const messages = slices(kind, n, 20).map((data) => compressed(op, data));
          return {
            title: `20 compressed ${op === OP.text ? 'text' : 'binary'} messages of ${n} B; wsframe set to threshold 0, so every echo is compressed`,
            ...roundTrips(messages, 0),
            deflate: everything
          };
        })
      )
    )
  );

  for (const c of out) c.deflate ??= DEFAULT;
  return out;
}

/** Frames of `size` bytes of a compressed payload, RSV1 on the first. */
function fragmentsOf(op: number, payload: Buffer, size: number, compressedPayload: boolean): FrameSpec[] {
  const frames: FrameSpec[] = [];
  for (let i = 0; i < payload.length; i += size) {
    frames.push({ op: i === 0 ? op : OP.cont, data: payload.subarray(i, i + size), fin: i + size >= payload.length, rsv: i === 0 && compressedPayload ? 4 : 0 });
  }
  return frames;
}

// ---------------------------------------------------------------------------------------
// Section 13.

/**
 * The parameter sets, as Autobahn's 13.1-13.7 and more: the suite asks (as client it offers
 * them and wsframe's server accepts; as server it answers them to wsframe's default offer),
 * or wsframe is told to ask (13.11, 13.12: the suite offers or answers nothing more).
 */
export const PARAMETER_SETS: Array<{ title: string; n: Negotiation }> = [
  { title: 'server_no_context_takeover', n: { response: 'server_no_context_takeover' } },
  { title: 'client_no_context_takeover', n: { response: 'client_no_context_takeover' } },
  { title: 'server_ and client_no_context_takeover', n: { response: 'server_no_context_takeover; client_no_context_takeover' } },
  { title: 'server_max_window_bits=9', n: { response: 'server_max_window_bits=9' } },
  { title: 'server_max_window_bits=15', n: { response: 'server_max_window_bits=15' } },
  { title: 'client_max_window_bits=9', n: { offer: 'permessage-deflate; client_max_window_bits=9', response: 'client_max_window_bits=9' } },
  // wsframe's server leaves a client window of 15 out of its answer (15 is the default).
  { title: 'client_max_window_bits=15', n: { offer: 'permessage-deflate; client_max_window_bits=15', response: '', answer: 'client_max_window_bits=15' } },
  { title: 'server_no_context_takeover, server_max_window_bits=9', n: { response: 'server_no_context_takeover; server_max_window_bits=9' } },
  {
    title: 'both no_context_takeover, both max_window_bits=9',
    n: {
      offer: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9',
      response: 'server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9'
    }
  },
  // zlib cannot compress with a window of 8 bits: Node raises it to 9, whose longest distance
  // (250) still fits the 256-byte window. The suite inflates with 8.
  {
    title: 'server_ and client_max_window_bits=8 (the smallest)',
    n: { offer: 'permessage-deflate; server_max_window_bits=8; client_max_window_bits=8', response: 'server_max_window_bits=8; client_max_window_bits=8' }
  },
  {
    title: 'three offers (no_context_takeover and 9 bits; no_context_takeover; none), the first accepted',
    n: {
      offer:
        'permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits, ' +
        'permessage-deflate; server_no_context_takeover; client_max_window_bits, permessage-deflate; client_max_window_bits',
      response: 'server_no_context_takeover; server_max_window_bits=9'
    }
  },
  {
    title: 'wsframe set to server_no_context_takeover and server_max_window_bits=9',
    n: {
      offer: 'permessage-deflate; client_max_window_bits',
      response: 'server_no_context_takeover; server_max_window_bits=9',
      peer: { serverNoContextTakeover: true, serverMaxWindowBits: 9 }
    }
  },
  {
    title: 'wsframe set to client_no_context_takeover and client_max_window_bits=9',
    n: {
      offer: 'permessage-deflate; client_max_window_bits',
      response: 'client_no_context_takeover; client_max_window_bits=9',
      peer: { clientNoContextTakeover: true, clientMaxWindowBits: 9 }
    }
  }
];

function section13(): Case[] {
  const json = allCorpora()[0]!;
  return PARAMETER_SETS.flatMap(({ title, n }, k) => rows(`13.${k + 1}.`, json, n, title));
}

export function deflateCases(): Case[] {
  return [...section12(), ...section13()];
}
