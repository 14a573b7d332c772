/**
 * Layer 4, closing with a result: `close(ws, code, reason)` runs the whole close handshake
 * (send Close, read until the peer's Close, wait for TCP to close) and says how it ended.
 * @module
 */
import { AsyncSocket } from './async-socket';
import { CloseCode } from './core/constants';
import { drainUntilClose } from './recv';
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

/** Resolves once the socket has closed. */
export function whenClosed(ws: AsyncSocket): Promise<void> {
  if (ws.socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => ws.socket.once('close', () => resolve()));
}

/**
 * Closes the connection: sends a Close with `code` and `reason` (unless one was sent
 * already), lets the peer's Close be read, then waits for TCP to close, and says how it
 * ended. Everything takes at most `timeout` ms (default: the socket's `closeTimeout`), after
 * which the socket is destroyed.
 *
 * It works whether or not another task is reading the socket. When a loop of yours is
 * reading (`messages(ws)`, `readData`), that loop sees the peer's Close and ends as usual,
 * and `close()` waits for it; when nothing reads, `close()` reads itself and drops the
 * messages that still arrive before the peer's Close (it also reads while your loop is
 * between two reads; your loop's next read takes over).
 * @example
 * ```ts
 * const { code, clean } = await close(ws, 1000, 'done');
 * ```
 * @throws {RangeError} synchronously for a code that may not be sent or a reason over 123 bytes
 */
export function close(ws: AsyncSocket, code: number = CloseCode.Normal, reason = '', timeout = ws.closeTimeout): Promise<CloseResult> {
  const sent = ws.closeQueued ? Promise.resolve() : sendClose(ws, code, reason);
  ws.destroyAfter(timeout);
  return finish(ws, sent);
}

async function finish(ws: AsyncSocket, sent: Promise<void>): Promise<CloseResult> {
  try {
    await sent;
  } catch {
    // The socket broke before our Close went out: no Close will come back either.
  }
  await drainUntilClose(ws);
  await whenClosed(ws);
  const peer = ws.peerClose;
  return { code: peer?.code ?? CloseCode.Abnormal, reason: peer?.reason ?? '', clean: ws.state.clean };
}
