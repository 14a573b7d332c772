/**
 * A send nobody awaits, to a peer that went away (issue 25, point 6): its rejection
 * (`IOError: socket is closed for writing`) was unhandled and ended the process, so every
 * fan-out loop needed a `.catch` to survive one client leaving. Now the rejection of a send
 * counts as handled when nobody awaits it; an awaited send still rejects, and the failure is
 * still seen by the connection's reader.
 */
import test from 'ava';
import { IOError, Opcode, readData, sendBinary, sendChain, sendClose, sendFragmented, sendFrame, sendPing, sendPong, sendText } from '../../src';
import { pair, within } from '../helpers/socket-pair';

test.serial('sends nobody awaits, of every kind, to a peer that went away: no unhandled rejection; awaited ones reject with IOError', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  for (const deflate of [false, true]) {
    const params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, threshold: 0 };
    const { client, server } = await pair(t, deflate ? { client: { deflate: params }, server: { deflate: params } } : {});
    const reading = readData(server).then(
      () => null,
      (e: unknown) => e
    );
    client.destroy();
    t.true((await within(reading, 'the reader to see the peer go')) instanceof IOError, 'the reader sees it');
    // Fan-out style: fire and forget, small and large, while the socket is going or gone.
    for (let i = 0; i < 50; i++) {
      void sendText(server, `m${i}`);
      void sendBinary(server, Buffer.alloc(i % 2 === 0 ? 10 : 200_000));
      void sendFrame(server, Opcode.Binary, Buffer.alloc(3));
    }
    void sendPing(server);
    void sendPong(server, 'p');
    void sendFragmented(server, Opcode.Text, 'abcdef', 2);
    void sendChain(server, Opcode.Binary, [Buffer.alloc(1), Buffer.alloc(2)]);
    void sendClose(server, 1000);
    void sendText(server, 'after the Close');
    // Awaited, a send still rejects.
    const err = await sendText(server, 'awaited').then(
      () => null,
      (e: unknown) => e
    );
    t.true(err instanceof IOError, String(err));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 50));
  }
  t.deepEqual(unhandled.map(String), []);
});
