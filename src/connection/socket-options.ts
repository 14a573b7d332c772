/**
 * The options of an `AsyncSocket`: its role, what the handshake agreed, and the
 * limits it keeps all its life (their defaults are in `core/limits.ts` and README).
 * @module
 */
import type { DeflateSettings } from '../compression/deflate';
import { LIMIT_RULES } from '../core/limits';
import { BYTES, OBJECT, STRING, type Rules, mergeRules } from '../core/options';

/**
 * Which end of the connection this is: clients mask what they send, servers must not.
 * @group Connection
 */
export type Role = 'client' | 'server';

/**
 * Options of an `AsyncSocket`; every size is in bytes and every time in milliseconds.
 * @group Connection
 */
export interface AsyncSocketOptions {
  /** Which end this is. Decides masking and who closes TCP first. */
  role: Role;
  /** The subprotocol the handshake agreed on, if any. */
  protocol?: string;
  /** Bytes that already arrived after the handshake (the `head` of an upgrade): read first. */
  head?: Uint8Array;
  /** Largest payload of one frame. Default 16 MiB. Larger frames fail the connection with 1009. */
  maxFrameSize?: number;
  /** Largest reassembled message. Default 16 MiB. Larger messages fail with 1009. */
  maxMessageSize?: number;
  /** Most frames in one message. Default 131072. More fail with 1008. */
  maxFragments?: number;
  /**
   * With permessage-deflate: most bytes a compressed message may inflate to per byte of it
   * received, past its first MiB; more fail with 1009. Default 0: off, since such messages
   * are valid and the process bounds what they amplify for all connections together
   * (`setZlibLimits`, README "Compression"). Turn it on to refuse them outright.
   */
  maxInflateRatio?: number;
  /** How long to wait for the peer to finish the close handshake before destroying. Default 10000. */
  closeTimeout?: number;
  /** Idle timeout: destroy the socket after this long with no traffic (0: never). Default 0. */
  idleTimeout?: number;
  /**
   * Send timeout: destroy the socket when bytes we sent wait this long without the peer
   * taking any of them (0: never). A peer that reads slowly but steadily is not cut off.
   * Default 15000.
   */
  sendTimeout?: number;
  /**
   * How much received data is buffered ahead of the reader before the socket is paused
   * (TCP backpressure then slows the peer). Each buffered chunk also counts 64 bytes of
   * overhead, so a flood of tiny chunks pauses it too. A frame larger than this is still
   * read whole. Default 256 KiB.
   */
  readBufferSize?: number;
  /**
   * permessage-deflate parameters agreed in the handshake (RFC 7692), with the compression
   * tuning. `connect`, `upgrade` and `listen` set this from their `perMessageDeflate`
   * option; set it yourself only after your own handshake agreed on them.
   */
  deflate?: DeflateSettings;
}

/** @internal The rules of {@link AsyncSocketOptions} (`checkOptions`). */
export const SOCKET_RULES: Rules = mergeRules(LIMIT_RULES, {
  options: { role: { kind: 'enum', values: ['client', 'server'] }, protocol: STRING, head: BYTES, deflate: OBJECT },
  required: ['role']
});
