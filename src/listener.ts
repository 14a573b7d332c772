/**
 * Layer 4, a standalone server: `listen(options, handler)` runs a `node:http` (or
 * `node:https`) server that upgrades every WebSocket request, keeps the set of open
 * connections (for broadcast) and closes them all with 1001 on `close()`.
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { AsyncSocket } from './async-socket';
import { CloseCode } from './core/constants';
import { WebSocketError } from './core/errors';
import { close, whenClosed } from './closing';
import { EventHandlers, handleEvents } from './events';
import { sendClose, sendText, sendBinary } from './send';
import { UpgradeOptions, checkUpgradeOptions, guardHandshake, rejectUpgrade, upgrade } from './server';

/** Options of {@link listen}: where to listen, plus every option of `upgrade`. */
export interface ListenOptions extends UpgradeOptions {
  /** Interface to bind. Default '127.0.0.1'. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number;
  /**
   * Only upgrade requests for this path, compared with the target's path as sent, up to '?'
   * (others get 404; a target that is no URL gets 400). Default: any path.
   */
  path?: string;
  /** Serve `wss:` with these TLS options (`key`, `cert`, …). */
  tls?: https.ServerOptions;
  /**
   * Called with errors the handler throws. Default: errors of the connection
   * (`WebSocketError`: the peer broke the protocol or went away) are dropped after the
   * connection is closed; anything else is printed with `console.error`.
   */
  onError?: (err: unknown, ws: AsyncSocket) => void;
  /** Answers plain HTTP requests. Default: 426 Upgrade Required. */
  onRequest?: http.RequestListener;
  /**
   * Checks an upgrade request before it is accepted (authentication): return an HTTP status to
   * refuse. It has `handshakeTimeout` to settle; a request whose verify takes longer is
   * answered 503 and closed (the client sent its whole request: the wait is ours, not its).
   */
  verify?: (req: http.IncomingMessage) => number | undefined | Promise<number | undefined>;
  /** Largest request head (request line and headers), in bytes; larger ones get 431. Default 16 KiB. */
  maxHeaderSize?: number;
  /**
   * Most request headers; a request with more gets 431 (Node would drop the rest without a
   * word, and a header a proxy appends could be lost behind a client's padding). 0: no count
   * (`maxHeaderSize` still bounds the bytes). Default 100.
   */
  maxHeadersCount?: number;
  /**
   * Unsent bytes a connection may hold before {@link WsServer.broadcast} stops adding to them:
   * its socket's write buffer plus the broadcast messages still waiting in its send queue. A
   * connection over it gets the `backpressurePolicy`. Default 1 MiB.
   */
  maxBackpressure?: number;
  /**
   * What `broadcast` does with a connection over `maxBackpressure` (a client that does not read
   * as fast as messages come): 'close' sends it a Close with 1008 (queued behind what it has
   * not read; the socket is destroyed after `closeTimeout` if it never gets there), 'skip'
   * leaves it open and it misses this message. Default 'close': a skipped client has gaps it
   * cannot see.
   */
  backpressurePolicy?: 'close' | 'skip';
  /**
   * Longest `broadcast` waits for connections to flush a message, in ms. It waits for those that
   * had flushed everything before (or, when none had, for the fastest of the others); one still
   * flushing after this is behind, and is not waited for again until it has caught up. So a
   * client that stops reading costs the others one pause of at most this. Default 100.
   */
  broadcastWait?: number;
  /**
   * Time a client has to send its whole upgrade request, in ms (Node's `headersTimeout`), and
   * then again the time `verify` has to settle. Default 10000.
   */
  handshakeTimeout?: number;
}

/** What runs each connection: an async function that owns the socket, or event handlers. */
export type ConnectionHandler = ((ws: AsyncSocket, req: http.IncomingMessage) => void | Promise<void>) | EventHandlers;

/** A running server from {@link listen}. */
export interface WsServer {
  /** The underlying `node:http`/`node:https` server. */
  readonly httpServer: http.Server | https.Server;
  /** The open connections (V's client registry, ws's `clients`). */
  readonly clients: ReadonlySet<AsyncSocket>;
  /** The bound port. */
  readonly port: number;
  /** The bound address. */
  readonly address: AddressInfo;
  /**
   * Sends a text (string) or binary message to every open connection, without waiting for the
   * slow ones: a connection that holds more than `maxBackpressure` unsent bytes is closed with
   * 1008 or skipped (`backpressurePolicy`). Resolves once the connections that were keeping up
   * have flushed the message, or after `broadcastWait` ms, so a loop that awaits it goes at the
   * pace of the clients that read and is never held by one that does not.
   */
  broadcast(data: string | Uint8Array): Promise<void>;
  /**
   * Stops accepting, sends every open connection a Close (1001 by default) and resolves once
   * they are all closed (or destroyed after their `closeTimeout`).
   */
  close(code?: number, reason?: string): Promise<void>;
}

const noop = (): void => {};

// Resolves when one of `sends` is fulfilled or all have settled (a peer that went away is
// not the others' problem).
function firstFlushed(sends: readonly Promise<void>[]): Promise<void> {
  return new Promise((resolve) => {
    let left = sends.length;
    for (const p of sends) p.then(resolve, () => --left === 0 && resolve());
  });
}

/**
 * `broadcast` with a bound per connection. A connection holding more than `maxBackpressure`
 * unsent bytes is closed (1008) or skipped. Otherwise the message is sent, and broadcast waits,
 * for at most `broadcastWait` ms, for the connections that keep up: a connection that has not
 * flushed by then is *behind*, and is no longer waited for until it has flushed everything.
 * Among those behind, the first one that made progress since the last broadcast is waited for,
 * so the pace is set by a client that reads even when the only ones "keeping up" are stalled
 * clients whose kernel buffers still take what we send; one that makes no progress costs
 * nothing. When every connection is behind and none moves, each broadcast waits broadcastWait.
 */
class Broadcaster {
  // Bytes of broadcast messages that wait in a connection's send queue (behind a fragmented
  // or compressed message), so not in its socket's write buffer yet.
  private readonly queued = new WeakMap<AsyncSocket, number>();
  // Connections behind, with their unsent bytes just after the last broadcast.
  private readonly behind = new WeakMap<AsyncSocket, number>();

  constructor(
    private readonly clients: ReadonlySet<AsyncSocket>,
    private readonly maxBackpressure: number,
    private readonly policy: 'close' | 'skip',
    private readonly wait: number
  ) {}

  /** Bytes a connection has been given and has not flushed: its write buffer plus broadcasts queued. */
  unsent(ws: AsyncSocket): number {
    return ws.socket.writableLength + (this.queued.get(ws) ?? 0);
  }

  send(data: string | Uint8Array): Promise<void> {
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const current: AsyncSocket[] = [];
    const flushes: Promise<void>[] = []; // to the connections that keep up
    const moving: Promise<void>[] = []; // to those behind that made progress
    const stalled: Promise<void>[] = []; // to the others behind
    for (const ws of this.clients) {
      if (ws.closeQueued || ws.destroyed) continue;
      const before = this.unsent(ws);
      if (before > this.maxBackpressure) {
        if (this.policy === 'close') close(ws, CloseCode.PolicyViolation, 'too slow').catch(noop);
        continue;
      }
      const lastUnsent = this.behind.get(ws);
      if (before === 0) this.behind.delete(ws); // it caught up
      const sent = typeof data === 'string' ? sendText(ws, data) : sendBinary(ws, data);
      if (ws.sendQueue !== null) {
        // Not written yet: it waits its turn (or for zlib). Count it until it is flushed.
        this.queued.set(ws, (this.queued.get(ws) ?? 0) + size);
        const done = (): void => void this.queued.set(ws, this.queued.get(ws)! - size);
        sent.then(done, done);
      }
      if (!this.behind.has(ws)) {
        current.push(ws);
        flushes.push(sent);
      } else {
        (before < lastUnsent! ? moving : stalled).push(sent);
        this.behind.set(ws, this.unsent(ws));
      }
    }
    const waits: Promise<unknown>[] = [];
    if (flushes.length > 0) waits.push(Promise.allSettled(flushes));
    if (moving.length > 0) waits.push(firstFlushed(moving));
    else if (flushes.length === 0 && stalled.length > 0) waits.push(firstFlushed(stalled));
    // With connections behind, give I/O one turn even when every write completed at once, so
    // that their progress (or its absence) shows by the next broadcast.
    if (moving.length + stalled.length > 0) waits.push(new Promise((resolve) => setImmediate(resolve)));
    if (waits.length === 0) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.wait)));
    return Promise.race([Promise.all(waits), elapsed]).then(() => {
      clearTimeout(timer);
      for (const ws of current) if (!ws.destroyed && this.unsent(ws) > 0) this.behind.set(ws, this.unsent(ws));
    });
  }
}

function defaultOnError(err: unknown): void {
  if (!(err instanceof WebSocketError)) console.error('wsframe: connection handler failed:', err);
}

/**
 * The path of a request target (RFC 9112 §3.2), or null for a target that is not one:
 * origin-form ('/chat?room=1') gives the path up to '?' as sent, so '//host/chat' is not
 * '/chat'; absolute-form ('http://host/chat') gives the URL's path. Node's HTTP parser lets
 * through targets that the URL parser refuses ('http://[/chat', 'ws://%zz/', '//[/x'): those
 * are the client's error (400), not ours (a 500 and a stack trace on stderr).
 */
function requestPath(target: string): string | null {
  let url: URL;
  try {
    url = new URL(target, 'http://host');
  } catch {
    return null;
  }
  if (target.startsWith('/')) {
    const end = target.search(/[?#]/);
    return end === -1 ? target : target.slice(0, end);
  }
  // Absolute-form has a scheme and an authority; anything else ('*', 'chat') is no target here.
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target) ? url.pathname : null;
}

/**
 * Runs `verify` for an upgrade request and says what it answered, or 'gone' when the socket
 * closed first, or 'late' when it did not settle within `ms` (0: no bound). A verify that
 * settles afterwards changes nothing.
 */
function verifyWithin(
  verify: NonNullable<ListenOptions['verify']>,
  req: http.IncomingMessage,
  socket: Duplex,
  ms: number
): Promise<number | undefined | 'gone' | 'late'> {
  if (socket.destroyed) return Promise.resolve('gone');
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onClose = (): void => settle('gone');
    function settle(outcome: number | undefined | 'gone' | 'late', err?: unknown): void {
      clearTimeout(timer);
      socket.off('close', onClose);
      if (err === undefined) resolve(outcome);
      else reject(err);
    }
    socket.once('close', onClose);
    if (ms > 0) timer = setTimeout(() => settle('late'), ms);
    new Promise<number | undefined>((r) => r(verify(req))).then(
      (status) => settle(status),
      (err: unknown) => settle(undefined, err ?? new Error('verify rejected'))
    );
  });
}

/**
 * Listens for WebSocket connections and runs `handler` for each one. When the handler
 * returns or throws, the connection is closed (1000 after a normal return, else 1011).
 * @example
 * ```ts
 * const server = await listen({ port: 9001 }, async (ws) => {
 *   for await (const m of messages(ws)) await server.broadcast(m.data.toString());
 * });
 * // later
 * await server.close();
 * ```
 */
export async function listen(options: ListenOptions, handler: ConnectionHandler): Promise<WsServer> {
  checkUpgradeOptions(options);
  const run =
    typeof handler === 'function'
      ? handler
      : async (ws: AsyncSocket): Promise<void> => {
          await handleEvents(ws, handler);
        };
  const clients = new Set<AsyncSocket>();
  const onError = options.onError ?? defaultOnError;
  const maxHeadersCount = options.maxHeadersCount ?? 100;
  // Node reads one header past the count, so a request that has more can be told apart.
  const tooManyHeaders = (req: http.IncomingMessage): boolean => maxHeadersCount > 0 && req.rawHeaders.length > 2 * maxHeadersCount;
  const answer: http.RequestListener =
    options.onRequest ??
    ((_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', 'Sec-WebSocket-Version': '13', Upgrade: 'websocket' });
      res.end('This is a WebSocket endpoint.\n');
    });
  const onRequest: http.RequestListener = (req, res) => {
    if (!tooManyHeaders(req)) return answer(req, res);
    res.writeHead(431, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
    res.end(`More than ${maxHeadersCount} header fields.\n`);
  };
  const maxBackpressure = options.maxBackpressure ?? 1024 * 1024;
  if (!(maxBackpressure >= 0)) throw new RangeError(`maxBackpressure must be 0 or more, not ${maxBackpressure}`);
  const policy = options.backpressurePolicy ?? 'close';
  const broadcastWait = options.broadcastWait ?? 100;
  if (!(broadcastWait >= 0)) throw new RangeError(`broadcastWait must be 0 or more, not ${broadcastWait}`);
  if (policy !== 'close' && policy !== 'skip') throw new TypeError(`backpressurePolicy must be 'close' or 'skip', not ${String(policy)}`);
  const broadcaster = new Broadcaster(clients, maxBackpressure, policy, broadcastWait);
  const handshakeTimeout = options.handshakeTimeout ?? 10_000;
  const serverOptions: http.ServerOptions = {
    maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
    headersTimeout: handshakeTimeout,
    requestTimeout: handshakeTimeout,
    // How often Node checks those timeouts (its default, 30 s, would make them coarse).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, handshakeTimeout / 2))
  };
  const httpServer = options.tls
    ? https.createServer({ ...options.tls, ...serverOptions }, onRequest)
    : http.createServer(serverOptions, onRequest);
  httpServer.maxHeadersCount = maxHeadersCount > 0 ? maxHeadersCount + 1 : 0;
  let closing = false;

  async function accept(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (closing) return rejectUpgrade(socket, 503);
    if (tooManyHeaders(req)) return rejectUpgrade(socket, 431, {}, `More than ${maxHeadersCount} header fields.`);
    if (options.path !== undefined) {
      const path = requestPath(req.url ?? '');
      if (path === null) return rejectUpgrade(socket, 400);
      if (path !== options.path) return rejectUpgrade(socket, 404);
    }
    if (options.verify) {
      const status = await verifyWithin(options.verify, req, socket, handshakeTimeout);
      if (status === 'gone') return; // the client went away; its socket is destroyed already
      if (status === 'late') return rejectUpgrade(socket, 503);
      if (status !== undefined) return rejectUpgrade(socket, status);
      if (closing) return rejectUpgrade(socket, 503); // close() was called while verify ran
    }
    let ws: AsyncSocket;
    try {
      ws = await upgrade(req, socket, head, options);
    } catch {
      return; // answered with its HTTP status already
    }
    clients.add(ws);
    ws.socket.once('close', () => clients.delete(ws));
    // Start the handler and leave: this frame (and the request it holds) is not kept alive
    // for the life of the connection; the handler gets `req` and keeps it only if it wants.
    let handled: void | Promise<void>;
    try {
      handled = run(ws, req);
    } catch (err) {
      handled = Promise.reject(err);
    }
    return finish(ws, handled);
  }

  // Closes the connection once its handler is done: 1000 after a normal return, else 1011.
  async function finish(ws: AsyncSocket, handled: void | Promise<void>): Promise<void> {
    try {
      await handled;
      if (!ws.destroyed) await close(ws, CloseCode.Normal);
    } catch (err) {
      if (!ws.destroyed) void close(ws, CloseCode.InternalError);
      onError(err, ws);
    }
  }

  httpServer.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node took its 'error' listener off this socket; ours must be on before any await.
    guardHandshake(socket);
    accept(req, socket, head).catch((err) => {
      rejectUpgrade(socket, 500);
      console.error('wsframe: upgrade failed:', err);
    });
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address() as AddressInfo;

  return {
    httpServer,
    clients,
    port: address.port,
    address,
    broadcast(data) {
      return broadcaster.send(data);
    },
    async close(code = CloseCode.GoingAway, reason = '') {
      closing = true;
      const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      const all = [...clients];
      for (const ws of all) {
        // The connection's handler is reading: it receives the peer's Close and finishes.
        if (!ws.closeQueued && !ws.destroyed) sendClose(ws, code, reason).catch(() => ws.destroy());
        ws.destroyAfter(ws.closeTimeout);
      }
      await Promise.all(all.map(whenClosed));
      await stopped;
    }
  };
}
