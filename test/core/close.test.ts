import test from 'ava';
import { CloseCode, decodeClosePayload, encodeClosePayload, InvalidUtf8Error, isValidCloseCode, ProtocolError } from '../../src';
import { throwsProtocol } from '../helpers/assert-protocol';
import { hex } from '../helpers/bytes';

const VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
const INVALID = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 0xffff];

test('encodeClosePayload writes the code in network byte order, then the UTF-8 reason', (t) => {
  t.deepEqual(encodeClosePayload(1000, 'bye'), hex('03e8 627965'));
  t.deepEqual(encodeClosePayload(4999), hex('1387'));
  t.deepEqual(encodeClosePayload(3000, 'é'), hex('0bb8 c3a9'));
});

test('close payload round trip', (t) => {
  const reasons = ['', 'bye', 'é€😀', 'x'.repeat(123), '€'.repeat(41), 'ab' + '😀'.repeat(30) + 'c'];
  for (const code of VALID) {
    for (const reason of reasons) {
      const payload = encodeClosePayload(code, reason);
      t.is(payload.length, 2 + Buffer.byteLength(reason));
      t.true(payload.length <= 125);
      t.deepEqual(decodeClosePayload(payload), { code, reason });
    }
  }
});

test('decodeClosePayload reads a payload that is a view at any byteOffset', (t) => {
  const payload = encodeClosePayload(1001, 'going away – é');
  for (let off = 0; off < 5; off++) {
    const backing = Buffer.alloc(payload.length + off + 3, 0xff);
    payload.copy(backing, off);
    t.deepEqual(decodeClosePayload(backing.subarray(off, off + payload.length)), { code: 1001, reason: 'going away – é' });
    const u8 = new Uint8Array(backing.buffer, backing.byteOffset + off, payload.length);
    t.deepEqual(decodeClosePayload(u8), { code: 1001, reason: 'going away – é' });
  }
});

test('an empty close payload means 1005 (no status), with no reason', (t) => {
  t.deepEqual(decodeClosePayload(Buffer.alloc(0)), { code: CloseCode.NoStatus, reason: '' });
  t.is(CloseCode.NoStatus, 1005);
  t.deepEqual(encodeClosePayload(), Buffer.alloc(0));
  t.deepEqual(encodeClosePayload(undefined, ''), Buffer.alloc(0));
  t.deepEqual(encodeClosePayload(1005), Buffer.alloc(0), '1005 means "no code": an empty payload');
});

test('a 1-byte close payload → WS_ERR_INVALID_CLOSE_PAYLOAD 1002', (t) => {
  for (const b of ['03', '00', 'e8']) {
    throwsProtocol(t, () => decodeClosePayload(hex(b)), ProtocolError, 'WS_ERR_INVALID_CLOSE_PAYLOAD', 1002);
  }
});

for (const code of INVALID) {
  test(`close code ${code} is refused on receipt (WS_ERR_INVALID_CLOSE_CODE 1002) and on send (RangeError)`, (t) => {
    t.false(isValidCloseCode(code));
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code);
    throwsProtocol(t, () => decodeClosePayload(payload), ProtocolError, 'WS_ERR_INVALID_CLOSE_CODE', 1002);
    throwsProtocol(t, () => decodeClosePayload(Buffer.concat([payload, Buffer.from('reason')])), ProtocolError, 'WS_ERR_INVALID_CLOSE_CODE', 1002);
    if (code !== 1005) {
      t.throws(() => encodeClosePayload(code), { instanceOf: RangeError });
      t.throws(() => encodeClosePayload(code, 'reason'), { instanceOf: RangeError });
    }
  });
}

test('valid close codes are accepted both ways', (t) => {
  for (const code of VALID) {
    t.true(isValidCloseCode(code), `${code}`);
    t.deepEqual(decodeClosePayload(Buffer.of(code >> 8, code & 0xff)), { code, reason: '' });
    t.notThrows(() => encodeClosePayload(code, 'ok'));
  }
  // The ranges, at their edges.
  const ok = (c: number) => isValidCloseCode(c);
  t.deepEqual([999, 1000, 1003, 1004, 1006, 1007, 1014, 1015, 2999, 3000, 4999, 5000].map(ok), [
    false, true, true, false, false, true, true, false, false, true, true, false
  ]);
});

test('an invalid UTF-8 close reason → InvalidUtf8Error 1007', (t) => {
  for (const reason of ['ff', 'c3', 'e2 82', 'ed a0 80', 'c0 af', 'f4 90 80 80', '61'.repeat(40) + 'ff', '61'.repeat(40) + 'e2 82']) {
    throwsProtocol(t, () => decodeClosePayload(hex(`03e8 ${reason}`)), InvalidUtf8Error, 'WS_ERR_INVALID_UTF8', 1007);
  }
});

test('encodeClosePayload: RangeError for a code that may not be sent or is not an integer', (t) => {
  for (const code of [1004, 1006, 1015, 999, 5000, 1000.5, NaN, -1000, Infinity]) {
    t.throws(() => encodeClosePayload(code), { instanceOf: RangeError }, `${code}`);
  }
});

test('encodeClosePayload: a reason over 123 bytes → RangeError; exactly 123 is fine', (t) => {
  t.is(encodeClosePayload(1000, 'x'.repeat(123)).length, 125);
  t.throws(() => encodeClosePayload(1000, 'x'.repeat(124)), { instanceOf: RangeError });
  // The limit is in bytes, not characters: 41 × "€" is 123 bytes, 42 is 126.
  t.is(encodeClosePayload(1000, '€'.repeat(41)).length, 125);
  t.throws(() => encodeClosePayload(1000, '€'.repeat(42)), { instanceOf: RangeError });
  t.throws(() => encodeClosePayload(1000, 'x'.repeat(122) + 'é'), { instanceOf: RangeError });
});

test('encodeClosePayload: a reason without a code → TypeError', (t) => {
  t.throws(() => encodeClosePayload(undefined, 'bye'), { instanceOf: TypeError });
  t.throws(() => encodeClosePayload(1005, 'bye'), { instanceOf: TypeError });
});
