/**
 * Send rows (`send-<size>-masked`, `send-<size>-unmasked`): what a client's and a server's
 * send really cost, end to end up to the socket: framing, for a client masking with a fresh
 * key per frame, and the write (unmasked, ws writes header and payload as two chunks, and
 * wsframe copies payloads up to 1 KiB behind the header and writes one). Both write into the
 * same kind of socket: a `net.Socket` whose writes complete at once and go nowhere (so the
 * kernel's share, which is the same for both, is left out, and a `net.Socket` is what
 * lets wsframe build large masked frames in its ring, as it does on a real connection).
 *
 * - `wsframe`: a client (masked) or server (unmasked) `AsyncSocket` on it, `sendBinary(ws, payload)` per message, not
 *   awaited; a pass ends when the last send has resolved and the event-loop turn is over
 *   (small frames of one turn reach the socket together at its end).
 * - `ws`: its `Sender` on it, `send(payload, { binary, mask, fin })` as `WebSocket.send`
 *   calls it on a client (or, unmasked, on a server); a pass ends at the last send's callback and the turn's end.
 *
 * Checked once before timing: each side's bytes, unmasked, are the frames of the payloads.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import WebSocket from 'ws';
import { AsyncSocket, sendBinary } from '../src';
import type { Impl, Row } from './harness';
import { formatSize } from './harness';

type WsSender = {
  send(data: Buffer, options: { binary: boolean; mask: boolean; fin: boolean; compress: boolean }, cb: (err?: Error) => void): void;
};
const WsSenderClass = (WebSocket as unknown as { Sender: new (socket: net.Socket, extensions?: object) => WsSender }).Sender;

/** A socket whose writes complete at once; with `keep`, it keeps what was written. */
class NullSocket extends net.Socket {
  kept: Buffer[] | null = null;

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.kept?.push(Buffer.from(chunk));
    done();
  }

  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    if (this.kept) for (const c of chunks) this.kept.push(Buffer.from(c.chunk));
    done();
  }
}

// Sends per pass: enough to make the per-pass await small beside them.
function sendsPerPass(size: number): number {
  return Math.max(16, Math.min(1024, Math.floor((4 << 20) / size)));
}

/** The payloads carried by a byte stream of final binary frames, masked or not (unmasking a copy). */
function payloadsOf(stream: Buffer, masked: boolean): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  while (p < stream.length) {
    if (stream[p] !== 0x82 || ((stream[p + 1]! & 0x80) !== 0) !== masked) {
      throw new Error(`send: not a${masked ? ' masked' : 'n unmasked'} final binary frame at ${p}`);
    }
    let n = stream[p + 1]! & 0x7f;
    let h = 2;
    if (n === 126) {
      n = stream.readUInt16BE(p + 2);
      h = 4;
    } else if (n === 127) {
      n = Number(stream.readBigUInt64BE(p + 2));
      h = 10;
    }
    const key = masked ? stream.subarray(p + h, p + h + 4) : null;
    if (key) h += 4;
    const body = Buffer.from(stream.subarray(p + h, p + h + n));
    if (key) for (let i = 0; i < n; i++) body[i]! ^= key[i & 3]!;
    out.push(body);
    p += h + n;
  }
  return out;
}

// The end of the event-loop turn: wsframe hands small frames sent in one turn to the socket
// together at its end, so a pass (of either) ends only once that has happened.
const turnEnd = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function sendWsframe(ws: AsyncSocket, payload: Buffer, k: number): Promise<void> {
  for (let i = 0; i < k - 1; i++) void sendBinary(ws, payload);
  await sendBinary(ws, payload);
  await turnEnd();
}

async function sendWs(sender: WsSender, payload: Buffer, k: number, mask: boolean): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const options = { binary: true, mask, fin: true, compress: false };
    for (let i = 0; i < k - 1; i++) sender.send(payload, options, () => {});
    sender.send(payload, options, (err) => (err ? reject(err) : resolve()));
  });
  await turnEnd();
}

export async function sendRows(sizes: number[], want: (id: string) => boolean): Promise<Row[]> {
  const rows: Row[] = [];
  for (const masked of [false, true]) {
    // A client masks what it sends; a server does not.
    const role = masked ? 'client' : 'server';
    for (const size of sizes) {
      const id = `send-${formatSize(size)}-${masked ? 'masked' : 'unmasked'}`;
      if (!want(id)) continue;
      const payload = randomBytes(size);
      const k = sendsPerPass(size);

      // The check: three messages each, every byte accounted for.
      for (const who of ['wsframe', 'ws'] as const) {
        const sock = new NullSocket();
        sock.kept = [];
        if (who === 'wsframe') await sendWsframe(new AsyncSocket(sock, { role }), payload, 3);
        else await sendWs(new WsSenderClass(sock), payload, 3, masked);
        const got = payloadsOf(Buffer.concat(sock.kept), masked);
        if (got.length !== 3 || !got.every((p) => p.equals(payload))) throw new Error(`${id} ${who}: the frames do not carry the payload`);
        if (payload.length !== size) throw new Error(`${id} ${who}: the payload was modified`);
      }

      const ours = new AsyncSocket(new NullSocket(), { role });
      const theirs = new WsSenderClass(new NullSocket());
      const impls: Impl[] = [
        {
          name: 'wsframe',
          note: `${role} AsyncSocket: sendBinary() x ${k} per pass, the last one awaited`,
          pass: async () => {
            await sendWsframe(ours, payload, k);
            return { messages: k, bytes: k * size, check: k };
          }
        },
        {
          name: 'ws',
          baseline: true,
          note: `Sender.send(payload, { binary, mask: ${masked}, fin }) x ${k} per pass, the last callback awaited`,
          pass: async () => {
            await sendWs(theirs, payload, k, masked);
            return { messages: k, bytes: k * size, check: k };
          }
        }
      ];
      rows.push({ id, group: 'send', size, masked, impls });
    }
  }
  return rows;
}
