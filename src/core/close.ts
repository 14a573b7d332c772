/**
 * The Close frame's payload (RFC 6455 §5.5.1): an optional 2-byte status code in network
 * byte order, then an optional UTF-8 reason; 125 bytes at most in all.
 * @module
 */
import { CloseCode, MAX_CLOSE_REASON } from './constants';
import { InvalidUtf8Error, ProtocolError } from './errors';
import { isValidUtf8 } from './utf8';

/**
 * A decoded Close payload. `code` is 1005 (no status) when the payload was empty.
 * @group Frames
 */
export interface CloseInfo {
  code: number;
  reason: string;
}

/**
 * True for the codes an endpoint may put in a Close frame (RFC 6455 §7.4): 1000–1003 and
 * 1007–1011 from the RFC, 1012–1014 which the IANA "WebSocket Close Code Number Registry"
 * added since (as ws and wsproto accept), and 3000–4999 for libraries and applications.
 * 1004 is reserved, 1005, 1006 and 1015 are never sent, and everything else is unassigned.
 * @group Frames
 */
export function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
  );
}

/**
 * Builds a Close payload. No code gives an empty payload.
 * @throws {RangeError} for a code that may not be sent, or a reason over 123 bytes
 * @throws {TypeError} for a reason without a code
 * @group Frames
 */
export function encodeClosePayload(code?: number, reason = ''): Buffer {
  if (code === undefined || code === CloseCode.NoStatus) {
    if (reason !== '') throw new TypeError('a close reason needs a close code');
    return Buffer.alloc(0);
  }
  if (!Number.isInteger(code) || !isValidCloseCode(code)) {
    throw new RangeError(`close code ${code} may not be sent (RFC 6455 §7.4)`);
  }
  const n = Buffer.byteLength(reason, 'utf8');
  if (n > MAX_CLOSE_REASON) throw new RangeError(`close reason of ${n} bytes exceeds ${MAX_CLOSE_REASON}`);
  const out = Buffer.allocUnsafe(2 + n);
  out.writeUInt16BE(code, 0);
  out.write(reason, 2, 'utf8');
  return out;
}

/**
 * Reads a Close payload, as Nim's `extractCloseData`.
 * @throws {ProtocolError} 1002 for a 1-byte payload or a code that may not be sent
 * @throws {InvalidUtf8Error} 1007 for a reason that is not UTF-8
 * @group Frames
 */
export function decodeClosePayload(data: Uint8Array): CloseInfo {
  if (data.length === 0) return { code: CloseCode.NoStatus, reason: '' };
  if (data.length === 1) {
    throw new ProtocolError('WS_ERR_INVALID_CLOSE_PAYLOAD', 'a close payload of 1 byte has no room for a code');
  }
  const code = (data[0]! << 8) | data[1]!;
  if (!isValidCloseCode(code)) throw new ProtocolError('WS_ERR_INVALID_CLOSE_CODE', `invalid close code ${code}`);
  const reasonBytes = data.subarray(2);
  if (!isValidUtf8(reasonBytes)) throw new InvalidUtf8Error('invalid UTF-8 in close reason');
  return { code, reason: Buffer.from(reasonBytes.buffer, reasonBytes.byteOffset, reasonBytes.length).toString('utf8') };
}
