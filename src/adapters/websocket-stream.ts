/**
 * Web streams: the WHATWG `WebSocketStream` (whatwg/websockets#48), as a client
 * (`new WebSocketStream(url, { protocols, signal })`) and around a connection you already have
 * on either end (`toWebSocketStream(ws)`), and its error, `WebSocketStreamError` (named
 * `WebSocketError` in the standard; here that name is the library's own base error).
 *
 * The readable stream is pulled one message at a time: while nothing pulls, nothing more is
 * read from the socket than `readBufferSize` (then the socket is paused). The writable
 * stream's writes resolve once the message was handed to the kernel, so `writer.ready` waits
 * for a peer that does not read. Pings are answered and never shown.
 * @module
 */
import { AsyncSocket } from '../connection/async-socket';
import { CONNECT_RULES, ConnectOptions, connect } from '../handshake/client';
import { LIST, checkOptions, mergeRules } from '../core/options';
import { close as closeSocket, unreadInput, whenClosed } from '../connection/closing';
import { CloseCode, MAX_CLOSE_REASON, Opcode } from '../core/constants';
import { describeDeflate } from '../core/extensions';
import { isToken } from '../core/handshake';
import { readData } from '../connection/recv';
import { sendBinary, sendClose, sendText } from '../connection/send';

/**
 * A close code and reason, as `close()` takes them and `closed` resolves to them.
 * @group Streams
 */
export interface WebSocketCloseInfo {
  /** 1000 or 3000–4999 when you set it; any code the peer sent when you read it. */
  closeCode?: number;
  /** At most 123 bytes of UTF-8. */
  reason?: string;
}

/**
 * What `opened` resolves to.
 * @group Streams
 */
export interface WebSocketOpenInfo {
  /** Messages: a `string` for each text message, a `Uint8Array` for each binary one. */
  readable: ReadableStream<string | Uint8Array>;
  /** Strings are sent as text messages, `BufferSource`s as binary ones, anything else as its `String()`. */
  writable: WritableStream<unknown>;
  /** The subprotocol the server chose, or ''. */
  protocol: string;
  /** The extensions agreed (`permessage-deflate; …`), or ''. */
  extensions: string;
}

/**
 * Options of the constructor: the standard's `protocols` and `signal`, and every option of
 * {@link connect} (`headers`, `tls`, `perMessageDeflate`, limits, …), which a browser has no
 * need of.
 * @group Streams
 */
export interface WebSocketStreamOptions extends Omit<ConnectOptions, 'protocols' | 'signal'> {
  /** Subprotocols to offer, in order of preference. */
  protocols?: string[];
  /** Aborts the opening handshake (after it, the signal does nothing: use `close()`). */
  signal?: AbortSignal;
}

// Whether a close code may be set by the application (WHATWG: 1000 or 3000–4999).
function checkCloseInfo(code: number | null, reason: string): void {
  if (code !== null && code !== CloseCode.Normal && !(code >= 3000 && code <= 4999)) {
    throw new DOMException(`close code ${code} is neither 1000 nor in 3000-4999`, 'InvalidAccessError');
  }
  if (Buffer.byteLength(reason) > MAX_CLOSE_REASON) {
    throw new DOMException(`the close reason is over ${MAX_CLOSE_REASON} bytes of UTF-8`, 'SyntaxError');
  }
}

// Marks the init of an error the library makes with a code from the wire (1006, 1011, …),
// which the constructor would refuse from a user. A module-private key: nobody else can set it.
const kFromWire = Symbol('wsframe.fromWire');
type WireCloseInfo = WebSocketCloseInfo & { [kFromWire]?: true };

// connect()'s options, with protocols as a list (as the WebSocket API takes them).
const STREAM_RULES = mergeRules(CONNECT_RULES, { options: { protocols: LIST } });

/**
 * The standard's `WebSocketError` (a `DOMException` named 'WebSocketError' with `closeCode` and
 * `reason`): `closed` rejects with one after an unclean close, and one passed to
 * `writer.abort()` or `reader.cancel()` closes the connection with its code and reason.
 * @throws {DOMException} 'InvalidAccessError' for a code other than 1000 or 3000–4999,
 * 'SyntaxError' for a reason over 123 bytes
 * @group Streams
 */
export class WebSocketStreamError extends DOMException {
  readonly #brand = true;
  /** The close code, or null. */
  readonly closeCode: number | null;
  /** The close reason, or ''. */
  readonly reason: string;

  constructor(message = '', init: WebSocketCloseInfo = {}, cause?: unknown) {
    super(message, cause === undefined ? { name: 'WebSocketError' } : { name: 'WebSocketError', cause });
    let code = init.closeCode ?? null;
    const reason = init.reason ?? '';
    if ((init as WireCloseInfo)[kFromWire] !== true) checkCloseInfo(code, reason);
    if (code === null && reason !== '') code = CloseCode.Normal;
    this.closeCode = code;
    this.reason = reason;
  }

  /** True for errors made by this class (the standard ignores look-alikes in cancel and abort). */
  static isError(value: unknown): value is WebSocketStreamError {
    return typeof value === 'object' && value !== null && #brand in value;
  }
}

/** @internal An error with a code and reason from the wire (1006, 1011, …), which the constructor would refuse. */
export function closeError(message: string, code: number | null, reason: string, cause?: unknown): WebSocketStreamError {
  const init: WireCloseInfo = { closeCode: code ?? undefined, reason, [kFromWire]: true };
  return new WebSocketStreamError(message, init, cause);
}

function invalidState(message: string): DOMException {
  return new DOMException(message, 'InvalidStateError');
}

// The URL the standard accepts: ws, wss (http and https become them), no fragment.
function webSocketUrl(url: string | URL): URL {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    throw new DOMException(`${JSON.stringify(String(url))} is not a URL`, 'SyntaxError');
  }
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new DOMException(`a WebSocket URL is ws: or wss:, not ${parsed.protocol}`, 'SyntaxError');
  }
  if (parsed.hash !== '' || String(url).includes('#')) throw new DOMException('a WebSocket URL has no fragment', 'SyntaxError');
  return parsed;
}

// A BufferSource's bytes, copied (the caller may change its buffer once write() returned).
function bytesOf(chunk: ArrayBuffer | ArrayBufferView): Buffer {
  const buffer = ArrayBuffer.isView(chunk) ? chunk.buffer : chunk;
  if (typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer) {
    throw new TypeError('a view on a SharedArrayBuffer cannot be sent');
  }
  if ((buffer as { resizable?: boolean }).resizable === true) throw new TypeError('a resizable ArrayBuffer cannot be sent');
  return ArrayBuffer.isView(chunk)
    ? Buffer.from(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    : Buffer.from(new Uint8Array(chunk));
}

// A binary message as the standard hands it out: a plain Uint8Array of its own bytes (a view
// of the received chunk could show its neighbours through `.buffer`).
function ownBytes(data: Buffer): Uint8Array {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) return new Uint8Array(data.buffer);
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return copy;
}

function noop(): void {}

// What settles the two promises of a WebSocketStream.
interface Settlers {
  open(info: WebSocketOpenInfo): void;
  openFailed(err: unknown): void;
  closed(info: { closeCode: number; reason: string }): void;
  closeFailed(err: unknown): void;
}

// The connection toWebSocketStream hands to the constructor it calls, under a module-private
// key of the options (checkOptions sees only string keys).
const kAdopt = Symbol('wsframe.adopt');
type AdoptingOptions = WebSocketStreamOptions & { [kAdopt]?: AsyncSocket };

/**
 * The WHATWG `WebSocketStream`: a WebSocket as a `ReadableStream` of messages and a
 * `WritableStream` of messages, with promises for its opening and its end.
 * @example
 * ```ts
 * const wss = new WebSocketStream('wss://example.org/chat', { protocols: ['chat.v1'] });
 * const { readable, writable } = await wss.opened;
 * const writer = writable.getWriter();
 * await writer.write('hello');
 * for await (const message of readable) console.log(message);
 * const { closeCode, reason } = await wss.closed;
 * ```
 * @group Streams
 */
export class WebSocketStream {
  /** The URL, as the constructor parsed it. */
  readonly url: string;
  /** Resolves once the WebSocket is open; rejects if it never opens. */
  readonly opened: Promise<WebSocketOpenInfo>;
  /** Resolves after a clean close; rejects with a {@link WebSocketStreamError} after any other end. */
  readonly closed: Promise<{ closeCode: number; reason: string }>;

  #ws: AsyncSocket | null = null;
  #state: 'connecting' | 'open' | 'closing' | 'closed' = 'connecting';
  #handshake: AbortController | null = null;
  #inFlight = 0; // writes not yet flushed
  #lostWrite = false; // a write the close came before: the close is not clean
  #writableClosing = false; // the writable's close() was called
  #readOn = false; // the writable's close() with the readable being read: messages go on to the peer's Close
  #readable: ReadableStream<string | Uint8Array> | null = null;
  #socketClosed = false; // the socket closed; with #readOn, settled once the input is read
  #readOnTimer: NodeJS.Timeout | null = null;
  #readController: ReadableStreamDefaultController<string | Uint8Array> | null = null;
  #writeController: WritableStreamDefaultController | null = null;
  #settle: Settlers;
  #ended: Promise<void>;
  #end!: () => void;

  constructor(url: string | URL, options: WebSocketStreamOptions = {}) {
    checkOptions(options, STREAM_RULES, 'new WebSocketStream() options');
    const existing = (options as AdoptingOptions)[kAdopt] ?? null;
    this.#ended = new Promise((resolve) => (this.#end = resolve));
    const settle: Partial<Settlers> = {};
    this.opened = new Promise<WebSocketOpenInfo>((resolve, reject) => {
      settle.open = resolve;
      settle.openFailed = reject;
    });
    this.closed = new Promise<{ closeCode: number; reason: string }>((resolve, reject) => {
      settle.closed = resolve;
      settle.closeFailed = reject;
    });
    // Neither may become an unhandled rejection: a caller often awaits only one of them.
    this.opened.catch(noop);
    this.closed.catch(noop);
    this.#settle = settle as Settlers;
    if (existing !== null) {
      this.url = String(url);
      this.#open(existing);
      return;
    }
    const parsed = webSocketUrl(url);
    this.url = parsed.href;
    const protocols = options.protocols ?? [];
    for (const [i, p] of protocols.entries()) {
      if (!isToken(p)) throw new DOMException(`invalid subprotocol name ${JSON.stringify(p)}`, 'SyntaxError');
      if (protocols.indexOf(p) !== i) throw new DOMException(`subprotocol ${JSON.stringify(p)} is offered twice`, 'SyntaxError');
    }
    const signal = options.signal;
    if (signal?.aborted) {
      this.#state = 'closed';
      this.#settle.openFailed(signal.reason);
      this.#settle.closeFailed(signal.reason);
      this.#end();
      return;
    }
    const handshake = new AbortController();
    this.#handshake = handshake;
    const onAbort = (): void => {
      if (this.#state !== 'connecting') return;
      this.#state = 'closed';
      handshake.abort();
      this.#settle.openFailed(signal!.reason);
      this.#settle.closeFailed(signal!.reason);
      this.#end();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    connect(parsed, { ...options, protocols, signal: handshake.signal }).then(
      (ws) => {
        signal?.removeEventListener('abort', onAbort);
        this.#handshake = null;
        if (this.#state !== 'connecting') {
          ws.destroy(); // aborted or closed while the handshake finished
          return;
        }
        this.#open(ws);
      },
      (err: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        this.#handshake = null;
        if (this.#state !== 'connecting' && this.#state !== 'closing') return; // aborted: settled already
        this.#state = 'closed';
        this.#settle.openFailed(new WebSocketStreamError('the WebSocket did not open', {}, err));
        this.#settle.closeFailed(closeError('the WebSocket did not open', CloseCode.Abnormal, '', err));
        this.#end();
      }
    );
  }

  /**
   * Closes the WebSocket: with `closeCode` and `reason` when given, else with an empty Close
   * (the peer sees 1005). A `reason` without a code means 1000. Before the WebSocket is open,
   * it gives up opening (both promises reject). `closed` says how it ended.
   * @throws {DOMException} 'InvalidAccessError' for a code other than 1000 or 3000–4999,
   * 'SyntaxError' for a reason over 123 bytes
   */
  close(closeInfo: WebSocketCloseInfo = {}): void {
    if (typeof closeInfo !== 'object' || closeInfo === null) throw new TypeError('close() takes { closeCode, reason }');
    const code = closeInfo.closeCode ?? null;
    const reason = closeInfo.reason ?? '';
    checkCloseInfo(code, reason);
    this.#startClose(code, reason);
  }

  #open(ws: AsyncSocket): void {
    this.#ws = ws;
    this.#state = 'open';
    const readable = new ReadableStream<string | Uint8Array>(
      {
        start: (controller) => {
          this.#readController = controller;
        },
        pull: (controller) => this.#pull(controller),
        cancel: (reason) => this.#closeUsing(reason)
      },
      new CountQueuingStrategy({ highWaterMark: 1 })
    );
    this.#readable = readable;
    const writable = new WritableStream<unknown>(
      {
        start: (controller) => {
          this.#writeController = controller;
        },
        write: (chunk) => this.#write(chunk),
        close: () => this.#closeWritable(),
        abort: (reason) => this.#closeUsing(reason)
      },
      new CountQueuingStrategy({ highWaterMark: 1 })
    );
    whenClosed(ws).then(() => {
      this.#socketClosed = true;
      // Reading on after the writable's close(): what came before the socket closed (the
      // peer's Close among it) is read first, and #pull settles the end when it gets there.
      if (this.#readOn && unreadInput(ws)) return;
      this.#connectionClosed();
    });
    this.#settle.open({
      readable,
      writable,
      protocol: ws.protocol,
      extensions: ws.deflate === null ? '' : describeDeflate(ws.deflate.params)
    });
  }

  // One message into the readable stream, skipping pings and pongs; nothing after the Close.
  async #pull(controller: ReadableStreamDefaultController<string | Uint8Array>): Promise<void> {
    const ws = this.#ws!;
    for (;;) {
      if (this.#state === 'closed') return;
      let m;
      try {
        m = await readData(ws);
      } catch {
        // The connection failed or went away: the end, with its error, comes from the close.
        return this.#endOfInput();
      }
      if (m.opcode === Opcode.Close) return this.#endOfInput();
      // Messages that arrive once the closing handshake started are dropped (the standard),
      // unless it was the writable's close() while the readable is being read: then what the
      // peer sent before its Close is read on (RFC 6455 §5.5.1).
      if (this.#state !== 'open' && !this.#readOn) continue;
      if (m.opcode === Opcode.Text) return controller.enqueue(m.data.toString('utf8'));
      if (m.opcode === Opcode.Binary) return controller.enqueue(ownBytes(m.data));
    }
  }

  // The readable got to the end of the input: if the socket closed while it still had input
  // to read, the end is settled now.
  #endOfInput(): Promise<void> {
    if (this.#socketClosed && this.#state !== 'closed') this.#connectionClosed();
    return this.#ended;
  }

  async #write(chunk: unknown): Promise<void> {
    const ws = this.#ws!;
    let sent: Promise<void>;
    if (typeof chunk === 'string') sent = sendText(ws, chunk);
    else if (chunk instanceof ArrayBuffer || ArrayBuffer.isView(chunk) || isSharedBuffer(chunk)) sent = sendBinary(ws, bytesOf(chunk as ArrayBuffer));
    else sent = sendText(ws, String(chunk));
    this.#inFlight++;
    try {
      await sent;
    } catch {
      this.#lostWrite = true;
      throw invalidState('the WebSocket closed before this message was sent');
    } finally {
      this.#inFlight--;
    }
  }

  // The writable's close(): an empty Close, and done when the WebSocket is closed cleanly.
  // With the readable being read (a reader or a pipe holds it), nothing is dropped: the
  // readable goes on to the peer's Close, within closeTimeout. Else what still comes is read
  // and dropped, as close() does.
  async #closeWritable(): Promise<void> {
    this.#writableClosing = true;
    if (this.#state === 'open' && this.#readable!.locked) {
      this.#state = 'closing';
      this.#readOn = true;
      const ws = this.#ws!;
      if (!ws.closeQueued) sendClose(ws).catch(noop);
      ws.destroyAfter(ws.closeTimeout);
      // A reader that stopped reading must not keep the end from coming: past closeTimeout
      // the rest is not waited for (the close is then not clean).
      this.#readOnTimer = setTimeout(() => {
        this.#readOn = false;
        ws.destroy();
        if (this.#socketClosed && this.#state !== 'closed') this.#connectionClosed();
      }, ws.closeTimeout);
    } else {
      this.#startClose(null, '');
    }
    await this.#ended;
    await this.closed; // rejects after an unclean close
  }

  // cancel() and abort(): the code and reason of a WebSocketStreamError, else none.
  async #closeUsing(reason: unknown): Promise<void> {
    if (WebSocketStreamError.isError(reason)) this.#startClose(reason.closeCode, reason.reason);
    else this.#startClose(null, '');
  }

  #startClose(code: number | null, reason: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (this.#state === 'connecting') {
      this.#state = 'closing';
      this.#handshake?.abort(); // the handshake's rejection settles both promises
      return;
    }
    this.#state = 'closing';
    const ws = this.#ws!;
    if (!ws.closeQueued) {
      const sent = code === null && reason === '' ? sendClose(ws) : sendClose(ws, code ?? CloseCode.Normal, reason);
      sent.catch(noop);
    }
    // Reads until the peer's Close when nothing else reads, and bounds it all by closeTimeout.
    closeSocket(ws).catch(noop);
  }

  // The socket closed: settle everything, cleanly or with one error for all.
  #connectionClosed(): void {
    const ws = this.#ws!;
    if (this.#readOnTimer !== null) clearTimeout(this.#readOnTimer);
    this.#state = 'closed';
    const peer = ws.peerClose;
    const { code, reason } = ws.state.result();
    if (peer !== null && ws.state.clean && this.#inFlight === 0 && !this.#lostWrite) {
      try {
        this.#readController!.close();
      } catch {
        // already closed or errored (cancelled)
      }
      // The writable is errored a turn later: a pipeTo() from the readable sees the end first
      // and closes the writable (which then completes cleanly) instead of failing on the error.
      setImmediate(() => {
        if (!this.#writableClosing) this.#writeController!.error(invalidState('the WebSocket is closed'));
        this.#settle.closed({ closeCode: code, reason });
        this.#end();
      });
      return;
    } else {
      const err = closeError('the WebSocket was not closed cleanly', code, reason);
      this.#readController!.error(err);
      this.#writeController!.error(err);
      this.#settle.closeFailed(err);
    }
    this.#end();
  }
}

function isSharedBuffer(value: unknown): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer;
}

/**
 * A {@link WebSocketStream} for a connection you already have, on either end: from `listen`,
 * `upgrade`, `upgradeHttp2` or `connect`. `opened` is resolved at once.
 * @example
 * ```ts
 * await listen({ port: 9001 }, async (socket) => {
 *   const { readable, writable } = await toWebSocketStream(socket).opened;
 *   await readable.pipeThrough(new TransformStream({ transform: (m, c) => c.enqueue(String(m).toUpperCase()) })).pipeTo(writable);
 * });
 * ```
 * @group Streams
 */
export function toWebSocketStream(ws: AsyncSocket, url = ''): WebSocketStream {
  const options: AdoptingOptions = { [kAdopt]: ws };
  return new WebSocketStream(url, options);
}
