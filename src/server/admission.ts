/**
 * Admitting a WebSocket request, the same over HTTP/1.1, HTTP/2 and a socket accepted by
 * hand: the path, the header count and size, `verify` within `handshakeTimeout`, and the
 * answer to a request that is no WebSocket.
 * @module
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { AsyncSocket } from '../connection/async-socket';
import { UpgradeOptions } from '../handshake/server';
import { type ListenCommonOptions, type WsRequest } from './options';

/**
 * The path of a request target (RFC 9112 §3.2), or null for a target that is not one:
 * origin-form ('/chat?room=1') gives the path up to '?' as sent, so '//host/chat' is not
 * '/chat'; absolute-form ('http://host/chat') gives the URL's path. Node's HTTP parser lets
 * through targets that the URL parser refuses ('http://[/chat', 'ws://%zz/', '//[/x'): those
 * are the client's error (400), not ours (a 500 and a stack trace on stderr).
 */
export function requestPath(target: string): string | null {
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
export function verifyWithin(
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
export interface AdmitRules {
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
export async function admit(
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
export type Refuse = (status: number, headers?: Record<string, string | readonly string[]>, body?: string) => void;

// Non-pseudo header fields of a request (HTTP/2 lists `:method`, `:path` … among them).
export function headerCount(req: WsRequest): number {
  let n = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.charCodeAt(0) !== 0x3a) n++;
  return n;
}

// Whether a request has more than `max` header fields (0: no count). Node's parser is set to
// read one past the count (nodeHeadersCount), so such a request can be told apart.
export function tooManyHeaders(req: WsRequest, max: number): boolean {
  return max > 0 && headerCount(req) > max;
}

// node:http's maxHeadersCount for our own: one more, so a request over ours is seen (0: none).
export function nodeHeadersCount(max: number): number {
  return max > 0 ? max + 1 : 0;
}

/** The checks of {@link admit} from the options of `listen` or `acceptWebSocket`, with their defaults. */
export function admitRules(
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
export const NOT_WEBSOCKET = 'This is a WebSocket endpoint.';
export function answerNotWebSocket(res: http.ServerResponse, extraHeaders: Record<string, string> = {}): void {
  res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', 'Sec-WebSocket-Version': '13', Upgrade: 'websocket', ...extraHeaders });
  res.end(`${NOT_WEBSOCKET}\n`);
}

// The size of an HTTP/2 request's header list as RFC 9113 §6.5.2 counts it (Node advertises
// SETTINGS_MAX_HEADER_LIST_SIZE but does not hold clients to it).
export function headerListSize(req: WsRequest): number {
  let n = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) n += Buffer.byteLength(raw[i]!) + Buffer.byteLength(raw[i + 1]!) + 32;
  return n;
}

// Ends a connection whose handshake has settled: what was written goes out, then it is destroyed.
export function endSettled(conn: Duplex): void {
  conn.on('error', ignoreError);
  conn.once('finish', () => conn.destroy());
  conn.end();
}

function ignoreError(): void {}
