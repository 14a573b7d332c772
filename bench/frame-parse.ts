/**
 * Frame parse rows: a pre-built stream of N final Binary frames, cut into 64 KiB chunks as a
 * socket would deliver them, parsed into N messages.
 *
 * - masked: client-to-server frames, parsed by a server (ws `isServer: true`, our role
 *   'server'); the payloads are unmasked in place by both (ws with bufferutil from 32 bytes).
 * - unmasked: server-to-client frames, parsed by a client.
 *
 * The stream is built by ws's `Sender.frame` (not by our encoder), and each parser's output
 * is checked once (message count, and a SHA-1 of the last message, which differs from the
 * others) before timing.
 *
 * Both parsers unmask in place, so a timed pass toggles the payloads of a masked stream
 * between masked and clear; that changes no lengths and no parsing work. Chunks are views
 * of one buffer that is reused across passes (no per-pass copy to pay for).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { AsyncSocket, DEFAULTS, Opcode, readData, type Role } from '../src';
import type { Impl, PassResult, Row } from './harness';
import { formatSize } from './harness';
import { WsReceiverClass, wsFrame } from './ws-lib';

/** Size of the chunks the stream is cut into (a typical socket read). */
export const CHUNK_SIZE = 64 * 1024;
// Bytes of frames per pass (at least MIN_MESSAGES messages).
const STREAM_BYTES = 512 * 1024;
const MIN_MESSAGES = 4;
// ws's WebSocket default maxPayload (100 MiB): the limit check runs as in a real ws server.
const WS_MAX_PAYLOAD = 100 * 1024 * 1024;

interface Stream {
  chunks: Buffer[];
  messages: number;
  /** SHA-1 of the last message's payload. */
  lastDigest: string;
}

function sha1(b: Uint8Array): string {
  return createHash('sha1').update(b).digest('hex');
}

function buildStream(size: number, masked: boolean): { bytes: Buffer; messages: number; lastDigest: string } {
  const payload = randomBytes(size);
  const last = randomBytes(size);
  if (size > 0 && last.equals(payload)) last[0]! ^= 1;
  const frameSize = size + (size < 126 ? 2 : size <= 0xffff ? 4 : 10) + (masked ? 4 : 0);
  const messages = Math.max(MIN_MESSAGES, Math.ceil(STREAM_BYTES / frameSize));
  const parts: Buffer[] = [];
  const options = { fin: true, rsv1: false, opcode: Opcode.Binary, mask: masked, readOnly: true };
  for (let i = 0; i < messages; i++) parts.push(...wsFrame(i === messages - 1 ? last : payload, options));
  const bytes = Buffer.concat(parts);
  if (bytes.length !== frameSize * messages) throw new Error('unexpected stream length');
  return { bytes, messages, lastDigest: sha1(last) };
}

function cut(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK_SIZE) chunks.push(bytes.subarray(i, i + CHUNK_SIZE));
  return chunks;
}

/** A duplex that goes nowhere: the AsyncSocket gets its bytes through `feed`. */
function nullDuplex(): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    }
  });
}

/**
 * An AsyncSocket whose "socket" delivers the next chunk whenever the reader has to wait.
 *
 * On a real socket the reader loop (`for (;;) await readData(ws)`) drains every complete
 * message buffered, then waits in `wait(n)`; the next 'data' event feeds a chunk, which
 * resolves the wait once `n` bytes are there, and the reader resumes. Feeding from inside
 * `wait` replays exactly that sequence (feed one chunk, read all complete messages) minus the
 * event-loop turn between 'data' events, which is the same for every parser and not parsing
 * work; ws's Receiver likewise gets one `write(chunk)` per chunk and parses synchronously.
 * Feeding everything first and reading afterwards would not match a socket: the 256 KiB
 * read buffer would pause it, and whole multi-MiB backlogs are not what sockets deliver.
 */
class ChunkFedSocket extends AsyncSocket {
  private nextChunk = 0;
  private source: Buffer[] = [];

  constructor(role: Role) {
    super(nullDuplex(), { role, maxFrameSize: DEFAULTS.maxFrameSize, maxMessageSize: DEFAULTS.maxMessageSize });
  }

  /** The chunks of the next pass (the last pass left the socket at a frame boundary). */
  refill(source: Buffer[]): void {
    this.source = source;
    this.nextChunk = 0;
  }

  // readData waits through waitThen: hand over the next chunks first, as a socket's 'data'
  // events would, then let the wait find them.
  override waitThen(...args: Parameters<AsyncSocket['waitThen']>): void {
    const wakeAt = args[1];
    while (this.bufferedAmount < wakeAt && this.nextChunk < this.source.length) this.feed(this.source[this.nextChunk++]!);
    super.waitThen(...args);
  }
}

/**
 * One parser per implementation for a whole row, as one socket parses for its whole life:
 * each pass hands it the stream again (it ends at a frame boundary), so what is timed is the
 * parsing, not making a socket or a Receiver for every few large messages (at 64 KiB a pass
 * is 8 messages, and making an AsyncSocket and its Duplex was then about 6% of the row).
 */
function wsframeParser(role: Role): (chunks: Buffer[], messages: number) => Promise<PassResult & { last: Buffer }> {
  const sock = new ChunkFedSocket(role);
  return async (chunks, messages) => {
    sock.refill(chunks);
    let bytes = 0;
    let last: Buffer = Buffer.alloc(0);
    let binary = 0;
    for (let i = 0; i < messages; i++) {
      const m = await readData(sock);
      bytes += m.data.length;
      if (m.opcode === Opcode.Binary) binary++;
      last = m.data;
    }
    if (sock.bufferedAmount !== 0) throw new Error(`wsframe: ${sock.bufferedAmount} bytes left after a pass`);
    return { messages: binary, bytes, check: bytes + (last.length > 0 ? last[0]! : 0), last };
  };
}

function wsParser(masked: boolean): (chunks: Buffer[]) => PassResult & { last: Buffer } {
  const receiver = new WsReceiverClass({ isServer: masked, maxPayload: WS_MAX_PAYLOAD, binaryType: 'nodebuffer' });
  const pass: { messages: number; bytes: number; last: Buffer } = { messages: 0, bytes: 0, last: Buffer.alloc(0) };
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) pass.messages++;
    pass.bytes += data.length;
    pass.last = data;
  });
  receiver.on('error', (err: Error) => {
    throw err;
  });
  return (chunks) => {
    pass.messages = 0;
    pass.bytes = 0;
    // As ws's socketOnData does: one write per chunk; messages are emitted synchronously.
    for (let i = 0; i < chunks.length; i++) receiver.write(chunks[i]!);
    const { messages, bytes, last } = pass;
    return { messages, bytes, check: bytes + (last.length > 0 ? last[0]! : 0), last };
  };
}

function verify(who: string, got: PassResult & { last: Buffer }, s: Stream, size: number): void {
  if (got.messages !== s.messages) throw new Error(`${who}: ${got.messages} binary messages, want ${s.messages}`);
  if (got.bytes !== s.messages * size) throw new Error(`${who}: ${got.bytes} payload bytes, want ${s.messages * size}`);
  if (sha1(got.last) !== s.lastDigest) throw new Error(`${who}: last message differs`);
}

/** Builds the rows, checking both parsers on a fresh copy of each stream first. */
export async function parseRows(sizes: number[], want: (id: string) => boolean): Promise<Row[]> {
  const rows: Row[] = [];
  for (const masked of [false, true]) {
    const role: Role = masked ? 'server' : 'client';
    for (const size of sizes) {
      const id = `parse-${formatSize(size)}-${masked ? 'masked' : 'unmasked'}`;
      if (!want(id)) continue;
      const built = buildStream(size, masked);
      const stream: Stream = { chunks: cut(built.bytes), messages: built.messages, lastDigest: built.lastDigest };
      const fresh = (): Stream => ({ ...stream, chunks: cut(Buffer.from(built.bytes)) });
      // Each parser twice, as a row uses it: the second pass starts where the first ended.
      const checkWs = wsParser(masked);
      const checkWsframe = wsframeParser(role);
      for (let pass = 0; pass < 2; pass++) {
        verify('ws Receiver', checkWs(fresh().chunks), stream, size);
        verify('wsframe readData', await checkWsframe(fresh().chunks, stream.messages), stream, size);
      }

      const parseWsframe = wsframeParser(role);
      const parseWs = wsParser(masked);
      const impls: Impl[] = [
        {
          name: 'wsframe',
          note: `one AsyncSocket(role '${role}') per row, fed 64 KiB chunks + await readData() per message`,
          pass: () => parseWsframe(stream.chunks, stream.messages)
        },
        {
          name: 'ws',
          baseline: true,
          note: `one Receiver({ isServer: ${masked} }) per row, .write(chunk), counting 'message' events`,
          pass: () => parseWs(stream.chunks)
        }
      ];
      rows.push({ id, group: 'parse', size, masked, impls });
    }
  }
  return rows;
}
