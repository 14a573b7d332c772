/**
 * Bounded waits for every test: `within` (a promise, with a bound), `until` (a condition,
 * polled, with a bound) and `delay`. No import from src/, so the CLI and load tests can use
 * them without loading the library into the test process.
 */

/** Bound for anything a test waits on: generous, for a noisy 2-core machine. */
export const WAIT_MS = 5000;

/**
 * Rejects when `p` takes longer than `ms` of the time this process was running (the timer is
 * cleared either way). Time the process lost does not count: a tick of the clock that comes
 * far later than asked (the event loop was held up, or the machine did not run us) adds only
 * twice its period. And before it rejects, I/O that completed meanwhile is let through once,
 * so a result that was ready when the loop came back wins over the bound.
 */
export function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  const tick = Math.min(100, ms);
  const timeout = new Promise<never>((_, reject) => {
    let counted = 0;
    let last = performance.now();
    const step = (): void => {
      const now = performance.now();
      counted += Math.min(now - last, 2 * tick);
      last = now;
      if (counted < ms) {
        timer = setTimeout(step, Math.min(tick, ms - counted));
        return;
      }
      setImmediate(() => settled || reject(new Error(`timed out after ${ms} ms waiting for ${what}`)));
    };
    timer = setTimeout(step, tick);
  });
  const watched = p.finally(() => (settled = true));
  return Promise.race([watched, timeout]).finally(() => clearTimeout(timer));
}

/** A pause of `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` every `every` ms until it holds; rejects after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = WAIT_MS, every = 1): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(every);
  }
}
