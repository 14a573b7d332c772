/**
 * Load: many concurrent connections exchanging mixed messages with a `listen()` echo server
 * in its own process, and the server's memory per idle connection.
 *
 * Default (npm test): 200 connections x 50 messages, 300 idle connections.
 * LOAD_FULL=1: 1,000 connections x 100 messages, 2,000 idle connections.
 */
import test from 'ava';
import { AsyncSocket, close } from '../../src/index';
import { FULL, KiB, countUnhandled, exchange, fmt, openMany, startServer, within } from './harness';

const CONNECTIONS = FULL ? 1000 : 200;
const MESSAGES = FULL ? 100 : 50;
const IDLE = FULL ? 2000 : 300;

// Generous bounds: about 5x what was measured (≈ 4-5 KiB of heap per idle connection), so a
// regression that multiplies the cost fails while noise does not.
const MAX_HEAP_PER_IDLE = 24 * KiB;
const MAX_RSS_PER_IDLE = 64 * KiB;

test.serial(`${CONNECTIONS} concurrent connections x ${MESSAGES} mixed messages: nothing lost or reordered, every close clean`, async (t) => {
  t.timeout(FULL ? 600_000 : 60_000);
  const unhandled = countUnhandled();
  const server = await startServer();
  let conns: AsyncSocket[] = [];
  t.teardown(async () => {
    for (const ws of conns) ws.destroy();
    unhandled.stop();
    await server.stop();
  });

  const t0 = performance.now();
  conns = await within(openMany(server.url(), CONNECTIONS), `${CONNECTIONS} handshakes`, 60_000);
  const opened = performance.now() - t0;
  const peak = await server.mem(false);
  t.is(peak.clients, CONNECTIONS, 'all connections are open at once on the server');

  const t1 = performance.now();
  const results = await within(
    Promise.allSettled(conns.map((ws, i) => exchange(ws, i, MESSAGES))),
    'every exchange',
    FULL ? 480_000 : 45_000
  );
  const elapsed = performance.now() - t1;

  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.deepEqual(
    failures.slice(0, 5).map((f) => String(f.reason)),
    [],
    `${failures.length} of ${CONNECTIONS} connections failed`
  );
  const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const messages = ok.reduce((n, r) => n + r.messages, 0);
  const bytes = ok.reduce((n, r) => n + r.bytes, 0);
  const fragmented = ok.reduce((n, r) => n + r.fragmented, 0);
  t.is(messages, CONNECTIONS * MESSAGES, 'every message came back');
  const unclean = ok.filter((r) => !(r.close.clean && r.close.code === 1000));
  t.deepEqual(unclean.slice(0, 5).map((r) => r.close), [], `${unclean.length} closes were not clean 1000`);

  const after = await server.mem(false);
  t.is(after.unhandled, 0, 'no unhandled rejection in the server');
  t.is(unhandled.count(), 0, `no unhandled rejection in the clients: ${unhandled.errors.map(String).join('; ')}`);
  const errors = await server.errors();
  t.deepEqual(errors.slice(0, 5), [], 'no handler failed on the server');
  const stopped = await server.stop();
  t.is(stopped?.unhandled, 0);

  const rate = messages / (elapsed / 1000);
  t.log(
    `${CONNECTIONS} connections opened in ${(opened / 1000).toFixed(2)} s; ` +
      `${messages} messages (${fragmented} fragmented, ${fmt(bytes)} each way) echoed in ${(elapsed / 1000).toFixed(2)} s: ` +
      `${Math.round(rate)} messages/s, ${fmt(bytes / (elapsed / 1000))}/s each way; server RSS ${fmt(after.rss)}, longest server event-loop delay ${Math.round(after.maxLoopDelayMs)} ms`
  );
});

test.serial(`server memory per idle connection (${IDLE} connections)`, async (t) => {
  t.timeout(FULL ? 300_000 : 60_000);
  const server = await startServer();
  let conns: AsyncSocket[] = [];
  t.teardown(async () => {
    for (const ws of conns) ws.destroy();
    await server.stop();
  });
  // Warm up: the code paths of a connection's life are compiled and lazily loaded modules are in.
  const warm = await openMany(server.url(), 50);
  await Promise.all(warm.map((ws, i) => exchange(ws, i, 4)));
  await within(
    (async () => {
      while ((await server.mem(false)).clients > 0) await new Promise((r) => setTimeout(r, 20));
    })(),
    'the warm-up connections to close',
    10_000
  );

  const before = await server.mem(true);
  conns = await within(openMany(server.url(), IDLE), `${IDLE} handshakes`, 120_000);
  await new Promise((r) => setTimeout(r, 200)); // the last handshakes' handlers are running
  const open = await server.mem(true);
  t.is(open.clients, IDLE);
  const heap = (open.heapUsed - before.heapUsed) / IDLE;
  const external = (open.external - before.external) / IDLE;
  const rss = (open.rss - before.rss) / IDLE;

  const closes = await within(Promise.all(conns.map((ws) => close(ws))), 'the idle connections to close', 60_000);
  t.true(closes.every((c) => c.clean));
  conns = [];
  const stopped = await server.stop();
  t.is(stopped?.unhandled, 0);

  t.log(
    `per idle connection (${IDLE}): heap ${fmt(heap)}, external ${fmt(external)}, RSS ${fmt(rss)} ` +
      `(server heap ${fmt(before.heapUsed)} -> ${fmt(open.heapUsed)}, RSS ${fmt(before.rss)} -> ${fmt(open.rss)})`
  );
  t.true(heap > 0 && heap < MAX_HEAP_PER_IDLE, `heap per idle connection ${fmt(heap)} under ${fmt(MAX_HEAP_PER_IDLE)}`);
  t.true(rss < MAX_RSS_PER_IDLE, `RSS per idle connection ${fmt(rss)} under ${fmt(MAX_RSS_PER_IDLE)}`);
  t.true(external < 4 * KiB, `external memory per idle connection ${fmt(external)}: idle connections hold no buffers`);
});
