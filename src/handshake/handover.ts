/**
 * The one handover from a finished handshake to a connection, for all four handshakes
 * (client and server, HTTP/1.1 and HTTP/2): the `AsyncSocket` with its role, the agreed
 * subprotocol and permessage-deflate parameters (beside the caller's compression tuning),
 * the bytes that came right after the handshake, and the keepalive the options ask for.
 * @module
 */
import type { Duplex } from 'node:stream';
import { AsyncSocket } from '../connection/async-socket';
import type { AsyncSocketOptions, Role } from '../connection/socket-options';
import { KeepaliveOptions, keepalive } from '../connection/keepalive';
import type { DeflateOptions } from '../compression/deflate';
import type { DeflateParams } from '../core/extensions';

/** What the handshake settled. */
export interface Agreed {
  role: Role;
  protocol: string | undefined;
  /** Bytes that arrived after the handshake (an upgrade's `head`): read first. */
  head?: Uint8Array;
  /** The caller's `perMessageDeflate` options, when it asked for compression. */
  deflate: DeflateOptions | null;
  /** The permessage-deflate parameters agreed on, or null for none. */
  params: DeflateParams | null;
}

/** The options of `connect` and `upgrade` that reach the connection. */
export type HandoverOptions = Omit<AsyncSocketOptions, 'role' | 'head' | 'protocol' | 'deflate'> & { keepalive?: KeepaliveOptions };

/** The connection on `stream` once its handshake is done (its options were checked before). */
export function handOver(stream: Duplex, options: HandoverOptions, agreed: Agreed): AsyncSocket {
  const deflate = agreed.params === null ? undefined : { ...agreed.deflate, ...agreed.params };
  const ws = new AsyncSocket(stream, { ...options, role: agreed.role, head: agreed.head, protocol: agreed.protocol, deflate });
  if (options.keepalive) keepalive(ws, options.keepalive);
  return ws;
}
