/** Pure: checkServerResponse refuses every wrong field of the 101 response (RFC 6455 §4.1). */
import test, { ExecutionContext } from 'ava';
import { checkServerResponse, HandshakeError, Headers } from '../../src';
import { ACCEPT, KEY } from './support';

const good = (): Headers => ({ upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': ACCEPT });

function fails(t: ExecutionContext, status: number, headers: Headers, offered: string[], pattern: RegExp, offeredExtensions = false): void {
  const err = t.throws(() => checkServerResponse(status, headers, KEY, offered, offeredExtensions), { instanceOf: HandshakeError });
  if (!err) return;
  t.is(err.status, status);
  t.is(err.headers, headers, 'the headers received');
  t.regex(err.message, pattern);
}

test('a right response passes; the protocol is "" when none was chosen', (t) => {
  t.is(checkServerResponse(101, good(), KEY, []), '');
  t.is(checkServerResponse(101, good(), KEY, ['a']), '');
  t.is(checkServerResponse(101, { ...good(), 'sec-websocket-protocol': 'b' }, KEY, ['a', 'b']), 'b');
  t.is(checkServerResponse(101, { ...good(), upgrade: 'WebSocket', connection: 'keep-alive, UPGRADE' }, KEY, []), '');
  t.is(checkServerResponse(101, { ...good(), 'sec-websocket-extensions': '' }, KEY, []), '', 'an empty extension header');
  t.is(checkServerResponse(101, { ...good(), 'sec-websocket-extensions': 'x' }, KEY, [], true), '', 'offered');
});

test('a status other than 101', (t) => {
  for (const s of [200, 204, 301, 400, 404, 426, 500]) fails(t, s, good(), [], /status 101/);
});

test('a missing or wrong Upgrade', (t) => {
  const { upgrade: _u, ...h } = good();
  fails(t, 101, h, [], /Upgrade/);
  fails(t, 101, { ...good(), upgrade: 'h2c' }, [], /Upgrade/);
});

test('a missing or wrong Connection', (t) => {
  const { connection: _c, ...h } = good();
  fails(t, 101, h, [], /Connection/);
  fails(t, 101, { ...good(), connection: 'keep-alive' }, [], /Connection/);
});

test('a missing or wrong Sec-WebSocket-Accept', (t) => {
  const { 'sec-websocket-accept': _a, ...h } = good();
  fails(t, 101, h, [], /Accept/);
  fails(t, 101, { ...good(), 'sec-websocket-accept': 'x' + ACCEPT.slice(1) }, [], /Accept/);
  fails(t, 101, { ...good(), 'sec-websocket-accept': KEY }, [], /Accept/, false);
  fails(t, 101, { ...good(), 'sec-websocket-accept': ACCEPT.toLowerCase() }, [], /Accept/);
});

test('a protocol that was not offered, or chosen when none was', (t) => {
  fails(t, 101, { ...good(), 'sec-websocket-protocol': 'c' }, ['a', 'b'], /not offered/);
  fails(t, 101, { ...good(), 'sec-websocket-protocol': 'A' }, ['a'], /not offered/, false);
  fails(t, 101, { ...good(), 'sec-websocket-protocol': 'a, b' }, ['a', 'b'], /not offered/);
  fails(t, 101, { ...good(), 'sec-websocket-protocol': 'a' }, [], /none was offered/);
});

test('an extension that was not offered', (t) => {
  fails(t, 101, { ...good(), 'sec-websocket-extensions': 'permessage-deflate' }, [], /extensions/);
});
