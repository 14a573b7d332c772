import test from 'ava';
import { ConcurrencyError, HandshakeError, InvalidUtf8Error, IOError, PayloadTooBigError, ProtocolError, WebSocketError } from '../../src';

test('the error tree: every class derives from WebSocketError and is named after itself', (t) => {
  const errors = [
    new ProtocolError('WS_ERR_INVALID_OPCODE', 'reserved opcode 0x3'),
    new InvalidUtf8Error(),
    new PayloadTooBigError('WS_ERR_FRAME_TOO_BIG', 10, 5),
    new IOError('eof', 'socket closed after 1 of 2 bytes'),
    new HandshakeError('bad accept', 400),
    new ConcurrencyError('two reads')
  ];
  for (const e of errors) {
    t.true(e instanceof Error);
    t.true(e instanceof WebSocketError);
    t.is(e.name, e.constructor.name);
  }
  t.true(errors[1] instanceof ProtocolError);
  t.true(errors[2] instanceof ProtocolError);
  t.false(errors[3] instanceof ProtocolError);
});

test('ProtocolError: code, closeCode (1002 by default) and the "Invalid WebSocket frame:" message', (t) => {
  const e = new ProtocolError('WS_ERR_UNEXPECTED_RSV', 'reserved bits must be clear');
  t.is(e.code, 'WS_ERR_UNEXPECTED_RSV');
  t.is(e.closeCode, 1002);
  t.is(e.message, 'Invalid WebSocket frame: reserved bits must be clear');
  t.is(new ProtocolError('WS_ERR_TOO_MANY_FRAGMENTS', 'x', 1008).closeCode, 1008);
});

test('InvalidUtf8Error is 1007 and PayloadTooBigError is 1009 with size and limit', (t) => {
  const u = new InvalidUtf8Error('invalid UTF-8 in close reason');
  t.like(u, { code: 'WS_ERR_INVALID_UTF8', closeCode: 1007, message: 'Invalid WebSocket frame: invalid UTF-8 in close reason' });
  const p = new PayloadTooBigError('WS_ERR_MESSAGE_TOO_BIG', 101, 100);
  t.like(p, { code: 'WS_ERR_MESSAGE_TOO_BIG', closeCode: 1009, size: 101, limit: 100 });
  t.regex(p.message, /message of 101 bytes exceeds the limit of 100 bytes/);
  t.regex(new PayloadTooBigError('WS_ERR_FRAME_TOO_BIG', 7, 6).message, /^Invalid WebSocket frame: frame of 7 bytes/);
});

test('IOError and HandshakeError carry their fields and cause', (t) => {
  const cause = new Error('ECONNRESET');
  const io = new IOError('reset', 'connection reset', { bytesRead: 3, expected: 8, cause });
  t.like(io, { reason: 'reset', bytesRead: 3, expected: 8 });
  t.is(io.cause, cause);
  t.like(new IOError('closed', 'closed'), { bytesRead: 0, expected: 0 });
  const h = new HandshakeError('unexpected status', 403, { server: 'x' });
  t.is(h.status, 403);
  t.deepEqual(h.headers, { server: 'x' });
  t.is(new HandshakeError('no response').status, undefined);
});
