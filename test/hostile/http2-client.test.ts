/**
 * Hostile HTTP/2 servers against our client (issue 24, findings 1, 5 and 6):
 * - a server that answers the extended CONNECT and then pushes streams of 1 MiB each (800
 *   pushes took a client from 52 to 259 MiB of RSS: 256 KiB held per pushed stream, without
 *   limit). Bound: push is disabled in our SETTINGS and a pushed stream is reset, so the
 *   client holds nothing it did not ask for. The victim runs in a child process.
 * - a server that accepts TCP and stays silent: 20 connects with a 200 ms timeout left 20
 *   client sockets open. Bound: a failed handshake destroys its session; a graceful close
 *   lingers at most CLOSE_LINGER_MS.
 * - a server whose SETTINGS_MAX_CONCURRENT_STREAMS are all in use: the next connect waited
 *   for a slot and failed at its timeout. Now it opens another session to the origin.
 */
import test, { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AsyncSocket, HandshakeError, connect, sendText, upgradeHttp2 } from '../../src/index';
import { CLOSE_LINGER_MS } from '../../src/handshake/client-http2';
import { within } from '../helpers/socket-pair';
import { ROOT, transpileTree } from '../helpers/transpile';

const MiB = 1024 * 1024;
const fmt = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

/** An h2c server that serves extended CONNECT; `onWebSocket` gets each stream once answered. */
async function h2cServer(
  t: ExecutionContext,
  settings: http2.Settings,
  onWebSocket: (stream: http2.ServerHttp2Stream, ws: AsyncSocket) => void
): Promise<{ url: string; sessions: () => number }> {
  const server = http2.createServer({ settings: { enableConnectProtocol: true, ...settings } });
  let sessions = 0;
  server.on('session', () => sessions++);
  server.on('stream', (stream, headers) => {
    upgradeHttp2(stream, headers).then(
      (ws) => onWebSocket(stream, ws),
      () => undefined
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.close();
  });
  return { url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, sessions: () => sessions };
}

// The bound: what the client's memory may grow by while a server pushes 800 streams of 1 MiB.
const PUSH_HELD = 24 * MiB;
const PUSHES = 800;

test.serial(`a server that pushes ${PUSHES} streams of 1 MiB: the client holds under ${fmt(PUSH_HELD)} (push disabled, pushed streams reset)`, async (t) => {
  t.timeout(60_000);
  let refused = 0;
  let pushed = 0;
  const body = Buffer.alloc(MiB, 0x61);
  const { url } = await h2cServer(t, {}, (stream, ws) => {
    let left = PUSHES;
    const next = (): void => {
      if (left-- === 0) {
        void sendText(ws, `pushed ${pushed}, refused ${refused}`).catch(() => undefined);
        return;
      }
      try {
        stream.pushStream({ ':path': `/push/${left}` }, (err, push) => {
          if (err) refused++;
          else {
            pushed++;
            push.on('error', () => undefined);
            push.respond({ ':status': 200 });
            push.end(body);
          }
          setImmediate(next);
        });
      } catch {
        refused++;
        setImmediate(next);
      }
    };
    next();
  });
  const out = mkdtempSync(path.join(os.tmpdir(), 'wsframe-h2client-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const script = transpileTree(out, [path.join(__dirname, 'http2-client-child.ts')])(path.join(__dirname, 'http2-client-child.ts'));
  const child = spawn(process.execPath, ['--expose-gc', script], { cwd: ROOT, env: { ...process.env, WSFRAME_URL: url }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.teardown(() => child.kill('SIGKILL'));
  const report = await within(
    new Promise<{ message?: string; rss: number; arrayBuffers: number; error?: string }>((resolve, reject) => {
      child.on('message', (m: { report?: { message?: string; rss: number; arrayBuffers: number; error?: string } }) => m.report && resolve(m.report));
      child.once('exit', (code) => reject(new Error(`the client child exited with ${code}`)));
    }),
    'the client child to report',
    45_000
  );
  t.log(`${report.message}; the client grew by ${fmt(report.rss)} of RSS, ${fmt(report.arrayBuffers)} of ArrayBuffers`);
  t.is(report.error, undefined);
  t.is(report.message, `pushed 0, refused ${PUSHES}`, 'the server could not push: the client disabled it');
  t.true(report.arrayBuffers < PUSH_HELD, `${fmt(report.arrayBuffers)} of ArrayBuffers`);
  t.true(report.rss < PUSH_HELD * 2, `${fmt(report.rss)} of RSS`);
});

const TCP = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

/** The TCP sockets of this process once their count has not changed for 200 ms (bounded). */
async function settledTCP(): Promise<number> {
  let last = TCP();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = TCP();
    if (now === last) return now;
    last = now;
  }
  return last;
}

test.serial('20 connects to an HTTP/2 server that accepts TCP and stays silent leave no socket of ours behind', async (t) => {
  t.timeout(30_000);
  const held: net.Socket[] = [];
  // Half-open allowed, nothing ever written: our FIN alone does not close these connections.
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    held.push(s);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    held.forEach((s) => s.destroy());
    server.close();
  });
  const base = await settledTCP();
  const url = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
  // One after the other: each failure ends its session, and the next connect opens a new one.
  for (let i = 0; i < 20; i++) {
    const err = await connect(url, { http2: true, timeout: 200 }).then(
      () => null,
      (e: unknown) => e
    );
    t.true(err instanceof HandshakeError && /within 200 ms/.test(err.message), String(err));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const ours = TCP() - base - held.length;
  t.log(`2 s after 20 failed connects: ${ours} client sockets open (the server holds its ${held.length} ends)`);
  t.is(held.length, 20);
  t.is(ours, 0);
});

test.serial(`a session closed gracefully to a server that never closes its end is cut within CLOSE_LINGER_MS (${CLOSE_LINGER_MS} ms)`, async (t) => {
  t.timeout(30_000);
  const { url } = await h2cServer(t, {}, () => undefined);
  // A proxy that passes everything on but never ends its side towards us: after our GOAWAY and
  // FIN, our socket waits for an end that never comes.
  const port = Number(new URL(url).port);
  const sockets: net.Socket[] = [];
  const proxy = net.createServer({ allowHalfOpen: true }, (c) => {
    const u = net.connect(port, '127.0.0.1');
    sockets.push(c, u);
    c.pipe(u);
    u.pipe(c, { end: false });
    c.on('error', () => undefined);
    u.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    proxy.close();
  });
  const base = await settledTCP();
  const ws = await connect(`ws://127.0.0.1:${(proxy.address() as net.AddressInfo).port}/`, { http2: true });
  ws.destroy();
  const started = Date.now();
  // Left open then: the proxy's end towards us (kept by the test), and ours until it is cut.
  while (Date.now() - started < CLOSE_LINGER_MS + 3000 && TCP() - base > 1) await new Promise((r) => setTimeout(r, 50));
  const ms = Date.now() - started;
  t.log(`our end of the session was cut ${ms} ms after its last WebSocket closed`);
  t.is(TCP() - base, 1, 'only the proxy\'s socket is left');
  t.true(ms < CLOSE_LINGER_MS + 2000, `${ms} ms`);
});

test.serial('with the server\'s SETTINGS_MAX_CONCURRENT_STREAMS in use, the next WebSocket opens another session', async (t) => {
  t.timeout(30_000);
  const { url, sessions } = await h2cServer(t, { maxConcurrentStreams: 4 }, () => undefined);
  const first = await within(connect(url, { http2: true }), 'the first WebSocket');
  t.teardown(() => first.destroy());
  const more = await within(Promise.all(Array.from({ length: 3 }, () => connect(url, { http2: true }))), 'three more');
  t.teardown(() => more.forEach((w) => w.destroy()));
  t.is(sessions(), 1, 'four share one session');
  const fifth = await within(connect(url, { http2: true, timeout: 2000 }), 'the fifth WebSocket', 5000);
  t.teardown(() => fifth.destroy());
  const many = await within(Promise.all(Array.from({ length: 6 }, () => connect(url, { http2: true, timeout: 2000 }))), 'six more', 5000);
  t.teardown(() => many.forEach((w) => w.destroy()));
  t.log(`11 WebSockets with 4 streams a session: ${sessions()} sessions`);
  t.is(sessions(), 3);
});
