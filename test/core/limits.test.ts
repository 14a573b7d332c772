// The limits of a connection (src/core/limits.ts): defaults, and one shared object per set of values.
import test from 'ava';
import { DEFAULTS } from '../../src';
import { limitsOf } from '../../src/core/limits';

test('unset limits take their defaults', (t) => {
  t.deepEqual(limitsOf({}), {
    maxFrameSize: DEFAULTS.maxFrameSize,
    maxMessageSize: DEFAULTS.maxMessageSize,
    maxFragments: DEFAULTS.maxFragments,
    maxInflateRatio: DEFAULTS.maxInflateRatio,
    closeTimeout: DEFAULTS.closeTimeout,
    sendTimeout: DEFAULTS.sendTimeout,
    readBufferSize: DEFAULTS.readBufferSize
  });
});

test('connections with the same limits share one frozen object; other values get their own', (t) => {
  const a = limitsOf({ maxFrameSize: 1000, closeTimeout: 50 });
  const b = limitsOf({ maxFrameSize: 1000, closeTimeout: 50, maxMessageSize: DEFAULTS.maxMessageSize });
  t.is(a, b);
  t.true(Object.isFrozen(a));
  const c = limitsOf({ maxFrameSize: 1001, closeTimeout: 50 });
  t.not(c, a);
  t.is(c.maxFrameSize, 1001);
  t.not(limitsOf({ maxFrameSize: 1000, closeTimeout: 50, maxInflateRatio: 5 }), a, 'every limit is part of the key');
});

test('the shared set is bounded: many distinct limits still work, unshared past the bound', (t) => {
  const made = Array.from({ length: 200 }, (_, i) => limitsOf({ maxFragments: 10_000 + i }));
  made.forEach((l, i) => t.is(l.maxFragments, 10_000 + i));
  t.not(limitsOf({ maxFragments: 10_199 }), made[199], 'past the bound each call makes its own');
});
