/**
 * Loopback socket pairs for the integration tests: two connected `net.Socket`s over
 * 127.0.0.1 (port 0, the listening server closed at once), or the same wrapped as a client
 * and a server `AsyncSocket`. Plus small tools for a raw peer: collect what it receives,
 * wait with a bound, and parse the frames it got.
 */
import net from 'node:net';
import { AsyncSocket, AsyncSocketOptions } from '../../src/async-socket';
import { decodeHeader, newFrameHeader } from '../../src/core/frame';
import { applyMask } from '../../src/core/mask';

/** Bound for anything a test waits on: generous, for a noisy 2-core machine. */
export const WAIT_MS = 5000;

/** Rejects when `p` takes longer than `ms` (the timer is cleared either way). */
export function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A pause of `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` every millisecond until it holds; rejects after `ms`. */
export async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(1);
  }
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
