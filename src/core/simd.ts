/**
 * A WebAssembly SIMD kernel for masking (RFC 6455 §5.3), built here byte by byte so no
 * binary blob is shipped. WebAssembly cannot see a JS Buffer's memory, so payloads are
 * masked in blocks: copy a block into the module's memory, XOR it there 16 bytes at a time,
 * copy it to its destination. Blocks are small enough to stay in the CPU cache, so the two
 * copies cost little more than the one the caller needed anyway.
 * @module
 */

// LEB128 encodings for the small non-negative sizes a module this small needs.
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Buffer.from(s, 'ascii')];
}

// Opcodes used below (WebAssembly core spec §5.4, SIMD proposal for the 0xfd prefix).
const I32 = 0x7f;
const V128 = 0x7b;
const BLOCK = 0x02;
const LOOP = 0x03;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const GET = 0x20;
const SET = 0x21;
const I32_CONST = 0x41;
const I32_LOAD = 0x28;
const I32_LOAD8_U = 0x2d;
const I32_STORE = 0x36;
const I32_STORE8 = 0x3a;
const I32_GT_U = 0x4b;
const I32_GE_U = 0x4f;
const I32_ADD = 0x6a;
const I32_AND = 0x71;
const I32_XOR = 0x73;
const I32_SHR_U = 0x76;
const SIMD = 0xfd;
const V128_LOAD = 0x00;
const V128_STORE = 0x0b;
const I32X4_SPLAT = 0x11;
const V128_XOR = 0x51;
const VOID = 0x40;

// Parameters: 0 ptr, 1 len, 2 key (little-endian word of the key bytes for ptr's phase).
// Locals: 3 end64, 4 key vector, 5 end.
const P = 0;
const KEY = 2;
const END64 = 3;
const KV = 4;
const ENDP = 5;

/** `xor(ptr, len, key)`: XORs memory[ptr, ptr+len) in place with the repeated key word. */
function xorBody(): number[] {
  const v128Step = (offset: number): number[] => [
    GET, P,
    GET, P, SIMD, V128_LOAD, 0, ...uleb(offset),
    GET, KV, SIMD, V128_XOR,
    SIMD, V128_STORE, 0, ...uleb(offset)
  ];
  // prettier-ignore
  const code = [
    GET, KEY, SIMD, I32X4_SPLAT, SET, KV,
    GET, P, GET, 1, I32_ADD, SET, ENDP,
    GET, P, GET, 1, I32_CONST, 0x40, I32_AND, I32_ADD, SET, END64, // 0x40 = -64 in signed LEB
    // 64 bytes an iteration: four 16-byte vectors.
    BLOCK, VOID, LOOP, VOID,
    GET, P, GET, END64, I32_GE_U, BR_IF, 1,
    ...v128Step(0), ...v128Step(16), ...v128Step(32), ...v128Step(48),
    GET, P, I32_CONST, 0xc0, 0x00, I32_ADD, SET, P, // 64
    BR, 0, END, END,
    // 4 bytes an iteration.
    BLOCK, VOID, LOOP, VOID,
    GET, P, I32_CONST, 4, I32_ADD, GET, ENDP, I32_GT_U, BR_IF, 1,
    GET, P, GET, P, I32_LOAD, 2, 0, GET, KEY, I32_XOR, I32_STORE, 2, 0,
    GET, P, I32_CONST, 4, I32_ADD, SET, P,
    BR, 0, END, END,
    // The last 0-3 bytes, shifting the key down a byte each time.
    BLOCK, VOID, LOOP, VOID,
    GET, P, GET, ENDP, I32_GE_U, BR_IF, 1,
    GET, P, GET, P, I32_LOAD8_U, 0, 0, GET, KEY, I32_XOR, I32_STORE8, 0, 0,
    GET, KEY, I32_CONST, 8, I32_SHR_U, SET, KEY,
    GET, P, I32_CONST, 1, I32_ADD, SET, P,
    BR, 0, END, END,
    END
  ];
  const locals = [3, 1, I32, 1, V128, 1, I32];
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

/**
 * Bytes of memory the module has, fixed (it never grows, so views of it stay valid): the
 * first 64 KiB are scratch for masking in blocks, the rest a ring where outgoing masked
 * frames are built and written from (see `mask.ts`).
 */
export const SIMD_MEMORY = 64 * 1024 + 4 * 1024 * 1024;
/** Where the ring of outgoing frames starts in the module's memory. */
export const SIMD_RING_START = 64 * 1024;

/** The module's bytes. */
function simdModuleBytes(): Uint8Array {
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, I32, I32, I32, 0]), // type 0: (i32, i32, i32) -> ()
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0, ...uleb(SIMD_MEMORY / 65536)]), // one memory, fixed size
    ...section(7, [2, ...name('memory'), 2, 0, ...name('xor'), 0, 0]),
    ...section(10, [1, ...xorBody()])
  ];
  return Uint8Array.from(bytes);
}

/** The instantiated kernel: its memory as bytes and the XOR function. */
export interface SimdKernel {
  memory: Uint8Array;
  xor(ptr: number, len: number, key: number): void;
}

// The few WebAssembly APIs used here (the TypeScript lib in use does not declare them).
interface WasmGlobal {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

/** Instantiates the kernel, or returns null where WebAssembly SIMD is not available. */
export function loadSimdKernel(): SimdKernel | null {
  try {
    const wasm = (globalThis as unknown as { WebAssembly: WasmGlobal }).WebAssembly;
    const instance = new wasm.Instance(new wasm.Module(simdModuleBytes()), {});
    const memory = instance.exports.memory as { buffer: ArrayBuffer };
    const xor = instance.exports.xor as (p: number, l: number, k: number) => void;
    return { memory: new Uint8Array(memory.buffer), xor };
  } catch {
    return null; // no WebAssembly or no SIMD: the JS word loop serves
  }
}
