/**
 * Kernel rows at 1 MiB, in this process:
 *
 * - `mask-1MiB-inplace`: wsframe `applyMask(buf, key)` (bufferutil's `unmask` when it is
 *   installed, as here) against bufferutil `unmask(buf, key)`, which ws calls for payloads of
 *   32 bytes and more.
 * - `mask-1MiB-inplace-nonative`: the same with bufferutil switched off, so wsframe's own path
 *   (WebAssembly SIMD in 16 KiB blocks copied in and out of WASM memory): what users without
 *   the native addon get.
 * - `mask-1MiB-copy`: masking into another buffer, `applyMask(src, key, dst, 0)` against
 *   bufferutil `mask(src, key, dst, 0, length)` (ws's masked send).
 * - `utf8-1MiB`: valid mixed UTF-8 text (ASCII, Latin, CJK, emoji). wsframe `isValidUtf8`;
 *   ws 8 on Node 20 calls `buffer.isUtf8` (it uses utf-8-validate only when `buffer.isUtf8`
 *   is missing), so that is the baseline; utf-8-validate is shown beside it.
 * - `copy-1MiB`: `Buffer.copy` of 1 MiB into another buffer, the machine's reference line.
 *
 * Every function is checked once against a reference (byte loop; a known-invalid input).
 */
import { randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import { applyMask, isValidUtf8 } from '../src';
import { applyMaskReference, getNativeMask, setNativeMask } from '../src/core/mask';
import type { Impl, PassResult, Row } from './harness';

const SIZE = 1 << 20;
const OPS_PER_PASS = 4;

interface Bufferutil {
  mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void;
  unmask(buffer: Buffer, mask: Buffer): void;
}
const load = createRequire(__filename);
const bufferutil = load('bufferutil') as Bufferutil;
const utf8Validate = load('utf-8-validate') as (b: Buffer) => boolean;

function repeatPass(op: () => number): () => PassResult {
  return () => {
    let check = 0;
    for (let i = 0; i < OPS_PER_PASS; i++) check += op();
    return { messages: OPS_PER_PASS, bytes: OPS_PER_PASS * SIZE, check };
  };
}

function mixedText(size: number): Buffer {
  const unit = Buffer.from('The quick brown fox — Ünïcödé façade, 日本語のテキスト, Ελληνικά, emoji 🎉🚀; ', 'utf8');
  const out = Buffer.alloc(size, 0x20);
  // Whole units only, so no sequence is cut; the rest stays ASCII spaces.
  for (let off = 0; off + unit.length <= size; off += unit.length) unit.copy(out, off);
  return out;
}

export function kernelRows(want: (id: string) => boolean): Row[] {
  const rows: Row[] = [];
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const src = randomBytes(SIZE);
  const dst = Buffer.allocUnsafe(SIZE);
  const inPlace = Buffer.from(src);

  const native = getNativeMask();
  if (want('mask-1MiB-inplace') || want('mask-1MiB-copy')) {
    const want1 = Buffer.alloc(SIZE);
    applyMaskReference(src, key, want1);
    const a = Buffer.from(src);
    applyMask(a, key);
    const b = Buffer.from(src);
    bufferutil.unmask(b, key);
    const c = Buffer.alloc(SIZE);
    applyMask(src, key, c, 0);
    const d = Buffer.alloc(SIZE);
    bufferutil.mask(src, key, d, 0, SIZE);
    for (const [who, got] of [
      ['applyMask in place', a],
      ['bufferutil.unmask', b],
      ['applyMask into dst', c],
      ['bufferutil.mask', d]
    ] as const) {
      if (!got.equals(want1)) throw new Error(`${who}: differs from the byte-loop reference`);
    }
  }

  // Both in-place rows: wsframe's applyMask (with and without bufferutil) against ws's unmask.
  const applyInPlace = repeatPass(() => {
    applyMask(inPlace, key);
    return inPlace[SIZE - 1]!;
  });
  const wsUnmask: Impl = {
    name: 'ws',
    baseline: true,
    note: 'bufferutil.unmask(buf, key) (native), as ws unmasks',
    pass: repeatPass(() => {
      bufferutil.unmask(inPlace, key);
      return inPlace[SIZE - 1]!;
    })
  };

  if (want('mask-1MiB-inplace-nonative')) {
    const impls: Impl[] = [
      {
        name: 'wsframe',
        note: 'applyMask(buf, key) without bufferutil: WebAssembly SIMD in 16 KiB blocks copied in and out',
        pass: () => {
          setNativeMask(null);
          try {
            return applyInPlace();
          } finally {
            setNativeMask(native);
          }
        }
      },
      wsUnmask
    ];
    rows.push({ id: 'mask-1MiB-inplace-nonative', group: 'kernel', size: SIZE, masked: true, impls });
  }

  if (want('mask-1MiB-inplace')) {
    const impls: Impl[] = [
      {
        name: 'wsframe',
        note: native === null ? 'applyMask(buf, key): WebAssembly SIMD (bufferutil not installed)' : 'applyMask(buf, key): bufferutil.unmask (installed)',
        pass: applyInPlace
      },
      wsUnmask
    ];
    rows.push({ id: 'mask-1MiB-inplace', group: 'kernel', size: SIZE, masked: true, impls });
  }

  if (want('mask-1MiB-copy')) {
    const impls: Impl[] = [
      {
        name: 'wsframe',
        note: 'applyMask(src, key, dst, 0)',
        pass: repeatPass(() => {
          applyMask(src, key, dst, 0);
          return dst[SIZE - 1]!;
        })
      },
      {
        name: 'ws',
        baseline: true,
        note: 'bufferutil.mask(src, key, dst, 0, length) (native), as ws masks a send',
        pass: repeatPass(() => {
          bufferutil.mask(src, key, dst, 0, SIZE);
          return dst[SIZE - 1]!;
        })
      }
    ];
    rows.push({ id: 'mask-1MiB-copy', group: 'kernel', size: SIZE, masked: true, impls });
  }

  if (want('utf8-1MiB')) {
    const text = mixedText(SIZE);
    const bad = Buffer.from(text);
    bad[SIZE - 2] = 0xc3; // a lead byte followed by an ASCII space: invalid
    for (const [who, f] of [
      ['isValidUtf8', isValidUtf8],
      ['buffer.isUtf8', isUtf8],
      ['utf-8-validate', utf8Validate]
    ] as const) {
      if (f(text) !== true || f(bad) !== false) throw new Error(`${who}: wrong answer on the check inputs`);
    }
    const impls: Impl[] = [
      { name: 'wsframe', note: 'isValidUtf8(buf)', pass: repeatPass(() => (isValidUtf8(text) ? 1 : 0)) },
      {
        name: 'ws',
        baseline: true,
        note: 'buffer.isUtf8(buf): what ws 8 calls on Node 20 (for 24 bytes and more)',
        pass: repeatPass(() => (isUtf8(text) ? 1 : 0))
      },
      { name: 'ws utf-8-validate', note: 'utf-8-validate (native addon; ws falls back to it without buffer.isUtf8)', pass: repeatPass(() => (utf8Validate(text) ? 1 : 0)) }
    ];
    rows.push({ id: 'utf8-1MiB', group: 'kernel', size: SIZE, masked: false, impls });
  }

  if (want('copy-1MiB')) {
    rows.push({
      id: 'copy-1MiB',
      group: 'kernel',
      size: SIZE,
      masked: false,
      impls: [
        {
          name: 'Buffer.copy',
          note: 'src.copy(dst): the machine reference for the kernel rows',
          pass: repeatPass(() => src.copy(dst, 0) + dst[SIZE - 1]!)
        }
      ]
    });
  }
  return rows;
}
