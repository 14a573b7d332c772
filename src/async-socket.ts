/**
 * Layer 1: `AsyncSocket`, promise-based exact reads and flush-aware writes over a
 * `net.Socket`, a `tls.TLSSocket` or the `stream.Duplex` that a `node:http` upgrade hands
 * over. It also carries the connection's WebSocket state (role, limits, close state, the
 * message in progress) that the frame layer reads and updates, but it knows nothing of
 * frames itself.
 * @module
 */
import type { Duplex } from 'node:stream';
import { ConcurrencyError, IOError } from './core/errors';
import type { CloseInfo } from './core/close';
import { MessageAssembler } from './core/message';

import { applyMask, unmaskSmall } from './core/mask';
import { closeChannel, openChannel } from './diagnostics';
import { DeflateSettings, PerMessageDeflate } from './deflate';

/** Which end of the connection this is: clients mask what they send, servers must not. */
export type Role = 'client' | 'server';

/** Options of an {@link AsyncSocket}; every size is in bytes and every time in milliseconds. */
export interface AsyncSocketOptions {
  /** Which end this is. Decides masking and who closes TCP first. */
  role: Role;
  /** The subprotocol the handshake agreed on, if any. */
  protocol?: string;
  /** Bytes that already arrived after the handshake (the `head` of an upgrade): read first. */
  head?: Uint8Array;
  /** Largest payload of one frame. Default 16 MiB. Larger frames fail the connection with 1009. */
  maxFrameSize?: number;
  /** Largest reassembled message. Default 16 MiB. Larger messages fail with 1009. */
  maxMessageSize?: number;
  /** Most frames in one message. Default 131072. More fail with 1008. */
  maxFragments?: number;
  /** How long to wait for the peer to finish the close handshake before destroying. Default 10000. */
  closeTimeout?: number;
  /** Idle timeout: destroy the socket after this long with no traffic (0: never). Default 0. */
  idleTimeout?: number;
  /**
   * How much received data is buffered ahead of the reader before the socket is paused
   * (TCP backpressure then slows the peer). Each buffered chunk also counts 64 bytes of
   * overhead, so a flood of tiny chunks pauses it too. A frame larger than this is still
   * read whole. Default 256 KiB.
   */
  readBufferSize?: number;
  /**
   * permessage-deflate parameters agreed in the handshake (RFC 7692), with the compression
   * tuning. `connect`, `upgrade` and `listen` set this from their `perMessageDeflate`
   * option; set it yourself only after your own handshake agreed on them.
   */
  deflate?: DeflateSettings;
}

/** The default limits, documented in README. */
export const DEFAULTS = {
  maxFrameSize: 16 * 1024 * 1024,
  maxMessageSize: 16 * 1024 * 1024,
  maxFragments: 131072,
  closeTimeout: 10_000,
  idleTimeout: 0,
  readBufferSize: 256 * 1024
} as const;

// Bookkeeping cost charged for each buffered chunk, so that many tiny chunks count.
const CHUNK_OVERHEAD = 64;
// Chunks smaller than this are copied into a shared tail buffer of TAIL_SIZE bytes, once at
// least COALESCE_AFTER chunks are queued.
const COALESCE_MAX = 1024;
const COALESCE_AFTER = 8;
const TAIL_SIZE = 16 * 1024;
const RESOLVED: Promise<void> = Promise.resolve();
// Buffer's own view constructor: a view made with it skips subarray()'s species lookup and
// argument clamping (measured here: 37 against 42 ns per 16-byte view).
const FastBuffer = (Buffer as unknown as { [Symbol.species]: new (buffer: ArrayBufferLike, offset: number, length: number) => Buffer })[
  Symbol.species
];
const EMPTY = Buffer.alloc(0);
// Errors of fast-path writes are reported by the socket's 'error' event and the next call.
const ignoreWriteResult = (): void => {};

/** Callbacks of a pending read (see {@link AsyncSocket.waitThen}). */
type ReadyFn = (ws: AsyncSocket) => void;
type FailFn = (err: Error, ws: AsyncSocket) => void;

// The socket's listeners are shared functions; each finds its AsyncSocket here.
const kOwner = Symbol('wsframe.AsyncSocket');
type SocketWithOwner = Duplex & { [kOwner]: AsyncSocket };
function onData(this: SocketWithOwner, chunk: Buffer): void {
  this[kOwner].feed(chunk);
}
function onEnd(this: SocketWithOwner): void {
  this[kOwner].onEnd();
}
function onError(this: SocketWithOwner, err: Error): void {
  this[kOwner].onError(err);
}
function onClose(this: SocketWithOwner): void {
  this[kOwner].onClose();
}

// One or two chunks in one corked write; `done` is called for the last one.
function writeParts(s: Duplex, a: Uint8Array, b: Uint8Array | undefined, done: (err?: Error | null) => void): void {
  if (b === undefined) {
    s.write(a, done);
    return;
  }
  s.cork();
  s.write(a);
  s.write(b, done);
  s.uncork();
}

/** @internal The error for a read started while another is pending. */
export function concurrentRead(): ConcurrencyError {
  return new ConcurrencyError('another read is pending on this socket: reads must be serialized');
}

function ioErrorFrom(err: unknown): IOError {
  if (err instanceof IOError) return err;
  const code = (err as { code?: string } | null)?.code;
  const reason = code === 'ETIMEDOUT' ? 'timeout' : code === 'ABORT_ERR' ? 'aborted' : 'reset';
  const text = err instanceof Error ? err.message : String(err);
  return new IOError(reason, `socket error: ${text}`, { cause: err });
}

/**
 * A socket with exact reads and writes that resolve once the data is handed to the kernel.
 *
 * Reads are pull-based: while nobody reads and more than `readBufferSize` is buffered the
 * socket is paused. One read may be pending at a time; a second one rejects with
 * {@link ConcurrencyError}.
 */
export class AsyncSocket {
  /** The wrapped stream. */
  readonly socket: Duplex;
  /** Which end this is. */
  readonly role: Role;
  /** True for the client end: frames it sends are masked. */
  readonly isClient: boolean;
  /** The negotiated subprotocol, or '' when none. */
  protocol: string;
  readonly maxFrameSize: number;
  readonly maxMessageSize: number;
  readonly maxFragments: number;
  readonly closeTimeout: number;

  /** permessage-deflate state when the handshake agreed on it (RFC 7692), else null. */
  readonly deflate: PerMessageDeflate | null;
  /** @internal The message being received (frame layer state). */
  readonly assembler: MessageAssembler;
  /** True once a Close frame was sent or queued behind other sends: no new message may be sent. */
  closeQueued = false;
  /** True once a Close frame was handed to the socket: no frame at all may follow. */
  closeSent = false;
  /** True once the peer's Close frame was received. */
  closeReceived = false;
  /** The peer's close code and reason, once its Close frame was received. */
  peerClose: CloseInfo | null = null;
  /** @internal True while a frame-layer read is waiting for bytes. */
  reading = false;
  /** @internal The waiting frame-layer read: its mode, role, and how to settle it. */
  readMode = 0;
  /** @internal */
  readClient = false;
  /** @internal */
  readResolve: ((value: unknown) => void) | null = null;
  /** @internal */
  readReject: ((err: unknown) => void) | null = null;
  /** @internal Payload bytes of the frame at the head of the buffer already unmasked and checked as UTF-8. */
  validatedAhead = 0;
  /** @internal The latest Ping payload waiting for the socket to drain before its Pong. */
  deferredPong: Buffer | null = null;
  /** @internal Tail of the queue of sends that must not interleave (fragmented messages). */
  sendQueue: Promise<void> | null = null;

  // Receive queue: chunks[first..] hold `available` unread bytes, starting at `offset`.
  private chunks: Buffer[] = [];
  private first = 0;
  private offset = 0;
  private avail = 0;
  private readonly readBufferSize: number;
  private paused = false;
  // The pending read, if any: it wakes at `need` bytes and wants `expected` in the end.
  private need = 0;
  private expected = 0;
  private resolveWait: ReadyFn | null = null;
  private rejectWait: FailFn | null = null;
  // Why reads can no longer be served beyond what is buffered (EOF, error), and why reads
  // cannot be served at all (the connection is closed).
  private ended: IOError | null = null;
  private readClosed: IOError | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  // The buffer small chunks are appended to, and the queued view of its newest bytes.
  private tail: Buffer | null = null;
  private tailUsed = 0;
  private tailStart = 0;
  private tailView: Buffer | null = null;
  // Pings waiting for their Pong, in the order they were sent.
  private pongWaiters: Map<string, { resolve: (rtt: number) => void; reject: (err: Error) => void; sentAt: number }> | null =
    null;

  constructor(socket: Duplex, options: AsyncSocketOptions) {
    this.socket = socket;
    this.role = options.role;
    this.isClient = options.role === 'client';
    this.protocol = options.protocol ?? '';
    this.maxFrameSize = options.maxFrameSize ?? DEFAULTS.maxFrameSize;
    this.maxMessageSize = options.maxMessageSize ?? DEFAULTS.maxMessageSize;
    this.maxFragments = options.maxFragments ?? DEFAULTS.maxFragments;
    this.closeTimeout = options.closeTimeout ?? DEFAULTS.closeTimeout;
    this.readBufferSize = options.readBufferSize ?? DEFAULTS.readBufferSize;
    this.deflate = options.deflate ? new PerMessageDeflate(options.deflate, this.isClient) : null;
    this.assembler = new MessageAssembler({ maxMessageSize: this.maxMessageSize, maxFragments: this.maxFragments });
    if (options.head && options.head.length > 0) this.feed(Buffer.from(options.head));

    // Shared listener functions find this object through a symbol on the socket, so an idle
    // connection carries no closures of its own.
    (socket as SocketWithOwner)[kOwner] = this;
    socket.on('data', onData);
    socket.on('end', onEnd);
    // A listener is always attached, so a broken socket never crashes the process; the
    // error reaches the caller through the pending (or next) read or write instead.
    socket.on('error', onError);
    socket.on('close', onClose);
    if (openChannel.hasSubscribers) openChannel.publish({ ws: this });
    const idle = options.idleTimeout ?? DEFAULTS.idleTimeout;
    if (idle > 0 && 'setTimeout' in socket) {
      (socket as unknown as { setTimeout(ms: number, cb: () => void): void }).setTimeout(idle, () =>
        this.destroy(new IOError('timeout', `no traffic for ${idle} ms`))
      );
    }
  }

  /** Bytes received and not yet read. */
  get bufferedAmount(): number {
    return this.avail;
  }

  /** True when the socket can no longer be read or written. */
  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  /**
   * Pushes bytes as if they had arrived from the socket (the socket's 'data' events come
   * here; also handy for tests and benchmarks). The buffer becomes the socket's: masked
   * payloads are unmasked in place.
   */
  feed(chunk: Buffer): void {
    if (this.readClosed !== null) return; // the connection is closed: input is dropped
    const n = chunk.length;
    if (n === 0) return;
    // Coalesce only when chunks pile up (a large frame trickling in), so ordinary traffic
    // neither copies nor keeps a tail buffer.
    if (n < COALESCE_MAX && this.chunks.length - this.first >= COALESCE_AFTER) this.append(chunk);
    else this.chunks.push(chunk);
    this.avail += n;
    if (this.resolveWait !== null && this.avail >= this.need) {
      const resolve = this.resolveWait;
      this.clearWait();
      resolve(this);
    }
    if (
      !this.paused &&
      this.resolveWait === null &&
      this.avail + (this.chunks.length - this.first) * CHUNK_OVERHEAD > this.readBufferSize
    ) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** @internal How many separate buffers hold the unread bytes (for tests of the coalescing). */
  get bufferedChunks(): number {
    return this.chunks.length - this.first;
  }

  // Small chunks are copied into a shared tail buffer instead of being queued one by one: a
  // peer that trickles a large frame in 1-byte TCP segments would otherwise make us hold a
  // Buffer object (about 100 bytes) per byte. Views handed out earlier stay valid, since the
  // tail is only ever appended to.
  private append(chunk: Buffer): void {
    const n = chunk.length;
    const last = this.chunks.length - 1;
    let tail = this.tail;
    if (tail !== null && this.tailUsed + n <= tail.length && last >= this.first && this.chunks[last] === this.tailView) {
      chunk.copy(tail, this.tailUsed);
      this.tailUsed += n;
      this.tailView = tail.subarray(this.tailStart, this.tailUsed);
      this.chunks[last] = this.tailView;
      return;
    }
    if (tail === null || this.tailUsed + n > tail.length) {
      tail = this.tail = Buffer.allocUnsafeSlow(TAIL_SIZE);
      this.tailUsed = 0;
    }
    chunk.copy(tail, this.tailUsed);
    this.tailStart = this.tailUsed;
    this.tailUsed += n;
    this.tailView = tail.subarray(this.tailStart, this.tailUsed);
    this.chunks.push(this.tailView);
  }

  /**
   * Resolves once at least `n` bytes are buffered (at once when they already are), or
   * earlier, once `wakeAt` bytes are (a reader that looks at data as it comes); a socket that
   * ends first is reported as cut short of `n`.
   * @throws {IOError} when the socket ends, breaks or is closed first
   * @throws {ConcurrencyError} when another read is pending
   */
  wait(n: number, wakeAt = n): Promise<void> {
    if (this.readClosed === null && this.avail >= wakeAt) return RESOLVED;
    return new Promise<void>((resolve, reject) => this.waitThen(n, wakeAt, () => resolve(), reject));
  }

  /**
   * @internal {@link wait} with callbacks instead of a promise: `onReady(this)` once `wakeAt`
   * bytes are buffered (at once if they are), `onFail(err, this)` when the socket ends,
   * breaks or is closed first, or another read is pending. The frame layer passes shared
   * functions, so an idle read costs no closures.
   */
  waitThen(n: number, wakeAt: number, onReady: ReadyFn, onFail: FailFn): void {
    if (this.readClosed !== null) return onFail(this.readClosed, this);
    if (this.avail >= wakeAt) return onReady(this);
    if (this.resolveWait !== null) {
      return onFail(concurrentRead(), this);
    }
    if (this.ended !== null) return onFail(this.cutShort(n), this);
    this.need = wakeAt;
    this.expected = n;
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    this.resolveWait = onReady;
    this.rejectWait = onFail;
  }

  /**
   * Reads exactly `n` bytes: a view of the received chunk when they lie in one, a copy when
   * they straddle chunks. Resolves without waiting when the bytes are already buffered.
   * @throws {IOError} when the socket ends before `n` bytes arrive
   */
  readExact(n: number): Promise<Buffer> {
    if (this.avail >= n && this.readClosed === null && this.resolveWait === null) return Promise.resolve(this.take(n));
    return this.wait(n).then(() => this.take(n));
  }

  /** @internal The buffer holding the next `n` buffered bytes contiguously, from {@link peekOffset}. */
  peek(n: number): Buffer {
    const chunk = this.chunks[this.first]!;
    if (chunk.length - this.offset >= n) {
      this.peekOffset = this.offset;
      return chunk;
    }
    this.peekOffset = 0;
    return this.gather(n, false);
  }
  /** @internal Set by {@link peek}. */
  peekOffset = 0;

  /** @internal Consumes `n` buffered bytes: a view when they lie in one chunk, else a copy. */
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const chunk = this.chunks[this.first]!;
    const left = chunk.length - this.offset;
    if (left >= n) {
      const view = new FastBuffer(chunk.buffer, chunk.byteOffset + this.offset, n);
      this.advance(left, n);
      return view;
    }
    return this.gather(n, true);
  }

  /**
   * @internal Consumes `n` buffered bytes and unmasks them with `key`: in place in a view when
   * they lie in one chunk, else unmasked while they are copied out of the chunks (one pass).
   */
  takeUnmasked(n: number, key: Uint8Array): Buffer {
    const chunk = this.chunks[this.first]!;
    const left = chunk.length - this.offset;
    if (left >= n) {
      const view = new FastBuffer(chunk.buffer, chunk.byteOffset + this.offset, n);
      if (n < 32) unmaskSmall(view, key);
      else applyMask(view, key);
      this.advance(left, n);
      return view;
    }
    const out = n > 4096 ? Buffer.allocUnsafeSlow(n) : Buffer.allocUnsafe(n);
    let i = this.first;
    let off = this.offset;
    for (let done = 0; done < n; i++, off = 0) {
      const c = this.chunks[i]!;
      const step = Math.min(n - done, c.length - off);
      applyMask(c.subarray(off, off + step), key, out, done, done & 3);
      done += step;
    }
    this.skip(n);
    return out;
  }

  /**
   * @internal Registers a Ping's payload before it is sent; resolves with the round-trip time
   * in ms when its Pong is read (by whoever is reading the socket).
   */
  waitForPong(token: Buffer): Promise<number> {
    const key = token.toString('latin1');
    const waiters = (this.pongWaiters ??= new Map());
    if (waiters.has(key)) throw new RangeError('a ping with this token is already waiting');
    if (this.readClosed !== null) return Promise.reject(this.readClosed);
    return new Promise((resolve, reject) => {
      waiters.set(key, { resolve, reject, sentAt: performance.now() });
    });
  }

  /** @internal Forgets a Ping's waiter (it timed out or could not be sent). */
  cancelPong(token: Buffer): void {
    this.pongWaiters?.delete(token.toString('latin1'));
  }

  /**
   * @internal Called for each Pong read: settles the matching Ping and every earlier one, since
   * a peer may answer only the most recent of several Pings (RFC 6455 §5.5.3).
   */
  notifyPong(data: Buffer): void {
    const waiters = this.pongWaiters;
    if (waiters === null || waiters.size === 0) return;
    const key = data.toString('latin1');
    if (!waiters.has(key)) return; // unsolicited, or for a ping nobody waits on
    const now = performance.now();
    for (const [k, waiter] of waiters) {
      waiters.delete(k);
      waiter.resolve(now - waiter.sentAt);
      if (k === key) break;
    }
  }

  private failPongWaiters(err: IOError): void {
    if (this.pongWaiters === null) return;
    for (const waiter of this.pongWaiters.values()) waiter.reject(err);
    this.pongWaiters.clear();
  }

  /**
   * @internal Calls `visit` with the buffered bytes from `start` to `end` (offsets into what
   * is buffered), piece by piece as they lie in the chunks, without consuming them.
   */
  visit(start: number, end: number, fn: (piece: Buffer) => void): void {
    let skip = start;
    let left = end - start;
    for (let i = this.first, off = this.offset; left > 0; i++, off = 0) {
      const chunk = this.chunks[i]!;
      const have = chunk.length - off;
      if (skip >= have) {
        skip -= have;
        continue;
      }
      const from = off + skip;
      const step = Math.min(left, chunk.length - from);
      fn(chunk.subarray(from, from + step));
      skip = 0;
      left -= step;
    }
  }

  /** @internal Consumes `n` buffered bytes without returning them. */
  skip(n: number): void {
    while (n > 0) {
      const chunk = this.chunks[this.first]!;
      const step = Math.min(n, chunk.length - this.offset);
      this.advance(chunk.length - this.offset, step);
      n -= step;
    }
  }

  private advance(left: number, n: number): void {
    this.avail -= n;
    if (left === n) {
      (this.chunks as (Buffer | undefined)[])[this.first] = undefined;
      this.first++;
      this.offset = 0;
      if (this.first === this.chunks.length) {
        this.chunks.length = 0;
        this.first = 0;
        this.tail = null; // an idle connection keeps no buffer
        this.tailView = null;
      } else if (this.first >= 1024 && this.first * 2 >= this.chunks.length) {
        this.chunks = this.chunks.slice(this.first);
        this.first = 0;
      }
    } else {
      this.offset += n;
    }
  }

  // Copies the next n bytes (spanning chunks) into a new buffer; consumes them if asked.
  private gather(n: number, consume: boolean): Buffer {
    const out = n > 4096 ? Buffer.allocUnsafeSlow(n) : Buffer.allocUnsafe(n);
    let i = this.first;
    let off = this.offset;
    for (let done = 0; done < n; i++, off = 0) {
      const chunk = this.chunks[i]!;
      const step = Math.min(n - done, chunk.length - off);
      chunk.copy(out, done, off, off + step);
      done += step;
    }
    if (consume) this.skip(n);
    return out;
  }

  /**
   * Writes one or two chunks (a frame header and its payload, say) in one corked write.
   * Resolves once the socket has handed them to the kernel; a caller that awaits each write
   * never lets data pile up in memory.
   * @throws {IOError} when the socket is closed or breaks
   */
  write(a: Uint8Array, b?: Uint8Array): Promise<void> {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) {
      return Promise.reject(new IOError('closed', 'socket is closed for writing'));
    }
    // Fast path: with nothing queued before it, a write the socket completes synchronously
    // leaves nothing buffered, so the bytes are with the kernel already: resolve at once,
    // without a promise and a callback of its own. (A later failure shows on the next
    // read or write, as it would after any completed write.)
    if (s.writableLength === 0 && !s.writableCorked) {
      writeParts(s, a, b, ignoreWriteResult);
      if (s.writableLength === 0 && !s.destroyed) return RESOLVED;
      return this.flushed();
    }
    return new Promise<void>((resolve, reject) => {
      // Node calls back without an error when the stream was destroyed before flushing.
      const done = (err?: Error | null): void => {
        if (err) reject(ioErrorFrom(err));
        else if (s.destroyed) reject(new IOError('closed', 'the socket was destroyed before the data was flushed'));
        else resolve();
      };
      writeParts(s, a, b, done);
    });
  }

  // Resolves once everything written so far has been flushed (the write buffer drained).
  private flushed(): Promise<void> {
    const s = this.socket;
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        s.off('drain', check);
        s.off('close', check);
        if (s.writableLength === 0 && !s.destroyed) resolve();
        else if (s.destroyed) reject(new IOError('closed', 'the socket was destroyed before the data was flushed'));
        else s.once('drain', check).once('close', check);
      };
      // Zero-length write: its callback runs once every earlier write has completed.
      s.write(EMPTY, (err?: Error | null) => (err ? reject(ioErrorFrom(err)) : check()));
    });
  }

  /**
   * Ends the connection: no more reads are served, the write side is ended (TCP FIN after
   * pending writes) and the socket is destroyed if the peer has not closed within
   * `closeTimeout`. Input that still arrives is discarded.
   */
  end(): void {
    this.closeReads();
    if (!this.socket.writableEnded) this.socket.end();
    this.armCloseTimer();
  }

  /**
   * Stops serving reads and waits for the peer to close TCP (a client after the close
   * handshake, RFC 6455 §7.1.1), destroying the socket after `closeTimeout`.
   */
  awaitPeerClose(): void {
    this.closeReads();
    if (this.ended !== null) this.socket.end();
    this.armCloseTimer();
  }

  /** Destroys the socket at once; pending and later reads and writes reject with `IOError`. */
  destroy(err?: Error): void {
    const ioErr = err ? ioErrorFrom(err) : new IOError('closed', 'socket destroyed');
    this.failRead(ioErr);
    this.deflate?.close(ioErr);
    this.socket.destroy();
  }

  /** @internal Destroys the socket after `closeTimeout` unless it closes first (armed once). */
  armCloseTimer(): void {
    if (this.closeTimer !== null || this.socket.destroyed) return;
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.closeTimeout);
    this.closeTimer.unref();
  }

  /** @internal Stops serving reads: pending and later reads reject with `IOError`, input is dropped. */
  closeReads(): void {
    if (this.readClosed === null) {
      this.readClosed = new IOError('closed', 'the WebSocket connection is closed');
      this.failPending(this.readClosed);
      this.failPongWaiters(this.readClosed);
      // Only the decompressor: sends queued before our Close may still need the compressor
      // (it goes when the socket closes).
      this.deflate?.closeReceiving(this.readClosed);
    }
    this.chunks.length = 0;
    this.first = 0;
    this.offset = 0;
    this.avail = 0;
    // Keep reading (and dropping) so the peer's FIN is seen.
    this.paused = false;
    this.socket.resume();
  }

  private cutShort(n: number): IOError {
    const e = this.ended!;
    if (e.reason !== 'eof') return e;
    return new IOError('eof', `socket ended after ${this.avail} of ${n} bytes`, {
      bytesRead: this.avail,
      expected: n
    });
  }

  private clearWait(): void {
    this.resolveWait = null;
    this.rejectWait = null;
  }

  private failPending(err: IOError): void {
    if (this.rejectWait !== null) {
      const reject = this.rejectWait;
      this.clearWait();
      reject(err, this);
    }
  }

  private failRead(err: IOError): void {
    if (this.ended === null) this.ended = err;
    if (this.rejectWait !== null) this.failPending(this.readClosed ?? this.cutShort(this.expected));
  }

  /** @internal */
  onEnd(): void {
    this.failRead(new IOError('eof', 'socket ended'));
    // The peer will send nothing more. Once our side is done too, let the socket go.
    if (this.readClosed !== null) this.socket.end();
  }

  /** @internal */
  onError(err: Error): void {
    this.failRead(ioErrorFrom(err));
  }

  /** @internal */
  onClose(): void {
    this.failRead(new IOError('reset', 'socket closed'));
    const deflate = this.deflate;
    if (deflate !== null) {
      // Frames that arrived before the close may still be read (and inflated): the
      // decompressor goes when they are, through closeReads or the read that hits the end.
      const err = this.readClosed ?? this.ended!;
      if (this.avail === 0 && !this.reading) deflate.close(err);
      else deflate.closeSending(err);
    }
    this.failPongWaiters(this.readClosed ?? this.ended!);
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    if (closeChannel.hasSubscribers) {
      const peer = this.peerClose;
      closeChannel.publish({
        ws: this,
        code: peer?.code ?? 1006,
        reason: peer?.reason ?? '',
        clean: peer !== null && this.closeSent
      });
    }
  }
}
