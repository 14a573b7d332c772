/**
 * An event-style loop for those coming from V's `on_message`/`on_close` or
 * Barracuda's callbacks: `handleEvents(ws, { onOpen, onMessage, onClose, onError })` runs the
 * read loop and calls the handlers, built on the same `readData` as everything else.
 * @module
 */
import { AsyncSocket } from '../connection/async-socket';
import { whenClosed, CloseResult } from '../connection/closing';
import { CloseCode, Opcode } from '../core/constants';
import { failConnection } from '../connection/control';
import { Message, closedByDrain, readData } from '../connection/recv';

/**
 * Handlers for {@link handleEvents}; each may be async, and is awaited before the next read.
 * @group Connection
 */
export interface EventHandlers {
  /** Once, before the first read. */
  onOpen?(ws: AsyncSocket): void | Promise<void>;
  /** For each Text or Binary message. */
  onMessage?(ws: AsyncSocket, message: Message): void | Promise<void>;
  /** For each Ping (already answered with a Pong). */
  onPing?(ws: AsyncSocket, data: Buffer): void | Promise<void>;
  /** For each Pong. */
  onPong?(ws: AsyncSocket, data: Buffer): void | Promise<void>;
  /** For an error that ended the connection (a `ProtocolError`, an `IOError`, or a handler's own). */
  onError?(ws: AsyncSocket, err: unknown): void;
  /** Once, when the connection has closed: the peer's code and reason, and whether it was clean. */
  onClose?(ws: AsyncSocket, result: CloseResult): void;
}

/**
 * Reads the connection until it closes, calling the handlers. An error thrown by a handler
 * ends the connection (Close 1011) and is passed to `onError`.
 * @example
 * ```ts
 * await handleEvents(ws, {
 *   onMessage: (ws, m) => sendText(ws, m.data.toString().toUpperCase()),
 *   onClose: (_ws, { code, clean }) => console.log('closed', code, clean)
 * });
 * ```
 * @returns how the connection ended
 * @group Connection
 */
export async function handleEvents(ws: AsyncSocket, handlers: EventHandlers): Promise<CloseResult> {
  let result: CloseResult = { code: CloseCode.Abnormal, reason: '', clean: false };
  try {
    await handlers.onOpen?.(ws);
    for (;;) {
      let message: Message | null = await readData(ws).catch((err: unknown) => {
        if (closedByDrain(ws, err)) return null; // close() read the peer's Close between two reads
        throw err;
      });
      if (message === null) {
        result = ws.state.result();
        break;
      }
      if (message.opcode === Opcode.Text || message.opcode === Opcode.Binary) await handlers.onMessage?.(ws, message);
      else if (message.opcode === Opcode.Ping) await handlers.onPing?.(ws, message.data);
      else if (message.opcode === Opcode.Pong) await handlers.onPong?.(ws, message.data);
      else {
        result = { ...ws.peerClose!, clean: true };
        break;
      }
      // A suspended async function keeps its variables: without this, every idle connection
      // would hold its last message (up to maxMessageSize) until the next one came.
      message = null;
    }
  } catch (err) {
    // A handler failed, or the connection did: close with 1011 (an internal error, no
    // details) unless a Close went out already, and stop reading.
    failConnection(ws, CloseCode.InternalError);
    handlers.onError?.(ws, err);
  }
  await whenClosed(ws);
  handlers.onClose?.(ws, result);
  return result;
}
