/**
 * Bounded waits for every test: `within` (a promise, with a bound), `until` (a condition,
 * polled, with a bound) and `delay`. No import from src/, so the CLI and load tests can use
 * them without loading the library into the test process.
 */

/** Bound for anything a test waits on: generous, for a noisy 2-core machine. */
export const WAIT_MS = 5000;

/** Rejects when `p` takes longer than `ms` (the timer is cleared either way). */
export function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
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
