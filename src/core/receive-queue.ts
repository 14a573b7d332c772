/**
 * The receive queue: the bytes that arrived and were not read yet, as the chunks they came
 * in. It knows no socket (chunks go in through {@link ReceiveQueue.push}, the end of input
 * through {@link ReceiveQueue.end}), so it is tested on its own.
 *
 * Reads come out as views of the received chunks when they lie in one, as copies when they
 * straddle chunks (unmasked while copied, for a masked payload), and one pending wait at a
 * time is served as bytes arrive. The one-reader guard of a connection lives here
 * ({@link ReceiveQueue.owner}): every read, exact or frame-level, holds it while it waits.
 * @module
 */
import { ConcurrencyError, IOError } from './errors';
import { FastBuffer } from './buffers';
import { applyMask, unmaskSmall } from './mask';

/** Bookkeeping cost charged for each buffered chunk, so that many tiny chunks count too. */
export const CHUNK_OVERHEAD = 64;
/**
 * Chunks smaller than this are copied into a shared tail buffer of {@link TAIL_SIZE} bytes
 * once at least {@link COALESCE_AFTER} chunks are queued.
 */
export const COALESCE_MAX = 1024;
/** How many queued chunks make small ones coalesce. */
export const COALESCE_AFTER = 8;
/** Size of the buffers small chunks are coalesced into. */
export const TAIL_SIZE = 16 * 1024;

// A buffer small chunks are appended to: `used` bytes of it are taken, and `view` (from
// `start`) is the queued chunk that grows as more are appended.
interface Tail {
  readonly buffer: Buffer;
  used: number;
  start: number;
  view: Buffer | null;
}

/** Called once a wait's bytes are buffered; gets the object the wait was made for. */
export type ReadyFn<T> = (target: T) => void;
/** Called when a wait cannot be served (the input ended, the queue closed). */
export type FailFn<T> = (err: Error, target: T) => void;

/** The owner of an exact read ({@link ReceiveQueue.readExact}), for the one-reader guard. */
const EXACT_READ = { name: 'readExact' };

/** The error for a read started while another is pending. */
export function concurrentRead(): ConcurrencyError {
  return new ConcurrencyError('another read is pending on this socket: reads must be serialized');
}

/**
 * Received bytes not read yet, with at most one pending wait for more.
 *
 * A wait names the object it is for (`target`), so that a reader can pass shared callback
 * functions and an idle connection waiting for bytes costs no closures.
 */
export class ReceiveQueue<T = unknown> {
  /**
   * Who holds the one-reader guard: the reader waiting for bytes or for work on bytes it took
   * (inflation), or null. Every read checks it before touching the queue.
   */
  owner: object | null = null;
  /** Set by {@link peek}: where the peeked bytes start in the returned buffer. */
  peekOffset = 0;

  // chunks[first..] hold `avail` unread bytes, starting at `offset` in chunks[first].
  private chunks: Buffer[] = [];
  private first = 0;
  private offset = 0;
  private avail = 0;
  // The pending wait: it wakes at `need` bytes and wants `expected` in the end.
  private need = 0;
  private expected = 0;
  private onReady: ReadyFn<T> | null = null;
  private onFail: FailFn<T> | null = null;
  private target: T | null = null;
  // Why no bytes beyond those buffered will come (EOF, error), and why no read can be served
  // at all any more (the connection is closed).
  private ended: IOError | null = null;
  private closedBy: IOError | null = null;
  // Where small chunks are coalesced, made only when chunks pile up.
  private tail: Tail | null = null;
  // Where the last visit ended: chunks[index] starts at buffered offset `at`. Made by the
  // first visit; forgotten when bytes are consumed.
  private cursor: { index: number; at: number } | null = null;

  /** Bytes received and not read yet. */
  get length(): number {
    return this.avail;
  }

  /** How many separate buffers hold the unread bytes. */
  get chunkCount(): number {
    return this.chunks.length - this.first;
  }

  /** What the buffered input costs: its bytes plus {@link CHUNK_OVERHEAD} per chunk. */
  get cost(): number {
    return this.avail + (this.chunks.length - this.first) * CHUNK_OVERHEAD;
  }

  /** True while a wait is pending (its bytes have not all arrived). */
  get waiting(): boolean {
    return this.onReady !== null;
  }

  /** Why reads are no longer served, or null while they are. */
  get closed(): IOError | null {
    return this.closedBy;
  }

  /** Why no more input will come (EOF, a broken socket), or null while it may. */
  get endedBy(): IOError | null {
    return this.ended;
  }

  /** Forgets the pending wait without settling it (its reader was taken over). */
  cancelWait(): void {
    this.clearWait();
  }

  /**
   * Adds received bytes. The buffer becomes the queue's: masked payloads are unmasked in
   * place. Resolves the pending wait once its bytes are there. Dropped once closed.
   */
  push(chunk: Buffer): void {
    if (this.closedBy !== null) return;
    const n = chunk.length;
    if (n === 0) return;
    // Coalesce only when chunks pile up (a large frame trickling in), so ordinary traffic
    // neither copies nor keeps a tail buffer.
    if (n < COALESCE_MAX && this.chunks.length - this.first >= COALESCE_AFTER) this.append(chunk);
    else this.chunks.push(chunk);
    this.avail += n;
    if (this.onReady !== null && this.avail >= this.need) {
      const ready = this.onReady;
      const target = this.target!;
      this.clearWait();
      ready(target);
    }
  }

  // Small chunks are copied into a shared tail buffer instead of being queued one by one: a
  // peer that trickles a large frame in 1-byte TCP segments would otherwise make us hold a
  // Buffer object (about 100 bytes) per byte. Views handed out earlier stay valid, since the
  // tail is only ever appended to, and a new tail is taken when it is full.
  private append(chunk: Buffer): void {
    const n = chunk.length;
    const last = this.chunks.length - 1;
    let tail = this.tail;
    if (tail !== null && tail.used + n <= TAIL_SIZE && last >= this.first && this.chunks[last] === tail.view) {
      chunk.copy(tail.buffer, tail.used);
      tail.used += n;
      tail.view = tail.buffer.subarray(tail.start, tail.used);
      this.chunks[last] = tail.view;
      return;
    }
    if (tail === null || tail.used + n > TAIL_SIZE) {
      tail = this.tail = { buffer: Buffer.allocUnsafeSlow(TAIL_SIZE), used: 0, start: 0, view: null };
    }
    chunk.copy(tail.buffer, tail.used);
    tail.start = tail.used;
    tail.used += n;
    tail.view = tail.buffer.subarray(tail.start, tail.used);
    this.chunks.push(tail.view);
  }

  /**
   * Calls `onReady(target)` once `wakeAt` bytes are buffered (at once if they are), or
   * `onFail(err, target)` when they cannot come: the input ended short of `n` bytes, or the
   * queue is closed. One wait at a time.
   * @returns true when the wait is left pending (the caller should let input flow)
   */
  waitThen(n: number, wakeAt: number, target: T, onReady: ReadyFn<T>, onFail: FailFn<T>): boolean {
    if (this.closedBy !== null) {
      onFail(this.closedBy, target);
      return false;
    }
    if (this.avail >= wakeAt) {
      onReady(target);
      return false;
    }
    if (this.onReady !== null) {
      onFail(concurrentRead(), target);
      return false;
    }
    if (this.ended !== null) {
      onFail(this.cutShort(n), target);
      return false;
    }
    this.need = wakeAt;
    this.expected = n;
    this.onReady = onReady;
    this.onFail = onFail;
    this.target = target;
    return true;
  }

  /**
   * Reads exactly `n` bytes: a view when they lie in one chunk, a copy when they straddle
   * chunks, at once when they are buffered. Holds the one-reader guard while it waits.
   * @throws {ConcurrencyError} when another read is pending
   * @throws {IOError} when the input ends before `n` bytes, or the queue is closed
   */
  readExact(n: number): Promise<Buffer> {
    if (this.owner !== null) return Promise.reject(concurrentRead());
    if (this.closedBy !== null) return Promise.reject(this.closedBy);
    if (this.avail >= n) return Promise.resolve(this.take(n));
    this.owner = EXACT_READ;
    return new Promise<Buffer>((resolve, reject) => {
      this.waitThen(
        n,
        n,
        this as unknown as T,
        () => {
          this.owner = null;
          resolve(this.take(n));
        },
        (err) => {
          this.owner = null;
          reject(err);
        }
      );
    });
  }

  /** The buffer holding the next `n` buffered bytes contiguously, from {@link peekOffset}. */
  peek(n: number): Buffer {
    const chunk = this.chunks[this.first]!;
    if (chunk.length - this.offset >= n) {
      this.peekOffset = this.offset;
      return chunk;
    }
    this.peekOffset = 0;
    return this.gather(n, null, false);
  }

  /** Consumes `n` buffered bytes: a view when they lie in one chunk, else a copy. */
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const chunk = this.chunks[this.first]!;
    const left = chunk.length - this.offset;
    if (left >= n) {
      const view = new FastBuffer(chunk.buffer, chunk.byteOffset + this.offset, n);
      this.advance(left, n);
      return view;
    }
    return this.gather(n, null, true);
  }

  /**
   * Consumes `n` buffered bytes and unmasks them with `key`: in place in a view when they lie
   * in one chunk, else while they are copied out of the chunks (one pass).
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
    return this.gather(n, key, true);
  }

  // Copies the next n bytes (spanning chunks) into a new buffer, unmasking them with `key`
  // when one is given; consumes them if asked.
  private gather(n: number, key: Uint8Array | null, consume: boolean): Buffer {
    const out = n > 4096 ? Buffer.allocUnsafeSlow(n) : Buffer.allocUnsafe(n);
    let i = this.first;
    let off = this.offset;
    for (let done = 0; done < n; i++, off = 0) {
      const chunk = this.chunks[i]!;
      const step = Math.min(n - done, chunk.length - off);
      if (key === null) chunk.copy(out, done, off, off + step);
      else applyMask(chunk.subarray(off, off + step), key, out, done, done & 3);
      done += step;
    }
    if (consume) this.skip(n);
    return out;
  }

  /**
   * Calls `fn` with the buffered bytes from `start` to `end` (offsets into what is buffered),
   * piece by piece as they lie in the chunks, without consuming them.
   *
   * A visit that starts at or after where the previous one ended resumes from the chunk it
   * ended in, so visiting a large frame piece by piece as it trickles in costs time in
   * proportion to its bytes, not to its chunks squared.
   */
  visit(start: number, end: number, fn: (piece: Buffer) => void): void {
    if (end <= start) return;
    // chunks[i] (from `offset` when it is the first) starts at buffered offset `at`.
    let i = this.first;
    let at = 0;
    let cursor = this.cursor;
    if (cursor !== null && cursor.at <= start) {
      i = cursor.index;
      at = cursor.at;
    }
    for (;;) {
      const chunk = this.chunks[i]!;
      const off = i === this.first ? this.offset : 0;
      const have = chunk.length - off;
      if (at + have > start) {
        const from = off + (start - at);
        const step = Math.min(end - start, chunk.length - from);
        fn(chunk.subarray(from, from + step));
        start += step;
        if (start >= end) break;
      }
      at += have;
      i++;
    }
    // The visit ended inside chunks[i]; it stays where it is until bytes are consumed.
    if (cursor === null) cursor = this.cursor = { index: i, at };
    cursor.index = i;
    cursor.at = at;
  }

  /** Consumes `n` buffered bytes without returning them. */
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
    this.cursor = null;
    if (left === n) {
      (this.chunks as (Buffer | undefined)[])[this.first] = undefined;
      this.first++;
      this.offset = 0;
      if (this.first === this.chunks.length) {
        this.chunks.length = 0;
        this.first = 0;
        this.tail = null; // an idle connection keeps no buffer
      } else if (this.first >= 1024 && this.first * 2 >= this.chunks.length) {
        this.chunks = this.chunks.slice(this.first);
        this.first = 0;
      }
    } else {
      this.offset += n;
    }
  }

  /**
   * No more input will come (EOF, or the socket broke): the pending wait fails unless its
   * bytes are here; what is buffered can still be read. The first reason is kept.
   */
  end(err: IOError): void {
    if (this.ended === null) this.ended = err;
    if (this.onFail !== null) this.fail(this.closedBy ?? this.cutShort(this.expected));
  }

  /**
   * Stops serving reads: the buffered bytes are dropped, the pending wait and every later
   * one fail with `err`, and later input is dropped. The first reason is kept.
   */
  close(err: IOError): void {
    if (this.closedBy === null) {
      this.closedBy = err;
      this.fail(err);
    }
    this.chunks.length = 0;
    this.first = 0;
    this.offset = 0;
    this.avail = 0;
    this.tail = null;
    this.cursor = null;
  }

  private cutShort(n: number): IOError {
    const e = this.ended!;
    if (e.reason !== 'eof') return e;
    return new IOError('eof', `socket ended after ${this.avail} of ${n} bytes`, { bytesRead: this.avail, expected: n });
  }

  private fail(err: IOError): void {
    const onFail = this.onFail;
    if (onFail === null) return;
    const target = this.target!;
    this.clearWait();
    onFail(err, target);
  }

  private clearWait(): void {
    this.onReady = null;
    this.onFail = null;
    this.target = null;
  }
}
