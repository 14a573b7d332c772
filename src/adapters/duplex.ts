/**
 * `node:stream`: `toDuplex(ws)` makes a connection a `Duplex`, for `pipeline()` and
 * everything else that takes Node streams. Each write is one message; each message read is
 * one chunk.
 * @module
 */
import { Duplex } from 'node:stream';
import { AsyncSocket } from '../connection/async-socket';
import { close as closeSocket, halfClose, unreadInput, whenClosed } from '../connection/closing';
import { CloseCode, Opcode } from '../core/constants';
import { IOError } from '../core/errors';
import { isValidCloseCode } from '../core/close';
import { readData } from '../connection/recv';
import { BOOLEAN, type Rules, checkOptions, countRule } from '../core/options';
import { sendBinary, sendText } from '../connection/send';
import { WebSocketStreamError, closeError } from './websocket-stream';

/**
 * Options of {@link toDuplex}.
 * @group Streams
 */
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

// Byte mode: messages under JOIN_MAX bytes are copied into chunks of BATCH_SIZE.
const JOIN_MAX = 1024;
const BATCH_SIZE = 16 * 1024;

const DUPLEX_RULES: Rules = { options: { objectMode: BOOLEAN, readableHighWaterMark: countRule(0) } };

/**
 * A `Duplex` over a connection from `connect`, `listen`, `upgrade` or `upgradeHttp2`.
 *
 * Ends and errors: the peer's Close with 1000 or no code ends the readable side ('end'); any
 * other code destroys the stream with a {@link WebSocketStreamError} that carries it, and a
 * protocol or I/O failure destroys it with that error (`ProtocolError`, `IOError`). Ending the
 * writable side (`end()`, or the end of a `pipeline()` source) sends Close 1000 and finishes
 * once the closing handshake is done; the readable side goes on to the peer's Close, so
 * nothing the peer sent before it is lost (RFC 6455 §5.5.1), within the socket's
 * `closeTimeout` (past it the socket is destroyed and so is the stream, with `IOError`). Only
 * a stream whose readable side was never read drops what still arrives, as `close()` does.
 * `destroy(err)` closes with 1011, or with the `closeCode` of a `WebSocketStreamError`;
 * `destroy()` with 1000.
 *
 * In byte mode, small messages that arrive together are joined into one chunk (each message
 * its own Buffer would cost more than its bytes: the read-ahead is counted in bytes).
 * @example
 * ```ts
 * // a file to a socket, one binary message per chunk read
 * await pipeline(fs.createReadStream('data.bin'), toDuplex(await connect('ws://127.0.0.1:9001/upload')));
 * ```
 * @group Streams
 */
export function toDuplex(ws: AsyncSocket, options: DuplexOptions = {}): Duplex {
  checkOptions(options, DUPLEX_RULES, 'toDuplex() options');
  const objectMode = options.objectMode === true;
  let reading = false;
  // Whether anything ever asked for the readable side (a pipe, 'data', read()).
  let everRead = false;
  // Byte mode: small messages gathered into one chunk until it fills or the reader would wait.
  let batch: Buffer | null = null;
  let batched = 0;
  let flushArmed = false;
  // Settled once the readable side has seen the end: the peer's Close, or the connection gone
  // with nothing left to read.
  let ended!: () => void;
  const readEnd = new Promise<void>((resolve) => (ended = resolve));
  let peerCloseRead = false;
  let readError: Error | null = null;
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
      everRead = true;
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
      let sent: Promise<void>;
      try {
        sent = typeof chunk === 'string' ? sendText(ws, chunk) : sendBinary(ws, chunk);
      } catch (err) {
        // Not a string nor bytes (object mode takes any value): a TypeError, nothing sent.
        return callback(err as Error);
      }
      sent.then(() => callback(), callback);
    },
    final(callback) {
      const done = (): void => {
        const { code, reason, clean } = ws.state.result();
        callback(clean ? null : closeError('the WebSocket was not closed cleanly', code, reason));
      };
      // Nobody reads this stream's messages: read and drop them to the peer's Close, as
      // close() does. Else the readable side reads on to the peer's Close.
      if (!everRead) return void closeSocket(ws, CloseCode.Normal).then(done, callback);
      // Bounded by closeTimeout: a consumer that stopped reading, or a peer that never sends
      // its Close, fails the stream then (the socket's close timer ends the socket too).
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, ws.closeTimeout)));
      halfClose(ws, CloseCode.Normal).then(
        () =>
          Promise.race([readEnd, timedOut]).then(() => {
            clearTimeout(timer);
            if (peerCloseRead) return done();
            if (readError !== null) return callback(readError);
            const err = new IOError('timeout', `the peer's Close was not read within ${ws.closeTimeout} ms of ours`);
            callback(err);
            duplex.destroy(err);
          }),
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

  // Byte mode: pushes the small messages gathered so far as one chunk.
  function flush(): boolean {
    flushArmed = false;
    if (batch === null || batched === 0) return true;
    const chunk = batch.subarray(0, batched);
    batch = null;
    batched = 0;
    return duplex.push(chunk);
  }

  // Byte mode: a small message joins the batch (a copy: the message may be a view of the
  // receive buffer); a large one goes as it is, after what was gathered.
  function pushBytes(data: Buffer): boolean {
    if (data.length >= JOIN_MAX) {
      // Both go, whatever the first push said: the message is read already.
      const room = flush();
      return duplex.push(data) && room;
    }
    if (batch !== null && batched + data.length > batch.length && !flush()) {
      batch = Buffer.allocUnsafe(BATCH_SIZE);
      batched = data.copy(batch);
      return false;
    }
    batch ??= Buffer.allocUnsafe(BATCH_SIZE);
    batched += data.copy(batch, batched);
    return true;
  }

  // Reads messages and pushes them until the consumer has enough (or the end).
  async function readOne(): Promise<void> {
    for (;;) {
      // Before waiting for more, what was gathered goes out (a turn later, so that messages
      // already buffered still join it).
      if (batched > 0 && !flushArmed) {
        flushArmed = true;
        setImmediate(() => {
          if (flushArmed && !duplex.destroyed) flush();
        });
      }
      let m;
      try {
        m = await readData(ws);
      } catch (err) {
        readError = err as Error;
        ended();
        flush(); // what came before the failure is the consumer's, ahead of the error
        duplex.destroy(err as Error);
        return;
      }
      if (m.opcode === Opcode.Close) {
        peerCloseRead = true;
        ended();
        const peer = ws.peerClose;
        flush(); // the end comes after the last chunk, whatever the consumer's backlog
        if (peer === null || peer.code === CloseCode.Normal || peer.code === CloseCode.NoStatus) duplex.push(null);
        else duplex.destroy(closeError(`the peer closed with ${peer.code}`, peer.code, peer.reason));
        return;
      }
      if (m.opcode !== Opcode.Text && m.opcode !== Opcode.Binary) continue; // pings are answered inside readData
      if (!objectMode) {
        if (!pushBytes(m.data)) return;
        continue;
      }
      if (!duplex.push(m.opcode === Opcode.Text ? m.data.toString('utf8') : m.data)) return;
    }
  }

  // A socket that closes while nobody reads (say, close() read the peer's Close) ends the stream
  // too; but what it received before it closed is read first (the Close may be among it).
  void whenClosed(ws).then(() => {
    if (duplex.destroyed || duplex.readableEnded || reading) return;
    if (unreadInput(ws)) return; // the reader gets there (final bounds the wait)
    peerCloseRead = true; // read by someone else (close() did), or none will come
    ended();
    const peer = ws.peerClose;
    if (peer !== null && ws.state.clean && (peer.code === CloseCode.Normal || peer.code === CloseCode.NoStatus)) {
      flush();
      duplex.push(null);
    } else {
      const { code, reason } = ws.state.result();
      duplex.destroy(closeError('the WebSocket closed', code, reason));
    }
  });
  return duplex;
}
