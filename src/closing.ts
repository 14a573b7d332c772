/**
 * Layer 2, closing with a result: `close(ws, code, reason)` runs the whole close handshake
 * (send Close, read until the peer's Close, wait for TCP to close) and says how it ended.
 * @module
 */
import { AsyncSocket } from './async-socket';
import { CloseCode, Opcode } from './core/constants';
import { IOError } from './core/errors';
import { readData } from './recv';
import { sendClose } from './send';

/** How a connection ended. */
export interface CloseResult {
  /** The peer's close code: 1005 when its Close had none, 1006 when no Close came. */
  code: number;
  /** The peer's close reason. */
  reason: string;
  /** True when both Close frames were exchanged. */
  clean: boolean;
}

/** Destroys the socket unless it closes within `ms`. */
export function destroyAfter(ws: AsyncSocket, ms: number): void {
  if (ws.socket.destroyed) return;
  const timer = setTimeout(() => ws.destroy(new IOError('timeout', `the close handshake took over ${ms} ms`)), ms);
  timer.unref();
  ws.socket.once('close', () => clearTimeout(timer));
}

/** Resolves once the socket has closed. */
export function whenClosed(ws: AsyncSocket): Promise<void> {
  if (ws.socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => ws.socket.once('close', () => resolve()));
}

/**
 * Closes the connection: sends a Close with `code` and `reason` (unless one was sent
 * already), reads and drops messages until the peer's Close arrives, then waits for TCP to
 * close. Everything takes at most `timeout` ms (default: the socket's `closeTimeout`), after
 * which the socket is destroyed. Nothing else may be reading the socket meanwhile.
 * @example
 * ```ts
 * const { code, clean } = await close(ws, 1000, 'done');
 * ```
 * @throws {RangeError} synchronously for a code that may not be sent or a reason over 123 bytes
 */
export function close(ws: AsyncSocket, code: number = CloseCode.Normal, reason = '', timeout = ws.closeTimeout): Promise<CloseResult> {
  const sent = ws.closeQueued ? Promise.resolve() : sendClose(ws, code, reason);
  destroyAfter(ws, timeout);
  return finish(ws, sent);
}

async function finish(ws: AsyncSocket, sent: Promise<void>): Promise<CloseResult> {
  let result: CloseResult = { code: CloseCode.Abnormal, reason: '', clean: false };
  try {
    await sent;
    while (ws.peerClose === null) {
      const m = await readData(ws);
      if (m.opcode === Opcode.Close) break;
    }
    result = { ...ws.peerClose!, clean: ws.closeSent };
  } catch {
    // The peer broke the protocol or the socket went away: that is the unclean result.
  }
  await whenClosed(ws);
  return result;
}
