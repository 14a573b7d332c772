/** Pure: checkUpgradeRequest gives the right refusal for every malformed request (RFC 6455 §4.2.1). */
import test from 'ava';
import { checkUpgradeRequest, Headers, isRefusal, UpgradeRefusal, UpgradeRequest } from '../../src';
import { KEY } from './support';

const good = (): Headers => ({
  host: '127.0.0.1',
  upgrade: 'websocket',
  connection: 'Upgrade',
  'sec-websocket-key': KEY,
  'sec-websocket-version': '13'
});

function refusal(method: string | undefined, version: string, headers: Headers): UpgradeRefusal {
  const r = checkUpgradeRequest(method, version, headers);
  if (!isRefusal(r)) throw new Error(`accepted: ${JSON.stringify(r)}`);
  return r;
}

function accepted(method: string, version: string, headers: Headers): UpgradeRequest {
  const r = checkUpgradeRequest(method, version, headers);
  if (isRefusal(r)) throw new Error(`refused ${r.status}: ${r.message}`);
  return r;
}

test('a valid request passes and gives the key, offers and extensions', (t) => {
  t.deepEqual(accepted('GET', '1.1', good()), { key: KEY, protocols: [], extensions: undefined });
  const r = accepted('GET', '1.1', {
    ...good(),
    'sec-websocket-protocol': 'b, a ,c',
    'sec-websocket-extensions': 'permessage-deflate'
  });
  t.deepEqual(r.protocols, ['b', 'a', 'c']);
  t.is(r.extensions, 'permessage-deflate');
  t.is(accepted('GET', '2.0', good()).key, KEY, 'later HTTP versions are fine');
  t.is(accepted('GET', '1.1', { ...good(), 'sec-websocket-key': ` ${KEY} ` }).key, KEY, 'key trimmed');
});

test('405 with Allow: GET for other methods', (t) => {
  for (const m of ['POST', 'PUT', 'HEAD', 'OPTIONS', 'get', undefined]) {
    const r = refusal(m, '1.1', good());
    t.is(r.status, 405, String(m));
    t.deepEqual(r.headers, { Allow: 'GET' });
  }
});

test('400 for HTTP before 1.1', (t) => {
  for (const v of ['1.0', '0.9', '']) {
    const r = refusal('GET', v, good());
    t.is(r.status, 400, v);
    t.regex(r.message, /HTTP/);
  }
});

test('400 for a missing or wrong Upgrade header', (t) => {
  const { upgrade: _u, ...noUpgrade } = good();
  for (const h of [noUpgrade, { ...good(), upgrade: 'h2c' }, { ...good(), upgrade: 'websockets' }, { ...good(), upgrade: '' }]) {
    const r = refusal('GET', '1.1', h);
    t.is(r.status, 400);
    t.regex(r.message, /Upgrade/);
  }
  t.truthy(accepted('GET', '1.1', { ...good(), upgrade: 'WebSocket' }), 'case-insensitive');
  t.truthy(accepted('GET', '1.1', { ...good(), upgrade: 'h2c, websocket' }), 'in a list');
});

test('400 for a missing or wrong Connection header; token lists accepted, case-insensitive', (t) => {
  const { connection: _c, ...noConnection } = good();
  for (const h of [
    noConnection,
    { ...good(), connection: 'keep-alive' },
    { ...good(), connection: 'close' },
    { ...good(), connection: 'upgraded' },
    { ...good(), connection: '' }
  ]) {
    const r = refusal('GET', '1.1', h);
    t.is(r.status, 400, JSON.stringify(h.connection));
    t.regex(r.message, /Connection/);
  }
  for (const c of ['keep-alive, Upgrade', 'upgrade', 'UPGRADE', 'Upgrade,keep-alive', ' keep-alive ,  uPgRaDe ']) {
    t.truthy(accepted('GET', '1.1', { ...good(), connection: c }), c);
  }
  t.truthy(accepted('GET', '1.1', { ...good(), connection: ['keep-alive', 'Upgrade'] }), 'repeated header');
});

test('426 with Sec-WebSocket-Version: 13 for a missing or other version', (t) => {
  const { 'sec-websocket-version': _v, ...noVersion } = good();
  for (const h of [noVersion, { ...good(), 'sec-websocket-version': '8' }, { ...good(), 'sec-websocket-version': '14' }, { ...good(), 'sec-websocket-version': '13, 8' }, { ...good(), 'sec-websocket-version': '' }]) {
    const r = refusal('GET', '1.1', h);
    t.is(r.status, 426, JSON.stringify(h['sec-websocket-version']));
    t.deepEqual(r.headers, { 'Sec-WebSocket-Version': '13' });
  }
});

test('400 for a missing or malformed key', (t) => {
  const { 'sec-websocket-key': _k, ...noKey } = good();
  t.is(refusal('GET', '1.1', noKey).status, 400);
  for (const k of ['', 'abc', Buffer.alloc(15).toString('base64'), Buffer.alloc(20).toString('base64'), 'dGhlIHNhbXBsZSBub25jZQ', '!GhlIHNhbXBsZSBub25jZQ==']) {
    const r = refusal('GET', '1.1', { ...good(), 'sec-websocket-key': k });
    t.is(r.status, 400, k);
    t.regex(r.message, /Key/);
  }
});

test('400 for a malformed protocol list', (t) => {
  for (const p of ['a b', 'chat, a;b', 'a, a', '"quoted"', 'x/y']) {
    const r = refusal('GET', '1.1', { ...good(), 'sec-websocket-protocol': p });
    t.is(r.status, 400, p);
    t.regex(r.message, /Protocol/);
  }
  t.deepEqual(accepted('GET', '1.1', { ...good(), 'sec-websocket-protocol': 'a,,b,' }).protocols, ['a', 'b']);
});

test('the checks run in order: method, then version, then headers', (t) => {
  t.is(refusal('POST', '1.0', {}).status, 405);
  t.is(refusal('GET', '1.0', {}).status, 400);
  const { 'sec-websocket-version': _v, ...noVersion } = good();
  t.is(refusal('GET', '1.1', { ...noVersion, 'sec-websocket-key': 'bad' }).status, 426);
});

test('400 for a request without a Host header (RFC 6455 §4.2.1)', (t) => {
  const headers = good();
  delete headers.host;
  const r = refusal('GET', '1.1', headers);
  t.is(r.status, 400);
  t.regex(r.message, /Host/);
});

test('what a hand-written parser gives is taken too: header names in any case, the version as HTTP/1.1', (t) => {
  const mixed: Headers = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Protocol': 'chat.v1'
  };
  t.deepEqual(accepted('GET', 'HTTP/1.1', mixed), { key: KEY, protocols: ['chat.v1'], extensions: undefined });
  t.deepEqual(accepted('GET', '1.1', mixed), { key: KEY, protocols: ['chat.v1'], extensions: undefined });
  t.is(refusal('GET', 'HTTP/1.0', mixed).status, 400);
  t.is(refusal('GET', 'HTTP/1.1', { ...mixed, 'Sec-WebSocket-Version': '8' }).status, 426);
});

test('isRefusal is exported by the package, as its type declaration says', async (t) => {
  const pkg = await import('../../src');
  t.is(pkg.isRefusal, isRefusal);
});
