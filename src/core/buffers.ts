/**
 * Buffers for outgoing frames. Small frames are cut from a shared slab, as
 * `Buffer.allocUnsafe` cuts small buffers from Node's 8 KiB pool, but with less work per
 * buffer and a new backing store less often. The slab's size trades speed against what a
 * frame that lives on keeps alive (its whole slab): `npm run bench -- --quick`, masked 1 KiB
 * `makeFrame` ÷ ws, two runs each: 16 KiB slab 1.43 / 1.53, 32 KiB 1.75 / 1.80, 64 KiB
 * 2.07 / 2.10 (Node's pool: 1.02). A frame left in the socket of a peer that stopped reading
 * keeps its slab (measured 33,860 bytes held per stalled connection at 32 KiB, 67,721 at
 * 64 KiB, 8,465 with Node's pool); small chunks written after that wait in copies of their
 * own (AsyncSocket's `ownCopy` and backlog), so it is one slab per stalled connection.
 * @module
 */

// Buffer's own view constructor: a view made with it skips subarray()'s species lookup and
// argument clamping, and Buffer.from(arrayBuffer)'s checks (measured here: 37 against 42 ns
// per 16-byte view).
/** @internal */
export const FastBuffer = (Buffer as unknown as { [Symbol.species]: new (buffer: ArrayBufferLike, offset: number, length: number) => Buffer })[
  Symbol.species
];

/** Size of a slab. */
export const FRAME_SLAB_SIZE = 32 * 1024;
/** Frames up to this size are cut from the slab; larger ones get a buffer of their own. */
export const FRAME_SLAB_MAX = 2048;

let slab: ArrayBuffer = new ArrayBuffer(0);
let slabUsed = FRAME_SLAB_SIZE; // full: the first frame makes the first slab

/**
 * `n` bytes of uninitialised memory for a frame: a view of the current slab when `n` is at
 * most {@link FRAME_SLAB_MAX} (8-byte aligned, so the masking word loops stay aligned),
 * otherwise `Buffer.allocUnsafe(n)`.
 */
export function allocFrame(n: number): Buffer {
  if (n > FRAME_SLAB_MAX) return Buffer.allocUnsafe(n);
  if (slabUsed + n > FRAME_SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(FRAME_SLAB_SIZE).buffer as ArrayBuffer;
    slabUsed = 0;
  }
  const out = new FastBuffer(slab, slabUsed, n);
  slabUsed = (slabUsed + n + 7) & ~7;
  return out;
}
