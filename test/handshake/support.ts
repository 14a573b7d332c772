/**
 * Shared tools for the handshake tests: an `http.Server` whose 'upgrade' handler calls
 * `upgrade()` and queues each outcome, a raw TCP client that sends hand-written requests, and
 * raw TCP servers that answer with hand-written responses. Everything listens on 127.0.0.1
 * port 0 and is torn down with the test.
 */
import type { ExecutionContext } from 'ava';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptKey, AsyncSocket, Opcode, readData, sendBinary, sendText, upgrade, UpgradeOptions } from '../../src';
import { HttpHead, readHttpHead } from '../helpers/upgrade';
import { WAIT_MS, within } from '../helpers/socket-pair';

/** A good request key and its accept value (RFC 6455 §1.3). */
export const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** What one call of `upgrade()` on the server gave. */
export type Outcome = { ws: AsyncSocket; err?: undefined; req: http.IncomingMessage } | { ws?: undefined; err: unknown; req: http.IncomingMessage };

/** An unbounded queue: `push` values, `next()` waits (bounded) for the next one. */
export class Queue<T> {
  private items: T[] = [];
  private waiters: ((v: T) => void)[] = [];

  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }

  next(what = 'the next item', ms = WAIT_MS): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift()!);
    return within(new Promise<T>((resolve) => this.waiters.push(resolve)), what, ms);
  }

  get length(): number {
    return this.items.length;
  }
}

/** Destroys every socket `server` accepted, then closes it (for `t.teardown`). */
export function track(t: ExecutionContext, server: net.Server): void {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  // TLS servers hand out TLSSockets on 'secureConnection'; destroying the raw one ends both.
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        if (!server.listening) return resolve();
        server.close(() => resolve());
      })
  );
}

/** Listens on `host` (default 127.0.0.1), port 0; returns the port. */
export async function listenOn(server: net.Server, host = '127.0.0.1'): Promise<number> {
  await within(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => {
        server.off('error', reject);
        resolve();
      });
    }),
    `listen on ${host}`
  );
  return (server.address() as net.AddressInfo).port;
}

/** A `node:http` (or given) server whose 'upgrade' handler calls `upgrade()` and queues the outcome. */
export interface UpgradeServer {
  server: http.Server | https.Server;
  port: number;
  outcomes: Queue<Outcome>;
  /** The next outcome that is a socket (fails the test otherwise). */
  nextSocket(): Promise<AsyncSocket>;
}

export async function upgradeServer(
  t: ExecutionContext,
  options: UpgradeOptions = {},
  server: http.Server | https.Server = http.createServer((_req, res) => res.writeHead(426).end())
): Promise<UpgradeServer> {
  const outcomes = new Queue<Outcome>();
  const sockets: AsyncSocket[] = [];
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrade(req, socket, head, options).then(
      (ws) => {
        sockets.push(ws);
        outcomes.push({ ws, req });
      },
      (err: unknown) => outcomes.push({ err, req })
    );
  });
  track(t, server);
  t.teardown(() => sockets.forEach((ws) => ws.destroy()));
  const port = await listenOn(server);
  return {
    server,
    port,
    outcomes,
    async nextSocket() {
      const o = await outcomes.next('upgrade() to settle');
      if (o.err !== undefined) throw o.err;
      return o.ws!;
    }
  };
}

/** An HTTP response as read off a raw socket. */
export interface RawResponse {
  statusLine: string;
  status: number;
  /** Header names lower-cased; repeated headers keep the last value. */
  headers: Record<string, string>;
  /** Every header line as sent, for exact checks. */
  lines: string[];
  /** Bytes after the blank line. */
  rest: Buffer;
}

/** Splits raw bytes into an HTTP response head and what follows. */
export function parseResponse(bytes: Buffer): RawResponse {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete HTTP head in ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`);
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { statusLine: statusLine!, status: Number(statusLine!.split(' ')[1]), headers, lines, rest: bytes.subarray(end + 4) };
}

/** A raw TCP client that sends bytes and collects everything until the server closes. */
export class RawClient {
  readonly socket: net.Socket;
  readonly chunks: Buffer[] = [];
  readonly closed: Promise<void>;
  readonly connected: Promise<void>;
  isClosed = false;

  constructor(t: ExecutionContext, port: number, host = '127.0.0.1') {
    this.socket = net.connect({ host, port });
    t.teardown(() => this.socket.destroy());
    this.socket.on('data', (c: Buffer) => this.chunks.push(c));
    this.socket.on('error', () => {}); // resets are part of some tests
    this.connected = within(new Promise<void>((resolve) => this.socket.once('connect', resolve)), 'connect');
    this.closed = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.isClosed = true;
        resolve();
      })
    );
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Waits until a whole HTTP head arrived and returns it. */
  async response(): Promise<RawResponse> {
    const deadline = Date.now() + WAIT_MS;
    while (this.bytes.indexOf('\r\n\r\n') < 0) {
      if (Date.now() > deadline || this.isClosed) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    return parseResponse(this.bytes);
  }

  /** Waits until the server closed the connection. */
  waitClosed(): Promise<void> {
    return within(this.closed, 'the server to close the connection');
  }
}

/** Sends `request` in one write and returns the whole response once the server closed. */
export async function exchange(t: ExecutionContext, port: number, request: string | Buffer): Promise<RawResponse> {
  const c = new RawClient(t, port);
  await c.connected;
  c.socket.write(request);
  await c.waitClosed();
  return parseResponse(c.bytes);
}

/** A hand-written upgrade request (CRLF line ends added), from `GET path HTTP/1.1` and header lines. */
export function request(lines: readonly string[], startLine = 'GET / HTTP/1.1'): string {
  return [startLine, 'Host: 127.0.0.1', ...lines, '', ''].join('\r\n');
}

/** The header lines of a valid request with {@link KEY}. */
export const GOOD = ['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13'];

/**
 * A raw TCP server: for each connection it reads the HTTP request head and calls `respond`
 * (which writes whatever it likes). Requests are queued for inspection.
 */
export async function rawServer(
  t: ExecutionContext,
  respond: (socket: net.Socket, req: HttpHead) => void
): Promise<{ port: number; requests: Queue<HttpHead>; server: net.Server }> {
  const requests = new Queue<HttpHead>();
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    readHttpHead(socket).then(
      (req) => {
        requests.push(req);
        respond(socket, req);
      },
      () => socket.destroy()
    );
  });
  track(t, server);
  return { port: await listenOn(server), requests, server };
}

/** Writes a correct 101 for `req` (plus extra header lines, plus bytes in the same write). */
export function write101(socket: net.Socket, req: HttpHead, extra: readonly string[] = [], after: Buffer = Buffer.alloc(0)): void {
  const key = req.headers['sec-websocket-key'] ?? '';
  const head = [
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${acceptKey(key)}`,
    ...extra,
    '',
    ''
  ].join('\r\n');
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), after]));
}

/** The path and query of a request's start line ("GET /x?y HTTP/1.1" → "/x?y"). */
export function target(req: HttpHead): string {
  return req.startLine.split(' ')[1]!;
}

/** Resumes a raw server-side socket and waits (bounded) until the client has closed it. */
export function closedByPeer(socket: net.Socket, what = 'the client to close its socket'): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.resume();
  return within(closed, what);
}

/** Echoes Text and Binary messages with their type until the peer's Close (which readData answers). */
export async function echo(ws: AsyncSocket): Promise<void> {
  for (;;) {
    const m = await readData(ws);
    if (m.opcode === Opcode.Text) await sendText(ws, m.data.toString());
    else if (m.opcode === Opcode.Binary) await sendBinary(ws, m.data);
    else if (m.opcode === Opcode.Close) return;
  }
}
