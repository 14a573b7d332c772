/**
 * A standalone server: `listen(options, handler)` runs a `node:http` (or
 * `node:https`) server that upgrades every WebSocket request, keeps the set of open
 * connections (for broadcast) and closes them all with 1001 on `close()`. With `http2: true`
 * it runs a `node:http2` server instead, that takes WebSockets over HTTP/2 (RFC 8441) and,
 * with TLS, HTTP/1.1 upgrades on the same port.
 * @module
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { AsyncSocket } from '../connection/async-socket';
import { CloseCode } from '../core/constants';
import { HTTP2_WINDOWS } from '../core/limits';
import { HandshakeError, WebSocketError } from '../core/errors';
import { close, whenClosed } from '../connection/closing';
import { EventHandlers, handleEvents } from '../adapters/events';
import { sendClose, sendText, sendBinary } from '../connection/send';
import { describeValue } from '../core/checks';
import { BOOLEAN, FUNCTION, OBJECT, STRING, type Rules, bytesRule, countRule, mergeRules, msRule } from '../core/options';
import { UPGRADE_RULES, UpgradeOptions, checkUpgradeOptions, guardHandshake, rejectHttp2, rejectUpgrade, upgrade, upgradeHttp2 } from '../handshake/server';

/**
 * What the options of {@link listen} have in common with and without `http2`: all but the request's type.
 * @group Server
 */
export interface ListenCommonOptions extends Omit<UpgradeOptions, 'selectProtocol'> {
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
   * then again the time `verify` has to settle. With `tls`, also the time it has for the TLS
   * handshake (unless `tls.handshakeTimeout` says otherwise); with `http2`, also the time an
   * HTTP/2 connection may stay without an open stream. Default 10000.
   */
  handshakeTimeout?: number;
}

/**
 * Options of {@link listen}: where to listen, plus every option of `upgrade`.
 * @group Server
 */
export interface ListenOptions extends ListenCommonOptions, Pick<UpgradeOptions, 'selectProtocol'> {
  /** Serve WebSockets over HTTP/2 as well: see {@link Http2ListenOptions}. Default false. */
  http2?: false;
  /** Answers plain HTTP requests. Default: 426 Upgrade Required. */
  onRequest?: http.RequestListener;
  /**
   * Checks an upgrade request before it is accepted (authentication): return an HTTP status to
   * refuse. It has `handshakeTimeout` to settle; a request whose verify takes longer is
   * answered 503 and closed (the client sent its whole request: the wait is ours, not its).
   */
  verify?: (req: http.IncomingMessage) => number | undefined | Promise<number | undefined>;
}

/**
 * A WebSocket request as {@link listen} shows it with `http2: true`: an HTTP/1.1 upgrade
 * (`httpVersion` '1.1') or an HTTP/2 extended CONNECT (`httpVersion` '2.0', with `headers`
 * holding the pseudo-headers `:path`, `:authority`, `:protocol`). `url`, `headers` and
 * `socket.remoteAddress` mean the same on both.
 * @group Server
 */
export type WsRequest = http.IncomingMessage | http2.Http2ServerRequest;

/**
 * Options of {@link listen} with `http2: true`: a `node:http2` server whose settings advertise
 * the extended CONNECT (RFC 8441), so browsers open their WebSockets as streams of the HTTP/2
 * connection they already have. With `tls` it also answers HTTP/1.1 (ALPN `http/1.1`, and
 * clients without ALPN) on the same port: both kinds of WebSocket get the same options,
 * `verify`, handler and `clients`. Without `tls` it speaks cleartext HTTP/2 only (h2c with
 * prior knowledge: `connect('ws://…', { http2: true })`), which browsers do not.
 * @group Server
 */
export interface Http2ListenOptions extends ListenCommonOptions {
  http2: true;
  /** As in {@link UpgradeOptions.selectProtocol}, with the request over either protocol. */
  selectProtocol?: (offered: string[], req: WsRequest) => string | undefined;
  /**
   * Answers requests that are no WebSocket, over either protocol. Default: 426 Upgrade
   * Required over HTTP/1.1, 405 (`allow: CONNECT`) over HTTP/2.
   */
  onRequest?: (req: WsRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;
  /** As in {@link ListenOptions.verify}, with the request over either protocol. */
  verify?: (req: WsRequest) => number | undefined | Promise<number | undefined>;
  /**
   * Streams one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS):
   * WebSockets and requests together, so one client cannot open more WebSockets on one
   * connection than this. Default 100.
   */
  maxConcurrentStreams?: number;
}

// The handshake options that listen() and acceptWebSocket() add to upgrade()'s.
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const ADMISSION_RULES: Rules = {
  options: {
    path: STRING,
    verify: FUNCTION,
    maxHeaderSize: countRule(1, MAX_SAFE, 'bytes'),
    maxHeadersCount: countRule(0, MAX_SAFE, '0: no limit'),
    handshakeTimeout: msRule(1)
  }
};
const ACCEPT_RULES = mergeRules(UPGRADE_RULES, ADMISSION_RULES);
// SETTINGS_MAX_CONCURRENT_STREAMS is a 32-bit field (RFC 9113 §6.5.2).
const LISTEN_RULES = mergeRules(ACCEPT_RULES, {
  options: {
    host: STRING,
    port: countRule(0, 65535),
    tls: OBJECT,
    http2: BOOLEAN,
    onError: FUNCTION,
    onRequest: FUNCTION,
    maxBackpressure: bytesRule(0),
    backpressurePolicy: { kind: 'enum', values: ['close', 'skip'] },
    broadcastWait: msRule(0),
    maxConcurrentStreams: countRule(1, 2 ** 32 - 1)
  }
});

/**
 * What runs each connection: an async function that owns the socket, or event handlers.
 * `Req` is the request's type: {@link WsRequest} for a server with `http2: true`.
 * @group Server
 */
export type ConnectionHandler<Req = http.IncomingMessage> = ((ws: AsyncSocket, req: Req) => void | Promise<void>) | EventHandlers;

/**
 * A running server from {@link listen}.
 * @group Server
 */
export interface WsServer<Server = http.Server | https.Server> {
  /** The underlying server: `node:http`/`node:https`, or `node:http2` with `http2: true`. */
  readonly httpServer: Server;
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
// What a broadcast send that waits in a connection's send queue (behind a compressed or
// fragmented message) costs beside its bytes, counted against maxBackpressure: its queue
// entry, promises and their reactions (measured: about 300 bytes of heap each).
const QUEUED_COST = 512;

/** Default of {@link ListenCommonOptions.maxBackpressure}: 1 MiB. */
export const DEFAULT_MAX_BACKPRESSURE = 1024 * 1024;

/**
 * `broadcast` with a bound per connection. A connection holding more than `maxBackpressure`
 * unsent bytes is closed (1008) or skipped. Otherwise the message is sent, and broadcast waits,
 * for at most `broadcastWait` ms, for the connections that keep up: a connection that has not
 * flushed by then is *behind*, and is no longer waited for until it has flushed everything.
 * Among those behind, the first one that makes progress is waited for, so the pace is set by a
 * client that reads even when the only ones "keeping up" are stalled clients whose kernel
 * buffers still take what we send; one that makes no progress costs nothing. When every
 * connection is behind and none moves, each broadcast waits broadcastWait.
 *
 * Nothing is hung on a send per message: the small frames sent to a connection that is behind
 * share one promise (its backlog's), which is watched once, however many messages joined it
 * (a reaction per message on it would stay until the connection is dropped: 20-byte
 * broadcasts to stalled clients held 5-15 MiB each while they reported 1 MiB unsent).
 */
class Broadcaster {
  // Bytes of broadcast messages that wait in a connection's send queue (behind a fragmented
  // or compressed message), so not in its socket's write buffer yet.
  private readonly queued = new WeakMap<AsyncSocket, number>();
  // Connections behind, with their unsent bytes just after the last broadcast.
  private readonly behind = new WeakMap<AsyncSocket, number>();
  // The send of each connection that is watched now (one reaction each, however many
  // messages share it), and the broadcasts waiting for the first of those behind to move.
  private readonly watched = new WeakMap<AsyncSocket, Promise<void>>();
  private readonly moved = new Set<() => void>();

  constructor(
    private readonly clients: ReadonlySet<AsyncSocket>,
    private readonly maxBackpressure: number,
    private readonly policy: 'close' | 'skip',
    private readonly wait: number
  ) {}

  /**
   * Bytes a connection has been given and the kernel has not taken: its write buffer (less
   * the small frames held only until the end of this turn) plus broadcasts queued.
   */
  unsent(ws: AsyncSocket): number {
    return ws.unsentBytes + (this.queued.get(ws) ?? 0);
  }

  // Watches a send once: when it settles, the broadcasts waiting for one of those behind to
  // move go on. Its rejection is handled here too (the connection's own read loop sees the
  // failure: a broadcast must not leave it unhandled, that ends the process).
  private watch(ws: AsyncSocket, sent: Promise<void>): void {
    if (this.watched.get(ws) === sent) return;
    this.watched.set(ws, sent);
    const settled = (): void => {
      if (this.watched.get(ws) === sent) this.watched.delete(ws);
      for (const go of this.moved) go();
      this.moved.clear();
    };
    sent.then(settled, settled);
  }

  // Resolves when a watched send settles; `cancel` forgets it (the broadcast went on anyway).
  private nextMove(): { moved: Promise<void>; cancel: () => void } {
    let go!: () => void;
    const moved = new Promise<void>((resolve) => (go = resolve));
    this.moved.add(go);
    return { moved, cancel: () => this.moved.delete(go) };
  }

  send(data: string | Uint8Array): Promise<void> {
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const current: AsyncSocket[] = [];
    const flushes: Promise<void>[] = []; // to the connections that keep up
    let behindSent = 0;
    for (const ws of this.clients) {
      if (ws.closeQueued || ws.destroyed) continue;
      const before = this.unsent(ws);
      if (before > this.maxBackpressure) {
        if (this.policy === 'close') close(ws, CloseCode.PolicyViolation, 'too slow').catch(noop);
        continue;
      }
      if (before === 0) this.behind.delete(ws); // it caught up
      const sent = typeof data === 'string' ? sendText(ws, data) : sendBinary(ws, data);
      this.watch(ws, sent);
      if (ws.sendQueue !== null) {
        // Not written yet: it waits its turn (or for zlib). Count it until it is flushed, with
        // what waiting costs beside its bytes (its place in the queue and its promise).
        const cost = size + QUEUED_COST;
        this.queued.set(ws, (this.queued.get(ws) ?? 0) + cost);
        const done = (): void => void this.queued.set(ws, this.queued.get(ws)! - cost);
        sent.then(done, done);
      }
      if (!this.behind.has(ws)) {
        current.push(ws);
        flushes.push(sent);
      } else {
        behindSent++;
        this.behind.set(ws, this.unsent(ws));
      }
    }
    const waits: Promise<unknown>[] = [];
    if (flushes.length > 0) waits.push(Promise.allSettled(flushes));
    let move: { moved: Promise<void>; cancel: () => void } | null = null;
    if (behindSent > 0) {
      // With nobody keeping up, the first of those behind to move sets the pace.
      if (flushes.length === 0) {
        move = this.nextMove();
        waits.push(move.moved);
      }
      // With connections behind, give I/O one turn even when every write completed at once,
      // so that their progress (or its absence) shows by the next broadcast.
      waits.push(new Promise((resolve) => setImmediate(resolve)));
    }
    if (waits.length === 0) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.wait)));
    return Promise.race([Promise.all(waits), elapsed]).then(() => {
      clearTimeout(timer);
      move?.cancel();
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
  verify: (req: WsRequest) => number | undefined | Promise<number | undefined>,
  req: WsRequest,
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

/** What {@link admit} checks a request against. */
interface AdmitRules {
  closing(): boolean;
  maxHeadersCount: number;
  maxHeaderSize: number;
  path: string | undefined;
  verify: ((req: WsRequest) => number | undefined | Promise<number | undefined>) | undefined;
  handshakeTimeout: number;
  selectProtocol: ((offered: string[], req: WsRequest) => string | undefined) | undefined;
  options: Omit<UpgradeOptions, 'selectProtocol'>;
}

/**
 * The checks a WebSocket request passes before it is upgraded (503 while closing, 431 for too
 * many headers or, over HTTP/2, too large a header list, 400/404 for the path, then `verify`
 * within `handshakeTimeout`), then `open`. Resolves to the WebSocket, or null when the
 * request was refused (answered through `refuse`) or the upgrade failed (answered by it).
 */
async function admit(
  req: WsRequest,
  conn: Duplex,
  refuse: Refuse,
  open: (o: UpgradeOptions) => Promise<AsyncSocket>,
  rules: AdmitRules
): Promise<AsyncSocket | null> {
  const refused = (status: number, headers?: Record<string, string>, body?: string): null => (refuse(status, headers, body), null);
  if (rules.closing()) return refused(503);
  if (tooManyHeaders(req, rules.maxHeadersCount)) return refused(431, {}, `More than ${rules.maxHeadersCount} header fields.`);
  if (req.httpVersionMajor === 2 && headerListSize(req) > rules.maxHeaderSize) return refused(431, {}, `Headers over ${rules.maxHeaderSize} bytes.`);
  if (rules.path !== undefined) {
    const path = requestPath(req.url ?? '');
    if (path === null) return refused(400);
    if (path !== rules.path) return refused(404);
  }
  if (rules.verify) {
    const status = await verifyWithin(rules.verify, req, conn, rules.handshakeTimeout);
    if (status === 'gone') return null; // the client went away; its socket is destroyed already
    if (status === 'late') return refused(503);
    if (status !== undefined) return refused(status);
    if (rules.closing()) return refused(503); // close() was called while verify ran
  }
  const select = rules.selectProtocol;
  try {
    return await open(select ? { ...rules.options, selectProtocol: (offered) => select(offered, req) } : rules.options);
  } catch {
    return null; // answered with its HTTP status already
  }
}

/** Says how to answer a request that will not become a WebSocket, over either protocol. */
type Refuse = (status: number, headers?: Record<string, string | readonly string[]>, body?: string) => void;

// Non-pseudo header fields of a request (HTTP/2 lists `:method`, `:path` … among them).
function headerCount(req: WsRequest): number {
  let n = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.charCodeAt(0) !== 0x3a) n++;
  return n;
}

// Whether a request has more than `max` header fields (0: no count). Node's parser is set to
// read one past the count (nodeHeadersCount), so such a request can be told apart.
function tooManyHeaders(req: WsRequest, max: number): boolean {
  return max > 0 && headerCount(req) > max;
}

// node:http's maxHeadersCount for our own: one more, so a request over ours is seen (0: none).
function nodeHeadersCount(max: number): number {
  return max > 0 ? max + 1 : 0;
}

/** The checks of {@link admit} from the options of `listen` or `acceptWebSocket`, with their defaults. */
function admitRules(
  options: Omit<UpgradeOptions, 'selectProtocol'> &
    Pick<ListenCommonOptions, 'path' | 'maxHeaderSize' | 'maxHeadersCount' | 'handshakeTimeout'> & { verify?: unknown; selectProtocol?: unknown },
  closing: () => boolean
): AdmitRules {
  return {
    closing,
    maxHeadersCount: options.maxHeadersCount ?? 100,
    maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
    handshakeTimeout: options.handshakeTimeout ?? 10_000,
    path: options.path,
    verify: options.verify as AdmitRules['verify'],
    selectProtocol: options.selectProtocol as AdmitRules['selectProtocol'],
    options
  };
}

// The answer to a plain HTTP/1.1 request at a WebSocket endpoint.
const NOT_WEBSOCKET = 'This is a WebSocket endpoint.';
function answerNotWebSocket(res: http.ServerResponse, extraHeaders: Record<string, string> = {}): void {
  res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', 'Sec-WebSocket-Version': '13', Upgrade: 'websocket', ...extraHeaders });
  res.end(`${NOT_WEBSOCKET}\n`);
}

// The size of an HTTP/2 request's header list as RFC 9113 §6.5.2 counts it (Node advertises
// SETTINGS_MAX_HEADER_LIST_SIZE but does not hold clients to it).
function headerListSize(req: WsRequest): number {
  let n = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) n += Buffer.byteLength(raw[i]!) + Buffer.byteLength(raw[i + 1]!) + 32;
  return n;
}

/**
 * Listens for WebSocket connections and runs `handler` for each one. When the handler
 * returns or throws, the connection is closed (1000 after a normal return, else 1011).
 * With `http2: true` (see {@link Http2ListenOptions}) WebSockets over HTTP/2 are served too.
 * @example
 * ```ts
 * const server = await listen({ port: 9001 }, async (ws) => {
 *   for await (const m of messages(ws)) await server.broadcast(m.data.toString());
 * });
 * // later
 * await server.close();
 * ```
 * @throws {TypeError} (rejection) for an option of the wrong type (a limit given as the string
 * `'1MB'`, say), and `RangeError` for a number out of its range (README "Options and
 * defaults"), before anything listens
 * @group Server
 */
export function listen(
  options: Http2ListenOptions,
  handler: ConnectionHandler<WsRequest>
): Promise<WsServer<http2.Http2SecureServer | http2.Http2Server>>;
export function listen(options: ListenOptions, handler: ConnectionHandler): Promise<WsServer>;
export async function listen(
  options: ListenOptions | Http2ListenOptions,
  handler: ConnectionHandler | ConnectionHandler<WsRequest>
): Promise<WsServer<http.Server | https.Server | http2.Http2SecureServer | http2.Http2Server>> {
  checkUpgradeOptions(options, 'listen() options', LISTEN_RULES);
  if (typeof handler !== 'function' && (typeof handler !== 'object' || handler === null)) {
    throw new TypeError(`listen() needs a handler: an async function or an object of event handlers, not ${describeValue(handler)}`);
  }
  // The request the handler gets is of the kind the options say (the overloads above).
  const run =
    typeof handler === 'function'
      ? (handler as (ws: AsyncSocket, req: WsRequest) => void | Promise<void>)
      : async (ws: AsyncSocket): Promise<void> => {
          await handleEvents(ws, handler);
        };
  const clients = new Set<AsyncSocket>();
  const onError = options.onError ?? defaultOnError;
  let closing = false;
  const rules = admitRules(options, () => closing);
  const { maxHeadersCount, maxHeaderSize, handshakeTimeout } = rules;
  const answer =
    (options.onRequest as ((req: WsRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void) | undefined) ??
    ((req, res) => {
      if (req.httpVersionMajor === 1) return answerNotWebSocket(res as http.ServerResponse);
      // No Upgrade over HTTP/2 (RFC 9113 §8.2.2): a WebSocket is a CONNECT there.
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'CONNECT' });
      res.end(`${NOT_WEBSOCKET}\n`);
    });
  const onRequest = (req: WsRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    if (!tooManyHeaders(req, maxHeadersCount)) return answer(req, res);
    res.writeHead(431, { 'Content-Type': 'text/plain; charset=utf-8', ...(req.httpVersionMajor === 2 ? {} : { Connection: 'close' }) });
    res.end(`More than ${maxHeadersCount} header fields.\n`);
  };
  const maxBackpressure = options.maxBackpressure ?? DEFAULT_MAX_BACKPRESSURE;
  const policy = options.backpressurePolicy ?? 'close';
  const broadcastWait = options.broadcastWait ?? 100;
  const broadcaster = new Broadcaster(clients, maxBackpressure, policy, broadcastWait);
  const timeouts = {
    headersTimeout: handshakeTimeout,
    requestTimeout: handshakeTimeout,
    // How often Node checks those timeouts (its default, 30 s, would make them coarse).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, handshakeTimeout / 2))
  };
  // With http2: the open HTTP/2 sessions, and every connection (HTTP/1.1 ones too).
  const http2Sessions = options.http2 === true ? new Map<http2.ServerHttp2Session, () => void>() : null;
  const connections = options.http2 === true ? new Set<Duplex>() : null;
  const sessionSockets = new WeakSet<Duplex>(); // those of HTTP/2 sessions
  const answering = new Set<Duplex>(); // HTTP/1.1 connections with a request being answered
  let httpServer: http.Server | https.Server | http2.Http2SecureServer | http2.Http2Server;
  if (options.http2 !== true) {
    httpServer = options.tls
      ? https.createServer({ handshakeTimeout, ...options.tls, maxHeaderSize, ...timeouts }, onRequest)
      : http.createServer({ maxHeaderSize, ...timeouts }, onRequest);
  } else {
    const maxConcurrentStreams = options.maxConcurrentStreams ?? 100;
    const h2Options: http2.ServerOptions = {
      settings: { enableConnectProtocol: true, maxConcurrentStreams, maxHeaderListSize: maxHeaderSize, initialWindowSize: HTTP2_WINDOWS.stream },
      // One header past the count must get through to be refused with 431; pseudo-headers count.
      maxHeaderListPairs: maxHeadersCount > 0 ? maxHeadersCount + 8 : 0xffff
    };
    httpServer = options.tls
      ? http2.createSecureServer({ handshakeTimeout, ...options.tls, ...h2Options, allowHTTP1: true })
      : http2.createServer(h2Options);
    // HTTP/1.1 on the secure server goes through node:http, which reads these from the server.
    Object.assign(httpServer, timeouts, { maxHeaderSize, keepAliveTimeout: 5000 });
    httpServer.on('request', (req: WsRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
      if (req.httpVersionMajor === 1) {
        const socket = req.socket;
        answering.add(socket);
        res.once('close', () => answering.delete(socket));
      }
      onRequest(req, res);
    });
    // Node makes the session of a connection right after this event: pair them, so that the
    // socket of a session we close can be destroyed if its client never closes it.
    let socket: Duplex | undefined;
    httpServer.prependListener(options.tls ? 'secureConnection' : 'connection', (s: Duplex) => {
      socket = s;
      connections!.add(s);
      s.once('close', () => connections!.delete(s));
    });
    httpServer.on('session', (session: http2.ServerHttp2Session) => {
      session.setLocalWindowSize(HTTP2_WINDOWS.session);
      if (socket !== undefined) sessionSockets.add(socket);
      if (socket !== undefined) watchSession(session, socket, http2Sessions!, handshakeTimeout);
      socket = undefined;
    });
  }
  (httpServer as http.Server).maxHeadersCount = nodeHeadersCount(maxHeadersCount);
  // Starts the handler of an accepted connection and leaves: nothing of the handshake (the
  // request, its head bytes, the refusal and upgrade closures) is kept for the life of the
  // connection; the handler gets `req` and keeps it only if it wants.
  // What an idle connection holds here is one reaction on its handler's promise, with two
  // closures over `ws` (an async function awaiting the handler cost about twice that).
  function serve(ws: AsyncSocket, req: WsRequest): void {
    clients.add(ws);
    ws.onClosed = dropClient;
    let handled: void | Promise<void>;
    try {
      handled = run(ws, req);
    } catch (err) {
      handled = Promise.reject(err);
    }
    Promise.resolve(handled).then(
      () => handlerReturned(ws),
      (err: unknown) => handlerFailed(ws, err)
    );
  }
  function dropClient(ws: AsyncSocket): void {
    clients.delete(ws);
  }

  // Closes the connection once its handler is done: 1000 after a normal return, else 1011.
  function handlerReturned(ws: AsyncSocket): void {
    if (!ws.destroyed) close(ws, CloseCode.Normal).catch((err: unknown) => onError(err, ws));
  }
  function handlerFailed(ws: AsyncSocket, err: unknown): void {
    if (!ws.destroyed) void close(ws, CloseCode.InternalError);
    onError(err, ws);
  }

  function start(req: WsRequest, conn: Duplex, refuse: Refuse, open: (o: UpgradeOptions) => Promise<AsyncSocket>): void {
    // Node took its 'error' listener off this socket; ours must be on before any await.
    guardHandshake(conn);
    // These callbacks go once the handshake is over (a chain through the handler's promise
    // would keep them, and the request they hold, as long as the connection lives).
    admit(req, conn, refuse, open, rules).then(
      (ws) => ws !== null && serve(ws, req),
      (err: unknown) => {
        refuse(500);
        console.error('wsframe: upgrade failed:', err);
      }
    );
  }

  httpServer.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse: Refuse = (status, headers, body) => rejectUpgrade(socket, status, headers, body);
    start(req, socket, refuse, (o) => upgrade(req, socket, head, o));
  });
  if (http2Sessions !== null) {
    // node:http2's compatibility layer hands over an HTTP/2 CONNECT as (request, response), and
    // an HTTP/1.1 one (on the secure server) as node:http does: (request, socket, head).
    httpServer.on('connect', (req: WsRequest, conn: Duplex | http2.Http2ServerResponse) => {
      if (!(req instanceof http2.Http2ServerRequest)) return rejectUpgrade(conn as Duplex, 405);
      const stream = req.stream;
      const refuse: Refuse = (status, headers, body) => rejectHttp2(stream, status, headers, body);
      start(req, stream, refuse, (o) => upgradeHttp2(stream, req.headers, o as Omit<UpgradeOptions, 'selectProtocol'>));
    });
  }
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
      // HTTP/2 connections outlive the server's close: GOAWAY lets their streams finish, and
      // those still open handshakeTimeout after the WebSockets closed are destroyed.
      for (const shut of http2Sessions?.values() ?? []) shut();
      await Promise.all(all.map(whenClosed));
      if (connections !== null && connections.size > 0) {
        // HTTP/1.1 connections that wait for their next request go now (as node:http does).
        for (const socket of connections) if (!sessionSockets.has(socket) && !answering.has(socket)) socket.destroy();
        const timer = setTimeout(() => {
          for (const socket of connections) socket.destroy();
        }, handshakeTimeout);
        await stopped;
        clearTimeout(timer);
      }
      await stopped;
    }
  };
}

/**
 * Keeps the set of a server's HTTP/2 sessions, and closes (GOAWAY) one that has had no stream
 * open for `idleMs`: from its start (a client that connects and asks nothing) and after its
 * last stream (as HTTP/1.1 keep-alive connections are closed when idle). Node then waits for
 * the client to close the connection: one that does not is destroyed a second later. The map
 * holds, for each session, what closes it that way.
 */
function watchSession(session: http2.ServerHttp2Session, socket: Duplex, sessions: Map<http2.ServerHttp2Session, () => void>, idleMs: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  // Node ends a closed session's socket once its last stream is done, and waits for the client.
  const linger = (): void => {
    clearTimeout(timer);
    if (!socket.destroyed) timer = setTimeout(() => socket.destroy(), SESSION_LINGER_MS).unref();
  };
  const shut = (): void => {
    session.close();
    if (open === 0) linger();
  };
  const idle = (): void => {
    clearTimeout(timer);
    if (idleMs > 0) timer = setTimeout(shut, idleMs).unref();
  };
  const streamClosed = (): void => {
    if (--open > 0) return;
    if (session.closed) linger();
    else idle();
  };
  session.on('stream', (stream: http2.ServerHttp2Stream) => {
    if (open++ === 0) clearTimeout(timer);
    stream.once('close', streamClosed);
  });
  // The client's GOAWAY: Node closes the session (or destroys it, for an error code).
  session.once('goaway', () => open === 0 && linger());
  session.once('close', () => {
    clearTimeout(timer);
    sessions.delete(session);
  });
  sessions.set(session, shut);
  idle();
}

// Milliseconds a closed HTTP/2 session's client gets to close its connection before it is destroyed.
const SESSION_LINGER_MS = 1000;

// Ends a connection whose handshake has settled: what was written goes out, then it is destroyed.
function endSettled(conn: Duplex): void {
  conn.on('error', ignoreError);
  conn.once('finish', () => conn.destroy());
  conn.end();
}

function ignoreError(): void {}

/**
 * Options of {@link acceptWebSocket}: every option of `upgrade`, and the request limits and
 * checks of {@link listen} (`path`, `verify`, `maxHeaderSize`, `maxHeadersCount`,
 * `handshakeTimeout`) with the same defaults.
 * @group Server
 */
export interface AcceptOptions
  extends UpgradeOptions,
    Pick<ListenOptions, 'path' | 'verify' | 'maxHeaderSize' | 'maxHeadersCount' | 'handshakeTimeout'> {}

/**
 * The server handshake on a socket you accepted yourself (`net.Server`, `tls.Server`, or any
 * stream): reads the HTTP request head with Node's own parser, checks it as {@link listen}
 * does (431 for a head over `maxHeaderSize` or with more than `maxHeadersCount` fields, 408
 * when it is not complete within `handshakeTimeout`, 426 for a request that is no upgrade,
 * `path`, `verify`), answers 101 or the refusal, and resolves to the connection. `verify` and
 * `selectProtocol` get the request (headers, `url`) for authentication and protocol choice.
 * @example
 * ```ts
 * net.createServer(async (socket) => {
 *   const ws = await acceptWebSocket(socket, { protocols: ['chat.v1'], verify: (req) => (req.headers.authorization ? undefined : 401) });
 *   for await (const m of messages(ws)) await sendText(ws, m.data.toString());
 * }).listen(9001);
 * ```
 * @throws {HandshakeError} (rejection) with the status that was answered, once the refusal
 * went out (or the client went away)
 * @throws {TypeError} synchronously for an option of the wrong type, and `RangeError` for one
 * out of its range, before the socket is read
 * @group Server
 */
export function acceptWebSocket(socket: Duplex, options: AcceptOptions = {}): Promise<AsyncSocket> {
  checkUpgradeOptions(options, 'acceptWebSocket() options', ACCEPT_RULES);
  const rules = admitRules(options, () => false);
  const { maxHeaderSize, handshakeTimeout } = rules;
  guardHandshake(socket);
  return new Promise<AsyncSocket>((resolve, reject) => {
    let done = false;
    const fail = (status: number | undefined, message: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new HandshakeError(message, status));
    };
    // Node's HTTP parser, on this one socket: a server that never listens.
    const parser = http.createServer({ maxHeaderSize });
    parser.maxHeadersCount = nodeHeadersCount(rules.maxHeadersCount);
    const refuseRaw = (status: number, message: string): void => {
      if (!socket.destroyed) rejectUpgrade(socket, status, {}, message);
      fail(status, message);
    };
    const timer =
      handshakeTimeout > 0 ? setTimeout(() => refuseRaw(408, `no complete request within ${handshakeTimeout} ms`), handshakeTimeout) : undefined;
    const onClose = (): void => fail(undefined, 'the client went away before the handshake completed');
    socket.once('close', onClose);
    parser.on('clientError', (err: NodeJS.ErrnoException) => {
      if (err.code === 'HPE_HEADER_OVERFLOW') refuseRaw(431, `a request head over ${maxHeaderSize} bytes`);
      else refuseRaw(400, `not an HTTP request: ${err.message}`);
    });
    parser.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      answerNotWebSocket(res, { Connection: 'close' });
      fail(426, NOT_WEBSOCKET);
    });
    parser.on('upgrade', (req: http.IncomingMessage, conn: Duplex, head: Buffer) => {
      // An upgrade pipelined behind a request already refused: the handshake has settled, so
      // nothing after is answered and the connection closes (once the refusal has gone out).
      if (done) return void endSettled(conn);
      clearTimeout(timer); // verify has its own handshakeTimeout
      guardHandshake(conn);
      let answered: { status: number; message: string } | null = null;
      const refuse: Refuse = (status, headers, body) => {
        answered = { status, message: body || `refused with ${status}` };
        rejectUpgrade(conn, status, headers, body);
      };
      let failure: unknown = null;
      const open = (o: UpgradeOptions): Promise<AsyncSocket> =>
        upgrade(req, conn, head, o).catch((err: unknown) => {
          failure = err;
          throw err;
        });
      admit(req, conn, refuse, open, rules).then(
        (ws) => {
          if (ws !== null) {
            done = true;
            socket.off('close', onClose); // it would keep this handshake's state for the connection's life
            return resolve(ws);
          }
          if (failure !== null) {
            done = true;
            return reject(failure);
          }
          const a = answered as { status: number; message: string } | null;
          fail(a?.status, a?.message ?? 'the client went away before the handshake completed');
        },
        (err: unknown) => {
          rejectUpgrade(conn, 500);
          fail(500, `the handshake failed: ${String(err)}`);
        }
      );
    });
    parser.emit('connection', socket);
  });
}
