/**
 * Decompression bombs against a `listen()` server with permessage-deflate, in a process of its
 * own (so its memory figures are its own: AVA runs test files in worker threads of one
 * process). A small compressed message that inflates to far more than `maxMessageSize` must
 * fail with 1009 as soon as the limit is passed: the server's peak RSS stays near the limit,
 * its zlib stream stops consuming input and is freed, and it all takes milliseconds.
 * (maxInflateRatio is off here: this is maxMessageSize's test; zlib-budget.test.ts has the ratio's.)
 *
 * Default: 64 MiB of zeros (~64 KB compressed) against maxMessageSize 1 MiB.
 * LOAD_FULL=1: 1 GiB of zeros (~1 MB compressed) against maxMessageSize 16 MiB, eight at once too.
 */
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import zlib from 'node:zlib';
import test, { ExecutionContext } from 'ava';
import { AsyncSocket, Opcode, connect, readData, sendFrame } from '../../src/index';
import { FULL, KiB, MiB, fmt, within } from './harness';

const ROOT = path.resolve(__dirname, '..', '..');
const BOMB = FULL ? 1024 * MiB : 64 * MiB;
const LIMIT = FULL ? 16 * MiB : 1 * MiB;
// Peak RSS growth allowed in the server while it fails a bomb: the limit, zlib's output
// chunks and the compressed frame, with room for the noise of a Node process.
const GROWTH = FULL ? 64 * MiB : 24 * MiB;
const CONCURRENT = FULL ? 8 : 4;

/**
 * `size` zero bytes as one permessage-deflate message payload (§7.2.1): 64 MiB (or less) of
 * zeros compressed with a full flush, which stands alone and can so be repeated, then the
 * final 00 00 ff ff taken off.
 */
function zeros(size: number): Buffer {
  const seg = Math.min(size, 64 * MiB);
  if (size % seg !== 0) throw new RangeError('size must be a multiple of the segment');
  const piece = zlib.deflateRawSync(Buffer.alloc(seg), { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  const stream = Buffer.concat(Array.from({ length: size / seg }, () => piece));
  if (!stream.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff]))) throw new Error('no flush marker');
  return stream.subarray(0, stream.length - 4);
}

/** Inflates `payload` (with the tail of §7.2.2) and counts the output: checks the bomb is real. */
function inflatedSize(payload: Buffer): Promise<{ size: number; nonZero: boolean }> {
  return new Promise((resolve, reject) => {
    const inf = zlib.createInflateRaw();
    const zero = Buffer.alloc(64 * KiB);
    let size = 0;
    let nonZero = false;
    inf.on('data', (c: Buffer) => {
      size += c.length;
      if (!nonZero && !c.equals(zero.subarray(0, c.length))) nonZero = true;
    });
    inf.on('error', reject);
    inf.write(payload);
    inf.write(Buffer.from([0, 0, 0xff, 0xff]));
    inf.flush(() => {
      inf.close();
      resolve({ size, nonZero });
    });
  });
}

// ---------------------------------------------------------------------------------------
// The server process

/** What the server reports for one connection. */
interface Outcome {
  mode: string;
  error: { name: string; code?: string; closeCode?: number } | null;
  /** Bytes handed out before the error (or the message size). */
  bytes: number;
  /** From the first byte of the bomb to the failure. */
  ms: number;
  /** Compressed bytes zlib consumed: at the failure, and 300 ms later. */
  consumed: number;
  consumedLater: number;
  /** Every zlib inflate stream of the connection was destroyed. */
  streamsDestroyed: boolean;
  zlibStreams: number;
}

interface Report {
  outcomes: Outcome[];
  /** Peak RSS growth over the baseline taken when armed (VmHWM after a reset, or sampled). */
  growth: number;
  peakFrom: 'VmHWM' | 'sampled';
}

// Runs in the child (plain JS through ts-node, so it can require src/*.ts).
const CHILD = `
const fs = require('node:fs');
const { listen } = require(${JSON.stringify(path.join(ROOT, 'src'))});
const { readData, readFragment } = require(${JSON.stringify(path.join(ROOT, 'src'))});
const { PerMessageDeflate } = require(${JSON.stringify(path.join(ROOT, 'src/compression/deflate'))});
const LIMIT = Number(process.env.BOMB_LIMIT);

// Every inflate stream, by the PerMessageDeflate that made it.
const inflaters = new Map();
const make = PerMessageDeflate.prototype.makeInflater;
PerMessageDeflate.prototype.makeInflater = function () {
  const s = make.call(this);
  if (!inflaters.has(this)) inflaters.set(this, []);
  inflaters.get(this).push(s);
  return s;
};
const consumed = (d) => (inflaters.get(d) || []).reduce((n, s) => n + s.bytesWritten, 0);

function hwm() {
  try {
    return Number(/VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
  } catch {
    return null;
  }
}

let armed = null;
let sampler = null;
process.on('message', (m) => {
  if (m.cmd === 'exit') process.exit(0);
  if (m.cmd !== 'arm') return;
  for (let i = 0; i < 3; i++) global.gc();
  let reset = false;
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM (Linux 4.0+)
    reset = true;
  } catch {}
  const base = process.memoryUsage.rss();
  armed = { expect: m.expect, outcomes: [], base, reset, peak: base };
  clearInterval(sampler);
  sampler = setInterval(() => (armed.peak = Math.max(armed.peak, process.memoryUsage.rss())), 2);
  process.send({ armed: base });
});

async function serve(ws, req) {
  const mode = new URL(req.url, 'ws://x').searchParams.get('mode');
  const a = armed;
  const start = Date.now();
  let bytes = 0;
  let error = null;
  try {
    if (mode === 'fragment') {
      for (;;) {
        const f = await readFragment(ws);
        bytes += f.data.length;
        if (f.fin && f.opcode !== 9 && f.opcode !== 10) break;
      }
    } else {
      bytes = (await readData(ws)).data.length;
    }
  } catch (err) {
    error = { name: err.constructor.name, code: err.code, closeCode: err.closeCode };
  }
  const ms = Date.now() - start;
  const d = ws.deflate;
  const at = consumed(d);
  await new Promise((r) => setTimeout(r, 300));
  const streams = inflaters.get(d) || [];
  a.outcomes.push({
    mode, error, bytes, ms, consumed: at, consumedLater: consumed(d),
    streamsDestroyed: streams.every((s) => s.destroyed), zlibStreams: d.zlibStreams
  });
  if (a.outcomes.length === a.expect) {
    a.peak = Math.max(a.peak, process.memoryUsage.rss());
    const h = a.reset ? hwm() : null;
    process.send({ report: { outcomes: a.outcomes, growth: (h === null ? a.peak : h) - a.base, peakFrom: h === null ? 'sampled' : 'VmHWM' } });
  }
}

listen(
  { host: '127.0.0.1', port: 0, perMessageDeflate: true, maxMessageSize: LIMIT, maxFrameSize: LIMIT, maxInflateRatio: 0, onError() {} },
  serve
).then((server) => process.send({ ready: server.port }));
`;

interface Server {
  port: number;
  /** Takes the memory baseline; the report comes once `expect` connections are done. */
  arm(expect: number): Promise<() => Promise<Report>>;
}

async function startBombServer(t: ExecutionContext): Promise<Server> {
  const child: ChildProcess = spawn(process.execPath, ['--expose-gc', '-r', 'ts-node/register/transpile-only', '-e', CHILD], {
    cwd: ROOT,
    env: { ...process.env, BOMB_LIMIT: String(LIMIT) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  });
  t.teardown(() => {
    if (child.connected) child.send({ cmd: 'exit' });
    setTimeout(() => child.kill('SIGKILL'), 2000).unref();
  });
  const next = <T>(key: string, what: string, ms = 30_000): Promise<T> =>
    within(
      new Promise<T>((resolve, reject) => {
        const onMessage = (m: Record<string, unknown>): void => {
          if (!(key in m)) return;
          child.off('message', onMessage);
          resolve(m[key] as T);
        };
        child.on('message', onMessage);
        child.once('exit', (code) => reject(new Error(`the server child exited with ${code}`)));
      }),
      what,
      ms
    );
  const port = await next<number>('ready', 'the server child to listen');
  return {
    port,
    async arm(expect) {
      const armed = next<number>('armed', 'the server child to take its baseline');
      child.send({ cmd: 'arm', expect });
      await armed;
      const report = next<Report>('report', 'the server child to report', FULL ? 120_000 : 30_000);
      return () => report;
    }
  };
}

/** Sends the compressed `payload` as one message: one frame, or frames of `frameSize` bytes. */
async function sendBomb(ws: AsyncSocket, payload: Buffer, frameSize = payload.length): Promise<void> {
  for (let off = 0; off < payload.length; off += frameSize) {
    const first = off === 0;
    const fin = off + frameSize >= payload.length;
    await sendFrame(ws, first ? Opcode.Binary : Opcode.Cont, payload.subarray(off, off + frameSize), { fin, rsv1: first });
  }
}

/** Our client's view: the server's Close code, read after the bomb. */
async function closeCode(ws: AsyncSocket): Promise<number> {
  for (;;) {
    const m = await within(readData(ws), 'the Close from the server', 30_000);
    if (m.opcode === Opcode.Close) return m.data.readUInt16BE(0);
  }
}

function checkOutcome(t: ExecutionContext, o: Outcome, payload: number, label: string): void {
  t.is(o.error?.name, 'PayloadTooBigError', `${label}: ${JSON.stringify(o)}`);
  t.is(o.error?.code, 'WS_ERR_MESSAGE_TOO_BIG', label);
  t.is(o.error?.closeCode, 1009, label);
  // zlib stopped: it consumed a small part of the input (the limit's worth is ~1/1000 of the
  // bomb; a whole frame may be written before the first output comes), and nothing more after.
  t.true(o.consumed < payload / 4, `${label}: zlib consumed ${fmt(o.consumed)} of ${fmt(payload)}`);
  t.is(o.consumedLater, o.consumed, `${label}: zlib went on after the failure`);
  t.true(o.streamsDestroyed, `${label}: an inflate stream was left open`);
  t.is(o.zlibStreams, 0, label);
  // Milliseconds when idle; generous for a loaded machine (what zlib consumed is the sharp check).
  t.true(o.ms < 15_000, `${label}: ${o.ms} ms`);
}

let bomb: Buffer;

test.before(async () => {
  bomb = zeros(BOMB);
});

test(`the bomb is a valid permessage-deflate payload: ${fmt(BOMB)} of zeros`, async (t) => {
  t.true(bomb.length < BOMB / 900, `${fmt(bomb.length)} compressed`);
  t.deepEqual(await inflatedSize(bomb), { size: BOMB, nonZero: false });
});

test(`${fmt(BOMB)} of zeros against maxMessageSize ${fmt(LIMIT)}: 1009, bounded memory, zlib stopped`, async (t) => {
  const server = await startBombServer(t);
  const cases: Array<[string, string, number]> = [
    ['one frame, readData', 'message', bomb.length],
    ['16 KiB frames, readData', 'message', 16 * KiB],
    ['one frame, readFragment', 'fragment', bomb.length]
  ];
  for (const [label, mode, frameSize] of cases) {
    const report = await server.arm(1);
    const ws = await connect(`ws://127.0.0.1:${server.port}/?mode=${mode}`, { perMessageDeflate: true });
    t.teardown(() => ws.destroy());
    t.not(ws.deflate, null);
    const sent = sendBomb(ws, bomb, frameSize).catch(() => undefined); // the server may close first
    t.is(await closeCode(ws), 1009, label);
    await sent;
    const r = await report();
    t.log(`${label}: failed in ${r.outcomes[0]!.ms} ms after ${fmt(r.outcomes[0]!.bytes)}, zlib consumed ${fmt(r.outcomes[0]!.consumed)}, peak RSS +${fmt(r.growth)} (${r.peakFrom})`);
    checkOutcome(t, r.outcomes[0]!, bomb.length, label);
    t.true(r.growth < GROWTH, `${label}: peak RSS grew ${fmt(r.growth)}`);
  }
});

test(`${CONCURRENT} bombs at once: each fails with 1009, memory stays within ${CONCURRENT} limits`, async (t) => {
  const server = await startBombServer(t);
  const report = await server.arm(CONCURRENT);
  const clients = await Promise.all(
    Array.from({ length: CONCURRENT }, () => connect(`ws://127.0.0.1:${server.port}/?mode=message`, { perMessageDeflate: true }))
  );
  t.teardown(() => clients.forEach((ws) => ws.destroy()));
  const codes = await Promise.all(
    clients.map(async (ws) => {
      const sent = sendBomb(ws, bomb).catch(() => undefined);
      const code = await closeCode(ws);
      await sent;
      return code;
    })
  );
  t.deepEqual(codes, clients.map(() => 1009));
  const r = await report();
  t.log(`peak RSS +${fmt(r.growth)} (${r.peakFrom}); times ${r.outcomes.map((o) => o.ms).join(', ')} ms`);
  for (const [i, o] of r.outcomes.entries()) checkOutcome(t, o, bomb.length, `connection ${i}`);
  t.true(r.growth < GROWTH + CONCURRENT * (LIMIT + 4 * MiB), `peak RSS grew ${fmt(r.growth)}`);
});

test(`a message of exactly ${fmt(LIMIT)} of zeros still gets through (the limit is not a blanket refusal)`, async (t) => {
  const server = await startBombServer(t);
  const report = await server.arm(1);
  const ws = await connect(`ws://127.0.0.1:${server.port}/?mode=message`, { perMessageDeflate: true });
  t.teardown(() => ws.destroy());
  await sendBomb(ws, zeros(LIMIT));
  const r = await report();
  t.deepEqual([r.outcomes[0]!.error, r.outcomes[0]!.bytes], [null, LIMIT]);
});
