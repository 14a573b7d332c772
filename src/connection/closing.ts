/**
 * Closing with a result: `close(ws, code, reason)` runs the whole close handshake
 * (send Close, read until the peer's Close, wait for TCP to close) and says how it ended.
 * @module
 */
import { AsyncSocket } from './async-socket';
import { CloseCode } from '../core/constants';
import { drainUntilClose } from './recv';
import { sendClose } from './send';
import type { CloseResult } from '../core/state';

export type { CloseResult } from '../core/state';

/**
 * @internal True when input that arrived before the socket closed is still there to read
 * (the peer's Close may be among it): a reader that goes on gets it.
 */
export function unreadInput(ws: AsyncSocket): boolean {
  return ws.queue.closed === null && ws.queue.length > 0;
}

/**
 * Resolves once the socket has closed.
 * @group Connection
 */
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
 * between two reads; your loop's next read takes over). To keep those messages, use
 * {@link halfClose} and read on.
 * @example
 * ```ts
 * const { code, clean } = await close(ws, 1000, 'done');
 * ```
 * @throws {RangeError} synchronously for a code that may not be sent or a reason over 123 bytes
 * @group Connection
 */
export function close(ws: AsyncSocket, code: number = CloseCode.Normal, reason = '', timeout = ws.closeTimeout): Promise<CloseResult> {
  return finish(ws, halfClose(ws, code, reason, timeout));
}

/**
 * Starts the closing handshake without reading anything for you: sends a Close with `code`
 * and `reason` (unless one was sent already) and arms the close timer (`timeout`, default the
 * socket's `closeTimeout`), then resolves once the Close is queued. Reading goes on as before,
 * and every message the peer sends before its Close is yours (RFC 6455 §5.5.1 lets a peer
 * finish what it was sending): read on with `readData` or `messages` until the Close, which
 * completes the handshake. Use it instead of {@link close} when what still arrives matters.
 * If the peer's Close has not come within `timeout`, the socket is destroyed and reads reject
 * with `IOError` reason 'timeout'.
 * @example
 * ```ts
 * await halfClose(ws, 1000, 'no more from us');
 * for await (const m of messages(ws)) results.push(m.data); // to the peer's Close
 * ```
 * @throws {RangeError} synchronously for a code that may not be sent or a reason over 123 bytes
 * @group Connection
 */
export function halfClose(ws: AsyncSocket, code: number = CloseCode.Normal, reason = '', timeout = ws.closeTimeout): Promise<void> {
  const sent = ws.closeQueued ? Promise.resolve() : sendClose(ws, code, reason);
  ws.destroyAfter(timeout);
  return sent;
}

async function finish(ws: AsyncSocket, sent: Promise<void>): Promise<CloseResult> {
  try {
    await sent;
  } catch {
    // The socket broke before our Close went out: no Close will come back either.
  }
  await drainUntilClose(ws);
  await whenClosed(ws);
  return ws.state.result();
}
