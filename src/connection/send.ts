/**
 * Sending: `sendText`, `sendBinary`, `sendPing`, `sendPong`, `sendClose`, and
 * `sendChain`/`sendFragmented` for messages in several frames. Every send resolves once
 * its frame is queued on the socket: small data frames built in buffers of our own go to the
 * kernel together at the end of the event-loop turn (`AsyncSocket.writeOwned`); control
 * frames, and frames that carry the caller's buffer (or the masking ring's), go at once and
 * resolve once the kernel has them. While the kernel is behind, every small frame (control
 * frames too) waits in the socket's backlog, in order, and resolves once that is written.
 * Masking defaults from the socket's role (clients mask with a fresh random key per frame;
 * servers never mask), and the caller's buffer is never modified.
 * @module
 */
import { Socket } from 'node:net';
import { AsyncSocket } from './async-socket';
import { allocFrame } from '../core/buffers';
import { newPingToken } from '../core/pongs';
import { checkBytes, checkBytesOrString, checkOptionalBoolean, checkString, describeValue } from '../core/checks';
import { encodeClosePayload } from '../core/close';
import { MAX_CONTROL_PAYLOAD, Opcode, isControlOpcode } from '../core/constants';
import { IOError, markHandled } from '../core/errors';
import { encodeFrame, encodeHeader, encodedHeaderSize, firstByte, nextKey } from '../core/frame';
import { applyMask, maskedFrameInKernel } from '../core/mask';
import { closedForSending, failConnection, writeClose } from './control';

/**
 * Options of {@link sendFrame}.
 * @group Connection
 */
export interface SendFrameOptions {
  /** Last frame of its message. Default true. */
  fin?: boolean;
  /** Mask the payload. Default: true for a client socket, false for a server socket. */
  masked?: boolean;
  /** Set RSV1 (only meaningful with a negotiated extension). Default false. */
  rsv1?: boolean;
}

// Payloads up to this size are copied behind the header and written as one chunk; larger
// ones are written as header + payload under cork(), without a copy.
const COPY_MAX = 1024;
// Masked payloads from this size on are built in the SIMD kernel's ring when it has room.
const RING_MIN = 16 * 1024;

// True when the stream is done with a chunk once its write has completed, so a ring region
// may be reused then. A net.Socket (and a TLS socket) has copied the bytes to the kernel (or
// its TLS engine) by then; any other Duplex may still hold the chunk itself (an in-memory
// pair passes it on as it is), so its frames get buffers of their own.
function releasesChunks(ws: AsyncSocket): boolean {
  return ws.socket instanceof Socket;
}

// Writes one frame now (no queueing): header and payload in one corked write.
function writeFrame(ws: AsyncSocket, b0: number, data: Uint8Array, masked: boolean): Promise<void> {
  const n = data.length;
  if (masked && n >= RING_MIN && releasesChunks(ws)) {
    const key = nextKey();
    const header = allocFrame(encodedHeaderSize(n, true));
    encodeHeader(header, 0, b0, n, true, key);
    const built = maskedFrameInKernel(header, data, key);
    if (built !== null) {
      const written = ws.write(built.frame); // the ring region is reused once the kernel has it
      written.then(built.release, built.release);
      return written;
    }
  }
  // Control frames (Pings, Pongs) are not held for the turn's end: they go after what it
  // holds, at once (or into the backlog while the kernel is behind).
  if (isControlOpcode(b0 & 0x0f)) return ws.write(encodeFrame(b0, data, masked));
  if (masked || n <= COPY_MAX) return ws.writeOwned(encodeFrame(b0, data, masked));
  const header = allocFrame(encodedHeaderSize(n, false));
  encodeHeader(header, 0, b0, n, false);
  return ws.write(header, data);
}

/**
 * Runs `body` once every earlier queued send is done, so the frames of one fragmented
 * message are never interleaved with another message's frames.
 */
function exclusive(ws: AsyncSocket, body: () => Promise<void>): Promise<void> {
  return markHandled(inTurn(ws, body));
}

/**
 * Queues one frame's write behind the sends queued before it, as {@link exclusive}, but the
 * queue moves on as soon as this frame is in the socket (from there the socket keeps the
 * order), not once the kernel has taken it: behind a peer that stopped reading, later sends
 * then join the socket's backlog instead of each waiting in a closure of its own (a compressed
 * broadcast stuck behind a stalled client made every later 20-byte one cost ~1.5 KB).
 * Resolves as the write does.
 */
function exclusiveWrite(ws: AsyncSocket, body: () => Promise<{ written: Promise<void> }> | { written: Promise<void> }): Promise<void> {
  let out: { written: Promise<void> } | null = null;
  const turn = inTurn(ws, async () => {
    out = await body();
  });
  return markHandled(turn.then(() => out!.written));
}

async function inTurn(ws: AsyncSocket, body: () => Promise<void>): Promise<void> {
  const previous = ws.sendQueue;
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  ws.sendQueue = mine;
  try {
    if (previous !== null) await previous;
    await body();
  } finally {
    release();
    if (ws.sendQueue === mine) ws.sendQueue = null;
  }
}

// A whole message compressed (RFC 7692 §7.2.1) and sent as one frame with RSV1. It waits
// its turn in the send queue, so messages go out in the order they were sent even though
// zlib works in the background.
function sendCompressed(ws: AsyncSocket, opcode: number, data: Uint8Array, masked: boolean): Promise<void> {
  const deflate = ws.deflate!;
  return exclusiveWrite(ws, async () => {
    const compressed = await deflate.deflate(data);
    return { written: ws.state.closeSent ? closedForSending() : writeFrame(ws, firstByte(true, opcode, true), compressed, masked) };
  });
}

// True when a whole message of this size goes out compressed.
function compresses(ws: AsyncSocket, size: number): boolean {
  return ws.deflate !== null && size >= ws.deflate.threshold;
}

// A data frame: written at once unless a fragmented message is being sent.
function sendData(ws: AsyncSocket, b0: number, data: Uint8Array, masked: boolean): Promise<void> {
  if (ws.state.closeQueued) return closedForSending();
  if (ws.sendQueue === null) return writeFrame(ws, b0, data, masked);
  return exclusiveWrite(ws, () => ({ written: ws.state.closeSent ? closedForSending() : writeFrame(ws, b0, data, masked) }));
}

/**
 * Sends one frame with the given opcode and flags; the low-level building block. Data
 * frames wait behind a fragmented message in progress; control frames go out at once
 * (RFC 6455 §5.4 lets them sit between fragments).
 * @throws {RangeError} synchronously for a control payload over 125 bytes or an opcode outside 0-15
 * @throws {TypeError} synchronously for data that is not a Uint8Array (nothing is written)
 * @throws {IOError} (rejection) when the socket is closed or a Close was already sent
 * @group Connection
 */
export function sendFrame(ws: AsyncSocket, opcode: Opcode, data: Uint8Array, options: SendFrameOptions = {}): Promise<void> {
  checkBytes(data, 'sendFrame: data');
  if (typeof opcode !== 'number' || !Number.isInteger(opcode) || opcode < 0 || opcode > 15) {
    throw new RangeError(`sendFrame: opcode must be an integer from 0 to 15, not ${String(opcode)}`);
  }
  checkOptionalBoolean(options.masked, 'sendFrame: options.masked');
  const masked = options.masked ?? ws.isClient;
  const b0 = firstByte(options.fin ?? true, opcode, options.rsv1 ?? false);
  if (opcode & 0x8) {
    checkControl(data.length);
    if (ws.state.closeSent) return closedForSending();
    return writeFrame(ws, b0, data, masked);
  }
  return sendData(ws, b0, data, masked);
}

function checkControl(length: number): void {
  if (length > MAX_CONTROL_PAYLOAD) {
    throw new RangeError(`control frame payload of ${length} bytes exceeds ${MAX_CONTROL_PAYLOAD} (RFC 6455 §5.5)`);
  }
}

/**
 * Sends a text message in one frame, as Nim's `sendText`. The string is encoded straight
 * into the frame buffer. With permessage-deflate agreed, a message of at least the
 * `threshold` is compressed first (RSV1 set); it still goes out in the order sent.
 * @param masked default: true for a client socket
 * @throws {TypeError} synchronously for text that is not a string (nothing is written)
 * @throws {IOError} (rejection) when the socket is closed or a Close was already sent
 * @group Connection
 */
export function sendText(ws: AsyncSocket, text: string, masked?: boolean): Promise<void> {
  checkString(text, 'sendText: text');
  checkOptionalBoolean(masked, 'sendText: masked');
  if (ws.state.closeQueued) return closedForSending();
  const m = masked ?? ws.isClient;
  const n = Buffer.byteLength(text, 'utf8');
  if (compresses(ws, n)) return sendCompressed(ws, Opcode.Text, Buffer.from(text, 'utf8'), m);
  const frame = allocFrame(encodedHeaderSize(n, m) + n);
  const key = m ? nextKey() : undefined;
  const start = encodeHeader(frame, 0, firstByte(true, Opcode.Text), n, m, key);
  frame.write(text, start, 'utf8');
  if (key !== undefined && n > 0) applyMask(frame.subarray(start), key);
  if (ws.sendQueue === null) return ws.writeOwned(frame);
  return exclusiveWrite(ws, () => ({ written: ws.state.closeSent ? closedForSending() : ws.writeOwned(frame) }));
}

/**
 * Sends a binary message in one frame, as Nim's `sendBinary`, compressed as `sendText` is
 * when permessage-deflate is agreed.
 * @param masked default: true for a client socket
 * @throws {TypeError} synchronously for data that is not a Uint8Array or Buffer (nothing is written)
 * @throws {IOError} (rejection) when the socket is closed or a Close was already sent
 * @group Connection
 */
export function sendBinary(ws: AsyncSocket, data: Uint8Array, masked?: boolean): Promise<void> {
  checkBytes(data, 'sendBinary: data');
  checkOptionalBoolean(masked, 'sendBinary: masked');
  if (compresses(ws, data.length)) {
    return ws.state.closeQueued ? closedForSending() : sendCompressed(ws, Opcode.Binary, data, masked ?? ws.isClient);
  }
  return sendData(ws, firstByte(true, Opcode.Binary), data, masked ?? ws.isClient);
}

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/**
 * Sends a Ping, as Nim's `sendPing`. Without a token a random 16-character one is used.
 * @returns the token sent, which the peer's Pong will carry
 * @throws {RangeError} synchronously for a token over 125 bytes
 * @group Connection
 */
export function sendPing(ws: AsyncSocket, masked?: boolean, token?: string | Uint8Array): Promise<Buffer> {
  checkOptionalBoolean(masked, 'sendPing: masked');
  if (token !== undefined) checkBytesOrString(token, 'sendPing: token');
  const bytes = token === undefined ? newPingToken() : toBytes(token);
  // A buffer of its own, not a view into Node's 8 KiB pool: it is held until the Ping is sent,
  // which for a peer that does not read is until it is dropped.
  const payload = Buffer.allocUnsafeSlow(bytes.length);
  payload.set(bytes);
  return markHandled(sendFrame(ws, Opcode.Ping, payload, { masked }).then(() => payload));
}

/**
 * Sends a Pong (`readData` already answers each Ping; an unsolicited Pong is a heartbeat).
 * @throws {RangeError} synchronously for a payload over 125 bytes
 * @group Connection
 */
export function sendPong(ws: AsyncSocket, payload: string | Uint8Array = Buffer.alloc(0), masked?: boolean): Promise<void> {
  checkBytesOrString(payload, 'sendPong: payload');
  checkOptionalBoolean(masked, 'sendPong: masked');
  return sendFrame(ws, Opcode.Pong, toBytes(payload), { masked });
}

/**
 * Starts the close handshake: sends a Close with this code and reason. Keep reading
 * (`readData`) until the peer's Close comes back; the connection then closes. If it has not
 * closed `closeTimeout` ms after our Close went out, the socket is destroyed. (A Close from
 * the peer is answered inside `readData`, so after one was read this rejects with `IOError`.)
 * `close()` does all of this and reports the result.
 * @param code a code that may be sent (1000–1003, 1007–1014, 3000–4999), or none
 * @throws {RangeError} synchronously for a code that may not be sent or a reason over 123 bytes
 * @throws {TypeError} synchronously for a reason without a code
 * @group Connection
 */
export function sendClose(ws: AsyncSocket, code?: number, reason?: string, masked?: boolean): Promise<void> {
  if (code !== undefined && typeof code !== 'number') throw new TypeError(`sendClose: code must be a number, not ${describeValue(code)}`);
  if (reason !== undefined) checkString(reason, 'sendClose: reason');
  checkOptionalBoolean(masked, 'sendClose: masked');
  const payload = encodeClosePayload(code, reason);
  if (!ws.state.queueClose()) return closedForSending();
  const frame = encodeFrame(firstByte(true, Opcode.Close), payload, masked ?? ws.isClient);
  // The Close goes out after the messages queued before it (§5.5.1: no data after a Close).
  const write = (): Promise<void> => writeClose(ws, frame);
  return ws.sendQueue === null ? write() : exclusiveWrite(ws, () => ({ written: write() }));
}

/**
 * Sends one message as several frames, one per part, as Nim's `sendChain`: useful to
 * stream a message whose size is not known up front. Parts may come from an async source.
 * No other data message is sent until this one is finished; control frames may go between.
 * The frames are never compressed, even with permessage-deflate agreed.
 * @param opcode Text or Binary
 * @throws {IOError} (rejection) when the socket is closed or a Close was already sent
 * @group Connection
 */
export function sendChain(
  ws: AsyncSocket,
  opcode: typeof Opcode.Text | typeof Opcode.Binary,
  parts: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
  masked?: boolean
): Promise<void> {
  if (opcode !== Opcode.Text && opcode !== Opcode.Binary) throw new RangeError(`sendChain: opcode must be Opcode.Text or Opcode.Binary, not ${String(opcode)}`);
  if (parts === null || typeof parts !== 'object' || !(Symbol.iterator in parts || Symbol.asyncIterator in parts)) {
    throw new TypeError(`sendChain: parts must be an iterable or async iterable, not ${describeValue(parts)}`);
  }
  checkOptionalBoolean(masked, 'sendChain: masked');
  if (ws.state.closeQueued) return closedForSending();
  const m = masked ?? ws.isClient;
  return exclusive(ws, async () => {
    let pending: Uint8Array | null = null;
    let frameOpcode: number = opcode;
    try {
      for await (const part of parts) {
        if (pending !== null) {
          if (ws.state.closeSent) throw new IOError('closed', 'a Close frame was sent in the middle of a message');
          await writeFrame(ws, firstByte(false, frameOpcode), pending, m);
          frameOpcode = Opcode.Cont;
        }
        checkBytesOrString(part, 'sendChain: a part');
        pending = toBytes(part);
      }
      if (ws.state.closeSent) throw new IOError('closed', 'a Close frame was sent in the middle of a message');
      await writeFrame(ws, firstByte(true, frameOpcode), pending ?? Buffer.alloc(0), m);
    } catch (err) {
      // A message cut off after its first frame cannot be finished or followed by another:
      // fail the connection (1011) rather than leave the peer inside a broken message.
      if (frameOpcode === Opcode.Cont) failConnection(ws, 1011, 'message source failed');
      throw err;
    }
  });
}

/**
 * Sends one message cut into frames of at most `fragmentSize` bytes, each awaited before the
 * next (so a huge payload never piles up in the socket's buffer).
 * @throws {RangeError} synchronously for a fragment size below 1
 * @group Connection
 */
export function sendFragmented(
  ws: AsyncSocket,
  opcode: typeof Opcode.Text | typeof Opcode.Binary,
  data: string | Uint8Array,
  fragmentSize: number,
  masked?: boolean
): Promise<void> {
  if (opcode !== Opcode.Text && opcode !== Opcode.Binary) throw new RangeError(`sendFragmented: opcode must be Opcode.Text or Opcode.Binary, not ${String(opcode)}`);
  checkBytesOrString(data, 'sendFragmented: data');
  if (typeof fragmentSize !== 'number' || !(fragmentSize >= 1)) throw new RangeError(`sendFragmented: fragmentSize must be a number of 1 or more, not ${describeValue(fragmentSize)}`);
  const bytes = toBytes(data);
  function* slices(): Generator<Uint8Array> {
    if (bytes.length === 0) yield bytes;
    for (let i = 0; i < bytes.length; i += fragmentSize) yield bytes.subarray(i, i + fragmentSize);
  }
  return sendChain(ws, opcode, slices(), masked);
}
