/**
 * Loopback socket pairs for the integration tests: two connected `net.Socket`s over
 * 127.0.0.1 (port 0, the listening server closed at once); the same wrapped as a client and a
 * server `AsyncSocket` (`asyncPair`, or `pair` with teardown); or one `AsyncSocket` facing a
 * raw peer (`rawPair`). Plus small tools for a raw peer: collect what it receives, parse the
 * frames it got, and read our end until it closes (`drain`).
 */
import net from 'node:net';
import { applyMask, AsyncSocket, AsyncSocketOptions, decodeHeader, makeFrame, Opcode, readData, Role } from '../../src';
import { newFrameHeader } from '../../src/core/frame';
import { until, within } from './wait';

// The bounded waits live in wait.ts (no src/ import there); re-exported for the tests here.
export { WAIT_MS, delay, until, within } from './wait';

/** What registers cleanup: an AVA `ExecutionContext`. */
export interface Teardown {
  teardown(fn: () => void): void;
}

/** Two connected TCP sockets over 127.0.0.1, with Nagle off. The server is already closed. */
export async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      }),
      'listen'
    );
    const { port } = server.address() as net.AddressInfo;
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const a = net.connect({ host: '127.0.0.1', port });
    const connected = new Promise<void>((resolve, reject) => {
      a.once('connect', resolve);
      a.once('error', reject);
    });
    try {
      const [, b] = await within(Promise.all([connected, accepted]), 'connect');
      a.setNoDelay(true);
      b.setNoDelay(true);
      return [a, b];
    } catch (err) {
      a.destroy();
      throw err;
    }
  } finally {
    server.close();
  }
}

/** Options for {@link asyncPair}: extra options for each side. */
export interface AsyncPairOptions {
  client?: Partial<AsyncSocketOptions>;
  server?: Partial<AsyncSocketOptions>;
}

/** A client and a server `AsyncSocket` connected over loopback, with their raw sockets. */
export interface AsyncPair {
  client: AsyncSocket;
  server: AsyncSocket;
  clientSocket: net.Socket;
  serverSocket: net.Socket;
  /** Destroys both sockets (for `t.teardown`). */
  destroy(): void;
}

/** A connected client/server pair of `AsyncSocket`s. */
export async function asyncPair(opts: AsyncPairOptions = {}): Promise<AsyncPair> {
  const [clientSocket, serverSocket] = await socketPair();
  const client = new AsyncSocket(clientSocket, { ...opts.client, role: 'client' });
  const server = new AsyncSocket(serverSocket, { ...opts.server, role: 'server' });
  return {
    client,
    server,
    clientSocket,
    serverSocket,
    destroy() {
      clientSocket.destroy();
      serverSocket.destroy();
    }
  };
}

/** {@link asyncPair}, with both sockets destroyed when the test ends. */
export async function pair(t: Teardown, opts: AsyncPairOptions = {}): Promise<AsyncPair> {
  const p = await asyncPair(opts);
  t.teardown(() => p.destroy());
  return p;
}

/** The masking key of the frames a raw client peer sends (RFC 6455 §5.7's example key). */
export const PEER_KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** One `AsyncSocket` of ours facing a raw peer socket, see {@link rawPair}. */
export interface RawPair {
  /** Our end. */
  ws: AsyncSocket;
  /** Our end's TCP socket. */
  ours: net.Socket;
  /** The peer's TCP socket: write raw bytes on it. */
  raw: net.Socket;
  /** Everything the peer receives. */
  peer: Collector;
  /** A frame as the peer sends it: masked with PEER_KEY when the peer is the client. */
  frame(opcode: number, data: string | Buffer, fin?: boolean): Buffer;
}

/**
 * Our `AsyncSocket` in `role` over loopback, facing a raw peer of the other role whose
 * bytes are collected; both sockets are destroyed when the test ends.
 */
export async function rawPair(t: Teardown, role: Role, options: Partial<AsyncSocketOptions> = {}): Promise<RawPair> {
  const [ours, raw] = await socketPair();
  t.teardown(() => {
    ours.destroy();
    raw.destroy();
  });
  const ws = new AsyncSocket(ours, { ...options, role });
  const peer = new Collector(raw);
  const masked = role === 'server';
  const frame = (opcode: number, data: string | Buffer, fin = true): Buffer =>
    makeFrame({ fin, rsv1: false, rsv2: false, rsv3: false, masked, opcode: opcode as Opcode, data: Buffer.from(data) }, PEER_KEY);
  return { ws, ours, raw, peer, frame };
}

/**
 * Reads `ws` (answering pings, as readData does) until the peer's Close, an error, or `max`
 * messages; resolves to 'close', the error, or 'too many'. Never rejects.
 */
export async function drain(ws: AsyncSocket, max = 100_000): Promise<unknown> {
  try {
    for (let i = 0; i < max; i++) if ((await readData(ws)).opcode === Opcode.Close) return 'close';
    return 'too many';
  } catch (err) {
    return err;
  }
}

/** Everything a raw socket receives, and whether it saw 'end' and 'close'. */
export class Collector {
  chunks: Buffer[] = [];
  ended = false;
  closed = false;
  readonly endPromise: Promise<void>;
  readonly closePromise: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    // Errors (a reset after we wrote to a closed peer, say) are expected in some tests.
    socket.on('error', () => {});
    this.endPromise = new Promise((resolve) =>
      socket.once('end', () => {
        this.ended = true;
        resolve();
      })
    );
    this.closePromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        resolve();
      })
    );
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Waits until at least `n` bytes arrived. */
  waitBytes(n: number): Promise<void> {
    return until(() => this.bytes.length >= n, `${n} bytes on the raw peer`);
  }

  /** Waits until at least `n` complete frames arrived; returns all complete frames. */
  async waitFrames(n: number): Promise<RawFrame[]> {
    await until(() => parseFrames(this.bytes, true).length >= n, `${n} frames on the raw peer`);
    return parseFrames(this.bytes, true);
  }

  /** Waits for the peer's FIN. */
  waitEnd(): Promise<void> {
    return within(this.endPromise, "the raw peer's 'end'");
  }

  /** Waits until the socket is closed. */
  waitClose(): Promise<void> {
    return within(this.closePromise, "the raw peer's 'close'");
  }
}

/** A frame as parsed from raw bytes, with its exact wire bytes. */
export interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  maskKey: Buffer | null;
  /** Unmasked payload. */
  data: Buffer;
  /** The frame's bytes exactly as received. */
  wire: Buffer;
}

/**
 * Parses every complete frame in `bytes` (no validation). A trailing partial frame throws,
 * or is left out when `allowPartial`.
 */
export function parseFrames(bytes: Buffer, allowPartial = false): RawFrame[] {
  const out: RawFrame[] = [];
  let off = 0;
  const h = newFrameHeader();
  while (off < bytes.length) {
    const missing = decodeHeader(bytes, off, bytes.length, h);
    const end = off + h.headerSize + h.length;
    if (missing !== 0 || end > bytes.length) {
      if (allowPartial) break;
      throw new Error(`partial frame at offset ${off}`);
    }
    const data = Buffer.from(bytes.subarray(off + h.headerSize, end));
    const maskKey = h.maskKey ? Buffer.from(h.maskKey) : null;
    if (maskKey) applyMask(data, maskKey);
    out.push({
      fin: h.fin,
      rsv: (bytes[off]! >> 4) & 7,
      opcode: h.opcode,
      masked: h.masked,
      maskKey,
      data,
      wire: bytes.subarray(off, end)
    });
    off = end;
  }
  return out;
}
