/**
 * Layer 1: `AsyncSocket`, the transport. It wraps a `net.Socket`, a `tls.TLSSocket` or the
 * `stream.Duplex` of a `node:http` upgrade, feeds what arrives into a {@link ReceiveQueue},
 * pauses the socket while too much is buffered ahead of the reader, serves exact reads,
 * writes with backpressure, maps socket errors to `IOError`, and ends or destroys the socket.
 *
 * As the handle of one WebSocket connection it also holds the parts other files own: the
 * close state (`core/state.ts`, applied by `connection.ts`), the frame reader
 * (`core/frame-reader.ts`, driven by `recv.ts`), the send queue (`send.ts`), the pong
 * bookkeeping and the permessage-deflate streams. It decides nothing about frames or closing.
 * @module
 */
import type { Duplex } from 'node:stream';
import { IOError, markHandled, toIOError } from './core/errors';
import type { CloseInfo } from './core/close';
import { FrameReader } from './core/frame-reader';
import type { Pongs } from './core/pongs';
import { ReceiveQueue, type FailFn, type ReadyFn } from './core/receive-queue';
import { DEFAULTS, type Limits, limitsOf } from './core/limits';
import { ConnectionState, type ConnectionPhase } from './core/state';
import { closeChannel, openChannel } from './diagnostics';
import { PerMessageDeflate } from './deflate';
import { SendWatchdog } from './send-watchdog';
import { type AsyncSocketOptions, type Role, SOCKET_RULES } from './socket-options';
import { checkOptions } from './core/options';

export type { AsyncSocketOptions, Role } from './socket-options';
export { DEFAULTS };

const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY = Buffer.alloc(0);
// Errors of fast-path writes are reported by the socket's 'error' event and the next call.
const ignoreWriteResult = (): void => {};

// Writes made in one turn of the event loop go to the kernel together: the first corks the
// socket and the end of the turn (process.nextTick, which runs once the promise jobs of the
// turn are done) uncorks it, so a loop answering many small messages makes one writev
// instead of one write each. At most COALESCE_MAX bytes wait so: past it, they go at once.
const COALESCE_MAX = 64 * 1024;
function uncorkTurn(ws: AsyncSocket): void {
  ws.flushTurn();
}

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
// An HTTP/2 stream that was reset (RST_STREAM) before we ended it. Node emits 'close' only
// once a reset stream's unread data has been read, which a reader that waits on something
// else never does: the reset is the stream's end, as a TCP reset is a socket's. Node emits
// 'aborted' in the middle of closing the stream (before it sends its own RST_STREAM, when the
// reset is ours): the destroy waits until that is done.
function onAborted(this: SocketWithOwner): void {
  process.nextTick(destroyReset, this[kOwner]);
}
function destroyReset(ws: AsyncSocket): void {
  ws.destroy(new IOError('reset', 'the HTTP/2 stream was reset'));
}

// Chunks up to this size may be cut from a shared slab (Buffer.allocUnsafe's pool is 8 KiB and
// serves up to 4 KiB; the frame slab serves frames up to FRAME_SLAB_MAX); frames up to it go
// into the backlog (larger ones are written as they are, after it).
const OWN_COPY_MAX = 4096;

// `x`, or a copy of it in a buffer of its own when it is small and a view into a buffer more
// than twice its size.
function ownCopy(x: Uint8Array): Uint8Array {
  if (x.byteLength > OWN_COPY_MAX || x.buffer.byteLength <= 2 * x.byteLength) return x;
  const own = Buffer.allocUnsafeSlow(x.byteLength);
  own.set(x);
  return own;
}

// Small frames (any single chunk up to OWN_COPY_MAX: messages, Pings, the Pongs we owe)
// written while the kernel is not taking our bytes (a slow or stalled peer) are copied into
// one buffer per socket, which is handed to the socket once what was written before has gone
// to the kernel: one chunk, one write-queue entry and one promise for many frames, where each
// would otherwise hold its own (about 1 KiB of heap for an 18-byte frame). It starts small
// and doubles; at BACKLOG_MAX it is handed over as it is and a new one begins.
const BACKLOG_START = 256;
const BACKLOG_MAX = 64 * 1024;

class Backlog {
  buf: Buffer;
  len = 0;
  // The promise the sends in it share, made when the first send asks for it (a backlog of
  // Pongs only, which nobody awaits, makes none).
  private settled: { done: Promise<void>; resolve: () => void; reject: (err: Error) => void } | null = null;

  constructor(first: number) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(BACKLOG_START, first));
  }

  get done(): Promise<void> {
    if (this.settled === null) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      // Handled once here: the sends that share it may go unawaited (see markHandled).
      const done = markHandled(
        new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        })
      );
      this.settled = { done, resolve, reject };
    }
    return this.settled.done;
  }

  resolve(): void {
    this.settled?.resolve();
  }

  reject(err: Error): void {
    this.settled?.reject(err);
  }

  append(x: Uint8Array): void {
    const need = this.len + x.length;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, Math.min(2 * this.buf.length, BACKLOG_MAX)));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    this.buf.set(x, this.len);
    this.len = need;
  }
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

/**
 * A socket with exact reads and writes that resolve once the data is handed to the kernel,
 * and the handle of one WebSocket connection.
 *
 * Reads are pull-based: while nobody reads and more than `readBufferSize` is buffered the
 * socket is paused. One read may be pending at a time, whether an exact read here or a
 * frame-level one (`readData`, `recvFrame`, …); a second one rejects with
 * {@link ConcurrencyError}.
 * @group Connection
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
  /** permessage-deflate state when the handshake agreed on it (RFC 7692), else null. */
  readonly deflate: PerMessageDeflate | null;

  /** @internal The bytes received and not read yet, with the one-reader guard. */
  readonly queue: ReceiveQueue<AsyncSocket> = new ReceiveQueue();
  /** @internal The close state, applied on the socket by `src/connection.ts`. */
  readonly state: ConnectionState = new ConnectionState();
  /** @internal The frame reader: the message in progress and the read under way. */
  readonly reader: FrameReader;
  /** @internal Pings awaited and the Pong deferred, created on first use. */
  pongs: Pongs | null = null;
  /** @internal Tail of the queue of sends that must not interleave (fragmented messages). */
  sendQueue: Promise<void> | null = null;
  /**
   * @internal Called once the socket has closed: how a server's registry lets go of the
   * connection without a 'close' listener (and its once-wrapper) per connection.
   */
  onClosed: ((ws: AsyncSocket) => void) | null = null;

  // The limits, one object shared by every connection made with the same values.
  private readonly limits: Limits;
  private paused = false;
  // The one close timer: it destroys the socket at `closeDeadline` unless it closes first.
  private closeTimer: NodeJS.Timeout | null = null;
  private closeDeadline = 0;
  // Watches sends that did not complete at once (made on the first such send).
  private watchdog: SendWatchdog | null = null;
  // Bytes written in this turn and held corked until its end (see uncorkTurn); -1: not corked.
  private turnBytes = -1;
  // Small frames waiting for the socket to take what was written before (see Backlog).
  private backlog: Backlog | null = null;

  /**
   * @throws {TypeError} for an option of the wrong type (or no `role`), and `RangeError` for a
   * limit out of its range (README "Limits and defaults")
   */
  constructor(socket: Duplex, options: AsyncSocketOptions) {
    checkOptions(options, SOCKET_RULES, 'new AsyncSocket() options');
    this.socket = socket;
    this.role = options.role;
    this.isClient = options.role === 'client';
    this.protocol = options.protocol ?? '';
    this.limits = limitsOf(options);
    this.deflate = options.deflate ? new PerMessageDeflate(options.deflate, this.isClient) : null;
    this.reader = new FrameReader(this.limits);
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
    if ('rstCode' in socket) socket.on('aborted', onAborted); // an HTTP/2 stream
    // A socket its owner paused (say, after reading an HTTP request head from it) would never
    // deliver another byte: the AsyncSocket owns the flow from here on.
    if (socket.readableFlowing === false) socket.resume();
    if (openChannel.hasSubscribers) openChannel.publish({ ws: this });
    const idle = options.idleTimeout ?? DEFAULTS.idleTimeout;
    if (idle > 0 && 'setTimeout' in socket) {
      (socket as unknown as { setTimeout(ms: number, cb: () => void): void }).setTimeout(idle, () =>
        this.destroy(new IOError('timeout', `no traffic for ${idle} ms`))
      );
    }
  }

  /** Largest payload of one frame (see {@link AsyncSocketOptions.maxFrameSize}). */
  get maxFrameSize(): number {
    return this.limits.maxFrameSize;
  }

  /** Largest reassembled message (see {@link AsyncSocketOptions.maxMessageSize}). */
  get maxMessageSize(): number {
    return this.limits.maxMessageSize;
  }

  /** Most frames in one message (see {@link AsyncSocketOptions.maxFragments}). */
  get maxFragments(): number {
    return this.limits.maxFragments;
  }

  /** Most a compressed message may inflate per byte received (see {@link AsyncSocketOptions.maxInflateRatio}). */
  get maxInflateRatio(): number {
    return this.limits.maxInflateRatio;
  }

  /** How long the close handshake may take, in ms (see {@link AsyncSocketOptions.closeTimeout}). */
  get closeTimeout(): number {
    return this.limits.closeTimeout;
  }

  /**
   * Bytes received and not yet read: what `readBufferSize` bounds before the socket is paused.
   * (The browser's and `ws`'s `bufferedAmount` is the other direction: see below.)
   */
  get unreadBytes(): number {
    return this.queue.length;
  }

  /**
   * Bytes queued to send that the kernel has not taken yet, as a browser's and `ws`'s
   * `WebSocket.bufferedAmount`: everything sent on this connection and not yet written to the
   * kernel, this turn's batch included. It grows while the peer does not read; a slow-client
   * check should use {@link unsentBytes}, which leaves out what is only waiting for the end of
   * this turn.
   */
  get bufferedAmount(): number {
    return this.socket.writableLength + (this.backlog?.len ?? 0);
  }

  /** True when the socket can no longer be read or written. */
  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  /** 'open', 'closing' (one Close frame sent or received) or 'closed'. */
  get readyState(): ConnectionPhase {
    return this.state.phase;
  }

  /** True once a Close frame was sent or queued behind other sends: no new message may be sent. */
  get closeQueued(): boolean {
    return this.state.closeQueued;
  }

  /** True once a Close frame was handed to the socket: no frame at all may follow. */
  get closeSent(): boolean {
    return this.state.closeSent;
  }

  /** True once the peer's Close frame was received. */
  get closeReceived(): boolean {
    return this.state.closeReceived;
  }

  /** The peer's close code and reason, once its Close frame was received. */
  get peerClose(): CloseInfo | null {
    return this.state.peerClose;
  }

  /** @internal True once the peer ended its side (TCP FIN) or the socket broke. */
  get inputEnded(): boolean {
    return this.queue.endedBy !== null;
  }

  /**
   * Pushes bytes as if they had arrived from the socket: the socket's 'data' events come
   * here, and a benchmark or a test can parse from memory this way. The buffer becomes the
   * socket's: masked payloads are unmasked in place, so do not reuse it.
   */
  feed(chunk: Buffer): void {
    const queue = this.queue;
    queue.push(chunk);
    if (!this.paused && !queue.waiting && queue.cost > this.limits.readBufferSize) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /**
   * Reads exactly `n` bytes: a view of the received chunk when they lie in one, a copy when
   * they straddle chunks. Resolves without waiting when the bytes are already buffered.
   * @throws {IOError} when the socket ends before `n` bytes arrive
   * @throws {ConcurrencyError} when another read is pending
   */
  readExact(n: number): Promise<Buffer> {
    const read = this.queue.readExact(n);
    if (this.queue.waiting) this.flow();
    return read;
  }

  /**
   * @internal Calls `onReady(this)` once `wakeAt` bytes are buffered (at once if they are),
   * or `onFail(err, this)` when they cannot come (see {@link ReceiveQueue.waitThen}); lets
   * the socket flow while the wait is pending. The frame layer passes shared functions, so an
   * idle read costs no closures.
   */
  waitThen(n: number, wakeAt: number, onReady: ReadyFn<AsyncSocket>, onFail: FailFn<AsyncSocket>): void {
    if (this.queue.waitThen(n, wakeAt, this, onReady, onFail)) this.flow();
  }

  private flow(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /**
   * Writes one or two chunks (a frame header and its payload, say) in one corked write.
   * Resolves once the socket has handed them to the kernel; a caller that awaits each write
   * never lets data pile up in memory.
   * @throws {IOError} when the socket is closed or breaks
   */
  write(a: Uint8Array, b?: Uint8Array): Promise<void> {
    // The caller may reuse its buffers once this resolves: they go to the kernel now, after
    // the frames this turn holds.
    this.flushTurn();
    return this.writeChunks(a, b, false);
  }

  /**
   * @internal Writes a frame whose buffer is ours alone (built by the send functions and
   * never touched again): frames written in one turn of the event loop are held corked and
   * go to the kernel together at its end (one writev), or as soon as 64 KiB wait. Resolves
   * at once when it was held so and the socket had nothing else waiting (the bytes are
   * then sure to be handed over this turn); otherwise, as {@link write}, once flushed.
   */
  writeOwned(frame: Uint8Array): Promise<void> {
    return this.writeChunks(frame, undefined, true);
  }

  // The one write path: `coalesce` for frames that may be held to the end of the turn.
  private writeChunks(a: Uint8Array, b: Uint8Array | undefined, coalesce: boolean): Promise<void> {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) {
      return markHandled(Promise.reject(new IOError('closed', 'socket is closed for writing')));
    }
    if (this.joinsBacklog(a, b)) return this.toBacklog(a).done;
    if (this.backlog !== null) this.writeBacklog(); // what was sent before goes first
    if (this.kernelBehind()) {
      // The kernel is not taking what we write: this chunk will wait in memory, and a small
      // one cut from a shared slab (Node's 8 KiB pool, the frame slab) would keep the whole
      // slab alive for as long: it waits in a copy of its own size instead.
      a = ownCopy(a);
      if (b !== undefined) b = ownCopy(b);
    }
    // Fast path: with nothing queued before it, a write the socket completes synchronously
    // leaves nothing buffered, so the bytes are with the kernel already: resolve at once,
    // without a promise and a callback of its own. (A later failure shows on the next
    // read or write, as it would after any completed write.)
    if (coalesce && (this.turnBytes >= 0 || (s.writableLength === 0 && !s.writableCorked))) {
      if (this.turnBytes < 0) {
        this.turnBytes = 0;
        s.cork();
        process.nextTick(uncorkTurn, this);
      }
      writeParts(s, a, b, ignoreWriteResult);
      this.turnBytes += a.length + (b === undefined ? 0 : b.length);
      if (this.turnBytes >= COALESCE_MAX) this.flushTurn();
      if (this.turnBytes >= 0 || (s.writableLength === 0 && !s.destroyed)) return RESOLVED;
      return this.flushed();
    }
    if (s.writableLength === 0 && !s.writableCorked) {
      writeParts(s, a, b, ignoreWriteResult);
      if (s.writableLength === 0 && !s.destroyed) return RESOLVED;
      return this.flushed();
    }
    this.watchSends();
    return markHandled(new Promise<void>((resolve, reject) => writeParts(s, a, b, this.writeSettler(resolve, reject))));
  }

  // The callback of a write that settles a send: resolve once written, else reject with the
  // reason. Node calls back without an error when the stream was destroyed before flushing.
  private writeSettler(resolve: () => void, reject: (err: Error) => void): (err?: Error | null) => void {
    return (err) => {
      this.watchdog?.progress();
      if (err) reject(this.writeError(err));
      else if (this.socket.destroyed) reject(new IOError('closed', 'the socket was destroyed before the data was flushed'));
      else resolve();
    };
  }

  // True when a write should wait in the backlog: one small chunk (a payload written by
  // reference behind its header stays shared, not copied) while the kernel is behind, or
  // while a backlog waits already (order must hold).
  private joinsBacklog(a: Uint8Array, b: Uint8Array | undefined): boolean {
    return b === undefined && a.length <= OWN_COPY_MAX && (this.backlog !== null || this.kernelBehind());
  }

  /**
   * @internal Writes a frame nobody awaits (a Pong): as {@link write}, but while the kernel
   * is behind a small one joins the backlog without a promise of its own. A failure shows on
   * the next read, as after any write.
   */
  writeUnawaited(frame: Uint8Array): void {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return;
    this.flushTurn();
    if (this.joinsBacklog(frame, undefined)) this.toBacklog(frame);
    else this.writeChunks(frame, undefined, false).catch(ignoreWriteResult);
  }

  /**
   * @internal Calls `fn` once everything given to the socket so far has gone to the kernel (a
   * zero-length write's callback says when); not at all if the socket closes first. Frames
   * still waiting in the backlog are not waited for (they go after).
   */
  afterWritten(fn: () => void): void {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return;
    s.write(EMPTY, (err?: Error | null) => {
      if (!err && !s.destroyed) fn();
    });
    this.watchSends();
  }

  // A small frame while the kernel is behind: copied into the backlog, which is handed to the
  // socket once what is ahead of it has been written (a zero-length write's callback says
  // when). Its sends settle together, with the backlog's write.
  private toBacklog(frame: Uint8Array): Backlog {
    const size = frame.length;
    let bl = this.backlog;
    if (bl !== null && bl.len + size > BACKLOG_MAX) {
      this.writeBacklog();
      bl = null;
    }
    if (bl === null) {
      const mine = (bl = this.backlog = new Backlog(size));
      this.socket.write(EMPTY, (err?: Error | null) => {
        if (this.backlog !== mine) return; // already handed over
        if (err || this.socket.destroyed) {
          this.backlog = null;
          mine.reject(err ? this.writeError(err) : new IOError('closed', 'the socket was destroyed before the data was flushed'));
        } else {
          this.writeBacklog();
        }
      });
      this.watchSends();
    }
    bl.append(frame);
    return bl;
  }

  // Hands the backlog to the socket now; its frames' sends settle once it is written.
  private writeBacklog(): void {
    const bl = this.backlog!;
    this.backlog = null;
    const s = this.socket;
    if (s.destroyed || s.writableEnded) {
      // Why the socket went, when we know it (the peer's FIN, a reset, a timeout).
      bl.reject((s.destroyed ? this.queue.endedBy : null) ?? new IOError('closed', 'socket is closed for writing'));
      return;
    }
    // A backlog handed over early may fill little of its buffer: the chunk that waits in the
    // socket is then a copy of its own size.
    const chunk = ownCopy(bl.buf.subarray(0, bl.len));
    bl.buf = EMPTY; // the callback below keeps `bl`, not its buffer
    s.write(chunk, this.writeSettler(() => bl.resolve(), (err) => bl.reject(err)));
    if (s.writableLength > 0) this.watchSends();
  }

  // Resolves once everything written so far has gone to the kernel: a zero-length write's
  // callback runs once every earlier write has completed. (Not once the buffer is empty:
  // what is written after this may keep it from ever being so, and a stream that never
  // asked for 'drain' does not emit it.)
  private flushed(): Promise<void> {
    this.watchSends();
    return markHandled(new Promise<void>((resolve, reject) => this.socket.write(EMPTY, this.writeSettler(resolve, reject))));
  }

  // A write that failed because the socket was destroyed fails with the reason it was
  // destroyed for (a send timeout, say), not with Node's "write after destroy".
  private writeError(err: Error): IOError {
    const code = (err as { code?: string }).code;
    return (code === 'ERR_STREAM_DESTROYED' ? this.queue.endedBy : null) ?? toIOError(err);
  }

  // Bytes wait to be written: the send timeout watches them.
  private watchSends(): void {
    const ms = this.limits.sendTimeout;
    if (ms <= 0) return;
    // The message counts what the backlog holds too (the watchdog sees only the socket).
    this.watchdog ??= new SendWatchdog(this.socket, ms, () =>
      this.destroy(new IOError('timeout', `the peer took none of ${this.unsentBytes} unsent bytes for ${ms} ms`))
    );
    this.watchdog.arm();
  }

  /**
   * Ends the socket: no more reads are served, the write side is ended (TCP FIN after
   * pending writes) and the socket is destroyed if the peer has not closed within
   * `closeTimeout`. Input that still arrives is discarded. (This is TCP only: `sendClose`
   * and `close` run the WebSocket closing handshake.)
   */
  end(): void {
    this.closeReads(new IOError('closed', 'the WebSocket connection is closed'));
    if (this.backlog !== null) this.writeBacklog();
    if (!this.socket.writableEnded) this.socket.end();
    this.destroyAfter(this.closeTimeout);
  }

  /**
   * Bytes sent that the kernel has not taken, leaving out the small frames only held until
   * the end of this turn (they are not a sign of a slow peer): the measure of a client that
   * does not keep up, which `broadcast` compares with `maxBackpressure`. 0 while the peer keeps
   * up; a loop that sends to many clients can skip or drop the ones past a bound of its own.
   */
  get unsentBytes(): number {
    return Math.max(0, this.socket.writableLength - this.heldBytes()) + (this.backlog?.len ?? 0);
  }

  // Bytes of this turn's frames held corked until its end.
  private heldBytes(): number {
    return this.turnBytes > 0 ? this.turnBytes : 0;
  }

  // True when the socket holds more than this turn's corked frames: the kernel is not taking
  // what was written before.
  private kernelBehind(): boolean {
    return this.socket.writableLength > this.heldBytes();
  }

  /**
   * @internal Hands what this turn's writes left corked to the kernel (one writev).
   */
  flushTurn(): void {
    if (this.turnBytes < 0) return;
    this.turnBytes = -1;
    const s = this.socket;
    s.uncork();
    // What the kernel did not take now waits in the socket: the send timeout watches it, as
    // it watches any write that did not complete at once.
    if (s.writableLength > 0 && !s.destroyed) this.watchSends();
  }

  /** Destroys the socket at once; pending and later reads and writes reject with `IOError`. */
  destroy(err?: Error): void {
    this.flushTurn(); // what was sent before goes first, as it would have without coalescing
    const ioErr = err ? toIOError(err) : new IOError('closed', 'socket destroyed');
    this.queue.end(ioErr);
    this.deflate?.close(ioErr);
    this.socket.destroy();
  }

  /**
   * @internal The one close timer: destroys the socket with `IOError` reason 'timeout' unless
   * it closes within `ms`. A later call can only bring the deadline closer.
   */
  destroyAfter(ms: number): void {
    if (this.socket.destroyed) return;
    const deadline = performance.now() + ms;
    if (this.closeTimer !== null) {
      if (deadline >= this.closeDeadline) return;
      clearTimeout(this.closeTimer);
    }
    this.closeDeadline = deadline;
    this.closeTimer = setTimeout(() => this.destroy(new IOError('timeout', `the close handshake took over ${ms} ms`)), ms);
    this.closeTimer.unref();
  }

  /**
   * @internal Stops serving reads: pending and later reads reject with `err`, and input is
   * read and dropped (so the peer's FIN is still seen). What served reads goes too: Pings
   * awaiting their Pong fail, and the decompressor is freed (the compressor stays for sends
   * queued before our Close).
   */
  closeReads(err: IOError): void {
    if (this.queue.closed === null) {
      this.queue.close(err);
      this.pongs?.failAll(err);
      this.deflate?.closeReceiving(err);
    }
    this.flow();
  }

  /** @internal */
  onEnd(): void {
    this.queue.end(new IOError('eof', 'socket ended'));
    // The peer will send nothing more. Once our side is done too, let the socket go.
    // A socket without half-open ends its writable side itself after this: what waits in
    // the backlog goes to it first.
    if (this.backlog !== null) this.writeBacklog();
    if (this.queue.closed !== null) this.socket.end();
  }

  /** @internal */
  onError(err: Error): void {
    this.queue.end(toIOError(err));
  }

  /** @internal */
  onClose(): void {
    const queue = this.queue;
    queue.end(new IOError('reset', 'socket closed'));
    this.state.transportClosed();
    const err = queue.closed ?? queue.endedBy!;
    const deflate = this.deflate;
    if (deflate !== null) {
      // Frames that arrived before the close may still be read (and inflated): the
      // decompressor goes when they are, through stopReading or the read that hits the end.
      if (queue.length === 0 && queue.owner === null) {
        deflate.close(err);
      } else {
        deflate.closeSending(err);
        // With no read pending, the message in progress may never be read on: it must not
        // hold the process's budget meanwhile (a later read charges what it inflates).
        if (queue.owner === null) deflate.handedOut();
      }
    }
    this.pongs?.failAll(err);
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.watchdog?.stop();
    if (closeChannel.hasSubscribers) {
      const peer = this.state.peerClose;
      closeChannel.publish({ ws: this, code: peer?.code ?? 1006, reason: peer?.reason ?? '', clean: this.state.clean });
    }
    const closed = this.onClosed;
    if (closed !== null) {
      this.onClosed = null;
      closed(this);
    }
  }
}
