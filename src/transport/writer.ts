/**
 * Bytes out, on one stream: writes with backpressure, the per-turn batch of small frames (one
 * writev per turn of the event loop), the backlog of small frames while the kernel is behind,
 * the send timeout, and the one definition of unsent bytes. It knows nothing of frames or
 * closing: the connection layer hands it bytes and says what to do when the peer stalls.
 * @module
 */
import { type Duplex, finished } from 'node:stream';
import { IOError, markHandled, toIOError } from '../core/errors';
import { SendWatchdog } from './send-watchdog';

const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY = Buffer.alloc(0);
// Errors of fast-path writes are reported by the socket's 'error' event and the next call.
const ignoreWriteResult = (): void => {};

// Writes made in one turn of the event loop go to the kernel together: the first corks the
// socket and the end of the turn (process.nextTick, which runs once the promise jobs of the
// turn are done) uncorks it, so a loop answering many small messages makes one writev
// instead of one write each. At most COALESCE_MAX bytes wait so: past it, they go at once.
const COALESCE_MAX = 64 * 1024;
function uncorkTurn(writer: Writer): void {
  writer.flushTurn();
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

// Why a write (or flush) fails when the socket went before it was written.
function destroyedBeforeFlush(): IOError {
  return new IOError('closed', 'the socket was destroyed before the data was flushed');
}

/** What a {@link Writer} asks of the connection it writes for. */
export interface WriterOwner {
  /** Why the stream ended, when it did: a write that fails then reports this reason. */
  readonly endedBy: IOError | null;
  /** Called once when the send timeout fires. */
  destroy(err: IOError): void;
}

/** The writing half of one connection's stream. */
export class Writer {
  // The one timer of sends that wait: made on the first write that does not complete at once.
  private watchdog: SendWatchdog | null = null;
  // Bytes written in this turn and held corked until its end (see uncorkTurn); -1: not corked.
  private turnBytes = -1;
  // Small frames waiting for the socket to take what was written before (see Backlog).
  private backlog: Backlog | null = null;

  /**
   * @param sendTimeout ms a peer may take none of our unsent bytes before the owner is
   * destroyed (0: never)
   */
  constructor(
    readonly socket: Duplex,
    private readonly sendTimeout: number,
    private readonly owner: WriterOwner
  ) {}

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
   * Writes a frame whose buffer is ours alone (built by the send functions and
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
      else if (this.socket.destroyed) reject(destroyedBeforeFlush());
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
   * Writes a frame nobody awaits (a Pong): as {@link write}, but while the kernel
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
   * Calls `fn` once everything given to the socket so far has gone to the kernel (a
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
          mine.reject(err ? this.writeError(err) : destroyedBeforeFlush());
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
      bl.reject((s.destroyed ? this.owner.endedBy : null) ?? new IOError('closed', 'socket is closed for writing'));
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
    return (code === 'ERR_STREAM_DESTROYED' ? this.owner.endedBy : null) ?? toIOError(err);
  }

  // Bytes wait to be written: the send timeout watches them.
  private watchSends(): void {
    const ms = this.sendTimeout;
    if (ms <= 0) return;
    // The message counts what the backlog holds too (the watchdog sees only the socket).
    this.watchdog ??= new SendWatchdog(this.socket, ms, () =>
      this.owner.destroy(new IOError('timeout', `the peer took none of ${this.unsentBytes} unsent bytes for ${ms} ms`))
    );
    this.watchdog.arm();
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
   * Hands what this turn's writes left corked to the kernel (one writev).
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

  /**
   * Resolves once everything written so far (this turn's batch and the backlog included) has
   * been handed to the kernel; rejects with `IOError` if the stream breaks first.
   */
  flush(): Promise<void> {
    const s = this.socket;
    this.flushTurn();
    this.flushBacklog();
    if (s.writableLength === 0 && !s.destroyed) return RESOLVED;
    if (s.destroyed) {
      return markHandled(Promise.reject(this.owner.endedBy ?? destroyedBeforeFlush()));
    }
    if (!s.writableEnded) return this.flushed();
    // Ended (our Close went out, TCP FIN queued): a new write may not follow; the stream's
    // 'finish' says when what was written before has gone.
    return markHandled(
      new Promise<void>((resolve, reject) =>
        finished(s, { readable: false }, (err) => (err && !s.writableFinished ? reject(this.writeError(err)) : resolve()))
      )
    );
  }

  /** Hands the backlog (if any) to the stream now, before the stream's write side ends. */
  flushBacklog(): void {
    if (this.backlog !== null) this.writeBacklog();
  }

  /** Stops the send timeout: the stream has closed. */
  stop(): void {
    this.watchdog?.stop();
  }
}
