/**
 * Loopback echo rows: client and server in separate processes on 127.0.0.1 (see peer.ts
 * and children.ts), binary messages at each size.
 *
 * - `echo-rtt-<size>`: one message in flight; round trips/s and p50/p99 round-trip latency.
 * - `echo-pipe-<size>`: up to `window` messages in flight (a sender loop and a reader loop);
 *   messages/s and MB/s of echoed payload (each byte crosses loopback twice).
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
// Time for the IPC answer beyond the job's own bound.
const CALL_SLACK_MS = 15_000;

export interface EchoSetup {
  rows: Row[];
  /** Stops every child started for these rows. */
  teardown(): Promise<void>;
}

export function echoRows(sizes: number[], want: (id: string) => boolean, opts: Options): EchoSetup {
  const pairs = new Map<PeerImpl, Promise<EchoPair>>();
  const pairFor = (impl: PeerImpl): Promise<EchoPair> => {
    let p = pairs.get(impl);
    if (!p) {
      p = startEchoPair(impl).then(async (pair) => {
        // A fresh process: let the JIT see the echo path before the first row.
        await runJob(pair, { mode: 'pipe', size: 16, count: 1e9, ms: opts.quick ? 150 : 400, window: 64, verify: false });
        await runJob(pair, { mode: 'rtt', size: 16, count: 1e9, ms: opts.quick ? 100 : 300, window: 1, verify: false });
        return pair;
      });
      pairs.set(impl, p);
    }
    return p;
  };

  const rows: Row[] = [];
  for (const mode of ['rtt', 'pipe'] as const) {
    for (const size of sizes) {
      const id = `echo-${mode}-${formatSize(size)}`;
      if (!want(id)) continue;
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
            const pair = await pairFor(name);
            if (!verified) {
              await verify(pair, mode, size, window);
              verified = true;
            }
            if (phase === 'warmup') {
              const r = await runJob(pair, { mode, size, count: 1e9, ms, window, verify: false });
              warmRate.set(name, (r.messages * 1e9) / r.ns);
              return timed(r);
            }
            if (count === 0) count = Math.max(MIN_COUNT, Math.round((Math.min(...warmRate.values()) * ms) / 1000));
            const bound = boundMs(ms);
            const r = await runJob(pair, { mode, size, count, ms: bound, window, verify: false });
            if (r.messages !== count) throw new Error(`${id} ${name}: ${r.messages} of ${count} messages within ${bound} ms`);
            return timed(r);
          }
        };
      };
      const what = mode === 'rtt' ? 'one message in flight' : 'a window of max(4, min(256, 1 MiB / size)) messages in flight';
      rows.push({
        id,
        group: `echo-${mode}`,
        size,
        masked: true,
        impls: [
          impl('wsframe', `listen() readData/sendBinary loop; connect() client, ${what}`),
          impl('ws', `WebSocketServer echoing in 'message'; ws client sending from 'message', ${what}`)
        ]
      });
    }
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

function timed(r: JobResult): Timed {
  const metrics = r.p50Us !== undefined && r.p99Us !== undefined ? { p50Us: r.p50Us, p99Us: r.p99Us } : undefined;
  return { messages: r.messages, bytes: r.bytes, ns: r.ns, metrics };
}

/** Distinct payloads through the echo: all of them back, in order, byte for byte. */
async function verify(pair: EchoPair, mode: 'rtt' | 'pipe', size: number, window: number): Promise<void> {
  const count = verifyCount(size);
  const r = await runJob(pair, { mode, size, count, ms: 30_000, window, verify: true });
  const who = `echo ${mode} ${formatSize(size)} ${pair.impl}`;
  if (r.messages !== count) throw new Error(`${who}: ${r.messages} messages echoed, want ${count}`);
  if (r.bytes !== count * size) throw new Error(`${who}: ${r.bytes} bytes echoed, want ${count * size}`);
  if (r.digestSent === undefined || r.digestSent !== r.digestReceived) throw new Error(`${who}: echoed bytes differ (SHA-1)`);
}
