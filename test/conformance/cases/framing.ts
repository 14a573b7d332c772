/**
 * Sections 1-5: framing, pings and pongs, reserved bits, reserved opcodes, fragmentation.
 * Written from RFC 6455 §5; the numbering follows the public Autobahn|Testsuite case list.
 */
import { Case, OP } from '../types';
import { binaryPayload, textPayload } from '../wire';
import {
  FAIL_1002,
  binary,
  checkpoint,
  close,
  cont,
  eBinary,
  ePong,
  eText,
  frame,
  numbered,
  pause,
  ping,
  pong,
  send,
  text
} from './build';

const SIZES = [0, 125, 126, 127, 128, 65535, 65536];

function section1(): Case[] {
  const out: Case[] = [];
  for (const [sub, kind] of [
    [1, 'text'],
    [2, 'binary']
  ] as const) {
    const make = (n: number): Buffer => (kind === 'text' ? textPayload(n) : binaryPayload(n, n));
    const mk = kind === 'text' ? text : binary;
    const ex = kind === 'text' ? eText : eBinary;
    SIZES.forEach((n, i) => {
      const p = make(n);
      out.push({ id: `1.${sub}.${i + 1}`, title: `${kind} message of ${n} bytes in one frame`, steps: [send([mk(p)])], expect: [ex(p)] });
    });
    const p = make(65536);
    out.push({ id: `1.${sub}.8`, title: `${kind} message of 65536 bytes, written in 997-byte TCP chunks`, steps: [send([mk(p)], 997)], expect: [ex(p)] });
  }
  // Our own additions: header rules that must hold before any payload is read.
  out.push(
    {
      id: '1.3.1',
      title: 'text frame with the masking the other role uses (masked to a client, unmasked to a server)',
      steps: [send([text('wrong mask', { flipMask: true })])],
      expect: [],
      end: FAIL_1002
    },
    {
      id: '1.3.2',
      title: 'binary frame header with a 64-bit length whose top bit is set, no payload',
      steps: [send([{ op: OP.binary, claimLength: 1n << 63n }])],
      expect: [],
      end: FAIL_1002
    },
    {
      id: '1.3.3',
      title: 'binary frame header announcing a 1 TiB payload (beyond every limit), no payload',
      steps: [send([{ op: OP.binary, claimLength: 1n << 40n }])],
      expect: [],
      end: { fail: [1009] }
    },
    {
      id: '1.3.4',
      title: 'text frame of 126 bytes followed at once by a binary frame of 65536 bytes, one write',
      steps: [send([text(textPayload(126)), binary(binaryPayload(65536, 7))])],
      expect: [eText(textPayload(126)), eBinary(binaryPayload(65536, 7))]
    },
    {
      id: '1.3.5',
      title: 'text message of 300 bytes written one byte at a time',
      steps: [send([text(textPayload(300))], 1)],
      expect: [eText(textPayload(300))]
    }
  );
  return out;
}

function section2(): Case[] {
  const bin = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);
  const b125 = Buffer.alloc(125, 0xfe);
  const b126 = Buffer.alloc(126, 0xfe);
  const ten = Array.from({ length: 10 }, (_, i) => `ping #${i + 1}`);
  return numbered('2.', [
    { title: 'ping with an empty payload', steps: [send([ping()])], expect: [ePong()] },
    { title: 'ping with a short text payload', steps: [send([ping('Hello, pong me back')])], expect: [ePong('Hello, pong me back')] },
    { title: 'ping with a short binary payload (not UTF-8)', steps: [send([ping(bin)])], expect: [ePong(bin)] },
    { title: 'ping with a 125-byte binary payload (the maximum)', steps: [send([ping(b125)])], expect: [ePong(b125)] },
    { title: 'ping with a 126-byte payload (control frames are limited to 125)', steps: [send([ping(b126)])], expect: [], end: FAIL_1002 },
    { title: 'ping with a 125-byte payload, written one byte at a time', steps: [send([ping(b125)], 1)], expect: [ePong(b125)] },
    { title: 'unsolicited pong with an empty payload (ignored)', steps: [send([pong()])], expect: [] },
    { title: 'unsolicited pong with a payload (ignored)', steps: [send([pong('nobody asked')])], expect: [] },
    {
      title: 'unsolicited pong, then a ping: only the ping is answered',
      steps: [send([pong('nobody asked'), ping('answer this')])],
      expect: [ePong('answer this')]
    },
    { title: 'ten pings with distinct payloads in one write', steps: [send(ten.map((p) => ping(p)))], expect: ten.map((p) => ePong(p)) },
    { title: 'ten pings with distinct payloads, written one byte at a time', steps: [send(ten.map((p) => ping(p)), 1)], expect: ten.map((p) => ePong(p)) }
  ]);
}

function section3(): Case[] {
  const hello = 'Hello, world!';
  return numbered('3.', [
    { title: 'small text message with RSV = 1', steps: [send([text(hello, { rsv: 1 })])], expect: [], end: FAIL_1002 },
    {
      title: 'small text, then text with RSV = 2, then a ping',
      steps: [send([text(hello), text(hello, { rsv: 2 }), ping()])],
      expect: [eText(hello)],
      end: FAIL_1002
    },
    {
      title: 'small text, then text with RSV = 3, then a ping, one write per frame',
      steps: [send([text(hello), text(hello, { rsv: 3 }), ping()], 'frame')],
      expect: [eText(hello)],
      end: FAIL_1002
    },
    {
      title: 'small text, then text with RSV = 4, then a ping, written one byte at a time',
      steps: [send([text(hello), text(hello, { rsv: 4 }), ping()], 1)],
      expect: [eText(hello)],
      end: FAIL_1002
    },
    { title: 'small binary message with RSV = 5', steps: [send([binary(Buffer.from([0, 1, 2, 0xff]), { rsv: 5 })])], expect: [], end: FAIL_1002 },
    { title: 'ping with RSV = 6', steps: [send([ping('rsv', { rsv: 6 })])], expect: [], end: FAIL_1002 },
    { title: 'close with RSV = 7', steps: [send([close(1000, '', { rsv: 7 })])], expect: [], end: FAIL_1002 }
  ]);
}

function section4(): Case[] {
  const out: Case[] = [];
  const hello = 'Hello, world!';
  for (const [sub, first, kind] of [
    [1, 3, 'non-control'],
    [2, 11, 'control']
  ] as const) {
    const ops = [first, first + 1, first + 2, first + 3, first + 4];
    out.push(
      { id: `4.${sub}.1`, title: `frame with reserved ${kind} opcode ${ops[0]}, empty`, steps: [send([frame(ops[0]!)])], expect: [], end: FAIL_1002 },
      {
        id: `4.${sub}.2`,
        title: `frame with reserved ${kind} opcode ${ops[1]} and a payload`,
        steps: [send([frame(ops[1]!, 'reserved')])],
        expect: [],
        end: FAIL_1002
      },
      {
        id: `4.${sub}.3`,
        title: `small text, then reserved ${kind} opcode ${ops[2]} (empty), then a ping`,
        steps: [send([text(hello), frame(ops[2]!), ping()])],
        expect: [eText(hello)],
        end: FAIL_1002
      },
      {
        id: `4.${sub}.4`,
        title: `small text, then reserved ${kind} opcode ${ops[3]} with a payload, then a ping, one write per frame`,
        steps: [send([text(hello), frame(ops[3]!, 'reserved'), ping()], 'frame')],
        expect: [eText(hello)],
        end: FAIL_1002
      },
      {
        id: `4.${sub}.5`,
        title: `small text, then reserved ${kind} opcode ${ops[4]} with a payload, then a ping, one byte at a time`,
        steps: [send([text(hello), frame(ops[4]!, 'reserved'), ping()], 1)],
        expect: [eText(hello)],
        end: FAIL_1002
      }
    );
  }
  return out;
}

function section5(): Case[] {
  const two = [text('fragment1', { fin: false }), cont('fragment2')];
  const twoPing = [text('fragment1', { fin: false }), ping('ping payload'), cont('fragment2')];
  const orphanFinal = [cont('non-continuation payload'), text('Hello, world!')];
  const orphanOpen = [cont('non-continuation payload', { fin: false }), text('Hello, world!')];
  const fiveWithPings = [
    send([text('f1', { fin: false }), cont('f2', { fin: false })]),
    send([ping('pong-1')]),
    send([cont('f3', { fin: false }), cont('f4', { fin: false })]),
    send([ping('pong-2')]),
    send([cont('f5')])
  ];
  return numbered('5.', [
    { title: 'ping split into two fragments', steps: [send([ping('fragment1', { fin: false }), cont('fragment2')])], expect: [], end: FAIL_1002 },
    { title: 'pong split into two fragments', steps: [send([pong('fragment1', { fin: false }), cont('fragment2')])], expect: [], end: FAIL_1002 },
    { title: 'text message in two fragments, one write', steps: [send(two)], expect: [eText('fragment1fragment2')] },
    { title: 'text message in two fragments, one write per frame', steps: [send(two, 'frame')], expect: [eText('fragment1fragment2')] },
    { title: 'text message in two fragments, one byte at a time', steps: [send(two, 1)], expect: [eText('fragment1fragment2')] },
    {
      title: 'text message in two fragments with a ping between them, one write',
      steps: [send(twoPing)],
      expect: [ePong('ping payload'), eText('fragment1fragment2')]
    },
    {
      title: 'text message in two fragments with a ping between them, one write per frame',
      steps: [send(twoPing, 'frame')],
      expect: [ePong('ping payload'), eText('fragment1fragment2')]
    },
    {
      title: 'text message in two fragments with a ping between them, one byte at a time',
      steps: [send(twoPing, 1)],
      expect: [ePong('ping payload'), eText('fragment1fragment2')]
    },
    { title: 'final continuation with nothing to continue, then a text message, one write', steps: [send(orphanFinal)], expect: [], end: FAIL_1002 },
    { title: 'final continuation with nothing to continue, then text, one write per frame', steps: [send(orphanFinal, 'frame')], expect: [], end: FAIL_1002 },
    { title: 'final continuation with nothing to continue, then text, one byte at a time', steps: [send(orphanFinal, 1)], expect: [], end: FAIL_1002 },
    { title: 'non-final continuation with nothing to continue, then text, one write', steps: [send(orphanOpen)], expect: [], end: FAIL_1002 },
    { title: 'non-final continuation with nothing to continue, then text, one write per frame', steps: [send(orphanOpen, 'frame')], expect: [], end: FAIL_1002 },
    { title: 'non-final continuation with nothing to continue, then text, one byte at a time', steps: [send(orphanOpen, 1)], expect: [], end: FAIL_1002 },
    {
      title: 'two-fragment text, then an orphan non-final continuation, then a text message',
      steps: [send([...two, cont('orphan', { fin: false }), text('never echoed')])],
      expect: [eText('fragment1fragment2')],
      end: FAIL_1002
    },
    {
      title: 'twice: orphan non-final continuation, text start, final continuation',
      steps: [send([cont('a', { fin: false }), text('b', { fin: false }), cont('c'), cont('a', { fin: false }), text('b', { fin: false }), cont('c')])],
      expect: [],
      end: FAIL_1002
    },
    {
      title: 'twice: orphan final continuation, text start, final continuation',
      steps: [send([cont('a'), text('b', { fin: false }), cont('c'), cont('a'), text('b', { fin: false }), cont('c')])],
      expect: [],
      end: FAIL_1002
    },
    {
      title: 'text message in two fragments where both frames carry the text opcode',
      steps: [send([text('fragment1', { fin: false }), text('fragment2')])],
      expect: [],
      end: FAIL_1002
    },
    {
      title: 'text in five fragments with two pings between them and pauses between writes',
      steps: [fiveWithPings[0]!, pause(50), fiveWithPings[1]!, pause(50), fiveWithPings[2]!, pause(50), fiveWithPings[3]!, pause(50), fiveWithPings[4]!],
      expect: [ePong('pong-1'), ePong('pong-2'), eText('f1f2f3f4f5')]
    },
    {
      title: 'as 5.19, every write sent one byte at a time',
      steps: fiveWithPings.flatMap((s, i) => {
        const chopped = { ...s, chop: 1 as const };
        return i < 4 ? [chopped, pause(50)] : [chopped];
      }),
      expect: [ePong('pong-1'), ePong('pong-2'), eText('f1f2f3f4f5')]
    },
    // Our own additions.
    {
      title: 'binary message in three fragments, the middle one empty',
      steps: [send([binary(Buffer.from([1, 2]), { fin: false }), cont(Buffer.alloc(0), { fin: false }), cont(Buffer.from([3]))])],
      expect: [eBinary(Buffer.from([1, 2, 3]))]
    },
    {
      title: 'close between two fragments: the partial message is dropped, clean close',
      steps: [send([text('fragment1', { fin: false }), close(1000)])],
      expect: []
    },
    {
      title: 'a binary message started inside a fragmented text message',
      steps: [send([text('fragment1', { fin: false }), binary('intruder'), cont('fragment2')])],
      expect: [],
      end: FAIL_1002
    },
    {
      title: 'text message in two fragments, then a ping, pong and binary message, one write',
      steps: [send([...two, pong('unsolicited'), ping('p'), binary(Buffer.from([0xff]))])],
      expect: [eText('fragment1fragment2'), ePong('p'), eBinary(Buffer.from([0xff]))]
    },
    {
      title: 'fail-fast: orphan continuation after a pause, before the rest is sent',
      steps: [send([text('ok')]), send([cont('orphan')]), checkpoint(), send([text('never echoed')])],
      expect: [eText('ok')],
      end: FAIL_1002
    }
  ]);
}

export function framingCases(): Case[] {
  return [...section1(), ...section2(), ...section3(), ...section4(), ...section5()];
}
