/** Pure: the raw responses a server writes (101 and refusals), and header-injection refusal. */
import test from 'ava';
import { buildRejectResponse, buildServerResponse } from '../../src';
import { ACCEPT, KEY, parseResponse } from './support';

test('buildServerResponse: the 101 of RFC 6455 §1.3, byte for byte', (t) => {
  t.is(
    buildServerResponse(KEY, undefined),
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`
  );
});

test('buildServerResponse: the chosen protocol and extra headers (repeated ones too)', (t) => {
  const r = buildServerResponse(KEY, 'chat', { 'Set-Cookie': ['a=1', 'b=2'], 'X-N': 7 } as Record<string, string | number | string[]>);
  t.is(
    r,
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n` +
      'Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-N: 7\r\n\r\n'
  );
  t.false(buildServerResponse(KEY, '').includes('Sec-WebSocket-Protocol'), 'no protocol header for ""');
});

test('buildRejectResponse: status line, Connection: close, Content-Length of the UTF-8 body', (t) => {
  const r = buildRejectResponse(401, { 'WWW-Authenticate': 'Bearer realm="x"' }, 'nope – ✗');
  const parsed = parseResponse(Buffer.from(r));
  t.is(parsed.statusLine, 'HTTP/1.1 401 Unauthorized');
  t.is(parsed.headers['connection'], 'close');
  t.is(parsed.headers['www-authenticate'], 'Bearer realm="x"');
  t.is(parsed.headers['content-type'], 'text/plain; charset=utf-8');
  t.is(parsed.headers['content-length'], String(Buffer.byteLength('nope – ✗')));
  t.is(parsed.rest.toString(), 'nope – ✗');
  t.is(buildRejectResponse(404), 'HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\n\r\n');
  t.true(buildRejectResponse(418).startsWith('HTTP/1.1 418 Error\r\n'), 'unknown reason phrase');
  t.true(buildRejectResponse(426, { 'Sec-WebSocket-Version': '13' }).includes('\r\nSec-WebSocket-Version: 13\r\n'));
});

test('buildRejectResponse: caller headers override the defaults', (t) => {
  const parsed = parseResponse(Buffer.from(buildRejectResponse(400, { 'Content-Type': 'application/json' }, '{}')));
  t.is(parsed.headers['content-type'], 'application/json');
  t.is(parsed.lines.filter((l) => /^content-type:/i.test(l)).length, 1);
});

test('buildRejectResponse: only 4xx and 5xx', (t) => {
  for (const s of [101, 200, 302, 399, 600, 404.5, NaN]) t.throws(() => buildRejectResponse(s), { instanceOf: RangeError }, String(s));
});

test('header injection: CR, LF or NUL in a value, or a bad name, is refused', (t) => {
  for (const v of ['a\r\nSet-Cookie: evil=1', 'a\nb', 'a\rb', 'a\0b']) {
    t.throws(() => buildRejectResponse(401, { 'WWW-Authenticate': v }), { instanceOf: TypeError }, JSON.stringify(v));
    t.throws(() => buildServerResponse(KEY, undefined, { 'X-A': v }), { instanceOf: TypeError });
    t.throws(() => buildServerResponse(KEY, undefined, { 'X-A': ['ok', v] }), { instanceOf: TypeError });
    t.throws(() => buildRejectResponse(400, { 'X-B': ['ok', v] }), { instanceOf: TypeError });
  }
  for (const name of ['Bad Name', 'X:Y', 'X\r\nY', '']) {
    t.throws(() => buildServerResponse(KEY, undefined, { [name]: 'v' }), { instanceOf: TypeError }, JSON.stringify(name));
  }
  t.throws(() => buildServerResponse(KEY, 'a\r\nb'), { instanceOf: TypeError }, 'in the protocol');
});
