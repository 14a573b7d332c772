/**
 * The options of a standalone server (`listen`, `acceptWebSocket`), its public types, and
 * the rules that check them.
 * @module
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { AsyncSocket } from '../connection/async-socket';
import { EventHandlers } from '../adapters/events';
import { BOOLEAN, FUNCTION, OBJECT, STRING, type Rules, bytesRule, countRule, mergeRules, msRule } from '../core/options';
import { UPGRADE_RULES, UpgradeOptions } from '../handshake/server';


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
export const ADMISSION_RULES: Rules = {
  options: {
    path: STRING,
    verify: FUNCTION,
    maxHeaderSize: countRule(1, MAX_SAFE, 'bytes'),
    maxHeadersCount: countRule(0, MAX_SAFE, '0: no limit'),
    handshakeTimeout: msRule(1)
  }
};
export const ACCEPT_RULES = mergeRules(UPGRADE_RULES, ADMISSION_RULES);
// SETTINGS_MAX_CONCURRENT_STREAMS is a 32-bit field (RFC 9113 §6.5.2).
export const LISTEN_RULES = mergeRules(ACCEPT_RULES, {
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

/** Default of {@link ListenCommonOptions.maxBackpressure}: 1 MiB. */
export const DEFAULT_MAX_BACKPRESSURE = 1024 * 1024;

/**
 * Options of {@link acceptWebSocket}: every option of `upgrade`, and the request limits and
 * checks of {@link listen} (`path`, `verify`, `maxHeaderSize`, `maxHeadersCount`,
 * `handshakeTimeout`) with the same defaults.
 * @group Server
 */
export interface AcceptOptions
  extends UpgradeOptions,
    Pick<ListenOptions, 'path' | 'verify' | 'maxHeaderSize' | 'maxHeadersCount' | 'handshakeTimeout'> {}
