/**
 * Pong bookkeeping of one connection, both ways: the Pings we sent and wait on (settled by
 * the peer's Pongs, RFC 6455 §5.5.3), and the one Pong we owe but hold back while the peer
 * does not read. A connection creates it only when a Ping is awaited or a Pong deferred, so
 * an idle connection carries none.
 * @module
 */
import { randomBytes } from 'node:crypto';

/** The payload of a Ping sent without one: 8 random bytes, hex-encoded (16 printable bytes). */
export function newPingToken(): Buffer {
  return Buffer.from(randomBytes(8).toString('hex'));
}

interface Waiter {
  resolve: (rtt: number) => void;
  reject: (err: Error) => void;
  sentAt: number;
}

/** The Pings awaited and the Pong deferred on one connection. */
export class Pongs {
  /** The latest Ping payload whose Pong waits for what was written before it, or null. */
  deferred: Buffer | null = null;
  /** True while a wake-up for the deferred Pong is pending. */
  wakePending = false;
  // Pings waiting for their Pong, in the order they were sent, keyed by payload.
  private readonly waiters = new Map<string, Waiter>();

  /** How many Pings wait for their Pong. */
  get size(): number {
    return this.waiters.size;
  }

  /**
   * Registers a Ping's payload before it is sent; resolves with the round-trip time in ms
   * when its Pong (or a later Ping's) is seen by {@link settle}.
   * @throws {RangeError} when a Ping with this payload is already waiting
   */
  wait(token: Uint8Array): Promise<number> {
    const key = Buffer.from(token.buffer, token.byteOffset, token.length).toString('latin1');
    if (this.waiters.has(key)) throw new RangeError('a ping with this token is already waiting');
    return new Promise((resolve, reject) => {
      this.waiters.set(key, { resolve, reject, sentAt: performance.now() });
    });
  }

  /** Forgets a Ping's waiter (it timed out or could not be sent). */
  cancel(token: Uint8Array): void {
    this.waiters.delete(Buffer.from(token.buffer, token.byteOffset, token.length).toString('latin1'));
  }

  /**
   * Settles the Ping this Pong answers and every earlier one, since a peer may answer only
   * the most recent of several Pings (§5.5.3). An unsolicited Pong settles nothing.
   */
  settle(data: Uint8Array): void {
    if (this.waiters.size === 0) return;
    const key = Buffer.from(data.buffer, data.byteOffset, data.length).toString('latin1');
    if (!this.waiters.has(key)) return;
    const now = performance.now();
    for (const [k, waiter] of this.waiters) {
      this.waiters.delete(k);
      waiter.resolve(now - waiter.sentAt);
      if (k === key) break;
    }
  }

  /** Rejects every waiting Ping with `err` (the connection closed) and drops a deferred Pong. */
  failAll(err: Error): void {
    this.deferred = null;
    for (const waiter of this.waiters.values()) waiter.reject(err);
    this.waiters.clear();
  }
}
