// Streams on both ends: a server handler written with web streams (each message through a
// TransformStream), a WebSocketStream client, and pipeline() from a file to a socket.
// Run: npx ts-node examples/streams.ts
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WebSocketStream, connect, listen, toDuplex, toWebSocketStream } from '../src';

async function main(): Promise<void> {
  // The server: every text message comes back in capitals.
  const shout = await listen({ port: 0 }, async (ws) => {
    const { readable, writable } = await toWebSocketStream(ws).opened;
    const upper = new TransformStream<string | Uint8Array, string>({
      transform: (message, out) => out.enqueue(String(message).toUpperCase())
    });
    await readable.pipeThrough(upper).pipeTo(writable);
  });

  // The client, as in a browser.
  const wss = new WebSocketStream(`ws://127.0.0.1:${shout.port}/`);
  const { readable, writable } = await wss.opened;
  const writer = writable.getWriter();
  const reader = readable.getReader();
  await writer.write('hello, streams');
  console.log('web streams:', (await reader.read()).value);
  wss.close({ closeCode: 1000, reason: 'done' });
  console.log('closed:', await wss.closed);
  await shout.close();

  // A file to a socket: one binary message per chunk read; the server hashes what it gets.
  const dir = mkdtempSync(join(tmpdir(), 'wsframe-example-'));
  const file = join(dir, 'data.bin');
  writeFileSync(file, Buffer.alloc(4 << 20, 'wsframe '));
  let digest = '';
  const sink = await listen({ port: 0 }, async (ws) => {
    const hash = createHash('sha256');
    const hashing = new Writable({
      write(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done();
      }
    });
    await pipeline(toDuplex(ws), hashing);
    digest = hash.digest('hex');
  });
  await pipeline(createReadStream(file), toDuplex(await connect(`ws://127.0.0.1:${sink.port}/`)));
  await sink.close();
  const expected = createHash('sha256').update(Buffer.alloc(4 << 20, 'wsframe ')).digest('hex');
  console.log('pipeline: 4 MiB, hashes match:', digest === expected);
  rmSync(dir, { recursive: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
