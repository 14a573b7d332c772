/**
 * Streaming messages: the readers beyond `readData` (the `messages(ws)` async iterator and
 * `readFragment`, which hands a message out piece by piece, so `maxMessageSize` does not
 * bound it, while answering pings in between), and `sendChain`, whose source failing
 * halfway fails the connection with 1011.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { CloseCode, Fragment, IOError, Message, messages, Opcode, PayloadTooBigError, readData, readFragment, sendBinary, sendChain, sendClose, sendFragmented, sendFrame, sendPing, sendText } from '../../src';
import { pair, parseFrames, rawPair, within } from '../helpers/socket-pair';

test('messages(ws) yields text and binary messages, skips pings, and ends after the close', async (t) => {
  const { client, server } = await pair(t);
  const collect = (async () => {
    const got: Message[] = [];
    for await (const m of messages(server)) {
      got.push({ opcode: m.opcode, data: Buffer.from(m.data) });
      if (got.length > 10) break; // bounded
    }
    return got;
  })();
  await sendText(client, 'one');
  await sendPing(client, undefined, 'p');
  await sendBinary(client, Buffer.from([1, 2]));
  await sendFragmented(client, Opcode.Text, 'fragmented text', 4);
  await sendClose(client, 1000, 'done');
  const got = await within(collect, 'the iterator to end');
  t.deepEqual(got, [
    { opcode: Opcode.Text, data: Buffer.from('one') },
    { opcode: Opcode.Binary, data: Buffer.from([1, 2]) },
    { opcode: Opcode.Text, data: Buffer.from('fragmented text') }
  ]);
  // The client got the Pong and then the echo of its Close.
  t.deepEqual(await within(readData(client), 'the pong'), { opcode: Opcode.Pong, data: Buffer.from('p') });
  t.deepEqual(await within(readData(client), 'the echo'), { opcode: Opcode.Close, data: Buffer.from('\x03\xe8done', 'latin1') });
});

test('messages(ws) on the client side ends after a server-initiated close; errors reach the loop', async (t) => {
  const { client, server } = await pair(t);
  const collect = (async () => {
    const got: string[] = [];
    for await (const m of messages(client)) got.push(m.data.toString());
    return got;
  })();
  await sendText(server, 'a');
  await sendText(server, 'b');
  await sendClose(server, 1001);
  t.deepEqual(await within(collect, 'the iterator to end'), ['a', 'b']);
  // A second iterator on the closed connection throws IOError.
  const again = async (): Promise<void> => {
    for await (const _m of messages(client)) t.fail('no message expected');
  };
  await t.throwsAsync(again(), { instanceOf: IOError });
});

test('readFragment returns the pieces with the message opcode and fin, answering pings in between', async (t) => {
  const { client, server } = await pair(t);
  const p1 = Buffer.from('abc');
  const p2 = Buffer.from('défg');
  await sendFrame(client, Opcode.Text, p1, { fin: false });
  await sendPing(client, undefined, 'tok');
  await sendFrame(client, Opcode.Cont, p2, { fin: false });
  await sendFrame(client, Opcode.Cont, Buffer.alloc(0), { fin: true });
  await sendBinary(client, Buffer.from([9]));
  const got: Fragment[] = [];
  for (let i = 0; i < 5; i++) {
    const f = await within(readFragment(server), `fragment ${i}`);
    got.push({ opcode: f.opcode, data: Buffer.from(f.data), fin: f.fin });
  }
  t.deepEqual(got, [
    { opcode: Opcode.Text, data: p1, fin: false },
    { opcode: Opcode.Ping, data: Buffer.from('tok'), fin: true },
    { opcode: Opcode.Text, data: p2, fin: false },
    { opcode: Opcode.Text, data: Buffer.alloc(0), fin: true },
    { opcode: Opcode.Binary, data: Buffer.from([9]), fin: true }
  ]);
  t.deepEqual(await within(readData(client), 'the pong'), { opcode: Opcode.Pong, data: Buffer.from('tok') });
});

test('readFragment: a 4 MiB message in 64 KiB fragments with maxMessageSize 1 MiB', async (t) => {
  const { client, server } = await pair(t, { server: { maxMessageSize: 1024 * 1024, maxFrameSize: 64 * 1024 } });
  const big = randomBytes(4 * 1024 * 1024);
  const sending = sendFragmented(client, Opcode.Binary, big, 64 * 1024);
  const hash = createHash('sha256');
  let total = 0;
  let pieces = 0;
  for (let i = 0; i < 100; i++) {
    const f = await within(readFragment(server), `fragment ${i}`);
    t.is(f.opcode, Opcode.Binary);
    hash.update(f.data);
    total += f.data.length;
    pieces++;
    if (f.fin) break;
  }
  await within(sending, 'the send');
  t.is(pieces, 64);
  t.is(total, big.length);
  t.is(hash.digest('hex'), createHash('sha256').update(big).digest('hex'));

  // readData on the same socket still enforces maxMessageSize (1009 as soon as it is crossed).
  const second = sendFragmented(client, Opcode.Binary, big.subarray(0, 2 * 1024 * 1024), 64 * 1024);
  second.catch(() => {}); // the server fails the connection midway: this send may fail
  const err = await within(t.throwsAsync(readData(server), { instanceOf: PayloadTooBigError }), 'the failure');
  t.is(err?.code, 'WS_ERR_MESSAGE_TOO_BIG');
  t.is(err?.closeCode, 1009);
  const close = await within(readData(client), 'the Close');
  t.is(close.opcode, Opcode.Close);
  t.is(close.data.readUInt16BE(0), 1009);
});

test('readFragment and readData cannot be mixed within one message', async (t) => {
  const { client, server } = await pair(t);
  await sendFrame(client, Opcode.Binary, Buffer.from('a'), { fin: false });
  await sendFrame(client, Opcode.Cont, Buffer.from('b'), { fin: true });
  const first = await within(readFragment(server), 'the first piece');
  t.deepEqual(first, { opcode: Opcode.Binary, data: Buffer.from('a'), fin: false });
  await t.throwsAsync(readData(server), { instanceOf: TypeError });
  const last = await within(readFragment(server), 'the last piece');
  t.deepEqual(last, { opcode: Opcode.Binary, data: Buffer.from('b'), fin: true });
});

test('a message source that fails after the first frame fails the connection with 1011', async (t) => {
  const { ws, peer } = await rawPair(t, 'client', { closeTimeout: 300 });
  async function* broken(): AsyncGenerator<string> {
    yield 'a';
    yield 'b';
    throw new Error('source broke');
  }
  await t.throwsAsync(sendChain(ws, Opcode.Text, broken()), { message: 'source broke' });
  await t.throwsAsync(sendText(ws, 'next'), { instanceOf: IOError });
  const frames = await peer.waitFrames(2);
  t.is(frames[0]!.opcode, Opcode.Text);
  t.false(frames[0]!.fin);
  t.is(frames[1]!.opcode, Opcode.Close);
  t.is(frames[1]!.data.readUInt16BE(0), CloseCode.InternalError);
  t.is(parseFrames(peer.bytes, true).length, 2, 'nothing after the Close');
});
