/**
 * The connection's lifecycle on a socket: the one file that applies the state
 * machine's transitions (`src/core/state.ts`) to an {@link AsyncSocket}. Answering a Ping
 * or a Close, failing the connection with its code, writing our own Close, stopping reads,
 * ending TCP in the order RFC 6455 §7.1.1 asks, and the one close timer all live here; the
 * read and send functions call these and decide nothing about closing themselves.
 * @module
 */
import { AsyncSocket } from './async-socket';
import { decodeClosePayload, encodeClosePayload } from '../core/close';
import { CloseCode, Opcode } from '../core/constants';
import { IOError, ProtocolError, markHandled } from '../core/errors';
import { encodeFrame, firstByte } from '../core/frame';
import { Pongs } from '../core/pongs';
import { CloseAnswer } from '../core/state';
import { protocolErrorChannel } from './diagnostics';

/** The rejection of a send after our Close went out (or is queued, for a new message). */
export function closedForSending(): Promise<never> {
  return markHandled(Promise.reject(new IOError('closed', 'a Close frame was already sent: no more frames may follow')));
}

/**
 * Writes a control frame right away, after what this turn holds (control frames may go
 * between fragments, §5.4): a Pong or a Close never waits for the sending task to yield.
 * Failure replies and Pongs are written without waiting: if the socket broke, the reader
 * learns it from the read that follows, so there is nothing to report here.
 */
function writeControl(ws: AsyncSocket, opcode: Opcode, payload: Uint8Array, masked: boolean): void {
  ws.writeUnawaited(encodeFrame(firstByte(true, opcode), payload, masked));
}

/** The connection's pong bookkeeping, created on first use. */
export function pongsOf(ws: AsyncSocket): Pongs {
  return (ws.pongs ??= new Pongs());
}

/**
 * Stops reading for good: pending and later reads reject with `IOError` (reason 'closed'),
 * input that still arrives is dropped (but read, so the peer's FIN is seen), Pings awaiting
 * their Pong fail, and the decompressor is freed. The compressor stays for sends queued
 * before our Close (§5.5.1 lets the current message finish).
 */
export function stopReading(ws: AsyncSocket): void {
  ws.closeReads(new IOError('closed', 'the WebSocket connection is closed'));
}

/**
 * After the close handshake: the server closes TCP first; the client waits for that and
 * destroys the socket after `closeTimeout` (RFC 6455 §7.1.1). Sends still queued go first.
 */
function finishClose(ws: AsyncSocket, client: boolean): void {
  // Reads stop and the close timer runs now; only ending TCP waits for queued sends.
  stopReading(ws);
  ws.destroyAfter(ws.closeTimeout);
  const done = (): void => {
    // The client ends its side only once the server's FIN came (the socket ends it then).
    if (!client || ws.inputEnded) ws.end();
  };
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
  if (ws.destroyed) ws.state.transportClosed();
  if (ws.state.fail()) writeControl(ws, Opcode.Close, encodeClosePayload(code, reason), client);
  ws.end(); // stops reading too
}

/**
 * Handles a read that failed: a protocol error fails the connection with its close code; a
 * broken socket is destroyed. Either way nothing more is read, and the decompressor is
 * freed on the way (by `end`'s `closeReads`, or by `destroy`).
 * @returns the error, for the reader to reject with
 */
export function readFailed(ws: AsyncSocket, err: unknown, client: boolean): unknown {
  if (err instanceof ProtocolError) {
    if (protocolErrorChannel.hasSubscribers) protocolErrorChannel.publish({ ws, error: err });
    ws.reader.reset();
    failConnection(ws, err.closeCode, err.code, client);
  } else if (err instanceof IOError && err.reason !== 'closed') {
    ws.reader.reset();
    ws.destroy(err);
  }
  return err;
}

/**
 * Writes our queued Close (the bookkeeping of `sendClose`): from here no frame may follow,
 * the close timer runs, and if the peer's Close came already the connection finishes.
 * @throws {IOError} (rejection) when a Close went out already (a failure closed first)
 */
export function writeClose(ws: AsyncSocket, frame: Uint8Array): Promise<void> {
  if (!ws.state.sendClose()) return closedForSending();
  const written = ws.write(frame);
  ws.destroyAfter(ws.closeTimeout);
  if (ws.state.closeReceived) finishClose(ws, ws.isClient);
  return written;
}

// A Pong is written at once, and while the peer is not taking what we send it joins the
// socket's backlog (a few bytes each, no write or promise of its own). Past this many unsent
// bytes the peer is not reading at all: answering every Ping would grow our output without
// bound, so only the latest one is answered (RFC 6455 §5.5.3 allows answering only the most
// recent Ping), as soon as what was written before the Ping came has gone to the kernel, even
// if more output waits by then: one Pong each time that much has gone, so a peer that reads
// steadily while we keep sending still gets its answers.
const PONG_BACKLOG = 64 * 1024;

function answerPing(ws: AsyncSocket, data: Buffer, client: boolean): void {
  if (ws.unsentBytes < PONG_BACKLOG) {
    // An earlier Ping held back is answered by this later one (§5.5.3).
    if (ws.pongs !== null) ws.pongs.deferred = null;
    writeControl(ws, Opcode.Pong, data, client);
    return;
  }
  const pongs = pongsOf(ws);
  // At most 125 bytes, in a buffer of its own: a view would keep a receive chunk alive, and
  // Buffer.from's copy Node's 8 KiB pool, for as long as the peer does not read.
  pongs.deferred = Buffer.allocUnsafeSlow(data.length);
  pongs.deferred.set(data);
  if (pongs.wakePending) return;
  pongs.wakePending = true;
  ws.afterWritten(() => {
    pongs.wakePending = false;
    const payload = pongs.deferred;
    pongs.deferred = null;
    if (payload !== null && ws.state.answersPings && !ws.destroyed) writeControl(ws, Opcode.Pong, payload, client);
  });
}

/**
 * Answers a control frame that was read: a Pong for a Ping (same payload, §5.5.2), a Pong
 * settles the Pings it answers, and a Close gets the closing handshake (§5.5.1): its code
 * and reason are echoed unless our own Close went out (or is queued) already.
 * @throws {ProtocolError} for a Close payload that breaks the rules (1002, 1007)
 */
export function answerControl(ws: AsyncSocket, opcode: Opcode, data: Buffer, client: boolean): void {
  if (opcode === Opcode.Ping) {
    if (ws.state.answersPings) answerPing(ws, data, client);
  } else if (opcode === Opcode.Pong) {
    ws.pongs?.settle(data);
  } else if (opcode === Opcode.Close) {
    const info = decodeClosePayload(data);
    const answer = ws.state.receiveClose(info);
    if (answer === CloseAnswer.ECHO) {
      const echo = info.code === CloseCode.NoStatus ? encodeClosePayload() : encodeClosePayload(info.code, info.reason);
      writeControl(ws, Opcode.Close, echo, client);
      finishClose(ws, client);
    } else if (answer === CloseAnswer.FINISH) {
      finishClose(ws, client);
    } else {
      // Our Close is queued behind data (§5.5.1 lets the current message finish first): no
      // more reads, and the close timer runs; writeClose finishes once our Close is written.
      stopReading(ws);
      ws.destroyAfter(ws.closeTimeout);
    }
  }
}
