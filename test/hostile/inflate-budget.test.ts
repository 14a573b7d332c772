/**
 * Memory a peer can make us spend through permessage-deflate (issue 11, finding 3; issue 23):
 * about 16 KB on the wire is a valid 16 MiB message. 100 connections sending 2 such
 * messages each drove an echo server's RSS to 1.9 GB; 20 clients that send data inflating
 * 69× that does not recompress, and never read their echo, held 861 MiB for as long as
 * they stayed; a per-message ratio (maxInflateRatio 100, the default until issue 23)
 * refused honest messages and still let 100 read loops keep 1.7 GB at 96×.
 *
 * The bounds: the process-wide allowance of amplified bytes (`AMPLIFIED_BUDGET`: what
 * inflates past 10 bytes per byte received, while in progress and while the last message a
 * connection handed out lives), the process-wide budget of inflated bytes in flight
 * (`INFLATE_BUDGET`), and the send timeout (default 15 s) for what a peer that does not read
 * pins. The server runs in a child process, so its memory is its own.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { AMPLIFICATION_RATIO, AMPLIFIED_BUDGET, AsyncSocket, connect, DEFAULTS, Opcode, readData, recvFrame, sendBinary, sendFrame, sendText } from '../../src';
import { within } from '../helpers/socket-pair';
import { Child, startChild } from './harness';
import type { ChildConfig, ChildMemory } from './server-child';

const KiB = 1024;
const MiB = 1024 * KiB;
const fmt = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

/** 16 MiB of zeros as one permessage-deflate payload (§7.2.1): about 16 KB. */
function zeros(): Buffer {
  const z = deflateRawSync(Buffer.alloc(DEFAULTS.maxMessageSize), { level: 9, finishFlush: constants.Z_SYNC_FLUSH });
  return z.subarray(0, z.length - 4);
}

/** LSB-first bit writer for a hand-made DEFLATE stream (RFC 1951). */
class Bits {
  private readonly out: number[] = [];
  private acc = 0;
  private n = 0;
  put(value: number, count: number): void {
    for (let i = 0; i < count; i++) this.bit((value >>> i) & 1);
  }
  // Huffman codes go most significant bit first.
  code(value: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) this.bit((value >>> i) & 1);
  }
  align(): void {
    while (this.n !== 0) this.bit(0);
  }
  bytes(b: Uint8Array): void {
    this.align();
    for (const x of b) this.out.push(x);
  }
  done(): Buffer {
    this.align();
    return Buffer.from(this.out);
  }
  private bit(b: number): void {
    this.acc |= b << this.n;
    if (++this.n === 8) {
      this.out.push(this.acc);
      this.acc = 0;
      this.n = 0;
    }
  }
}

/**
 * `block` (32 KiB) as a stored block, then copies of length 258 at a distance of
 * `24577 + extra` (distance code 29) or `8193 + extra` (code 26) up to just under
 * maxMessageSize, as one permessage-deflate payload (§7.2.1).
 */
function copies(block: Buffer, code: 26 | 29, extra: number): Buffer {
  const w = new Bits();
  w.put(0, 1); // not final
  w.put(0, 2); // stored
  w.bytes(Buffer.from([block.length & 0xff, block.length >> 8, ~block.length & 0xff, (~block.length >> 8) & 0xff]));
  w.bytes(block);
  w.put(0, 1);
  w.put(1, 2); // fixed Huffman codes
  const n = Math.floor((DEFAULTS.maxMessageSize - block.length) / 258);
  for (let i = 0; i < n; i++) {
    w.code(0b11000101, 8); // length code 285: 258
    w.code(code, 5);
    w.put(extra, code === 29 ? 13 : 12);
  }
  w.code(0, 7); // end of block
  w.put(0, 3); // the empty stored block of the sync flush, less its 00 00 ff ff (§7.2.1)
  return w.done();
}

/**
 * A 32 KiB random block, then copies of it at distance 32768 (25 bits each): about 240 KB
 * that inflate 69×. zlib's compressor never looks that far back (its longest distance is
 * 32506), so the echo does not compress: it stays 16 MiB.
 */
const farCopies = (): Buffer => copies(randomBytes(32 * KiB), 29, 32768 - 24577);

/**
 * `n` random letters of a `k`-letter alphabet: 2 letters compress about 6× (under the
 * amplification ratio, so nothing of it is amplified), 8 letters about 2.4×.
 */
function letters(n: number, k: number): Buffer {
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) b[i] = 97 + (b[i]! % k);
  return b;
}

/** `data` as one permessage-deflate payload (§7.2.1): a sync flush without its tail. */
function compress(data: Buffer): Buffer {
  const z = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
  return z.subarray(0, z.length - 4);
}

/** An ordinary JSON message of `records` records (compresses about 9×). */
const json = (records: number, seed: number): Buffer =>
  Buffer.from(JSON.stringify(Array.from({ length: records }, (_, i) => ({ id: seed * records + i, name: `user ${i}`, ok: i % 3 === 0, score: (i * 7919) % 1000 }))));

const inflate = (payload: Buffer): Buffer =>
  inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: constants.Z_SYNC_FLUSH });

const mem = (child: Child): Promise<ChildMemory> => {
  const m = child.next<ChildMemory>('mem', 'the server child to report its memory', 30_000);
  child.send('mem');
  return m;
};

/**
 * The server child and `n` clients connected to it, torn down with the test; the child's
 * memory (taken after a full GC) before the clients came, and its peak RSS reset after.
 */
async function attackSetup(
  t: Parameters<typeof startChild>[0],
  n: number,
  config: ChildConfig = {}
): Promise<{ child: Child; before: ChildMemory; ws: AsyncSocket[] }> {
  const options = { host: '127.0.0.1', port: 0, perMessageDeflate: true, ...config.options };
  const child = await startChild(t, { ...config, options }, ['--expose-gc']);
  const before = await mem(child);
  const ws = await clients(t, child, n);
  child.send('peak');
  return { child, before, ws };
}

/** `n` more clients of the child, with permessage-deflate, destroyed with the test. */
async function clients(t: Parameters<typeof startChild>[0], child: Child, n: number): Promise<AsyncSocket[]> {
  const ws: AsyncSocket[] = [];
  t.teardown(() => ws.forEach((w) => w.destroy()));
  const url = `ws://127.0.0.1:${child.port}/`;
  for (let i = 0; i < n; i++) ws.push(await within(connect(url, { perMessageDeflate: true }), 'a client to connect', 30_000));
  return ws;
}

const sendCompressed = (ws: AsyncSocket, payload: Buffer): Promise<void> =>
  sendFrame(ws, Opcode.Binary, payload, { rsv1: true });

/** Reads raw frames until the echo's last frame ('echo') or the Close ('<code> <reason>'). */
async function echoOrClose(ws: AsyncSocket): Promise<string> {
  for (;;) {
    const f = await recvFrame(ws);
    if (f.opcode === Opcode.Close) return `${f.data.readUInt16BE(0)} ${f.data.subarray(2).toString()}`;
    if (f.opcode !== Opcode.Ping && f.opcode !== Opcode.Pong && f.fin) return 'echo';
  }
}

const count = (xs: string[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
};

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

test('the payloads are what they claim', (t) => {
  const z = zeros();
  t.true(z.length < 20 * KiB, `${z.length} bytes`);
  t.is(inflate(z).length, DEFAULTS.maxMessageSize);
  const low = letters(2 * MiB, 2);
  const lowRatio = low.length / compress(low).length;
  t.true(lowRatio > 4 && lowRatio < AMPLIFICATION_RATIO, `${lowRatio.toFixed(1)}x`);
  const far = farCopies();
  const f = inflate(far);
  t.true(f.length > DEFAULTS.maxMessageSize - 300 && f.length <= DEFAULTS.maxMessageSize);
  const again = deflateRawSync(f);
  t.true(again.length > f.length * 0.99, `zlib recompresses it to ${fmt(again.length)}`);
  const stall = compress(Buffer.alloc(MiB));
  t.true(stall.length > 1000 && stall.length < 1100, `${stall.length} bytes`);
  const honest = letters(4 * MiB, 8);
  const h = compress(honest).length;
  t.true(h > 1.6 * MiB && h < 1.9 * MiB, `${fmt(h)}`);
  t.log(
    `zeros: ${z.length} B -> ${fmt(DEFAULTS.maxMessageSize)}; 2 letters: ${lowRatio.toFixed(1)}x; ` +
      `far copies: ${(far.length / KiB).toFixed(0)} KiB -> ${fmt(f.length)} (${(f.length / far.length).toFixed(0)}x), recompressed ${fmt(again.length)}; ` +
      `a stalled frame: ${stall.length} B -> 1 MiB; the honest message: 4 MiB in ${fmt(h)}`
  );
});

// Issue 23: the defaults take any valid message within maxMessageSize, however well it
// compresses, from a lone peer, also while others exchange ordinary compressed messages.
test.serial('a lone peer: 16 MiB that compresses 250× and 16 MiB of zeros are echoed with the defaults while 20 connections exchange compressed JSON', async (t) => {
  t.timeout(90_000);
  const { child, ws } = await attackSetup(t, 21, { loop: 'messages' });
  const lone = ws.pop()!;
  let stop = false;
  const ordinary = ws.map(async (w, i) => {
    let n = 0;
    for (; n < 1000 && !stop; n++) {
      const m = json(400, i * 1000 + n);
      await sendText(w, m.toString());
      const back = await within(readData(w), 'an ordinary echo', 30_000);
      if (!back.data.equals(m)) throw new Error(`ordinary client ${i}: echo ${n} differs`);
    }
    return n;
  });
  const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const patterned = Buffer.allocUnsafe(DEFAULTS.maxMessageSize);
  for (let i = 0; i < patterned.length; i++) patterned[i] = i % 251;
  const results: string[] = [];
  for (const [name, data] of [
    ['pattern', patterned],
    ['zeros', Buffer.alloc(DEFAULTS.maxMessageSize)]
  ] as const) {
    const wire = (lone.socket as net.Socket).bytesWritten;
    await sendBinary(lone, data);
    const back = await within(readData(lone), `the echo of the ${name}`, 60_000);
    t.is(back.opcode, Opcode.Binary);
    t.is(digest(back.data), digest(data), `the ${name} came back intact`);
    results.push(`${name} in ${(lone.socket as net.Socket).bytesWritten - wire} B`);
  }
  stop = true;
  const counts = await within(Promise.all(ordinary), 'the ordinary clients', 30_000);
  const m = await mem(child);
  t.log(`echoed: ${results.join(', ')}; meanwhile ${counts.reduce((a, b) => a + b, 0)} JSON messages from 20 others; ${JSON.stringify(m.zlib)}`);
  t.is(m.zlib.refusals, 0);
  t.is(m.zlib.evictions, 0);
  t.deepEqual(m.errors, {});
});

// The bounds: the peak RSS of the server process while 100 connections send their bombs, and
// what it still holds 3 s after, with a full GC every second: the allowance of amplified
// bytes (128 MiB) is all that the kept messages may hold beyond 10 bytes per byte received.
const CROWD_PEAK = 512 * MiB;
const CROWD_HELD = 256 * MiB;

test.serial(
  `100 connections × 16 KB of zeros that inflate to 16 MiB, kept by README's loop: peak RSS under ${fmt(CROWD_PEAK)}, ` +
    `at most ${fmt(CROWD_HELD)} above the baseline 3 s after`,
  async (t) => {
    t.timeout(120_000);
    const { child, before, ws } = await attackSetup(t, 100, { loop: 'messages', gcEvery: 1000 });
    const payload = zeros();
    const started = Date.now();
    const outcomes = await within(
      Promise.all(
        ws.map(async (w) => {
          void sendCompressed(w, payload).catch(() => undefined);
          return echoOrClose(w);
        })
      ),
      'every echo or Close',
      60_000
    );
    const ms = Date.now() - started;
    const attacked = await mem(child);
    await new Promise((r) => setTimeout(r, 3000));
    const idle = await mem(child);
    const counts = count(outcomes);
    const echoed = counts.echo ?? 0;
    // Ordinary traffic of the same size on the wire, for the CPU beside it.
    const fresh = await clients(t, child, 100);
    const cpuBefore = (await mem(child)).cpuMs;
    const ordinary = fresh.map((_, i) => compress(json(4000, i)));
    const ordinaryStarted = Date.now();
    const ordinaryOutcomes = await within(
      Promise.all(fresh.map(async (w, i) => (await sendCompressed(w, ordinary[i]!), echoOrClose(w)))),
      'every ordinary echo',
      60_000
    );
    const ordinaryMs = Date.now() - ordinaryStarted;
    const afterOrdinary = await mem(child);
    const wire = ordinary.reduce((n, b) => n + b.length, 0) / ordinary.length;
    t.log(
      `the bombs: ${JSON.stringify(counts)} in ${ms} ms; peak RSS ${fmt(attacked.peakRss)} (${fmt(before.rss)} before), ` +
        `RSS 3 s after ${fmt(idle.rss)} (${fmt(idle.rss - before.rss)} above), amplified bytes held ${fmt(idle.zlib.amplified)} ` +
        `of ${fmt(AMPLIFIED_BUDGET)}, server CPU ${seconds(attacked.cpuMs - before.cpuMs)}; ` +
        `ordinary JSON of ${(wire / KiB).toFixed(1)} KiB on the wire (${(json(4000, 0).length / wire).toFixed(1)}x) from 100 more: ` +
        `${ordinaryOutcomes.filter((o) => o === 'echo').length} echoed in ${ordinaryMs} ms, server CPU ${seconds(afterOrdinary.cpuMs - cpuBefore)}`
    );
    // Every bomb was either echoed (and is kept by its loop) or refused with 1013 once the
    // allowance was spent; as many as fit in it were echoed.
    t.deepEqual(Object.keys(counts).sort(), ['1013 WS_ERR_AMPLIFIED_BUDGET', 'echo'], JSON.stringify(counts));
    const fit = Math.floor(AMPLIFIED_BUDGET / (DEFAULTS.maxMessageSize - AMPLIFICATION_RATIO * payload.length));
    // (Fewer when several bombs in progress shared the allowance and were all refused.)
    t.true(echoed >= 1 && echoed <= fit, `${echoed} echoed, ${fit} fit in the allowance`);
    t.true(attacked.peakRss < CROWD_PEAK, `peak RSS ${fmt(attacked.peakRss)}`);
    t.true(idle.rss - before.rss < CROWD_HELD, `${fmt(idle.rss - before.rss)} above the baseline`);
    t.deepEqual(ordinaryOutcomes, fresh.map(() => 'echo'));
  }
);

// From an attacker review of the allowance: 4 connections that each send the first 16 KB
// frame of a message of zeros (about 16 MiB each once inflated) and then stay idle held the
// whole allowance for as long as they stayed, so an honest message that compresses well was
// refused with 1013 by a server no one else used. Bound: an unfinished message whose
// amplified bytes have not grown for a second is dropped when another needs the allowance.
test.serial('4 idle connections holding the allowance with unfinished 16 KB bombs do not keep an honest 16 MiB message of zeros out', async (t) => {
  t.timeout(60_000);
  const { child, ws } = await attackSetup(t, 5);
  const honest = ws.pop()!;
  const z = zeros();
  await Promise.all(ws.map((w) => sendFrame(w, Opcode.Binary, z, { fin: false, rsv1: true })));
  let held = await mem(child);
  for (let i = 0; i < 100 && held.zlib.amplified < 60 * MiB; i++) {
    await new Promise((r) => setTimeout(r, 50));
    held = await mem(child);
  }
  await new Promise((r) => setTimeout(r, 1200)); // they stall
  const data = Buffer.alloc(DEFAULTS.maxMessageSize);
  await sendFrame(honest, Opcode.Binary, compress(data), { rsv1: true });
  const f = await within(recvFrame(honest), 'the honest echo', 30_000);
  if (f.opcode === Opcode.Close) throw new Error(`the honest client was closed: ${f.data.readUInt16BE(0)} ${f.data.subarray(2).toString()}`);
  t.is(inflate(f.data).length, data.length);
  const after = await mem(child);
  t.log(
    `4 stalled bombs held ${fmt(held.zlib.amplified)} of the allowance; after a second the honest 16 MiB came through ` +
      `(evictions ${after.zlib.evictions}, refusals ${after.zlib.refusals})`
  );
  t.true(after.zlib.evictions >= 1);
});

// The bound: the peak RSS of the server process while it echoes the burst. The budget of
// bytes in flight through zlib (64 MiB) and what the running zlib jobs may add past it
// stay under this, with the process's own ~60 MiB.
const BURST_PEAK = 400 * MiB;

test.serial(`100 connections × 2 messages of 1 MiB at 6× (under the ratio): all echoed, the server's peak RSS under ${fmt(BURST_PEAK)}`, async (t) => {
  t.timeout(120_000);
  // The echo compresses at level 1: what is tested is inflation, and level 6 costs ~70 s of
  // CPU on 200 MiB of this data.
  const { child, before, ws } = await attackSetup(t, 100, { options: { perMessageDeflate: { level: 1 } } });
  const plain = letters(MiB, 2);
  const payload = compress(plain);
  const started = Date.now();
  await within(
    Promise.all(
      ws.map(async (w) => {
        await sendCompressed(w, payload);
        await sendCompressed(w, payload);
        t.is(await echoOrClose(w), 'echo');
        t.is(await echoOrClose(w), 'echo');
      })
    ),
    'every echo',
    100_000
  );
  const ms = Date.now() - started;
  const after = await mem(child);
  t.log(
    `200 messages of ${fmt(plain.length)} (${fmt(payload.length)} on the wire) echoed in ${ms} ms: peak RSS ${fmt(after.peakRss)} ` +
      `(${fmt(before.rss)} before), server CPU ${seconds(after.cpuMs - before.cpuMs)}; after GC: RSS ${fmt(after.rss)}, ` +
      `external ${fmt(after.external)}; evictions ${after.zlib.evictions}, refusals ${after.zlib.refusals}`
  );
  t.is(after.zlib.refusals, 0, 'nothing of it was amplified');
  t.true(after.peakRss < BURST_PEAK, `peak RSS ${fmt(after.peakRss)}`);
});

// The attack on the budget's eviction (issue 23): 70 connections each send the first frame
// of a message, 1 KB that inflates to 1 MiB, and never the rest; then an honest client sends
// a 4 MiB message at 2.4× in 64 KiB fragments. Before, any message could hold 1 MiB of the
// budget whatever its ratio, and the largest unfinished one was dropped: the honest one.
test.serial('70 stalled 1 KB frames that inflate to 1 MiB each do not get an honest 4 MiB compressed message dropped', async (t) => {
  t.timeout(60_000);
  const { child, ws } = await attackSetup(t, 71);
  const honest = ws.pop()!;
  const stall = compress(Buffer.alloc(MiB));
  await Promise.all(ws.map((w) => sendFrame(w, Opcode.Binary, stall, { fin: false, rsv1: true })));
  // Wait until the server has inflated them all (what they hold is counted).
  for (let i = 0; i < 200; i++) {
    const m = await mem(child);
    if (m.zlib.amplified + m.zlib.inFlight >= 70 * (MiB - 32 * KiB)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const held = await mem(child);
  const data = letters(4 * MiB, 8);
  const payload = compress(data);
  const FRAGMENT = 64 * KiB;
  for (let off = 0; off < payload.length; off += FRAGMENT) {
    const first = off === 0;
    const fin = off + FRAGMENT >= payload.length;
    await sendFrame(honest, first ? Opcode.Binary : Opcode.Cont, payload.subarray(off, off + FRAGMENT), { fin, rsv1: first });
  }
  const echo: Buffer[] = [];
  for (;;) {
    const f = await within(recvFrame(honest), 'the honest echo', 30_000);
    if (f.opcode === Opcode.Close) throw new Error(`the honest client was closed: ${f.data.readUInt16BE(0)} ${f.data.subarray(2).toString()}`);
    echo.push(f.data);
    if (f.fin) break;
  }
  const got = inflate(Buffer.concat(echo));
  const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  t.is(digest(got), digest(data), 'the honest message came back intact');
  const after = await mem(child);
  t.log(
    `70 stalled frames held ${fmt(held.zlib.amplified)} amplified and ${fmt(held.zlib.inFlight)} of the budget; ` +
      `the honest ${fmt(data.length)} message (${fmt(payload.length)} on the wire) was echoed; evictions ${after.zlib.evictions}, refusals ${after.zlib.refusals}`
  );
  // Only bombs were dropped or refused: the ones past the allowance (about 6 of 70; dropped
  // when the first had stalled a second by then, on a slow machine, else refused).
  t.true(after.zlib.evictions + after.zlib.refusals <= 10, JSON.stringify(after.zlib));
});

// The bound: a connection whose peer does not read its echo is dropped within sendTimeout of
// its last progress; the deflate of 16 MiB each that does not compress (about 0.5 s of CPU
// each, in turn) comes before. Then what they pinned is gone.
// (Measured here: 16 to 24 s after the message on an idle machine; the slack is for a busy one.)
const DROP_MS = DEFAULTS.sendTimeout * 1.25 + 25_000;
// 12, not the 20 of the report: each costs about 0.5 s of CPU to compress, and the case
// should stay near 30 s.
const NOT_READING = 12;

test.serial(`${NOT_READING} clients that never read a 16 MiB echo that does not recompress: each dropped within ${DROP_MS / 1000} s, its memory released`, async (t) => {
  t.timeout(90_000);
  // The allowance of amplified bytes (these are 69×) is raised for the 12: what is tested is
  // the send timeout.
  const { child, before, ws } = await attackSetup(t, NOT_READING, { zlib: { amplifiedBudget: 512 * MiB } });
  const payload = farCopies();
  const started = Date.now();
  // Our clients stop reading once 256 KiB are buffered (readBufferSize), and never read here.
  await Promise.all(ws.map((w) => sendCompressed(w, payload)));
  let held = 0;
  let m: ChildMemory;
  for (;;) {
    m = await mem(child);
    held = Math.max(held, m.heapUsed + m.external - before.heapUsed - before.external);
    if (m.open === 0 || Date.now() - started > DROP_MS + 10_000) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const ms = Date.now() - started;
  const left = m.heapUsed + m.external - before.heapUsed - before.external;
  t.log(
    `held at most ${fmt(held)} live (peak RSS ${fmt(m.peakRss)}); all ${ws.length} dropped ${ms} ms after the sends, ` +
      `the last ${m.longestAfterMessage} ms after its message; ${fmt(left)} left; ${JSON.stringify(m.errors)}`
  );
  t.is(m.open, 0, 'every connection was dropped');
  t.deepEqual(m.errors, { 'IOError:timeout': ws.length }, 'each by the send timeout');
  t.true(m.longestAfterMessage < DROP_MS, `${m.longestAfterMessage} ms`);
  t.true(left < 32 * MiB, `${fmt(left)} still held`);
});
