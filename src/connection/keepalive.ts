/**
 * Liveness: `ping(ws)` resolves with the round-trip time when the matching Pong
 * arrives, and `keepalive(ws, { interval, timeout })` pings on a timer and fails the
 * connection when a Pong does not come back in time (a dead peer, a silent NAT drop).
 *
 * Pongs are seen by whoever reads the socket (`readData`, `messages`, …): keep a reader
 * running, as any server loop does.
 * @module
 */
import { AsyncSocket } from './async-socket';
import { MAX_CONTROL_PAYLOAD } from '../core/constants';
import { IOError } from '../core/errors';
import { pongsOf } from './control';
import { newPingToken } from '../core/pongs';
import { sendPing } from './send';
import { type Rule, type Rules, checkOptions, msRule } from '../core/options';

/**
 * Options of {@link ping}.
 * @group Connection
 */
export interface PingOptions {
  /** The Ping's payload (at most 125 bytes). Default: 8 random bytes, hex-encoded. */
  token?: string | Uint8Array;
  /** Give up after this many ms (rejects with `IOError` reason 'timeout'). Default: no limit. */
  timeout?: number;
}

const PING_RULES: Rules = {
  options: { token: { kind: 'either', rules: [{ kind: 'string' }, { kind: 'bytes' }] }, timeout: msRule(0) }
};

/**
 * Sends a Ping and resolves with the round-trip time in milliseconds once its Pong has been
 * read. A Pong for a later Ping also settles earlier ones (RFC 6455 §5.5.3).
 * @example
 * ```ts
 * const rtt = await ping(ws, { timeout: 5000 }); // while another task runs readData(ws)
 * ```
 * @throws {RangeError} synchronously for a token over 125 bytes, or one a pending ping already
 * uses, or a timeout out of range
 * @throws {TypeError} synchronously for a token that is neither a string nor bytes
 * @throws {IOError} (rejection) on timeout, or when the connection closes first
 * @group Connection
 */
export function ping(ws: AsyncSocket, options: PingOptions = {}): Promise<number> {
  checkOptions(options, PING_RULES, 'ping() options');
  const token = options.token === undefined ? newPingToken() : Buffer.from(options.token);
  if (token.length > MAX_CONTROL_PAYLOAD) throw new RangeError(`ping token of ${token.length} bytes exceeds 125`);
  if (ws.closeQueued || ws.destroyed) return Promise.reject(new IOError('closed', 'the connection is closing'));
  if (ws.queue.closed !== null) return Promise.reject(ws.queue.closed);
  const pongs = pongsOf(ws);
  const pong = pongs.wait(token); // registered first, so a quick Pong is not missed (throws on a duplicate)
  const sent = sendPing(ws, undefined, token);
  let timer: NodeJS.Timeout | undefined;
  const limit =
    options.timeout === undefined
      ? null
      : new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new IOError('timeout', `no pong within ${options.timeout} ms`)), options.timeout);
        });
  limit?.catch(() => undefined); // settled through `result`; it may fire while the Ping is still being written
  // The limit covers writing the Ping too: behind a peer that stopped reading it may never go out.
  const answered = sent.then(() => pong);
  const result = limit === null ? answered : Promise.race([answered, limit]);
  answered.catch(() => undefined);
  pong.catch(() => undefined); // settled through `result`
  return result.finally(() => {
    clearTimeout(timer);
    pongs.cancel(token);
  });
}

/**
 * Options of {@link keepalive}.
 * @group Connection
 */
export interface KeepaliveOptions {
  /** Time between Pings, in ms. */
  interval: number;
  /** How long a Pong may take, in ms. Default: `interval`. */
  timeout?: number;
}

/** @internal The rule of a `keepalive` option (`checkOptions`): `{ interval, timeout? }`, times from 1 ms. */
export const KEEPALIVE_RULE = {
  kind: 'nested',
  rules: { options: { interval: msRule(1), timeout: msRule(1) }, required: ['interval'] }
} as const satisfies Rule;

/**
 * Pings every `interval` ms; when a Pong does not arrive within `timeout`, the socket is
 * destroyed and the pending read rejects with `IOError` (reason 'timeout'). Stops by itself
 * when the socket closes or the close handshake starts.
 * @example
 * ```ts
 * keepalive(ws, { interval: 30_000, timeout: 10_000 });
 * for await (const m of messages(ws)) handle(m);
 * ```
 * @returns a function that stops the keepalive
 * @throws {RangeError} for an interval or timeout that is not a time from 1 ms (`TypeError` when not a number)
 * @group Connection
 */
export function keepalive(ws: AsyncSocket, options: KeepaliveOptions): () => void {
  checkOptions(options, KEEPALIVE_RULE.rules, 'keepalive() options');
  const { interval } = options;
  const timeout = options.timeout ?? interval;
  let waiting = false;
  const timer = setInterval(() => {
    if (waiting || ws.closeQueued || ws.destroyed) return;
    waiting = true;
    ping(ws, { timeout }).then(
      () => {
        waiting = false;
      },
      (err: unknown) => {
        waiting = false;
        if (err instanceof IOError && err.reason === 'timeout') {
          ws.destroy(new IOError('timeout', `no pong within ${timeout} ms: the peer is unresponsive`));
        }
        // Any other failure means the connection is already closing or broken.
      }
    );
  }, interval);
  timer.unref();
  const stop = (): void => clearInterval(timer);
  ws.socket.once('close', stop);
  return stop;
}
