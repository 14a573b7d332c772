/**
 * The limits of one connection, with their defaults (README "Limits and defaults"), and the
 * frozen object of them that connections made with the same values share.
 * @module
 */
import { type Rules, bytesRule, countRule, msRule } from './options';

/**
 * The default limits, documented in README.
 * @group Connection
 */
export const DEFAULTS = {
  maxFrameSize: 16 * 1024 * 1024,
  maxMessageSize: 16 * 1024 * 1024,
  maxFragments: 131072,
  maxInflateRatio: 0,
  closeTimeout: 10_000,
  idleTimeout: 0,
  sendTimeout: 15_000,
  readBufferSize: 256 * 1024
} as const;

/**
 * HTTP/2 flow-control windows we grant peers (RFC 9113 §6.9), for the sessions `listen` and
 * `connect` make: what a peer may send on one stream before we read it, and on one
 * connection in all. Node's default, 64 KiB for both, makes every 64 KiB wait for a window
 * update (measured: a 1 MiB echo over HTTP/2 at 0.66× HTTP/1.1, 0.98× with these); a stream
 * of ours reads at most `readBufferSize` ahead, so its window is the same by default.
 *
 * The `session` window does not bound what one connection can make us hold: Node gives the
 * connection's window back as data reaches a stream's buffer, read or not (measured for
 * issue 24: 20 streams that nobody read held 10 MiB on one connection). What bounds it is per stream: a
 * WebSocket that does not read holds `readBufferSize` plus its `stream` window (512 KiB at
 * the defaults, measured), times the streams the connection may have open
 * (`maxConcurrentStreams`, 100 on a `listen` server: 50 MiB).
 */
export const HTTP2_WINDOWS = {
  stream: DEFAULTS.readBufferSize,
  session: 1024 * 1024
} as const;

/** @internal The rules of the limits (`checkOptions`): what each may be, as README's table says. */
export const LIMIT_RULES: Rules = {
  options: {
    maxFrameSize: bytesRule(0),
    maxMessageSize: bytesRule(0),
    maxFragments: { kind: 'number', min: 1, max: Number.MAX_SAFE_INTEGER, integer: true, infinite: true },
    maxInflateRatio: { kind: 'number', min: 0, max: Number.MAX_SAFE_INTEGER, infinite: true, note: '0: off' },
    closeTimeout: msRule(0),
    idleTimeout: msRule(0, 'ms; 0: never'),
    sendTimeout: msRule(0, 'ms; 0: never'),
    readBufferSize: countRule(1, Number.MAX_SAFE_INTEGER, 'bytes')
  }
};

/** The limits a connection checks all its life. */
export interface Limits {
  readonly maxFrameSize: number;
  readonly maxMessageSize: number;
  readonly maxFragments: number;
  readonly maxInflateRatio: number;
  readonly closeTimeout: number;
  readonly sendTimeout: number;
  readonly readBufferSize: number;
}

// Connections made with the same limits (every connection of one server, usually) share one
// frozen object of them, so each connection holds one field instead of six.
const sharedLimits = new Map<string, Limits>();
const SHARED_LIMITS_MAX = 64;

/** The limits for these options (defaults where unset), shared when possible. */
export function limitsOf(o: Partial<Limits>): Limits {
  const limits: Limits = {
    maxFrameSize: o.maxFrameSize ?? DEFAULTS.maxFrameSize,
    maxMessageSize: o.maxMessageSize ?? DEFAULTS.maxMessageSize,
    maxFragments: o.maxFragments ?? DEFAULTS.maxFragments,
    maxInflateRatio: o.maxInflateRatio ?? DEFAULTS.maxInflateRatio,
    closeTimeout: o.closeTimeout ?? DEFAULTS.closeTimeout,
    sendTimeout: o.sendTimeout ?? DEFAULTS.sendTimeout,
    readBufferSize: o.readBufferSize ?? DEFAULTS.readBufferSize
  };
  const key = `${limits.maxFrameSize} ${limits.maxMessageSize} ${limits.maxFragments} ${limits.maxInflateRatio} ${limits.closeTimeout} ${limits.sendTimeout} ${limits.readBufferSize}`;
  const shared = sharedLimits.get(key);
  if (shared !== undefined) return shared;
  if (sharedLimits.size < SHARED_LIMITS_MAX) sharedLimits.set(key, Object.freeze(limits));
  return limits;
}
