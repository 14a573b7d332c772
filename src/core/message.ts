/**
 * Message assembly (RFC 6455 §5.4), pure: data frames go in, whole messages come out.
 * Control frames never pass through here, so a Ping between two fragments cannot touch the
 * message. Text is checked as UTF-8 fragment by fragment (fail fast, 1007).
 * @module
 */
import { CloseCode, Opcode } from './constants';
import { InvalidUtf8Error, PayloadTooBigError, ProtocolError } from './errors';
import { UTF8_ACCEPT, UTF8_REJECT, isValidUtf8, utf8Push } from './utf8';

/**
 * Limits a {@link MessageAssembler} enforces.
 * @group Frames
 */
export interface MessageLimits {
  /** Largest whole message, in bytes (1009 beyond it). */
  maxMessageSize: number;
  /** Most frames one message may have (1008 beyond it). */
  maxFragments: number;
}

/**
 * Keeps the state of the message being received across calls (the partial message lives
 * with the connection, not in one read call).
 * @group Frames
 */
export class MessageAssembler {
  /** Opcode (Text or Binary) of the message in progress, or 0 between messages. */
  opcode: 0 | 1 | 2 = 0;
  /** True when the message in progress is handed out fragment by fragment. */
  streaming = false;
  /** True when the message in progress is compressed (RSV1 on its first frame, RFC 7692). */
  compressed = false;
  /** Bytes of the message in progress kept so far. */
  size = 0;
  private fragments = 0;
  private buf: Buffer | null = null;
  // The incremental UTF-8 check of the text message in progress (a state number, see utf8Push).
  private utf8 = UTF8_ACCEPT;

  constructor(private readonly limits: MessageLimits) {}

  /**
   * Checks a data frame's header against the message state before its payload is read.
   * @param streaming whether the caller takes fragments as they come (no size limit on the
   * whole message then, since nothing is buffered)
   * @param rsv1 the frame's RSV1 bit, when permessage-deflate is in force: set on the first
   * frame of a compressed message (whose size is then checked as it inflates), and on no
   * other frame (RFC 7692 §6.1)
   * @throws {ProtocolError} 1002 for a continuation with no message, or a new message inside
   * one; 1008 for too many fragments; {@link PayloadTooBigError} 1009 when the message
   * would outgrow `maxMessageSize`
   */
  check(opcode: number, length: number, streaming: boolean, rsv1 = false): void {
    if (opcode === Opcode.Cont) {
      if (rsv1) throw new ProtocolError('WS_ERR_UNEXPECTED_RSV', 'RSV1 set on a continuation frame');
      if (this.opcode === 0) {
        throw new ProtocolError('WS_ERR_UNEXPECTED_CONTINUATION', 'continuation frame without a message to continue');
      }
      if (this.fragments >= this.limits.maxFragments) {
        throw new ProtocolError(
          'WS_ERR_TOO_MANY_FRAGMENTS',
          `message has more than ${this.limits.maxFragments} fragments`,
          CloseCode.PolicyViolation
        );
      }
      if (!this.streaming && !this.compressed && this.size + length > this.limits.maxMessageSize) {
        throw new PayloadTooBigError('WS_ERR_MESSAGE_TOO_BIG', this.size + length, this.limits.maxMessageSize);
      }
    } else {
      if (this.opcode !== 0) {
        throw new ProtocolError('WS_ERR_EXPECTED_CONTINUATION', 'new data frame inside a fragmented message');
      }
      this.compressed = rsv1;
      if (!streaming && !rsv1 && length > this.limits.maxMessageSize) {
        throw new PayloadTooBigError('WS_ERR_MESSAGE_TOO_BIG', length, this.limits.maxMessageSize);
      }
    }
  }

  /**
   * True when a data frame with this opcode carries text, so its bytes must be UTF-8.
   */
  isText(opcode: number): boolean {
    return opcode === Opcode.Text || (opcode === Opcode.Cont && this.opcode === Opcode.Text);
  }

  /**
   * @internal True when a data frame that passed {@link check} carries text to check as it arrives:
   * not for compressed messages, whose inflated bytes are checked instead.
   */
  checksAhead(opcode: number): boolean {
    return !this.compressed && this.isText(opcode);
  }

  /**
   * @internal Checks the first bytes of a text frame's payload before the rest has arrived, so that
   * invalid UTF-8 fails the connection as soon as it is seen, even inside one frame.
   * `first` is true for the frame's first piece. The same bytes are then skipped by
   * {@link push}/{@link pushPart} through their `validated` argument.
   * @throws {InvalidUtf8Error} 1007
   */
  validateAhead(opcode: number, piece: Uint8Array, first: boolean): void {
    if (first && opcode === Opcode.Text) this.utf8 = UTF8_ACCEPT;
    this.utf8 = utf8Push(this.utf8, piece);
    if (this.utf8 === UTF8_REJECT) throw new InvalidUtf8Error();
  }

  /**
   * Adds the payload of a data frame that passed {@link check}.
   * @param validated how many leading bytes `validateAhead` already checked
   * @returns the whole message's bytes when `fin` ends it, else null
   * @throws {InvalidUtf8Error} 1007 as soon as a text message cannot be valid UTF-8
   */
  push(opcode: number, fin: boolean, payload: Buffer, validated = 0): Buffer | null {
    if (opcode !== Opcode.Cont) {
      if (fin) {
        // The common case: a message in one frame, returned as it is (no copy).
        if (opcode === Opcode.Text) {
          const ok =
            validated === 0
              ? isValidUtf8(payload)
              : utf8Push(this.utf8, payload.subarray(validated)) === UTF8_ACCEPT;
          if (!ok) throw new InvalidUtf8Error();
        }
        return payload;
      }
      this.begin(opcode as 1 | 2, false, validated === 0);
    }
    this.validate(validated === 0 ? payload : payload.subarray(validated), fin);
    this.append(payload);
    this.fragments++;
    if (!fin) return null;
    const out = this.buf ? this.buf.subarray(0, this.size) : Buffer.alloc(0);
    this.reset();
    return out;
  }

  /**
   * Takes the payload of a data frame that passed {@link check}, in streaming mode: nothing
   * is kept but the UTF-8 state.
   * @returns the opcode (Text or Binary) of the message this fragment belongs to
   * @throws {InvalidUtf8Error} 1007 as soon as a text message cannot be valid UTF-8
   */
  pushPart(opcode: number, fin: boolean, payload: Buffer, validated = 0): 1 | 2 {
    if (opcode !== Opcode.Cont) this.begin(opcode as 1 | 2, true, validated === 0);
    const messageOpcode = this.opcode as 1 | 2;
    this.validate(validated === 0 ? payload : payload.subarray(validated), fin);
    this.fragments++;
    if (fin) this.reset();
    return messageOpcode;
  }

  private begin(opcode: 1 | 2, streaming: boolean, resetUtf8: boolean): void {
    this.opcode = opcode;
    this.streaming = streaming;
    if (resetUtf8) this.utf8 = UTF8_ACCEPT;
  }

  private validate(payload: Buffer, fin: boolean): void {
    if (this.opcode !== Opcode.Text) return;
    this.utf8 = utf8Push(this.utf8, payload);
    if (this.utf8 === UTF8_REJECT || (fin && this.utf8 !== UTF8_ACCEPT)) throw new InvalidUtf8Error();
  }

  // Fragments are copied into one growing buffer (doubling, capped at the limit), so a
  // message in many tiny fragments costs its size, not a Buffer object per fragment, and
  // never pins the socket's receive chunks.
  private append(payload: Buffer): void {
    const need = this.size + payload.length;
    if (this.buf === null || need > this.buf.length) {
      const grown = Math.min(this.limits.maxMessageSize, Math.max(need, 1024, (this.buf?.length ?? 0) * 2));
      const next = Buffer.allocUnsafeSlow(grown);
      if (this.buf !== null) this.buf.copy(next, 0, 0, this.size);
      this.buf = next;
    }
    payload.copy(this.buf, this.size);
    this.size = need;
  }

  /** Drops the message in progress (after it completed, or when the connection failed). */
  reset(): void {
    this.opcode = 0;
    this.streaming = false;
    this.compressed = false;
    this.size = 0;
    this.fragments = 0;
    this.buf = null;
  }
}
