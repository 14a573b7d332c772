/**
 * Pure helpers for split-point tests of the frame codec: cut a byte stream into chunks, and
 * decode frames incrementally from chunks with `decodeHeader` on an accumulating buffer, the
 * way a socket reader would, with no socket.
 */
import { HeaderRules, decodeHeader, newFrameHeader, validateHeader } from '../../src/core/frame';
import { applyMask } from '../../src/core/mask';

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

/** Cuts `bytes` in two at `offset` (0 and `bytes.length` give one empty chunk). */
export function splitAt(bytes: Uint8Array, offset: number): Buffer[] {
  return [Buffer.from(bytes.subarray(0, offset)), Buffer.from(bytes.subarray(offset))];
}

/** A frame as seen on the wire: the header fields plus the unmasked payload. */
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

/**
 * An incremental frame decoder: chunks go in, whole frames come out. Bytes accumulate in one
 * buffer; each frame's header is decoded in place with `decodeHeader` at the current offset,
 * validated with `validateHeader` when rules are given, and the frame is taken once its
 * payload is all there.
 */
export class IncrementalDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private readonly header = newFrameHeader();

  constructor(private readonly rules?: HeaderRules) {}

  /** Bytes received but not yet part of a whole frame. */
  get pending(): number {
    return this.buf.length;
  }

  /** Feeds one chunk; returns the frames it completed. */
  push(chunk: Uint8Array): DecodedFrame[] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const frames: DecodedFrame[] = [];
    const h = this.header;
    let pos = 0;
    while (true) {
      const need = decodeHeader(this.buf, pos, this.buf.length, h);
      if (need > 0) break;
      if (this.rules) validateHeader(h, this.rules);
      const start = pos + h.headerSize;
      if (this.buf.length - start < h.length) break;
      const data = Buffer.from(this.buf.subarray(start, start + h.length));
      if (h.maskKey) applyMask(data, h.maskKey);
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
    this.buf = this.buf.subarray(pos);
    return frames;
  }
}

/** Decodes a whole stream given as chunks; throws when bytes are left over. */
export function decodeChunks(chunks: readonly Uint8Array[], rules?: HeaderRules): DecodedFrame[] {
  const decoder = new IncrementalDecoder(rules);
  const frames: DecodedFrame[] = [];
  for (const chunk of chunks) frames.push(...decoder.push(chunk));
  if (decoder.pending !== 0) throw new Error(`${decoder.pending} bytes left after the last whole frame`);
  return frames;
}
