/**
 * The child processes of the loopback rows (echo and idle-connection memory). The parent
 * (`children.ts`) transpiles this file and src/ into plain JavaScript once per run and starts
 * it with `fork`, so a child starts in ~0.1 s with no TypeScript compiler in it. It talks to
 * the parent over the IPC channel only: a request `{ id, cmd, … }` gets one reply
 * `{ id, ok, result | error }`. Roles (argv):
 *
 * - `server wsframe|ws [deflate] [http2] [tls] [messages]`: an echo server on 127.0.0.1 (port chosen by
 *   the system, sent in the ready message). wsframe: `listen()` with a `readData` /
 *   `sendBinary` loop per connection (with `messages`: README's `for await … of messages(ws)` loop); ws: `WebSocketServer` echoing each 'message' with
 *   `send`. With `deflate`, both accept permessage-deflate with {@link DEFLATE} (else neither
 *   does). wsframe only: `http2` is `listen({ http2: true })` (cleartext h2c with prior
 *   knowledge, or with `tls` HTTP/2 and HTTP/1.1 by ALPN), `tls` serves `wss:` with the key and
 *   certificate in the environment ({@link TlsEnv}). Answers `mem` (heap and RSS after full
 *   GCs, and the number of open connections).
 * - `server raw`: a `node:net` server that writes every chunk it reads back (Nagle off, as
 *   both libraries set it); a connection whose first bytes are an HTTP GET gets a bare
 *   `101` instead, so the memory row's connector can hold idle bare sockets to it.
 * - `client`: `open` makes one connection (`connect()` or `new WebSocket`, offering
 *   permessage-deflate when asked; wsframe over HTTP/2 and/or TLS when asked) and `job` runs an
 *   echo job on it: one message in flight (`rtt`, with latencies) or a window of them (`pipe`).
 * - `connector`: `connect-idle` opens many WebSocket connections with a raw handshake and
 *   keeps them idle; `close-idle` drops them. Used for the memory row, for both servers.
 *
 * A child exits when asked (`exit`), when the IPC channel closes (the parent went away), and
 * after MAX_LIFETIME_MS in any case.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import type * as http2 from 'node:http2';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import WebSocket, { WebSocketServer } from 'ws';
import { connect, listen, messages, readData, sendBinary, sendText, Opcode, type AsyncSocket } from '../src/index';
import { encodedHeaderSize } from '../src/core/frame';

/** `raw`: no WebSocket at all, the machine's own limit (a `node:net` echo of the same bytes). */
export type PeerImpl = 'wsframe' | 'ws' | 'raw';

/**
 * permessage-deflate settings of the compressed rows, the same on both implementations and
 * both ends: compress from 1024 bytes (both libraries' default threshold), zlib's default
 * level (6) and memLevel (8), 15-bit windows, context takeover (neither library's defaults
 * are changed, only written down here).
 */
export const DEFLATE = { threshold: 1024 } as const;

/**
 * The environment variable that gives a `tls` server its key and certificate: JSON
 * `{ key, cert }` (PEM strings). In the environment rather than argv, so it is not in `ps`.
 * A type, so the parent (children.ts) can name it without loading this file, which runs a peer.
 */
export type TlsEnv = 'WSFRAME_BENCH_TLS';
const TLS_ENV: TlsEnv = 'WSFRAME_BENCH_TLS';

/** An echo job run by a client. */
export interface Job {
  /** `rtt`: send one, wait for its echo, repeat. `pipe`: keep up to `window` messages in flight. */
  mode: 'rtt' | 'pipe';
  size: number;
  /** Messages to send (all are received before the job ends). */
  count: number;
  /** Stop sending after this many ms even if `count` is not reached (the bound on every job). */
  ms: number;
  window: number;
  /** Distinct payloads (sequence number in the first 4 bytes) and SHA-1 of all bytes both ways. */
  verify: boolean;
  /** `random` bytes (default), or `json`: JSON-like text (as bytes) that compresses well. */
  payload?: 'random' | 'json';
  /**
   * wsframe's pipelined client as README's throughput section writes it: one loop that reads
   * and sends one more message per echo, sends not awaited. Without it (the default), a
   * sender loop awaits each send while a reader loop reads.
   */
  refill?: boolean;
}

export interface JobResult {
  messages: number;
  bytes: number;
  ns: number;
  /** Round-trip latency percentiles in µs (`rtt` only). */
  p50Us?: number;
  p99Us?: number;
  digestSent?: string;
  digestReceived?: string;
  /**
   * Bytes the client's socket read and wrote during the job (frame headers and all; over
   * HTTP/2 the session's socket, so HTTP/2 frames too). Over TLS, Node counts plaintext.
   */
  wireRead: number;
  wireWritten: number;
}

export interface MemResult {
  heapUsed: number;
  rss: number;
  external: number;
  arrayBuffers: number;
  connections: number;
}

/** What the parent asks; sent with an `id` that the reply carries back. */
export type RequestBody =
  | { cmd: 'mem' }
  | { cmd: 'open'; impl: PeerImpl; port: number; deflate: boolean; http2?: boolean; ca?: string }
  | { cmd: 'job'; job: Job }
  | { cmd: 'connect-idle'; port: number; count: number; concurrency: number }
  | { cmd: 'close-idle' }
  | { cmd: 'exit' };
export type Request = RequestBody & { id: number };

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
export interface Ready {
  ready: true;
  port?: number;
}

const MAX_LIFETIME_MS = 30 * 60_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;

function send(msg: Reply | Ready): void {
  process.send?.(msg);
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

// Distinct JSON-like payloads that a `json` job cycles through: with context takeover a
// message repeated verbatim would compress to a few back-references, which real traffic
// does not.
const JSON_POOL = 32;

/**
 * `size` bytes of JSON-like records with varied values (ids, names, timestamps, numbers,
 * words): compresses about 3-4x with zlib level 6, as chat or API messages do.
 */
function jsonPayload(size: number): Buffer {
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
  const pick = (): string => words[Math.floor(Math.random() * words.length)]!;
  let s = '[';
  while (s.length < size) {
    const id = Math.floor(Math.random() * 1e6);
    s +=
      `{"id":${id},"user":"user${id % 997}","ts":${1.7e12 + Math.floor(Math.random() * 1e9)},` +
      `"text":"${pick()} ${pick()} ${pick()} ${pick()}","score":${Math.random().toFixed(4)},"tags":["${pick()}","${pick()}"],"ok":${id % 2 === 0}},`;
  }
  return Buffer.from(s.slice(0, size), 'latin1');
}

/**
 * The payloads of a job: one reused buffer (random) or a pool of distinct ones (json), or
 * (verify) one distinct buffer per message.
 */
function payloadsFor(job: Job): Buffer[] {
  const pool = job.payload === 'json' ? Array.from({ length: JSON_POOL }, () => jsonPayload(job.size)) : [randomBytes(job.size)];
  if (!job.verify) return pool;
  const out: Buffer[] = [];
  for (let i = 0; i < job.count; i++) {
    const p = Buffer.from(pool[i % pool.length]!);
    p.writeUInt32BE(i >>> 0, 0);
    out.push(p);
  }
  return out;
}

/** Checks each echoed message; hashes everything when verifying. */
class Checker {
  bytes = 0;
  readonly sent: Hash | null;
  readonly received: Hash | null;
  private receivedCount = 0;
  private readonly read0: number;
  private readonly written0: number;

  constructor(
    private readonly job: Job,
    private readonly payloads: Buffer[],
    private readonly socket: WireCounter
  ) {
    this.sent = job.verify ? createHash('sha1') : null;
    this.received = job.verify ? createHash('sha1') : null;
    this.read0 = socket.bytesRead;
    this.written0 = socket.bytesWritten;
  }

  onSend(p: Buffer): void {
    this.sent?.update(p);
  }

  onMessage(binary: boolean, data: Buffer): void {
    if (!binary) throw new Error('echo: not a binary message');
    if (data.length !== this.job.size) throw new Error(`echo: ${data.length} bytes, want ${this.job.size}`);
    // Echoes come back in order, so message n is payload n (mod the pool).
    const sent = this.payloads[this.receivedCount++ % this.payloads.length]!;
    if (this.received) this.received.update(data);
    else if (data[this.job.size - 1] !== sent[this.job.size - 1]) throw new Error('echo: payload differs');
    this.bytes += data.length;
  }

  result(messages: number, t0: number, lat: Float64Array | null): JobResult {
    const ns = Math.round((performance.now() - t0) * 1e6);
    const r: JobResult = {
      messages,
      bytes: this.bytes,
      ns,
      wireRead: this.socket.bytesRead - this.read0,
      wireWritten: this.socket.bytesWritten - this.written0
    };
    if (lat) {
      const s = lat.subarray(0, messages).sort();
      r.p50Us = percentile(s, 0.5) * 1000;
      r.p99Us = percentile(s, 0.99) * 1000;
    }
    if (this.sent && this.received) {
      r.digestSent = this.sent.digest('hex');
      r.digestReceived = this.received.digest('hex');
    }
    return r;
  }
}

/** What counts the bytes a connection moves: its TCP (or TLS) socket. */
type WireCounter = Pick<net.Socket, 'bytesRead' | 'bytesWritten'>;

/**
 * The socket whose byte counts are the connection's wire: the socket itself, or over HTTP/2
 * its session's socket (an Http2Stream counts no bytes; the bench's session carries only
 * this stream, so the counts are its data frames plus the session's own frames).
 */
function wireOf(ws: AsyncSocket): WireCounter {
  const s = ws.socket as net.Socket | http2.Http2Stream;
  if ('session' in s && s.session !== undefined) return s.session.socket;
  return s as net.Socket;
}

async function wsframeJob(ws: AsyncSocket, job: Job): Promise<JobResult> {
  const payloads = payloadsFor(job);
  const np = payloads.length;
  const check = new Checker(job, payloads, wireOf(ws));
  const lat = job.mode === 'rtt' ? new Float64Array(job.count) : null;
  const t0 = performance.now();
  const deadline = t0 + job.ms;
  let sent = 0;
  let recv = 0;
  if (lat) {
    while (sent < job.count) {
      const p = payloads[sent % np]!;
      check.onSend(p);
      const t = performance.now();
      sent++;
      await sendBinary(ws, p);
      const m = await readData(ws);
      lat[recv] = performance.now() - t;
      check.onMessage(m.opcode === Opcode.Binary, m.data);
      recv++;
      if (performance.now() > deadline) break;
    }
    return check.result(recv, t0, lat);
  }
  if (job.refill) {
    // Pipelined, README's way: the read loop refills the window; a failed send shows up in readData.
    const sendNext = (): void => {
      const p = payloads[sent % np]!;
      check.onSend(p);
      sent++;
      sendBinary(ws, p).catch(() => {});
    };
    while (sent < job.count && sent < job.window) sendNext();
    while (recv < sent) {
      const m = await readData(ws);
      check.onMessage(m.opcode === Opcode.Binary, m.data);
      recv++;
      if (sent < job.count && performance.now() < deadline) sendNext();
    }
    return check.result(recv, t0, null);
  }
  // Pipelined: a sender loop and a reader loop on the same socket (one writer, one reader).
  let senderDone = false;
  let wakeReader: (() => void) | null = null; // the reader waits for a message to be sent
  let wakeSender: (() => void) | null = null; // the sender waits for the window to open
  const sender = (async (): Promise<void> => {
    try {
      while (sent < job.count && performance.now() < deadline) {
        if (sent - recv >= job.window) {
          await new Promise<void>((resolve) => (wakeSender = resolve));
          continue;
        }
        const p = payloads[sent % np]!;
        check.onSend(p);
        sent++;
        if (wakeReader !== null) {
          const w: () => void = wakeReader;
          wakeReader = null;
          w();
        }
        await sendBinary(ws, p);
      }
    } finally {
      senderDone = true;
      if (wakeReader !== null) (wakeReader as () => void)();
    }
  })();
  for (;;) {
    if (recv === sent) {
      if (senderDone) break;
      await new Promise<void>((resolve) => (wakeReader = resolve));
      continue;
    }
    const m = await readData(ws);
    check.onMessage(m.opcode === Opcode.Binary, m.data);
    recv++;
    if (wakeSender !== null && sent - recv < job.window) {
      const w: () => void = wakeSender;
      wakeSender = null;
      w();
    }
  }
  await sender;
  return check.result(recv, t0, null);
}

/** The ws client: callbacks, as ws is used; `onMessage` is set per job. */
class WsClient {
  onMessage: ((data: Buffer, isBinary: boolean) => void) | null = null;
  onFailure: ((err: Error) => void) | null = null;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage?.(data, isBinary));
    ws.on('error', (err: Error) => this.onFailure?.(err));
    ws.on('close', () => this.onFailure?.(new Error('ws: connection closed')));
  }

  job(job: Job): Promise<JobResult> {
    const ws = this.ws;
    const payloads = payloadsFor(job);
    const np = payloads.length;
    const check = new Checker(job, payloads, (ws as unknown as { _socket: net.Socket })._socket);
    const lat = job.mode === 'rtt' ? new Float64Array(job.count) : null;
    const opts = { binary: true };
    return new Promise<JobResult>((resolve, reject) => {
      const t0 = performance.now();
      const deadline = t0 + job.ms;
      let sent = 0;
      let recv = 0;
      let stop = false;
      let tSend = 0;
      const finish = (err: Error | null): void => {
        this.onMessage = null;
        this.onFailure = null;
        if (err) reject(err);
        else resolve(check.result(recv, t0, lat));
      };
      const sendOne = (): void => {
        const p = payloads[sent % np]!;
        check.onSend(p);
        sent++;
        ws.send(p, opts);
      };
      const pump = (): void => {
        while (sent < job.count && !stop && sent - recv < job.window) sendOne();
      };
      this.onFailure = finish;
      this.onMessage = (data, isBinary) => {
        try {
          const now = performance.now();
          if (lat) lat[recv] = now - tSend;
          check.onMessage(isBinary, data);
          recv++;
          if (now > deadline) stop = true;
          if (lat) {
            if (recv === job.count || stop) return finish(null);
            tSend = performance.now();
            sendOne();
          } else {
            if (recv === sent && (stop || sent === job.count)) return finish(null);
            pump();
          }
        } catch (err) {
          finish(err as Error);
        }
      };
      if (lat) {
        tSend = performance.now();
        sendOne();
      } else pump();
    });
  }
}

function openWs(port: number, deflate: boolean): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: deflate ? DEFLATE : false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
    ws.once('open', () => {
      ws.removeListener('error', reject);
      if ((ws.extensions !== '') !== deflate) return reject(new Error(`ws client: extensions ${JSON.stringify(ws.extensions)}, deflate ${deflate}`));
      resolve(new WsClient(ws));
    });
    ws.once('error', reject);
  });
}

/** A raw client handshake: resolves with the idle socket once the 101 response is in. */
function openIdle(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let head = '';
    const fail = (err: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('idle connection: no handshake response')), HANDSHAKE_TIMEOUT_MS);
    s.on('error', fail);
    s.once('connect', () => {
      const key = randomBytes(16).toString('base64');
      s.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
      );
    });
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      s.off('error', fail);
      s.on('error', () => {});
      clearTimeout(timer);
      if (!head.startsWith('HTTP/1.1 101')) return fail(new Error(`idle connection: ${head.split('\r\n')[0]}`));
      resolve(s);
    };
    s.on('data', onData);
  });
}

function memory(connections: number): MemResult {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('mem: run with --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers, connections };
}

/** The key and certificate of a `tls` server, from {@link TLS_ENV}. */
function tlsFromEnv(): { key: string; cert: string } {
  const json = process.env[TLS_ENV];
  if (json === undefined) throw new Error(`server tls: ${TLS_ENV} is not set`);
  return JSON.parse(json) as { key: string; cert: string };
}

async function server(impl: PeerImpl, flags: Set<string>): Promise<(req: Request) => Promise<unknown>> {
  for (const f of flags) if (f !== 'deflate' && f !== 'http2' && f !== 'tls' && f !== 'messages') throw new Error(`server: unknown flag ${f}`);
  const deflate = flags.has('deflate');
  if (impl === 'wsframe') {
    const options = {
      host: '127.0.0.1',
      port: 0,
      onError: () => {},
      ...(deflate ? { perMessageDeflate: DEFLATE } : {}),
      ...(flags.has('tls') ? { tls: tlsFromEnv() } : {})
    };
    const echo = flags.has('messages')
      ? async (ws: AsyncSocket): Promise<void> => {
          // README's loop
          for await (const m of messages(ws)) {
            if (m.opcode === Opcode.Binary) await sendBinary(ws, m.data);
            else await sendText(ws, m.data.toString());
          }
        }
      : async (ws: AsyncSocket): Promise<void> => {
          for (;;) {
            const m = await readData(ws);
            if (m.opcode === Opcode.Binary) await sendBinary(ws, m.data);
            else if (m.opcode === Opcode.Text) await sendText(ws, m.data.toString());
            else if (m.opcode === Opcode.Close) return;
          }
        };
    const srv = flags.has('http2') ? await listen({ ...options, http2: true }, echo) : await listen(options, echo);
    send({ ready: true, port: srv.port });
    return async (req) => {
      if (req.cmd === 'mem') return memory(srv.clients.size);
      throw new Error(`server: unknown command ${req.cmd}`);
    };
  }
  if (flags.has('http2') || flags.has('tls') || (impl === 'raw' && deflate)) throw new Error(`server ${impl}: no http2, tls or deflate in this bench`);
  if (impl === 'raw') {
    const sockets = new Set<net.Socket>();
    const srv = net.createServer({ noDelay: true }, (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      s.once('data', (first: Buffer) => {
        if (first.subarray(0, 4).toString('latin1') === 'GET ') return void s.write(RAW_101);
        s.write(first);
        s.on('data', (chunk: Buffer) => s.write(chunk));
      });
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', resolve);
    });
    send({ ready: true, port: (srv.address() as net.AddressInfo).port });
    return async (req) => {
      if (req.cmd === 'mem') return memory(sockets.size);
      throw new Error(`server: unknown command ${req.cmd}`);
    };
  }
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate ? DEFLATE : false });
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  send({ ready: true, port: (wss.address() as net.AddressInfo).port });
  return async (req) => {
    if (req.cmd === 'mem') return memory(wss.clients.size);
    throw new Error(`server: unknown command ${req.cmd}`);
  };
}

// The raw server's answer to an idle connection's handshake: enough for the connector's check.
const RAW_101 = Buffer.from('HTTP/1.1 101 Switching Protocols\r\n\r\n', 'latin1');

/**
 * The raw client: a message is as many bytes as a masked binary frame of `size` (what a
 * WebSocket client puts on the wire for it), the payload at the end, echoed as bytes; it has
 * come back when that many more bytes have arrived. Same jobs, counts and checks as the
 * others ({@link Checker}, its digests taken over the whole byte streams when verifying).
 */
class RawClient {
  private onBytes: ((chunk: Buffer) => void) | null = null;
  private onFailure: ((err: Error) => void) | null = null;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onBytes?.(chunk));
    socket.on('error', (err) => this.onFailure?.(err));
    socket.on('close', () => this.onFailure?.(new Error('raw: connection closed')));
  }

  job(job: Job): Promise<JobResult> {
    const frame = encodedHeaderSize(job.size, true) + job.size;
    const messages = payloadsFor(job).map((p) => Buffer.concat([Buffer.alloc(frame - job.size, 0x82), p]));
    const nm = messages.length;
    const check = new Checker(job, messages, this.socket);
    const lat = job.mode === 'rtt' ? new Float64Array(job.count) : null;
    return new Promise<JobResult>((resolve, reject) => {
      const t0 = performance.now();
      const deadline = t0 + job.ms;
      let sent = 0;
      let recv = 0;
      let partial = 0; // bytes of the next echo that have arrived
      let stop = false;
      let tSend = 0;
      const finish = (err: Error | null): void => {
        this.onBytes = null;
        this.onFailure = null;
        if (err) reject(err);
        else resolve(check.result(recv, t0, lat));
      };
      const sendOne = (): void => {
        const m = messages[sent % nm]!;
        check.sent?.update(m);
        sent++;
        this.socket.write(m);
      };
      const window = lat ? 1 : job.window;
      const pump = (): void => {
        while (sent < job.count && !stop && sent - recv < window) sendOne();
      };
      this.onFailure = finish;
      this.onBytes = (chunk) => {
        check.received?.update(chunk);
        partial += chunk.length;
        while (partial >= frame) {
          partial -= frame;
          const now = performance.now();
          if (lat) lat[recv] = now - tSend;
          recv++;
          check.bytes += job.size;
          if (now > deadline) stop = true;
        }
        if (recv === sent && (stop || sent === job.count)) return finish(null);
        if (lat) {
          if (recv === sent) {
            tSend = performance.now();
            sendOne();
          }
        } else pump();
      };
      tSend = performance.now();
      pump();
    });
  }
}

function openRaw(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(new RawClient(s));
    });
  });
}

function client(): (req: Request) => Promise<unknown> {
  let wsframe: AsyncSocket | null = null;
  let ws: WsClient | null = null;
  let raw: RawClient | null = null;
  send({ ready: true });
  return async (req) => {
    if (req.cmd === 'open') {
      if (req.impl === 'wsframe') {
        // 127.0.0.1 over TLS too: the bench's certificate names that address.
        const url = `${req.ca !== undefined ? 'wss' : 'ws'}://127.0.0.1:${req.port}/`;
        wsframe = await connect(url, {
          timeout: HANDSHAKE_TIMEOUT_MS,
          ...(req.deflate ? { perMessageDeflate: DEFLATE } : {}),
          ...(req.http2 === true ? { http2: true } : {}),
          ...(req.ca !== undefined ? { tls: { ca: req.ca } } : {})
        });
        if ((wsframe.deflate !== null) !== req.deflate) throw new Error(`wsframe client: permessage-deflate ${wsframe.deflate !== null}, want ${req.deflate}`);
        // The stream of an extended CONNECT, or the TCP/TLS socket of an upgrade: not a silent fallback.
        const over = 'session' in wsframe.socket ? 'h2' : 'h1';
        if (over !== (req.http2 === true ? 'h2' : 'h1')) throw new Error(`wsframe client: connected over ${over}, want http2 ${req.http2 === true}`);
      } else {
        if (req.http2 === true || req.ca !== undefined) throw new Error(`${req.impl} client: no http2 or tls in this bench`);
        if (req.impl === 'raw') raw = await openRaw(req.port);
        else ws = await openWs(req.port, req.deflate);
      }
      return null;
    }
    if (req.cmd === 'job') {
      if (wsframe !== null) return wsframeJob(wsframe, req.job);
      if (ws !== null) return ws.job(req.job);
      if (raw !== null) return raw.job(req.job);
      throw new Error('client: no connection');
    }
    throw new Error(`client: unknown command ${req.cmd}`);
  };
}

function connector(): (req: Request) => Promise<unknown> {
  const idle: net.Socket[] = [];
  send({ ready: true });
  return async (req) => {
    if (req.cmd === 'connect-idle') {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < req.count) {
          next++;
          idle.push(await openIdle(req.port));
        }
      };
      await Promise.all(Array.from({ length: Math.min(req.concurrency, req.count) }, worker));
      return idle.length;
    }
    if (req.cmd === 'close-idle') {
      for (const s of idle) s.destroy();
      const n = idle.length;
      idle.length = 0;
      return n;
    }
    throw new Error(`connector: unknown command ${req.cmd}`);
  };
}

async function main(): Promise<void> {
  setTimeout(() => process.exit(3), MAX_LIFETIME_MS).unref();
  process.on('disconnect', () => process.exit(0));
  const role = process.argv[2];
  const handle =
    role === 'server'
      ? await server(process.argv[3] === 'ws' || process.argv[3] === 'raw' ? process.argv[3] : 'wsframe', new Set(process.argv.slice(4)))
      : role === 'client'
        ? client()
        : role === 'connector'
          ? connector()
          : null;
  if (handle === null) throw new Error(`peer: unknown role ${role}`);
  process.on('message', (req: Request) => {
    if (req.cmd === 'exit') {
      send({ id: req.id, ok: true, result: null });
      // process.exit (not a kill) so that --cpu-prof writes its profile.
      setImmediate(() => process.exit(0));
      return;
    }
    handle(req).then(
      (result) => send({ id: req.id, ok: true, result }),
      (err: unknown) => send({ id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    );
  });
}

main().catch((err: unknown) => {
  console.error('peer:', err);
  process.exit(1);
});
