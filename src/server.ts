/**
 * Layer 3, the server handshake for `node:http` and `node:https` `'upgrade'` events:
 * `upgrade(req, socket, head, options)` and `rejectUpgrade(socket, status, …)`.
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AsyncSocket, AsyncSocketOptions } from './async-socket';
import { HandshakeError } from './core/errors';
import { handshakeRejectedChannel } from './diagnostics';
import { KeepaliveOptions, keepalive } from './keepalive';
import {
  buildRejectResponse,
  buildServerResponse,
  checkUpgradeRequest,
  isRefusal,
  isToken
} from './core/handshake';
import { DeflateAcceptance, acceptDeflate } from './core/extensions';
import { DeflateOptions, checkDeflateOptions } from './deflate';

/** Options of {@link upgrade}. Limits are those of {@link AsyncSocketOptions}. */
export interface UpgradeOptions extends Omit<AsyncSocketOptions, 'role' | 'head' | 'protocol' | 'deflate'> {
  /**
   * Accept permessage-deflate (RFC 7692) when the client offers it: `true` for the
   * defaults, or the limits to impose and the compression tuning. Default: off.
   */
  perMessageDeflate?: boolean | DeflateOptions;
  /** Subprotocols this server speaks, in order of preference: the first one the client offered is chosen. */
  protocols?: readonly string[];
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
 */
export function rejectUpgrade(
  socket: Duplex,
  status: number,
  headers: Record<string, string | readonly string[]> = {},
  body = ''
): void {
  const response = buildRejectResponse(status, headers, body);
  if (handshakeRejectedChannel.hasSubscribers) {
    handshakeRejectedChannel.publish({ side: 'server', status, message: body, headers });
  }
  guardHandshake(socket);
  if (socket.destroyed) return;
  socket.resume(); // drain what the client still sends, so our close is not a reset
  socket.end(response);
  setTimeout(() => socket.destroy(), REJECT_LINGER_MS).unref();
}

/**
 * @internal Checks the options of {@link upgrade} that do not depend on the request, so a
 * mistake is found before a 101 goes out (and once, by `listen`, before it serves anyone).
 * @throws {RangeError} for deflate limits or keepalive times out of range
 * @throws {SyntaxError} for an invalid subprotocol name
 */
export function checkUpgradeOptions(options: UpgradeOptions): void {
  if (typeof options.perMessageDeflate === 'object') checkDeflateOptions(options.perMessageDeflate);
  for (const p of options.protocols ?? []) {
    if (!isToken(p)) throw new SyntaxError(`invalid subprotocol name ${JSON.stringify(p)}`);
  }
  if (options.keepalive) {
    const { interval, timeout = interval } = options.keepalive;
    if (!(interval > 0) || !(timeout > 0)) throw new RangeError('keepalive interval and timeout must be positive');
  }
}

// A failure on our side (options, selectProtocol): answer 500 and reject, as documented,
// with a HandshakeError that carries the status answered and the original error as cause.
function refuse500(socket: Duplex, req: IncomingMessage, what: string, err: unknown): Promise<never> {
  rejectUpgrade(socket, 500);
  const detail = err instanceof Error ? err.message : String(err);
  return Promise.reject(new HandshakeError(`${what}: ${detail}`, 500, req.headers, { cause: err }));
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
 */
export function upgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: UpgradeOptions = {}
): Promise<AsyncSocket> {
  // The socket is ours from here on: a reset must never become an unhandled 'error'.
  guardHandshake(socket);
  const checked = checkUpgradeRequest(req.method, req.httpVersion, req.headers);
  if (isRefusal(checked)) {
    rejectUpgrade(socket, checked.status, checked.headers, checked.message);
    return Promise.reject(new HandshakeError(checked.message, checked.status, req.headers));
  }
  let protocol: string | undefined;
  const deflate = options.perMessageDeflate === true ? {} : options.perMessageDeflate || null;
  try {
    checkUpgradeOptions(options);
    if (options.selectProtocol !== undefined) {
      protocol = options.selectProtocol(checked.protocols, req);
      if (protocol !== undefined && !checked.protocols.includes(protocol)) {
        throw new Error(`selectProtocol returned ${JSON.stringify(protocol)}, which the client did not offer`);
      }
    } else if (options.protocols !== undefined) {
      protocol = options.protocols.find((p) => checked.protocols.includes(p));
    }
  } catch (err) {
    return refuse500(socket, req, 'choosing the subprotocol failed', err);
  }
  let accepted: DeflateAcceptance | null = null;
  if (deflate !== null) {
    try {
      accepted = acceptDeflate(checked.extensions, deflate);
    } catch (err) {
      const message = (err as Error).message;
      rejectUpgrade(socket, 400, {}, message);
      return Promise.reject(new HandshakeError(message, 400, req.headers, { cause: err }));
    }
  }
  if (socket.destroyed || !socket.writable) {
    return Promise.reject(new HandshakeError('the client went away before the handshake completed', undefined, req.headers));
  }
  let response: string;
  try {
    const headers = accepted === null ? options.headers : { ...options.headers, 'Sec-WebSocket-Extensions': accepted.response };
    response = buildServerResponse(checked.key, protocol, headers);
  } catch (err) {
    return refuse500(socket, req, 'building the 101 response failed', err);
  }
  const s = socket as Duplex & { setNoDelay?: (on: boolean) => void; setTimeout?: (ms: number) => void };
  s.setNoDelay?.(true);
  s.setTimeout?.(0); // node:http's request timeouts no longer apply to this connection
  socket.write(response);
  const settings = accepted === null ? undefined : { ...deflate, ...accepted.params };
  const ws = new AsyncSocket(socket, { ...options, role: 'server', head, protocol, deflate: settings });
  socket.off('error', destroyOnError); // the AsyncSocket's own listener takes over
  if (options.keepalive) keepalive(ws, options.keepalive);
  return Promise.resolve(ws);
}
