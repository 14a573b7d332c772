/**
 * Run by stalled-slab.test.ts in a process of its own (with --expose-gc), so the memory
 * figures are this scenario's alone: a server-side AsyncSocket whose peer reads nothing, its
 * kernel buffers full, is sent `N` rounds of small frames (mixed kinds, then 16-byte messages
 * only) while other traffic goes through Node's buffer pool and the frame slab in between;
 * then, on a connection behind by a little, the peer sends `30 N` empty Pings.
 * Prints one JSON line: per frame scenario, the bytes of `ArrayBuffer` memory each held frame
 * keeps alive beyond its own bytes, the heap each costs (Node's write queue entry, the chunk,
 * our promise), and how many of the chunks waiting in the socket are small views into a
 * larger buffer; for the Pings, the heap and buffers the Pongs owed cost, and their bytes.
 */
import { AsyncSocket, makeFrame, Opcode, readData, sendBinary, sendPing } from '../../src';
import { socketPair, until } from '../helpers/socket-pair';

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

// A server-side AsyncSocket whose peer (`client`, paused) reads nothing, with the kernel's
// buffers full: sends of `size` bytes until one is not taken at once (1 MiB ones leave much
// waiting, 1,000-byte ones a little).
async function stalled(size: number): Promise<{ client: import('node:net').Socket; ws: AsyncSocket }> {
  const [client, server] = await socketPair();
  client.pause(); // reads nothing
  const ws = new AsyncSocket(server, { role: 'server', sendTimeout: 0 });
  const chunk = Buffer.alloc(size);
  for (let i = 0; i < (64 << 20) / size && ws.socket.writableLength === 0; i++) {
    sendBinary(ws, chunk).catch(ignore);
    await turn();
  }
  if (ws.socket.writableLength === 0) throw new Error('the kernel took 64 MiB: cannot stall the socket');
  return { client, ws };
}

// One scenario on a fresh connection: `mixed` sends a 16 B message, a 2,000 B one and a 16 B
// Ping per round; otherwise only 16 B messages (what a broadcast of small messages gives).
async function scenario(mixed: boolean): Promise<Record<string, number>> {
  const { client, ws } = await stalled(1 << 20);
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
  ws.socket.destroy();
  return {
    frames: perRound * N,
    accounted,
    extraPerFrame: (held - unique) / (perRound * N),
    heapPerFrame: (after.heapUsed - before.heapUsed) / (perRound * N),
    chunks: chunks.length,
    pooled
  };
}

// The peer, reading nothing, sends `pings` empty Pings (6 bytes each, cheap to send; each owes
// a 2-byte Pong) while our read loop answers them: what the Pongs cost us.
async function pingFlood(pings: number): Promise<Record<string, number>> {
  const { client, ws } = await stalled(1000);
  const reading = (async (): Promise<void> => {
    for (;;) await readData(ws);
  })().catch(ignore);
  const ping = makeFrame(Opcode.Ping, Buffer.alloc(0), true);
  gc();
  gc();
  const before = process.memoryUsage();
  const unsentBefore = ws.unsentBytes;
  client.write(Buffer.concat(Array.from({ length: pings }, () => ping)));
  const ours = ws.socket as import('node:net').Socket;
  await until(() => ours.bytesRead >= pings * ping.length && ws.unreadBytes === 0, 'the pings to be read', 30_000);
  gc();
  gc();
  const after = process.memoryUsage();
  const state = (ws.socket as unknown as { _writableState: { getBuffer(): unknown[] } })._writableState;
  const figures = {
    pings,
    heap: after.heapUsed - before.heapUsed,
    buffers: after.arrayBuffers - before.arrayBuffers,
    unsent: ws.unsentBytes - unsentBefore,
    chunks: state.getBuffer().length
  };
  client.destroy();
  ws.socket.destroy();
  await reading;
  return figures;
}

async function main(): Promise<void> {
  const mixed = await scenario(true);
  const small = await scenario(false);
  const pongs = await pingFlood(30 * N);
  console.log(JSON.stringify({ mixed, small, pongs }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
