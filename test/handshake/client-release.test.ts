/**
 * Issue 11, finding 7: every failure path of `connect()` releases what it armed (the
 * handshake timer, the abort listener, the socket), so a process whose connect failed can
 * exit at once. Each case runs `connect` in a child process (src/ transpiled once, as the CLI
 * tests do) that prints how the promise settled, its abort listeners and its timers right
 * after; the test then measures how long the child takes to exit. Before the fix a header
 * with CR/LF rejected with Node's own `TypeError [ERR_INVALID_CHAR]` and the process stayed
 * up for the whole 10 s handshake timeout.
 */
import test, { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { transpileTree, ROOT } from '../helpers/transpile';
import { within } from '../helpers/socket-pair';
import { listeningWsServer } from '../helpers/ws-server';
import { connect } from '../../src';

const WAIT_MS = 30_000; // bound on a child's whole run (a busy 2-core machine starts node slowly)
// The child must be gone this soon after connect settled. The handshake timeout it would
// otherwise wait for is 10 s (the default): the gap between the two is wide on purpose.
const EXIT_WITHIN_MS = 4000;

const OUT = mkdtempSync(join(tmpdir(), 'wsframe-client-release-'));
let CHILD = '';

// The child: connect(url, options) with an AbortSignal, then one JSON line on how it went.
// Options come as JSON; `tlsGarbage` stands for TLS options that do not parse.
const CHILD_SOURCE = (indexJs: string): string => `
const { getEventListeners } = require('node:events');
const { connect, HandshakeError } = require(${JSON.stringify(indexJs)});
const [url, json] = process.argv.slice(2);
const options = JSON.parse(json);
const controller = new AbortController();
const report = (outcome) => {
  outcome.abortListeners = getEventListeners(controller.signal, 'abort').length;
  outcome.timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  process.stdout.write(JSON.stringify(outcome) + '\\n');
};
connect(url, { ...options, signal: controller.signal }).then(
  (ws) => { report({ resolved: true }); ws.destroy(); },
  (err) => report({
    name: err.name,
    typeError: err instanceof TypeError,
    handshakeError: err instanceof HandshakeError,
    code: err.code,
    causeCode: err.cause && err.cause.code,
    message: err.message
  })
);
`;

test.before(() => {
  const js = transpileTree(OUT);
  CHILD = join(OUT, 'connect-child.js');
  writeFileSync(CHILD, CHILD_SOURCE(js(join(ROOT, 'src', 'index.ts'))));
});

test.after.always(() => rmSync(OUT, { recursive: true, force: true }));

interface Outcome {
  resolved?: boolean;
  name?: string;
  typeError?: boolean;
  handshakeError?: boolean;
  code?: string;
  causeCode?: string;
  message?: string;
  abortListeners: number;
  timers: number;
}

/** Runs connect(url, options) in a child; resolves with its report and how long it took to exit after it. */
async function connectInChild(
  t: ExecutionContext,
  url: string,
  options: object
): Promise<{ outcome: Outcome; exitMs: number; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CHILD, url, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  let reportedAt = 0;
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    if (reportedAt === 0 && stdout.includes('\n')) reportedAt = Date.now();
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await within(
    new Promise<number | null>((resolve) => child.once('close', (c: number | null) => resolve(c))),
    'the child to exit',
    WAIT_MS
  );
  t.not(reportedAt, 0, `the child never reported; stderr: ${stderr}`);
  const outcome = JSON.parse(stdout.split('\n')[0]!) as Outcome;
  return { outcome, exitMs: Date.now() - reportedAt, code, stderr };
}

/** A TCP server that counts connections and never answers. */
async function silentServer(t: ExecutionContext): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      })
  );
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

for (const [what, options, option] of [
  ['a header value with CR/LF', { headers: { 'X-Api-Key': 'k\r\nInjected: 1' } }, 'headers'],
  ['a header name that is not a token', { headers: { 'X Api Key': 'k' } }, 'headers'],
  ['an origin with CR/LF', { origin: 'https://a.example\r\nInjected: 1' }, 'origin']
] as const) {
  test(`${what}: a TypeError naming the option (not the value), nothing sent, and the process exits at once`, async (t) => {
    const server = await silentServer(t);
    const { outcome, exitMs, code, stderr } = await connectInChild(t, `ws://127.0.0.1:${server.port}/`, options);
    t.log(`${what}: ${JSON.stringify(outcome)}; the child exited ${exitMs} ms after the rejection`);
    t.is(code, 0, stderr);
    t.true(outcome.typeError, JSON.stringify(outcome));
    t.is(outcome.code, undefined, 'our TypeError, not Node’s ERR_INVALID_CHAR / ERR_INVALID_HTTP_TOKEN');
    t.regex(outcome.message ?? '', new RegExp(`^connect\\(\\) option ${option}: `));
    t.notRegex(outcome.message ?? '', /Injected|k\r/, 'the value (maybe a secret) is not in the message');
    t.is(outcome.abortListeners, 0, 'the abort listener is removed');
    t.is(outcome.timers, 0, 'no handshake timer left');
    t.true(exitMs < EXIT_WITHIN_MS, `exited ${exitMs} ms after the rejection (bound ${EXIT_WITHIN_MS} ms)`);
    t.is(server.connections(), 0, 'nothing was sent');
  });
}

test('TLS options that Node refuses: a HandshakeError with the cause, and the process exits at once', async (t) => {
  const server = await silentServer(t);
  const { outcome, exitMs, code, stderr } = await connectInChild(t, `wss://127.0.0.1:${server.port}/`, {
    tls: { key: 'not a key', cert: 'not a certificate' }
  });
  t.log(`bad TLS options: ${JSON.stringify(outcome)}; the child exited ${exitMs} ms after the rejection`);
  t.is(code, 0, stderr);
  t.true(outcome.handshakeError, JSON.stringify(outcome));
  t.regex(outcome.causeCode ?? '', /^ERR_OSSL_/);
  t.is(outcome.abortListeners, 0);
  t.is(outcome.timers, 0);
  t.true(exitMs < EXIT_WITHIN_MS, `exited ${exitMs} ms after the rejection (bound ${EXIT_WITHIN_MS} ms)`);
});

test('keepalive options out of range: a RangeError rejection before anything is sent (no uncaught exception)', async (t) => {
  const wss = await listeningWsServer(t);
  let connections = 0;
  wss.on('connection', () => connections++);
  const { port } = wss.address() as net.AddressInfo;
  const { outcome, exitMs, code, stderr } = await connectInChild(t, `ws://127.0.0.1:${port}/`, { keepalive: { interval: 0 } });
  t.log(`keepalive interval 0: ${JSON.stringify(outcome)}; the child exited ${exitMs} ms after the rejection`);
  t.is(code, 0, stderr);
  t.is(outcome.name, 'RangeError', JSON.stringify(outcome));
  t.regex(outcome.message ?? '', /keepalive\.interval/);
  t.is(outcome.abortListeners, 0);
  t.is(outcome.timers, 0);
  t.true(exitMs < EXIT_WITHIN_MS, `exited ${exitMs} ms after the rejection (bound ${EXIT_WITHIN_MS} ms)`);
  // The child has exited: a handshake it had begun would have reached the server by now or never.
  t.is(connections, 0, 'the options were refused before connecting');
});

test('a timeout or maxRedirects out of range: a RangeError before anything is sent (NaN meant no bound, Infinity 1 ms)', async (t) => {
  const server = await silentServer(t);
  const url = `ws://127.0.0.1:${server.port}/`;
  for (const options of [
    { timeout: Number.NaN },
    { timeout: -1 },
    { timeout: Number.POSITIVE_INFINITY },
    { timeout: 2 ** 31 },
    { followRedirects: true, maxRedirects: -1 },
    { followRedirects: true, maxRedirects: 1.5 }
  ]) {
    // Bounded: before the fix, NaN left the handshake pending forever.
    const err = await within(
      connect(url, options).then(
        (ws) => {
          ws.destroy();
          return ws;
        },
        (e: unknown) => e
      ),
      `connect(${inspect(options)}) to settle`,
      3000 // far more than a rejection before any I/O needs
    ).catch((e: unknown) => e);
    t.true(err instanceof RangeError, `${inspect(options)} → ${String(err)}`);
  }
  t.is(server.connections(), 0, 'nothing was sent');
});
