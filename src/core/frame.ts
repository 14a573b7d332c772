/**
 * The frame codec (RFC 6455 §5.2), pure: no I/O, no timers.
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-------+-+-------------+-------------------------------+
 * |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 * |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 * |N|V|V|V|       |S|             |   (if payload len==126/127)   |
 * | |1|2|3|       |K|             |                               |
 * +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 * |     Extended payload length continued, if payload len == 127  |
 * + - - - - - - - - - - - - - - - +-------------------------------+
 * |                               |Masking-key, if MASK set to 1  |
 * +-------------------------------+-------------------------------+
 * | Masking-key (continued)       |          Payload Data         |
 * +-------------------------------- - - - - - - - - - - - - - - - +
 * ```
 * @module
 */
import {
  FIN_BIT,
  MASK_BIT,
  MAX_CONTROL_PAYLOAD,
  MAX_SAFE_LENGTH,
  OPCODE_MASK,
  Opcode,
  PAYLOAD_LEN_16,
  PAYLOAD_LEN_64,
  PAYLOAD_LEN_MASK,
  RSV1_BIT,
  RSV2_BIT,
  RSV3_BIT,
  isControlOpcode,
  isKnownOpcode
} from './constants';
import { PayloadTooBigError, ProtocolError } from './errors';
import { allocFrame } from './buffers';
import { applyMask, fillMaskingKey, maskBytes } from './mask';

/**
 * A whole frame, as in Nim's `Frame` tuple. `data` is the unmasked payload.
 * @group Frames
 */
export interface Frame {
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  masked: boolean;
  opcode: Opcode;
  data: Buffer;
}

/**
 * A decoded frame header. `maskKey` is a view of the 4 key bytes, or null.
 * @group Frames
 */
export interface FrameHeader {
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  /** The raw 4-bit opcode: not yet checked against the known ones. */
  opcode: number;
  masked: boolean;
  /** Payload length. Above 2^53 it is approximate and {@link validateHeader} refuses it. */
  length: number;
  /** How the length was written: 0 (7-bit), 2 (16-bit) or 8 (64-bit) extra bytes. */
  lengthBytes: 0 | 2 | 8;
  maskKey: Uint8Array | null;
  /** Header size in bytes, 2 to 14. */
  headerSize: number;
}

/** A fresh header object, for use with {@link decodeHeader}. */
export function newFrameHeader(): FrameHeader {
  return {
    fin: false,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    opcode: 0,
    masked: false,
    length: 0,
    lengthBytes: 0,
    maskKey: null,
    headerSize: 0
  };
}

/** Size of the header that starts with these two bytes. */
export function headerSizeOf(byte1: number): number {
  const len7 = byte1 & PAYLOAD_LEN_MASK;
  return 2 + (len7 === PAYLOAD_LEN_16 ? 2 : len7 === PAYLOAD_LEN_64 ? 8 : 0) + (byte1 & MASK_BIT ? 4 : 0);
}

/**
 * Decodes the header at `bytes[offset..end)` into `out`.
 *
 * @param keyBuffer where to copy the masking key (4 bytes); `out.maskKey` is then this buffer
 * instead of a new view of `bytes` (a hot loop saves an allocation per frame)
 * @returns 0 when the header was decoded, or how many more bytes are needed to decode it.
 * Nothing is validated here; see {@link validateHeader}.
 * @group Frames
 */
export function decodeHeader(
  bytes: Uint8Array,
  offset: number,
  end: number,
  out: FrameHeader,
  keyBuffer?: Uint8Array
): number {
  const avail = end - offset;
  if (avail < 2) return 2 - avail;
  const b0 = bytes[offset]!;
  const b1 = bytes[offset + 1]!;
  const size = headerSizeOf(b1);
  if (avail < size) return size - avail;
  out.fin = (b0 & FIN_BIT) !== 0;
  out.rsv1 = (b0 & RSV1_BIT) !== 0;
  out.rsv2 = (b0 & RSV2_BIT) !== 0;
  out.rsv3 = (b0 & RSV3_BIT) !== 0;
  out.opcode = b0 & OPCODE_MASK;
  out.masked = (b1 & MASK_BIT) !== 0;
  out.headerSize = size;
  const len7 = b1 & PAYLOAD_LEN_MASK;
  let p = offset + 2;
  if (len7 === PAYLOAD_LEN_16) {
    out.length = (bytes[p]! << 8) | bytes[p + 1]!;
    out.lengthBytes = 2;
    p += 2;
  } else if (len7 === PAYLOAD_LEN_64) {
    const hi = ((bytes[p]! << 24) | (bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!) >>> 0;
    const lo = ((bytes[p + 4]! << 24) | (bytes[p + 5]! << 16) | (bytes[p + 6]! << 8) | bytes[p + 7]!) >>> 0;
    // Above 2^53 the sum would round, and 0x7fff_ffff_ffff_fc00 and up would round to 2^63,
    // which validateHeader reads as "top bit set" (1002) instead of "too big" (1009). From
    // hi >= 2^21 on the length is already over 2^53-1, so the low word is dropped there: the
    // value stays approximate (as documented) but on the right side of 2^63.
    out.length = hi >= 0x20_0000 ? hi * 0x1_0000_0000 : hi * 0x1_0000_0000 + lo;
    out.lengthBytes = 8;
    p += 8;
  } else {
    out.length = len7;
    out.lengthBytes = 0;
  }
  if (!out.masked) {
    out.maskKey = null;
  } else if (keyBuffer !== undefined) {
    keyBuffer[0] = bytes[p]!;
    keyBuffer[1] = bytes[p + 1]!;
    keyBuffer[2] = bytes[p + 2]!;
    keyBuffer[3] = bytes[p + 3]!;
    out.maskKey = keyBuffer;
  } else {
    out.maskKey = bytes.subarray(p, p + 4);
  }
  return 0;
}

/**
 * What {@link validateHeader} checks a header against.
 * @group Frames
 */
export interface HeaderRules {
  /** True when frames must be masked (we are the server), false when they must not be. */
  expectMasked: boolean;
  /** Largest payload accepted in one frame, in bytes. */
  maxFrameSize: number;
  /** True when a negotiated extension gives RSV1 a meaning. */
  allowRsv1?: boolean;
}

/**
 * Checks a decoded header before its payload is read or allocated (RFC 6455 §5.1–§5.5).
 * @throws {ProtocolError} 1002 for RSV bits, unknown opcodes, fragmented or oversize control
 * frames, the wrong masking, a non-minimal or out-of-range length
 * @throws {PayloadTooBigError} 1009 for a payload over `maxFrameSize` (or 2^53-1)
 * @group Frames
 */
export function validateHeader(h: FrameHeader, rules: HeaderRules): void {
  // §5.2: "MUST be 0 unless an extension is negotiated that defines meanings for non-zero values".
  if ((h.rsv1 && !rules.allowRsv1) || h.rsv2 || h.rsv3) {
    throw new ProtocolError('WS_ERR_UNEXPECTED_RSV', 'reserved bits must be clear');
  }
  // §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket Connection_."
  if (!isKnownOpcode(h.opcode)) {
    throw new ProtocolError('WS_ERR_INVALID_OPCODE', `reserved opcode 0x${h.opcode.toString(16)}`);
  }
  if (isControlOpcode(h.opcode)) {
    // §5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be fragmented."
    if (!h.fin) throw new ProtocolError('WS_ERR_FRAGMENTED_CONTROL', 'control frames must not be fragmented');
    if (h.length > MAX_CONTROL_PAYLOAD) {
      throw new ProtocolError('WS_ERR_CONTROL_TOO_LONG', `control frame payload of ${h.length} bytes exceeds 125`);
    }
  }
  // §5.1: a server MUST close on an unmasked frame; a client MUST close on a masked frame.
  if (h.masked !== rules.expectMasked) {
    throw rules.expectMasked
      ? new ProtocolError('WS_ERR_EXPECTED_MASK', 'frames from a client must be masked')
      : new ProtocolError('WS_ERR_UNEXPECTED_MASK', 'frames from a server must not be masked');
  }
  // §5.2: "the minimal number of bytes MUST be used to encode the length", and "the most
  // significant bit MUST be 0" for the 64-bit form.
  if (h.lengthBytes === 2 && h.length < PAYLOAD_LEN_16) {
    throw new ProtocolError('WS_ERR_NON_MINIMAL_LENGTH', `length ${h.length} written in 16 bits`);
  }
  if (h.lengthBytes === 8) {
    if (h.length >= 2 ** 63) throw new ProtocolError('WS_ERR_INVALID_LENGTH', '64-bit length has its top bit set');
    if (h.length <= 0xffff) {
      throw new ProtocolError('WS_ERR_NON_MINIMAL_LENGTH', `length ${h.length} written in 64 bits`);
    }
  }
  if (h.length > rules.maxFrameSize || h.length > MAX_SAFE_LENGTH) {
    throw new PayloadTooBigError('WS_ERR_FRAME_TOO_BIG', h.length, Math.min(rules.maxFrameSize, MAX_SAFE_LENGTH));
  }
}

/** Bytes needed for the header of a frame with this payload length. */
export function encodedHeaderSize(length: number, masked: boolean): number {
  return (length < PAYLOAD_LEN_16 ? 2 : length <= 0xffff ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Writes a frame header into `dst` at `offset`, with the minimal length encoding. When
 * `maskKey` is given it is written too; when `masked` is true without a key, a fresh random
 * key is written. Returns the offset just past the header (where the key, if any, ends).
 */
export function encodeHeader(
  dst: Uint8Array,
  offset: number,
  b0: number,
  length: number,
  masked: boolean,
  maskKey?: Uint8Array
): number {
  dst[offset] = b0;
  const m = masked ? MASK_BIT : 0;
  let p = offset + 2;
  if (length < PAYLOAD_LEN_16) {
    dst[offset + 1] = m | length;
  } else if (length <= 0xffff) {
    dst[offset + 1] = m | PAYLOAD_LEN_16;
    dst[p] = length >>> 8;
    dst[p + 1] = length & 0xff;
    p += 2;
  } else {
    dst[offset + 1] = m | PAYLOAD_LEN_64;
    const hi = Math.floor(length / 0x1_0000_0000);
    const lo = length >>> 0;
    dst[p] = hi >>> 24;
    dst[p + 1] = (hi >>> 16) & 0xff;
    dst[p + 2] = (hi >>> 8) & 0xff;
    dst[p + 3] = hi & 0xff;
    dst[p + 4] = lo >>> 24;
    dst[p + 5] = (lo >>> 16) & 0xff;
    dst[p + 6] = (lo >>> 8) & 0xff;
    dst[p + 7] = lo & 0xff;
    p += 8;
  }
  if (masked) {
    if (maskKey) {
      dst[p] = maskKey[0]!;
      dst[p + 1] = maskKey[1]!;
      dst[p + 2] = maskKey[2]!;
      dst[p + 3] = maskKey[3]!;
    } else {
      fillMaskingKey(dst, p);
    }
    p += 4;
  }
  return p;
}

/** The first header byte for these flags. */
export function firstByte(fin: boolean, opcode: number, rsv1 = false, rsv2 = false, rsv3 = false): number {
  return (fin ? FIN_BIT : 0) | (rsv1 ? RSV1_BIT : 0) | (rsv2 ? RSV2_BIT : 0) | (rsv3 ? RSV3_BIT : 0) | opcode;
}

// A scratch key, refilled from the CSPRNG pool for each frame: copying 4 bytes costs less
// than creating a view of them.
const scratchKey = new Uint8Array(4);
/** A fresh random key in a scratch buffer that the next call overwrites. */
export function nextKey(): Uint8Array {
  fillMaskingKey(scratchKey, 0);
  return scratchKey;
}

// Masked payloads shorter than this are masked by encodeFrame's own loop (applyMask hands
// longer ones to bufferutil or the SIMD kernel).
const SMALL_MASKED = 128;
// Payloads shorter than this are copied by a loop: TypedArray.set costs more to set up.
const SMALL_COPY = 64;

/**
 * Encodes a whole frame into one new buffer, header then payload; a masked payload is
 * masked into the new buffer and the caller's bytes are never modified. Nothing is
 * validated: this builds exactly the frame described, legal or not, so tests can build bad
 * frames too. Sending functions validate before they call it.
 */
export function encodeFrame(
  b0: number,
  data: Uint8Array,
  masked: boolean,
  maskKey?: Uint8Array
): Buffer {
  const n = data.length;
  const out = allocFrame(encodedHeaderSize(n, masked) + n);
  if (masked && maskKey === undefined && n < SMALL_MASKED) {
    // A fresh key straight from the pool into the header, and the payload masked with it
    // from there: no scratch key, no call (a 16-byte frame is mostly this overhead).
    const p = encodeHeader(out, 0, b0, n, true);
    maskBytes(data, out, p, out[p - 4]!, out[p - 3]!, out[p - 2]!, out[p - 1]!);
  } else if (masked) {
    const key = maskKey ?? nextKey();
    applyMask(data, key, out, encodeHeader(out, 0, b0, n, true, key));
  } else if (n < SMALL_COPY) {
    const p = encodeHeader(out, 0, b0, n, false);
    for (let i = 0; i < n; i++) out[p + i] = data[i]!;
  } else {
    out.set(data, encodeHeader(out, 0, b0, n, false));
  }
  return out;
}

/**
 * Builds the bytes of a frame, as Nim's `makeFrame`. Two forms:
 *
 * - `makeFrame(frame, maskKey?)`: every field of `frame` as given (FIN, RSV bits, opcode);
 *   when `frame.masked`, the payload is masked with `maskKey` or a fresh random key.
 * - `makeFrame(opcode, data, masked)`: a final frame (FIN set) with this opcode; strings are
 *   encoded as UTF-8.
 *
 * The caller's buffer is never modified.
 * @example
 * ```ts
 * makeFrame(Opcode.Text, 'Hello', false); // <Buffer 81 05 48 65 6c 6c 6f>
 * ```
 * @group Frames
 */
export function makeFrame(frame: Frame, maskKey?: Uint8Array): Buffer;
export function makeFrame(opcode: Opcode, data: string | Uint8Array, masked: boolean, maskKey?: Uint8Array): Buffer;
export function makeFrame(
  a: Frame | Opcode,
  b?: Uint8Array | string,
  masked?: boolean,
  maskKey?: Uint8Array
): Buffer {
  if (typeof a === 'object') {
    const key = b as Uint8Array | undefined;
    if (key !== undefined && key.length !== 4) throw new RangeError('a masking key is 4 bytes');
    return encodeFrame(firstByte(a.fin, a.opcode, a.rsv1, a.rsv2, a.rsv3), a.data, a.masked, key);
  }
  if (maskKey !== undefined && maskKey.length !== 4) throw new RangeError('a masking key is 4 bytes');
  const data = typeof b === 'string' ? Buffer.from(b, 'utf8') : (b ?? Buffer.alloc(0));
  return encodeFrame(firstByte(true, a), data, masked === true, maskKey);
}

