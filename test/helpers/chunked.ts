/**
 * Pure helpers for split-point tests of the frame codec: cut a byte stream into chunks, and
 * decode frames incrementally from chunks with `decodeHeader` on an accumulating buffer, the
 * way a socket reader would, with no socket.
 */
import { applyMask, decodeHeader, HeaderRules, validateHeader } from '../../src';
import { newFrameHeader } from '../../src/core/frame';

/**
 * Cuts `bytes` into consecutive chunks of the given sizes; whatever is left after the last
 * size becomes one final chunk. Chunks are copies, so a decoder cannot rely on them being
 * views of one buffer. Sizes of 0 give empty chunks (a reader must cope with those too).
 */
export function chunked(bytes: Uint8Array, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (const size of sizes) {
    if (size < 0 || !Number.isInteger(size)) throw new RangeError(`bad chunk size ${size}`);
    const end = Math.min(bytes.length, pos + size);
    out.push(Buffer.from(bytes.subarray(pos, end)));
    pos = end;
  }
  if (pos < bytes.length) out.push(Buffer.from(bytes.subarray(pos)));
  return out;
}

/**
 * Cuts `bytes` in two at `offset` (0 and `bytes.length` give one empty chunk). The chunks are
 * views of `bytes`, not copies: every-split-point loops call this once per byte of stream.
 */
export function splitAt(bytes: Uint8Array, offset: number): Buffer[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [b.subarray(0, offset), b.subarray(offset)];
}

/**
 * A frame as seen on the wire: the header fields plus the payload (unmasked, unless the
 * decoder was told not to unmask).
 */
export interface DecodedFrame {
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  opcode: number;
  masked: boolean;
  /** The masking key as hex, or null for an unmasked frame. */
  maskKey: string | null;
  /** How the length was written: 0, 2 or 8 extra bytes. */
  lengthBytes: 0 | 2 | 8;
  data: Buffer;
}

/** Options of {@link IncrementalDecoder}. */
export interface DecoderOptions {
  /** False to return masked payloads as they were on the wire. Default true. */
  unmask?: boolean;
  /**
   * False to return payloads that came out of the internal buffer as views of it: they are
   * valid only until the next `push`. Default true (always copies).
   */
  copy?: boolean;
}

/**
 * An incremental frame decoder: chunks go in, whole frames come out, the way a socket reader
 * would do it. Each frame's header is decoded in place with `decodeHeader` at the current
 * offset, validated with `validateHeader` when rules are given, and the frame is taken once
 * its payload is all there.
 *
 * Bytes that do not yet make a whole frame wait in a growable buffer (amortised, so feeding
 * one byte at a time stays linear); while nothing waits, frames are parsed straight from the
 * chunk. Unmasked payloads taken from a chunk are views of it (chunks are never modified);
 * everything else is copied or unmasked into new buffers.
 */
export class IncrementalDecoder {
  private acc: Buffer = Buffer.alloc(0);
  private accLen = 0;
  private readonly header = newFrameHeader();

  constructor(
    private readonly rules?: HeaderRules,
    private readonly options: DecoderOptions = {}
  ) {}

  /** Bytes received but not yet part of a whole frame. */
  get pending(): number {
    return this.accLen;
  }

  /** Feeds one chunk; returns the frames it completed. */
  push(chunk: Uint8Array): DecodedFrame[] {
    let src: Buffer;
    const fromChunk = this.accLen === 0;
    if (fromChunk) {
      src = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    } else {
      this.append(chunk);
      src = this.acc.subarray(0, this.accLen);
    }
    const frames: DecodedFrame[] = [];
    const h = this.header;
    const unmask = this.options.unmask !== false;
    let pos = 0;
    while (true) {
      const need = decodeHeader(src, pos, src.length, h);
      if (need > 0) break;
      if (this.rules) validateHeader(h, this.rules);
      const start = pos + h.headerSize;
      if (src.length - start < h.length) break;
      const raw = src.subarray(start, start + h.length);
      let data: Buffer;
      if (h.maskKey && unmask) {
        data = Buffer.allocUnsafe(h.length);
        applyMask(raw, h.maskKey, data);
      } else {
        // The accumulator is reused, so what comes from it is copied (unless told not to).
        data = fromChunk || this.options.copy === false ? raw : Buffer.from(raw);
      }
      frames.push({
        fin: h.fin,
        rsv1: h.rsv1,
        rsv2: h.rsv2,
        rsv3: h.rsv3,
        opcode: h.opcode,
        masked: h.masked,
        maskKey: h.maskKey ? Buffer.from(h.maskKey).toString('hex') : null,
        lengthBytes: h.lengthBytes,
        data
      });
      pos = start + h.length;
    }
    if (fromChunk) {
      this.accLen = 0;
      this.append(src.subarray(pos));
    } else {
      this.acc.copyWithin(0, pos, this.accLen);
      this.accLen -= pos;
    }
    return frames;
  }

  private append(bytes: Uint8Array): void {
    const need = this.accLen + bytes.length;
    if (need > this.acc.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.acc.length * 2, 64));
      this.acc.copy(grown, 0, 0, this.accLen);
      this.acc = grown;
    }
    this.acc.set(bytes, this.accLen);
    this.accLen = need;
  }
}

/**
 * Decodes a whole stream given as chunks; throws when bytes are left over. With
 * `unmask: false`, masked payloads are returned as they were on the wire (cheaper, for
 * comparing decodes of one stream with each other).
 */
export function decodeChunks(
  chunks: readonly Uint8Array[],
  rules?: HeaderRules,
  options: DecoderOptions = {}
): DecodedFrame[] {
  const decoder = new IncrementalDecoder(rules, options);
  const frames: DecodedFrame[] = [];
  for (const chunk of chunks) frames.push(...decoder.push(chunk));
  if (decoder.pending !== 0) throw new Error(`${decoder.pending} bytes left after the last whole frame`);
  return frames;
}
