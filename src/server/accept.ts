/**
 * `acceptWebSocket()`: the server handshake on a socket accepted by hand.
 * @module
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { AsyncSocket } from '../connection/async-socket';
import { HandshakeError } from '../core/errors';
import { UpgradeOptions, checkUpgradeOptions, guardHandshake, rejectUpgrade, upgrade } from '../handshake/server';
import { ACCEPT_RULES, type AcceptOptions } from './options';
import { NOT_WEBSOCKET, admit, admitRules, answerNotWebSocket, endSettled, nodeHeadersCount, type Refuse } from './admission';

/**
 * The server handshake on a socket you accepted yourself (`net.Server`, `tls.Server`, or any
 * stream): reads the HTTP request head with Node's own parser, checks it as {@link listen}
 * does (431 for a head over `maxHeaderSize` or with more than `maxHeadersCount` fields, 408
 * when it is not complete within `handshakeTimeout`, 426 for a request that is no upgrade,
 * `path`, `verify`), answers 101 or the refusal, and resolves to the connection. `verify` and
 * `selectProtocol` get the request (headers, `url`) for authentication and protocol choice.
 * @example
 * ```ts
 * net.createServer(async (socket) => {
 *   const ws = await acceptWebSocket(socket, { protocols: ['chat.v1'], verify: (req) => (req.headers.authorization ? undefined : 401) });
 *   for await (const m of messages(ws)) await sendText(ws, m.data.toString());
 * }).listen(9001);
 * ```
 * @throws {HandshakeError} (rejection) with the status that was answered, once the refusal
 * went out (or the client went away)
 * @throws {TypeError} synchronously for an option of the wrong type, and `RangeError` for one
 * out of its range, before the socket is read
 * @group Server
 */
export function acceptWebSocket(socket: Duplex, options: AcceptOptions = {}): Promise<AsyncSocket> {
  checkUpgradeOptions(options, 'acceptWebSocket() options', ACCEPT_RULES);
  const rules = admitRules(options, () => false);
  const { maxHeaderSize, handshakeTimeout } = rules;
  guardHandshake(socket);
  return new Promise<AsyncSocket>((resolve, reject) => {
    let done = false;
    const fail = (status: number | undefined, message: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new HandshakeError(message, status));
    };
    // Node's HTTP parser, on this one socket: a server that never listens.
    const parser = http.createServer({ maxHeaderSize });
    parser.maxHeadersCount = nodeHeadersCount(rules.maxHeadersCount);
    const refuseRaw = (status: number, message: string): void => {
      if (!socket.destroyed) rejectUpgrade(socket, status, {}, message);
      fail(status, message);
    };
    const timer =
      handshakeTimeout > 0 ? setTimeout(() => refuseRaw(408, `no complete request within ${handshakeTimeout} ms`), handshakeTimeout) : undefined;
    const onClose = (): void => fail(undefined, 'the client went away before the handshake completed');
    socket.once('close', onClose);
    parser.on('clientError', (err: NodeJS.ErrnoException) => {
      if (err.code === 'HPE_HEADER_OVERFLOW') refuseRaw(431, `a request head over ${maxHeaderSize} bytes`);
      else refuseRaw(400, `not an HTTP request: ${err.message}`);
    });
    parser.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      answerNotWebSocket(res, { Connection: 'close' });
      fail(426, NOT_WEBSOCKET);
    });
    parser.on('upgrade', (req: http.IncomingMessage, conn: Duplex, head: Buffer) => {
      // An upgrade pipelined behind a request already refused: the handshake has settled, so
      // nothing after is answered and the connection closes (once the refusal has gone out).
      if (done) return void endSettled(conn);
      clearTimeout(timer); // verify has its own handshakeTimeout
      guardHandshake(conn);
      let answered: { status: number; message: string } | null = null;
      const refuse: Refuse = (status, headers, body) => {
        answered = { status, message: body || `refused with ${status}` };
        rejectUpgrade(conn, status, headers, body);
      };
      let failure: unknown = null;
      const open = (o: UpgradeOptions): Promise<AsyncSocket> =>
        upgrade(req, conn, head, o).catch((err: unknown) => {
          failure = err;
          throw err;
        });
      admit(req, conn, refuse, open, rules).then(
        (ws) => {
          if (ws !== null) {
            done = true;
            socket.off('close', onClose); // it would keep this handshake's state for the connection's life
            return resolve(ws);
          }
          if (failure !== null) {
            done = true;
            return reject(failure);
          }
          const a = answered as { status: number; message: string } | null;
          fail(a?.status, a?.message ?? 'the client went away before the handshake completed');
        },
        (err: unknown) => {
          rejectUpgrade(conn, 500);
          fail(500, `the handshake failed: ${String(err)}`);
        }
      );
    });
    parser.emit('connection', socket);
  });
}
