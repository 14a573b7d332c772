/**
 * An in-memory socket for `AsyncSocket`: what a test pushes into `duplex` arrives as the
 * socket's 'data' events would, and what the library writes is kept in `written`. No network,
 * no timers: for tests that drive the reader byte by byte or by the thousand.
 */
import { Duplex } from 'node:stream';

export interface MemorySocket {
  /** Give it to `new AsyncSocket(...)`; `duplex.push(bytes)` delivers bytes, `push(null)` the EOF. */
  duplex: Duplex;
  /** Every chunk written to the socket, in order. */
  written: Buffer[];
}

export function memorySocket(): MemorySocket {
  const written: Buffer[] = [];
  const duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      cb();
    },
    final(cb) {
      cb();
    }
  });
  return { duplex, written };
}
