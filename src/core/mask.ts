/**
 * Masking (RFC 6455 §5.3): "The masked octet i is the original octet i XOR the masking key
 * octet at index i modulo 4." Masking and unmasking are the same operation.
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { SIMD_MEMORY, SIMD_RING_START, loadSimdKernel } from './simd';

/**
 * The reference implementation: one byte at a time. Slow (about 0.1 GB/s) but obviously
 * right; tests compare the fast paths against it.
 *
 * @param src bytes to mask
 * @param key the 4-byte masking key (`key[(keyPhase + i) & 3]` masks `src[i]`)
 * @param dst where to write (may be `src` for in place); defaults to `src`
 * @param dstOffset where in `dst` to start writing
 * @param keyPhase which key byte applies to `src[0]` (0–3), for payloads masked in pieces
 */
export function applyMaskReference(
  src: Uint8Array,
  key: Uint8Array,
  dst: Uint8Array = src,
  dstOffset = 0,
  keyPhase = 0
): void {
  for (let i = 0; i < src.length; i++) {
    dst[dstOffset + i] = src[i]! ^ key[(keyPhase + i) & 3]!;
  }
}

// From this size on the SIMD kernel (or the word loop) beats the unrolled byte loop, set-up
// included (measured here: at 256 bytes 120 ns against 280 ns; at 128 bytes the byte loop wins).
const SIMD_MIN = 256;
// Block size for the SIMD kernel: small enough that a block stays in L1/L2 between the copy
// in, the XOR and the copy out (16 KiB measured best against 8, 32 and 64 KiB at 1 MiB).
const SIMD_BLOCK = 16 * 1024;
const simd = loadSimdKernel();

/**
 * The two functions used from `bufferutil`, the optional native addon ws uses (it ships no
 * types). Both trust their arguments: anything but a typed array or Buffer aborts the process,
 * and `mask` writes `length` bytes at `offset` with no bounds check. So only
 * {@link applyMask} calls them, after checking.
 * @internal
 */
export interface NativeMask {
  mask(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number): void;
  unmask(buffer: Uint8Array, mask: Uint8Array): void;
}

// From 128 bytes bufferutil measured faster than the paths here (min of 36 interleaved timed
// loops per size through applyMask, key phase 1, Node 20, 2 × EPYC, a loaded machine; an
// N-API call costs about 40 ns, which is why the byte loop wins below):
// - in place, its `unmask` against the byte loop 1.9× at 128 bytes, against the SIMD kernel
//   1.1–1.2× from 256 bytes to 4 KiB, 1.2–1.4× at 8–16 KiB and 2.0× at 64 KiB and 1 MiB;
// - into a freshly allocated buffer (what encodeFrame and a payload that spans chunks do), its
//   `mask` 1.1–1.4× from 128 bytes to 4 KiB except at 256 bytes (0.94×), 0.9–1.0× at 8–16 KiB
//   (the allocation dominates), 1.1–1.3× at 64 KiB. (Into a buffer reused hot in cache, the SIMD
//   kernel is 5–15% faster from 256 bytes to 4 KiB; no send or read path does that.) In
//   `npm run bench -- --quick` the masked `makeFrame` 1 KiB row went from 0.86–0.99 of ws to
//   1.02–1.07 with it (five runs before, three after).
const NATIVE_MIN = 128;
let native: NativeMask | null = null;
// The key rotated to the phase of `src[0]`: bufferutil has no key-phase argument.
const nativeKey = new Uint8Array(4);

/**
 * `mod`'s `mask` and `unmask` when they are native functions that mask a test vector right;
 * otherwise null. (When its addon does not load, bufferutil exports a JS byte loop instead,
 * slower than every path here.)
 * @internal
 */
export function nativeMaskFrom(mod: unknown): NativeMask | null {
  const m = mod as Partial<NativeMask> | null | undefined;
  if (typeof m?.mask !== 'function' || typeof m.unmask !== 'function') return null;
  if (!isNativeFunction(m.mask) || !isNativeFunction(m.unmask)) return null;
  return nativeMasksRight(m as NativeMask) ? (m as NativeMask) : null;
}

function isNativeFunction(f: (...args: never[]) => unknown): boolean {
  return /\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(f));
}

// An addon that masked wrong would corrupt every frame without a sign, so it is checked once
// against the reference: 22 bytes at an odd address (bufferutil's byte preamble, a 64-bit word
// and its tail), into another buffer at an offset and in place.
function nativeMasksRight(impl: NativeMask): boolean {
  const key = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
  const src = new Uint8Array(23).map((_, i) => i * 29 + 1).subarray(1);
  const want = new Uint8Array(src.length + 5);
  applyMaskReference(src, key, want, 3);
  const got = new Uint8Array(want.length);
  const inPlace = src.slice();
  try {
    impl.mask(src, key, got, 3, src.length);
    impl.unmask(inPlace, key);
  } catch {
    return false; // not a working bufferutil: the paths here serve
  }
  return Buffer.from(got).equals(want) && Buffer.from(inPlace).equals(want.subarray(3, 3 + src.length));
}

/**
 * Makes {@link applyMask} use `impl` (from {@link nativeMaskFrom}) where it measured faster;
 * null goes back to the WebAssembly and JS paths alone. The module sets it on load (below);
 * tests switch it.
 * @internal
 */
export function setNativeMask(impl: NativeMask | null): void {
  native = impl;
}

/**
 * Which code masks and unmasks payloads of 128 bytes and more in this process: 'bufferutil'
 * (the optional native addon, when it is installed and `WSFRAME_NO_BUFFERUTIL` is not set),
 * else 'wasm-simd' (the built-in WebAssembly SIMD kernel, from 256 bytes) or 'js'. Smaller
 * payloads always take the JavaScript loop. `wsframe --version` prints it.
 * @group Frames
 */
export function maskBackend(): 'bufferutil' | 'wasm-simd' | 'js' {
  return native !== null ? 'bufferutil' : simd !== null ? 'wasm-simd' : 'js';
}

/** The native functions {@link applyMask} uses, or null. @internal */
export function getNativeMask(): NativeMask | null {
  return native;
}

// bufferutil when the user has it installed (an optional peer dependency, as it is for ws) and
// has not set WSFRAME_NO_BUFFERUTIL; otherwise the WebAssembly and JS paths alone.
if (!process.env.WSFRAME_NO_BUFFERUTIL) {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    native = nativeMaskFrom(require('bufferutil'));
  } catch {
    // Not installed (or its addon failed to load): not an error, the paths here serve.
  }
}

// Outgoing masked frames can be built inside the kernel's memory and written to the socket
// from there: one copy in and an XOR in place, instead of copy in, XOR, copy out into a new
// Buffer. A region is reused only once every frame written from the ring has been flushed.
// Kept when bufferutil is loaded: building a frame here measured faster than a fresh Buffer
// masked by bufferutil (0.6 against 2.0 µs at 16 KiB, 1.8 against 5.0 at 64 KiB, 36–41 against
// 39–49 at 1 MiB; the fresh Buffer's allocation is what costs).
const RING_MIN = 16 * 1024;
const RING_MAX = 1024 * 1024 + 16;
let ringNext = SIMD_RING_START;
let ringInFlight = 0;

function ringRelease(): void {
  if (--ringInFlight === 0) ringNext = SIMD_RING_START;
}

/**
 * A masked frame (header, then `data` masked with `key`) built in the SIMD kernel's memory,
 * and the function to call once the socket has flushed it; null when the payload is out of
 * the range this serves, the ring is full, or there is no SIMD kernel. The caller's bytes
 * are not modified.
 * @internal
 */
export function maskedFrameInKernel(
  header: Uint8Array,
  data: Uint8Array,
  key: Uint8Array
): { frame: Buffer; release: () => void } | null {
  const n = data.length;
  const total = header.length + n;
  if (simd === null || n < RING_MIN || total > RING_MAX) return null;
  if (ringNext + total > SIMD_MEMORY) {
    if (ringInFlight !== 0) return null;
    ringNext = SIMD_RING_START;
  }
  const at = ringNext;
  ringNext = (at + total + 15) & ~15;
  ringInFlight++;
  const mem = simd.memory;
  mem.set(header, at);
  mem.set(data, at + header.length);
  simd.xor(at + header.length, n, keyWord(key, 0));
  return { frame: Buffer.from(mem.buffer, mem.byteOffset + at, total), release: ringRelease };
}

/** The key bytes from `phase` on, as a little-endian 32-bit word (WebAssembly's byte order). */
function keyWord(key: Uint8Array, phase: number): number {
  return key[phase & 3]! | (key[(phase + 1) & 3]! << 8) | (key[(phase + 2) & 3]! << 16) | (key[(phase + 3) & 3]! << 24);
}

// Masks through the SIMD kernel, a block at a time: copy in, XOR in place, copy out.
function applyMaskSimd(src: Uint8Array, key: Uint8Array, dst: Uint8Array, dstOffset: number, keyPhase: number): void {
  const mem = simd!.memory;
  const xor = simd!.xor;
  const n = src.length;
  for (let off = 0; off < n; off += SIMD_BLOCK) {
    const len = Math.min(SIMD_BLOCK, n - off);
    mem.set(off === 0 && len === n ? src : src.subarray(off, off + len), 0);
    xor(0, len, keyWord(key, keyPhase + off));
    dst.set(mem.subarray(0, len), dstOffset + off);
  }
}
const keyScratch = new Uint8Array(4);
const keyScratch32 = new Uint32Array(keyScratch.buffer);

/** Unmasks a short buffer in place (key phase 0): the per-frame fast path for small payloads. */
export function unmaskSmall(buf: Uint8Array, key: Uint8Array): void {
  for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! ^ key[i & 3]!;
}

/**
 * Masks `src` into `dst` (or in place). With the native `bufferutil` loaded, payloads of 128
 * bytes and more go through it. Otherwise payloads of 256 bytes and more go through the
 * WebAssembly SIMD kernel (or, where WebAssembly SIMD is missing, a 32-bit word loop when
 * `src` and `dst` can be viewed as aligned words together); shorter ones through an unrolled
 * byte loop, which is faster there than any set-up. Any alignment, length and key phase is
 * handled. `dst` may be `src` (in place) but must not otherwise overlap it.
 *
 * Parameters are those of `applyMaskReference`.
 * @group Frames
 */
export function applyMask(
  src: Uint8Array,
  key: Uint8Array,
  dst: Uint8Array = src,
  dstOffset = 0,
  keyPhase = 0
): void {
  const n = src.length;
  if (n >= NATIVE_MIN && native !== null && applyMaskNative(native, src, key, dst, dstOffset, keyPhase)) return;
  if (n >= SIMD_MIN) {
    if (simd !== null) return applyMaskSimd(src, key, dst, dstOffset, keyPhase);
    if (((src.byteOffset - dst.byteOffset - dstOffset) & 3) === 0) return applyMaskWords(src, key, dst, dstOffset, keyPhase);
  }
  maskBytes(src, dst, dstOffset, key[keyPhase & 3]!, key[(keyPhase + 1) & 3]!, key[(keyPhase + 2) & 3]!, key[(keyPhase + 3) & 3]!);
}

/**
 * Masks `src` into `dst` at `dstOffset` with the key bytes `k0`–`k3` (`k0` for `src[0]`), by
 * an unrolled byte loop: the path for short payloads, where any set-up costs more.
 * @internal
 */
export function maskBytes(src: Uint8Array, dst: Uint8Array, dstOffset: number, k0: number, k1: number, k2: number, k3: number): void {
  const n = src.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    dst[dstOffset + i] = src[i]! ^ k0;
    dst[dstOffset + i + 1] = src[i + 1]! ^ k1;
    dst[dstOffset + i + 2] = src[i + 2]! ^ k2;
    dst[dstOffset + i + 3] = src[i + 3]! ^ k3;
  }
  if (i < n) dst[dstOffset + i] = src[i]! ^ k0;
  if (i + 1 < n) dst[dstOffset + i + 1] = src[i + 1]! ^ k1;
  if (i + 2 < n) dst[dstOffset + i + 2] = src[i + 2]! ^ k2;
}

// Masks through bufferutil and returns true; returns false, having done nothing, where the
// addon must not be called: a `src` or `dst` that is not a Uint8Array (it would abort the
// process), or a `dst` too short (it would write past the end). The other paths then run, as
// without the addon.
function applyMaskNative(
  impl: NativeMask,
  src: Uint8Array,
  key: Uint8Array,
  dst: Uint8Array,
  dstOffset: number,
  keyPhase: number
): boolean {
  const n = src.length;
  if (!(src instanceof Uint8Array) || !(dst instanceof Uint8Array)) return false;
  if (!Number.isInteger(dstOffset) || dstOffset < 0 || dstOffset + n > dst.length) return false;
  nativeKey[0] = key[keyPhase & 3]!;
  nativeKey[1] = key[(keyPhase + 1) & 3]!;
  nativeKey[2] = key[(keyPhase + 2) & 3]!;
  nativeKey[3] = key[(keyPhase + 3) & 3]!;
  // `unmask` saves 20 ns of argument passing. The same bytes through two views (recvFrame's
  // `applyMask(data.subarray(k), key, data, k)`) go to `mask`, which is right in place too: it
  // reads each byte or word before it writes it. (Comparing `.buffer`s costs more: 18 ns each.)
  if (dst === src && dstOffset === 0) impl.unmask(src, nativeKey);
  else impl.mask(src, nativeKey, dst, dstOffset, n);
  return true;
}

// The fallback for large payloads without WebAssembly SIMD: bytes up to a 4-byte boundary,
// then 32-bit words, then the tail. Needs src and dst equally aligned modulo 4.
function applyMaskWords(src: Uint8Array, key: Uint8Array, dst: Uint8Array, dstOffset: number, keyPhase: number): void {
  const n = src.length;
  const srcAddr = src.byteOffset;
  const head = (4 - (srcAddr & 3)) & 3;
  for (let i = 0; i < head; i++) dst[dstOffset + i] = src[i]! ^ key[(keyPhase + i) & 3]!;
  // The key as one native-endian word, rotated to start at byte `head`.
  for (let j = 0; j < 4; j++) keyScratch[j] = key[(keyPhase + head + j) & 3]!;
  const word = keyScratch32[0]!;
  const words = (n - head) >>> 2;
  const s32 = new Uint32Array(src.buffer, srcAddr + head, words);
  const d32 = dst === src && dstOffset === 0 ? s32 : new Uint32Array(dst.buffer, dst.byteOffset + dstOffset + head, words);
  let w = 0;
  for (; w + 4 <= words; w += 4) {
    d32[w] = s32[w]! ^ word;
    d32[w + 1] = s32[w + 1]! ^ word;
    d32[w + 2] = s32[w + 2]! ^ word;
    d32[w + 3] = s32[w + 3]! ^ word;
  }
  for (; w < words; w++) d32[w] = s32[w]! ^ word;
  // The tail continues the key where the words left it (`head + 4 * words` ≡ `head`).
  for (let i = head + words * 4; i < n; i++) dst[dstOffset + i] = src[i]! ^ key[(keyPhase + i) & 3]!;
}

/** The word loop, exported so tests can check it where WebAssembly SIMD exists. @internal */
export const applyMaskWordsForTest = applyMaskWords;

// Masking keys come from a pool filled by the CSPRNG, refilled when used up (§10.3:
// the key must be unpredictable). Keys are copied out, never handed out as views of the pool.
const POOL_SIZE = 8192;
const pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let poolIndex = POOL_SIZE;

/** Writes a fresh random 4-byte masking key into `dst` at `offset`. */
export function fillMaskingKey(dst: Uint8Array, offset: number): void {
  if (poolIndex + 4 > POOL_SIZE) {
    randomFillSync(pool);
    poolIndex = 0;
  }
  dst[offset] = pool[poolIndex]!;
  dst[offset + 1] = pool[poolIndex + 1]!;
  dst[offset + 2] = pool[poolIndex + 2]!;
  dst[offset + 3] = pool[poolIndex + 3]!;
  poolIndex += 4;
}

/**
 * A fresh random 4-byte masking key from the CSPRNG.
 * @group Frames
 */
export function generateMaskingKey(): Buffer {
  const key = Buffer.allocUnsafe(4);
  fillMaskingKey(key, 0);
  return key;
}
