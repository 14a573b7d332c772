/** Pure: the key, the accept value (RFC 6455 §1.3, §4.1) and the token helpers. */
import test from 'ava';
import { createHash } from 'node:crypto';
import { acceptKey, generateKey, GUID, isValidKey } from '../../src';
import { hasToken, headerValue, isToken, normalizeProtocols, tokenList } from '../../src/core/handshake';
import { ACCEPT, KEY } from './support';

test('acceptKey matches the example of RFC 6455 §1.3', (t) => {
  t.is(acceptKey(KEY), ACCEPT);
  t.is(GUID, '258EAFA5-E914-47DA-95CA-C5AB0DC85B11');
});

test('acceptKey is base64(SHA-1(key + GUID)) for other keys too', (t) => {
  for (let i = 0; i < 20; i++) {
    const key = generateKey();
    t.is(acceptKey(key), createHash('sha1').update(key + GUID).digest('base64'));
  }
  t.not(acceptKey('AAAAAAAAAAAAAAAAAAAAAA=='), acceptKey('AAAAAAAAAAAAAAAAAAAAAQ=='));
});

test('generateKey gives 16 random bytes in base64 that isValidKey accepts', (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const key = generateKey();
    t.is(key.length, 24);
    t.is(Buffer.from(key, 'base64').length, 16);
    t.is(Buffer.from(key, 'base64').toString('base64'), key, 'canonical base64');
    t.true(isValidKey(key), key);
    seen.add(key);
  }
  t.is(seen.size, 200, 'no repeats');
});

test('isValidKey accepts every canonical 16-byte value, incl. the RFC example', (t) => {
  t.true(isValidKey(KEY));
  t.true(isValidKey(Buffer.alloc(16, 0).toString('base64')));
  t.true(isValidKey(Buffer.alloc(16, 0xff).toString('base64')));
  t.true(isValidKey('+/+/+/+/+/+/+/+/+/+/+w=='));
});

test('isValidKey rejects wrong lengths, characters and padding', (t) => {
  const bad = [
    '',
    Buffer.alloc(15).toString('base64'), // 15 bytes
    Buffer.alloc(17).toString('base64'), // 17 bytes
    Buffer.alloc(32).toString('base64'),
    'dGhlIHNhbXBsZSBub25jZQ', // no padding
    'dGhlIHNhbXBsZSBub25jZQ=', // one '='
    'dGhlIHNhbXBsZSBub25jZQ===',
    'dGhlIHNhbXBsZSBub25jZR==', // last char encodes bits that must be zero
    'dGhlIHNhbXBsZSBub25jZ-==', // base64url, not base64
    'dGhlIHNhbXBsZSBub25j_Q==',
    'dGhlIHNhbXBsZSBub25jZQ==\n',
    ' dGhlIHNhbXBsZSBub25jZQ==',
    'dGhlIHNhbXBsZS.ub25jZQ==',
    'dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ=='
  ];
  for (const key of bad) t.false(isValidKey(key), JSON.stringify(key));
});

test('token lists: trimmed, empties dropped, case-insensitive membership', (t) => {
  t.deepEqual(tokenList(undefined), []);
  t.deepEqual(tokenList(' a ,, b,c ,'), ['a', 'b', 'c']);
  t.true(hasToken('keep-alive, Upgrade', 'upgrade'));
  t.true(hasToken('UPGRADE', 'upgrade'));
  t.false(hasToken('upgrade-insecure', 'upgrade'));
  t.false(hasToken(undefined, 'upgrade'));
  t.is(headerValue({ a: ['x', 'y'] }, 'a'), 'x, y');
  t.is(headerValue({}, 'a'), undefined);
});

test('isToken and normalizeProtocols', (t) => {
  t.true(isToken('chat.v1'));
  t.true(isToken("!#$%&'*+-.^_`|~09azAZ"));
  for (const s of ['', 'a b', 'a,b', 'a"b', 'a/b', 'a;b', 'é', 'a\tb']) t.false(isToken(s), JSON.stringify(s));
  t.deepEqual(normalizeProtocols(undefined), []);
  t.deepEqual(normalizeProtocols('one'), ['one']);
  t.deepEqual(normalizeProtocols(['b', 'a']), ['b', 'a']);
  t.throws(() => normalizeProtocols(['a', 'a']), { instanceOf: SyntaxError });
  t.throws(() => normalizeProtocols(['a b']), { instanceOf: SyntaxError });
  t.throws(() => normalizeProtocols(['']), { instanceOf: SyntaxError });
});
