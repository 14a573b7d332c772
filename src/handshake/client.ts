/**
 * The client handshake: `connect(url, options)` sends the upgrade request through
 * `http.request`/`https.request` (Node parses the HTTP) and checks the 101 response strictly.
 * @module
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { AsyncSocket, AsyncSocketOptions } from '../connection/async-socket';
import { HandshakeError } from '../core/errors';
import { checkExtensions, handshakeExit, refusalBody, serverName } from './client-common';
import { KEEPALIVE_RULE, KeepaliveOptions } from '../connection/keepalive';
import { checkServerResponse, generateKey, normalizeProtocols } from '../core/handshake';
import { deflateOffer } from '../core/extensions';
import { DEFLATE_RULE, DeflateOptions } from '../compression/deflate';
import { LIMIT_RULES } from '../core/limits';
import { BOOLEAN, HEADERS, OBJECT, SIGNAL, STRING, STRINGS, type Rules, checkOptions, countRule, mergeRules, msRule } from '../core/options';
import type { ClientHttp2Session } from 'node:http2';
import { connectHttp2, kNoExtendedConnect } from './client-http2';
import { handOver } from './handover';

/**
 * Options of {@link connect}. Limits are those of {@link AsyncSocketOptions}.
 * @group Handshakes
 */
export interface ConnectOptions extends Omit<AsyncSocketOptions, 'role' | 'head' | 'protocol' | 'deflate'> {
  /**
   * Offer permessage-deflate (RFC 7692): `true` for the defaults, or the parameters to ask
   * for and the compression tuning. Used only if the server accepts. Default: off.
   */
  perMessageDeflate?: boolean | DeflateOptions;
  /** Subprotocols to offer, in order of preference. */
  protocols?: string | readonly string[];
  /** Ping on a timer and drop the connection when a Pong is late (see `keepalive()`). Default: off. */
  keepalive?: KeepaliveOptions;
  /**
   * Extra request headers (e.g. `Authorization`, `Cookie`), for the URL's origin only (see
   * `trustRedirects`). A name that is not an HTTP token, or a value with CR, LF or another
   * control character, is a `TypeError`.
   */
  headers?: Record<string, string | readonly string[]>;
  /** The `Origin` header, as a browser would send it; for the URL's origin only, checked as `headers` are. */
  origin?: string;
  /** Time for the whole handshake (including redirects), in ms. Default 10000; 0 for none. */
  timeout?: number;
  /** Aborts the handshake (not the connection once it is open). */
  signal?: AbortSignal;
  /**
   * TLS options for `wss:` (`ca`, `cert`, `key`, `servername`, …), for the URL's origin only
   * (see `trustRedirects`). Certificates are verified by default.
   */
  tls?: ConnectionOptions;
  /** Follow 3xx redirects (to ws:, wss:, http: or https: URLs). Default false. */
  followRedirects?: boolean;
  /** Most redirects to follow. Default 10. */
  maxRedirects?: number;
  /**
   * Send `headers`, `origin` and `tls` also where a redirect leads to another origin (another
   * scheme, host or port than the URL given). Default false: such a hop gets only the
   * WebSocket headers (a fresh key, the version, the protocols and extensions offered) and
   * Node's TLS defaults, so credentials, API keys and a client certificate stay with the
   * origin they were given for. `true` sends them wherever the redirects lead, even from
   * wss: to ws:.
   */
  trustRedirects?: boolean;
  /**
   * Open the WebSocket as a stream of an HTTP/2 connection (RFC 8441) instead of an HTTP/1.1
   * upgrade: `true` to open a session to the URL's origin, shared by the WebSockets to that
   * origin made with the same `tls` object and closed when the last of them is done; or a
   * `ClientHttp2Session` of your own (it stays open). The server must advertise
   * SETTINGS_ENABLE_CONNECT_PROTOCOL, else the handshake fails (see `http2Fallback`).
   * `wss:` is HTTP/2 over TLS (ALPN h2); `ws:` is cleartext h2c with prior knowledge.
   * Redirects are not followed over HTTP/2. Default false.
   */
  http2?: boolean | ClientHttp2Session;
  /** With `http2`: when the server does not serve WebSockets over HTTP/2, connect over HTTP/1.1 instead. Default false. */
  http2Fallback?: boolean;
}

const DEFAULT_TIMEOUT = 10_000;

/** Splits a ws:/wss: URL into what `http.request` needs. */
function target(url: URL): { secure: boolean; host: string; port: number; path: string } {
  let secure: boolean;
  if (url.protocol === 'ws:' || url.protocol === 'http:') secure = false;
  else if (url.protocol === 'wss:' || url.protocol === 'https:') secure = true;
  else throw new SyntaxError(`unsupported URL scheme ${url.protocol} (use ws: or wss:)`);
  // An empty fragment ("…#") leaves url.hash '' too; the href still ends with '#'.
  if (url.hash !== '' || url.href.endsWith('#')) {
    throw new SyntaxError('a WebSocket URL must not have a fragment (RFC 6455 §3)');
  }
  // IPv6 literals come bracketed in URL.hostname; http.request wants them bare.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port !== '' ? Number(url.port) : secure ? 443 : 80;
  // An empty query ("/x?") leaves url.search ''; keep its '?' so the path goes out verbatim.
  const search = url.search !== '' ? url.search : url.href.endsWith('?') ? '?' : '';
  return { secure, host, port, path: (url.pathname || '/') + search };
}

// The origin (RFC 6454 §4: scheme, host, port) of a URL that target() accepts, with http:
// counted as ws: and https: as wss:.
function originOf(url: URL): string {
  const { secure, host, port } = target(url);
  return `${secure ? 'wss' : 'ws'}://${host}:${port}`;
}

// Node's http.request throws a TypeError of its own (ERR_INVALID_CHAR, ERR_INVALID_HTTP_TOKEN)
// for these, after our timer and abort listener were armed; check them first, and name the
// option (never the value, which may be a secret).
function checkHeaders(options: ConnectOptions): void {
  const given: Array<[option: string, name: string, value: unknown]> = Object.entries(options.headers ?? {}).map(
    ([name, value]) => ['headers', name, value]
  );
  if (options.origin !== undefined) given.push(['origin', 'Origin', options.origin]);
  for (const [option, name, value] of given) {
    try {
      http.validateHeaderName(name);
      for (const v of Array.isArray(value) ? value : [value]) http.validateHeaderValue(name, v);
    } catch (err) {
      throw new TypeError(`connect() option ${option}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * @internal The rules of {@link ConnectOptions} (`checkOptions`). A timeout of NaN or below 0
 * would leave the handshake without a bound, and one over 2^31-1 ms fires at once.
 */
export const CONNECT_RULES: Rules = mergeRules(LIMIT_RULES, {
  options: {
    perMessageDeflate: DEFLATE_RULE,
    protocols: STRINGS,
    keepalive: KEEPALIVE_RULE,
    headers: HEADERS,
    origin: STRING,
    timeout: msRule(0, 'ms; 0: none'),
    signal: SIGNAL,
    tls: OBJECT,
    followRedirects: BOOLEAN,
    maxRedirects: countRule(0),
    trustRedirects: BOOLEAN,
    http2: { kind: 'either', rules: [BOOLEAN, OBJECT] },
    http2Fallback: BOOLEAN
  }
});

/**
 * Opens a WebSocket connection: the client handshake of RFC 6455 §4.1 for `ws://` and
 * `wss://` URLs. The response is checked strictly (status 101, `Upgrade`, `Connection`, the
 * exact `Sec-WebSocket-Accept`, a subprotocol only among those offered, and an extension only as offered: permessage-deflate
 * when `perMessageDeflate` asked for it, with parameters that fit the offer).
 * Bytes that arrive right after the 101 response are kept for the first read.
 * @example
 * ```ts
 * const ws = await connect('ws://127.0.0.1:9001/chat', { protocols: ['chat.v1'], timeout: 5000 });
 * await sendText(ws, 'hello');
 * console.log((await readData(ws)).data.toString(), ws.protocol);
 * ```
 * @returns an {@link AsyncSocket} in client role, with `protocol` set
 * @throws {HandshakeError} for any failure of the handshake, with the status and headers
 * received, if any (also for `tls` options that Node refuses, as its `cause`)
 * @throws {SyntaxError} (rejection) for a URL that is not ws:/wss:, or an invalid protocol name
 * @throws {TypeError} (rejection) for a header name or value (in `headers` or `origin`) that
 * HTTP cannot carry (CR, LF or another control character), before anything is sent
 * @throws {TypeError} (rejection) for an option of the wrong type (a limit given as a string,
 * `headers` that are not an object of strings), before anything is sent
 * @throws {RangeError} (rejection) for a number out of its range (README "Options and
 * defaults"): a `timeout` outside 0 to 2^31-1 ms, a negative limit, `NaN`, …
 *
 * Every error of `connect`, misuse included, comes as a rejection, and whatever failed,
 * the timer, the abort listener and the socket are released first.
 * @group Handshakes
 */
export function connect(url: string | URL, options: ConnectOptions = {}): Promise<AsyncSocket> {
  let protocols: string[];
  let first: URL;
  let deflate: DeflateOptions | null = null;
  let offer: string | undefined;
  try {
    checkOptions(options, CONNECT_RULES, 'connect() options');
    first = new URL(url);
    target(first);
    protocols = normalizeProtocols(options.protocols);
    checkHeaders(options);
    if (options.perMessageDeflate) {
      deflate = options.perMessageDeflate === true ? {} : options.perMessageDeflate;
      offer = deflateOffer(deflate);
    }
  } catch (err) {
    return Promise.reject(err);
  }
  const timeout = options.timeout ?? DEFAULT_TIMEOUT;
  if (options.http2) {
    const h2 = connectHttp2({ ...target(first), protocols, offer, deflate }, options, timeout);
    if (!options.http2Fallback) return h2;
    return h2.catch((err: unknown) =>
      (err as { [kNoExtendedConnect]?: true })[kNoExtendedConnect] ? connect(url, { ...options, http2: false }) : Promise.reject(err)
    );
  }
  const maxRedirects = options.followRedirects ? (options.maxRedirects ?? 10) : 0;
  const firstOrigin = originOf(first);

  return new Promise<AsyncSocket>((resolve, reject) => {
    let req: http.ClientRequest | null = null;
    // The one exit: every path, success or failure, releases what was armed here.
    const exit = handshakeExit<AsyncSocket>(options.signal, timeout, resolve, reject, () => req?.destroy());
    if (exit.settled) return;
    const finish = exit.finish;
    const connectionFailed = (err: Error): void =>
      finish(new HandshakeError(`connection failed: ${err.message}`, undefined, {}, { cause: err }));

    const attempt = (url: URL, redirects: number): void => {
      const { secure, host, port, path } = target(url);
      const key = generateKey();
      // What the caller gave (headers, Origin, TLS options with a client certificate) is for
      // the first URL's origin: a redirect elsewhere must not hand it to someone else, unless
      // the caller trusts the redirects.
      const own = options.trustRedirects === true || originOf(url) === firstOrigin;
      const headers: Record<string, string | readonly string[]> = {
        ...(own ? options.headers : {}),
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': key,
        'Sec-WebSocket-Version': '13'
      };
      if (protocols.length > 0) headers['Sec-WebSocket-Protocol'] = protocols.join(', ');
      if (offer !== undefined) headers['Sec-WebSocket-Extensions'] = offer;
      if (own && options.origin !== undefined) headers.Origin = options.origin;
      const requestOptions: https.RequestOptions = {
        ...(secure && own ? options.tls : {}),
        host,
        port,
        path,
        method: 'GET',
        headers: headers as http.OutgoingHttpHeaders,
        agent: false
      };
      const name = serverName(host);
      if (secure && requestOptions.servername === undefined && name !== undefined) requestOptions.servername = name;
      let r: http.ClientRequest;
      try {
        // Throws at once for TLS options Node refuses (a key that does not parse, …).
        r = secure ? https.request(requestOptions) : http.request(requestOptions);
      } catch (err) {
        return connectionFailed(err as Error);
      }
      req = r;
      r.on('error', connectionFailed);
      r.on('upgrade', (res: http.IncomingMessage, socket: Socket, head: Buffer) => {
        if (exit.settled) return socket.destroy();
        let ws: AsyncSocket | undefined;
        try {
          // Extensions are checked once, by checkExtensions (it also refuses any we did not offer).
          const protocol = checkServerResponse(res.statusCode ?? 0, res.headers, key, protocols, true);
          const agreed = checkExtensions(res.statusCode ?? 0, res.headers, deflate);
          socket.setNoDelay(true);
          socket.setTimeout(0);
          ws = handOver(socket, options, { role: 'client', head, protocol, deflate, params: agreed });
        } catch (err) {
          if (ws !== undefined) ws.destroy();
          else socket.destroy();
          return finish(err as Error);
        }
        finish(null, ws);
      });
      r.on('response', (res: http.IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (!(status >= 300 && status < 400) && status !== 101) {
          // A refusal: its body often says why; the start of it goes into the error.
          return refusalBody(res, (body) => {
            res.resume(); // the rest is not needed; let the connection finish
            finish(new HandshakeError(`expected status 101, got ${status}`, status, res.headers, { body: body || undefined }));
          });
        }
        res.resume(); // the body is not needed; let the connection finish
        const location = res.headers.location;
        if (status >= 300 && status < 400 && location !== undefined && maxRedirects > 0) {
          if (redirects >= maxRedirects) {
            return finish(new HandshakeError(`more than ${maxRedirects} redirects`, status, res.headers));
          }
          let next: URL;
          try {
            next = new URL(location, url);
            next.protocol = next.protocol === 'http:' ? 'ws:' : next.protocol === 'https:' ? 'wss:' : next.protocol;
            target(next);
          } catch (err) {
            return finish(new HandshakeError(`bad redirect to ${location}`, status, res.headers, { cause: err }));
          }
          r.destroy();
          return attempt(next, redirects + 1);
        }
        if (status === 101) {
          // node:http hands a 101 over as 'upgrade' only with Upgrade and Connection: upgrade;
          // without them it lands here: say which header is wrong, not "expected 101, got 101".
          try {
            checkServerResponse(status, res.headers, key, protocols);
          } catch (err) {
            return finish(err as Error);
          }
        }
        finish(new HandshakeError(`expected status 101, got ${status}`, status, res.headers));
      });
      r.end();
    };
    attempt(first, 0);
  });
}
