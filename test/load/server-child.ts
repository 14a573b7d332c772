/**
 * The server side of the load tests: a `listen()` echo server in its own process (forked by
 * harness.ts from a transpiled copy, with --expose-gc), driven over IPC. Routes:
 *
 * - `/echo`: echoes every text and binary message with its type (as `wsframe echo-server`).
 * - `/push?id=X&size=N`: sends binary messages of N bytes (an 8-byte sequence header, then
 *   filler), awaiting each send as a real server loop does, until told to stop; then a text
 *   message `end:<count>` and the close handshake.
 * - `/hold?id=X`: reads nothing until released; then reads every message up to a text `done`,
 *   checking sequence numbers, and answers `ok:<count>:<bytes>:<sha256>`.
 *
 * Any route may carry `tag=…`: the handler's error is recorded under it. `count=1` makes the
 * server count the 'data' events (TCP chunks) of the connection.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import {
  AsyncSocket,
  ListenOptions,
  Opcode,
  ProtocolError,
  WebSocketError,
  listen,
  readData,
  sendBinary,
  sendText,
  whenClosed
} from '../../src/index';

/** A request from the test process, and the answer. */
export interface Rpc {
  id: number;
  cmd: 'mem' | 'stats' | 'release' | 'stop' | 'errors' | 'close';
  arg?: string;
  gc?: boolean;
}

/** What `mem` answers: `process.memoryUsage()` after (optionally) collecting garbage. */
export interface MemSample {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  clients: number;
  unhandled: number;
  /** Longest event-loop delay seen since start, in ms. */
  maxLoopDelayMs: number;
}

/** Per-connection figures of the `/push`, `/hold` and counted routes. */
export interface ConnStats {
  /** Messages sent (push) or read (hold). */
  messages: number;
  bytes: number;
  /** The socket's unflushed write buffer (push). */
  writableLength: number;
  /** Bytes received and not yet read by the frame layer. */
  unreadBytes: number;
  /** Bytes in the stream's own readable buffer (not yet handed to the AsyncSocket). */
  readableLength: number;
  /** 'data' events seen and their bytes (with `count=1`). */
  chunks: number;
  chunkBytes: number;
  done: boolean;
}

/** A handler error, as recorded. */
export interface ErrorRecord {
  tag: string;
  name: string;
  /** True for a ProtocolError (or a subclass: InvalidUtf8Error, PayloadTooBigError). */
  protocolError: boolean;
  closeCode?: number;
  code?: string;
  message: string;
}

const stats = new Map<string, ConnStats & { ws: AsyncSocket }>();
const releases = new Map<string, () => void>();
const stops = new Set<string>();
const errors: ErrorRecord[] = [];
let unhandled = 0;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

process.on('unhandledRejection', (err) => {
  unhandled++;
  console.error('server-child: unhandled rejection:', err);
});

function params(req: IncomingMessage): URL {
  return new URL(req.url ?? '/', 'ws://x');
}

function track(id: string, ws: AsyncSocket): ConnStats & { ws: AsyncSocket } {
  const s = {
    ws,
    messages: 0,
    bytes: 0,
    writableLength: 0,
    unreadBytes: 0,
    readableLength: 0,
    chunks: 0,
    chunkBytes: 0,
    done: false
  };
  stats.set(id, s);
  return s;
}

async function echo(ws: AsyncSocket): Promise<void> {
  for (;;) {
    const { opcode, data } = await readData(ws);
    if (opcode === Opcode.Text) await sendText(ws, data.toString('utf8'));
    else if (opcode === Opcode.Binary) await sendBinary(ws, data);
    else if (opcode === Opcode.Close) break;
  }
  await whenClosed(ws);
}

async function push(ws: AsyncSocket, id: string, size: number): Promise<void> {
  const s = stats.get(id)!;
  const filler = Buffer.alloc(size, 0x5a);
  // Bounded even if the test never says stop: at most 100k messages.
  for (let seq = 0; !stops.has(id) && seq < 100_000; seq++) {
    const m = Buffer.from(filler);
    m.writeUInt32BE(seq, 0);
    m.writeUInt32BE(size, 4);
    await sendBinary(ws, m);
    s.messages++;
    s.bytes += size;
  }
  await sendText(ws, `end:${s.messages}`);
  s.done = true;
  await echo(ws); // until the client's Close
}

async function hold(ws: AsyncSocket, id: string): Promise<void> {
  const s = stats.get(id)!;
  await new Promise<void>((resolve) => releases.set(id, resolve));
  const hash = createHash('sha256');
  for (;;) {
    const { opcode, data } = await readData(ws);
    if (opcode === Opcode.Text && data.toString() === 'done') break;
    if (opcode !== Opcode.Binary) throw new Error(`hold: unexpected opcode ${opcode}`);
    const seq = data.readUInt32BE(0);
    if (seq !== s.messages) throw new Error(`hold: message ${seq} arrived where ${s.messages} was expected`);
    hash.update(data);
    s.messages++;
    s.bytes += data.length;
  }
  s.done = true;
  await sendText(ws, `ok:${s.messages}:${s.bytes}:${hash.digest('hex')}`);
  await echo(ws);
}

function refresh(s: ConnStats & { ws: AsyncSocket }): ConnStats {
  const { ws, ...rest } = s;
  return {
    ...rest,
    writableLength: ws.socket.writableLength,
    unreadBytes: ws.unreadBytes,
    readableLength: ws.socket.readableLength
  };
}

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('server-child needs --expose-gc');
  for (let i = 0; i < 3; i++) gc();
}

async function main(): Promise<void> {
  const options = JSON.parse(process.env.WSFRAME_LOAD_OPTIONS ?? '{}') as ListenOptions;
  const server = await listen(
    {
      ...options,
      host: '127.0.0.1',
      port: 0,
      onError(err, ws) {
        const tag = (ws as AsyncSocket & { tag?: string }).tag ?? '';
        const e = err as Partial<ProtocolError> & Error;
        errors.push({ tag, name: e.name, protocolError: err instanceof ProtocolError, closeCode: e.closeCode, code: e.code, message: e.message });
        if (!(err instanceof WebSocketError)) console.error('server-child: handler failed:', err);
      }
    },
    async (ws, req) => {
      const url = params(req);
      const id = url.searchParams.get('id') ?? '';
      (ws as AsyncSocket & { tag?: string }).tag = url.searchParams.get('tag') ?? url.pathname;
      if (url.searchParams.get('count') === '1') {
        const s = track(id, ws);
        ws.socket.on('data', (chunk: Buffer) => {
          s.chunks++;
          s.chunkBytes += chunk.length;
        });
      }
      if (url.pathname === '/push') {
        track(id, ws);
        await push(ws, id, Number(url.searchParams.get('size') ?? 65536));
      } else if (url.pathname === '/hold') {
        track(id, ws);
        await hold(ws, id);
      } else {
        await echo(ws);
      }
    }
  );

  const answer = (id: number, result: unknown): void => {
    process.send!({ id, result });
  };
  process.on('message', (rpc: Rpc) => {
    switch (rpc.cmd) {
      case 'mem': {
        if (rpc.gc) gcNow();
        const m = process.memoryUsage();
        const sample: MemSample = {
          rss: m.rss,
          heapUsed: m.heapUsed,
          external: m.external,
          arrayBuffers: m.arrayBuffers,
          clients: server.clients.size,
          unhandled,
          maxLoopDelayMs: loopDelay.max / 1e6
        };
        answer(rpc.id, sample);
        break;
      }
      case 'stats': {
        const out: Record<string, ConnStats> = {};
        for (const [k, s] of stats) if (rpc.arg === undefined || k.startsWith(rpc.arg)) out[k] = refresh(s);
        answer(rpc.id, out);
        break;
      }
      case 'release':
        for (const [k, release] of releases) if (rpc.arg === undefined || k.startsWith(rpc.arg)) release();
        answer(rpc.id, null);
        break;
      case 'stop':
        for (const k of stats.keys()) if (rpc.arg === undefined || k.startsWith(rpc.arg)) stops.add(k);
        answer(rpc.id, null);
        break;
      case 'errors':
        answer(rpc.id, errors);
        break;
      case 'close':
        server.close().then(
          () => {
            answer(rpc.id, { unhandled, heapUsed: v8.getHeapStatistics().used_heap_size });
          },
          (err) => answer(rpc.id, { error: String(err) })
        );
        break;
    }
  });
  // The test process went away (or is done): nothing to serve any more.
  process.once('disconnect', () => setTimeout(() => process.exit(0), 200).unref());
  process.send!({ ready: server.port });
}

main().catch((err) => {
  console.error('server-child failed to start:', err);
  process.exit(1);
});
