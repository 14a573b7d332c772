/**
 * Run by stalled-slab.test.ts in a process of its own (with --expose-gc), so the memory
 * figures are this scenario's alone: a server-side AsyncSocket whose peer reads nothing, its
 * kernel buffers full, is sent `N` rounds of small frames (mixed kinds, then 16-byte messages
 * only) while other traffic goes through Node's buffer pool and the frame slab in between.
 * Prints one JSON line, per scenario: the bytes of
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

// One scenario on a fresh connection: `mixed` sends a 16 B message, a 2,000 B one and a 16 B
// Ping per round; otherwise only 16 B messages (what a broadcast of small messages gives).
async function scenario(mixed: boolean): Promise<Record<string, number>> {
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
  const perRound = mixed ? 3 : 1;
  gc();
  gc();
  const before = process.memoryUsage();
  const unsentBefore = ws.unsentBytes;
  for (let i = 0; i < N; i++) {
    sendBinary(ws, small).catch(ignore);
    otherTraffic();
    if (mixed) {
      sendBinary(ws, medium).catch(ignore);
      otherTraffic();
      sendPing(ws, undefined, small).catch(ignore);
      otherTraffic();
    }
    await turn();
  }
  gc();
  gc();
  const after = process.memoryUsage();
  const held = after.arrayBuffers - before.arrayBuffers;
  const accounted = ws.unsentBytes - unsentBefore;
  // What waits in the socket: the chunks Node holds for it.
  const state = (ws.socket as unknown as { _writableState: { getBuffer(): { chunk: Uint8Array }[] } })._writableState;
  const chunks = state.getBuffer().map((e) => e.chunk);
  const pooled = chunks.filter((c) => c.byteLength > 0 && c.byteLength <= 4096 && c.buffer.byteLength > 2 * c.byteLength).length;
  // The 2,000-byte payload is one buffer shared by every frame: count it once.
  const unique = accounted - (mixed ? N * medium.length : 0);
  client.destroy();
  server.destroy();
  return {
    frames: perRound * N,
    accounted,
    extraPerFrame: (held - unique) / (perRound * N),
    heapPerFrame: (after.heapUsed - before.heapUsed) / (perRound * N),
    chunks: chunks.length,
    pooled
  };
}

async function main(): Promise<void> {
  const mixed = await scenario(true);
  const small = await scenario(false);
  console.log(JSON.stringify({ mixed, small }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
