/**
 * Layer 2, receiving: `recvFrame` (one frame), `readData` (one whole message, Nim style),
 * `readFragment` (a message piece by piece) and `messages` (an async iterator).
 *
 * The common path costs one promise per call: when the bytes of a whole frame are already
 * buffered they are parsed synchronously, and only a missing byte makes a call wait.
 * @module
 */
import { AsyncSocket, concurrentRead } from './async-socket';
import { decodeClosePayload, encodeClosePayload } from './core/close';
import { CloseCode, Opcode, isControlOpcode } from './core/constants';
import { IOError, ProtocolError } from './core/errors';
import { protocolErrorChannel } from './diagnostics';
import { applyMask } from './core/mask';
import { Frame, FrameHeader, HeaderRules, newFrameHeader, decodeHeader, encodeFrame, firstByte, headerSizeOf, validateHeader } from './core/frame';

/** A whole message, or a control frame, as `readData` returns it. */
export interface Message {
  opcode: Opcode;
  data: Buffer;
}

/** A piece of a message, as `readFragment` returns it. */
export interface Fragment {
  /** Text or Binary for data (also on continuation frames), else the control opcode. */
  opcode: Opcode;
  data: Buffer;
  /** True on the last piece of a message, and on control frames. */
  fin: boolean;
}

const MODE_FRAME = 0;
const MODE_MESSAGE = 1;
const MODE_FRAGMENT = 2;
type Mode = typeof MODE_FRAME | typeof MODE_MESSAGE | typeof MODE_FRAGMENT;

// Parsing is synchronous, so one header, one key buffer and one rules object serve every
// socket (an idle connection then holds none of them).
const header = newFrameHeader();
const keyBuffer = new Uint8Array(4);
const rules: HeaderRules = { expectMasked: true, maxFrameSize: 0 };

// Set by parseNext when it returns null: the bytes it needs buffered to finish, and how
// many it wants to look again (fewer, for text checked as it arrives).
let needed = 0;
let wakeAt = 0;

// parseNext returns INFLATE for a frame of a compressed message, with its payload here.
const INFLATE: Message = { opcode: Opcode.Binary, data: Buffer.alloc(0) };
let inflateData: Buffer = INFLATE.data;
let inflateOpcode: Opcode = Opcode.Binary;
let inflateFin = false;

// Failure replies and pongs are written without waiting: if the socket broke, the reader
// learns it from the read that follows, so there is nothing to report here.
const ignore = (): void => {};

/**
 * Parses the next frame out of the buffered bytes, synchronously; null when more bytes are
 * needed (then `needed` says how many must be buffered).
 */
function parseNext(ws: AsyncSocket, mode: Mode, client: boolean): Frame | Message | Fragment | null {
  for (;;) {
    const avail = ws.bufferedAmount;
    if (avail < 2) {
      needed = wakeAt = 2;
      return null;
    }
    let bytes = ws.peek(2);
    const size = headerSizeOf(bytes[ws.peekOffset + 1]!);
    if (avail < size) {
      needed = wakeAt = size;
      return null;
    }
    if (size > 2) bytes = ws.peek(size);
    const off = ws.peekOffset;
    const h = header;
    decodeHeader(bytes, off, off + size, h, keyBuffer);
    rules.expectMasked = !client;
    rules.maxFrameSize = ws.maxFrameSize;
    rules.allowRsv1 = ws.deflate !== null;
    validateHeader(h, rules);
    const control = isControlOpcode(h.opcode);
    // RFC 7692 §6.1: only data frames may be compressed.
    if (h.rsv1 && control) throw new ProtocolError('WS_ERR_UNEXPECTED_RSV', 'RSV1 set on a control frame');
    if (!control && mode !== MODE_FRAME) ws.assembler.check(h.opcode, h.length, mode === MODE_FRAGMENT, h.rsv1);
    const total = size + h.length;
    if (avail < total) {
      needed = total;
      wakeAt = total;
      // Text that arrives slowly is checked as it comes, so invalid UTF-8 fails the
      // connection at once, not when the whole frame is in (fail fast, RFC 6455 §8.1).
      if (!control && mode !== MODE_FRAME && ws.assembler.checksAhead(h.opcode)) {
        validateAhead(ws, h, size, avail - size);
        wakeAt = avail + 1;
      }
      return null;
    }
    ws.skip(size);
    const validated = ws.validatedAhead;
    let data: Buffer;
    if (validated === 0) {
      // Unmasked in place (the received bytes are ours) or while copied out of the chunks.
      // The key lies before the payload, so it is still intact.
      data = h.masked && h.length > 0 ? ws.takeUnmasked(h.length, h.maskKey!) : ws.take(h.length);
    } else {
      // The first `validated` bytes were unmasked in place already.
      ws.validatedAhead = 0;
      data = ws.take(h.length);
      if (h.masked) applyMask(data.subarray(validated), h.maskKey!, data, validated, validated & 3);
    }
    const opcode = h.opcode as Opcode;
    if (mode === MODE_FRAME) {
      return { fin: h.fin, rsv1: h.rsv1, rsv2: h.rsv2, rsv3: h.rsv3, masked: h.masked, opcode, data };
    }
    if (control) {
      answerControl(ws, opcode, data, client);
      return mode === MODE_MESSAGE ? { opcode, data } : { opcode, data, fin: true };
    }
    if (ws.assembler.compressed) {
      // The caller gets inflated bytes: the read goes on once zlib has them (startInflate).
      inflateData = data;
      inflateOpcode = opcode;
      inflateFin = h.fin;
      return INFLATE;
    }
    if (mode === MODE_FRAGMENT) {
      return { opcode: ws.assembler.pushPart(opcode, h.fin, data, validated), data, fin: h.fin };
    }
    const messageOpcode = opcode === Opcode.Cont ? ws.assembler.opcode : opcode;
    const message = ws.assembler.push(opcode, h.fin, data, validated);
    if (message !== null) return { opcode: messageOpcode as Opcode, data: message };
  }
}

/**
 * Unmasks in place and checks as UTF-8 the payload bytes of the head frame that arrived
 * since the last look (`have` payload bytes are buffered now).
 */
function validateAhead(ws: AsyncSocket, h: FrameHeader, headerSize: number, have: number): void {
  let done = ws.validatedAhead;
  if (have <= done) return;
  const key = h.masked ? h.maskKey! : null;
  ws.visit(headerSize + done, headerSize + have, (piece) => {
    if (key !== null) applyMask(piece, key, piece, 0, done & 3);
    ws.assembler.validateAhead(h.opcode, piece, done === 0);
    done += piece.length;
  });
  ws.validatedAhead = done;
}

/** Writes a control frame right away; control frames may go between fragments (§5.4). */
function writeControl(ws: AsyncSocket, opcode: Opcode, payload: Uint8Array, masked: boolean): Promise<void> {
  return ws.write(encodeFrame(firstByte(true, opcode), payload, masked));
}

/**
 * After the close handshake: the server closes TCP first; the client waits for that, and
 * destroys the socket after `closeTimeout` (RFC 6455 §7.1.1). Sends still queued go first.
 */
export function finishClose(ws: AsyncSocket, client: boolean): void {
  // Reads stop and the close timer runs now; only ending TCP waits for queued sends.
  ws.closeReads();
  ws.armCloseTimer();
  const done = (): void => (client ? ws.awaitPeerClose() : ws.end());
  const queued = ws.sendQueue;
  if (queued === null) done();
  else queued.then(done, done);
}

/**
 * Fails the connection from our side (RFC 6455 §7.1.7): a Close with `code` goes out at once,
 * ahead of any queued data (control frames may sit between fragments), and the socket is
 * ended. Queued and later data sends reject with `IOError`.
 */
export function failConnection(ws: AsyncSocket, code: number, reason = '', client = ws.isClient): void {
  if (!ws.closeSent && !ws.destroyed) {
    ws.closeQueued = true;
    ws.closeSent = true;
    writeControl(ws, Opcode.Close, encodeClosePayload(code, reason), client).catch(ignore);
  }
  ws.end();
}

// Above this many unflushed bytes the peer is not reading what we send: answering every Ping
// would grow our write buffer without bound, so only the latest one is answered once the
// socket drains (RFC 6455 §5.5.3 allows answering only the most recent Ping).
const PONG_BACKLOG = 64 * 1024;

function answerPing(ws: AsyncSocket, data: Buffer, client: boolean): void {
  if (ws.socket.writableLength < PONG_BACKLOG) {
    writeControl(ws, Opcode.Pong, data, client).catch(ignore);
    return;
  }
  const waiting = ws.deferredPong !== null;
  ws.deferredPong = Buffer.from(data); // at most 125 bytes, and it must not pin a receive chunk
  if (waiting) return;
  ws.socket.once('drain', () => {
    const payload = ws.deferredPong;
    ws.deferredPong = null;
    if (payload !== null && !ws.closeSent && !ws.destroyed) answerPing(ws, payload, client);
  });
}

// Pong for Ping (same payload, §5.5.2), and the close handshake (§5.5.1): echo the code
// and reason, unless our own Close went out (or is queued) already.
function answerControl(ws: AsyncSocket, opcode: Opcode, data: Buffer, client: boolean): void {
  if (opcode === Opcode.Ping) {
    if (!ws.closeSent) answerPing(ws, data, client);
  } else if (opcode === Opcode.Pong) {
    ws.notifyPong(data);
  } else if (opcode === Opcode.Close) {
    const info = decodeClosePayload(data);
    ws.closeReceived = true;
    ws.peerClose = info;
    if (!ws.closeQueued) {
      ws.closeQueued = true;
      ws.closeSent = true;
      const echo = info.code === CloseCode.NoStatus ? encodeClosePayload() : encodeClosePayload(info.code, info.reason);
      writeControl(ws, Opcode.Close, echo, client).catch(ignore);
      finishClose(ws, client);
    } else if (ws.closeSent) {
      finishClose(ws, client);
    } else {
      // Our Close is queued behind data (§5.5.1 lets the current message finish first): no
      // more reads, and the close timer runs; sendClose ends TCP once its Close is written.
      ws.closeReads();
      ws.armCloseTimer();
    }
  }
}

/**
 * Fails the connection for a protocol error (send the Close with its code, end the socket)
 * or drops it for a broken socket. Returns the error for the caller to throw.
 */
function fail(ws: AsyncSocket, err: unknown, client: boolean): unknown {
  ws.reading = false;
  if (err instanceof ProtocolError) {
    if (protocolErrorChannel.hasSubscribers) protocolErrorChannel.publish({ ws, error: err });
    ws.assembler.reset();
    ws.validatedAhead = 0;
    failConnection(ws, err.closeCode, err.code, client);
  } else if (err instanceof IOError && err.reason !== 'closed') {
    ws.assembler.reset();
    ws.destroy(err);
  }
  // Nothing more will be read: free the decompressor (the socket's close frees the rest).
  if (err instanceof ProtocolError || err instanceof IOError) {
    ws.deflate?.closeReceiving(new IOError('closed', 'the WebSocket connection is closed'));
  }
  return err;
}

function read(ws: AsyncSocket, mode: Mode, client: boolean): Promise<Frame | Message | Fragment> {
  if (ws.reading) return Promise.reject(concurrentRead());
  if (mode !== MODE_FRAME && ws.assembler.opcode !== 0 && ws.assembler.streaming !== (mode === MODE_FRAGMENT)) {
    return Promise.reject(
      new TypeError('a message begun with readFragment must be finished with readFragment, and likewise readData')
    );
  }
  let result;
  try {
    result = parseNext(ws, mode, client);
  } catch (err) {
    return Promise.reject(fail(ws, err, client));
  }
  if (result === null) return readSlow(ws, mode, client, waitForBytes);
  if (result === INFLATE) return readSlow(ws, mode, client, startInflate);
  return Promise.resolve(result);
}

function waitForBytes(ws: AsyncSocket): void {
  ws.waitThen(needed, wakeAt, onReadable, onReadFailed);
}

/**
 * Inflates the frame parseNext left in `inflateData`, then hands out the message or
 * fragment, or goes on reading. Text is checked as UTF-8 once inflated.
 */
function startInflate(ws: AsyncSocket): void {
  const data = inflateData;
  const opcode = inflateOpcode;
  const fin = inflateFin;
  inflateData = INFLATE.data;
  const assembler = ws.assembler;
  const streaming = ws.readMode === MODE_FRAGMENT;
  // A piece handed out as it comes is bounded like a frame; a whole message by what is left of its limit.
  const limit = streaming ? ws.maxFrameSize : ws.maxMessageSize - assembler.size;
  ws.deflate!.inflate(data, opcode !== Opcode.Cont, fin, limit).then((out) => {
    let result: Message | Fragment | null;
    try {
      if (streaming) {
        result = { opcode: assembler.pushPart(opcode, fin, out), data: out, fin };
      } else {
        const messageOpcode = (opcode === Opcode.Cont ? assembler.opcode : opcode) as Opcode;
        const message = assembler.push(opcode, fin, out);
        result = message === null ? null : { opcode: messageOpcode, data: message };
      }
    } catch (err) {
      return onReadFailed(err, ws);
    }
    if (result === null) return onReadable(ws);
    settleRead(ws, result);
  }, (err: unknown) => onReadFailed(err, ws));
}

// The slow path: one promise for the caller, settled from the socket's 'data' event through
// shared functions (no async frame, no closures per read), so an idle connection waiting
// in readData holds little more than that promise.
function readSlow(
  ws: AsyncSocket,
  mode: Mode,
  client: boolean,
  start: (ws: AsyncSocket) => void
): Promise<Frame | Message | Fragment> {
  return new Promise((resolve, reject) => {
    ws.reading = true;
    ws.readMode = mode;
    ws.readClient = client;
    ws.readResolve = resolve as (value: unknown) => void;
    ws.readReject = reject;
    start(ws);
  });
}

function onReadable(ws: AsyncSocket): void {
  let result;
  try {
    result = parseNext(ws, ws.readMode as Mode, ws.readClient);
  } catch (err) {
    return onReadFailed(err, ws);
  }
  if (result === null) return waitForBytes(ws);
  if (result === INFLATE) return startInflate(ws);
  settleRead(ws, result);
}

function settleRead(ws: AsyncSocket, result: Frame | Message | Fragment): void {
  const resolve = ws.readResolve!;
  clearRead(ws);
  resolve(result);
}

function onReadFailed(err: unknown, ws: AsyncSocket): void {
  const reject = ws.readReject;
  if (reject === null) return; // settled already
  const client = ws.readClient;
  clearRead(ws);
  reject(fail(ws, err, client));
}

function clearRead(ws: AsyncSocket): void {
  ws.reading = false;
  ws.readResolve = null;
  ws.readReject = null;
}


/**
 * Reads one frame, as Nim's `recvFrame`: the header is validated (RSV bits, opcode, control
 * frame rules, masking direction, length limits) before the payload is read, and the payload
 * comes back unmasked. Nothing is answered and fragments are not joined: this is the raw
 * layer under `readData`. Do not mix it with `readData` in the middle of a message.
 * @param isClientSocket true when this end is the client (frames must arrive unmasked);
 * defaults from the socket's role
 * @throws {ProtocolError} after failing the connection (a Close with its code was sent)
 * @throws {IOError} when the socket ends or breaks
 */
export function recvFrame(ws: AsyncSocket, isClientSocket?: boolean): Promise<Frame> {
  return read(ws, MODE_FRAME, isClientSocket ?? ws.isClient) as Promise<Frame>;
}

/**
 * Reads one whole message, as Nim's `readData`. Fragments are joined; Ping, Pong and Close
 * are returned too, already answered (a Pong with the Ping's payload; for a Close, the
 * close handshake: its code and reason are echoed and the connection is closed). Control frames between
 * fragments do not disturb the message: the next call carries on assembling it.
 *
 * Text messages are checked as UTF-8 fragment by fragment. After a Close, further reads
 * reject with `IOError`.
 *
 * Only one read may be pending per socket.
 * @example
 * ```ts
 * for (;;) {
 *   const { opcode, data } = await readData(ws);
 *   if (opcode === Opcode.Text) await sendText(ws, data.toString());
 *   else if (opcode === Opcode.Binary) await sendBinary(ws, data);
 *   else if (opcode === Opcode.Close) break;
 * }
 * ```
 * @param isClientSocket true when this end is the client; defaults from the socket's role
 * @throws {ProtocolError} after failing the connection: `closeCode` 1002 (protocol), 1007
 * (invalid UTF-8), 1008 (too many fragments) or 1009 (too big) was sent and the socket ended
 * @throws {IOError} when the socket ends, breaks or times out, or the connection is closed
 * @throws {ConcurrencyError} when another read is pending
 */
export function readData(ws: AsyncSocket, isClientSocket?: boolean): Promise<Message> {
  return read(ws, MODE_MESSAGE, isClientSocket ?? ws.isClient) as Promise<Message>;
}

/**
 * Reads the next piece of a message as it arrives, for messages too large to hold whole:
 * each data frame's payload is returned with the message's opcode and `fin` on its last
 * piece. Control frames are answered and returned as in `readData`; text is still checked
 * as UTF-8 across pieces. `maxFrameSize` still bounds each piece, but `maxMessageSize`
 * does not apply, since nothing is kept.
 * @example
 * ```ts
 * for (;;) {
 *   const part = await readFragment(ws);
 *   if (part.opcode === Opcode.Binary) file.write(part.data);
 *   if ((part.fin && part.opcode === Opcode.Binary) || part.opcode === Opcode.Close) break;
 * }
 * ```
 * @throws the same errors as {@link readData}
 */
export function readFragment(ws: AsyncSocket, isClientSocket?: boolean): Promise<Fragment> {
  return read(ws, MODE_FRAGMENT, isClientSocket ?? ws.isClient) as Promise<Fragment>;
}

/**
 * The Text and Binary messages of a connection, as an async iterator. Pings are answered
 * and skipped; iteration ends cleanly after the close handshake, and errors are thrown as
 * in `readData`.
 * @example
 * ```ts
 * for await (const { opcode, data } of messages(ws)) console.log(opcode, data.length);
 * ```
 */
export async function* messages(ws: AsyncSocket, isClientSocket?: boolean): AsyncGenerator<Message, void, undefined> {
  for (;;) {
    const message = await readData(ws, isClientSocket);
    if (message.opcode === Opcode.Close) return;
    if (message.opcode === Opcode.Text || message.opcode === Opcode.Binary) yield message;
  }
}
