// Pong bookkeeping on its own (src/core/pongs.ts): awaited Pings settled by Pongs, no socket.
import test from 'ava';
import { Pongs } from '../../src/core/pongs';

const b = (s: string): Buffer => Buffer.from(s);

test('a Pong settles its Ping with a round-trip time, and every Ping sent before it (RFC 6455 §5.5.3)', async (t) => {
  const p = new Pongs();
  const one = p.wait(b('one'));
  const two = p.wait(b('two'));
  const three = p.wait(b('three'));
  t.is(p.size, 3);
  p.settle(b('two'));
  t.true((await one) >= 0);
  t.true((await two) >= 0);
  t.is(p.size, 1, 'the later Ping still waits');
  p.settle(b('unsolicited'));
  t.is(p.size, 1, 'an unsolicited Pong settles nothing');
  p.settle(b('three'));
  t.true((await three) >= 0);
  t.is(p.size, 0);
});

test('a token may wait only once; cancel forgets it', async (t) => {
  const p = new Pongs();
  const first = p.wait(b('same'));
  t.throws(() => p.wait(b('same')), { instanceOf: RangeError });
  p.cancel(b('same'));
  t.is(p.size, 0);
  const again = p.wait(b('same'));
  p.settle(b('same'));
  t.true((await again) >= 0);
  p.failAll(new Error('unused'));
  // The cancelled waiter is never settled: it stays pending (nothing holds it any more).
  const state = await Promise.race([first.then(() => 'settled'), new Promise((r) => setImmediate(() => r('pending')))]);
  t.is(state, 'pending');
});

test('failAll rejects every waiting Ping and drops a deferred Pong', async (t) => {
  const p = new Pongs();
  const a = p.wait(b('a'));
  const c = p.wait(b('c'));
  p.deferred = b('owed');
  const err = new Error('closed');
  p.failAll(err);
  t.is(await t.throwsAsync(a), err);
  t.is(await t.throwsAsync(c), err);
  t.is(p.deferred as Buffer | null, null);
  t.is(p.size, 0);
});

test('tokens are compared as bytes, whatever view holds them', async (t) => {
  const p = new Pongs();
  const token = Buffer.from([0xff, 0x00, 0x80]);
  const waiting = p.wait(token);
  const backing = Buffer.from([9, 9, 0xff, 0x00, 0x80, 9]);
  p.settle(backing.subarray(2, 5));
  t.true((await waiting) >= 0);
});
