/**
 * The programs under test and how the suite reaches them: `wsframe echo-server` (the suite
 * connects as a client), `wsframe echo-client` (the suite listens and the client connects,
 * one process per case), the same two with permessage-deflate (deflate-peer.ts, for the
 * cases that negotiate it), and a deliberately broken echo server that shows the suite
 * fails what it should.
 */
import { isUtf8 } from 'node:buffer';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { HttpHead, acceptFor, clientUpgrade, readHttpHead, serverAccept } from '../helpers/upgrade';
import { DeflateCodec, WSFRAME_THRESHOLD, acceptFirstOffer, answerOffer, checkResponse, offerOf } from './compression';
import { Conn, ExtraCheck } from './driver';
import { FrameParser, closePayload, encodeFrame } from './wire';
import { Case, OP } from './types';
import { ROOT, transpileTree } from '../helpers/transpile';


/** Large enough for the 16 MiB cases of section 9 (and their fragments). */
export const MAX_MESSAGE_SIZE = 20 * 1024 * 1024;

/** A connected, upgraded socket for one case, and what else to check once it ended. */
export interface CaseConnection {
  conn: Conn;
  extra?: ExtraCheck;
}

export type Connector = (c: Case) => Promise<CaseConnection>;

function collect(child: ChildProcess): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { out: () => out, err: () => err };
}

/**
 * A running `wsframe echo-server --port 0`, started through ts-node as a user would in dev
 * (`args`: more options, e.g. `--http2`).
 */
export interface EchoServer {
  port: number;
  url: string;
  stderr: () => string;
  stop(): Promise<void>;
}

export function startEchoServer(args: string[] = []): Promise<EchoServer> {
  return startServerProgram(['src/cli.ts', 'echo-server', '--port', '0', ...args]);
}

/**
 * deflate-peer.ts echo-server: wsframe's echo server with permessage-deflate (options per
 * connection; `args`: more options, e.g. `--http2`).
 */
export function startDeflateEchoServer(args: string[] = []): Promise<EchoServer> {
  // The ratio is off: section 12 tests the size limit with zeros (see deflate-peer.ts).
  return startServerProgram([path.relative(ROOT, path.join(__dirname, 'deflate-peer.ts')), 'echo-server', ...args]);
}

async function startServerProgram(args: string[]): Promise<EchoServer> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', ...args, '--max-message-size', String(MAX_MESSAGE_SIZE)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  });
  const io = collect(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    // A guard against a hung start: through ts-node it takes 1.4 s of CPU, far longer on a busy machine.
    const timer = setTimeout(() => reject(new Error(`echo-server printed no URL in 90 s: ${io.out()} ${io.err()}`)), 90_000);
    const onData = (): void => {
      const m = /ws:\/\/[^\s]+/.exec(io.out());
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(m[0]);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`echo-server exited with ${code}: ${io.err()}`));
    });
  });
  return {
    port: Number(new URL(url).port),
    url,
    stderr: io.err,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  };
}

/**
 * Suite as client: one fresh connection to the server per case. Cases that negotiate
 * permessage-deflate go to `deflatePort` (deflate-peer.ts) with their offer, and the
 * server's answer is checked before the case runs.
 */
export function clientConnector(port: number, deflatePort?: number): Connector {
  return async (c) => {
    if (c.deflate === undefined) {
      const { socket, response } = await clientUpgrade(port);
      return { conn: new Conn(socket, 'client', response.head) };
    }
    if (deflatePort === undefined) throw new Error('no echo server with permessage-deflate to run this case against');
    const peer = c.deflate.peer === undefined ? '' : `?deflate=${encodeURIComponent(JSON.stringify(c.deflate.peer))}`;
    const { socket, response } = await clientUpgrade(deflatePort, `/case/${c.id}${peer}`, {
      'Sec-WebSocket-Extensions': offerOf(c.deflate)
    });
    try {
      const agreed = checkResponse(response.headers['sec-websocket-extensions'], c.deflate);
      return { conn: new Conn(socket, 'client', response.head, new DeflateCodec(agreed, 'client')) };
    } catch (err) {
      socket.destroy();
      throw err;
    }
  };
}

/** The echo-client programs: the wsframe CLI, and deflate-peer.js for cases with permessage-deflate. */
export interface Programs {
  cli: string;
  deflatePeer: string;
}

/**
 * Transpiles src/ and deflate-peer.ts once into a temporary directory (as ts-node's
 * transpile-only mode does; same layout, so relative imports hold) so that one echo-client
 * process per case starts in ~0.1 s instead of ~1.4 s: the TypeScript compiler is what
 * takes the time, not wsframe. Returns the paths of cli.js and deflate-peer.js.
 */
const DEFLATE_PEER = path.join(__dirname, 'deflate-peer.ts');

export function transpilePrograms(): Programs & { cleanup: () => void } {
  const out = mkdtempSync(path.join(os.tmpdir(), 'wsframe-conformance-cli-'));
  const js = transpileTree(out, [DEFLATE_PEER]);
  return {
    cli: js(path.join(ROOT, 'src', 'cli.ts')),
    deflatePeer: js(DEFLATE_PEER),
    cleanup: () => rmSync(out, { recursive: true, force: true })
  };
}

/** A started echo client: its exit code (null when killed), its stderr, a way to kill it. */
export interface Launched {
  exit: Promise<number | null>;
  stderr: () => string;
  kill(): void;
}

/**
 * Suite as server: listens on 127.0.0.1, and for each case starts `wsframe echo-client`
 * on ws://127.0.0.1:PORT/case/<id>, so concurrent cases tell their connections apart.
 */
export class EchoClientHarness {
  private server = net.createServer({ noDelay: true });
  private pending = new Map<string, { c: Case; resolve: (s: Accepted) => void; reject: (err: Error) => void }>();
  private children = new Set<ChildProcess>();
  port = 0;

  /** `programs`: the transpiled echo clients (unused when every connector gets its own launch). */
  constructor(private readonly programs: Programs) {
    this.server.on('connection', (socket) => {
      socket.on('error', () => {});
      readHttpHead(socket).then(
        (request) => {
          const id = decodeURIComponent(request.startLine.split(' ')[1]!.replace(/^\/case\//, ''));
          const entry = this.pending.get(id);
          if (entry === undefined) return void socket.destroy();
          this.pending.delete(id);
          try {
            entry.resolve(accept(socket, request, entry.c));
          } catch (err) {
            socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
            entry.reject(err as Error);
          }
        },
        () => socket.destroy()
      );
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /**
   * Starts one echo client on `url`: by default a `wsframe echo-client` process, or
   * deflate-peer's echo-client with the case's options when it negotiates permessage-deflate.
   */
  private spawnClient(url: string, c: Case): Launched {
    const size = ['--max-message-size', String(MAX_MESSAGE_SIZE)];
    const args =
      c.deflate === undefined
        ? [this.programs.cli, 'echo-client', url, ...size]
        : [this.programs.deflatePeer, 'echo-client', url, ...size, ...(c.deflate.peer ? ['--deflate', JSON.stringify(c.deflate.peer)] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    const io = collect(child);
    const exit = new Promise<number | null>((resolve) =>
      child.once('exit', (code, signal) => {
        this.children.delete(child);
        resolve(signal ? null : code);
      })
    );
    return { exit, stderr: io.err, kill: () => child.kill('SIGKILL') };
  }

  connector(launch: (url: string, c: Case) => Launched = (url, c) => this.spawnClient(url, c)): Connector {
    return async (c) => {
      const accepted = new Promise<Accepted>((resolve, reject) => this.pending.set(c.id, { c, resolve, reject }));
      const client = launch(`ws://127.0.0.1:${this.port}/case/${c.id}`, c);
      const timer = { id: undefined as NodeJS.Timeout | undefined };
      let socket: net.Socket, head: Buffer, codec: DeflateCodec | null;
      try {
        ({ socket, head, codec } = await Promise.race([
          accepted,
          client.exit.then((code) => {
            throw new Error(`echo-client exited with ${code} before connecting: ${client.stderr().trim()}`);
          }),
          new Promise<never>((_, reject) => {
            // Generous: a correct client connects in a fraction of a second, however busy the machine.
            timer.id = setTimeout(() => reject(new Error('echo-client did not connect within 60 s')), 60_000);
          })
        ]).finally(() => {
          clearTimeout(timer.id);
          this.pending.delete(c.id);
        }));
      } catch (err) {
        client.kill();
        throw err;
      }
      const extra: ExtraCheck = async (failExpected) => {
        // A correct client exits as soon as the connection closed: only one that does not
        // pays for this bound, which leaves room for a busy machine.
        let t: NodeJS.Timeout | undefined;
        const code = await Promise.race([client.exit, new Promise<'timeout'>((r) => (t = setTimeout(() => r('timeout'), 20_000)))]);
        clearTimeout(t);
        if (code === 'timeout') {
          client.kill();
          return { reasons: ['echo-client did not exit within 20 s of the connection closing'], exitCode: null };
        }
        const stderr = client.stderr().trim().split('\n').pop() ?? '';
        if (!failExpected && code !== 0) return { reasons: [`echo-client exited with ${code} after what should be a clean close: ${stderr}`], exitCode: code };
        if (failExpected && code === 0) return { reasons: ['echo-client exited 0 (clean close) after a protocol violation'], exitCode: code };
        return { reasons: [], exitCode: code };
      };
      return { conn: new Conn(socket, 'server', head, codec), extra };
    };
  }

  async close(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** An upgraded connection on the suite's server side. */
interface Accepted {
  socket: net.Socket;
  head: Buffer;
  codec: DeflateCodec | null;
}

/**
 * Answers an upgrade request with 101 (the checks of serverAccept in test/helpers), and for
 * a case that negotiates permessage-deflate with the case's answer to the client's offer.
 * @throws {Error} for a request or an offer that is not right (the caller answers 400)
 */
function accept(socket: net.Socket, request: HttpHead, c: Case): Accepted {
  const key = request.headers['sec-websocket-key'];
  if (!/^GET \S+ HTTP\/1\.1$/.test(request.startLine)) throw new Error(`unexpected request: ${request.startLine}`);
  if (key === undefined || !/^[+/0-9A-Za-z]{22}==$/.test(key)) throw new Error('bad Sec-WebSocket-Key');
  if (request.headers['sec-websocket-version'] !== '13') throw new Error('bad Sec-WebSocket-Version');
  let extensions = '';
  let codec: DeflateCodec | null = null;
  if (c.deflate !== undefined) {
    const { answer, agreed } = answerOffer(request.headers['sec-websocket-extensions'], c.deflate);
    extensions = `Sec-WebSocket-Extensions: ${answer}\r\n`;
    codec = new DeflateCodec(agreed, 'server');
  } else if (request.headers['sec-websocket-extensions'] !== undefined) {
    throw new Error(`the client offered extensions unasked: ${request.headers['sec-websocket-extensions']}`);
  }
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n${extensions}\r\n`
  );
  return { socket, head: request.head, codec };
}

/** What the broken echo server gets wrong; every flag is a real bug a peer could have. */
export interface Breakage {
  /** Echo text without checking UTF-8. */
  noUtf8Check?: boolean;
  /** Answer every ping with an empty pong. */
  emptyPongs?: boolean;
  /** Ignore RSV bits and reserved opcodes and keep echoing. */
  ignoreViolations?: boolean;
}

/**
 * A TCP server on 127.0.0.1 for the broken peers: `onSocket` gets each connection (errors on it
 * are ignored); `close` destroys the open ones and stops listening.
 */
async function rawServer(onSocket: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
}

/**
 * A tiny, broken echo server written on raw sockets: it echoes each data frame as it comes
 * (so fragmentation is kept), answers Close with the same payload and ends TCP. Never use
 * it for anything but showing the suite's teeth.
 */
export async function startBrokenEchoServer(broken: Breakage): Promise<{ port: number; close(): Promise<void> }> {
  return rawServer((socket) => {
    serverAccept(socket).then(
      (request) => brokenEcho(socket, broken, request.head),
      () => socket.destroy()
    );
  });
}

/**
 * The broken echo server's loop on any transport (a TCP socket, an HTTP/2 stream): echoes
 * as {@link startBrokenEchoServer} says, and hands its last frame (a Close) to `finish`,
 * which by default writes it and ends the transport. `head`: bytes already read.
 */
export function brokenEcho(io: Duplex, broken: Breakage, head: Buffer, finish: (last: Buffer) => void = (last) => void io.end(last)): void {
  const parser = new FrameParser();
  let text: Buffer[] | null = null; // pieces of the text message in progress
  let done = false;
  const end = (last: Buffer): void => {
    done = true;
    io.off('data', onData);
    finish(last);
  };
  const onData = (chunk: Buffer): void => {
    parser.push(chunk);
    for (let f = parser.next(); f !== null && !done; f = parser.next()) {
      const violation = f.rsv !== 0 || (f.opcode > 2 && f.opcode < 8) || f.opcode > 10;
      if (violation && !broken.ignoreViolations) return end(encodeFrame({ op: OP.close, data: closePayload(1002) }, false));
      if (f.opcode === OP.close) {
        return end(encodeFrame({ op: OP.close, data: f.data.length >= 2 ? f.data.subarray(0, 2) : Buffer.alloc(0) }, false));
      }
      if (f.opcode === OP.ping) io.write(encodeFrame({ op: OP.pong, data: broken.emptyPongs ? Buffer.alloc(0) : f.data }, false));
      else if (f.opcode <= 2) {
        if (f.opcode === OP.text) text = [];
        else if (f.opcode === OP.binary) text = null;
        if (text !== null) text.push(f.data);
        if (f.fin && text !== null && !broken.noUtf8Check && !isUtf8(Buffer.concat(text))) {
          return end(encodeFrame({ op: OP.close, data: closePayload(1007) }, false));
        }
        if (f.fin) text = null;
        io.write(encodeFrame({ op: f.opcode, fin: f.fin, data: f.data }, false));
      }
    }
  };
  io.on('data', onData);
  if (head.length > 0) onData(head);
  io.resume();
}

/** What the broken permessage-deflate echo server gets wrong (each a bug a peer could have). */
export interface DeflateBreakage {
  /** Compresses with context takeover although it agreed server_no_context_takeover. */
  keepsContext?: boolean;
  /** Compresses with a 32 KiB window whatever server_max_window_bits it agreed. */
  fullWindow?: boolean;
  /** Inflates every message with a fresh context although context takeover was agreed. */
  dropsClientContext?: boolean;
  /** Sends each compressed echo in two frames with RSV1 on both. */
  rsv1OnEveryFrame?: boolean;
  /** Never compresses an echo (allowed by RFC 7692, but not what wsframe does). */
  neverCompresses?: boolean;
}

/**
 * A tiny, broken echo server with permessage-deflate, on raw sockets and the suite's own
 * codec: it accepts the first offer as asked, echoes whole messages (compressed from 1024
 * bytes, as wsframe), and fails 1007 for data that does not inflate.
 */
export async function startBrokenDeflateEchoServer(broken: DeflateBreakage): Promise<{ port: number; close(): Promise<void> }> {
  return rawServer((socket) => {
    readHttpHead(socket).then(
      (request) => {
        const key = request.headers['sec-websocket-key'] ?? '';
        let accepted: ReturnType<typeof acceptFirstOffer>;
        try {
          accepted = acceptFirstOffer(request.headers['sec-websocket-extensions']);
        } catch {
          return void socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
        }
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${acceptFor(key)}\r\nSec-WebSocket-Extensions: ${accepted.answer}\r\n\r\n`
        );
        const a = accepted.agreed;
        const sender = new DeflateCodec(
          { ...a, serverNoContextTakeover: a.serverNoContextTakeover && !broken.keepsContext, serverMaxWindowBits: broken.fullWindow ? 15 : a.serverMaxWindowBits },
          'server'
        );
        const receiver = new DeflateCodec({ ...a, clientNoContextTakeover: a.clientNoContextTakeover || broken.dropsClientContext === true }, 'server');
        const parser = new FrameParser();
        let parts: Buffer[] = [];
        let op = 0;
        let rsv1 = false;
        const fail = (code: number): void => void socket.end(encodeFrame({ op: OP.close, data: closePayload(code) }, false));
        const onData = (chunk: Buffer): void => {
          parser.push(chunk);
          for (let f = parser.next(); f !== null; f = parser.next()) {
            if (f.opcode === OP.close) return void socket.end(encodeFrame({ op: OP.close, data: f.data.subarray(0, 2) }, false));
            if (f.opcode === OP.ping) {
              socket.write(encodeFrame({ op: OP.pong, data: f.data }, false));
              continue;
            }
            if ((f.rsv & 3) !== 0 || (f.rsv !== 0 && f.opcode !== OP.text && f.opcode !== OP.binary)) return fail(1002);
            if (f.opcode !== OP.cont) {
              op = f.opcode;
              rsv1 = f.rsv !== 0;
              parts = [];
            }
            parts.push(f.data);
            if (!f.fin) continue;
            let data: Buffer = Buffer.concat(parts);
            if (rsv1) {
              try {
                data = receiver.inflate(data);
              } catch {
                return fail(1007);
              }
            }
            if (data.length < WSFRAME_THRESHOLD || broken.neverCompresses) {
              socket.write(encodeFrame({ op, data }, false));
              continue;
            }
            const payload = sender.compress(data);
            const half = broken.rsv1OnEveryFrame ? payload.length >> 1 : payload.length;
            socket.write(encodeFrame({ op, data: payload.subarray(0, half), rsv: 4, fin: half === payload.length }, false));
            if (half < payload.length) socket.write(encodeFrame({ op: OP.cont, data: payload.subarray(half), rsv: 4 }, false));
          }
        };
        socket.on('data', onData);
        if (request.head.length > 0) onData(request.head);
        socket.resume();
      },
      () => socket.destroy()
    );
  });
}

/**
 * A tiny, broken echo client on raw sockets (same bugs as the broken server, plus
 * `unmasked`: it forgets to mask). It "exits" 0 when its socket closes, as a process would.
 */
export function launchBrokenEchoClient(broken: Breakage & { unmasked?: boolean }): (url: string) => Launched {
  return (url) => {
    const { port, pathname } = new URL(url);
    const socket = net.connect({ host: '127.0.0.1', port: Number(port) });
    socket.on('error', () => {});
    const exit = new Promise<number | null>((resolve) => socket.once('close', () => resolve(0)));
    const mask = !broken.unmasked;
    const key = Buffer.alloc(16, 7).toString('base64');
    socket.once('connect', () => {
      socket.setNoDelay(true);
      socket.write(`GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    const parser = new FrameParser();
    let head = Buffer.alloc(0);
    let upgraded = false;
    let text: Buffer[] | null = null;
    socket.on('data', (chunk: Buffer) => {
      if (!upgraded) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        upgraded = true;
        chunk = head.subarray(end + 4);
      }
      parser.push(chunk);
      for (let f = parser.next(); f !== null; f = parser.next()) {
        const violation = f.rsv !== 0 || (f.opcode > 2 && f.opcode < 8) || f.opcode > 10;
        if (violation && !broken.ignoreViolations) return void socket.end(encodeFrame({ op: OP.close, data: closePayload(1002) }, mask));
        if (f.opcode === OP.close) return void socket.write(encodeFrame({ op: OP.close, data: f.data.subarray(0, 2) }, mask));
        if (f.opcode === OP.ping) socket.write(encodeFrame({ op: OP.pong, data: broken.emptyPongs ? Buffer.alloc(0) : f.data }, mask));
        else if (f.opcode <= 2) {
          if (f.opcode === OP.text) text = [];
          else if (f.opcode === OP.binary) text = null;
          if (text !== null) text.push(f.data);
          if (f.fin && text !== null && !broken.noUtf8Check && !isUtf8(Buffer.concat(text))) {
            return void socket.end(encodeFrame({ op: OP.close, data: closePayload(1007) }, mask));
          }
          if (f.fin) text = null;
          socket.write(encodeFrame({ op: f.opcode, fin: f.fin, data: f.data }, mask));
        }
      }
    });
    return { exit, stderr: () => '', kill: () => socket.destroy() };
  };
}
