import test from 'ava';
import { createHash } from 'node:crypto';
import { CloseCode, GUID, MAX_CONTROL_PAYLOAD, MAX_HEADER_SIZE, Opcode } from '../../src';
import { MAX_CLOSE_REASON, isControlOpcode, isKnownOpcode } from '../../src/core/constants';

test('Opcode has Nim\'s members with the RFC 6455 §5.2 values', (t) => {
  t.deepEqual({ ...Opcode }, { Cont: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 });
});

test('isKnownOpcode and isControlOpcode over all 16 opcodes', (t) => {
  const known = [];
  const control = [];
  for (let op = 0; op < 16; op++) {
    if (isKnownOpcode(op)) known.push(op);
    if (isControlOpcode(op)) control.push(op);
  }
  t.deepEqual(known, [0, 1, 2, 8, 9, 10]);
  t.deepEqual(control, [8, 9, 10, 11, 12, 13, 14, 15]);
});

test('limits and the reserved close codes', (t) => {
  t.is(MAX_CONTROL_PAYLOAD, 125);
  t.is(MAX_CLOSE_REASON, 123);
  t.is(MAX_HEADER_SIZE, 14);
  t.deepEqual([CloseCode.NoStatus, CloseCode.Abnormal, CloseCode.TlsHandshake], [1005, 1006, 1015]);
});

test('GUID gives the RFC 6455 §1.3 example accept value', (t) => {
  const accept = createHash('sha1').update('dGhlIHNhbXBsZSBub25jZQ==' + GUID).digest('base64');
  t.is(accept, 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});
