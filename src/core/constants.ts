/**
 * Protocol constants of RFC 6455, named after the fields they describe.
 * @module
 */

/**
 * Frame opcodes (RFC 6455 §5.2, §11.8). Same members and values as Nim's `Opcode`.
 * Values 3–7 and 11–15 are reserved and rejected on receipt.
 * @group Frames
 */
export const Opcode = {
  /** A continuation frame of a fragmented message. */
  Cont: 0x0,
  /** A text frame: the message must be valid UTF-8. */
  Text: 0x1,
  /** A binary frame. */
  Binary: 0x2,
  /** A connection close control frame. */
  Close: 0x8,
  /** A ping control frame. */
  Ping: 0x9,
  /** A pong control frame. */
  Pong: 0xa
} as const;
/** One of the {@link Opcode} values. */
/** An opcode value (a member of {@link Opcode}). @group Frames */
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/**
 * Close status codes (RFC 6455 §7.4.1, and the IANA "WebSocket Close Code Number Registry").
 * 1005, 1006 and 1015 are reserved for reporting and never sent on the wire.
 * @group Frames
 */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Reserved: "no status code was present". Never on the wire. */
  NoStatus: 1005,
  /** Reserved: "closed abnormally, without a Close frame". Never on the wire. */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  /** Reserved: TLS handshake failure. Never on the wire. */
  TlsHandshake: 1015
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * The GUID appended to `Sec-WebSocket-Key` to compute the accept value (§1.3).
 * @group Frames
 */
export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// RFC 6455 §5.2, first byte.
export const FIN_BIT = 0b1000_0000;
export const RSV1_BIT = 0b0100_0000;
export const RSV2_BIT = 0b0010_0000;
export const RSV3_BIT = 0b0001_0000;
export const OPCODE_MASK = 0b0000_1111;
// RFC 6455 §5.2, second byte.
export const MASK_BIT = 0b1000_0000;
export const PAYLOAD_LEN_MASK = 0b0111_1111;
/** 7-bit length value announcing a 16-bit extended length. */
export const PAYLOAD_LEN_16 = 126;
/** 7-bit length value announcing a 64-bit extended length. */
export const PAYLOAD_LEN_64 = 127;

/**
 * Control frames carry at most 125 bytes of payload (§5.5).
 * @group Frames
 */
export const MAX_CONTROL_PAYLOAD = 125;
/** A close reason fits in a control payload after the 2-byte code (§5.5.1). */
export const MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2;
/**
 * 2 bytes + 8 bytes extended length + 4 bytes masking key (§5.2).
 * @group Frames
 */
export const MAX_HEADER_SIZE = 14;
/**
 * Lengths above 2^53-1 cannot be held exactly in a JavaScript number; such a frame
 * could not be held in memory anyway, so it is refused as too big (1009).
 */
export const MAX_SAFE_LENGTH = Number.MAX_SAFE_INTEGER;

/** True for Close, Ping and Pong (opcodes with the high bit set, §5.5). */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** True for the six opcodes RFC 6455 defines. */
export function isKnownOpcode(opcode: number): opcode is Opcode {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xa);
}
