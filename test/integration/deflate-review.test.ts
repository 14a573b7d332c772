/**
 * Regressions found in a review of permessage-deflate (RFC 7692): each test failed before
 * the fix committed with it.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { AsyncSocketOptions } from '../../src/async-socket';
import { Opcode } from '../../src/core/constants';
import { DeflateSettings } from '../../src/deflate';
import { makeFrame } from '../../src/core/frame';
import { encodeClosePayload } from '../../src/core/close';
import { readData } from '../../src/recv';
import { sendBinary, sendClose } from '../../src/send';
import { asyncPair, within } from '../helpers/socket-pair';

const DEFLATE: DeflateSettings = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  threshold: 0
};
const WITH_DEFLATE: Partial<AsyncSocketOptions> = { deflate: DEFLATE };

// Compressible but not trivially so: zlib takes a few ms on it, on the thread pool.
function payload(size: number): Buffer {
  const word = randomBytes(64);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += 64) word.copy(out, i, 0, Math.min(64, size - i));
  for (let i = 0; i < size; i += 997) out[i] = i & 0xff;
  return out;
}

test('a compressed message queued before our Close still goes out when the peer\'s Close is read meanwhile (§5.5.1)', async (t) => {
  const p = await asyncPair({ client: WITH_DEFLATE, server: WITH_DEFLATE });
  t.teardown(() => p.destroy());
  const data = payload(1 << 20);
  // The message is being compressed, and our Close waits behind it.
  const sent = sendBinary(p.server, data);
  const closed = sendClose(p.server, 1000, 'bye');
  // The peer's Close arrives before ours went out: the message in progress may finish (§5.5.1).
  p.server.feed(makeFrame({ fin: true, rsv1: false, rsv2: false, rsv3: false, masked: true, opcode: Opcode.Close, data: encodeClosePayload(1001) }));
  const m = await within(readData(p.server), 'the server to read the peer\'s Close');
  t.is(m.opcode, Opcode.Close);
  await t.notThrowsAsync(within(sent, 'the compressed send'));
  await t.notThrowsAsync(within(closed, 'our Close'));
  const got = await within(readData(p.client), 'the client to read the message');
  t.is(got.opcode, Opcode.Binary);
  t.true(got.data.equals(data));
  const c = await within(readData(p.client), 'the client to read the Close');
  t.is(c.opcode, Opcode.Close);
});
