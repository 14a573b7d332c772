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
import { WebSocketError } from '../core/errors';
import { close, whenClosed } from '../connection/closing';
import { handleEvents } from '../adapters/events';
import { sendClose } from '../connection/send';
import { describeValue } from '../core/checks';
import { UpgradeOptions, checkUpgradeOptions, guardHandshake, rejectHttp2, rejectUpgrade, upgrade, upgradeHttp2 } from '../handshake/server';
import { LISTEN_RULES, DEFAULT_MAX_BACKPRESSURE, type ConnectionHandler, type Http2ListenOptions, type ListenOptions, type WsRequest, type WsServer } from './options';
import { Broadcaster } from './broadcast';
import { NOT_WEBSOCKET, admit, admitRules, answerNotWebSocket, nodeHeadersCount, tooManyHeaders, type AdmitRules, type Refuse } from './admission';
import { watchSession } from './http2-sessions';

function defaultOnError(err: unknown): void {
  if (!(err instanceof WebSocketError)) console.error('wsframe: connection handler failed:', err);
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
  const clients = new Clients(handler, options.onError ?? defaultOnError);
  let closing = false;
  const rules = admitRules(options, () => closing);
  const { maxHeadersCount, handshakeTimeout } = rules;
  const maxBackpressure = options.maxBackpressure ?? DEFAULT_MAX_BACKPRESSURE;
  const policy = options.backpressurePolicy ?? 'close';
  const broadcastWait = options.broadcastWait ?? 100;
  const broadcaster = new Broadcaster(clients.open, maxBackpressure, policy, broadcastWait);
  const onRequest = requestAnswerer(options, maxHeadersCount);
  const h2 = options.http2 === true ? new Http2Connections() : null;
  const httpServer = h2 === null ? createHttp1Server(options, rules, onRequest) : createHttp2Server(options, rules, onRequest, h2);
  (httpServer as http.Server).maxHeadersCount = nodeHeadersCount(maxHeadersCount);
  function start(req: WsRequest, conn: Duplex, refuse: Refuse, open: (o: UpgradeOptions) => Promise<AsyncSocket>): void {
    // Node took its 'error' listener off this socket; ours must be on before any await.
    guardHandshake(conn);
    // These callbacks go once the handshake is over (a chain through the handler's promise
    // would keep them, and the request they hold, as long as the connection lives).
    admit(req, conn, refuse, open, rules).then(
      (ws) => ws !== null && clients.serve(ws, req),
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
  if (h2 !== null) {
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
    clients: clients.open,
    port: address.port,
    address,
    broadcast(data) {
      return broadcaster.send(data);
    },
    close(code = CloseCode.GoingAway, reason = '') {
      closing = true;
      return closeServer(httpServer, clients.open, h2, handshakeTimeout, code, reason);
    }
  };
}

// Answers requests that are no WebSocket: the user's onRequest, or 426 (HTTP/1.1) and 405
// (HTTP/2); 431 first for a request with more than maxHeadersCount header fields.
function requestAnswerer(options: ListenOptions | Http2ListenOptions, maxHeadersCount: number): AnswerRequest {
  const answer =
    (options.onRequest as AnswerRequest | undefined) ??
    ((req, res) => {
      if (req.httpVersionMajor === 1) return answerNotWebSocket(res as http.ServerResponse);
      // No Upgrade over HTTP/2 (RFC 9113 §8.2.2): a WebSocket is a CONNECT there.
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'CONNECT' });
      res.end(`${NOT_WEBSOCKET}\n`);
    });
  return (req, res) => {
    if (!tooManyHeaders(req, maxHeadersCount)) return answer(req, res);
    res.writeHead(431, { 'Content-Type': 'text/plain; charset=utf-8', ...(req.httpVersionMajor === 2 ? {} : { Connection: 'close' }) });
    res.end(`More than ${maxHeadersCount} header fields.\n`);
  };
}

type AnswerRequest = (req: WsRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

// node:http's request timeouts from handshakeTimeout.
function requestTimeouts(handshakeTimeout: number): Pick<http.ServerOptions, 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'> {
  return {
    headersTimeout: handshakeTimeout,
    requestTimeout: handshakeTimeout,
    // How often Node checks those timeouts (its default, 30 s, would make them coarse).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, handshakeTimeout / 2))
  };
}

function createHttp1Server(options: ListenOptions | Http2ListenOptions, rules: AdmitRules, onRequest: AnswerRequest): http.Server | https.Server {
  const { handshakeTimeout, maxHeaderSize } = rules;
  const timeouts = requestTimeouts(handshakeTimeout);
  return options.tls
    ? https.createServer({ handshakeTimeout, ...options.tls, maxHeaderSize, ...timeouts }, onRequest)
    : http.createServer({ maxHeaderSize, ...timeouts }, onRequest);
}

/** What a server with `http2` keeps of its connections, to close them. */
class Http2Connections {
  // The open HTTP/2 sessions, each with what closes it (GOAWAY, then destroy).
  readonly sessions = new Map<http2.ServerHttp2Session, () => void>();
  // Every connection, HTTP/1.1 ones too.
  readonly connections = new Set<Duplex>();
  // Those of HTTP/2 sessions.
  readonly sessionSockets = new WeakSet<Duplex>();
  // HTTP/1.1 connections with a request being answered.
  readonly answering = new Set<Duplex>();
}

function createHttp2Server(
  options: ListenOptions | Http2ListenOptions,
  rules: AdmitRules,
  onRequest: AnswerRequest,
  h2: Http2Connections
): http2.Http2SecureServer | http2.Http2Server {
  const { handshakeTimeout, maxHeaderSize, maxHeadersCount } = rules;
  const maxConcurrentStreams = (options as Http2ListenOptions).maxConcurrentStreams ?? 100;
  const h2Options: http2.ServerOptions = {
    settings: { enableConnectProtocol: true, maxConcurrentStreams, maxHeaderListSize: maxHeaderSize, initialWindowSize: HTTP2_WINDOWS.stream },
    // One header past the count must get through to be refused with 431; pseudo-headers count.
    maxHeaderListPairs: maxHeadersCount > 0 ? maxHeadersCount + 8 : 0xffff
  };
  const httpServer = options.tls
    ? http2.createSecureServer({ handshakeTimeout, ...options.tls, ...h2Options, allowHTTP1: true })
    : http2.createServer(h2Options);
  // HTTP/1.1 on the secure server goes through node:http, which reads these from the server.
  Object.assign(httpServer, requestTimeouts(handshakeTimeout), { maxHeaderSize, keepAliveTimeout: 5000 });
  httpServer.on('request', (req: WsRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    if (req.httpVersionMajor === 1) {
      const socket = req.socket;
      h2.answering.add(socket);
      res.once('close', () => h2.answering.delete(socket));
    }
    onRequest(req, res);
  });
  // Node makes the session of a connection right after this event: pair them, so that the
  // socket of a session we close can be destroyed if its client never closes it.
  let socket: Duplex | undefined;
  httpServer.prependListener(options.tls ? 'secureConnection' : 'connection', (s: Duplex) => {
    socket = s;
    h2.connections.add(s);
    s.once('close', () => h2.connections.delete(s));
  });
  httpServer.on('session', (session: http2.ServerHttp2Session) => {
    session.setLocalWindowSize(HTTP2_WINDOWS.session);
    if (socket !== undefined) h2.sessionSockets.add(socket);
    if (socket !== undefined) watchSession(session, socket, h2.sessions, handshakeTimeout);
    socket = undefined;
  });
  return httpServer;
}

// server.close(): stops listening, sends every open connection a Close and waits until they
// are gone; with http2, closes the sessions and, handshakeTimeout later, the connections.
async function closeServer(
  httpServer: http.Server | https.Server | http2.Http2SecureServer | http2.Http2Server,
  clients: ReadonlySet<AsyncSocket>,
  h2: Http2Connections | null,
  handshakeTimeout: number,
  code: number,
  reason: string
): Promise<void> {
  const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
  const all = [...clients];
  for (const ws of all) {
    // The connection's handler is reading: it receives the peer's Close and finishes.
    if (!ws.closeQueued && !ws.destroyed) sendClose(ws, code, reason).catch(() => ws.destroy());
    ws.destroyAfter(ws.closeTimeout);
  }
  // HTTP/2 connections outlive the server's close: GOAWAY lets their streams finish, and
  // those still open handshakeTimeout after the WebSockets closed are destroyed.
  for (const shut of h2?.sessions.values() ?? []) shut();
  await Promise.all(all.map(whenClosed));
  if (h2 !== null && h2.connections.size > 0) {
    // HTTP/1.1 connections that wait for their next request go now (as node:http does).
    for (const socket of h2.connections) if (!h2.sessionSockets.has(socket) && !h2.answering.has(socket)) socket.destroy();
    const timer = setTimeout(() => {
      for (const socket of h2.connections) socket.destroy();
    }, handshakeTimeout);
    await stopped;
    clearTimeout(timer);
  }
  await stopped;
}

/**
 * The open connections of a server and what runs each: the handler, then the close (1000
 * after a normal return, else 1011), with `onError` told of a failure.
 */
class Clients {
  readonly open = new Set<AsyncSocket>();
  private readonly run: (ws: AsyncSocket, req: WsRequest) => void | Promise<void>;
  private readonly drop = (ws: AsyncSocket): void => void this.open.delete(ws);

  constructor(
    handler: ConnectionHandler | ConnectionHandler<WsRequest>,
    private readonly onError: (err: unknown, ws: AsyncSocket) => void
  ) {
    // The request the handler gets is of the kind the options say (listen's overloads).
    this.run =
      typeof handler === 'function'
        ? (handler as (ws: AsyncSocket, req: WsRequest) => void | Promise<void>)
        : async (ws: AsyncSocket): Promise<void> => {
            await handleEvents(ws, handler);
          };
  }

  // Starts the handler of an accepted connection and leaves: nothing of the handshake (the
  // request, its head bytes, the refusal and upgrade closures) is kept for the life of the
  // connection; the handler gets `req` and keeps it only if it wants.
  // What an idle connection holds here is one reaction on its handler's promise, with two
  // closures over `ws` (an async function awaiting the handler cost about twice that).
  serve(ws: AsyncSocket, req: WsRequest): void {
    this.open.add(ws);
    ws.onClosed = this.drop;
    let handled: void | Promise<void>;
    try {
      handled = this.run(ws, req);
    } catch (err) {
      handled = Promise.reject(err);
    }
    Promise.resolve(handled).then(
      () => this.returned(ws),
      (err: unknown) => this.failed(ws, err)
    );
  }

  // Closes the connection once its handler is done: 1000 after a normal return, else 1011.
  private returned(ws: AsyncSocket): void {
    if (!ws.destroyed) close(ws, CloseCode.Normal).catch((err: unknown) => this.onError(err, ws));
  }

  private failed(ws: AsyncSocket, err: unknown): void {
    if (!ws.destroyed) void close(ws, CloseCode.InternalError);
    this.onError(err, ws);
  }
}
