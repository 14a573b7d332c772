/**
 * The suite's own frame encoder and decoder. They do not use wsframe's codec: the bytes the
 * suite sends (including deliberately broken frames) and its reading of the peer's replies
 * must not depend on the library under test.
 */
import { randomBytes } from 'node:crypto';
import { FrameSpec } from './types';

/** Encodes one frame; `masked` is the suite's role default, flipped when the spec asks. */
export function encodeFrame(spec: FrameSpec, masked: boolean): Buffer {
  const payload = typeof spec.data === 'string' ? Buffer.from(spec.data, 'utf8') : (spec.data ?? Buffer.alloc(0));
  const mask = spec.flipMask ? !masked : masked;
  const fin = spec.fin ?? true;
  const b0 = (fin ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | (spec.op & 0x0f);
  const len = spec.claimLength ?? BigInt(payload.length);
  let header: Buffer;
  if (spec.claimLength === undefined && len < 126n) {
    header = Buffer.from([b0, Number(len)]);
  } else if (spec.claimLength === undefined && len < 65536n) {
    header = Buffer.alloc(4);
    header[0] = b0;
    header[1] = 126;
    header.writeUInt16BE(Number(len), 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = b0;
    header[1] = 127;
    header.writeBigUInt64BE(len, 2);
  }
  if (mask) header[1] |= 0x80;
  if (spec.claimLength !== undefined) return mask ? Buffer.concat([header, randomBytes(4)]) : header;
  if (!mask) return Buffer.concat([header, payload]);
  const key = randomBytes(4);
  const body = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([header, key, body]);
}

/** A frame as received from the peer, payload unmasked. */
export interface WireFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  data: Buffer;
}

/** Incremental frame parser over a list of chunks (no copy until a whole frame is there). */
export class FrameParser {
  private chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    return this.take(n, false);
  }

  private take(n: number, consume = true): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n && consume) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.length -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    let i = 0;
    while (off < n) {
      const c = this.chunks[i]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (consume) {
        if (k === c.length) this.chunks.shift();
        else {
          this.chunks[0] = c.subarray(k);
          i = 0;
        }
      } else i++;
    }
    if (consume) this.length -= n;
    return out;
  }

  /** The next whole frame, or null when more bytes are needed. Throws on a length it cannot handle. */
  next(): WireFrame | null {
    if (this.length < 2) return null;
    const b = this.peek(2);
    const masked = (b[1]! & 0x80) !== 0;
    const short = b[1]! & 0x7f;
    const extra = short === 126 ? 2 : short === 127 ? 8 : 0;
    const headerSize = 2 + extra + (masked ? 4 : 0);
    if (this.length < headerSize) return null;
    const h = this.peek(headerSize);
    let len = short;
    if (short === 126) len = h.readUInt16BE(2);
    else if (short === 127) {
      const big = h.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`peer announced a ${big}-byte payload`);
      len = Number(big);
    }
    if (this.length < headerSize + len) return null;
    const head = Buffer.from(this.take(headerSize));
    const data = Buffer.from(this.take(len));
    if (masked) {
      const key = head.subarray(headerSize - 4);
      for (let i = 0; i < data.length; i++) data[i] = data[i]! ^ key[i & 3]!;
    }
    return { fin: (head[0]! & 0x80) !== 0, rsv: (head[0]! >> 4) & 7, opcode: head[0]! & 0x0f, masked, data };
  }
}

/** A close payload: code (2 bytes, big-endian) and reason. */
export function closePayload(code?: number, reason: string | Buffer = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason;
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

/** Close codes RFC 6455 §7.4 allows on the wire (1012-1014 are IANA-registered later). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** Deterministic pseudo-random numbers (mulberry32), so every run sends the same bytes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` bytes of deterministic binary data (all byte values occur). */
export function binaryPayload(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  const r = prng(seed);
  let i = 0;
  for (; i + 4 <= n; i += 4) out.writeUInt32LE((r() * 4294967296) >>> 0, i);
  for (; i < n; i++) out[i] = (r() * 256) | 0;
  return out;
}

/** `n` bytes of valid UTF-8 text: ASCII, or a mix of 1- to 4-byte characters when `mixed`. */
export function textPayload(n: number, mixed = false): Buffer {
  if (!mixed) {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = 0x61 + (i % 26);
    return out;
  }
  const unit = Buffer.from('aé€𝄞', 'utf8'); // 1 + 2 + 3 + 4 bytes
  const whole = Math.floor(n / unit.length);
  const out = Buffer.alloc(n, 0x7a); // pad with 'z'
  for (let i = 0; i < whole; i++) unit.copy(out, i * unit.length);
  return out;
}
