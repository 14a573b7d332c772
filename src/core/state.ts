/**
 * The connection's state machine (RFC 6455 §7), pure: which Close frames were queued, sent
 * and received, who started the closing handshake, and what may still be sent and read.
 * The frame layer asks it before every send and read and tells it what happened; the
 * socket work that follows a transition (writing the echo, ending TCP, the close timer)
 * lives in `src/connection/control.ts`.
 *
 * ```text
 *            sendClose / fail                     peer's Close read
 *   OPEN ───────────────────────► CLOSING ◄─────────────────────────── OPEN
 *                             (local | remote)
 *                                    │ the other Close, a failure, or the transport closed
 *                                    ▼
 *                                  CLOSED
 * ```
 *
 * | state | new data message | control frame | read |
 * | --- | --- | --- | --- |
 * | OPEN | yes | yes | yes |
 * | CLOSING, local, our Close queued behind data | no (queued ones finish, §5.5.1) | yes | yes |
 * | CLOSING, local, our Close sent | no | no | yes, until the peer's Close |
 * | CLOSING, remote, our Close queued behind data | no (queued ones finish) | no Pong | no |
 * | CLOSED | no | no | only what arrived before the transport closed |
 * @module
 */
import type { CloseInfo } from './close';
import { CloseCode } from './constants';

/**
 * How a connection ended.
 * @group Connection
 */
export interface CloseResult {
  /** The peer's close code: 1005 when its Close had none, 1006 when no Close came. */
  code: number;
  /** The peer's close reason. */
  reason: string;
  /** True when both Close frames were exchanged. */
  clean: boolean;
}

/**
 * The three phases of a connection, as RFC 6455 §4 and §7 name them.
 * @group Connection
 */
export const ConnectionPhase = {
  /** Messages flow both ways. */
  OPEN: 'open',
  /** One Close frame was sent or received (or ours is queued); the handshake is not done. */
  CLOSING: 'closing',
  /** Both Close frames were exchanged, the connection failed, or the transport closed. */
  CLOSED: 'closed'
} as const;
export type ConnectionPhase = (typeof ConnectionPhase)[keyof typeof ConnectionPhase];

/** Who started the closing handshake. */
export type Closer = 'local' | 'remote';

/** What to do when the peer's Close frame is read ({@link ConnectionState.receiveClose}). */
export const CloseAnswer = {
  /** Echo its code and reason now (§5.5.1), then finish the close. */
  ECHO: 0,
  /** Our Close went out already: the handshake is complete, finish the close. */
  FINISH: 1,
  /** Our Close is queued behind data: stop reading; it finishes once it is written. */
  WAIT_FOR_OURS: 2
} as const;
export type CloseAnswer = (typeof CloseAnswer)[keyof typeof CloseAnswer];

// Bits of ConnectionState.bits.
const CLOSE_QUEUED = 1; // our Close is queued or sent: no new data message
const CLOSE_SENT = 2; // our Close was handed to the transport: no frame at all may follow
const CLOSE_RECEIVED = 4; // the peer's Close was read: no frame will be read any more
const REMOTE_STARTED = 8; // the peer's Close came before ours was queued
const FAILED = 16; // we failed the connection (a protocol error, §7.1.7)
const TRANSPORT_CLOSED = 32; // the socket closed (or was destroyed)

/**
 * The close state of one connection. Transitions return what the caller must do, and
 * refuse what the RFC forbids, so that the rules live in one place.
 */
export class ConnectionState {
  /** The peer's close code and reason, once its Close frame was read. */
  peerClose: CloseInfo | null = null;
  private bits = 0;

  /** OPEN, CLOSING or CLOSED. */
  get phase(): ConnectionPhase {
    const b = this.bits;
    if (b & (FAILED | TRANSPORT_CLOSED) || (b & CLOSE_SENT && b & CLOSE_RECEIVED)) return ConnectionPhase.CLOSED;
    if (b & (CLOSE_QUEUED | CLOSE_RECEIVED)) return ConnectionPhase.CLOSING;
    return ConnectionPhase.OPEN;
  }

  /** Who started the closing handshake, or null while it has not started. */
  get closer(): Closer | null {
    if (this.bits & REMOTE_STARTED) return 'remote';
    return this.bits & CLOSE_QUEUED ? 'local' : null;
  }

  /** True once our Close is queued or sent: no new data message may be sent. */
  get closeQueued(): boolean {
    return (this.bits & CLOSE_QUEUED) !== 0;
  }

  /** True once our Close was handed to the transport: no frame at all may follow. */
  get closeSent(): boolean {
    return (this.bits & CLOSE_SENT) !== 0;
  }

  /** True once the peer's Close was read. */
  get closeReceived(): boolean {
    return (this.bits & CLOSE_RECEIVED) !== 0;
  }

  /** True when both Close frames were exchanged (the clean end of §7.1.4). */
  get clean(): boolean {
    return (this.bits & (CLOSE_SENT | CLOSE_RECEIVED)) === (CLOSE_SENT | CLOSE_RECEIVED);
  }

  /**
   * How the connection ended, as far as it has: the peer's code and reason (1006 and '' when
   * no Close came), and whether both Close frames were exchanged. The one place this is
   * computed (close(), handleEvents, the streams and the `wsframe:close` channel use it).
   */
  result(): CloseResult {
    const peer = this.peerClose;
    return { code: peer?.code ?? CloseCode.Abnormal, reason: peer?.reason ?? '', clean: this.clean };
  }

  /** True while a new data message may be started. */
  get canSendData(): boolean {
    return (this.bits & (CLOSE_QUEUED | FAILED | TRANSPORT_CLOSED)) === 0;
  }

  /**
   * True while a frame may be written: a control frame, or a data frame of a message queued
   * before our Close (§5.5.1: it may finish; nothing may follow the Close itself).
   */
  get canSendFrame(): boolean {
    return (this.bits & (CLOSE_SENT | FAILED | TRANSPORT_CLOSED)) === 0;
  }

  /**
   * True while frames may still be read: the peer's Close has not come and we did not fail
   * the connection. (Frames that arrived before the transport closed may still be read.)
   */
  get canRead(): boolean {
    return (this.bits & (CLOSE_RECEIVED | FAILED)) === 0;
  }

  /** True while a Ping should be answered with a Pong (never after our Close, §5.5.1). */
  get answersPings(): boolean {
    return this.canSendFrame;
  }

  /**
   * We start (or join) the closing handshake: our Close is queued.
   * @returns false when a Close was queued already (a second one may not be sent)
   */
  queueClose(): boolean {
    if (this.bits & CLOSE_QUEUED) return false;
    this.bits |= CLOSE_QUEUED;
    return true;
  }

  /**
   * Our queued Close is about to be written.
   * @returns false when a Close went out already (a failure closed first): write nothing
   */
  sendClose(): boolean {
    if (this.bits & CLOSE_SENT) return false;
    this.bits |= CLOSE_QUEUED | CLOSE_SENT;
    return true;
  }

  /**
   * The peer's Close frame was read (its payload already checked).
   * @returns what to do: echo it, finish, or wait for our queued Close
   */
  receiveClose(info: CloseInfo): CloseAnswer {
    this.peerClose = info;
    const before = this.bits;
    this.bits |= CLOSE_RECEIVED;
    if (!(before & CLOSE_QUEUED)) {
      this.bits |= REMOTE_STARTED | CLOSE_QUEUED | CLOSE_SENT;
      return CloseAnswer.ECHO;
    }
    return before & CLOSE_SENT ? CloseAnswer.FINISH : CloseAnswer.WAIT_FOR_OURS;
  }

  /**
   * We fail the connection (§7.1.7): nothing more is read, and nothing but our Close sent.
   * @returns true when our Close with the failure code should be written now (none went out yet)
   */
  fail(): boolean {
    const before = this.bits;
    this.bits |= FAILED | CLOSE_QUEUED;
    if (before & (CLOSE_SENT | TRANSPORT_CLOSED)) return false;
    this.bits |= CLOSE_SENT;
    return true;
  }

  /** The transport closed: nothing can be sent or read any more. */
  transportClosed(): void {
    this.bits |= TRANSPORT_CLOSED;
  }
}
