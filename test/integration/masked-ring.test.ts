/**
 * Large masked sends built in the SIMD kernel's ring: many in flight at once on several
 * sockets, one peer not reading (its frames hold the ring), and still every payload arrives
 * intact, and the caller's buffers are never modified.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { Opcode, readData, sendBinary } from '../../src';
import { delay, pair, within } from '../helpers/socket-pair';

const hash = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('concurrent large masked sends on several sockets arrive intact', async (t) => {
  const pairs = await Promise.all([0, 1, 2, 3].map(() => pair(t)));
  // A fifth client whose peer does not read: its frames stay in flight, holding the ring.
  const stuck = await pair(t);
  stuck.serverSocket.pause();
  const stuckSends = Array.from({ length: 8 }, () => sendBinary(stuck.client, randomBytes(512 * 1024)));
  stuckSends.forEach((p) => p.catch(() => undefined));
  await delay(20);

  await Promise.all(
    pairs.map(async ({ client, server }, k) => {
      const payloads = Array.from({ length: 20 }, (_, i) => randomBytes(16 * 1024 + ((i * 7919 + k * 104729) % (600 * 1024))));
      const copies = payloads.map((p) => Buffer.from(p));
      const reading = (async () => {
        const got: string[] = [];
        for (let i = 0; i < payloads.length; i++) {
          const m = await readData(server);
          t.is(m.opcode, Opcode.Binary);
          got.push(hash(m.data));
        }
        return got;
      })();
      const sends = payloads.map((p) => sendBinary(client, p)); // all in flight at once
      await within(Promise.all(sends), `pair ${k} sends`, 20_000);
      t.deepEqual(await within(reading, `pair ${k} reads`, 20_000), payloads.map(hash));
      payloads.forEach((p, i) => t.true(p.equals(copies[i]!), 'the caller buffer is unchanged'));
    })
  );
  // The stuck peer reads at last: its frames are intact too.
  stuck.serverSocket.resume();
  for (let i = 0; i < 8; i++) t.is((await within(readData(stuck.server), 'stuck frames', 20_000)).data.length, 512 * 1024);
});
