/**
 * The send timeout: a peer that stops reading must not hold what we send (and what
 * our sends hold: messages, compressed buffers) for ever. While bytes wait to be written, the
 * watchdog looks four times per `ms` for progress (the kernel took some of them, or a write
 * completed) and calls `stalled` once there was none for `ms` (so between `ms` and 1.25 ×
 * `ms` after the last progress). A peer that reads slowly but steadily is never cut off,
 * however long one large send takes.
 * @module
 */
import type { Duplex } from 'node:stream';

// Bytes a socket still has to hand to the kernel: libuv's own queue when there is one (it
// shrinks as the peer reads, even inside one large write), else the stream's write buffer.
function unsent(s: Duplex): number {
  const handle = (s as { _handle?: { writeQueueSize?: number } | null })._handle;
  return typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : s.writableLength;
}

function check(this: void, w: SendWatchdog): void {
  w.check();
}

/** Watches one socket's unsent bytes; made on the first write that does not complete at once. */
export class SendWatchdog {
  private timer: NodeJS.Timeout | null = null;
  private last = 0;
  private moved = false;
  // When progress was last seen (ms, performance.now()).
  private progressAt = 0;

  /**
   * @param ms how long the unsent bytes may stay without progress
   * @param stalled called once when they did, with how many bytes were unsent
   */
  constructor(
    private readonly socket: Duplex,
    private readonly ms: number,
    private readonly stalled: (unsent: number, ms: number) => void
  ) {}

  /** A write is pending: watch it (if nothing is watched yet). */
  arm(): void {
    if (this.timer !== null) return;
    this.last = unsent(this.socket);
    this.moved = false;
    this.progressAt = performance.now();
    this.timer = setTimeout(check, Math.max(1, this.ms / 4), this);
    this.timer.unref();
  }

  /** A write completed: that is progress. */
  progress(): void {
    this.moved = true;
  }

  /** Stops watching (the socket closed). */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** @internal The periodic look. */
  check(): void {
    const s = this.socket;
    if (s.destroyed || s.writableLength === 0) {
      this.timer = null;
      return;
    }
    const now = unsent(s);
    if (this.moved || now < this.last) {
      this.last = now;
      this.moved = false;
      this.progressAt = performance.now();
    } else if (performance.now() - this.progressAt >= this.ms) {
      this.timer = null;
      this.stalled(s.writableLength, this.ms);
      return;
    }
    this.timer!.refresh();
  }
}
