/**
 * The process-wide bounds on zlib work and on what it holds.
 *
 * - At most {@link DEFLATE_CONCURRENCY} zlib jobs (one frame or message each) run at once;
 *   the rest wait their turn in order. zlib works on the libuv thread pool, and a flood of
 *   jobs from many connections must not queue there without bound, nor take every thread
 *   from the rest of the process.
 * - Amplification, for the whole process: what a message inflates to beyond
 *   {@link AMPLIFICATION_RATIO} bytes per compressed byte received of it is "amplified", and
 *   all the amplified bytes the process holds share one allowance,
 *   {@link AMPLIFIED_BUDGET}: in messages being inflated, and in the last message each open
 *   connection handed out, for as long as that message is alive (a FinalizationRegistry
 *   tells when it was collected). Past the allowance, an inflation that would amplify more
 *   fails its connection with 1013 (try again later). So a lone peer gets any valid message
 *   within its size limits, however well it compresses, and a crowd that sends a few KB
 *   each that inflate to megabytes makes the process hold at most the allowance beyond
 *   ten bytes per byte it sent.
 * - A budget of plain bytes in flight, {@link INFLATE_BUDGET}: what inflation produced and
 *   nobody was handed yet (a message being assembled), up to the ratio (the amplified part is
 *   the allowance's); what a running inflation may still produce up to the ratio (reserved
 *   when it starts); and what waits for or is in compression. An inflation starts when its
 *   reservation fits in what is left of the budget, or, one at a time, while what the others
 *   hold leaves room; compression, which lets go of plain bytes, is never held back. When
 *   other messages in progress, whose next frame is slow to come, hold the whole budget and
 *   no inflation runs, the one that cost us most per byte its peer sent is dropped (its
 *   connection fails with 1013), so peers that stop halfway cannot hold it from everyone
 *   else, and cannot make an honest peer's large message the one to go.
 * @module
 */

import { randomFill } from 'node:crypto';

/**
 * Most zlib jobs (one message or frame each) running at once in the process.
 * @group Compression
 */
export const DEFLATE_CONCURRENCY = 10;

/**
 * Default budget of plain bytes in flight through zlib in the whole process: 64 MiB.
 * @group Compression
 */
export const INFLATE_BUDGET = 64 * 1024 * 1024;

/**
 * Default: bytes a compressed message may inflate to per compressed byte received of it
 * before the rest is amplified (ordinary JSON compresses 5-20x, and only its large messages
 * reach the allowance at all).
 * @group Compression
 */
export const AMPLIFICATION_RATIO = 10;

/**
 * Default allowance of amplified bytes for the whole process: 64 MiB (four 16 MiB messages of
 * zeros at once). Measured: 100 read loops that each keep a 16 MiB message of zeros made a
 * server hold 177 MiB above its baseline with this, 285 MiB with twice it (the allocator
 * keeps what inflation churned through).
 * @group Compression
 */
export const AMPLIFIED_BUDGET = 64 * 1024 * 1024;

// An unfinished message whose amplified bytes have not grown for this long is dropped (1013)
// when another message needs the allowance: a few KB from idle connections must not hold it
// for as long as they stay.
const STALL_MS = 1000;

// A message handed out with fewer amplified bytes than this stops counting at once: the
// FinalizationRegistry is for the large ones (a small one is at most this much per
// connection, less than its socket and read buffer cost).
const KEEP_MIN = 16 * 1024;

/** One job waiting for its turn. */
interface Waiter {
  readonly run: () => void;
  /** The inflating connection's account, or null for compression (never held back). */
  readonly account: InflateAccount | null;
  /** The most bytes the inflation may produce. */
  readonly need: number;
  /** Taken out of the queue already (in turn or not). */
  taken: boolean;
}

/** A first-in first-out queue that does not shift arrays; a waiter may leave out of turn. */
class Fifo {
  private items: Waiter[] = [];
  private head = 0;
  /** Waiters still in the queue. */
  length = 0;

  push(w: Waiter): void {
    this.items.push(w);
    this.length++;
  }

  /** The first waiter still waiting, left in place. */
  peek(): Waiter | undefined {
    while (this.head < this.items.length && this.items[this.head]!.taken) this.head++;
    if (this.head === this.items.length && this.head > 0) {
      this.items = [];
      this.head = 0;
    }
    return this.items[this.head];
  }

  /** Takes `w` out of the queue, in turn or not. */
  take(w: Waiter): Waiter {
    w.taken = true;
    this.length--;
    return w;
  }
}

let concurrency = DEFLATE_CONCURRENCY;
let budget = INFLATE_BUDGET;
let ratio = AMPLIFICATION_RATIO;
let allowance = AMPLIFIED_BUDGET;
let running = 0;
// Bytes in flight: held by accounts (up to the ratio), reserved by running inflations (what
// they may still produce up to the ratio), and waiting for or in compression.
let inflated = 0;
// Amplified bytes held: of messages in progress, and kept for messages handed out.
let amplified = 0;
let refusals = 0;
let reserved = 0;
let compressing = 0;
let inflating = 0;
let evictions = 0;
const compressions = new Fifo();
const inflations = new Fifo();
// Accounts that hold bytes.
const holders = new Set<InflateAccount>();
let pumping = false;
const ignore = (): void => {};

// libuv's thread pool can leave a queued job asleep until more work is posted: seen here with
// Node 20.20 under load, a zlib write that never completed (bytesWritten 0) until another
// thread-pool request came, so a compressed read hung, and this while other zlib jobs of the
// process kept finishing. So while the oldest running job has been running for KICK_MS, one
// tiny request is posted (a 1-byte randomFill), which wakes the pool; a long job that is
// merely busy costs one such request per KICK_MS.
const KICK_MS = 250;
const KICK = Buffer.alloc(1);
let kicks = 0;
let watch: NodeJS.Timeout | null = null;
// The running jobs, oldest first (a Set keeps insertion order): when each started.
const live = new Set<{ at: number }>();
function watchPool(): void {
  if (watch !== null || running === 0) return;
  watch = setTimeout(() => {
    watch = null;
    if (running === 0) return;
    const oldest = live.values().next().value as { at: number } | undefined;
    if (oldest !== undefined && performance.now() - oldest.at >= KICK_MS) {
      kicks++;
      randomFill(KICK, ignore);
    }
    watchPool();
  }, KICK_MS);
  watch.unref();
}

const inFlight = (): number => inflated + reserved + compressing;

/** The amplified bytes of a message handed out, counted until it is collected. */
interface Kept {
  bytes: number;
}

// Gives back what a message handed out kept, once it is garbage: the registry holds the Kept
// record, not the message.
const kept = new FinalizationRegistry<Kept>((k) => {
  amplified -= k.bytes;
  k.bytes = 0;
});

/**
 * What one connection's inflation holds: the plain bytes of its message in progress, from
 * zlib until the message (or a piece, for readFragment) is handed out, split between the
 * budget (up to the ratio) and the allowance (the amplified rest); and the amplified bytes of
 * the last message it handed out, while that lives.
 */
export class InflateAccount {
  /** Plain bytes of the message in progress held now. */
  held = 0;
  /** The job of this account that waits for its turn, if any. */
  waiting: Waiter | null = null;
  // Compressed bytes received of the message in progress, and the part of `held` that is
  // amplified (counted in `amplified`, not in `inflated`).
  private input = 0;
  private amp = 0;
  // What the running job of this account still has reserved.
  private reservation = 0;
  // Whether a job of this account runs now, and when its message last amplified more (frames
  // that inflate to nothing do not count: a peer trickling them is still stalled).
  private active = false;
  private lastGrowth = 0;
  // The last message handed out that still counts.
  private last: Kept | null = null;

  /** @param evicted called when the budget takes back what this account holds */
  constructor(private readonly evicted: () => void) {}

  /** What this account holds of the budget (the amplified part is the allowance's). */
  get inBudget(): number {
    return this.held - this.amp;
  }

  /** Plain bytes held per compressed byte received: what the message cost us per byte. */
  get cost(): number {
    return this.held / Math.max(1, this.input);
  }

  /**
   * `n` more compressed bytes of the message in progress came: its room under the ratio
   * grows, and amplified bytes it held move back into the budget.
   */
  received(n: number): void {
    this.input += n;
    const amp = Math.max(0, this.held - ratio * this.input);
    inflated += this.amp - amp;
    amplified -= this.amp - amp;
    this.amp = amp;
  }

  /** What the next inflation may produce before it is amplified: its reservation. */
  get room(): number {
    return Math.max(0, ratio * this.input - this.inBudget);
  }

  /** @internal A job starts: `need` is reserved. */
  reserve(need: number): void {
    this.active = true;
    this.reservation = need;
    reserved += need;
    inflating++;
  }

  /** @internal The job is done: what it did not use goes back. */
  unreserve(): void {
    this.active = false;
    reserved -= this.reservation;
    this.reservation = 0;
    inflating--;
  }

  /**
   * Counts `n` more bytes held (the part under the ratio from the running job's reservation,
   * the amplified rest from the process's allowance).
   * @returns false, counting nothing, when the allowance has no room for the amplified part
   */
  charge(n: number): boolean {
    const held = this.held + n;
    const amp = Math.max(0, held - ratio * this.input);
    const more = amp - this.amp;
    if (more > 0 && amplified + more > allowance && !reclaim(this, amplified + more - allowance)) {
      refusals++;
      return false;
    }
    if (this.held === 0) holders.add(this);
    if (more > 0) this.lastGrowth = performance.now();
    this.held = held;
    this.amp = amp;
    amplified += more;
    const plain = n - more;
    inflated += plain;
    const used = Math.min(plain, this.reservation);
    this.reservation -= used;
    reserved -= used;
    return true;
  }

  /**
   * The message in progress (or a piece of it) was handed to a reader as `data`: the budget
   * gets back what it held, and its amplified bytes, when there are many, stay counted while
   * `data` lives (instead of those of the message this connection handed out before: a
   * read loop keeps its last message, not every one).
   */
  handOut(data: Buffer | undefined): void {
    const amp = this.amp;
    this.forget();
    this.unkeep();
    if (data !== undefined && amp >= KEEP_MIN) {
      const k: Kept = { bytes: amp };
      amplified += amp;
      kept.register(data.buffer, k, k);
      this.last = k;
    }
  }

  // The last message handed out no longer counts.
  private unkeep(): void {
    const k = this.last;
    if (k === null) return;
    kept.unregister(k);
    amplified -= k.bytes;
    k.bytes = 0;
    this.last = null;
  }

  /** Gives back everything the message in progress holds (it was dropped). */
  release(): void {
    this.forget();
  }

  // The message in progress is gone from here: what it held goes back.
  private forget(): void {
    this.input = 0;
    if (this.held === 0) return;
    inflated -= this.held - this.amp;
    amplified -= this.amp;
    this.held = 0;
    this.amp = 0;
    holders.delete(this);
    pump();
  }

  /**
   * The connection will inflate no more: everything held goes back, the last message handed
   * out included (a read loop ends with its connection, and lets go of it then), and a job of
   * it that waits for its turn runs at once (it only rejects, without zlib work), so it
   * blocks nobody in line.
   */
  dispose(): void {
    const w = this.waiting;
    if (w !== null) {
      inflations.take(w);
      this.waiting = null;
      running++;
      this.reserve(0);
      w.run();
    }
    this.release();
    this.unkeep();
  }

  /** @internal Amplified bytes its message in progress holds, when it stalled: none else. */
  stalledAmplified(now: number): number {
    return this.active || this.waiting !== null || now - this.lastGrowth < STALL_MS ? 0 : this.amp;
  }

  /** @internal The budget drops this account's message: everything held goes back. */
  evict(): void {
    evictions++;
    this.release();
    this.evicted();
  }
}

// Makes `need` bytes of the allowance free for `account` by dropping unfinished messages of
// others that amplified and stalled, the largest first; false when that cannot be done.
function reclaim(account: InflateAccount, need: number): boolean {
  const now = performance.now();
  let stalled = 0;
  for (const a of holders) if (a !== account) stalled += a.stalledAmplified(now);
  if (stalled < need) return false;
  while (need > 0) {
    let victim: InflateAccount | null = null;
    let most = 0;
    for (const a of holders) {
      const amp = a === account ? 0 : a.stalledAmplified(now);
      if (amp > most) {
        victim = a;
        most = amp;
      }
    }
    if (victim === null) return false;
    victim.evict();
    need -= most;
  }
  return true;
}

// A job gets its slot (and an inflation its reservation) the moment it is let through, so
// the next look at the budget sees it.
function admit(w: Waiter): void {
  running++;
  watchPool();
  if (w.account !== null) {
    w.account.waiting = null;
    w.account.reserve(w.need);
  }
}

// Runs an admitted job; its slot and reservation go back when it is done.
function start<T>(job: () => Promise<T>, account: InflateAccount | null): Promise<T> {
  const since = { at: performance.now() };
  live.add(since);
  const done = (): void => {
    live.delete(since);
    if (account !== null) account.unreserve();
    running--;
    pump();
  };
  const p = job();
  p.then(done, done);
  return p;
}

// What others hold and queue for compression, beside `w`'s own message in progress.
const othersFor = (w: Waiter): number => inflated - w.account!.inBudget + compressing;

// Whether an inflation may start: its limit fits in what is left of the budget; or, one at
// a time, when what others hold leaves room (so a message larger than what is left of the
// budget, or than the budget, still goes through).
function fits(w: Waiter): boolean {
  if (inFlight() + w.need <= budget) return true;
  return inflating === 0 && othersFor(w) < budget;
}

// Compression first (it frees bytes); then the first inflation in line. (Messages in progress
// get no turn ahead of others: a peer trickling frames that inflate to nothing would keep
// new messages out of a spent budget for as long as it liked.)
function next(): Waiter | null {
  const c = compressions.peek();
  if (c !== undefined) return compressions.take(c);
  const i = inflations.peek();
  if (i === undefined) return null;
  if (fits(i)) return inflations.take(i);
  if (inflating === 0) scheduleEviction();
  return null;
}

// Eviction waits for the current turn to end: an account whose last frame just inflated is
// handed its message in a microtask, and must not be dropped in between.
let evictionScheduled = false;
function scheduleEviction(): void {
  if (evictionScheduled) return;
  evictionScheduled = true;
  setImmediate(() => {
    evictionScheduled = false;
    for (;;) {
      const i = inflations.peek();
      // Only when other messages in progress hold the whole budget by themselves (compression
      // frees its own bytes, and a running inflation may finish its message).
      if (i === undefined || inflating > 0 || fits(i) || inflated - i.account!.inBudget < budget) break;
      // Of the messages in progress other than the one that would go next (none is being
      // inflated: no inflation runs), the one that cost us most per byte its peer sent, and
      // of those the largest: a crowd of stalled bombs goes before an honest large message.
      let victim: InflateAccount | null = null;
      for (const a of holders) {
        if (a === i.account || a.held === 0) continue;
        if (victim === null || a.cost > victim.cost || (a.cost === victim.cost && a.held > victim.held)) victim = a;
      }
      if (victim === null) break;
      victim.evict();
    }
    pump();
  });
}

function pump(): void {
  if (pumping) return;
  pumping = true;
  try {
    while (running < concurrency) {
      const w = next();
      if (w === null) break;
      admit(w);
      w.run();
    }
  } finally {
    pumping = false;
  }
}

/**
 * Runs a compression job of `bytes` plain bytes when a zlib slot is free; jobs wait in order.
 * The bytes count against the budget from now until the job is done.
 */
export function compressJob<T>(bytes: number, job: () => Promise<T>): Promise<T> {
  compressing += bytes;
  const run = (): Promise<T> => {
    const p = start(job, null);
    const free = (): void => {
      compressing -= bytes;
      pump();
    };
    p.then(free, free);
    return p;
  };
  if (running < concurrency && compressions.length === 0) {
    running++;
    watchPool();
    return run();
  }
  return new Promise<void>((resolve) => compressions.push({ run: resolve, account: null, need: 0, taken: false })).then(run);
}

/**
 * Runs an inflation job of `account` that may produce up to `limit` bytes, when a zlib slot
 * is free and the budget has room for it; jobs wait in order of arrival.
 */
export function inflateJob<T>(account: InflateAccount, limit: number, job: () => Promise<T>): Promise<T> {
  // Past the budget a job runs alone anyway: reserving more (or Infinity) changes nothing.
  const need = Math.min(limit, budget);
  if (running < concurrency && compressions.length === 0 && inflations.length === 0) {
    const w: Waiter = { run: ignore, account, need, taken: false };
    if (fits(w)) {
      admit(w);
      return start(job, account);
    }
  }
  return new Promise<void>((resolve) => {
    const queued: Waiter = { run: resolve, account, need, taken: false };
    account.waiting = queued;
    inflations.push(queued);
    pump();
  }).then(() => start(job, account));
}

/**
 * The process-wide zlib settings.
 * @group Compression
 */
export interface ZlibLimits {
  /** Most zlib jobs running at once. Default {@link DEFLATE_CONCURRENCY}. */
  concurrency?: number;
  /** Plain bytes in flight through zlib before new inflation waits. Default {@link INFLATE_BUDGET}. */
  inflateBudget?: number;
  /**
   * Bytes a message may inflate to per compressed byte received of it before the rest is
   * amplified and counts against `amplifiedBudget`. Default {@link AMPLIFICATION_RATIO}.
   */
  amplificationRatio?: number;
  /**
   * Amplified bytes the whole process may hold (messages being inflated, and the last
   * message each connection handed out while it lives); past it, an inflation that would
   * amplify more fails its connection with 1013. Default {@link AMPLIFIED_BUDGET}.
   */
  amplifiedBudget?: number;
}

/**
 * Sets the process-wide zlib bounds (every connection of every server and client shares
 * them) and returns the ones in force before.
 * @throws {TypeError} for a value that is not a number
 * @throws {RangeError} for a concurrency, a budget or a ratio below 1, or an allowance below 0
 * @group Compression
 */
export function setZlibLimits(limits: ZlibLimits): Required<ZlibLimits> {
  const before = { concurrency, inflateBudget: budget, amplificationRatio: ratio, amplifiedBudget: allowance };
  const { concurrency: c = concurrency, inflateBudget: b = budget, amplificationRatio: r = ratio, amplifiedBudget: a = allowance } = limits;
  for (const [name, v] of [['concurrency', c], ['inflateBudget', b], ['amplificationRatio', r], ['amplifiedBudget', a]] as const) {
    if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${name} must be a number, not ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  }
  if (!(Number.isInteger(c) && c >= 1)) throw new RangeError(`concurrency must be an integer of 1 or more, not ${c}`);
  if (!(b >= 1)) throw new RangeError(`inflateBudget must be 1 or more, not ${b}`);
  if (!(r >= 1)) throw new RangeError(`amplificationRatio must be 1 or more, not ${r}`);
  if (!(a >= 0)) throw new RangeError(`amplifiedBudget must be 0 or more, not ${a}`);
  concurrency = c;
  budget = b;
  ratio = r;
  allowance = a;
  pump();
  return before;
}

/**
 * @internal The zlib jobs running and waiting now, the bytes in flight, the amplified bytes
 * held, and the evictions, refusals (inflations failed for want of allowance) and
 * thread-pool wake-ups so far (for tests).
 */
export function deflateLoad(): {
  running: number;
  waiting: number;
  inFlight: number;
  amplified: number;
  evictions: number;
  refusals: number;
  kicks: number;
} {
  return { running, waiting: compressions.length + inflations.length, inFlight: inFlight(), amplified, evictions, refusals, kicks };
}
