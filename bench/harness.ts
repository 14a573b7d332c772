/**
 * Benchmark harness: options, timing, statistics and output. Knows nothing of WebSockets.
 *
 * A case is a function that does one "pass" of work and returns how many messages and
 * payload bytes it handled plus a number derived from its results (folded into a sink, so
 * the optimizer cannot drop the work). Each case is warmed up, then timed for a fixed
 * duration several times; the order of the implementations alternates between repeats.
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { placement } from './children';

// `--gc`: a full GC before each timed run, so no implementation pays for the garbage of the
// one before it. Off by default: measured here, a forced full GC slows ws's Receiver down
// by 3-4x for the next ~100 ms (ours much less), which distorts short runs far more than
// leftover garbage does. `--expose-gc` can be set at run time; `gc` then appears in new
// contexts.
let gc: (() => void) | null = null;
/** True when a full GC runs before each timed run. */
export let gcBetweenRuns = false;

function enableGc(): void {
  v8.setFlagsFromString('--expose-gc');
  gc = runInNewContext('typeof gc === "function" ? gc : null') as (() => void) | null;
  if (gc === null) throw new Error('--gc: cannot expose the garbage collector');
  gcBetweenRuns = true;
}

// Garbage collections of this process (start and duration, ms on performance.now()'s clock),
// so that each timed run of a pass-based row says how much of its time went to GC, whoever
// made the garbage: the `gcPct` metric. Entries arrive a little after the GC; they are
// matched to runs by time once the row is done.
const gcEvents: { start: number; duration: number }[] = [];
let gcObserver: PerformanceObserver | null = null;
function observeGc(): void {
  if (gcObserver !== null) return;
  gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcEvents.push({ start: e.startTime, duration: e.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
}

/** Percent of [t0, t1) that GCs starting in it took; forgets the events before t0. */
function gcShare(t0: number, t1: number): number {
  let ms = 0;
  for (const e of gcEvents) if (e.start >= t0 && e.start < t1) ms += e.duration;
  return (100 * ms) / (t1 - t0);
}

/** One unit of timed work. May be synchronous or return a promise. */
export type Pass = () => PassResult | Promise<PassResult>;

/** What one pass did. `check` is any number computed from the outputs (anti dead-code). */
export interface PassResult {
  messages: number;
  bytes: number;
  check: number;
}

/**
 * What one self-timed run did (an implementation that times itself, e.g. in another
 * process): totals, the elapsed time it measured, and extra metrics (e.g. latency
 * percentiles) that are reported as medians over the repeats.
 */
export interface Timed {
  messages: number;
  bytes: number;
  ns: number;
  metrics?: Record<string, number>;
}

/** One implementation of a row: either `pass` (timed here) or `run` (times itself). */
export interface Impl {
  /** 'wsframe', 'ws', or a variant such as 'wsframe (header only)'. */
  name: string;
  /** True for the implementation the others are compared with (`ws`; `wsframe h1` in the echo-h2 rows). */
  baseline?: boolean;
  /**
   * True for what the machine does without any WebSocket (raw TCP): the others also get
   * their ratio against it (`ratioVsRaw`), beside the one against the baseline.
   */
  reference?: boolean;
  /** What exactly is measured, printed under the table. */
  note?: string;
  pass?: Pass;
  /**
   * Runs for about `ms` (warm-up) or does the work of one timed repeat (which the row may
   * fix as a message count, the same for every implementation), and says what it measured.
   */
  run?: (ms: number, phase: 'warmup' | 'timed') => Promise<Timed>;
}

/** A row of the table: one operation at one size, with several implementations. */
export interface Row {
  /** Stable id used by `--only`, e.g. `parse-16B-masked`. */
  id: string;
  group: string;
  size: number;
  masked: boolean;
  impls: Impl[];
  /**
   * Runs this row's warm-up and timed repeats this many times longer than `--warmup` and
   * `--duration` (for rows with few, slow messages, e.g. compressed 64 KiB echoes). Default 1.
   */
  durationScale?: number;
  /**
   * The name of the ratio in the JSON lines: what it is, when the baseline is not ws (e.g.
   * `ratioH2VsH1`). Default `ratioVsWs`.
   */
  ratioName?: string;
}

export interface Options {
  quick: boolean;
  /** Duration of one timed repeat, ms. */
  duration: number;
  /** Warm-up duration per implementation, ms. */
  warmup: number;
  repeats: number;
  /** Substrings of row ids to run (empty: all). */
  only: string[];
  /** Substrings of implementation names to run (empty: all). */
  impl: string[];
  /** Connections of the memory row (default 2000, 500 with --quick). */
  connections: number | null;
  /** Directory for CPU profiles of the child processes (`--prof-children`), or null. */
  profChildren: string | null;
}

export function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const opts: Options = {
    quick,
    duration: quick ? 100 : 400,
    warmup: quick ? 80 : 300,
    repeats: quick ? 5 : 9,
    only: [],
    impl: [],
    connections: null,
    profChildren: null
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') continue;
    else if (arg === '--gc') enableGc();
    else if (arg === '--only') opts.only.push(...value().split(','));
    else if (arg === '--impl') opts.impl.push(...value().split(','));
    else if (arg === '--duration') opts.duration = Number(value());
    else if (arg === '--warmup') opts.warmup = Number(value());
    else if (arg === '--repeats') opts.repeats = Number(value());
    else if (arg === '--connections') opts.connections = Number(value());
    else if (arg === '--prof-children') opts.profChildren = value();
    else if (arg === '--help' || arg === '-h') {
      console.log(
        'usage: npm run bench -- [--quick] [--only id-substring[,…]] [--impl name[,…]]\n' +
          '                        [--duration ms] [--warmup ms] [--repeats n] [--gc]\n' +
          '                        [--connections n] [--prof-children dir]\n' +
          'row ids look like build-1KiB-masked, parse-64KiB-unmasked, mask-1MiB-inplace, utf8-1MiB,\n' +
          'copy-1MiB, echo-rtt-16B, echo-pipe-1MiB, echo-deflate-rtt-1KiB, echo-deflate-pipe-64KiB,\n' +
          'echo-h2-rtt-16B, echo-h2-pipe-1MiB, echo-h2-tls-pipe-64KiB, memory-idle'
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
}

/** Everything the results depend on besides the code, printed at the top. */
export interface Environment {
  date: string;
  node: string;
  v8: string;
  cpu: string;
  cpus: number;
  platform: string;
  bufferutil: string;
  /** The commit measured, with `+dirty` when src/ has uncommitted changes. */
  commit: string;
}

function gitState(): string {
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--', 'src').length > 0 ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

export function environment(bufferutil: string): Environment {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpu: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    platform: `${process.platform}-${process.arch}`,
    bufferutil,
    commit: gitState()
  };
}

// Every pass result is folded in here, and the total is printed, so no work is dead code.
let sink = 0;
export function sinkValue(): number {
  return sink;
}

/**
 * Runs passes until `ms` have elapsed and at least `minPasses` ran; returns the totals and
 * the elapsed time (ns).
 */
async function runFor(pass: Pass, ms: number, minPasses = 1): Promise<{ messages: number; bytes: number; ns: number }> {
  if (gc !== null) gc();
  const budget = BigInt(Math.round(ms * 1e6));
  const start = process.hrtime.bigint();
  let messages = 0;
  let bytes = 0;
  let elapsed: bigint;
  let passes = 0;
  do {
    passes++;
    const r = await pass();
    messages += r.messages;
    bytes += r.bytes;
    sink = (sink + r.check) % 0x7fff_ffff;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget || passes < minPasses);
  return { messages, bytes, ns: Number(elapsed) };
}

/** Rates of one repeat. */
export interface Sample {
  msgsPerSec: number;
  mbPerSec: number;
  metrics?: Record<string, number>;
}

export interface ImplResult {
  name: string;
  baseline: boolean;
  reference: boolean;
  note?: string;
  samples: Sample[];
  /** Medians over the repeats. */
  msgsPerSec: number;
  mbPerSec: number;
  /** Min and max MB/s (and msgs/s) over the repeats. */
  min: Sample;
  max: Sample;
  /** Medians over the repeats of each extra metric (self-timed implementations). */
  metrics?: Record<string, number>;
}

export interface RowResult {
  id: string;
  group: string;
  size: number;
  masked: boolean;
  /** Row.ratioName. */
  ratioName?: string;
  impls: ImplResult[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const WARMUP_MIN_PASSES = 5;

/** Linear-interpolated quantile, q in [0, 1]. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** One warm-up or timed run of an implementation, whichever way it is timed. */
async function timeImpl(impl: Impl, ms: number, phase: 'warmup' | 'timed'): Promise<Timed> {
  if (impl.run) return impl.run(ms, phase);
  if (!impl.pass) throw new Error(`${impl.name}: neither pass nor run`);
  return runFor(impl.pass, ms, phase === 'warmup' ? WARMUP_MIN_PASSES : 1);
}

/** Median of each metric over the samples that have it; undefined when none has any. */
function medianMetrics(samples: Sample[]): Record<string, number> | undefined {
  const keys = new Set<string>();
  for (const s of samples) for (const k of Object.keys(s.metrics ?? {})) keys.add(k);
  if (keys.size === 0) return undefined;
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = median(samples.flatMap((s) => (s.metrics?.[k] === undefined ? [] : [s.metrics[k]])));
  return out;
}

/** Warms up every implementation of the row, then times `repeats` rounds, alternating order. */
export async function runRow(row: Row, opts: Options): Promise<RowResult> {
  observeGc();
  gcEvents.length = 0;
  const impls = row.impls;
  const scale = row.durationScale ?? 1;
  // Warm-up: long enough for the optimizing compiler, and several passes whatever their size.
  for (const impl of impls) await timeImpl(impl, opts.warmup * scale, 'warmup');
  const samples: Sample[][] = impls.map(() => []);
  const windows: { sample: Sample; t0: number; t1: number; faults: number }[] = [];
  for (let r = 0; r < opts.repeats; r++) {
    // Forward on even repeats, backward on odd ones: neither side always goes first.
    const order = impls.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) {
      const t0 = performance.now();
      const faults0 = process.resourceUsage().minorPageFault;
      const t = await timeImpl(impls[i]!, opts.duration * scale, 'timed');
      const sample: Sample = { msgsPerSec: (t.messages * 1e9) / t.ns, mbPerSec: (t.bytes * 1e3) / t.ns, metrics: t.metrics };
      samples[i]!.push(sample);
      // Page faults per MB of payload: memory the kernel had to hand out (fresh pages) during the run.
      const faults = ((process.resourceUsage().minorPageFault - faults0) * 1e6) / Math.max(1, t.bytes);
      if (impls[i]!.pass) windows.push({ sample, t0, t1: performance.now(), faults });
    }
  }
  if (windows.length > 0) {
    // Let the last GC entries arrive, then charge each run with the GCs that ran inside it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const w of windows) w.sample.metrics = { ...w.sample.metrics, gcPct: gcShare(w.t0, w.t1), faultsPerMb: w.faults };
    gcEvents.length = 0;
  }
  return {
    id: row.id,
    group: row.group,
    size: row.size,
    masked: row.masked,
    ratioName: row.ratioName,
    impls: impls.map((impl, i) => {
      const s = samples[i]!;
      const byMb = [...s].sort((a, b) => a.mbPerSec - b.mbPerSec);
      return {
        name: impl.name,
        baseline: impl.baseline === true,
        reference: impl.reference === true,
        note: impl.note,
        samples: s,
        msgsPerSec: median(s.map((x) => x.msgsPerSec)),
        mbPerSec: median(s.map((x) => x.mbPerSec)),
        min: byMb[0]!,
        max: byMb[byMb.length - 1]!,
        metrics: medianMetrics(s)
      };
    })
  };
}

/**
 * The per-repeat ratios: repeat r of `impl` over repeat r of the baseline, which ran next to
 * it in time (so a slow phase of a shared machine tends to hit both). >1: `impl` is faster.
 */
function pairedRatios(row: RowResult, impl: ImplResult, against: 'baseline' | 'reference'): number[] | null {
  const base = row.impls.find((x) => x[against]);
  if (!base || base === impl) return null;
  return impl.samples.map((s, i) => s.msgsPerSec / base.samples[i]!.msgsPerSec);
}

/**
 * Median of the paired ratios (>1: faster) against the baseline, or against the row's
 * reference line (raw TCP: ws ÷ raw says where the baseline stands); null for the line itself
 * and where there is none.
 */
export function ratio(row: RowResult, impl: ImplResult, against: 'baseline' | 'reference' = 'baseline'): number | null {
  const rs = pairedRatios(row, impl, against);
  return rs === null ? null : median(rs);
}

/** Interquartile range of the paired ratios. */
export function pairedRatioRange(row: RowResult, impl: ImplResult, against: 'baseline' | 'reference' = 'baseline'): [number, number] | null {
  const rs = pairedRatios(row, impl, against);
  return rs === null ? null : [quantile(rs, 0.25), quantile(rs, 0.75)];
}

export function formatSize(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n >> 20}MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n >> 10}KiB`;
  return `${n}B`;
}

function fmtRate(x: number): string {
  if (x >= 1e7) return `${(x / 1e6).toFixed(1)}M`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(2)}k`;
  return x.toFixed(0);
}

function fmtMb(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function fmtUs(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

/** Prints aligned columns: a head, a rule, then the lines; blank lines between groups. */
export function printColumns(head: string[], lines: string[][], numeric: boolean[], groups?: string[]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i]!, numeric[i])).join('  ').trimEnd();
  console.log(fmt(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (let k = 0; k < lines.length; k++) {
    if (groups && k > 0 && groups[k] !== groups[k - 1]) console.log('');
    console.log(fmt(lines[k]!));
  }
}

/** Prints the human table: one line per implementation, ratios against the baseline. */
export function printTable(results: RowResult[]): void {
  const withLatency = results.some((row) => row.impls.some((impl) => impl.metrics?.p50Us !== undefined));
  const withReference = results.some((row) => row.impls.some((impl) => impl.reference));
  const withGc = results.some((row) => row.impls.some((impl) => impl.metrics?.gcPct !== undefined));
  const head = ['row', 'impl', 'msgs/s', 'MB/s', 'MB/s min–max', 'ratio', 'ratio IQR'];
  if (withReference) head.push('÷ raw', '÷ raw IQR');
  if (withLatency) head.push('p50/p99 µs');
  if (withGc) head.push('GC %', 'faults/MB');
  const lines: string[][] = [];
  const groups: string[] = [];
  for (const row of results) {
    for (const impl of row.impls) {
      const r = ratio(row, impl);
      const pr = pairedRatioRange(row, impl);
      const line = [
        row.id,
        impl.name,
        fmtRate(impl.msgsPerSec),
        fmtMb(impl.mbPerSec),
        `${fmtMb(impl.min.mbPerSec)}–${fmtMb(impl.max.mbPerSec)}`,
        r === null ? '' : r.toFixed(2),
        pr === null ? '' : `${pr[0].toFixed(2)}–${pr[1].toFixed(2)}`
      ];
      if (withReference) {
        const rr = ratio(row, impl, 'reference');
        const rq = pairedRatioRange(row, impl, 'reference');
        line.push(rr === null ? '' : rr.toFixed(2), rq === null ? '' : `${rq[0].toFixed(2)}–${rq[1].toFixed(2)}`);
      }
      if (withLatency) {
        const m = impl.metrics;
        line.push(m?.p50Us !== undefined && m.p99Us !== undefined ? `${fmtUs(m.p50Us)} / ${fmtUs(m.p99Us)}` : '');
      }
      if (withGc) {
        const m = impl.metrics;
        line.push(m?.gcPct !== undefined ? m.gcPct.toFixed(0) : '', m?.faultsPerMb !== undefined ? m.faultsPerMb.toFixed(0) : '');
      }
      lines.push(line);
      groups.push(row.group);
    }
  }
  printColumns(head, lines, [false, false, ...head.slice(2).map(() => true)], groups);
}

function roundMetrics(m: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) out[k] = Number(v.toFixed(2));
  return out;
}

/** One JSON object per implementation and row, each on its own line prefixed `JSON `. */
export function printJson(env: Environment, opts: Options, results: RowResult[]): void {
  console.log(`JSON ${JSON.stringify({ type: 'env', ...env, quick: opts.quick, duration: opts.duration, repeats: opts.repeats, gcBetweenRuns, placement })}`);
  for (const row of results) {
    for (const impl of row.impls) {
      const pr = pairedRatioRange(row, impl);
      console.log(
        `JSON ${JSON.stringify({
          type: 'result',
          id: row.id,
          group: row.group,
          size: row.size,
          masked: row.masked,
          impl: impl.name,
          baseline: impl.baseline,
          msgsPerSec: Math.round(impl.msgsPerSec),
          mbPerSec: Number(impl.mbPerSec.toFixed(2)),
          mbPerSecMin: Number(impl.min.mbPerSec.toFixed(2)),
          mbPerSecMax: Number(impl.max.mbPerSec.toFixed(2)),
          [row.ratioName ?? 'ratioVsWs']: ratio(row, impl),
          ratioQ1: pr?.[0] ?? null,
          ratioQ3: pr?.[1] ?? null,
          ...(row.impls.some((x) => x.reference)
            ? { reference: impl.reference, ratioVsRaw: ratio(row, impl, 'reference'), rawQ1: pairedRatioRange(row, impl, 'reference')?.[0] ?? null, rawQ3: pairedRatioRange(row, impl, 'reference')?.[1] ?? null }
            : {}),
          repeats: impl.samples.length,
          ...(impl.metrics ? { metrics: roundMetrics(impl.metrics) } : {})
        })}`
      );
    }
  }
}
