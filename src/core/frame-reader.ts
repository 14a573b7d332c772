/**
 * The frame reader of one connection, pure: it parses the next frame out of a
 * {@link ReceiveQueue} synchronously, checks it against the rules and the message in
 * progress, and returns a frame, a whole message, a piece of one, a control frame, a
 * compressed payload to inflate, or "need more bytes". It never waits and never writes:
 * `src/connection/recv.ts` waits for bytes, inflates, and answers control frames.
 *
 * Its fields are the state of the read in progress, so a read that waits keeps it here and
 * not in module variables or closures.
 * @module
 */
import { Opcode, isControlOpcode } from './constants';
import { ProtocolError } from './errors';
import { Frame, FrameHeader, HeaderRules, decodeHeader, headerSizeOf, newFrameHeader, validateHeader } from './frame';
import { applyMask } from './mask';
import { MessageAssembler, MessageLimits } from './message';
import type { ReceiveQueue } from './receive-queue';

/**
 * A whole message, or a control frame, as `readData` returns it.
 * @group Connection
 */
export interface Message {
  opcode: Opcode;
  data: Buffer;
}

/**
 * A piece of a message, as `readFragment` returns it.
 * @group Connection
 */
export interface Fragment {
  /** Text or Binary for data (also on continuation frames), else the control opcode. */
  opcode: Opcode;
  data: Buffer;
  /** True on the last piece of a message, and on control frames. */
  fin: boolean;
}

/**
 * What a read returns: one raw frame, a whole message, or a piece of one. DRAIN reads whole
 * messages too, for `close()`, which drops them; a read of the caller's may take its place.
 */
export const ReadMode = { FRAME: 0, MESSAGE: 1, FRAGMENT: 2, DRAIN: 3 } as const;
export type ReadMode = (typeof ReadMode)[keyof typeof ReadMode];

/** One frame's payload of a compressed message (RFC 7692), to inflate before it goes on. */
export interface Compressed {
  readonly kind: 'inflate';
  data: Buffer;
  /** The frame's own opcode (Cont for continuation frames). */
  opcode: Opcode;
  fin: boolean;
}

/** What {@link FrameReader.parse} returns when the bytes of the next frame are not all in. */
export const NEED_MORE = null;

/** What one parse step gives. */
export type Parsed = Frame | Message | Fragment | Compressed | typeof NEED_MORE;

// Parsing is synchronous, so one header, one key buffer and one rules object serve every
// connection (scratch space, never a way to return a result).
const header = newFrameHeader();
const keyBuffer = new Uint8Array(4);
const rules: HeaderRules = { expectMasked: true, maxFrameSize: 0 };

/** The reading state of one connection: the message in progress and the read under way. */
export class FrameReader {
  /** The message being received. */
  readonly assembler: MessageAssembler;
  /** After {@link NEED_MORE}: how many bytes must be buffered to finish the frame. */
  needed = 0;
  /** After {@link NEED_MORE}: when to look again (earlier than `needed` for text checked as it comes). */
  wakeAt = 0;
  /** Payload bytes of the frame at the head of the queue already unmasked and checked as UTF-8. */
  validatedAhead = 0;
  /** The pending read's mode and role, and how to settle it (set by the I/O layer). */
  mode: ReadMode = ReadMode.MESSAGE;
  client = false;
  resolve: ((value: Frame | Message | Fragment | IteratorResult<Message, void>) => void) | null = null;
  reject: ((err: unknown) => void) | null = null;
  /**
   * The `messages()` iterator the pending read answers for, or null for a plain read: its
   * results are iterator results, Pings and Pongs are read past, and the Close ends it.
   */
  iterator: object | null = null;
  /** Called once when the pending read ends (close() waits on it while another task reads). */
  onSettled: (() => void) | null = null;
  /** True when close() read the peer's Close (a reading loop of the caller's then ends cleanly). */
  closeDrained = false;

  constructor(limits: MessageLimits) {
    this.assembler = new MessageAssembler(limits);
  }

  /** True while a read is pending (waiting for bytes or for inflation). */
  get pending(): boolean {
    return this.resolve !== null;
  }

  /**
   * Parses frames out of `queue` until one gives something to return; {@link NEED_MORE}
   * (then {@link needed} and {@link wakeAt} say how many bytes to wait for) when the next
   * frame is not all in. Control frames are returned as they are, for the caller to answer.
   * @param client true when frames must arrive unmasked (we are the client)
   * @param deflate true when permessage-deflate is in force (RSV1 marks a compressed message)
   * @throws {ProtocolError} for a frame that breaks the rules (nothing of it is consumed)
   */
  parse<T>(queue: ReceiveQueue<T>, mode: ReadMode, client: boolean, maxFrameSize: number, deflate: boolean): Parsed {
    const assembler = this.assembler;
    for (;;) {
      const avail = queue.length;
      if (avail < 2) {
        this.needed = this.wakeAt = 2;
        return NEED_MORE;
      }
      let bytes = queue.peek(2);
      const size = headerSizeOf(bytes[queue.peekOffset + 1]!);
      if (avail < size) {
        this.needed = this.wakeAt = size;
        return NEED_MORE;
      }
      if (size > 2) bytes = queue.peek(size);
      const off = queue.peekOffset;
      const h = header;
      decodeHeader(bytes, off, off + size, h, keyBuffer);
      rules.expectMasked = !client;
      rules.maxFrameSize = maxFrameSize;
      rules.allowRsv1 = deflate;
      validateHeader(h, rules);
      const control = isControlOpcode(h.opcode);
      // RFC 7692 §6.1: only data frames may be compressed.
      if (h.rsv1 && control) throw new ProtocolError('WS_ERR_UNEXPECTED_RSV', 'RSV1 set on a control frame');
      if (!control && mode !== ReadMode.FRAME) assembler.check(h.opcode, h.length, mode === ReadMode.FRAGMENT, h.rsv1);
      const total = size + h.length;
      if (avail < total) {
        this.needed = this.wakeAt = total;
        // Text that arrives slowly is checked as it comes, so invalid UTF-8 fails the
        // connection at once, not when the whole frame is in (fail fast, RFC 6455 §8.1).
        if (!control && mode !== ReadMode.FRAME && assembler.checksAhead(h.opcode)) {
          this.validateAhead(queue, h, size, avail - size);
          this.wakeAt = avail + 1;
        }
        return NEED_MORE;
      }
      queue.skip(size);
      const validated = this.validatedAhead;
      let data: Buffer;
      if (validated === 0) {
        // Unmasked in place (the received bytes are ours) or while copied out of the chunks.
        // The key lies before the payload, so it is still intact.
        data = h.masked && h.length > 0 ? queue.takeUnmasked(h.length, h.maskKey!) : queue.take(h.length);
      } else {
        // The first `validated` bytes were unmasked in place already.
        this.validatedAhead = 0;
        data = queue.take(h.length);
        if (h.masked) applyMask(data.subarray(validated), h.maskKey!, data, validated, validated & 3);
      }
      const opcode = h.opcode as Opcode;
      if (mode === ReadMode.FRAME) {
        return { fin: h.fin, rsv1: h.rsv1, rsv2: h.rsv2, rsv3: h.rsv3, masked: h.masked, opcode, data };
      }
      if (control) return mode === ReadMode.FRAGMENT ? { opcode, data, fin: true } : { opcode, data };
      // The caller gets inflated bytes: it inflates this payload and then calls inflated().
      if (assembler.compressed) return { kind: 'inflate', data, opcode, fin: h.fin };
      if (mode === ReadMode.FRAGMENT) {
        return { opcode: assembler.pushPart(opcode, h.fin, data, validated), data, fin: h.fin };
      }
      const messageOpcode = opcode === Opcode.Cont ? assembler.opcode : opcode;
      const message = assembler.push(opcode, h.fin, data, validated);
      if (message !== null) return { opcode: messageOpcode as Opcode, data: message };
    }
  }

  /**
   * The most bytes the payload of `frame` may inflate to: one piece handed out as it comes
   * is bounded like a frame; a whole message by what is left of its limit.
   */
  inflateLimit(mode: ReadMode, maxFrameSize: number, maxMessageSize: number): number {
    return mode === ReadMode.FRAGMENT ? maxFrameSize : maxMessageSize - this.assembler.size;
  }

  /**
   * Takes the inflated payload of a {@link Compressed} frame into the message; text is
   * checked as UTF-8 here.
   * @returns the whole message or the piece to hand out, or null when the message goes on
   * @throws {ProtocolError} as the assembler does
   */
  inflated(frame: Compressed, out: Buffer, mode: ReadMode): Message | Fragment | null {
    const assembler = this.assembler;
    const { opcode, fin } = frame;
    if (mode === ReadMode.FRAGMENT) return { opcode: assembler.pushPart(opcode, fin, out), data: out, fin };
    const messageOpcode = (opcode === Opcode.Cont ? assembler.opcode : opcode) as Opcode;
    const message = assembler.push(opcode, fin, out);
    return message === null ? null : { opcode: messageOpcode, data: message };
  }

  /** Drops the message in progress (the connection failed). */
  reset(): void {
    this.assembler.reset();
    this.validatedAhead = 0;
  }

  // Unmasks in place and checks as UTF-8 the payload bytes of the head frame that arrived
  // since the last look (`have` payload bytes are buffered now).
  private validateAhead<T>(queue: ReceiveQueue<T>, h: FrameHeader, headerSize: number, have: number): void {
    let done = this.validatedAhead;
    if (have <= done) return;
    const key = h.masked ? h.maskKey! : null;
    const assembler = this.assembler;
    queue.visit(headerSize + done, headerSize + have, (piece) => {
      if (key !== null) applyMask(piece, key, piece, 0, done & 3);
      assembler.validateAhead(h.opcode, piece, done === 0);
      done += piece.length;
    });
    this.validatedAhead = done;
  }
}
