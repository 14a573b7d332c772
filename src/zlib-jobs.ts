/**
 * The process-wide bound on zlib work: at most {@link DEFLATE_CONCURRENCY} zlib jobs (one
 * message or frame each) run at once, the rest wait their turn in order. zlib works on the
 * libuv thread pool, and a flood of jobs from many connections must not queue there without
 * bound, nor take every thread from the rest of the process.
 * @module
 */

/** Most zlib jobs (one message or frame each) running at once in the process. */
export const DEFLATE_CONCURRENCY = 10;

let running = 0;
const waiting: Array<() => void> = [];

/** Runs `job` when fewer than DEFLATE_CONCURRENCY jobs are running; jobs wait in order. */
export function limited<T>(job: () => Promise<T>): Promise<T> {
  const run = (): Promise<T> => {
    const done = (): void => {
      const next = waiting.shift();
      if (next !== undefined) next();
      else running--;
    };
    const p = job();
    p.then(done, done);
    return p;
  };
  if (running < DEFLATE_CONCURRENCY) {
    running++;
    return run();
  }
  return new Promise<void>((resolve) => waiting.push(resolve)).then(run);
}

/** @internal How many zlib jobs run and wait now (for tests). */
export function deflateLoad(): { running: number; waiting: number } {
  return { running, waiting: waiting.length };
}

