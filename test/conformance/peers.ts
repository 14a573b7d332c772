/**
 * The programs under test and how the suite reaches them: `wsframe echo-server` (the suite
 * connects as a client), `wsframe echo-client` (the suite listens and the client connects,
 * one process per case), and a deliberately broken echo server that shows the suite fails
 * what it should.
 */
import { isUtf8 } from 'node:buffer';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { clientUpgrade, serverAccept } from '../helpers/upgrade';
import { Conn, ExtraCheck } from './driver';
import { FrameParser, closePayload, encodeFrame } from './wire';
import { OP } from './types';

const ROOT = path.resolve(__dirname, '..', '..');

/** Large enough for the 16 MiB cases of section 9 (and their fragments). */
export const MAX_MESSAGE_SIZE = 20 * 1024 * 1024;

/** A connected, upgraded socket for one case, and what else to check once it ended. */
export interface CaseConnection {
  conn: Conn;
  extra?: ExtraCheck;
}

export type Connector = (caseId: string) => Promise<CaseConnection>;

function collect(child: ChildProcess): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return { out: () => out, err: () => err };
}

/** A running `wsframe echo-server --port 0`, started through ts-node as a user would in dev. */
export interface EchoServer {
  port: number;
  url: string;
  stderr: () => string;
  stop(): Promise<void>;
}

export async function startEchoServer(): Promise<EchoServer> {
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', 'src/cli.ts', 'echo-server', '--port', '0', '--max-message-size', String(MAX_MESSAGE_SIZE)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }
  );
  const io = collect(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo-server printed no URL in 30 s: ${io.out()} ${io.err()}`)), 30_000);
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

/** Suite as client: one fresh connection to the server per case. */
export function clientConnector(port: number): Connector {
  return async () => {
    const { socket, response } = await clientUpgrade(port);
    return { conn: new Conn(socket, 'client', response.head) };
  };
}

/**
 * Transpiles src/ once into a temporary directory (as ts-node's transpile-only mode does)
 * so that one echo-client process per case starts in ~0.1 s instead of ~1.4 s: the
 * TypeScript compiler is what takes the time, not wsframe. Returns the path of cli.js.
 */
export function transpileCli(): { cli: string; cleanup: () => void } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const out = mkdtempSync(path.join(os.tmpdir(), 'wsframe-conformance-cli-'));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const js = ts.transpileModule(readFileSync(file, 'utf8'), {
          fileName: file,
          compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true }
        }).outputText;
        const target = path.join(out, path.relative(path.join(ROOT, 'src'), file)).replace(/\.ts$/, '.js');
        mkdirSync(path.dirname(target), { recursive: true });
        writeFileSync(target, js);
      }
    }
  };
  walk(path.join(ROOT, 'src'));
  return { cli: path.join(out, 'cli.js'), cleanup: () => rmSync(out, { recursive: true, force: true }) };
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
  private pending = new Map<string, (s: { socket: net.Socket; head: Buffer }) => void>();
  private children = new Set<ChildProcess>();
  port = 0;

  constructor(private readonly cli: string) {
    this.server.on('connection', (socket) => {
      socket.on('error', () => {});
      serverAccept(socket).then(
        (request) => {
          const id = decodeURIComponent(request.startLine.split(' ')[1]!.replace(/^\/case\//, ''));
          const resolve = this.pending.get(id);
          if (resolve) {
            this.pending.delete(id);
            resolve({ socket, head: request.head });
          } else socket.destroy();
        },
        () => socket.destroy()
      );
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Starts one echo client on `url`: by default a `wsframe echo-client` process. */
  private spawnCli(url: string): Launched {
    const child = spawn(process.execPath, [this.cli, 'echo-client', url, '--max-message-size', String(MAX_MESSAGE_SIZE)], {
      stdio: ['ignore', 'pipe', 'pipe']
    });
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

  connector(launch: (url: string) => Launched = (url) => this.spawnCli(url)): Connector {
    return async (caseId) => {
      const accepted = new Promise<{ socket: net.Socket; head: Buffer }>((resolve) => this.pending.set(caseId, resolve));
      const client = launch(`ws://127.0.0.1:${this.port}/case/${caseId}`);
      const timer = { id: undefined as NodeJS.Timeout | undefined };
      const { socket, head } = await Promise.race([
        accepted,
        client.exit.then((code) => {
          throw new Error(`echo-client exited with ${code} before connecting: ${client.stderr().trim()}`);
        }),
        new Promise<never>((_, reject) => {
          timer.id = setTimeout(() => reject(new Error('echo-client did not connect within 20 s')), 20_000);
        })
      ]).finally(() => {
        clearTimeout(timer.id);
        this.pending.delete(caseId);
      });
      const extra: ExtraCheck = async (failExpected) => {
        let t: NodeJS.Timeout | undefined;
        const code = await Promise.race([client.exit, new Promise<'timeout'>((r) => (t = setTimeout(() => r('timeout'), 5000)))]);
        clearTimeout(t);
        if (code === 'timeout') {
          client.kill();
          return { reasons: ['echo-client did not exit within 5 s of the connection closing'], exitCode: null };
        }
        const stderr = client.stderr().trim().split('\n').pop() ?? '';
        if (!failExpected && code !== 0) return { reasons: [`echo-client exited with ${code} after what should be a clean close: ${stderr}`], exitCode: code };
        if (failExpected && code === 0) return { reasons: ['echo-client exited 0 (clean close) after a protocol violation'], exitCode: code };
        return { reasons: [], exitCode: code };
      };
      return { conn: new Conn(socket, 'server', head), extra };
    };
  }

  async close(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
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
 * A tiny, broken echo server written on raw sockets: it echoes each data frame as it comes
 * (so fragmentation is kept), answers Close with the same payload and ends TCP. Never use
 * it for anything but showing the suite's teeth.
 */
export async function startBrokenEchoServer(broken: Breakage): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    serverAccept(socket).then(
      (request) => {
        const parser = new FrameParser();
        let text: Buffer[] | null = null; // pieces of the text message in progress
        const onData = (chunk: Buffer): void => {
          parser.push(chunk);
          for (let f = parser.next(); f !== null; f = parser.next()) {
            const violation = f.rsv !== 0 || (f.opcode > 2 && f.opcode < 8) || f.opcode > 10;
            if (violation && !broken.ignoreViolations) {
              socket.end(encodeFrame({ op: OP.close, data: closePayload(1002) }, false));
              return;
            }
            if (f.opcode === OP.close) {
              socket.end(encodeFrame({ op: OP.close, data: f.data.length >= 2 ? f.data.subarray(0, 2) : Buffer.alloc(0) }, false));
              return;
            }
            if (f.opcode === OP.ping) socket.write(encodeFrame({ op: OP.pong, data: broken.emptyPongs ? Buffer.alloc(0) : f.data }, false));
            else if (f.opcode <= 2) {
              if (f.opcode === OP.text) text = [];
              else if (f.opcode === OP.binary) text = null;
              if (text !== null) text.push(f.data);
              if (f.fin && text !== null && !broken.noUtf8Check && !isUtf8(Buffer.concat(text))) {
                socket.end(encodeFrame({ op: OP.close, data: closePayload(1007) }, false));
                return;
              }
              if (f.fin) text = null;
              socket.write(encodeFrame({ op: f.opcode, fin: f.fin, data: f.data }, false));
            }
          }
        };
        socket.on('data', onData);
        if (request.head.length > 0) onData(request.head);
        socket.resume();
      },
      () => socket.destroy()
    );
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
