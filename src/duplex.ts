/**
 * Layer 5, `node:stream`: `toDuplex(ws)` makes a connection a `Duplex`, for `pipeline()` and
 * everything else that takes Node streams. Each write is one message; each message read is
 * one chunk.
 * @module
 */
import { Duplex } from 'node:stream';
import { AsyncSocket } from './async-socket';
import { close as closeSocket, whenClosed } from './closing';
import { CloseCode, Opcode } from './core/constants';
import { isValidCloseCode } from './core/close';
import { readData } from './recv';
import { sendBinary, sendText } from './send';
import { WebSocketStreamError, closeError } from './websocket-stream';

/** Options of {@link toDuplex}. */
export interface DuplexOptions {
  /**
   * false (default): bytes. Each message read is pushed as a `Buffer` (a text message as its
   * UTF-8 bytes), for piping into files, hashes, `zlib`; a `Buffer` written is sent as a binary
   * message and a string as a text message (an empty one sends nothing). true: messages. Each
   * message read is one chunk, a `string` for text and a `Buffer` for binary, so message
   * boundaries and types are kept.
   */
  objectMode?: boolean;
  /**
   * Messages (object mode) or bytes read ahead of the consumer before the socket is left
   * unread, beside the socket's own `readBufferSize`. Default: 1 message in object mode (Node's
   * 16 would let a peer park 16 × `maxMessageSize` with a slow consumer), Node's 16 KiB in
   * byte mode (at most one message past it).
   */
  readableHighWaterMark?: number;
}

function noop(): void {}

/**
 * A `Duplex` over a connection from `connect`, `listen`, `upgrade` or `upgradeHttp2`.
 *
 * Ends and errors: the peer's Close with 1000 or no code ends the readable side ('end'); any
 * other code destroys the stream with a {@link WebSocketStreamError} that carries it, and a
 * protocol or I/O failure destroys it with that error (`ProtocolError`, `IOError`). Ending the
 * writable side (`end()`, or the end of a `pipeline()` source) sends Close 1000 and finishes
 * once the closing handshake is done. `destroy(err)` closes with 1011, or with the
 * `closeCode` of a `WebSocketStreamError`; `destroy()` with 1000.
 * @example
 * ```ts
 * // a file to a socket, one binary message per chunk read
 * await pipeline(fs.createReadStream('data.bin'), toDuplex(await connect('ws://127.0.0.1:9001/upload')));
 * ```
 */
export function toDuplex(ws: AsyncSocket, options: DuplexOptions = {}): Duplex {
  const objectMode = options.objectMode === true;
  let reading = false;
  const duplex: Duplex = new Duplex({
    readableObjectMode: objectMode,
    writableObjectMode: objectMode,
    decodeStrings: false, // a string written is a text message
    ...(options.readableHighWaterMark !== undefined
      ? { readableHighWaterMark: options.readableHighWaterMark }
      : objectMode
        ? { readableHighWaterMark: 1 }
        : {}),
    read() {
      if (reading) return;
      reading = true;
      void readOne().finally(() => (reading = false));
    },
    write(chunk: string | Uint8Array, _encoding, callback) {
      // In bytes an empty write carries nothing: no message. (An AsyncSocket over this stream,
      // a WebSocket inside a WebSocket, writes zero bytes to learn when what is ahead has gone.)
      if (!objectMode && chunk.length === 0) {
        callback();
        return;
      }
      const sent = typeof chunk === 'string' ? sendText(ws, chunk) : sendBinary(ws, chunk);
      sent.then(() => callback(), callback);
    },
    final(callback) {
      closeSocket(ws, CloseCode.Normal).then(
        (result) => callback(result.clean ? null : closeError('the WebSocket was not closed cleanly', result.code, result.reason)),
        callback
      );
    },
    destroy(err, callback) {
      if (!ws.closeQueued && !ws.destroyed) {
        const code =
          err === null ? CloseCode.Normal : WebSocketStreamError.isError(err) && err.closeCode !== null && isValidCloseCode(err.closeCode) ? err.closeCode : CloseCode.InternalError;
        closeSocket(ws, code, err === null ? '' : 'stream destroyed').catch(noop);
      }
      callback(err);
    }
  });

  // Reads messages and pushes them until the consumer has enough (or the end).
  async function readOne(): Promise<void> {
    for (;;) {
      let m;
      try {
        m = await readData(ws);
      } catch (err) {
        duplex.destroy(err as Error);
        return;
      }
      if (m.opcode === Opcode.Close) {
        const peer = ws.peerClose;
        if (peer === null || peer.code === CloseCode.Normal || peer.code === CloseCode.NoStatus) duplex.push(null);
        else duplex.destroy(closeError(`the peer closed with ${peer.code}`, peer.code, peer.reason));
        return;
      }
      if (m.opcode !== Opcode.Text && m.opcode !== Opcode.Binary) continue; // pings are answered inside readData
      const chunk = objectMode && m.opcode === Opcode.Text ? m.data.toString('utf8') : m.data;
      if (!duplex.push(chunk)) return;
    }
  }

  // A socket that closes while nobody reads (say, close() read the peer's Close) ends the stream too.
  void whenClosed(ws).then(() => {
    if (duplex.destroyed || duplex.readableEnded || reading) return;
    const peer = ws.peerClose;
    if (peer !== null && ws.state.clean && (peer.code === CloseCode.Normal || peer.code === CloseCode.NoStatus)) duplex.push(null);
    else duplex.destroy(closeError('the WebSocket closed', peer?.code ?? CloseCode.Abnormal, peer?.reason ?? ''));
  });
  return duplex;
}
