/**
 * The server handshake for `node:http` and `node:https` `'upgrade'` events:
 * `upgrade(req, socket, head, options)` and `rejectUpgrade(socket, status, …)`; and for
 * WebSockets over HTTP/2 (RFC 8441), `node:http2` `'stream'` events: `upgradeHttp2(stream,
 * headers, options)` and `rejectHttp2(stream, status, …)`.
 * @module
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { AsyncSocket, AsyncSocketOptions } from '../connection/async-socket';
import { HandshakeError, redactHeaders } from '../core/errors';
import { handshakeRejectedChannel } from '../connection/diagnostics';
import { KEEPALIVE_RULE, KeepaliveOptions } from '../connection/keepalive';
import {
  buildRejectResponse,
  buildServerResponse,
  checkConnectRequest,
  checkUpgradeRequest,
  isRefusal,
  isToken,
  lowerCaseNames
} from '../core/handshake';
import { DeflateAcceptance, acceptDeflate } from '../core/extensions';
import { DEFLATE_RULE, DeflateOptions } from '../compression/deflate';
import { LIMIT_RULES } from '../core/limits';
import { BOOLEAN, FUNCTION, HEADERS, LIST, type Rules, checkOptions, mergeRules } from '../core/options';
import { handOver } from './handover';

/**
 * Options of {@link upgrade}. Limits are those of {@link AsyncSocketOptions}.
 * @group Handshakes
 */
export interface UpgradeOptions extends Omit<AsyncSocketOptions, 'role' | 'head' | 'protocol' | 'deflate'> {
  /**
   * Accept permessage-deflate (RFC 7692) when the client offers it: `true` for the
   * defaults, or the limits to impose and the compression tuning. Default: off.
   */
  perMessageDeflate?: boolean | DeflateOptions;
  /** Subprotocols this server speaks, in order of preference: the first one the client offered is chosen. */
  protocols?: readonly string[];
  /**
   * Refuse (400) a client that offers none of `protocols` (or for which `selectProtocol`
   * returns undefined). Default false: such a client is accepted with no subprotocol, as
   * RFC 6455 allows, and `ws.protocol` is ''.
   */
  requireProtocol?: boolean;
  /** Ping on a timer and drop the connection when a Pong is late (see `keepalive()`). Default: off. */
  keepalive?: KeepaliveOptions;
  /**
   * Chooses the subprotocol from those the client offered (in its order); return undefined
   * for none. Takes precedence over `protocols`. It must return one of `offered`.
   */
  selectProtocol?: (offered: string[], req: IncomingMessage) => string | undefined;
  /** Extra headers for the 101 response (e.g. `Set-Cookie`). */
  headers?: Record<string, string | readonly string[]>;
}

// The socket is ours during the handshake: a reset must never become an unhandled 'error'.
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * @internal Makes a socket just handed over by an `'upgrade'` event safe to hold across an
 * `await`: Node removed its own 'error' listener, so until an `AsyncSocket` owns the socket a
 * reset would be an unhandled 'error' (a crash). With no listener attached, one is added that
 * destroys the socket; {@link upgrade} removes it once its `AsyncSocket` listens.
 */
export function guardHandshake(socket: Duplex): void {
  if (socket.listenerCount('error') === 0) socket.on('error', destroyOnError);
}

// Milliseconds a refused socket gets to read our response before it is destroyed.
const REJECT_LINGER_MS = 1000;

/**
 * Answers a request that will not be upgraded with a real HTTP response, then closes the
 * socket (destroyed after a short linger if the client does not close it).
 * @example
 * ```ts
 * server.on('upgrade', (req, socket, head) => {
 *   if (req.headers.authorization !== 'Bearer secret') return rejectUpgrade(socket, 401, { 'WWW-Authenticate': 'Bearer' });
 *   upgrade(req, socket, head).then(serve, console.error);
 * });
 * ```
 * @group Handshakes
 */
export function rejectUpgrade(
  socket: Duplex,
  status: number,
  headers: Record<string, string | readonly string[]> = {},
  body = ''
): void {
  const response = buildRejectResponse(status, headers, body);
  if (handshakeRejectedChannel.hasSubscribers) {
    handshakeRejectedChannel.publish({ side: 'server', status, message: body, headers: redactHeaders(headers) });
  }
  guardHandshake(socket);
  if (socket.destroyed) return;
  socket.resume(); // drain what the client still sends, so our close is not a reset
  socket.end(response);
  setTimeout(() => socket.destroy(), REJECT_LINGER_MS).unref();
}

/** @internal The rules of {@link UpgradeOptions} (`checkOptions`). */
export const UPGRADE_RULES: Rules = mergeRules(LIMIT_RULES, {
  options: {
    perMessageDeflate: DEFLATE_RULE,
    protocols: LIST,
    requireProtocol: BOOLEAN,
    keepalive: KEEPALIVE_RULE,
    selectProtocol: FUNCTION,
    headers: HEADERS
  }
});

/**
 * @internal Checks the options of {@link upgrade} that do not depend on the request, so a
 * mistake is found before a 101 goes out (and once, by `listen`, before it serves anyone).
 * @param where how errors name the options, e.g. `listen() options`
 * @param rules the entry point's rules (those of `upgrade` and more)
 * @throws {TypeError} or RangeError for an option of the wrong type or out of range
 * @throws {SyntaxError} for an invalid subprotocol name
 */
export function checkUpgradeOptions(options: Omit<UpgradeOptions, 'selectProtocol'>, where = 'upgrade() options', rules = UPGRADE_RULES): void {
  checkOptions(options, rules, where);
  for (const p of options.protocols ?? []) {
    if (!isToken(p)) throw new SyntaxError(`invalid subprotocol name ${JSON.stringify(p)}`);
  }
}

// The options' TypeError, RangeError or SyntaxError, or null: checked before the request is
// looked at, since a mistake there is ours (the client is answered 500 at once).
function optionsError(options: Omit<UpgradeOptions, 'selectProtocol'>, where: string): unknown {
  try {
    checkUpgradeOptions(options, where);
    return null;
  } catch (err) {
    return err;
  }
}

/** What the server agrees to: the subprotocol and permessage-deflate, if any. */
interface Negotiated {
  protocol: string | undefined;
  accepted: DeflateAcceptance | null;
  deflate: DeflateOptions | null;
}

/** A refusal found while negotiating: the status to answer and why. */
class Refused {
  constructor(
    readonly status: number,
    readonly message: string,
    readonly cause: unknown
  ) {}
}

// Picks the subprotocol and accepts permessage-deflate, the same over HTTP/1.1 and HTTP/2:
// 500 when selectProtocol fails (ours), 400 for an offer we cannot accept.
function negotiate(
  offered: { protocols: string[]; extensions: string | undefined },
  options: Omit<UpgradeOptions, 'selectProtocol'>,
  select: ((offered: string[]) => string | undefined) | undefined
): Negotiated | Refused {
  let protocol: string | undefined;
  const deflate = options.perMessageDeflate === true ? {} : options.perMessageDeflate || null;
  try {
    if (select !== undefined) {
      protocol = select(offered.protocols);
      if (protocol !== undefined && !offered.protocols.includes(protocol)) {
        throw new Error(`selectProtocol returned ${JSON.stringify(protocol)}, which the client did not offer`);
      }
    } else if (options.protocols !== undefined) {
      protocol = options.protocols.find((p) => offered.protocols.includes(p));
    }
  } catch (err) {
    return new Refused(500, 'choosing the subprotocol failed', err);
  }
  if (protocol === undefined && options.requireProtocol === true) {
    const offers = offered.protocols.length === 0 ? 'none' : offered.protocols.join(', ');
    return new Refused(400, `no subprotocol this server speaks was offered (offered: ${offers})`, undefined);
  }
  let accepted: DeflateAcceptance | null = null;
  if (deflate !== null) {
    try {
      accepted = acceptDeflate(offered.extensions, deflate);
    } catch (err) {
      return new Refused(400, (err as Error).message, err);
    }
  }
  return { protocol, accepted, deflate };
}

// A failure on our side (options, selectProtocol): answer 500 and reject, as documented,
// with a HandshakeError that carries the status answered and the original error as cause.
function refuse500(answer500: () => void, headers: IncomingHttpHeaders, what: string, err: unknown): Promise<never> {
  answer500();
  const detail = err instanceof Error ? err.message : String(err);
  return Promise.reject(new HandshakeError(`${what}: ${detail}`, 500, headers, { cause: err }));
}

/**
 * Completes the server side of the handshake (RFC 6455 §4.2) on a `node:http`/`node:https`
 * `'upgrade'` event. Checks the method (GET), HTTP/1.1, `Upgrade`, `Connection`,
 * `Sec-WebSocket-Version: 13` (else 426) and the key (else 400), picks a subprotocol, writes the
 * 101, and keeps `head` (bytes that came with the request) for the first read. A request that
 * fails the checks is answered with its HTTP status and the promise rejects.
 *
 * Authentication is yours: look at `req` first and call {@link rejectUpgrade} to refuse.
 * @example
 * ```ts
 * const server = http.createServer((req, res) => res.end('plain HTTP here'));
 * server.on('upgrade', async (req, socket, head) => {
 *   try {
 *     const ws = await upgrade(req, socket, head, { protocols: ['chat.v1'] });
 *     for await (const m of messages(ws)) await sendText(ws, m.data.toString());
 *   } catch (err) {
 *     console.error(err);
 *   }
 * });
 * ```
 * @returns an {@link AsyncSocket} in server role
 * @throws {HandshakeError} (rejection) with the status that was answered
 * @throws {TypeError} (rejection) for an option of the wrong type, and `RangeError` for one
 * out of its range (README "Options and defaults"); the request is answered 500
 * @group Handshakes
 */
export function upgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: UpgradeOptions = {}
): Promise<AsyncSocket> {
  // The socket is ours from here on: a reset must never become an unhandled 'error'.
  guardHandshake(socket);
  const wrong = optionsError(options, 'upgrade() options');
  if (wrong !== null) {
    rejectUpgrade(socket, 500); // our mistake: the client is told at once
    return Promise.reject(wrong);
  }
  const checked = checkUpgradeRequest(req.method, req.httpVersion, req.headers);
  if (isRefusal(checked)) {
    rejectUpgrade(socket, checked.status, checked.headers, checked.message);
    return Promise.reject(new HandshakeError(checked.message, checked.status, req.headers));
  }
  const n = negotiate(checked, options, options.selectProtocol && ((offered) => options.selectProtocol!(offered, req)));
  if (n instanceof Refused) {
    if (n.status === 500) return refuse500(() => rejectUpgrade(socket, 500), req.headers, n.message, n.cause);
    rejectUpgrade(socket, n.status, {}, n.message);
    return Promise.reject(new HandshakeError(n.message, n.status, req.headers, { cause: n.cause }));
  }
  const { protocol, accepted, deflate } = n;
  if (socket.destroyed || !socket.writable) {
    return Promise.reject(new HandshakeError('the client went away before the handshake completed', undefined, req.headers));
  }
  let response: string;
  try {
    const headers = accepted === null ? options.headers : { ...options.headers, 'Sec-WebSocket-Extensions': accepted.response };
    response = buildServerResponse(checked.key, protocol, headers);
  } catch (err) {
    return refuse500(() => rejectUpgrade(socket, 500), req.headers, 'building the 101 response failed', err);
  }
  const s = socket as Duplex & { setNoDelay?: (on: boolean) => void; setTimeout?: (ms: number) => void };
  s.setNoDelay?.(true);
  s.setTimeout?.(0); // node:http's request timeouts no longer apply to this connection
  socket.write(response);
  const ws = handOver(socket, options, { role: 'server', head, protocol, deflate, params: accepted?.params ?? null });
  socket.off('error', destroyOnError); // the AsyncSocket's own listener takes over
  return Promise.resolve(ws);
}

/**
 * Options of {@link upgradeHttp2}: those of {@link upgrade}, with `selectProtocol` given the request's headers.
 * @group Handshakes
 */
export interface Http2UpgradeOptions extends Omit<UpgradeOptions, 'selectProtocol'> {
  /** As in {@link UpgradeOptions.selectProtocol}, with the HTTP/2 request's headers. */
  selectProtocol?: (offered: string[], headers: IncomingHttpHeaders) => string | undefined;
}

/**
 * Answers an HTTP/2 request that will not become a WebSocket with a real response (`status`,
 * `headers` and a plain-text `body`) and ends its stream; the HTTP/2 session goes on.
 * @example
 * ```ts
 * server.on('stream', (stream, headers) => {
 *   if (headers.authorization !== 'Bearer secret') return rejectHttp2(stream, 401);
 *   upgradeHttp2(stream, headers).then(serve, console.error);
 * });
 * ```
 * @throws {RangeError} for a status outside 400–599
 * @group Handshakes
 */
export function rejectHttp2(
  stream: ServerHttp2Stream,
  status: number,
  headers: Record<string, string | readonly string[]> = {},
  body = ''
): void {
  if (!Number.isInteger(status) || status < 400 || status > 599) {
    throw new RangeError(`a refusal needs a 4xx or 5xx status, not ${status}`);
  }
  if (handshakeRejectedChannel.hasSubscribers) {
    handshakeRejectedChannel.publish({ side: 'server', status, message: body, headers: redactHeaders(headers) });
  }
  guardHandshake(stream);
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ 'content-type': 'text/plain; charset=utf-8', ...lowerCaseNames(headers), ':status': status });
  stream.end(body);
}

/**
 * Completes the server side of a WebSocket over HTTP/2 (RFC 8441) for a `'stream'` event of
 * an `http2.createSecureServer` (or `createServer`) made with
 * `settings: { enableConnectProtocol: true }`: checks the extended CONNECT (`:protocol`
 * websocket, `sec-websocket-version: 13`), picks a subprotocol, accepts permessage-deflate,
 * answers `:status 200` and wraps the stream. The frames are those of RFC 6455; after the
 * closing handshake the stream ends (END_STREAM), and a reset stream is an `IOError`. A
 * request that fails the checks is answered with its status and the promise rejects.
 *
 * Advertise `enableConnectProtocol` only on a server that serves it (browsers then open
 * their WebSockets this way).
 * @example
 * ```ts
 * const server = http2.createSecureServer({ key, cert, allowHTTP1: true, settings: { enableConnectProtocol: true } });
 * server.on('stream', async (stream, headers) => {
 *   if (headers[':method'] !== 'CONNECT') return; // the rest of your HTTP/2 site
 *   const ws = await upgradeHttp2(stream, headers);
 *   for await (const m of messages(ws)) await sendText(ws, m.data.toString());
 * });
 * server.on('upgrade', (req, socket, head) => upgrade(req, socket, head).then(serve)); // HTTP/1.1 clients
 * ```
 * @returns an {@link AsyncSocket} in server role on the stream
 * @throws {HandshakeError} (rejection) with the status that was answered
 * @throws {TypeError} (rejection) or `RangeError` for options as {@link upgrade}'s; answered 500
 * @group Handshakes
 */
export function upgradeHttp2(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  options: Http2UpgradeOptions = {}
): Promise<AsyncSocket> {
  guardHandshake(stream);
  const wrong = optionsError(options, 'upgradeHttp2() options');
  if (wrong !== null) {
    rejectHttp2(stream, 500);
    return Promise.reject(wrong);
  }
  const refuse = (status: number, message: string, extra: Record<string, string> = {}, cause?: unknown): Promise<never> => {
    rejectHttp2(stream, status, extra, message);
    return Promise.reject(new HandshakeError(message, status, headers, { cause }));
  };
  const checked = checkConnectRequest(headers);
  if (isRefusal(checked)) return refuse(checked.status, checked.message, checked.headers);
  const n = negotiate(checked, options, options.selectProtocol && ((offered) => options.selectProtocol!(offered, headers)));
  if (n instanceof Refused) {
    if (n.status === 500) return refuse500(() => rejectHttp2(stream, 500), headers, n.message, n.cause);
    return refuse(n.status, n.message, {}, n.cause);
  }
  const { protocol, accepted, deflate } = n;
  if (stream.destroyed || stream.closed) {
    return Promise.reject(new HandshakeError('the client went away before the handshake completed', undefined, headers));
  }
  const answer = lowerCaseNames(options.headers ?? {}) as OutgoingHttpHeaders;
  if (protocol !== undefined) answer['sec-websocket-protocol'] = protocol;
  if (accepted !== null) answer['sec-websocket-extensions'] = accepted.response;
  try {
    stream.respond({ ...answer, ':status': 200 });
  } catch (err) {
    return refuse500(() => rejectHttp2(stream, 500), headers, 'answering the CONNECT failed', err);
  }
  const ws = handOver(stream, options, { role: 'server', protocol, deflate, params: accepted?.params ?? null });
  stream.off('error', destroyOnError); // the AsyncSocket's own listener takes over
  return Promise.resolve(ws);
}
