/**
 * UTF-8 validation (RFC 3629), as RFC 6455 §8.1 requires for text messages and close reasons.
 * Whole buffers go to Node's native `buffer.isUtf8`; a small state machine carries sequences
 * that are split across fragment boundaries, so invalid input is found in the first fragment
 * that contains it (fail fast).
 * @module
 */
import { isUtf8 } from 'node:buffer';

// States of the validator: how many continuation bytes are still due, with the narrower
// ranges RFC 3629 §4 allows right after E0, ED, F0 and F4 (no overlongs, no surrogates,
// nothing above U+10FFFF).
const ACCEPT = 0;
const NEED1 = 1; // one byte 80..BF
const NEED2 = 2; // two bytes 80..BF
const NEED3 = 3; // three bytes 80..BF
const AFTER_E0 = 4; // A0..BF, then one
const AFTER_ED = 5; // 80..9F, then one
const AFTER_F0 = 6; // 90..BF, then two
const AFTER_F4 = 7; // 80..8F, then two
const REJECT = 8;

/** Advances the validator state by one byte. */
function step(state: number, b: number): number {
  switch (state) {
    case ACCEPT:
      if (b < 0x80) return ACCEPT;
      if (b < 0xc2) return REJECT;
      if (b < 0xe0) return NEED1;
      if (b === 0xe0) return AFTER_E0;
      if (b === 0xed) return AFTER_ED;
      if (b < 0xf0) return NEED2;
      if (b === 0xf0) return AFTER_F0;
      if (b < 0xf4) return NEED3;
      if (b === 0xf4) return AFTER_F4;
      return REJECT;
    case NEED1:
    case NEED2:
    case NEED3:
      return b >= 0x80 && b <= 0xbf ? state - 1 : REJECT;
    case AFTER_E0:
      return b >= 0xa0 && b <= 0xbf ? NEED1 : REJECT;
    case AFTER_ED:
      return b >= 0x80 && b <= 0x9f ? NEED1 : REJECT;
    case AFTER_F0:
      return b >= 0x90 && b <= 0xbf ? NEED2 : REJECT;
    case AFTER_F4:
      return b >= 0x80 && b <= 0x8f ? NEED2 : REJECT;
    default:
      return REJECT;
  }
}

/** Runs the state machine over `bytes[start..end)`; stops early on REJECT. */
function run(state: number, bytes: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end && state !== REJECT; i++) state = step(state, bytes[i]!);
  return state;
}

/** Sequence length announced by a lead byte, or 1 for bytes that cannot start a long one. */
function sequenceLength(b: number): number {
  if (b >= 0xf0) return 4;
  if (b >= 0xe0) return 3;
  if (b >= 0xc0) return 2;
  return 1;
}

// Below this size the native call costs more than the JS loop.
const NATIVE_MIN = 24;

/**
 * True when `bytes` is complete, valid UTF-8.
 * @group Frames
 */
export function isValidUtf8(bytes: Uint8Array): boolean {
  if (bytes.length >= NATIVE_MIN) return isUtf8(bytes);
  return run(ACCEPT, bytes, 0, bytes.length) === ACCEPT;
}

/** The byte-at-a-time reference, for tests: true when `bytes` is complete, valid UTF-8. */
export function isValidUtf8Reference(bytes: Uint8Array): boolean {
  return run(ACCEPT, bytes, 0, bytes.length) === ACCEPT;
}

/** The state of an incremental check ({@link utf8Push}) at the start of input or after a complete sequence. */
export const UTF8_ACCEPT = ACCEPT;
/** The state of an incremental check once the input cannot be valid UTF-8. */
export const UTF8_REJECT = REJECT;

/**
 * One step of an incremental check: the state after `bytes`, given the state after the
 * pieces before them ({@link UTF8_ACCEPT} at the start). {@link UTF8_REJECT} as soon as the
 * input so far cannot be the start of valid UTF-8; {@link UTF8_ACCEPT} at the end means it
 * is complete and valid. A number rather than an object, so a connection can keep it in a
 * field of its own.
 */
export function utf8Push(state: number, bytes: Uint8Array): number {
  if (state === REJECT) return REJECT; // once invalid, always invalid
  const n = bytes.length;
  let i = 0;
  // Finish a sequence carried over from the previous piece.
  while (state !== ACCEPT && i < n) {
    state = step(state, bytes[i++]!);
    if (state === REJECT) return REJECT;
  }
  if (i === n) return state;
  // Find where a sequence cut off by the end of this piece starts (at most 3 bytes back).
  let cut = n;
  for (let j = n - 1; j >= i && j >= n - 3; j--) {
    const b = bytes[j]!;
    if ((b & 0xc0) !== 0x80) {
      if (b >= 0xc0 && j + sequenceLength(b) > n) cut = j;
      break;
    }
  }
  if (cut - i >= NATIVE_MIN) {
    if (!isUtf8(bytes.subarray(i, cut))) return REJECT;
  } else if (run(ACCEPT, bytes, i, cut) !== ACCEPT) {
    return REJECT;
  }
  return run(ACCEPT, bytes, cut, n);
}

/**
 * An incremental validator for a text message that arrives in pieces. `push` returns false
 * as soon as the bytes seen so far cannot be the start of valid UTF-8; `end` says whether
 * the whole message was complete and valid.
 * @group Frames
 */
export class Utf8Validator {
  private state = ACCEPT;

  /** Feeds the next piece; false when the input is already known to be invalid. */
  push(bytes: Uint8Array): boolean {
    this.state = utf8Push(this.state, bytes);
    return this.state !== REJECT;
  }

  /** True when everything pushed so far forms complete, valid UTF-8. */
  end(): boolean {
    return this.state === ACCEPT;
  }

  /** Forgets any carried state, for the next message. */
  reset(): void {
    this.state = ACCEPT;
  }
}
