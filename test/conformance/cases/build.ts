/** Small builders that keep the case tables readable. */
import { Case, Chop, Expected, FrameSpec, OP, Step } from '../types';
import { closePayload } from '../wire';

/**
 * How long a fail-fast checkpoint waits for the peer to react (ms of silence, see
 * Conn.waitFor). A correct peer reacts within milliseconds, and the wait ends as soon as it
 * does, so only a late failure (NON-STRICT) pays for the margin: 1.5 s was not enough on a
 * 2-core machine with other work running.
 */
export const FAIL_FAST_MS = 5000;

type Data = Buffer | string;
type Extra = Omit<FrameSpec, 'op' | 'data'>;

export const buf = (d: Data): Buffer => (typeof d === 'string' ? Buffer.from(d, 'utf8') : d);
export const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

export const text = (d: Data, x: Extra = {}): FrameSpec => ({ op: OP.text, data: buf(d), ...x });
export const binary = (d: Data, x: Extra = {}): FrameSpec => ({ op: OP.binary, data: buf(d), ...x });
export const cont = (d: Data, x: Extra = {}): FrameSpec => ({ op: OP.cont, data: buf(d), ...x });
export const ping = (d: Data = '', x: Extra = {}): FrameSpec => ({ op: OP.ping, data: buf(d), ...x });
export const pong = (d: Data = '', x: Extra = {}): FrameSpec => ({ op: OP.pong, data: buf(d), ...x });
export const close = (code?: number, reason: Data = '', x: Extra = {}): FrameSpec => ({
  op: OP.close,
  data: closePayload(code, buf(reason)),
  ...x
});
export const frame = (op: number, d: Data = '', x: Extra = {}): FrameSpec => ({ op, data: buf(d), ...x });

export const send = (frames: FrameSpec[], chop: Chop = 'all'): Step => ({ send: frames, chop });
export const pause = (ms: number): Step => ({ pause: ms });
export const checkpoint = (ms = FAIL_FAST_MS): Step => ({ checkpoint: ms });
export const awaitMessages = (n: number): Step => ({ awaitMessages: n });

export const eText = (d: Data): Expected => ({ op: 'text', data: buf(d) });
export const eBinary = (d: Data): Expected => ({ op: 'binary', data: buf(d) });
export const ePong = (d: Data = ''): Expected => ({ op: 'pong', data: buf(d) });

/** The payload of the ping the suite puts after frame `i` of a compressed message (`pingsAfter`). */
export const pingAfterFrame = (i: number): Buffer => Buffer.from(`ping after frame ${i + 1}`);

/** Connection failure with a protocol error. */
export const FAIL_1002 = { fail: [1002] };
/** Connection failure for invalid data (bad UTF-8). */
export const FAIL_1007 = { fail: [1007] };

/** Splits `data` into fragments of the given sizes (the last one takes the rest). */
export function fragments(op: number, data: Buffer, sizes: number[] | ((i: number) => number)): FrameSpec[] {
  const out: FrameSpec[] = [];
  let off = 0;
  let i = 0;
  do {
    const size = typeof sizes === 'function' ? sizes(i) : (sizes[i] ?? data.length);
    const end = Math.min(data.length, off + Math.max(1, size));
    out.push({ op: i === 0 ? op : OP.cont, data: data.subarray(off, end), fin: end >= data.length });
    off = end;
    i++;
  } while (off < data.length);
  return out;
}

/** Splits `data` into fragments of `size` bytes. */
export const fragmentsOf = (op: number, data: Buffer, size: number): FrameSpec[] => fragments(op, data, () => size);

/** Numbers a list of cases within a section prefix: "6.22." + 1, 2, 3... */
export function numbered(prefix: string, list: Array<Omit<Case, 'id'>>): Case[] {
  return list.map((c, i) => ({ id: `${prefix}${i + 1}`, ...c }));
}
