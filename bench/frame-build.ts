/**
 * Frame build rows: the bytes of one final Binary frame from a payload.
 *
 * - `wsframe`: `makeFrame(Opcode.Binary, payload, masked)`, one new buffer holding header and
 *   payload (the payload is always copied; masked payloads are masked into the copy).
 * - `wsframe hdr-only` (unmasked only): `encodeHeader` into a header cut from the frame slab
 *   (`allocFrame`, as `sendBinary` does), the payload
 *   kept by reference. This is what our send path does for unmasked payloads over 1 KiB
 *   (header and payload written as two chunks under cork); at 1 KiB and below it copies.
 * - `ws`: `Sender.frame(payload, { fin, rsv1: false, opcode: 2, mask, readOnly: true })`. Unmasked
 *   it returns `[header, payload]` without copying the payload, so compare it with
 *   `wsframe hdr-only`; masked (readOnly) it masks into one new buffer like `makeFrame`.
 */
import { randomBytes } from 'node:crypto';
import { allocFrame } from '../src/core/buffers';
import { makeFrame, Opcode } from '../src';
import { encodeHeader, encodedHeaderSize } from '../src/core/frame';
import type { Impl, Row } from './harness';
import { formatSize } from './harness';
import { wsFrame, type WsFrameOptions } from './ws-lib';

const B0_BINARY_FIN = 0x82;

// Builds per pass: enough that the per-pass overhead (an await, a clock read) stays small
// next to the cheapest variant, which does not touch the payload (header only).
function buildsPerPass(size: number): number {
  return Math.max(16, Math.min(1024, Math.floor((4 << 20) / size)));
}

/** Checks that a frame (header + payload parts) carries `payload`, unmasking if needed. */
function checkFrame(parts: Buffer[], payload: Buffer, masked: boolean, who: string): void {
  const frame = Buffer.concat(parts);
  if (frame[0] !== B0_BINARY_FIN) throw new Error(`${who}: bad first byte ${frame[0]}`);
  const len7 = frame[1]! & 0x7f;
  let p = 2;
  let n = len7;
  if (len7 === 126) {
    n = frame.readUInt16BE(2);
    p = 4;
  } else if (len7 === 127) {
    n = Number(frame.readBigUInt64BE(2));
    p = 10;
  }
  if (((frame[1]! & 0x80) !== 0) !== masked) throw new Error(`${who}: mask bit wrong`);
  if (n !== payload.length) throw new Error(`${who}: length ${n}, want ${payload.length}`);
  const key = masked ? frame.subarray(p, p + 4) : null;
  if (key) p += 4;
  const body = frame.subarray(p);
  if (body.length !== n) throw new Error(`${who}: frame has ${body.length} payload bytes, want ${n}`);
  for (let i = 0; i < n; i++) {
    if ((key ? body[i]! ^ key[i & 3]! : body[i]) !== payload[i]) throw new Error(`${who}: payload differs at ${i}`);
  }
}

export function buildRows(sizes: number[], want: (id: string) => boolean): Row[] {
  const rows: Row[] = [];
  for (const masked of [false, true]) {
    for (const size of sizes) {
      const id = `build-${formatSize(size)}-${masked ? 'masked' : 'unmasked'}`;
      if (!want(id)) continue;
      const payload = randomBytes(size);
      const k = buildsPerPass(size);
      const wsOptions: WsFrameOptions = { fin: true, rsv1: false, opcode: 2, mask: masked, readOnly: true };

      checkFrame([makeFrame(Opcode.Binary, payload, masked)], payload, masked, 'makeFrame');
      checkFrame(wsFrame(payload, wsOptions), payload, masked, 'ws Sender.frame');
      if (payload.length !== size) throw new Error('ws modified the payload');

      const impls: Impl[] = [
        {
          name: 'wsframe',
          note: 'makeFrame(Opcode.Binary, payload, masked): header + copied payload in one buffer',
          pass: () => {
            let check = 0;
            for (let i = 0; i < k; i++) {
              const f = makeFrame(Opcode.Binary, payload, masked);
              check += f.length + f[f.length - 1]!;
            }
            return { messages: k, bytes: k * size, check };
          }
        }
      ];
      if (!masked) {
        const hsize = encodedHeaderSize(size, false);
        checkFrame(
          (() => {
            const h = Buffer.allocUnsafe(hsize);
            encodeHeader(h, 0, B0_BINARY_FIN, size, false);
            return [h, payload];
          })(),
          payload,
          false,
          'encodeHeader'
        );
        impls.push({
          name: 'wsframe hdr-only',
          note: 'encodeHeader into a header from the frame slab + payload by reference (our send path above 1 KiB)',
          pass: () => {
            let check = 0;
            for (let i = 0; i < k; i++) {
              const h = allocFrame(encodedHeaderSize(size, false));
              const end = encodeHeader(h, 0, B0_BINARY_FIN, size, false);
              // The frame is (h, payload); both are consumed.
              check += end + h[1]! + payload.length;
            }
            return { messages: k, bytes: k * size, check };
          }
        });
      }
      impls.push({
        name: 'ws',
        baseline: true,
        note: masked
          ? 'Sender.frame, mask + readOnly: header + masked copy in one buffer'
          : 'Sender.frame, unmasked: [header, payload] (no copy)',
        pass: () => {
          let check = 0;
          for (let i = 0; i < k; i++) {
            const parts = wsFrame(payload, wsOptions);
            const h = parts[0]!;
            check += h.length + h[h.length - 1]! + (parts.length > 1 ? parts[1]!.length : 0);
          }
          return { messages: k, bytes: k * size, check };
        }
      });
      rows.push({ id, group: 'build', size, masked, impls });
    }
  }
  return rows;
}
