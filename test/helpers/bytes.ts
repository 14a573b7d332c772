/**
 * Test bytes: from hex, deterministic payloads (an arithmetic pattern, and xorshift32 noise
 * so failures reproduce), and a digest for comparing large payloads in one line.
 */
import { createHash } from 'node:crypto';

/** Bytes from hex, ignoring white space: `hex('82 7e 01 00')`. */
export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** SHA-256 of `b` as hex: compares large payloads with a short message on failure. */
export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * `n` bytes counting in steps: byte i is `(start + i * step) & 0xff`. The default (7, 3) is the
 * "binary data" of the RFC 6455 §5.7 examples in the frame tests; an odd step visits all 256
 * values, so a shifted or reversed copy never matches.
 */
export function pattern(n: number, step = 7, start = 3): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (start + i * step) & 0xff;
  return b;
}

/**
 * `n` pseudo-random bytes from `seed` (xorshift32; seed 0 counts as 1). The buffer has its own
 * ArrayBuffer of exactly `n` bytes at offset 0 (never the shared pool), so views into
 * `.buffer` at chosen offsets are safe.
 */
export function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
