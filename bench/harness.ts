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
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

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

/** One unit of timed work. May be synchronous or return a promise. */
export type Pass = () => PassResult | Promise<PassResult>;

/** What one pass did. `check` is any number computed from the outputs (anti dead-code). */
export interface PassResult {
  messages: number;
  bytes: number;
  check: number;
}

/** One implementation of a row. */
export interface Impl {
  /** 'wsframe', 'ws', or a variant such as 'wsframe (header only)'. */
  name: string;
  /** True for the implementation the others are compared with (`ws`). */
  baseline?: boolean;
  /** What exactly is measured, printed under the table. */
  note?: string;
  pass: Pass;
}

/** A row of the table: one operation at one size, with several implementations. */
export interface Row {
  /** Stable id used by `--only`, e.g. `parse-16B-masked`. */
  id: string;
  group: string;
  size: number;
  masked: boolean;
  impls: Impl[];
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
}

export function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const opts: Options = {
    quick,
    duration: quick ? 100 : 400,
    warmup: quick ? 80 : 300,
    repeats: quick ? 5 : 9,
    only: [],
    impl: []
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
    else if (arg === '--help' || arg === '-h') {
      console.log(
        'usage: npm run bench -- [--quick] [--only id-substring[,…]] [--impl name[,…]]\n' +
          '                        [--duration ms] [--warmup ms] [--repeats n] [--gc]\n' +
          'row ids look like build-1KiB-masked, parse-64KiB-unmasked'
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
}

export interface ImplResult {
  name: string;
  baseline: boolean;
  note?: string;
  samples: Sample[];
  /** Medians over the repeats. */
  msgsPerSec: number;
  mbPerSec: number;
  /** Min and max MB/s (and msgs/s) over the repeats. */
  min: Sample;
  max: Sample;
}

export interface RowResult {
  id: string;
  group: string;
  size: number;
  masked: boolean;
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

/** Warms up every implementation of the row, then times `repeats` rounds, alternating order. */
export async function runRow(row: Row, opts: Options): Promise<RowResult> {
  const impls = row.impls;
  // Warm-up: long enough for the optimizing compiler, and several passes whatever their size.
  for (const impl of impls) await runFor(impl.pass, opts.warmup, WARMUP_MIN_PASSES);
  const samples: Sample[][] = impls.map(() => []);
  for (let r = 0; r < opts.repeats; r++) {
    // Forward on even repeats, backward on odd ones: neither side always goes first.
    const order = impls.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) {
      const t = await runFor(impls[i]!.pass, opts.duration);
      samples[i]!.push({ msgsPerSec: (t.messages * 1e9) / t.ns, mbPerSec: (t.bytes * 1e3) / t.ns });
    }
  }
  return {
    id: row.id,
    group: row.group,
    size: row.size,
    masked: row.masked,
    impls: impls.map((impl, i) => {
      const s = samples[i]!;
      const byMb = [...s].sort((a, b) => a.mbPerSec - b.mbPerSec);
      return {
        name: impl.name,
        baseline: impl.baseline === true,
        note: impl.note,
        samples: s,
        msgsPerSec: median(s.map((x) => x.msgsPerSec)),
        mbPerSec: median(s.map((x) => x.mbPerSec)),
        min: byMb[0]!,
        max: byMb[byMb.length - 1]!
      };
    })
  };
}

/**
 * The per-repeat ratios: repeat r of `impl` over repeat r of the baseline, which ran next to
 * it in time (so a slow phase of a shared machine tends to hit both). >1: `impl` is faster.
 */
function pairedRatios(row: RowResult, impl: ImplResult): number[] | null {
  const base = row.impls.find((x) => x.baseline);
  if (!base || base === impl) return null;
  return impl.samples.map((s, i) => s.msgsPerSec / base.samples[i]!.msgsPerSec);
}

/** Median of the paired ratios (>1: faster than the baseline); null for the baseline. */
export function ratio(row: RowResult, impl: ImplResult): number | null {
  const rs = pairedRatios(row, impl);
  return rs === null ? null : median(rs);
}

/** Interquartile range of the paired ratios. */
export function pairedRatioRange(row: RowResult, impl: ImplResult): [number, number] | null {
  const rs = pairedRatios(row, impl);
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

/** Prints the human table: one line per implementation, ratios against the baseline. */
export function printTable(results: RowResult[]): void {
  const head = ['row', 'impl', 'msgs/s', 'MB/s', 'MB/s min–max', 'ratio', 'ratio IQR'];
  const lines: string[][] = [];
  for (const row of results) {
    for (const impl of row.impls) {
      const r = ratio(row, impl);
      const pr = pairedRatioRange(row, impl);
      lines.push([
        row.id,
        impl.name,
        fmtRate(impl.msgsPerSec),
        fmtMb(impl.mbPerSec),
        `${fmtMb(impl.min.mbPerSec)}–${fmtMb(impl.max.mbPerSec)}`,
        r === null ? '' : r.toFixed(2),
        pr === null ? '' : `${pr[0].toFixed(2)}–${pr[1].toFixed(2)}`
      ]);
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const numeric = [false, false, true, true, true, true, true];
  const fmt = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i]!, numeric[i])).join('  ');
  console.log(fmt(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  let group = '';
  for (let i = 0, k = 0; i < results.length; i++) {
    const row = results[i]!;
    if (row.group !== group && group !== '') console.log('');
    group = row.group;
    for (let j = 0; j < row.impls.length; j++, k++) console.log(fmt(lines[k]!));
  }
}

/** One JSON object per implementation and row, each on its own line prefixed `JSON `. */
export function printJson(env: Environment, opts: Options, results: RowResult[]): void {
  console.log(`JSON ${JSON.stringify({ type: 'env', ...env, quick: opts.quick, duration: opts.duration, repeats: opts.repeats, gcBetweenRuns })}`);
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
          ratioVsWs: ratio(row, impl),
          ratioQ1: pr?.[0] ?? null,
          ratioQ3: pr?.[1] ?? null,
          repeats: impl.samples.length
        })}`
      );
    }
  }
}
