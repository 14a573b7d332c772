/**
 * Section 7: the close handshake (RFC 6455 §5.5.1, §7): what may follow a Close, close
 * payload lengths, reasons, and which status codes may appear on the wire (§7.4).
 */
import { Case } from '../types';
import { textPayload } from '../wire';
import { FAIL_1002, FAIL_1007, buf, close, cont, eText, hex, numbered, ping, send, text } from './build';

export function closeCases(): Case[] {
  const big = textPayload(256 * 1024);
  const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];
  // 1012-1014 were registered with IANA after RFC 6455, so they are left out either way.
  const invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
  const reason123 = 'r'.repeat(123);
  const reasonMultibyte = '€'.repeat(41); // 123 bytes of 3-byte characters
  return [
    ...numbered('7.1.', [
      { title: 'text message, then a Close 1000', steps: [send([text('Hello World!'), close(1000)])], expect: [eText('Hello World!')] },
      { title: 'two Close frames: the second is ignored', steps: [send([close(1000), close(1000)])], expect: [] },
      { title: 'Close, then a ping: no pong after the Close', steps: [send([close(1000), ping('too late')])], expect: [] },
      { title: 'Close, then a text message: no echo after the Close', steps: [send([close(1000), text('too late')])], expect: [] },
      {
        title: 'first fragment of a text, a Close, then the last fragment: nothing echoed',
        steps: [send([text('fragment1', { fin: false }), close(1000), cont('fragment2')])],
        expect: []
      },
      {
        title: '256 KiB text message, then a Close, then a ping: the text is echoed, the ping is not answered',
        steps: [send([text(big), close(1000), ping('too late')])],
        expect: [eText(big)]
      }
    ]),
    ...numbered('7.3.', [
      { title: 'Close with an empty payload', steps: [send([close()])], expect: [], end: { clean: [null, 1000] } },
      { title: 'Close with a 1-byte payload', steps: [send([{ op: 8, data: hex('03') }])], expect: [], end: FAIL_1002 },
      { title: 'Close 1000 without a reason', steps: [send([close(1000)])], expect: [] },
      { title: 'Close 1000 with a short reason', steps: [send([close(1000, 'Hello World!')])], expect: [] },
      { title: 'Close 1000 with a 123-byte reason (the most that fits)', steps: [send([close(1000, reason123)])], expect: [] },
      { title: 'Close 1000 with a 124-byte reason (a 126-byte control frame)', steps: [send([close(1000, 'r'.repeat(124))])], expect: [], end: FAIL_1002 }
    ]),
    ...numbered('7.5.', [
      {
        title: 'Close 1000 with a reason that is not valid UTF-8',
        steps: [send([close(1000, buf(hex('cebae1bdb9cf83cebcceb5eda080656469746564')))])],
        expect: [],
        end: FAIL_1007
      }
    ]),
    ...numbered(
      '7.7.',
      valid.map((code) => ({ title: `Close with the valid code ${code}`, steps: [send([close(code)])], expect: [], end: { clean: [code, 1000] } }))
    ),
    ...numbered(
      '7.9.',
      invalid.map((code) => ({ title: `Close with code ${code}, which may not be sent`, steps: [send([close(code)])], expect: [], end: FAIL_1002 }))
    ),
    // Our own additions.
    ...numbered('7.11.', [
      { title: 'Close 1000 with a 123-byte reason of 3-byte characters', steps: [send([close(1000, reasonMultibyte)])], expect: [] },
      { title: 'Close 1001 with a reason, written one byte at a time', steps: [send([close(1001, 'going away')], 1)], expect: [], end: { clean: [1001, 1000] } },
      {
        title: 'Close whose reason ends in a cut 3-byte character',
        steps: [send([close(1000, Buffer.concat([buf('bye '), hex('e282')]))])],
        expect: [],
        end: FAIL_1007
      },
      {
        title: 'ping with a payload, then a Close in the same write: pong, then the close handshake',
        steps: [send([ping('last'), close(1000)])],
        expect: [{ op: 'pong', data: buf('last') }]
      }
    ] as Array<Omit<Case, 'id'>>)
  ];
}
