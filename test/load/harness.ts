/**
 * Shared pieces of the load tests: the server child (a transpiled copy of src/ and
 * server-child.ts, forked with --expose-gc and driven over IPC), many client connections,
 * and the mixed-size message exchange that checks order and content with hashes.
 */
import { ChildProcess, fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AsyncSocket, CloseResult, ListenOptions, Opcode, close, connect, readData, sendBinary, sendFragmented, sendText } from '../../src/index';
import { prng } from '../conformance/wire';
import type { ConnStats, ErrorRecord, MemSample, Rpc } from './server-child';
import { transpileTree } from '../helpers/transpile';
import { delay, until, within } from '../helpers/wait';

/** True for the full run (1,000 x 100 and 2,000 idle connections): LOAD_FULL=1. */
export const FULL = process.env.LOAD_FULL === '1';

// The bounded waits of the other tests (load tests always give `within` and `until` their bound).
export { delay, until, within };

let transpiled: { dir: string; refs: number } | null = null;

/**
 * Transpiles src/ and server-child.ts once per test process into a temporary directory (as
 * ts-node's transpile-only mode does), so the server child starts in ~0.1 s without the
 * TypeScript compiler and its memory figures are the library's, not ts-node's.
 */
function transpileOnce(): string {
  if (transpiled !== null) {
    transpiled.refs++;
    return transpiled.dir;
  }
  const out = mkdtempSync(path.join(os.tmpdir(), 'wsframe-load-'));
  transpileTree(out, [path.join(__dirname, 'server-child.ts')]);
  transpiled = { dir: out, refs: 1 };
  return out;
}

function releaseTranspiled(): void {
  if (transpiled !== null && --transpiled.refs === 0) {
    rmSync(transpiled.dir, { recursive: true, force: true });
    transpiled = null;
  }
}

/** A running server child. */
export interface ServerHandle {
  port: number;
  url(pathAndQuery?: string): string;
  /** Memory of the server process; `gc` collects garbage first (three full collections). */
  mem(gc?: boolean): Promise<MemSample>;
  /** Figures of the `/push`, `/hold` and counted connections whose id starts with `prefix`. */
  stats(prefix?: string): Promise<Record<string, ConnStats>>;
  release(prefix?: string): Promise<void>;
  stopPushing(prefix?: string): Promise<void>;
  errors(): Promise<ErrorRecord[]>;
  stderr(): string;
  /** Closes the server (1001 to open connections) and ends the child; idempotent. */
  stop(): Promise<{ unhandled: number } | null>;
}

/** Starts the server child with these `listen()` options (JSON-serialisable ones). */
export async function startServer(options: Partial<ListenOptions> = {}): Promise<ServerHandle> {
  const dir = transpileOnce();
  const child: ChildProcess = fork(path.join(dir, 'test', 'load', 'server-child.js'), [], {
    execArgv: ['--expose-gc'],
    env: { ...process.env, WSFRAME_LOAD_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc']
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (err.length < 100_000) err += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let port = 0;
  const ready = new Promise<number>((resolve, reject) => {
    child.on('message', (m: { ready?: number; id?: number; result?: unknown }) => {
      if (m.ready !== undefined) resolve(m.ready);
      else if (m.id !== undefined) {
        const p = pending.get(m.id);
        pending.delete(m.id);
        p?.resolve(m.result);
      }
    });
    child.once('exit', (code) => {
      const e = new Error(`server child exited with ${code}: ${err}`);
      reject(e);
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    });
  });
  try {
    port = await within(ready, 'the server child to listen', 30_000);
  } catch (e) {
    child.kill('SIGKILL');
    releaseTranspiled();
    throw e;
  }

  function rpc<T>(cmd: Rpc['cmd'], arg?: string, gc?: boolean, ms = 30_000): Promise<T> {
    if (!child.connected) return Promise.reject(new Error(`server child is gone: ${err}`));
    const id = nextId++;
    const answer = new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    const msg: Rpc = { id, cmd, arg, gc };
    child.send(msg);
    return within(answer, `the server child to answer ${cmd}`, ms).finally(() => pending.delete(id));
  }

  let stopped: Promise<{ unhandled: number } | null> | null = null;
  return {
    port,
    url: (p = '/echo') => `ws://127.0.0.1:${port}${p}`,
    mem: (gc = true) => rpc<MemSample>('mem', undefined, gc),
    stats: (prefix) => rpc<Record<string, ConnStats>>('stats', prefix),
    release: (prefix) => rpc<void>('release', prefix),
    stopPushing: (prefix) => rpc<void>('stop', prefix),
    errors: () => rpc<ErrorRecord[]>('errors'),
    stderr: () => err,
    stop() {
      stopped ??= (async () => {
        let result: { unhandled: number } | null = null;
        try {
          result = await rpc<{ unhandled: number }>('close', undefined, false, 15_000);
        } catch {
          // gone already, or stuck: killed below
        }
        if (child.connected) child.disconnect();
        await Promise.race([exited, delay(3000)]);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await Promise.race([exited, delay(3000)]);
        }
        releaseTranspiled();
        return result;
      })();
      return stopped;
    }
  };
}

/** Opens `n` connections with at most `parallel` handshakes in flight; destroys them all if one fails. */
export async function openMany(url: string, n: number, parallel = 64): Promise<AsyncSocket[]> {
  const out: AsyncSocket[] = [];
  let next = 0;
  let failed: unknown = null;
  const worker = async (): Promise<void> => {
    while (next < n && failed === null) {
      next++;
      try {
        out.push(await connect(url, { timeout: 20_000 }));
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  if (failed !== null) {
    for (const ws of out) ws.destroy();
    throw failed;
  }
  return out;
}

// Message contents: slices of fixed random pools, so making 100,000 messages costs copies only.
const BINARY_POOL = randomBytes(128 * 1024);
const TEXT_POOL = (() => {
  const units = ['a', 'b', 'z', ' ', '0', 'é', 'ß', 'ж', '€', '中', '𝄞', '😀'].map((u) => Buffer.from(u, 'utf8'));
  const r = prng(7);
  const parts: Buffer[] = [];
  let n = 0;
  while (n < 128 * 1024) {
    const u = units[Math.floor(r() * units.length)]!;
    parts.push(u);
    n += u.length;
  }
  return Buffer.concat(parts);
})();

// Moves `i` back to the start of a UTF-8 character in TEXT_POOL.
function charStart(i: number): number {
  while (i > 0 && (TEXT_POOL[i]! & 0xc0) === 0x80) i--;
  return i;
}

/** A message size from a mix skewed to small ones: 0-125 B, to 4 KiB, to 16 KiB, to 64 KiB (both 16-bit length edges). */
export function mixedSize(r: () => number): number {
  const x = r();
  if (x < 0.4) return Math.floor(r() * 126);
  if (x < 0.7) return 126 + Math.floor(r() * (4096 - 126));
  if (x < 0.9) return 4096 + Math.floor(r() * (16384 - 4096));
  if (x < 0.93) return 65535 + Math.floor(r() * 2); // 65535 and 65536: the 16/64-bit length switch
  return 16384 + Math.floor(r() * (65536 - 16384));
}

/** One message to send: its opcode, payload and the SHA-256 that the echo must match. */
export interface Outgoing {
  opcode: typeof Opcode.Text | typeof Opcode.Binary;
  payload: Buffer | string;
  hash: string;
  size: number;
  /** Fragment size when sent with sendFragmented, else 0 (one frame). */
  fragment: number;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * Message `seq` of connection `conn`: binary carries (conn, seq) in its first 8 bytes, text
 * starts with "conn:seq:"; the rest is pool data. About 15% go out fragmented.
 */
export function makeMessage(conn: number, seq: number, r: () => number): Outgoing {
  const size = mixedSize(r);
  const text = r() < 0.4;
  let payload: Buffer | string;
  let bytes: Buffer;
  if (text) {
    const prefix = `${conn}:${seq}:`;
    const start = charStart(Math.floor(r() * (TEXT_POOL.length - 70_000)));
    const end = charStart(start + Math.max(0, size - prefix.length));
    payload = prefix + TEXT_POOL.toString('utf8', start, end);
    bytes = Buffer.from(payload, 'utf8');
  } else {
    bytes = Buffer.allocUnsafe(size);
    const start = Math.floor(r() * (BINARY_POOL.length - size));
    BINARY_POOL.copy(bytes, 0, start, start + size);
    if (size >= 8) {
      bytes.writeUInt32BE(conn, 0);
      bytes.writeUInt32BE(seq, 4);
    }
    payload = bytes;
  }
  let fragment = 0;
  if (bytes.length > 0 && r() < 0.15) {
    // 1 byte to 16 KiB per frame, but at most 64 frames per message.
    fragment = Math.max(Math.ceil(bytes.length / 64), 1 + Math.floor(r() * Math.min(bytes.length, 16384)));
  }
  return { opcode: text ? Opcode.Text : Opcode.Binary, payload, hash: sha256(bytes), size: bytes.length, fragment };
}

/** What one connection's exchange did. */
export interface ExchangeResult {
  messages: number;
  bytes: number;
  fragmented: number;
  close: CloseResult;
}

/**
 * Sends `count` mixed messages on `ws` (at most `window` unanswered) while reading their
 * echoes, checks each echo's type, sequence and SHA-256 against what was sent at that
 * position (`onEcho` is called after each), then closes with 1000 and returns the close result.
 */
export async function exchange(
  ws: AsyncSocket,
  conn: number,
  count: number,
  window = 8,
  onEcho?: () => void,
  seed = 1
): Promise<ExchangeResult> {
  const r = prng((seed * 1_000_003 + conn) >>> 0);
  const sent: Outgoing[] = [];
  let received = 0;
  let bytes = 0;
  let fragmented = 0;
  let wake = null as (() => void) | null; // (assigned in a callback, which TypeScript does not track)
  let readerFailed: unknown = null;
  const reader = (async () => {
    try {
      while (received < count) {
        const m = await readData(ws);
        if (m.opcode !== Opcode.Text && m.opcode !== Opcode.Binary) {
          if (m.opcode === Opcode.Close) throw new Error(`conn ${conn}: the server closed after ${received} echoes`);
          continue; // pings and pongs: answered already
        }
        const want = sent[received];
        if (want === undefined) throw new Error(`conn ${conn}: echo ${received} arrived before its message was sent`);
        if (m.opcode !== want.opcode) throw new Error(`conn ${conn}: echo ${received} has opcode ${m.opcode}, sent ${want.opcode}`);
        if (m.data.length !== want.size) {
          throw new Error(`conn ${conn}: echo ${received} has ${m.data.length} bytes, sent ${want.size}`);
        }
        if (want.opcode === Opcode.Binary && want.size >= 8) {
          const c = m.data.readUInt32BE(0);
          const s = m.data.readUInt32BE(4);
          if (c !== conn || s !== received) throw new Error(`conn ${conn}: echo ${received} carries conn ${c} seq ${s}`);
        } else if (want.opcode === Opcode.Text && !m.data.toString('latin1', 0, 24).startsWith(`${conn}:${received}:`)) {
          throw new Error(`conn ${conn}: text echo ${received} starts ${JSON.stringify(m.data.toString('utf8', 0, 24))}`);
        }
        if (sha256(m.data) !== want.hash) throw new Error(`conn ${conn}: echo ${received} differs from what was sent (SHA-256)`);
        received++;
        bytes += m.data.length;
        sent[received - 1] = undefined as unknown as Outgoing; // let it go
        onEcho?.();
        wake?.();
      }
    } catch (err) {
      readerFailed = err;
      wake?.();
      throw err;
    }
  })();
  reader.catch(() => undefined); // awaited below; never left unhandled while the writer waits
  try {
    for (let seq = 0; seq < count; seq++) {
      while (seq - received >= window && readerFailed === null) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
      if (readerFailed !== null) throw readerFailed;
      const m = makeMessage(conn, seq, r);
      sent.push(m);
      if (m.fragment > 0) {
        fragmented++;
        await sendFragmented(ws, m.opcode, m.payload, m.fragment);
      } else if (m.opcode === Opcode.Text) {
        await sendText(ws, m.payload as string);
      } else {
        await sendBinary(ws, m.payload as Buffer);
      }
    }
    await reader;
  } catch (err) {
    ws.destroy();
    throw err;
  }
  const result = await close(ws, 1000, 'done');
  return { messages: received, bytes, fragmented, close: result };
}

/** Counts unhandled rejections in this process from now on; `stop()` removes the listener. */
export function countUnhandled(): { count: () => number; errors: unknown[]; stop: () => void } {
  const errors: unknown[] = [];
  const onRejection = (err: unknown): void => {
    errors.push(err);
  };
  process.on('unhandledRejection', onRejection);
  return { count: () => errors.length, errors, stop: () => process.off('unhandledRejection', onRejection) };
}

export const MiB = 1024 * 1024;
export const KiB = 1024;

/** Bytes as "12.3 MiB" / "4.5 KiB". */
export function fmt(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (abs >= KiB) return `${(bytes / KiB).toFixed(1)} KiB`;
  return `${Math.round(bytes)} B`;
}
