// The receive queue on its own (src/core/receive-queue.ts): chunks in, exact views or copies
// out, unmasking, coalescing, visiting, waiting and the one-reader guard, without a socket.
import test from 'ava';
import { COALESCE_AFTER, ReceiveQueue, TAIL_SIZE } from '../../src/core/receive-queue';
import { ConcurrencyError, IOError } from '../../src';
import { applyMaskReference } from '../../src/core/mask';

const bytes = (...b: number[]): Buffer => Buffer.from(b);
const eof = (): IOError => new IOError('eof', 'socket ended');

test('take: a view of the chunk when the bytes lie in one, a copy when they straddle', (t) => {
  const q = new ReceiveQueue();
  const a = bytes(1, 2, 3, 4);
  const b = bytes(5, 6, 7, 8);
  q.push(a);
  q.push(b);
  t.is(q.length, 8);
  const view = q.take(2);
  t.deepEqual([...view], [1, 2]);
  const copy = q.take(4);
  t.deepEqual([...copy], [3, 4, 5, 6]);
  a[0] = 9;
  b[0] = 9;
  t.is(view[0], 9, 'a view of the received chunk');
  t.is(copy[2], 5, 'a copy of the bytes that straddled chunks');
  t.is(q.length, 2);
  t.is(q.chunkCount, 1);
  t.deepEqual([...q.take(2)], [7, 8]);
  t.is(q.length, 0);
  t.is(q.chunkCount, 0);
  t.is(q.take(0).length, 0);
});

test('peek shows the next bytes without consuming them, joined when they straddle', (t) => {
  const q = new ReceiveQueue();
  q.push(bytes(1, 2, 3));
  q.push(bytes(4, 5));
  const one = q.peek(2);
  t.deepEqual([...one.subarray(q.peekOffset, q.peekOffset + 2)], [1, 2]);
  q.skip(2);
  const joined = q.peek(3);
  t.deepEqual([...joined.subarray(q.peekOffset, q.peekOffset + 3)], [3, 4, 5]);
  t.is(q.length, 3, 'nothing consumed by peek');
});

test('takeUnmasked unmasks in place in one chunk, and while copying across chunks, at every split', (t) => {
  const key = bytes(0x37, 0xfa, 0x21, 0x3d);
  const clear = Buffer.from('Hello, a payload long enough to use the word loop and then some more bytes.');
  const masked = Buffer.from(clear);
  applyMaskReference(masked, key);
  for (let split = 0; split <= masked.length; split++) {
    const q = new ReceiveQueue();
    const input = Buffer.from(masked);
    if (split > 0) q.push(input.subarray(0, split));
    if (split < input.length) q.push(input.subarray(split));
    const out = q.takeUnmasked(input.length, key);
    t.true(out.equals(clear), `split at ${split}`);
    t.is(q.length, 0);
  }
});

test('many small chunks are coalesced into shared buffers, and views handed out earlier stay intact', (t) => {
  const q = new ReceiveQueue();
  const sent: Buffer[] = [];
  const views: Buffer[] = [];
  // Enough small chunks to coalesce well past one tail buffer, reading some as they come.
  for (let i = 0; views.length < 600; i++) {
    const chunk = Buffer.from(`chunk ${i} `.repeat(1 + (i % 7)));
    sent.push(Buffer.from(chunk));
    q.push(chunk);
    if (i % 3 === 2) {
      const n = sent[sent.length - 3]!.length;
      views.push(q.take(n));
      views.push(q.take(sent[sent.length - 2]!.length));
      views.push(q.take(sent[sent.length - 1]!.length));
    }
  }
  // Then a backlog that coalesces: the queue holds few buffers for many chunks.
  let pushed = 0;
  for (let i = 0; i < 2000; i++) {
    const chunk = Buffer.from(`late ${i};`);
    sent.push(Buffer.from(chunk));
    q.push(chunk);
    pushed += chunk.length;
  }
  t.true(q.chunkCount <= COALESCE_AFTER + Math.ceil(pushed / TAIL_SIZE) + 1, `${q.chunkCount} buffers hold 2000 chunks`);
  const rest = q.take(q.length);
  // Every view handed out before the coalescing still shows the bytes it was given.
  for (let i = 0; i < views.length; i++) t.true(views[i]!.equals(sent[i]!), `view ${i} intact`);
  t.true(rest.equals(Buffer.concat(sent.slice(views.length))));
});

test('views of coalesced bytes stay intact when later chunks are appended to the same buffer', (t) => {
  const q = new ReceiveQueue();
  for (let i = 0; i < COALESCE_AFTER; i++) q.push(bytes(i));
  q.push(Buffer.from('abc'));
  q.push(Buffer.from('def'));
  t.is(q.chunkCount, COALESCE_AFTER + 1, 'the two small chunks share one buffer');
  q.skip(COALESCE_AFTER);
  const view = q.take(3);
  t.is(view.toString(), 'abc');
  // Enough chunks queued again that the next one is copied into the same shared buffer,
  // right behind 'def'.
  for (let i = 0; i < COALESCE_AFTER - 1; i++) q.push(bytes(i));
  q.push(Buffer.from('ghi'));
  t.is(q.chunkCount, 1 + (COALESCE_AFTER - 1) + 1);
  t.is(view.toString(), 'abc', 'appending did not touch bytes handed out');
  const rest = q.take(q.length);
  t.is(rest.subarray(rest.length - 3).toString(), 'ghi');
  t.is(rest.subarray(0, 3).toString(), 'def');
});

test('visit walks a range of the buffered bytes piece by piece without consuming them', (t) => {
  const q = new ReceiveQueue();
  q.push(Buffer.from('abc'));
  q.push(Buffer.from('defg'));
  q.push(Buffer.from('hi'));
  q.skip(1);
  const pieces: string[] = [];
  q.visit(1, 7, (p) => pieces.push(p.toString()));
  t.deepEqual(pieces, ['c', 'defg', 'h']);
  t.is(q.length, 8);
});

test('readExact resolves at once when buffered, else once the bytes arrive', async (t) => {
  const q = new ReceiveQueue();
  q.push(bytes(1, 2, 3));
  t.deepEqual([...(await q.readExact(2))], [1, 2]);
  const later = q.readExact(3);
  t.true(q.waiting);
  q.push(bytes(4));
  t.true(q.waiting, 'two of three bytes');
  q.push(bytes(5, 6));
  t.deepEqual([...(await later)], [3, 4, 5]);
  t.false(q.waiting);
  t.is(q.owner, null, 'the guard is released');
});

test('one reader at a time: a second read while one waits rejects ConcurrencyError, the first still works', async (t) => {
  const q = new ReceiveQueue();
  const first = q.readExact(4);
  await t.throwsAsync(q.readExact(1), { instanceOf: ConcurrencyError });
  // Even bytes that are already buffered are not handed to a second reader.
  q.push(bytes(1, 2));
  await t.throwsAsync(q.readExact(1), { instanceOf: ConcurrencyError });
  q.push(bytes(3, 4));
  t.deepEqual([...(await first)], [1, 2, 3, 4]);
  // A frame-level reader holds the same guard.
  q.owner = {};
  await t.throwsAsync(q.readExact(1), { instanceOf: ConcurrencyError });
});

test('the end of input: buffered bytes are still served, a short read says how far it got', async (t) => {
  const q = new ReceiveQueue();
  q.push(bytes(1, 2, 3));
  const short = q.readExact(5);
  q.end(eof());
  const err = await t.throwsAsync(short, { instanceOf: IOError });
  t.is(err?.reason, 'eof');
  t.is(err?.bytesRead, 3);
  t.is(err?.expected, 5);
  t.deepEqual([...(await q.readExact(3))], [1, 2, 3], 'what arrived before the end is still readable');
  await t.throwsAsync(q.readExact(1), { instanceOf: IOError, message: /after 0 of 1 bytes/ });
});

test('close drops what is buffered and fails the pending and later reads with its reason', async (t) => {
  const q = new ReceiveQueue();
  q.push(bytes(1, 2));
  const pending = q.readExact(4);
  const reason = new IOError('closed', 'the WebSocket connection is closed');
  q.close(reason);
  t.is(await t.throwsAsync(pending), reason);
  t.is(q.length, 0);
  q.push(bytes(9));
  t.is(q.length, 0, 'input after the close is dropped');
  t.is(await t.throwsAsync(q.readExact(1)), reason);
  q.close(new IOError('reset', 'later'));
  t.is(q.closed, reason, 'the first reason is kept');
});

test('waitThen passes its target to shared callbacks and wakes early at wakeAt', (t) => {
  const q = new ReceiveQueue<{ name: string }>();
  const target = { name: 'reader' };
  const seen: string[] = [];
  const ready = (x: { name: string }): void => {
    seen.push(`ready ${x.name} at ${q.length}`);
  };
  const fail = (err: Error): void => {
    seen.push(`fail ${err.message}`);
  };
  t.true(q.waitThen(10, 3, target, ready, fail), 'left pending');
  q.push(bytes(1, 2));
  q.push(bytes(3));
  t.deepEqual(seen, ['ready reader at 3']);
  t.false(q.waitThen(10, 3, target, ready, fail), 'served at once');
  t.is(seen.length, 2);
  t.true(q.waitThen(10, 10, target, ready, fail));
  t.false(q.waitThen(10, 10, target, ready, fail), 'a second wait is refused');
  t.regex(seen[2]!, /^fail another read is pending/);
  q.end(eof());
  t.regex(seen[3]!, /^fail socket ended after 3 of 10 bytes/);
});

test('visits that resume where the last one ended see every byte once, also across coalescing and consumption', (t) => {
  const q = new ReceiveQueue();
  const all: Buffer[] = [];
  const seen: Buffer[] = [];
  let done = 0;
  const collect = (p: Buffer): void => {
    seen.push(Buffer.from(p));
  };
  for (let i = 0; i < 300; i++) {
    // Chunks of 1 to 40 bytes: some are queued alone, most are coalesced.
    const chunk = Buffer.from(Array.from({ length: 1 + ((i * 7) % 40) }, (_, k) => (i + k) & 0xff));
    all.push(Buffer.from(chunk));
    q.push(chunk);
    q.visit(done, q.length, collect);
    done = q.length;
  }
  t.true(Buffer.concat(seen).equals(Buffer.concat(all)), 'each byte visited once, in order');
  // A visit that starts before the last one ended walks from the first chunk again.
  const again: Buffer[] = [];
  q.visit(5, 25, (p) => again.push(Buffer.from(p)));
  t.true(Buffer.concat(again).equals(Buffer.concat(all).subarray(5, 25)));
  // After bytes are consumed, offsets are relative to what is left.
  q.skip(100);
  const after: Buffer[] = [];
  q.visit(0, 50, (p) => after.push(Buffer.from(p)));
  t.true(Buffer.concat(after).equals(Buffer.concat(all).subarray(100, 150)));
});
