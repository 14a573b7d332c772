/**
 * The client of WebSockets over HTTP/2 (RFC 8441), for `connect(url, { http2 })`:
 * an HTTP/2 session per origin (and TLS options) shared by the WebSockets on it, the
 * server's SETTINGS_ENABLE_CONNECT_PROTOCOL awaited, an extended CONNECT with
 * `:protocol: websocket`, and the answer checked as strictly as a 101. The session is
 * closed when its last WebSocket (or handshake) is done with it, unless it was given; one
 * that failed its handshake is destroyed, and a graceful close lingers at most
 * {@link CLOSE_LINGER_MS}. Server push is refused: our SETTINGS disable it, and a pushed
 * stream is reset (a client must not hold what it did not ask for). When the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS are in use, another session to the origin is opened.
 * @module
 */
import * as http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { AsyncSocket } from '../connection/async-socket';
import { HandshakeError } from '../core/errors';
import { HTTP2_WINDOWS } from '../core/limits';
import { checkConnectResponse, lowerCaseNames } from '../core/handshake';
import type { DeflateOptions } from '../compression/deflate';
import { KeepaliveOptions } from '../connection/keepalive';
import type { AsyncSocketOptions } from '../connection/socket-options';
import { checkExtensions, handshakeExit, refusalBody, serverName } from './client-common';
import { handOver } from './handover';

/** The options of `connect` that the HTTP/2 path uses (ConnectOptions has them all). */
export interface Http2ConnectOptions extends Omit<AsyncSocketOptions, 'role' | 'head' | 'protocol' | 'deflate'> {
  http2?: boolean | ClientHttp2Session;
  tls?: ConnectionOptions;
  headers?: Record<string, string | readonly string[]>;
  origin?: string;
  signal?: AbortSignal;
  keepalive?: KeepaliveOptions;
}

/** What `connect` worked out before choosing HTTP/2. */
export interface Http2Target {
  secure: boolean;
  host: string;
  port: number;
  path: string;
  protocols: string[];
  offer: string | undefined;
  deflate: DeflateOptions | null;
}

/** A session we opened, shared by the WebSockets to one origin with the same TLS options. */
interface Pooled {
  session: ClientHttp2Session;
  key: string;
  /** WebSockets and handshakes using it. */
  users: number;
  /** The connection under it, once connected (a graceful close may need to cut it). */
  socket: Socket | null;
}

/**
 * How long a session we close gracefully (GOAWAY, then our end of the connection) may wait
 * for the server to close its end before the connection is destroyed: a server that never
 * does must not keep a socket of ours.
 */
export const CLOSE_LINGER_MS = 2000;

// The sessions to each origin (and TLS options), oldest first.
const pool = new Map<string, Pooled[]>();
// TLS option objects, told apart by identity: a session is shared only with the same ones.
const tlsIds = new WeakMap<object, number>();
let nextTlsId = 1;

function poolKey(t: Http2Target, options: Http2ConnectOptions): string {
  let id = 0;
  if (t.secure && options.tls !== undefined) {
    id = tlsIds.get(options.tls) ?? nextTlsId++;
    tlsIds.set(options.tls, id);
  }
  return `${t.secure ? 'https' : 'http'}://${t.host}:${t.port} ${id}`;
}

const ignore = (): void => {};

/** @internal A HandshakeError that says the server does not serve WebSockets over HTTP/2. */
export const kNoExtendedConnect = Symbol('wsframe.noExtendedConnect');

function noExtendedConnect(): HandshakeError {
  const err = new HandshakeError(
    'the server did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): it does not serve WebSockets over HTTP/2'
  );
  (err as HandshakeError & { [kNoExtendedConnect]?: true })[kNoExtendedConnect] = true;
  return err;
}

// One wait per session for its SETTINGS, however many handshakes share it.
const settingsOf = new WeakMap<ClientHttp2Session, Promise<boolean>>();

// Resolves once the server's SETTINGS say whether extended CONNECT is served.
function extendedConnect(session: ClientHttp2Session): Promise<boolean> {
  if (session.remoteSettings.enableConnectProtocol === true) return Promise.resolve(true);
  let known = settingsOf.get(session);
  if (known === undefined) {
    known = waitForSettings(session);
    settingsOf.set(session, known);
    known.catch(ignore);
  }
  return known;
}

function waitForSettings(session: ClientHttp2Session): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const onSettings = (s: http2.Settings): void => {
      cleanup();
      resolve(s.enableConnectProtocol === true);
    };
    const onGone = (err?: Error): void => {
      cleanup();
      reject(err ?? new Error('the HTTP/2 session closed'));
    };
    const cleanup = (): void => {
      session.off('remoteSettings', onSettings);
      session.off('error', onGone);
      session.off('close', onGone);
    };
    session.on('remoteSettings', onSettings);
    session.on('error', onGone);
    session.on('close', onGone);
  });
}

// host:port, with an IPv6 address in brackets (RFC 3986 §3.2.2).
const authority = (t: Http2Target): string => `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;

// The streams the server lets one session have open (RFC 9113 §6.5.2); before its SETTINGS
// came, no bound is known.
const streamLimit = (session: ClientHttp2Session): number => session.remoteSettings.maxConcurrentStreams ?? Infinity;

const usable = (p: Pooled): boolean => !p.session.closed && !p.session.destroyed && p.users < streamLimit(p.session);

function openSession(t: Http2Target, options: Http2ConnectOptions): Pooled {
  const key = poolKey(t, options);
  const sessions = pool.get(key) ?? [];
  const existing = sessions.find(usable);
  if (existing !== undefined) {
    existing.users++;
    return existing;
  }
  const tls = t.secure ? { ...options.tls } : {};
  const name = serverName(t.host);
  if (t.secure && tls.servername === undefined && name !== undefined) tls.servername = name;
  const session = http2.connect(`${t.secure ? 'https' : 'http'}://${authority(t)}`, {
    ...tls,
    settings: { initialWindowSize: HTTP2_WINDOWS.stream, enablePush: false }
  });
  const pooled: Pooled = { session, key, users: 1, socket: null };
  session.once('connect', (_session: ClientHttp2Session, socket: Socket) => {
    pooled.socket = socket;
    session.setLocalWindowSize(HTTP2_WINDOWS.session);
  });
  sessions.push(pooled);
  pool.set(key, sessions);
  // A session error ends every stream on it (their own errors say so); it must not crash us.
  session.on('error', ignore);
  // Push is disabled in our SETTINGS, so nghttp2 treats a PUSH_PROMISE as a protocol error;
  // a pushed stream that comes anyway is reset at once, its data never read.
  session.on('stream', refusePush);
  session.once('close', () => unpool(pooled));
  return pooled;
}

function refusePush(stream: ClientHttp2Stream): void {
  stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
}

function unpool(p: Pooled): void {
  const sessions = pool.get(p.key);
  if (sessions === undefined) return;
  const i = sessions.indexOf(p);
  if (i >= 0) sessions.splice(i, 1);
  if (sessions.length === 0) pool.delete(p.key);
}

// One WebSocket or handshake is done with the session; the last one closes it: at once when
// it failed (the server may never have answered), else gracefully, within CLOSE_LINGER_MS.
function release(p: Pooled | null, failed = false): void {
  if (p === null) return;
  if (--p.users > 0) return;
  unpool(p);
  if (failed) {
    p.session.destroy();
    return;
  }
  p.session.close();
  const socket = p.socket;
  if (socket === null || socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * @internal The HTTP/2 path of `connect`: resolves to the WebSocket, or rejects with a
 * HandshakeError; `options.timeout` and `options.signal` bound it as they bound HTTP/1.1.
 */
export function connectHttp2(t: Http2Target, options: Http2ConnectOptions, timeout: number): Promise<AsyncSocket> {
  return new Promise<AsyncSocket>((resolve, reject) => {
    const given = typeof options.http2 === 'object' ? options.http2 : null;
    let pooled: Pooled | null = null;
    let stream: ClientHttp2Stream | null = null;
    const exit = handshakeExit<AsyncSocket>(options.signal, timeout, resolve, reject, () => {
      stream?.close(http2.constants.NGHTTP2_CANCEL);
      release(pooled, true);
    });
    if (exit.settled) return;
    const finish = exit.finish;
    const failed = (err: Error): void =>
      finish(err instanceof HandshakeError ? err : new HandshakeError(`connection failed: ${err.message}`, undefined, {}, { cause: err }));
    let session: ClientHttp2Session;
    try {
      if (given !== null) {
        session = given;
      } else {
        pooled = openSession(t, options);
        session = pooled.session;
      }
    } catch (err) {
      return failed(err as Error);
    }
    const begin = (served: boolean): void => {
      if (exit.settled) return;
      if (!served) return finish(noExtendedConnect());
      // The server's SETTINGS are known now: when the session already has as many streams as
      // they allow, this WebSocket goes on another session instead of waiting for a slot.
      if (pooled !== null && pooled.users > streamLimit(session)) {
        if (streamLimit(session) < 1) return finish(new HandshakeError('the server allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)'));
        const full = pooled;
        try {
          pooled = openSession(t, options);
        } catch (err) {
          return failed(err as Error);
        } finally {
          release(full);
        }
        session = pooled.session;
        extendedConnect(session).then(begin, failed);
        return;
      }
      const headers = lowerCaseNames(options.headers ?? {}) as OutgoingHttpHeaders;
      Object.assign(headers, {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': t.secure ? 'https' : 'http',
        ':path': t.path,
        ':authority': authority(t),
        'sec-websocket-version': '13'
      });
      if (t.protocols.length > 0) headers['sec-websocket-protocol'] = t.protocols.join(', ');
      if (t.offer !== undefined) headers['sec-websocket-extensions'] = t.offer;
      if (options.origin !== undefined) headers.origin = options.origin;
      let s: ClientHttp2Stream;
      try {
        s = session.request(headers);
      } catch (err) {
        return failed(err as Error);
      }
      stream = s;
      const closedEarly = (): void => finish(new HandshakeError(`the stream closed before the answer (code ${s.rstCode})`));
      s.on('error', failed);
      s.once('close', closedEarly);
      s.once('response', (res: IncomingHttpHeaders) => {
        if (exit.settled) return;
        const status = Number(res[':status']);
        let ws: AsyncSocket | undefined;
        try {
          const protocol = checkConnectResponse(status, res, t.protocols, true);
          const agreed = checkExtensions(status, res, t.deflate);
          s.off('error', failed);
          s.off('close', closedEarly);
          ws = handOver(s, options, { role: 'client', protocol, deflate: t.deflate, params: agreed });
        } catch (err) {
          if (ws !== undefined) ws.destroy();
          if (status === 200 || !(err instanceof HandshakeError)) {
            s.resume();
            return finish(err as Error);
          }
          // A refusal: its body often says why; the start of it goes into the error (the
          // stream's end is its end now, not a failure before the answer).
          s.off('close', closedEarly);
          s.off('error', failed);
          s.on('error', () => undefined);
          return refusalBody(s, (body) => {
            s.resume(); // the rest is not needed
            finish(body === '' ? err : new HandshakeError(err.message, status, res, { body, cause: err.cause }));
          });
        }
        const p = pooled;
        s.once('close', () => release(p));
        pooled = null; // the stream's close gives it back now
        finish(null, ws);
      });
    };
    extendedConnect(session).then(begin, failed);
  });
}
