/**
 * The limits of one connection, with their defaults (README "Limits and defaults"), and the
 * frozen object of them that connections made with the same values share.
 * @module
 */

/** The default limits, documented in README. */
export const DEFAULTS = {
  maxFrameSize: 16 * 1024 * 1024,
  maxMessageSize: 16 * 1024 * 1024,
  maxFragments: 131072,
  maxInflateRatio: 100,
  closeTimeout: 10_000,
  idleTimeout: 0,
  sendTimeout: 15_000,
  readBufferSize: 256 * 1024
} as const;

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
