/**
 * `AsyncSocket`, the handle of one connection. It wraps a `net.Socket`, a `tls.TLSSocket` or the
 * `stream.Duplex` of a `node:http` upgrade, feeds what arrives into a {@link ReceiveQueue},
 * pauses the socket while too much is buffered ahead of the reader, serves exact reads,
 * writes with backpressure, maps socket errors to `IOError`, and ends or destroys the socket.
 *
 * As the handle of one WebSocket connection it also holds the parts other files own: the
 * close state (`core/state.ts`, applied by `control.ts`), the frame reader
 * (`core/frame-reader.ts`, driven by `recv.ts`), the send queue (`send.ts`), the pong
 * bookkeeping and the permessage-deflate streams. It decides nothing about frames or closing.
 * @module
 */
import type { Duplex } from 'node:stream';
import { IOError, toIOError } from '../core/errors';
import type { CloseInfo } from '../core/close';
import { FrameReader } from '../core/frame-reader';
import type { Pongs } from '../core/pongs';
import { ReceiveQueue, type FailFn, type ReadyFn } from '../core/receive-queue';
import { DEFAULTS, type Limits, limitsOf } from '../core/limits';
import { ConnectionState, type ConnectionPhase } from '../core/state';
import { closeChannel, openChannel } from './diagnostics';
import { PerMessageDeflate } from '../compression/deflate';
import { Writer } from '../transport/writer';
import { type AsyncSocketOptions, type Role, SOCKET_RULES } from './socket-options';
import { checkOptions } from '../core/options';

export type { AsyncSocketOptions, Role } from './socket-options';
export { DEFAULTS };

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
  /** @internal The close state, applied on the socket by `src/connection/control.ts`. */
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
  // Bytes out: the per-turn batch, the backlog, the send timeout. Made on the first write, so
  // a connection that never sends holds none (measured: 2,000 idle connections cost 70 bytes
  // more each with it made up front).
  private out: Writer | null = null;

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
    return this.out === null ? this.socket.writableLength : this.out.bufferedAmount;
  }

  /**
   * Bytes sent that the kernel has not taken, leaving out the small frames only held until
   * the end of this turn (they are not a sign of a slow peer): the measure of a client that
   * does not keep up, which `broadcast` compares with `maxBackpressure`. 0 while the peer keeps
   * up; a loop that sends to many clients can skip or drop the ones past a bound of its own.
   */
  get unsentBytes(): number {
    return this.out === null ? this.socket.writableLength : this.out.unsentBytes;
  }

  /** @internal The writing half, made on first use. */
  get writer(): Writer {
    return (this.out ??= new Writer(this.socket, this.limits.sendTimeout, this));
  }

  /** @internal Why the socket ended or broke, once it did. */
  get endedBy(): IOError | null {
    return this.queue.endedBy;
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
    return this.writer.write(a, b);
  }

  /**
   * Resolves once everything sent on this connection so far has been handed to the kernel,
   * the small frames held for the end of this turn included: for a program that exits right
   * after its last send (`await sendText(ws, bye); await ws.flush(); process.exit()`). A send
   * itself may resolve earlier (README "The API").
   * @throws {IOError} (rejection) when the socket breaks or is destroyed first
   */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** @internal See {@link Writer.writeOwned}: a frame that may wait for the end of the turn. */
  writeOwned(frame: Uint8Array): Promise<void> {
    return this.writer.writeOwned(frame);
  }

  /** @internal See {@link Writer.writeUnawaited}: a frame nobody awaits (a Pong). */
  writeUnawaited(frame: Uint8Array): void {
    this.writer.writeUnawaited(frame);
  }

  /** @internal See {@link Writer.afterWritten}. */
  afterWritten(fn: () => void): void {
    this.writer.afterWritten(fn);
  }

  /** @internal Hands what this turn's writes left corked to the kernel. */
  flushTurn(): void {
    this.out?.flushTurn();
  }

  /**
   * Ends the socket: no more reads are served, the write side is ended (TCP FIN after
   * pending writes) and the socket is destroyed if the peer has not closed within
   * `closeTimeout`. Input that still arrives is discarded. (This is TCP only: `sendClose`
   * and `close` run the WebSocket closing handshake.)
   */
  end(): void {
    this.closeReads(new IOError('closed', 'the WebSocket connection is closed'));
    this.out?.flushBacklog();
    if (!this.socket.writableEnded) this.socket.end();
    this.destroyAfter(this.closeTimeout);
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
    this.out?.flushBacklog();
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
    this.out?.stop();
    if (closeChannel.hasSubscribers) {
      closeChannel.publish({ ws: this, ...this.state.result() });
    }
    const closed = this.onClosed;
    if (closed !== null) {
      this.onClosed = null;
      closed(this);
    }
  }
}
