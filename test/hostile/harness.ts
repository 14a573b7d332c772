/**
 * Shared pieces of the hostile tests: a `listen()` server in a child process (server-child.ts),
 * so a crash or a line on stderr is something a test can see, and raw TCP requests.
 */
import type { ExecutionContext } from 'ava';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ChildConfig } from './server-child';
import { within } from '../helpers/socket-pair';
import { ROOT, transpileTree } from '../helpers/transpile';

// The child runs a transpiled copy of src/ and server-child.ts (made once per test process):
// it starts without the TypeScript compiler, which matters on a busy machine.
let childScript: string | null = null;
function transpiledChild(): string {
  if (childScript === null) {
    const out = mkdtempSync(path.join(os.tmpdir(), 'wsframe-hostile-'));
    process.once('exit', () => rmSync(out, { recursive: true, force: true }));
    childScript = transpileTree(out, [path.join(__dirname, 'server-child.ts')])(path.join(__dirname, 'server-child.ts'));
  }
  return childScript;
}

/** A server child: its port, its messages, its stderr and whether it still runs. */
export interface Child {
  port: number;
  /** Waits for the next message of the child that has `key`; rejects if the child exits first. */
  next<T = unknown>(key: string, what: string, ms?: number): Promise<T>;
  send(cmd: string): void;
  /** What the child wrote to stderr so far. */
  stderr(): string;
  /** The exit code, or null while the child runs. */
  exitCode(): number | null;
}

/** Starts server-child.ts with these options (JSON-serialisable ones); ended with the test. */
export async function startChild(
  t: ExecutionContext,
  config: ChildConfig = {},
  nodeArgs: string[] = []
): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, transpiledChild()], {
    cwd: ROOT,
    env: { ...process.env, WSFRAME_HOSTILE: JSON.stringify(config) },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc']
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (err.length < 100_000) err += d.toString();
  });
  let exit: number | null = null;
  child.once('exit', (code, signal) => (exit = code ?? (signal ? 128 : -1)));
  t.teardown(() => {
    if (child.connected) child.send({ cmd: 'exit' });
    setTimeout(() => child.kill('SIGKILL'), 2000).unref();
  });
  const next = <T>(key: string, what: string, ms = 10_000): Promise<T> =>
    within(
      new Promise<T>((resolve, reject) => {
        const onMessage = (m: Record<string, unknown>): void => {
          if (!(key in m)) return;
          cleanup();
          resolve(m[key] as T);
        };
        const onExit = (code: number | null): void => {
          cleanup();
          reject(new Error(`the server child exited with ${code} while waiting for ${what}; stderr: ${err}`));
        };
        const cleanup = (): void => {
          child.off('message', onMessage);
          child.off('exit', onExit);
        };
        if (exit !== null) return onExit(exit);
        child.on('message', onMessage);
        child.once('exit', onExit);
      }),
      what,
      ms
    );
  const port = await next<number>('ready', 'the server child to listen', 30_000);
  return {
    port,
    next,
    send: (cmd) => void (child.connected && child.send({ cmd })),
    stderr: () => err,
    exitCode: () => exit
  };
}

/** A valid upgrade request for `target`, with extra header lines. */
export function upgradeRequest(target: string, extra: string[] = []): string {
  return [
    `GET ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    ...extra,
    '',
    ''
  ].join('\r\n');
}

/**
 * Writes `request` on a raw connection and resolves to the status line of the answer (''
 * when none came) once the server closes the connection or, for a 101, as soon as it comes.
 */
export function rawStatus(port: number, request: string): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      let got = '';
      const done = (): void => {
        s.destroy();
        resolve(got.split('\r\n')[0]!);
      };
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (got.startsWith('HTTP/1.1 101') && got.includes('\r\n\r\n')) done();
      });
      s.on('error', () => {});
      s.on('close', done);
      s.write(request);
    }),
    `an answer to ${JSON.stringify(request.split('\r\n')[0])}`
  );
}
