/**
 * The opening handshake's WebSocket parts (RFC 6455 §4), pure: keys, the accept value,
 * header checks and the raw responses a server writes. HTTP itself is parsed by
 * `node:http` (llhttp); nothing here parses HTTP.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { GUID } from './constants';
import { HandshakeError } from './errors';

/**
 * Header values as `node:http` gives them.
 * @group Handshakes
 */
export type Headers = Record<string, string | string[] | undefined>;

/**
 * A fresh `Sec-WebSocket-Key`: 16 random bytes in base64 (§4.1).
 * @group Handshakes
 */
export function generateKey(): string {
  return randomBytes(16).toString('base64');
}

/**
 * The `Sec-WebSocket-Accept` value for a key: base64(SHA-1(key + GUID)) (§1.3, §4.2.2).
 * @group Handshakes
 */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

// 16 bytes in base64: 21 free characters, a last one that encodes only 2 bits, then "==".
const KEY_RE = /^[+/0-9A-Za-z]{21}[AQgw]==$/;

/**
 * True when `key` is a base64-encoded 16-byte value, as §4.1 requires of the client.
 * @group Handshakes
 */
export function isValidKey(key: string): boolean {
  return KEY_RE.test(key);
}

// RFC 7230 §3.2.6 token characters, which subprotocol names must use (RFC 6455 §4.1).
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** True when `name` is a valid subprotocol name (an HTTP token). */
export function isToken(name: string): boolean {
  return TOKEN_RE.test(name);
}

/** One header's value as a single string (repeated headers joined with commas, RFC 7230 §3.2.2). */
export function headerValue(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** The same headers with lower-case names, as HTTP/2 requires (RFC 9113 §8.2.1). */
export function lowerCaseNames<V>(headers: Record<string, V>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

/** A comma-separated token list (`Connection`, `Sec-WebSocket-Protocol`), trimmed, empties dropped. */
export function tokenList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** True when the list in `value` holds `token`, compared case-insensitively. */
export function hasToken(value: string | undefined, token: string): boolean {
  const want = token.toLowerCase();
  return tokenList(value).some((t) => t.toLowerCase() === want);
}

/** Normalises the protocols a client offers; throws on invalid or repeated names. */
export function normalizeProtocols(protocols: string | readonly string[] | undefined): string[] {
  const list = protocols === undefined ? [] : typeof protocols === 'string' ? [protocols] : [...protocols];
  const seen = new Set<string>();
  for (const p of list) {
    if (!isToken(p)) throw new SyntaxError(`invalid subprotocol name ${JSON.stringify(p)}`);
    if (seen.has(p)) throw new SyntaxError(`subprotocol ${JSON.stringify(p)} is offered twice`);
    seen.add(p);
  }
  return list;
}

/**
 * A request that passed {@link checkUpgradeRequest}.
 * @group Handshakes
 */
export interface UpgradeRequest {
  key: string;
  /** Subprotocols the client offered, in its order. */
  protocols: string[];
  /** Extensions the client offered (raw header value), if any. */
  extensions: string | undefined;
}

/**
 * Why a request cannot be upgraded: the HTTP status and headers to answer with.
 * @group Handshakes
 */
export interface UpgradeRefusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/**
 * Checks an HTTP request that asks for a WebSocket upgrade (§4.2.1). It takes what
 * `node:http` gives (`req.method`, `req.httpVersion`, `req.headers`) as well as what a
 * hand-written parser would: header names in any case, and the version as `'1.1'` or
 * `'HTTP/1.1'`.
 * @example
 * ```ts
 * // req: an http.IncomingMessage (or your own parser's method, version and headers)
 * const checked = checkUpgradeRequest(req.method, req.httpVersion, req.headers);
 * if (isRefusal(checked)) socket.end(buildRejectResponse(checked.status, checked.headers, checked.message));
 * else socket.write(buildServerResponse(checked.key, checked.protocols.includes('chat.v1') ? 'chat.v1' : undefined));
 * ```
 * @returns the key and offers, or the refusal to answer with: 405 for a method other than
 * GET, 400 for HTTP before 1.1, a missing or wrong `Upgrade`/`Connection`, a malformed key or
 * an invalid protocol list, and 426 (with `Sec-WebSocket-Version: 13`) for another version.
 * @group Handshakes
 */
export function checkUpgradeRequest(
  method: string | undefined,
  httpVersion: string,
  headers: Headers
): UpgradeRequest | UpgradeRefusal {
  if (method !== 'GET') return { status: 405, message: `method ${method} cannot upgrade`, headers: { Allow: 'GET' } };
  if (Object.keys(headers).some((name) => name !== name.toLowerCase())) headers = lowerCaseNames(headers);
  if (httpVersion.startsWith('HTTP/')) httpVersion = httpVersion.slice(5);
  const [major, minor] = httpVersion.split('.').map(Number);
  if (!(major! > 1 || (major === 1 && minor! >= 1))) {
    return { status: 400, message: `HTTP/${httpVersion} cannot upgrade; HTTP/1.1 is needed` };
  }
  // §4.2.1 (and RFC 7230 §5.4): the request carries a Host header.
  if (headerValue(headers, 'host') === undefined) return { status: 400, message: 'missing Host header' };
  if (!hasToken(headerValue(headers, 'upgrade'), 'websocket')) {
    return { status: 400, message: 'the Upgrade header does not name websocket' };
  }
  if (!hasToken(headerValue(headers, 'connection'), 'upgrade')) {
    return { status: 400, message: 'the Connection header does not name upgrade' };
  }
  const version = headerValue(headers, 'sec-websocket-version');
  if (version?.trim() !== '13') {
    return {
      status: 426,
      message: `unsupported Sec-WebSocket-Version ${JSON.stringify(version ?? '')}`,
      headers: { 'Sec-WebSocket-Version': '13' }
    };
  }
  const key = headerValue(headers, 'sec-websocket-key')?.trim();
  if (key === undefined || !isValidKey(key)) return { status: 400, message: 'missing or malformed Sec-WebSocket-Key' };
  const protocols = offeredProtocols(headers);
  if (!Array.isArray(protocols)) return protocols;
  return { key, protocols, extensions: headerValue(headers, 'sec-websocket-extensions') };
}

/**
 * A WebSocket request over HTTP/2 that passed {@link checkConnectRequest}.
 * @group Handshakes
 */
export type ConnectRequest = Omit<UpgradeRequest, 'key'>;

// The offered subprotocols, or a refusal for a malformed list (either HTTP version).
function offeredProtocols(headers: Headers): string[] | UpgradeRefusal {
  const protocols = tokenList(headerValue(headers, 'sec-websocket-protocol'));
  if (!protocols.every(isToken) || new Set(protocols).size !== protocols.length) {
    return { status: 400, message: 'malformed Sec-WebSocket-Protocol' };
  }
  return protocols;
}

/**
 * Checks an HTTP/2 extended CONNECT that asks for a WebSocket (RFC 8441 §4 and §5): the
 * `:method` CONNECT, the `:protocol` websocket, `:scheme`, `:path` and `:authority`, and
 * `sec-websocket-version: 13`. There is no key: the stream itself is the proof.
 * @returns the offers, or the refusal to answer with: 405 for another method, 400 for a
 * missing or other `:protocol` or pseudo-header, a malformed protocol list or another
 * version (then with `sec-websocket-version: 13`: HTTP/2 has no 426 Upgrade)
 * @group Handshakes
 */
export function checkConnectRequest(headers: Headers): ConnectRequest | UpgradeRefusal {
  const method = headerValue(headers, ':method');
  if (method !== 'CONNECT') return { status: 405, message: `method ${method} cannot open a WebSocket over HTTP/2`, headers: { allow: 'CONNECT' } };
  const protocol = headerValue(headers, ':protocol');
  if (protocol?.toLowerCase() !== 'websocket') {
    return { status: 400, message: `an extended CONNECT for ${JSON.stringify(protocol ?? '')}, not websocket` };
  }
  for (const pseudo of [':scheme', ':path', ':authority']) {
    if (!headerValue(headers, pseudo)) return { status: 400, message: `missing ${pseudo}` };
  }
  const version = headerValue(headers, 'sec-websocket-version');
  if (version?.trim() !== '13') {
    return { status: 400, message: `unsupported sec-websocket-version ${JSON.stringify(version ?? '')}`, headers: { 'sec-websocket-version': '13' } };
  }
  const protocols = offeredProtocols(headers);
  if (!Array.isArray(protocols)) return protocols;
  return { protocols, extensions: headerValue(headers, 'sec-websocket-extensions') };
}

/**
 * True for a refusal from {@link checkUpgradeRequest} or {@link checkConnectRequest}.
 * @group Handshakes
 */
export function isRefusal(r: UpgradeRequest | ConnectRequest | UpgradeRefusal): r is UpgradeRefusal {
  return 'status' in r;
}

// Header names and values written into a raw response must not break its framing.
function checkHeader(name: string, value: string): void {
  if (!isToken(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
  if (/[\r\n\0]/.test(value)) throw new TypeError(`invalid value for header ${name}`);
}

function headerLines(headers: Record<string, string | number | readonly string[]>): string {
  let out = '';
  for (const [name, raw] of Object.entries(headers)) {
    for (const v of Array.isArray(raw) ? raw : [String(raw)]) {
      checkHeader(name, v);
      out += `${name}: ${v}\r\n`;
    }
  }
  return out;
}

/**
 * The 101 response that completes the handshake (§4.2.2).
 * @group Handshakes
 */
export function buildServerResponse(
  key: string,
  protocol: string | undefined,
  extraHeaders: Record<string, string | number | readonly string[]> = {}
): string {
  const headers: Record<string, string | number | readonly string[]> = {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Accept': acceptKey(key)
  };
  if (protocol) headers['Sec-WebSocket-Protocol'] = protocol;
  return `HTTP/1.1 101 Switching Protocols\r\n${headerLines({ ...headers, ...extraHeaders })}\r\n`;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
};

/**
 * A complete HTTP/1.1 response that refuses an upgrade and closes the connection.
 * @group Handshakes
 */
export function buildRejectResponse(
  status: number,
  headers: Record<string, string | number | readonly string[]> = {},
  body = ''
): string {
  if (!Number.isInteger(status) || status < 400 || status > 599) {
    throw new RangeError(`a refusal needs a 4xx or 5xx status, not ${status}`);
  }
  const bodyBytes = Buffer.byteLength(body, 'utf8');
  const all: Record<string, string | number | readonly string[]> = {
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': bodyBytes,
    ...headers
  };
  return `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n${headerLines(all)}\r\n${body}`;
}

/**
 * Checks a server's 101 response to our request (§4.1, the client's duties).
 * @returns the subprotocol the server chose ('' for none)
 * @throws {HandshakeError} for a wrong `Upgrade`, `Connection` or `Sec-WebSocket-Accept`, a
 * protocol that was not offered, or an extension when `offeredExtensions` is false (the
 * caller checks the extensions it did offer, as `connect` does with permessage-deflate)
 * @group Handshakes
 */
export function checkServerResponse(
  status: number,
  headers: Headers,
  key: string,
  offered: readonly string[],
  offeredExtensions = false
): string {
  const fail = (message: string): never => {
    throw new HandshakeError(message, status, headers);
  };
  if (status !== 101) fail(`expected status 101, got ${status}`);
  if (!hasToken(headerValue(headers, 'upgrade'), 'websocket')) fail('the response\'s Upgrade header is not websocket');
  if (!hasToken(headerValue(headers, 'connection'), 'upgrade')) fail('the response\'s Connection header is not upgrade');
  const accept = headerValue(headers, 'sec-websocket-accept');
  if (accept === undefined || accept.trim() !== acceptKey(key)) fail('Sec-WebSocket-Accept does not match the key');
  return checkAnswer(status, headers, offered, offeredExtensions);
}

/**
 * Checks a server's answer to our extended CONNECT over HTTP/2 (RFC 8441 §5): status 200,
 * then the subprotocol and extensions as {@link checkServerResponse} does.
 * @returns the subprotocol the server chose ('' for none)
 * @throws {HandshakeError} as checkServerResponse does
 * @group Handshakes
 */
export function checkConnectResponse(status: number, headers: Headers, offered: readonly string[], offeredExtensions = false): string {
  if (status !== 200) throw new HandshakeError(`expected status 200, got ${status}`, status, headers);
  return checkAnswer(status, headers, offered, offeredExtensions);
}

// The subprotocol and extensions of an accepting answer, over either HTTP version.
function checkAnswer(status: number, headers: Headers, offered: readonly string[], offeredExtensions: boolean): string {
  const fail = (message: string): never => {
    throw new HandshakeError(message, status, headers);
  };
  const chosen = headerValue(headers, 'sec-websocket-protocol');
  let protocol = '';
  if (chosen !== undefined) {
    protocol = chosen.trim();
    if (!offered.includes(protocol)) {
      fail(
        offered.length === 0
          ? `the server chose subprotocol ${JSON.stringify(protocol)} though none was offered`
          : `the server chose subprotocol ${JSON.stringify(protocol)}, which was not offered`
      );
    }
  }
  const extensions = headerValue(headers, 'sec-websocket-extensions');
  if (extensions !== undefined && extensions.trim() !== '' && !offeredExtensions) {
    fail(`the server enabled extensions that were not offered: ${extensions}`);
  }
  return protocol;
}
