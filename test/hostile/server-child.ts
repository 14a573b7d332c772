/**
 * The server side of the hostile tests that need their own process: a `listen()` echo server
 * whose crash or stderr output is the parent's to observe (see harness.ts). Options come as
 * JSON in the environment; `verify: 'hold'` makes every verify wait until the parent sends
 * `release`. Messages to the parent: `{ ready: port }`, `{ verifying: n }` when a verify
 * starts, `{ upgradeClosed: n }` when a socket handed to 'upgrade' closes, `{ pong }`, and
 * `{ mem }` (see {@link ChildMemory}) for `mem` (after a full GC when run with --expose-gc);
 * `peak` resets the peak RSS.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import { deflateLoad } from '../../src/compression/zlib-jobs';
import { Writable, pipeline } from 'node:stream';
import { AsyncSocket, ListenOptions, Opcode, ZlibLimits, handleEvents, listen, messages, sendBinary, sendText, setZlibLimits, toDuplex } from '../../src/index';

/** What the parent asks of the child (JSON in the environment). */
export interface ChildConfig {
  options?: Partial<ListenOptions>;
  verify?: 'hold';
  /**
   * The echo: `handleEvents` (the default, keeps nothing of a message once handled) or
   * README's `for await (const m of messages(ws))` loop, which keeps its last message alive
   * while it waits for the next; or `pipeline(toDuplex(ws), sink)` into a sink that never
   * finishes its first write (a stalled consumer).
   */
  loop?: 'events' | 'messages' | 'duplex-stalled';
  /** A full GC this often, in ms (needs --expose-gc). */
  gcEvery?: number;
  /** Process-wide zlib bounds (setZlibLimits). */
  zlib?: ZlibLimits;
}

const config = JSON.parse(process.env.WSFRAME_HOSTILE ?? '{}') as ChildConfig;
const send = (m: object): void => void process.send?.(m);
if (config.zlib !== undefined) setZlibLimits(config.zlib);
const gcNow = (globalThis as { gc?: () => void }).gc;
if (config.gcEvery !== undefined && gcNow !== undefined) setInterval(gcNow, config.gcEvery).unref();

/** The child's memory and CPU, as `mem` reports them. */
export interface ChildMemory {
  rss: number;
  /** Peak RSS since start or the last `peak` (Linux VmHWM; the current RSS elsewhere). */
  peakRss: number;
  heapUsed: number;
  /** Memory of Buffers and other objects outside the JS heap. */
  external: number;
  /** CPU time used since start, in ms. */
  cpuMs: number;
  /** Connections whose handler still runs. */
  open: number;
  /** Longest a connection lasted after its last message came in (of those that ended). */
  longestAfterMessage: number;
  /** The errors that ended connections, counted by `name:reason` (or `name:code`). */
  errors: Record<string, number>;
  /** The process's zlib bounds at work: amplified bytes held, evictions, refusals. */
  zlib: { amplified: number; inFlight: number; evictions: number; refusals: number };
}

function peakRss(): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
  } catch {
    return process.memoryUsage.rss();
  }
}

// After full GCs, and a turn after each for what FinalizationRegistry callbacks give back.
async function memory(): Promise<ChildMemory> {
  if (gcNow !== undefined) {
    for (let i = 0; i < 3; i++) {
      gcNow();
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  const m = process.memoryUsage();
  const cpu = process.cpuUsage();
  const { amplified, inFlight, evictions, refusals } = deflateLoad();
  return {
    rss: m.rss,
    peakRss: peakRss(),
    heapUsed: m.heapUsed,
    external: m.external,
    cpuMs: (cpu.user + cpu.system) / 1000,
    open,
    longestAfterMessage,
    errors,
    zlib: { amplified, inFlight, evictions, refusals }
  };
}

let open = 0;
let longestAfterMessage = 0;
const errors: Record<string, number> = {};
const held: (() => void)[] = [];
let verifying = 0;
let upgradeClosed = 0;

const verify =
  config.verify === 'hold'
    ? (_req: http.IncomingMessage): Promise<undefined> =>
        new Promise((resolve) => {
          held.push(() => resolve(undefined));
          send({ verifying: ++verifying });
        })
    : undefined;

// The echo is handleEvents', which keeps nothing of a message once it is handled, so what the
// process holds is the library's (a read loop of one's own may keep its last message alive
// while it waits for the next: see README, "Limits and defaults").
const countError = (err: unknown): void => {
  const e = err as { name?: string; reason?: string; code?: string };
  const key = `${e.name}:${e.reason ?? e.code}`;
  errors[key] = (errors[key] ?? 0) + 1;
};

// README's loop: the last message stays alive while it waits for the next.
async function messagesLoop(ws: AsyncSocket, seen: () => void): Promise<void> {
  try {
    for await (const m of messages(ws)) {
      seen();
      await (m.opcode === Opcode.Text ? sendText(ws, m.data.toString()) : sendBinary(ws, m.data));
    }
  } catch (err) {
    countError(err);
  }
}

listen({ ...config.options, verify }, async (ws) => {
  open++;
  let lastMessage = 0;
  const seen = (): void => void (lastMessage = Date.now());
  try {
    if (config.loop === 'messages') await messagesLoop(ws, seen);
    else if (config.loop === 'duplex-stalled') {
      await new Promise<void>((resolve) => {
        const stalled = new Writable({ write: () => seen() });
        pipeline(toDuplex(ws), stalled, (err) => {
          if (err) countError(err);
          resolve();
        });
      });
    }
    else {
      await handleEvents(ws, {
        onMessage: (w, m) => {
          seen();
          return m.opcode === Opcode.Text ? sendText(w, m.data.toString()) : sendBinary(w, m.data);
        },
        onError: (_w, err) => countError(err)
      });
    }
  } finally {
    open--;
    if (lastMessage > 0) longestAfterMessage = Math.max(longestAfterMessage, Date.now() - lastMessage);
  }
}).then((server) => {
  // Only a 'close' listener: it must not change who handles the socket's errors.
  server.httpServer.on('upgrade', (_req, socket: NodeJS.ReadableStream & { once(e: 'close', f: () => void): void }) => {
    socket.once('close', () => send({ upgradeClosed: ++upgradeClosed }));
  });
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'release') for (const resolve of held.splice(0)) resolve();
    else if (m.cmd === 'ping') send({ pong: true });
    else if (m.cmd === 'mem') void memory().then((mem) => send({ mem }));
    else if (m.cmd === 'unsent') send({ unsent: [...server.clients].map((ws) => (ws.closeQueued ? -ws.unsentBytes : ws.unsentBytes)) });
    else if (m.cmd.startsWith('broadcast ')) {
      // `broadcast N SIZE`: N broadcasts of SIZE bytes, not awaited, a thousand a turn.
      // `broadcast N SIZE random`: the same with random bytes (they do not compress).
      const [, n, size] = m.cmd.split(' ').map(Number);
      const payload = m.cmd.endsWith(' random') ? randomBytes(size!) : Buffer.alloc(size!, 0x62);
      let left = n!;
      const batch = (): void => {
        for (let i = 0; i < 1000 && left > 0; i++, left--) void server.broadcast(payload);
        if (left > 0) setImmediate(batch);
        else send({ broadcasted: n });
      };
      batch();
    }
    else if (m.cmd === 'peak') {
      try {
        writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM (Linux 4.0+)
      } catch {
        // elsewhere the peak is the current RSS
      }
    }
    else if (m.cmd === 'exit') void server.close().then(() => process.exit(0));
  });
  send({ ready: server.port });
});
