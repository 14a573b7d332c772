/**
 * Observability: connection events published on `node:diagnostics_channel`, as undici does,
 * so applications can log and count them without wrapping every call. Publishing costs
 * nothing when nobody subscribes.
 *
 * | channel | message |
 * | --- | --- |
 * | `wsframe:open` | `{ ws }`: an `AsyncSocket` was created (after a handshake, if any) |
 * | `wsframe:close` | `{ ws, code, reason, clean }`: its socket closed; `code` is the peer's (1005: none given, 1006: no Close received), `clean` when both Close frames were exchanged |
 * | `wsframe:protocol-error` | `{ ws, error }`: the peer broke the protocol; `error.closeCode` was sent |
 * | `wsframe:handshake-rejected` | `{ side, status, message, headers }`: `side` 'server': an upgrade request was refused with this HTTP status; 'client': a handshake failed (`status` as received, or undefined) |
 * @example
 * ```ts
 * import * as diagnostics_channel from 'node:diagnostics_channel';
 * const closes = new Map<number, number>(); // close code → how many
 * diagnostics_channel.subscribe('wsframe:close', (message) => {
 *   const { code } = message as { code: number; clean: boolean };
 *   closes.set(code, (closes.get(code) ?? 0) + 1);
 * });
 * ```
 * @module
 */
import * as diagnosticsChannel from 'node:diagnostics_channel';

/**
 * The channel names, for `diagnostics_channel.subscribe`.
 * @group Connection
 */
export const CHANNELS = {
  open: 'wsframe:open',
  close: 'wsframe:close',
  protocolError: 'wsframe:protocol-error',
  handshakeRejected: 'wsframe:handshake-rejected'
} as const;

/** @internal */
export const openChannel = diagnosticsChannel.channel(CHANNELS.open);
/** @internal */
export const closeChannel = diagnosticsChannel.channel(CHANNELS.close);
/** @internal */
export const protocolErrorChannel = diagnosticsChannel.channel(CHANNELS.protocolError);
/** @internal */
export const handshakeRejectedChannel = diagnosticsChannel.channel(CHANNELS.handshakeRejected);
