/**
 * Loopback echo rows: client and server in separate processes on 127.0.0.1 (see peer.ts
 * and children.ts), binary messages at each size.
 *
 * - `echo-rtt-<size>`: one message in flight; round trips/s and p50/p99 round-trip latency.
 * - `echo-pipe-<size>`: up to `window` messages in flight (a sender loop and a reader loop);
 *   messages/s and MB/s of echoed payload (each byte crosses loopback twice).
 * - `echo-deflate-rtt-<size>`, `echo-deflate-pipe-<size>`: the same with permessage-deflate
 *   on both ends of both implementations (peer.ts `DEFLATE`: same threshold, level, memLevel
 *   and windows) and JSON-like payloads that compress 3-4x, cycled from a pool of 32 distinct
 *   ones. The check before the row also requires both directions to be compressed on the
 *   wire; the timed runs report the wire bytes per payload byte (metric `wire`).
 *
 * wsframe: the server is `listen()` with `for (;;) { m = await readData(ws); await
 * sendBinary(ws, m.data) }`, the client `connect()` with `await sendBinary` and `await
 * readData`. ws: `WebSocketServer` echoing in its 'message' handler, and a ws client sending
 * from its 'message' handler; both with bufferutil, no permessage-deflate.
 *
 * Each implementation has its own server process and client process for the whole run, and
 * one connection. Warm-up is time-bound; after it, every timed repeat of a row sends the same
 * number of messages for both implementations (what the slower one did in one repeat's
 * duration during warm-up), bounded in time. Before the first warm-up of a row, each side is
 * checked once: distinct payloads, count, and a SHA-1 of all bytes sent and received.
 */
import { startEchoPair, type EchoPair } from './children';
import type { Impl, Options, Row, Timed } from './harness';
import { formatSize } from './harness';
import type { Job, JobResult, PeerImpl } from './peer';

const MIN_COUNT = 5;
// Messages in flight in pipelined rows: 256 small ones, 1 MiB of 64 KiB ones, 4 of 1 MiB.
function windowFor(size: number): number {
  return Math.max(4, Math.min(256, Math.floor((1 << 20) / size)));
}
// Messages in the correctness check of a row.
function verifyCount(size: number): number {
  return Math.max(8, Math.min(200, Math.floor((4 << 20) / size)));
}
// A timed repeat may take this much longer than planned before it is cut short (an error).
function boundMs(ms: number): number {
  return 10 * ms + 2000;
}
// The compressed rows run this many times longer than the others (Row.durationScale).
const DEFLATE_DURATION_SCALE = 2;
// Time for the IPC answer beyond the job's own bound.
const CALL_SLACK_MS = 15_000;

export interface EchoSetup {
  rows: Row[];
  /** Stops every child started for these rows. */
  teardown(): Promise<void>;
}

/**
 * The echo rows: plain ones at `sizes`, compressed ones (permessage-deflate, JSON-like
 * payloads) at `deflateSizes`.
 */
export function echoRows(sizes: number[], deflateSizes: number[], want: (id: string) => boolean, opts: Options): EchoSetup {
  // One pair of processes per implementation and per deflate setting.
  const pairs = new Map<string, Promise<EchoPair>>();
  const pairFor = (impl: PeerImpl, deflate: boolean): Promise<EchoPair> => {
    const key = `${impl}${deflate ? ' deflate' : ''}`;
    let p = pairs.get(key);
    if (!p) {
      // A fresh process: let the JIT see the echo path (and zlib's) before the first row.
      const size = deflate ? 1024 : 16;
      const payload = deflate ? 'json' : 'random';
      p = startEchoPair(impl, deflate).then(async (pair) => {
        await runJob(pair, { mode: 'pipe', size, count: 1e9, ms: opts.quick ? 150 : 400, window: 64, verify: false, payload });
        await runJob(pair, { mode: 'rtt', size, count: 1e9, ms: opts.quick ? 100 : 300, window: 1, verify: false, payload });
        return pair;
      });
      pairs.set(key, p);
    }
    return p;
  };

  const rows: Row[] = [];
  // Plain rows first (rtt, then pipe), then the compressed ones.
  const plan = [false, true].flatMap((deflate) =>
    (['rtt', 'pipe'] as const).flatMap((mode) => (deflate ? deflateSizes : sizes).map((size) => ({ deflate, mode, size })))
  );
  for (const { deflate, mode, size } of plan) {
    const group = deflate ? `echo-deflate-${mode}` : `echo-${mode}`;
    const id = `${group}-${formatSize(size)}`;
    if (!want(id)) continue;
    const payload = deflate ? 'json' : 'random';
    const window = mode === 'rtt' ? 1 : windowFor(size);
    const warmRate = new Map<string, number>();
    let count = 0;
    const impl = (name: PeerImpl, note: string): Impl => {
      let verified = false;
      return {
        name,
        baseline: name === 'ws',
        note,
        run: async (ms, phase): Promise<Timed> => {
          const pair = await pairFor(name, deflate);
          if (!verified) {
            await verify(pair, mode, size, window, deflate);
            verified = true;
          }
          if (phase === 'warmup') {
            const r = await runJob(pair, { mode, size, count: 1e9, ms, window, verify: false, payload });
            warmRate.set(name, (r.messages * 1e9) / r.ns);
            return timed(r, deflate);
          }
          if (count === 0) count = Math.max(MIN_COUNT, Math.round((Math.min(...warmRate.values()) * ms) / 1000));
          const bound = boundMs(ms);
          const r = await runJob(pair, { mode, size, count, ms: bound, window, verify: false, payload });
          if (r.messages !== count) throw new Error(`${id} ${name}: ${r.messages} of ${count} messages within ${bound} ms`);
          return timed(r, deflate);
        }
      };
    };
    const what =
      (mode === 'rtt' ? 'one message in flight' : 'a window of max(4, min(256, 1 MiB / size)) messages in flight') +
      (deflate ? '; permessage-deflate (threshold 1024, level 6) on both ends, JSON-like payloads' : '');
    rows.push({
      id,
      group,
      size,
      masked: true,
      // A compressed echo is ~10-40x slower than a plain one: twice the time, so a quick
      // repeat of the 64 KiB rows still has a few dozen messages.
      durationScale: deflate ? DEFLATE_DURATION_SCALE : 1,
      impls: [
        impl('wsframe', `listen() readData/sendBinary loop; connect() client, ${what}`),
        impl('ws', `WebSocketServer echoing in 'message'; ws client sending from 'message', ${what}`)
      ]
    });
  }

  return {
    rows,
    async teardown() {
      const started = await Promise.allSettled([...pairs.values()]);
      await Promise.all(
        started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.server.stop(), s.value.client.stop()] : []))
      );
    }
  };
}

function runJob(pair: EchoPair, job: Job): Promise<JobResult> {
  return pair.client.call<JobResult>({ cmd: 'job', job }, job.ms + CALL_SLACK_MS);
}

// Compressed rows: bytes on the wire (both directions, frame headers included) per byte of
// payload, as metric `wire`.
function timed(r: JobResult, deflate: boolean): Timed {
  const metrics: Record<string, number> = {};
  if (r.p50Us !== undefined && r.p99Us !== undefined) Object.assign(metrics, { p50Us: r.p50Us, p99Us: r.p99Us });
  if (deflate && r.bytes > 0) metrics.wire = (r.wireRead + r.wireWritten) / (2 * r.bytes);
  return { messages: r.messages, bytes: r.bytes, ns: r.ns, metrics: Object.keys(metrics).length > 0 ? metrics : undefined };
}

// A compressed row's check: each direction must cross the wire in at most this share of the
// payload (the JSON-like payloads compress 3-4x), so a row where compression silently did not
// happen fails instead of being compared.
const MAX_COMPRESSED_SHARE = 0.6;

/**
 * Distinct payloads through the echo: all of them back, in order, byte for byte; with
 * `deflate`, compressed both ways.
 */
async function verify(pair: EchoPair, mode: 'rtt' | 'pipe', size: number, window: number, deflate: boolean): Promise<void> {
  // Compressed echoes are slow: fewer messages (still more than the pool of 32 payloads).
  const count = deflate ? Math.min(verifyCount(size), 40) : verifyCount(size);
  const r = await runJob(pair, { mode, size, count, ms: 30_000, window, verify: true, payload: deflate ? 'json' : 'random' });
  const who = `echo${deflate ? ' deflate' : ''} ${mode} ${formatSize(size)} ${pair.impl}`;
  if (r.messages !== count) throw new Error(`${who}: ${r.messages} messages echoed, want ${count}`);
  if (r.bytes !== count * size) throw new Error(`${who}: ${r.bytes} bytes echoed, want ${count * size}`);
  if (r.digestSent === undefined || r.digestSent !== r.digestReceived) throw new Error(`${who}: echoed bytes differ (SHA-1)`);
  if (deflate) {
    for (const [dir, wire] of [['sent', r.wireWritten], ['received', r.wireRead]] as const) {
      if (wire > r.bytes * MAX_COMPRESSED_SHARE) throw new Error(`${who}: ${wire} bytes ${dir} on the wire for ${r.bytes} of payload: not compressed`);
    }
  }
}
