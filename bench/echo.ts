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
 * - `echo-h2-rtt-<size>`, `echo-h2-pipe-<size>`: wsframe over HTTP/2 against wsframe over
 *   HTTP/1.1, both cleartext: `listen({ http2: true })` (h2c) and `connect('ws://…', { http2:
 *   true })` (prior knowledge, one extended CONNECT stream on its own session), against the
 *   plain `listen()` / `connect()` pair of the echo rows. The ratio is h2 ÷ h1 (JSON
 *   `ratioH2VsH1`); metric `wire` as above shows what the HTTP/2 framing adds on the wire.
 *   ws has no HTTP/2, so it has no line here.
 * - `echo-h2-tls-rtt-<size>`, `echo-h2-tls-pipe-<size>` (one size): the same over TLS, `wss:`
 *   from `listen({ http2: true, tls })` (ALPN h2) against `listen({ tls })`, with a
 *   self-signed certificate for 127.0.0.1 made by openssl once per run.
 *
 * wsframe: the server is `listen()` with `for (;;) { m = await readData(ws); await
 * sendBinary(ws, m.data) }`, the client `connect()` with `await sendBinary` and `await
 * readData`. ws: `WebSocketServer` echoing in its 'message' handler, and a ws client sending
 * from its 'message' handler; both with bufferutil, no permessage-deflate.
 *
 * Each implementation (and setting) has its own server process and client process for the
 * whole run, and one connection. Warm-up is time-bound; after it, every timed repeat of a row sends the same
 * number of messages for both implementations (what the slower one did in one repeat's
 * duration during warm-up), bounded in time. Before the first warm-up of a row, each side is
 * checked once: distinct payloads, count, and a SHA-1 of all bytes sent and received.
 */
import { placePair, startEchoPair, type EchoPair, type PairSpec } from './children';
import type { Impl, Options, Row, Timed } from './harness';
import { formatSize } from './harness';
import type { Job, JobResult } from './peer';
import { selfSignedCert } from '../test/helpers/tls-cert';

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

/** The sizes of each kind of echo row. */
export interface EchoSizes {
  /** `echo-<mode>-<size>`: wsframe against ws. */
  plain: number[];
  /** `echo-deflate-<mode>-<size>`: the same with permessage-deflate. */
  deflate: number[];
  /** `echo-h2-<mode>-<size>`: wsframe over h2c against wsframe over HTTP/1.1. */
  h2: number[];
  /** `echo-h2-tls-<mode>-<size>`: the same over TLS. */
  h2Tls: number[];
}

/** One line of a row: a name, the pair of processes it runs on, and what it measures. */
interface Variant {
  name: string;
  spec: PairSpec;
  baseline: boolean;
  note: string;
  /** Runs its jobs with README's refill-from-the-read-loop client (Job.refill). */
  refill?: boolean;
  /** The raw TCP line: the others also get a ratio against it (Impl.reference). */
  reference?: boolean;
}

/** A kind of echo row: its id prefix, sizes, lines, and what its payloads and metrics are. */
interface Family {
  prefix: string;
  sizes: number[];
  variants: (what: string, mode: 'rtt' | 'pipe') => Variant[];
  deflate: boolean;
  /** Report bytes on the wire per payload byte (metric `wire`). */
  wire: boolean;
  /** Over TLS, with the run's self-signed certificate. */
  tls: boolean;
  /** The JSON name of the row's ratio (Row.ratioName). */
  ratioName?: string;
  /** Said of every line, after the mode: e.g. the compression settings. */
  extra: string;
}

type Tls = { key: string; cert: string };

/**
 * The echo rows: plain and compressed ones (wsframe against ws), and HTTP/2 ones (wsframe
 * over HTTP/2 against wsframe over HTTP/1.1), at the sizes given for each.
 */
export function echoRows(sizes: EchoSizes, want: (id: string) => boolean, opts: Options): EchoSetup {
  // One pair of processes per implementation and setting, shared by the rows that use it
  // (the HTTP/1.1 line of the echo-h2 rows is the wsframe pair of the echo rows).
  const pairs = new Map<string, Promise<EchoPair>>();
  const pairFor = (spec: PairSpec): Promise<EchoPair> => {
    const key = `${spec.impl}${spec.deflate ? ' deflate' : ''}${spec.http2 ? ' http2' : ''}${spec.tls ? ' tls' : ''}`;
    let p = pairs.get(key);
    if (!p) {
      // A fresh process: let the JIT see the echo path (and zlib's) before the first row.
      const size = spec.deflate ? 1024 : 16;
      const payload = spec.deflate ? 'json' : 'random';
      p = startEchoPair(spec).then(async (pair) => {
        placePair(pair, 'pipe');
        await runJob(pair, { mode: 'pipe', size, count: 1e9, ms: opts.quick ? 150 : 400, window: 64, verify: false, payload });
        placePair(pair, 'rtt');
        await runJob(pair, { mode: 'rtt', size, count: 1e9, ms: opts.quick ? 100 : 300, window: 1, verify: false, payload });
        return pair;
      });
      pairs.set(key, p);
    }
    return p;
  };
  // The TLS rows' key and certificate: made once, when the first of them runs.
  let tlsMaterial: Promise<Tls> | null = null;
  const tls = (): Promise<Tls> =>
    (tlsMaterial ??= selfSignedCert().then(({ key, cert }) => ({ key: key.toString(), cert: cert.toString() })));

  const h1h2 = (secure: boolean) => (what: string): Variant[] => {
    const over = secure ? 'TLS (wss:)' : 'cleartext (ws:)';
    return [
      {
        name: 'wsframe h2',
        spec: { impl: 'wsframe', http2: true },
        baseline: false,
        note: `listen({ http2: true${secure ? ', tls' : ''} }) readData/sendBinary loop; connect(url, { http2: true }) client, ${over}, ${what}`
      },
      {
        name: 'wsframe h1',
        spec: { impl: 'wsframe' },
        baseline: true,
        note: `listen(${secure ? '{ tls }' : ''}) readData/sendBinary loop; connect(url) client (HTTP/1.1 upgrade), ${over}, ${what}`
      }
    ];
  };
  const families: Family[] = [
    {
      prefix: 'echo',
      sizes: sizes.plain,
      deflate: false,
      wire: false,
      tls: false,
      extra: '',
      variants: (what, mode) => [
        { name: 'wsframe', spec: { impl: 'wsframe' }, baseline: false, note: `listen() readData/sendBinary loop; connect() client${mode === 'pipe' ? ' awaiting each send in a sender loop beside a reader loop' : ''}, ${what}` },
        // The two ways of writing a pipelined client side by side (issue 14 measured 0.80-0.96x
        // against 1.13x on a loaded machine): README recommends this one.
        ...(mode === 'pipe'
          ? [{ name: 'wsframe refill', spec: { impl: 'wsframe' as const }, baseline: false, refill: true, note: `the same server; connect() client refilling its window from the read loop, sends not awaited (README), ${what}` }]
          : []),
        { name: 'ws', spec: { impl: 'ws' }, baseline: true, note: `WebSocketServer echoing in 'message'; ws client sending from 'message', ${what}` },
        {
          name: 'raw TCP',
          spec: { impl: 'raw' },
          baseline: false,
          reference: true,
          note: `no WebSocket: a node:net server writing back each chunk it reads; a node:net client sending as many bytes per message as a masked frame of the size and counting them back, ${what}`
        }
      ]
    },
    {
      prefix: 'echo-deflate',
      sizes: sizes.deflate,
      deflate: true,
      wire: true,
      tls: false,
      extra: '; permessage-deflate (threshold 1024, level 6) on both ends, JSON-like payloads',
      variants: (what) => [
        { name: 'wsframe', spec: { impl: 'wsframe', deflate: true }, baseline: false, note: `listen() readData/sendBinary loop; connect() client, ${what}` },
        { name: 'ws', spec: { impl: 'ws', deflate: true }, baseline: true, note: `WebSocketServer echoing in 'message'; ws client sending from 'message', ${what}` }
      ]
    },
    // Over TLS, Node counts a TLS socket's plaintext bytes: no `wire` metric there.
    { prefix: 'echo-h2', sizes: sizes.h2, deflate: false, wire: true, tls: false, ratioName: 'ratioH2VsH1', extra: '', variants: h1h2(false) },
    { prefix: 'echo-h2-tls', sizes: sizes.h2Tls, deflate: false, wire: false, tls: true, ratioName: 'ratioH2VsH1', extra: '', variants: h1h2(true) }
  ];

  const rows: Row[] = [];
  for (const family of families) {
    for (const mode of ['rtt', 'pipe'] as const) {
      for (const size of family.sizes) {
        const group = `${family.prefix}-${mode}`;
        const id = `${group}-${formatSize(size)}`;
        if (!want(id)) continue;
        const deflate = family.deflate;
        const payload = deflate ? 'json' : 'random';
        const window = mode === 'rtt' ? 1 : windowFor(size);
        const warmRate = new Map<string, number>();
        let count = 0;
        const impl = (v: Variant): Impl => {
          let verified = false;
          return {
            name: v.name,
            baseline: v.baseline,
            reference: v.reference,
            note: v.note,
            run: async (ms, phase): Promise<Timed> => {
              const spec = family.tls ? { ...v.spec, tls: await tls() } : v.spec;
              const pair = await pairFor(spec);
              placePair(pair, mode);
              if (!verified) {
                await verify(pair, mode, size, window, deflate, v.refill === true);
                verified = true;
              }
              if (phase === 'warmup') {
                const r = await runJob(pair, { mode, size, count: 1e9, ms, window, verify: false, payload, refill: v.refill });
                warmRate.set(v.name, (r.messages * 1e9) / r.ns);
                return timed(r, family.wire);
              }
              if (count === 0) count = Math.max(MIN_COUNT, Math.round((Math.min(...warmRate.values()) * ms) / 1000));
              const bound = boundMs(ms);
              const r = await runJob(pair, { mode, size, count, ms: bound, window, verify: false, payload, refill: v.refill });
              if (r.messages !== count) throw new Error(`${id} ${v.name}: ${r.messages} of ${count} messages within ${bound} ms`);
              return timed(r, family.wire);
            }
          };
        };
        const what = (mode === 'rtt' ? 'one message in flight' : 'a window of max(4, min(256, 1 MiB / size)) messages in flight') + family.extra;
        rows.push({
          id,
          group,
          size,
          masked: true,
          // A compressed echo is ~10-40x slower than a plain one: twice the time, so a quick
          // repeat of the 64 KiB rows still has a few dozen messages.
          durationScale: deflate ? DEFLATE_DURATION_SCALE : 1,
          ratioName: family.ratioName,
          impls: family.variants(what, mode).map(impl)
        });
      }
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

// Compressed and HTTP/2 rows (`wire`): bytes on the wire (both directions, frame headers
// included; over HTTP/2 its frames too) per byte of payload, as metric `wire`.
function timed(r: JobResult, wire: boolean): Timed {
  const metrics: Record<string, number> = {};
  if (r.p50Us !== undefined && r.p99Us !== undefined) Object.assign(metrics, { p50Us: r.p50Us, p99Us: r.p99Us });
  if (wire && r.bytes > 0) metrics.wire = (r.wireRead + r.wireWritten) / (2 * r.bytes);
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
async function verify(pair: EchoPair, mode: 'rtt' | 'pipe', size: number, window: number, deflate: boolean, refill: boolean): Promise<void> {
  // Compressed echoes are slow: fewer messages (still more than the pool of 32 payloads).
  const count = deflate ? Math.min(verifyCount(size), 40) : verifyCount(size);
  const r = await runJob(pair, { mode, size, count, ms: 30_000, window, verify: true, payload: deflate ? 'json' : 'random', refill });
  const who = `echo ${mode}${refill ? ' refill' : ''} ${formatSize(size)} ${pair.label}`;
  if (r.messages !== count) throw new Error(`${who}: ${r.messages} messages echoed, want ${count}`);
  if (r.bytes !== count * size) throw new Error(`${who}: ${r.bytes} bytes echoed, want ${count * size}`);
  if (r.digestSent === undefined || r.digestSent !== r.digestReceived) throw new Error(`${who}: echoed bytes differ (SHA-1)`);
  if (deflate) {
    for (const [dir, wire] of [['sent', r.wireWritten], ['received', r.wireRead]] as const) {
      if (wire > r.bytes * MAX_COMPRESSED_SHARE) throw new Error(`${who}: ${wire} bytes ${dir} on the wire for ${r.bytes} of payload: not compressed`);
    }
  }
}
