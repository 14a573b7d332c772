/**
 * Broadcasting small messages to clients that stopped reading (issue 24, finding 3): 20-byte
 * broadcasts to 20 stalled clients with the default policy held 5,763 KiB per stalled
 * connection (4,726 KiB of it heap) while each reported 1 MiB unsent: each message that
 * joined a stalled connection's backlog hung reactions on the backlog's shared promise until
 * the connection was dropped, and `maxBackpressure` counts bytes only. Bound: a broadcast
 * hangs nothing per message on a connection's sends (one watch per shared promise), so what a
 * stalled connection holds is its unsent bytes. The server runs in a child process.
 */
import test from 'ava';
import { AsyncSocket, connect } from '../../src/index';
import { DEFAULT_MAX_BACKPRESSURE } from '../../src/server/options';
import { startChild } from './harness';
import type { ChildMemory } from './server-child';

const KiB = 1024;
const CLIENTS = 20;
const SIZE = 20;
// The bound: held per stalled connection, beyond what it cost before the broadcasts, with
// maxBackpressure at its default (1 MiB): its unsent bytes, plus room for one backlog chunk,
// what its socket's buffers cost, and (with compression) the sends that waited in its queue
// while a compressed one was being made (each counted against maxBackpressure with its cost).
const PER_CONNECTION = DEFAULT_MAX_BACKPRESSURE + 768 * KiB;

for (const deflate of [false, true]) {
  test.serial(
    `${SIZE}-byte broadcasts to ${CLIENTS} clients that stopped reading${deflate ? ', with permessage-deflate and a compressed broadcast stuck ahead' : ''}: ` +
      `each holds under ${PER_CONNECTION / KiB} KiB when it is closed at maxBackpressure`,
    async (t) => {
      t.timeout(120_000);
      const child = await startChild(t, { options: { host: '127.0.0.1', port: 0, perMessageDeflate: deflate } }, ['--expose-gc']);
      const mem = (): Promise<ChildMemory> => {
        const m = child.next<ChildMemory>('mem', 'the server child to report its memory', 30_000);
        child.send('mem');
        return m;
      };
      const broadcast = async (cmd: string): Promise<number[]> => {
        const done = child.next('broadcasted', 'the broadcasts', 60_000);
        child.send(cmd);
        await done;
        const u = child.next<number[]>('unsent', 'the unsent bytes', 10_000);
        child.send('unsent');
        return u;
      };
      const clients: AsyncSocket[] = [];
      t.teardown(() => clients.forEach((w) => w.destroy()));
      // Clients that never read: each stops taking bytes once its buffers are full.
      for (let i = 0; i < CLIENTS; i++) clients.push(await connect(`ws://127.0.0.1:${child.port}/`, { perMessageDeflate: deflate }));
      const before = await mem();
      let unsent: number[] = [];
      let rounds = 0;
      // Until every connection is over maxBackpressure (its Close queued: negative), bounded;
      // with compression, one broadcast that compresses (2 KiB, over the threshold) once the
      // clients are behind, so it waits in their sockets ahead of the small ones.
      let stuck = !deflate;
      for (; rounds < 40; rounds++) {
        unsent = await broadcast(`broadcast 20000 ${SIZE}`);
        if (!stuck && unsent.every((n) => n !== 0)) {
          await broadcast('broadcast 1 2048 random');
          stuck = true;
        }
        if (unsent.length === CLIENTS && unsent.every((n) => n < 0)) break;
      }
      // The broadcasts this test did not await settle within broadcastWait (100 ms): what
      // they hold is the test's, not the connections'.
      await new Promise((r) => setTimeout(r, 500));
      const m = await mem();
      const per = (m.heapUsed + m.external - before.heapUsed - before.external) / CLIENTS;
      const perHeap = (m.heapUsed - before.heapUsed) / CLIENTS;
      const reported = unsent.reduce((a, n) => a + Math.abs(n), 0) / CLIENTS;
      t.log(
        `${rounds + 1} rounds of 20,000 broadcasts: ${(per / KiB).toFixed(0)} KiB held per stalled connection (${(perHeap / KiB).toFixed(0)} KiB heap), ` +
          `${(reported / KiB).toFixed(0)} KiB unsent reported each`
      );
      t.true(stuck);
      t.true(unsent.every((n) => n < 0), `every connection was closed at maxBackpressure: ${JSON.stringify(unsent)}`);
      t.true(per < PER_CONNECTION, `${(per / KiB).toFixed(0)} KiB per connection`);
    }
  );
}
