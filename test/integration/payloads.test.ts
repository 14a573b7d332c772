/**
 * Payloads of every length class round-trip intact between our client and our server
 * (masked client to server, unmasked back), compared by SHA-256; the caller's buffers are
 * never modified by a masked send.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { Opcode, readData, sendBinary, sendFragmented, sendText } from '../../src';
import { pair, within } from '../helpers/socket-pair';
import { sha } from '../helpers/bytes';

const MiB = 1024 * 1024;
const sizes = [0, 1, 125, 126, 127, 65535, 65536, 65537, MiB, 8 * MiB];

for (const size of sizes) {
  test(`binary of ${size} bytes: client → server (masked) → client (unmasked)`, async (t) => {
    const p = await pair(t);
    const data = randomBytes(size);
    const before = sha(data);
    const [, atServer] = await within(Promise.all([sendBinary(p.client, data), readData(p.server)]), 'client to server');
    t.is(atServer.opcode, Opcode.Binary);
    t.is(atServer.data.length, size);
    t.is(sha(atServer.data), before);
    t.is(sha(data), before, "the caller's buffer is not masked in place");

    const [, atClient] = await within(Promise.all([sendBinary(p.server, atServer.data), readData(p.client)]), 'server to client');
    t.is(atClient.opcode, Opcode.Binary);
    t.is(atClient.data.length, size);
    t.is(sha(atClient.data), before);
  });
}

for (const size of [0, 125, 126, 65536, MiB]) {
  test(`text of ${size} bytes with multi-byte characters round-trips`, async (t) => {
    const p = await pair(t);
    // 'aé€😀' is 1 + 2 + 3 + 4 = 10 bytes; pad with ASCII to the exact size.
    const text = 'aé€😀'.repeat(Math.floor(size / 10)) + 'z'.repeat(size % 10);
    t.is(Buffer.byteLength(text), size);
    const [, atServer] = await within(Promise.all([sendText(p.client, text), readData(p.server)]), 'client to server');
    t.is(atServer.opcode, Opcode.Text);
    t.is(atServer.data.toString(), text);
    const [, atClient] = await within(Promise.all([sendText(p.server, text), readData(p.client)]), 'server to client');
    t.is(atClient.data.toString(), text);
  });
}

test('8 MiB in fragments of odd sizes, both directions', async (t) => {
  const p = await pair(t);
  const data = randomBytes(8 * MiB);
  const [, atServer] = await within(
    Promise.all([sendFragmented(p.client, Opcode.Binary, data, 100_003), readData(p.server)]),
    'client to server'
  );
  t.is(sha(atServer.data), sha(data));
  const [, atClient] = await within(
    Promise.all([sendFragmented(p.server, Opcode.Binary, data, 65_537), readData(p.client)]),
    'server to client'
  );
  t.is(sha(atClient.data), sha(data));
});
