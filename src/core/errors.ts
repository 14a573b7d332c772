/**
 * The error tree. Every error wsframe raises on purpose derives from {@link WebSocketError}:
 *
 * ```text
 * WebSocketError
 * ├── ProtocolError        the peer broke RFC 6455; a Close with `closeCode` was sent
 * │   ├── InvalidUtf8Error     closeCode 1007
 * │   └── PayloadTooBigError   closeCode 1009
 * ├── IOError              the socket ended, was reset, timed out, or is closed
 * ├── HandshakeError       the opening handshake failed (later layers)
 * └── ConcurrencyError     two reads at once on one socket
 * ```
 *
 * API misuse by the caller (a control payload over 125 bytes, an invalid close code to send)
 * throws `TypeError` or `RangeError` synchronously instead.
 * @module
 */
import { CloseCode } from './constants';

/**
 * Stable machine-readable reasons carried by {@link ProtocolError.code}.
 * @group Errors
 */
export type ProtocolErrorCode =
  | 'WS_ERR_UNEXPECTED_RSV'
  | 'WS_ERR_INVALID_OPCODE'
  | 'WS_ERR_FRAGMENTED_CONTROL'
  | 'WS_ERR_CONTROL_TOO_LONG'
  | 'WS_ERR_EXPECTED_MASK'
  | 'WS_ERR_UNEXPECTED_MASK'
  | 'WS_ERR_NON_MINIMAL_LENGTH'
  | 'WS_ERR_INVALID_LENGTH'
  | 'WS_ERR_UNEXPECTED_CONTINUATION'
  | 'WS_ERR_EXPECTED_CONTINUATION'
  | 'WS_ERR_INVALID_UTF8'
  | 'WS_ERR_INVALID_CLOSE_CODE'
  | 'WS_ERR_INVALID_CLOSE_PAYLOAD'
  | 'WS_ERR_FRAME_TOO_BIG'
  | 'WS_ERR_MESSAGE_TOO_BIG'
  | 'WS_ERR_TOO_MANY_FRAGMENTS'
  | 'WS_ERR_INVALID_COMPRESSED_DATA'
  | 'WS_ERR_INFLATE_RATIO'
  | 'WS_ERR_INFLATE_BUDGET'
  | 'WS_ERR_AMPLIFIED_BUDGET';

/**
 * The root of every error wsframe raises for protocol, I/O and handshake failures.
 * @group Errors
 */
export class WebSocketError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The peer violated RFC 6455. By the time a caller sees this error the connection has been
 * failed: a Close frame carrying {@link closeCode} was sent (when the socket could still
 * take it) and the socket was ended.
 * @group Errors
 */
export class ProtocolError extends WebSocketError {
  /** A stable reason, e.g. `WS_ERR_INVALID_OPCODE`. */
  readonly code: ProtocolErrorCode;
  /** The close code sent to the peer: 1002, 1007, 1008, 1009 or 1013. */
  readonly closeCode: number;

  constructor(code: ProtocolErrorCode, message: string, closeCode: number = CloseCode.ProtocolError) {
    super(`Invalid WebSocket frame: ${message}`);
    this.code = code;
    this.closeCode = closeCode;
  }
}

/**
 * A text message or close reason that is not valid UTF-8 (close code 1007).
 * @group Errors
 */
export class InvalidUtf8Error extends ProtocolError {
  constructor(message = 'invalid UTF-8 in text') {
    super('WS_ERR_INVALID_UTF8', message, CloseCode.InvalidPayload);
  }
}

/**
 * A frame or message over the configured limits (close code 1009).
 * @group Errors
 */
export class PayloadTooBigError extends ProtocolError {
  /** The size that was announced or reached, in bytes. */
  readonly size: number;
  /** The limit that was crossed, in bytes. */
  readonly limit: number;

  constructor(code: 'WS_ERR_FRAME_TOO_BIG' | 'WS_ERR_MESSAGE_TOO_BIG', size: number, limit: number) {
    const what = code === 'WS_ERR_FRAME_TOO_BIG' ? 'frame' : 'message';
    super(code, `${what} of ${size} bytes exceeds the limit of ${limit} bytes`, CloseCode.MessageTooBig);
    this.size = size;
    this.limit = limit;
  }
}

/**
 * Why an {@link IOError} happened.
 * @group Errors
 */
export type IOErrorReason = 'eof' | 'reset' | 'timeout' | 'closed' | 'aborted';

/**
 * The socket cannot carry on: it ended (possibly in the middle of a frame), was reset,
 * timed out, or was already closed by the close handshake or a protocol failure.
 * @group Errors
 */
export class IOError extends WebSocketError {
  /** What happened to the socket. */
  readonly reason: IOErrorReason;
  /** For a read cut short: bytes of the pending read that had arrived. */
  readonly bytesRead: number;
  /** For a read cut short: bytes the pending read wanted. */
  readonly expected: number;

  constructor(
    reason: IOErrorReason,
    message: string,
    options: { bytesRead?: number; expected?: number; cause?: unknown } = {}
  ) {
    super(message, { cause: options.cause });
    this.reason = reason;
    this.bytesRead = options.bytesRead ?? 0;
    this.expected = options.expected ?? 0;
  }
}

/** Header names whose values are secrets: never in an error, an inspected error or a diagnostics message. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'sec-websocket-key']);

/**
 * Most bytes of a refusal's body a client keeps in its HandshakeError.
 * @group Errors
 */
export const REFUSAL_BODY_MAX = 1024;

/** What stands in for a secret header's value. */
export const REDACTED = '[redacted]';

/**
 * A copy of `headers` with the values of secret headers (`authorization`,
 * `proxy-authorization`, `cookie`, `set-cookie`, `sec-websocket-key`, in any case) replaced by
 * {@link REDACTED}.
 */
export function redactHeaders<T extends Record<string, unknown>>(headers: T): T {
  let out: Record<string, unknown> | null = null;
  for (const name of Object.keys(headers)) {
    if (!SECRET_HEADERS.has(name.toLowerCase())) continue;
    out ??= { ...headers };
    out[name] = REDACTED;
  }
  return (out ?? headers) as T;
}

/**
 * The opening handshake failed; carries what the peer answered, when it answered.
 * @group Errors
 */
export class HandshakeError extends WebSocketError {
  /** The HTTP status received or sent, when there was one. */
  readonly status: number | undefined;
  /**
   * The response (client) or request (server) headers, lower-cased, with the values of
   * secret ones (`authorization`, `cookie`, `set-cookie`, `proxy-authorization`,
   * `sec-websocket-key`) shown as `'[redacted]'`: errors get logged.
   */
  readonly headers: Record<string, string | string[] | undefined>;
  /**
   * On the client, the start of a refusal's body (at most {@link REFUSAL_BODY_MAX} bytes,
   * decoded as UTF-8): often the server's reason. The message quotes it too.
   */
  readonly body: string | undefined;

  constructor(
    message: string,
    status?: number,
    headers: Record<string, string | string[] | undefined> = {},
    options?: { cause?: unknown; body?: string }
  ) {
    super(options?.body ? `${message}: ${JSON.stringify(options.body)}` : message, options);
    this.status = status;
    this.headers = redactHeaders(headers);
    this.body = options?.body;
  }
}

/**
 * A second read was started while one was pending: reads on one socket must be serialized.
 * @group Errors
 */
export class ConcurrencyError extends WebSocketError {}

/**
 * The `IOError` for an error a socket (or a stream) raised: 'timeout' for ETIMEDOUT,
 * 'aborted' for an abort, 'reset' for anything else, with the original as `cause`.
 */
export function toIOError(err: unknown): IOError {
  if (err instanceof IOError) return err;
  const code = (err as { code?: string } | null)?.code;
  const reason = code === 'ETIMEDOUT' ? 'timeout' : code === 'ABORT_ERR' ? 'aborted' : 'reset';
  const text = err instanceof Error ? err.message : String(err);
  return new IOError(reason, `socket error: ${text}`, { cause: err });
}

const ignoreRejection = (): void => {};

/**
 * `p`, with its rejection counted as handled when nobody awaits it: for the promise of a
 * send, whose failure (the peer went away) the connection's reader and `whenClosed` see
 * anyway; one nobody awaits must not end the process as an unhandled rejection. A caller who
 * awaits it still gets the rejection.
 */
export function markHandled<T>(p: Promise<T>): Promise<T> {
  p.catch(ignoreRejection);
  return p;
}
