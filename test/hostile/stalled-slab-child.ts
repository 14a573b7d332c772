/**
 * Run by stalled-slab.test.ts in a process of its own (with --expose-gc), so the memory
 * figures are this scenario's alone: a server-side AsyncSocket whose peer reads nothing, its
 * kernel buffers full, is sent `N` small frames of each kind while other traffic goes through
 * Node's buffer pool and the frame slab in between. Prints one JSON line: the bytes of
 * `ArrayBuffer` memory each held frame keeps alive beyond its own bytes, the heap each costs
 * (Node's write queue entry, the chunk, our promise), and how many of the chunks waiting in
 * the socket are small views into a larger buffer.
 */
import { AsyncSocket } from '../../src/async-socket';
import { Opcode } from '../../src/core/constants';
import { makeFrame } from '../../src/core/frame';
import { sendBinary, sendPing } from '../../src/send';
import { socketPair } from '../helpers/socket-pair';

const gc = (globalThis as { gc?: () => void }).gc!;
const N = Number(process.argv[2] ?? 1000);
const ignore = (): void => {};
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// Other connections' traffic: small buffers from Node's pool and from the frame slab.
function otherTraffic(): number {
  let sum = 0;
  for (let j = 0; j < 8; j++) sum += Buffer.allocUnsafe(1000).length + makeFrame(Opcode.Binary, Buffer.alloc(1000), false).length;
  return sum;
}

async function main(): Promise<void> {
  const [client, server] = await socketPair();
  client.pause(); // reads nothing
  const ws = new AsyncSocket(server, { role: 'server', sendTimeout: 0 });
  for (let i = 0; i < 64 && ws.socket.writableLength === 0; i++) {
    sendBinary(ws, Buffer.alloc(1 << 20)).catch(ignore);
    await turn();
  }
  if (ws.socket.writableLength === 0) throw new Error('the kernel took 64 MiB: cannot stall the socket');
  const small = Buffer.from('0123456789abcdef'); // 16 B: a frame of its own, held until the peer reads
  const medium = Buffer.alloc(2000, 7); // by reference behind a small header
  gc();
  gc();
  const before = process.memoryUsage();
  const unsentBefore = ws.socket.writableLength;
  for (let i = 0; i < N; i++) {
    sendBinary(ws, small).catch(ignore);
    otherTraffic();
    sendBinary(ws, medium).catch(ignore);
    otherTraffic();
    sendPing(ws, undefined, small).catch(ignore);
    otherTraffic();
    await turn();
  }
  gc();
  gc();
  const after = process.memoryUsage();
  const held = after.arrayBuffers - before.arrayBuffers;
  const heapPerFrame = (after.heapUsed - before.heapUsed) / (3 * N);
  const accounted = ws.socket.writableLength - unsentBefore;
  // What waits in the socket: the chunks Node holds for it.
  const state = (ws.socket as unknown as { _writableState: { getBuffer(): { chunk: Uint8Array }[] } })._writableState;
  const chunks = state.getBuffer().map((e) => e.chunk);
  const pooled = chunks.filter((c) => c.byteLength <= 4096 && c.buffer.byteLength > 2 * c.byteLength).length;
  // The 2,000-byte payload is one buffer shared by every frame: count it once.
  const extraPerFrame = (held - (accounted - N * medium.length)) / (3 * N);
  console.log(JSON.stringify({ frames: 3 * N, accounted, held, extraPerFrame, heapPerFrame, chunks: chunks.length, pooled }));
  client.destroy();
  server.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
