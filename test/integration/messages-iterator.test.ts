// messages(ws): the async iterator behaves as the async generator it replaced (skipped
// control frames, queued next() calls, the end after a Close, an error, return() or throw()),
// and an idle loop does not keep the last message alive.
import test from 'ava';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { messages, Opcode, ProtocolError, readData, sendBinary, sendClose, sendPing, sendText } from '../../src';
import { pair, within } from '../helpers/socket-pair';

test('pings are answered and skipped, messages come in order, and the iteration ends after the Close', async (t) => {
  const { client, server } = await pair(t);
  await sendText(client, 'one');
  await sendPing(client);
  await sendBinary(client, Buffer.from([2]));
  await sendClose(client, 1000, 'bye');
  const got: string[] = [];
  const it = messages(server);
  for await (const m of it) got.push(`${m.opcode}:${m.data.toString('hex')}`);
  t.deepEqual(got, [`${Opcode.Text}:${Buffer.from('one').toString('hex')}`, `${Opcode.Binary}:02`]);
  t.is((await readData(client)).opcode, Opcode.Pong);
  // once ended, every next() is done (a new iterator would read, and fail: the connection is closed)
  t.deepEqual(await it.next(), { done: true, value: undefined });
});

test('next() calls made before the first settles are answered in turn, not with a ConcurrencyError', async (t) => {
  const { client, server } = await pair(t);
  const it = messages(server);
  const first = it.next();
  const second = it.next();
  const third = it.next();
  await sendText(client, 'a');
  await sendPing(client);
  await sendText(client, 'b');
  await sendClose(client, 1000);
  const results = await within(Promise.all([first, second, third]), 'three next() calls');
  t.deepEqual(
    results.map((r) => (r.done ? 'done' : r.value.data.toString())),
    ['a', 'b', 'done']
  );
  t.deepEqual(await it.next(), { done: true, value: undefined });
});

test('an error is thrown once, then the iteration is over', async (t) => {
  const { client, server } = await pair(t);
  const it = messages(server);
  await client.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4])); // reserved opcode 3, masked
  const err = await t.throwsAsync(it.next());
  t.true(err instanceof ProtocolError);
  t.deepEqual(await it.next(), { done: true, value: undefined });
});

test('return() and throw() end the iteration; break in for-await does not close the connection', async (t) => {
  const { client, server } = await pair(t);
  await sendText(client, 'x');
  await sendText(client, 'y');
  for await (const m of messages(server)) {
    t.is(m.data.toString(), 'x');
    break;
  }
  // the connection goes on: a new iterator reads the next message
  const again = messages(server);
  t.is(((await again.next()).value as { data: Buffer }).data.toString(), 'y');
  t.deepEqual(await again.return(), { done: true, value: undefined });
  t.deepEqual(await again.next(), { done: true, value: undefined });
  const thrown = messages(server);
  const boom = new Error('boom');
  t.is(await t.throwsAsync(thrown.throw(boom)), boom);
  t.deepEqual(await thrown.next(), { done: true, value: undefined });
  t.is(server.readyState, 'open');
});

test('a loop waiting for its next message does not keep the last one alive', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const { client, server } = await pair(t);
  await sendBinary(client, Buffer.alloc(1 << 20, 1));
  const it = messages(server);
  const ref = new WeakRef(((await it.next()).value as { data: Buffer }).data);
  const waiting = it.next(); // idle: waits for a message that has not come
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  t.is(ref.deref(), undefined, 'the 1 MiB message is still reachable from the iterator');
  await sendClose(client, 1000);
  t.deepEqual(await within(waiting, 'the end'), { done: true, value: undefined });
});
