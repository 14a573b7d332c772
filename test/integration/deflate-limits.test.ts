/**
 * What a peer's compressed frames can make permessage-deflate (RFC 7692) hold: a frame packed
 * with empty BFINAL streams fails fast (1008) instead of holding one of the process's
 * DEFLATE_CONCURRENCY zlib slots for seconds, and a frame that fails to inflate (1009, 1007)
 * is not kept alive by the decompressor.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { AsyncSocketOptions, DEFLATE_CONCURRENCY, DeflateSettings, PerMessageDeflate, ProtocolError, readData, sendText } from '../../src';
import { pair, within } from '../helpers/socket-pair';

const DEFLATE: DeflateSettings = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  threshold: 0
};
const WITH_DEFLATE: Partial<AsyncSocketOptions> = { deflate: DEFLATE };

test.serial('frames packed with empty BFINAL deflate streams fail fast instead of holding every zlib slot', async (t) => {
  // "03 00" is a whole deflate stream: one empty fixed-Huffman block with BFINAL set. Each one
  // costs a new zlib stream and a thread-pool trip, and a frame of them held its zlib slot for
  // seconds (minutes at 16 MiB), so DEFLATE_CONCURRENCY such frames stalled every connection.
  const streams = Buffer.alloc(2 * 100_000);
  for (let i = 0; i < streams.length; i += 2) streams[i] = 0x03;
  const hogs = Array.from({ length: DEFLATE_CONCURRENCY }, () => new PerMessageDeflate(DEFLATE, false));
  t.teardown(() => hogs.forEach((d) => d.close()));
  const bombs = hogs.map((d) => d.inflate(streams, true, true, 1 << 20));
  bombs.forEach((b) => b.catch(() => {}));
  const p = await pair(t, { client: WITH_DEFLATE, server: WITH_DEFLATE });
  const m = await within(
    sendText(p.client, 'Hello').then(() => readData(p.server)),
    'a compressed Hello on another connection',
    2000
  );
  t.is(m.data.toString(), 'Hello');
  for (const b of bombs) {
    const err = await within(b.then(() => null, (e: unknown) => e), 'a packed frame to fail', 2000);
    t.true(err instanceof ProtocolError, String(err));
    t.is((err as ProtocolError).closeCode, 1008);
  }
  // The §7.2.3.4 shape still inflates: a BFINAL stream, then the rest in a new one, in one frame.
  const d = new PerMessageDeflate(DEFLATE, false);
  t.teardown(() => d.close());
  const hello = Buffer.from('f348cdc9c90700', 'hex');
  const out = await within(d.inflate(Buffer.concat([hello, Buffer.from('00', 'hex')]), true, true, 100), 'two streams');
  t.is(out.toString(), 'Hello');
});

test('a frame that fails to inflate is not kept alive by the decompressor', async (t) => {
  // The payload is a view of the socket's receive chunk (up to maxFrameSize): a failed
  // inflation must let it go, as a successful one does, even while the connection object lives on.
  const pinned = (d: PerMessageDeflate): number => (d as unknown as { inflateInput: Buffer }).inflateInput.length;
  const big = deflateRawSync(randomBytes(1 << 20), { level: 0, finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const tooBig = new PerMessageDeflate(DEFLATE, false);
  t.teardown(() => tooBig.close());
  await t.throwsAsync(within(tooBig.inflate(big.subarray(0, big.length - 4), true, true, 1024), 'a too-big frame'), { instanceOf: ProtocolError });
  t.is(pinned(tooBig), 0, 'after 1009');
  const invalid = new PerMessageDeflate(DEFLATE, false);
  t.teardown(() => invalid.close());
  const garbage = Buffer.concat([Buffer.from([0xff, 0xff]), randomBytes(1 << 20)]);
  await t.throwsAsync(within(invalid.inflate(garbage, true, true, 1 << 30), 'an invalid frame'), { instanceOf: ProtocolError });
  t.is(pinned(invalid), 0, 'after 1007');
});
