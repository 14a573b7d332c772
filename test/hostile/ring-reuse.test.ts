/**
 * Masked frames of 16 KiB and more are built in a ring of the WebAssembly kernel's memory,
 * and a region is reused once its write completed. A Duplex that completes writes at once but
 * keeps the chunk (an in-memory pair hands it on as it is) must not see later frames
 * overwrite earlier ones (issue 11, finding 5: 2 of 3 messages arrived corrupted).
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { Duplex } from 'node:stream';
import { AsyncSocket, Opcode, readData, sendBinary } from '../../src';

// Two ends of an in-memory connection: what one end writes is pushed, without a copy, to the
// other end's readable side, and the write completes at once.
function memoryPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const end = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        peer().push(chunk);
        callback();
      }
    });
  ends.push(end(() => ends[1]!), end(() => ends[0]!));
  return [ends[0]!, ends[1]!];
}

const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('masked frames sent over an in-memory Duplex arrive intact, one after another', async (t) => {
  const [a, b] = memoryPair();
  // The receiver only reads once every frame was sent, so each chunk is held meanwhile.
  const client = new AsyncSocket(a, { role: 'client' });
  const server = new AsyncSocket(b, { role: 'server' });
  const sizes = [16 * 1024, 64 * 1024, 200 * 1024, 16 * 1024, 1024 * 1024];
  const sent = sizes.map((n, i) => Buffer.alloc(n, i + 1));
  for (const payload of sent) await sendBinary(client, payload);
  let intact = 0;
  for (const payload of sent) {
    const m = await readData(server);
    if (m.opcode === Opcode.Binary && digest(m.data) === digest(payload)) intact++;
  }
  t.log(`${intact} of ${sent.length} messages intact`);
  t.is(intact, sent.length);
});
