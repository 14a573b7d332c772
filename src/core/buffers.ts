/**
 * Buffers for outgoing frames. Small frames are cut from a shared slab, as
 * `Buffer.allocUnsafe` cuts small buffers from Node's 8 KiB pool, but with less work per
 * buffer and a new backing store 8 times less often (measured with /bench's build rows: a
 * masked 1 KiB frame 400 → 250 ns, most of it the pool's `ArrayBuffer`s; a 16 B one 75 → 57).
 * A frame that lives on keeps its slab alive, as a pooled Buffer keeps its pool: the socket
 * copies a small chunk into a buffer of its own before it may wait in memory for a slow peer
 * (AsyncSocket's `ownCopy`), so a peer that does not read cannot make a slab per frame stay.
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
export const FRAME_SLAB_SIZE = 64 * 1024;
/** Frames up to this size are cut from the slab; larger ones get a buffer of their own. */
export const FRAME_SLAB_MAX = 4096;

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
