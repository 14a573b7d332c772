/**
 * Child processes for the loopback rows: transpiles `bench/peer.ts` and `src/` once per run,
 * starts peers with `fork`, talks to them over IPC with a time limit on every request, and
 * kills every child that is still running when the benchmark ends, however it ends.
 *
 * Why transpile instead of running children through ts-node or using `dist/`: ts-node spends
 * ~1.4 s of CPU compiling src/ in every child (and the TypeScript compiler would sit in the
 * children's heaps, which the memory row measures), and `dist/` is whatever `npm run build`
 * produced last, not necessarily the src/ being measured. `ts.transpileModule` over src/
 * (what ts-node's transpile-only mode does, and what test/conformance does for its echo
 * clients) takes well under a second. The output goes to `.bench-out/peer-js-<pid>/`
 * (gitignored) inside the repository, so that `ws` and `bufferutil` resolve from its
 * node_modules; it is removed on exit.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PeerImpl, Ready, Reply, RequestBody, TlsEnv } from './peer';
import { transpileTree } from '../test/helpers/transpile';

const ROOT = path.join(__dirname, '..');
const live = new Set<ChildProcess>();
let outDir: string | null = null;
let peerJs: string | null = null;
let profileDir: string | null = null;
let spawned = 0;

function killAll(): void {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  live.clear();
  if (outDir !== null) rmSync(outDir, { recursive: true, force: true });
  outDir = null;
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Children write a V8 CPU profile into `dir` (`--prof-children DIR`). */
export function profileChildrenInto(dir: string): void {
  profileDir = path.resolve(dir);
  mkdirSync(profileDir, { recursive: true });
}

function transpile(): string {
  if (peerJs !== null) return peerJs;
  const dir = path.join(ROOT, '.bench-out', `peer-js-${process.pid}`);
  outDir = dir;
  const js = transpileTree(dir, [path.join(ROOT, 'bench', 'peer.ts')]);
  peerJs = js(path.join(ROOT, 'bench', 'peer.ts'));
  return peerJs;
}

/** A running child: `call` sends one request and resolves with its result. */
export interface Peer {
  readonly ready: Ready;
  readonly pid: number;
  call<T>(req: RequestBody, timeoutMs: number): Promise<T>;
  /** Asks the child to exit (so a CPU profile is written), then kills it after 5 s. */
  stop(): Promise<void>;
}

/**
 * Starts `peer.js` with `args` ('server wsframe [deflate] [http2] [tls]', 'client',
 * 'connector') and `env` added to ours; resolves when it is ready.
 */
export function startPeer(args: string[], startTimeoutMs = 15_000, env: Record<string, string | undefined> = {}): Promise<Peer> {
  const script = transpile();
  const name = `${args.join('-')}-${++spawned}`;
  const execArgv = ['--expose-gc'];
  if (profileDir !== null) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`);
  // Children's output goes to our stderr, so the table on stdout stays clean.
  const child = fork(script, args, { execArgv, stdio: ['ignore', 2, 2, 'ipc'], env: { ...process.env, ...env } });
  live.add(child);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 0;
  let exited: Error | null = null;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      exited = new Error(`peer ${name} exited (${signal ?? code})`);
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(exited);
      }
      pending.clear();
      resolve();
    });
  });
  child.on('error', () => {});

  return new Promise<Peer>((resolve, reject) => {
    const startTimer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`peer ${name} not ready within ${startTimeoutMs} ms`));
    }, startTimeoutMs);
    void exitPromise.then(() => {
      clearTimeout(startTimer);
      reject(exited);
    });
    child.on('message', (msg: Reply | Ready) => {
      if ('ready' in msg) {
        clearTimeout(startTimer);
        resolve(peer(msg));
        return;
      }
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`peer ${name}: ${msg.error}`));
    });
  });

  function peer(ready: Ready): Peer {
    return {
      ready,
      pid: child.pid ?? -1,
      call<T>(req: RequestBody, timeoutMs: number): Promise<T> {
        if (exited) return Promise.reject(exited);
        const id = ++nextId;
        return new Promise<T>((resolve, reject) => {
          const timer = setTimeout(() => {
            pending.delete(id);
            child.kill('SIGKILL');
            reject(new Error(`peer ${name}: no answer to ${req.cmd} within ${timeoutMs} ms (killed)`));
          }, timeoutMs);
          pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
          child.send({ ...req, id });
        });
      },
      async stop(): Promise<void> {
        if (exited) return;
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        try {
          child.send({ cmd: 'exit', id: ++nextId });
        } catch {
          child.kill('SIGKILL');
        }
        await exitPromise;
        clearTimeout(killer);
      }
    };
  }
}

/**
 * Where the loopback rows' processes run. On this kind of machine (a 2-vCPU VM) a wake-up on
 * the other CPU costs about 65 µs: a raw node:net echo, one 22-byte message in flight,
 * measured 27-32 µs per round trip with both processes on one CPU and 91-100 µs on two, and
 * left to the scheduler it was either, run by run. So a one-in-flight row runs both ends on
 * the first CPU we may use (the round trip is then the work of both ends plus the kernel's
 * loopback, which is what an implementation can change), and a pipelined row one end on each
 * of the first two (so both work at once). `null` when that cannot be done: not Linux, fewer
 * than 2 CPUs, no `taskset`, or no permission to set an affinity; if placing a process fails
 * later, the rest of the run goes unplaced (said on stderr).
 */
export const placement: { rtt: [string, string]; pipe: [string, string] } | null = (() => {
  if (process.platform !== 'linux' || os.availableParallelism() < 2) return null;
  try {
    // "pid 123's current affinity list: 0,1" (or "0-3"): the CPUs this process may use.
    const out = execFileSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8' });
    const list = out.slice(out.lastIndexOf(':') + 1).trim();
    const cpus = list.split(',').flatMap((part) => {
      const [a, b] = part.split('-').map(Number);
      return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
    });
    if (cpus.length < 2 || cpus.some((c) => !Number.isInteger(c))) return null;
    // Setting our own affinity to what it is already shows that we may set one at all.
    execFileSync('taskset', ['-a', '-c', '-p', list, String(process.pid)], { stdio: 'ignore' });
    const [first, second] = [String(cpus[0]), String(cpus[1])];
    return { rtt: [first, first], pipe: [first, second] };
  } catch {
    return null;
  }
})();

let placementFailed = false;

/** Moves every thread of process `pid` to the CPUs in `cpus` ('0', '0,1'); false if it could not. */
export function pinProcess(pid: number, cpus: string): boolean {
  if (placementFailed) return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch (err) {
    placementFailed = true;
    console.error(`bench: could not place process ${pid} on CPU ${cpus} (${String(err)}); the scheduler places the echo processes from here on`);
    return false;
  }
}

/** What an echo pair runs. */
export interface PairSpec {
  impl: PeerImpl;
  /** permessage-deflate on both ends. */
  deflate?: boolean;
  /** wsframe only: WebSockets over HTTP/2 (RFC 8441), h2c unless `tls`. */
  http2?: boolean;
  /** wsframe only: `wss:` with this key and self-signed certificate (PEM), which the client trusts. */
  tls?: { key: string; cert: string };
}

/** An echo server and a client connected to it, for one implementation. */
export interface EchoPair {
  impl: PeerImpl;
  /** 'wsframe', 'ws deflate', 'wsframe http2 tls', …: for messages. */
  label: string;
  server: Peer;
  client: Peer;
  /** The placement the pair's processes have now ('rtt', 'pipe'), or null before the first. */
  placedFor: 'rtt' | 'pipe' | null;
}

/** Runs the pair's server and client where {@link placement} says for `mode` (once per change). */
export function placePair(pair: EchoPair, mode: 'rtt' | 'pipe'): void {
  if (placement === null || pair.placedFor === mode) return;
  const [server, client] = placement[mode];
  pinProcess(pair.server.pid, server);
  pinProcess(pair.client.pid, client);
  pair.placedFor = mode;
}

/** Starts an echo server and a client, with one connection between them, as `spec` says. */
export async function startEchoPair(spec: PairSpec): Promise<EchoPair> {
  const { impl, deflate = false, http2 = false, tls } = spec;
  const flags = [...(deflate ? ['deflate'] : []), ...(http2 ? ['http2'] : []), ...(tls ? ['tls'] : [])];
  const env: Partial<Record<TlsEnv, string>> = tls ? { WSFRAME_BENCH_TLS: JSON.stringify(tls) } : {};
  const [server, client] = await Promise.all([startPeer(['server', impl, ...flags], 15_000, env), startPeer(['client'])]);
  try {
    await client.call({ cmd: 'open', impl, port: server.ready.port!, deflate, http2, ca: tls?.cert }, 15_000);
  } catch (err) {
    await Promise.all([server.stop(), client.stop()]);
    throw err;
  }
  return { impl, label: [impl, ...flags].join(' '), server, client, placedFor: null };
}
