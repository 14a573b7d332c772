// A real headless Chromium against the demo (demo/server.ts, what `npm start` serves): the chat
// page between two browser pages, and the browser's own WebSocket against /echo for text,
// binary, a 1 MiB message and a close with code and reason; the same over HTTP/2 (`npm start
// -- --http2`, a self-signed certificate Chromium is told to trust by its key), where the
// server records that each WebSocket came as an extended CONNECT (RFC 8441). Chromium offers
// permessage-deflate on every connection and the demo accepts it, so all of this runs
// compressed; one test checks that it was agreed and that compressible and random messages of
// 1 KiB to 1 MiB come back intact, in fewer bytes on the wire.
//
// Chromium comes from Debian (`apt-get install chromium`, done by .ci/run) at /usr/bin/chromium,
// or CHROMIUM_PATH. Without it the tests are skipped on a developer machine and fail in CI
// (when CI is set). Chromium may only reach 127.0.0.1: names do not resolve, requests to
// other hosts are aborted, and every URL it asked for is checked at the end.
import test, { type ExecutionContext } from 'ava';
import { X509Certificate, createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import type { Server } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startDemo } from '../../demo/server';
import { Opcode, listen, messages, sendBinary, sendText } from '../../src/index';
import { selfSignedCert } from '../helpers/tls-cert';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const IN_CI = Boolean(process.env.CI);
const WAIT_MS = 15_000; // bound on every wait for the page or a message

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const HAVE_CHROMIUM = executable(CHROMIUM);
const browserTest = HAVE_CHROMIUM || IN_CI ? test.serial : test.skip;
if (!HAVE_CHROMIUM && !IN_CI) {
  console.log(
    `test/browser/demo.test.ts: SKIPPED: no Chromium at ${CHROMIUM} ` +
      '(install Debian\'s chromium with apt-get, or set CHROMIUM_PATH); in CI (CI set) these tests fail instead'
  );
}

let browser: Browser | undefined;
let server: Server | undefined;
let origin = '';
// The demo over HTTPS with HTTP/2 (npm start -- --http2), and the HTTP version of each WebSocket it opened.
let h2Server: Http2SecureServer | undefined;
let h2Origin = '';
const h2Sockets: Array<{ path: string; version: string }> = [];
const requested: string[] = []; // every URL Chromium asked for, WebSockets included
const pageErrors: string[] = [];

test.before(async () => {
  if (!HAVE_CHROMIUM) {
    throw new Error(`CI is set but there is no Chromium at ${CHROMIUM}: the browser interop test must run in CI (.ci/run installs it)`);
  }
  server = await startDemo(0, '127.0.0.1');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tls = await selfSignedCert();
  h2Server = (await startDemo(0, '127.0.0.1', {
    http2: tls,
    onWebSocket: (path, version) => h2Sockets.push({ path, version })
  })) as Http2SecureServer;
  h2Origin = `https://127.0.0.1:${(h2Server.address() as AddressInfo).port}`;
  // Chromium trusts this one self-signed certificate (by its public key's SHA-256), nothing else.
  const spki = createHash('sha256')
    .update(new X509Certificate(tls.cert).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      `--ignore-certificate-errors-spki-list=${spki}`
    ]
  });
});

test.after.always(async () => {
  const bounded = (p: Promise<unknown>): Promise<unknown> =>
    Promise.race([p.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  if (browser) await bounded(browser.close());
  if (server) {
    const s = server;
    s.closeAllConnections();
    await bounded(new Promise((resolve) => s.close(resolve)));
  }
  if (h2Server) {
    const s = h2Server;
    await bounded(new Promise((resolve) => s.close(resolve)));
  }
});

/** A fresh context (its own cookies and storage) whose requests may only go to the demo server. */
async function newPage(allowed = origin): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser!.newContext();
  context.setDefaultTimeout(WAIT_MS);
  await context.route('**/*', (route) => {
    const url = route.request().url();
    requested.push(url);
    return url.startsWith(`${allowed}/`) ? route.continue() : route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('websocket', (ws) => requested.push(ws.url()));
  page.on('pageerror', (err) => pageErrors.push(err.message));
  return { context, page };
}

async function openChat(name: string): Promise<{ context: BrowserContext; page: Page }> {
  const opened = await newPage();
  await opened.page.goto(`${origin}/`);
  await opened.page.locator('#state[data-state="open"]').waitFor();
  await opened.page.fill('#name', name);
  return opened;
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

browserTest('the chat page: messages come back in #log, and two pages see each other', async (t) => {
  t.timeout(30_000);
  const alice = await openChat('alice');
  const bob = await openChat('bob');
  try {
    t.is(await alice.page.title(), 'wsframe demo');
    t.regex((await alice.page.textContent('#state')) ?? '', /^connected \(protocol chat\.v1, permessage-deflate(; [a-z_]+(=\d+)?)*\)$/);

    await say(alice.page, 'hello from alice ✓');
    for (const { page } of [alice, bob]) {
      await page.locator('#log p', { hasText: 'alice: hello from alice ✓' }).waitFor();
    }
    t.is(await alice.page.inputValue('#text'), '', 'the form is cleared after sending');
    t.is(await alice.page.locator('#log p', { hasText: 'alice: hello from alice' }).getAttribute('class'), 'me');

    await say(bob.page, 'hi alice, bob here — 你好');
    for (const { page } of [alice, bob]) {
      await page.locator('#log p', { hasText: 'bob: hi alice, bob here — 你好' }).waitFor();
    }
    t.deepEqual(await alice.page.locator('#log p').allTextContents(), [
      'alice: hello from alice ✓',
      'bob: hi alice, bob here — 你好'
    ]);
    t.deepEqual(await bob.page.locator('#log p').allTextContents(), await alice.page.locator('#log p').allTextContents());

    // The page's own buttons: a 1 MiB binary message is echoed, Close ends cleanly with its code.
    await alice.page.click('#binary');
    await alice.page.locator('#log p', { hasText: 'binary echo: 1048576 bytes' }).waitFor();
    await alice.page.click('#close');
    await alice.page.locator('#state[data-state="closed"]').waitFor();
    t.is(await alice.page.textContent('#state'), 'closed: 1000 bye from the page (clean)');

    // Bob's connection is unaffected and alice has left the room.
    await say(bob.page, 'still here');
    await bob.page.locator('#log p', { hasText: 'bob: still here' }).waitFor();
    t.is(await alice.page.locator('#log p', { hasText: 'still here' }).count(), 0);
  } finally {
    await alice.context.close();
    await bob.context.close();
  }
});

interface EchoResult {
  protocol: string;
  extensions: string;
  texts: string[];
  binaries: number[][];
  big: { length: number; mismatches: number; sha256: string };
  close: { code: number; reason: string; wasClean: boolean };
}

const TEXTS = ['hello', '', 'héllo wörld — 你好 🌍 ✓', 'x'.repeat(70_000)];
const BINARY = [0, 1, 2, 127, 128, 254, 255];
const BIG = 1 << 20;
const CLOSE_REASON = 'done here ✓';

/** Runs in the browser: the browser's WebSocket against /echo. Every wait is bounded. */
async function echoInBrowser(args: { url: string; texts: string[]; binary: number[]; big: number; reason: string; waitMs: number }): Promise<EchoResult> {
  const pattern = (i: number): number => (i * 31 + (i >>> 8) + (i >>> 16)) & 0xff;
  const ws = new WebSocket(args.url, ['chat.v1']);
  ws.binaryType = 'arraybuffer';
  const inbox: Array<string | ArrayBuffer> = [];
  let wake: (() => void) | null = null;
  let closed: { code: number; reason: string; wasClean: boolean } | null = null;
  ws.onopen = () => wake?.();
  ws.onmessage = (e) => {
    inbox.push(e.data as string | ArrayBuffer);
    wake?.();
  };
  ws.onclose = (e) => {
    closed = { code: e.code, reason: e.reason, wasClean: e.wasClean };
    wake?.();
  };
  const until = async (done: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + args.waitMs;
    while (!done()) {
      if (closed !== null && what !== 'close') throw new Error(`closed (${JSON.stringify(closed)}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      wake = null;
    }
  };
  const next = async (what: string): Promise<string | ArrayBuffer> => {
    await until(() => inbox.length > 0, what);
    return inbox.shift()!;
  };

  await until(() => ws.readyState === WebSocket.OPEN, 'open');
  const texts: string[] = [];
  for (const text of args.texts) {
    ws.send(text);
    const echoed = await next(`the echo of a ${text.length}-character text`);
    texts.push(typeof echoed === 'string' ? echoed : `<binary ${echoed.byteLength}>`);
  }
  ws.send(new Uint8Array(args.binary).buffer);
  const binaries: number[][] = [];
  const echoed = await next('the echo of the binary message');
  binaries.push(typeof echoed === 'string' ? [-1] : Array.from(new Uint8Array(echoed)));

  const big = new Uint8Array(args.big);
  for (let i = 0; i < big.length; i++) big[i] = pattern(i);
  ws.send(big.buffer);
  const back = await next('the echo of the 1 MiB message');
  const bytes = typeof back === 'string' ? new Uint8Array(0) : new Uint8Array(back);
  let mismatches = Math.abs(bytes.length - args.big);
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== pattern(i)) mismatches++;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');

  ws.close(4000, args.reason);
  await until(() => closed !== null, 'close');
  return { protocol: ws.protocol, extensions: ws.extensions, texts, binaries, big: { length: bytes.length, mismatches, sha256 }, close: closed! };
}

/** The browser's WebSocket against an /echo URL, from a page of the same origin. */
function echoFrom(page: Page, url: string): Promise<EchoResult> {
  return page.evaluate(echoInBrowser, { url, texts: TEXTS, binary: BINARY, big: BIG, reason: CLOSE_REASON, waitMs: WAIT_MS });
}

/** What every echo must show: the protocol, compression, each message back intact, the close. */
function checkEcho(t: ExecutionContext, result: EchoResult): void {
  t.is(result.protocol, 'chat.v1');
  t.regex(result.extensions, /^permessage-deflate\b/);
  t.deepEqual(result.texts, TEXTS);
  t.deepEqual(result.binaries, [BINARY]);
  const expected = Buffer.alloc(BIG);
  for (let i = 0; i < BIG; i++) expected[i] = (i * 31 + (i >>> 8) + (i >>> 16)) & 0xff;
  t.is(result.big.length, BIG);
  t.is(result.big.mismatches, 0, 'every byte of the 1 MiB message came back');
  t.is(result.big.sha256, createHash('sha256').update(expected).digest('hex'));
  t.deepEqual(result.close, { code: 4000, reason: CLOSE_REASON, wasClean: true });
}

browserTest('the browser WebSocket against /echo: text, binary, 1 MiB and a close with 4000 and a reason', async (t) => {
  t.timeout(30_000);
  const { context, page } = await newPage();
  try {
    await page.goto(`${origin}/`); // a page of the demo's origin, so the socket is same-origin
    const result = await echoFrom(page, `${origin.replace('http:', 'ws:')}/echo`);
    checkEcho(t, result);
  } finally {
    await context.close();
  }
});

browserTest('over HTTP/2 (npm start -- --http2): the browser opens its WebSockets as HTTP/2 streams; text, binary, 1 MiB and a close with 4000 and a reason', async (t) => {
  t.timeout(30_000);
  const { context, page } = await newPage(h2Origin);
  try {
    h2Sockets.length = 0;
    await page.goto(`${h2Origin}/`);
    await page.locator('#state[data-state="open"]').waitFor(); // the page's own /chat socket
    // Runs in the page (no DOM types here): the protocol its navigation came over.
    const loadedOver = await page.evaluate('performance.getEntriesByType("navigation")[0].nextHopProtocol');
    t.is(loadedOver, 'h2', 'the page came over HTTP/2');
    const result = await echoFrom(page, `${h2Origin.replace('https:', 'wss:')}/echo`);
    // The proof that they travelled as HTTP/2 streams: the server took both as extended CONNECTs
    // (upgradeHttp2), not as HTTP/1.1 upgrades.
    t.deepEqual(h2Sockets, [
      { path: '/chat', version: '2.0' },
      { path: '/echo', version: '2.0' }
    ]);
    checkEcho(t, result);
  } finally {
    await context.close();
  }
});

interface DeflateResult {
  extensions: string;
  /** One entry per message sent, in order: what it was and whether it came back intact. */
  messages: Array<{ kind: string; bytes: number; intact: boolean }>;
  close: { code: number; reason: string; wasClean: boolean };
}

const DEFLATE_SIZES = [1 << 10, 64 << 10, 1 << 20];

/**
 * Runs in the browser: text and binary messages, compressible and random, of each size,
 * through /echo; each echo is compared with what was sent. Self-contained (page.evaluate
 * sends only this function's source). Every wait is bounded.
 */
async function deflateInBrowser(args: { url: string; sizes: number[]; waitMs: number }): Promise<DeflateResult> {
  // xorshift32: the random payloads need not be secure, only varied.
  let seed = 0x9e3779b9;
  const rand = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const utf8 = new TextEncoder();
  // JSON-like records, as an application would send: compresses well. ASCII, so `size` bytes.
  const compressibleText = (size: number): string => {
    let s = '[';
    for (let i = 0; s.length < size; i++) s += `{"id":${i},"user":"user${i % 50}","text":"hello number ${i}","ok":${i % 3 === 0}},`;
    return s.slice(0, size);
  };
  // Random code points from ASCII, Latin-1, CJK and the astral planes (surrogate pairs), about
  // `size` bytes of UTF-8.
  const randomText = (size: number): string => {
    const parts: string[] = [];
    let bytes = 0;
    while (bytes < size - 4) {
      const r = rand();
      const range = r & 3;
      const cp =
        range === 0 ? 0x20 + ((r >>> 2) % 0x5f) : range === 1 ? 0xa0 + ((r >>> 2) % 0x700) : range === 2 ? 0x4e00 + ((r >>> 2) % 0x5000) : 0x1f300 + ((r >>> 2) % 0x300);
      parts.push(String.fromCodePoint(cp));
      bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    }
    return parts.join('');
  };
  const randomBytes = (size: number): Uint8Array => {
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(size, i + 65536)));
    return b;
  };

  const ws = new WebSocket(args.url, ['chat.v1']);
  ws.binaryType = 'arraybuffer';
  const inbox: Array<string | ArrayBuffer> = [];
  let wake: (() => void) | null = null;
  let closed: { code: number; reason: string; wasClean: boolean } | null = null;
  ws.onopen = () => wake?.();
  ws.onmessage = (e) => {
    inbox.push(e.data as string | ArrayBuffer);
    wake?.();
  };
  ws.onclose = (e) => {
    closed = { code: e.code, reason: e.reason, wasClean: e.wasClean };
    wake?.();
  };
  const until = async (done: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + args.waitMs;
    while (!done()) {
      if (closed !== null && what !== 'close') throw new Error(`closed (${JSON.stringify(closed)}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      wake = null;
    }
  };

  await until(() => ws.readyState === WebSocket.OPEN, 'open');
  const messages: DeflateResult['messages'] = [];
  for (const size of args.sizes) {
    for (const [kind, payload] of [
      ['compressible text', compressibleText(size)],
      ['random text', randomText(size)],
      ['compressible binary', utf8.encode(compressibleText(size))],
      ['random binary', randomBytes(size)]
    ] as Array<[string, string | Uint8Array]>) {
      ws.send(payload);
      await until(() => inbox.length > 0, `the echo of ${kind} of ${size} bytes`);
      const back = inbox.shift()!;
      let intact: boolean;
      if (typeof payload === 'string') intact = back === payload;
      else if (typeof back === 'string' || back.byteLength !== payload.length) intact = false;
      else {
        const b = new Uint8Array(back);
        intact = true;
        for (let i = 0; i < b.length && intact; i++) intact = b[i] === payload[i];
      }
      messages.push({ kind, bytes: typeof payload === 'string' ? utf8.encode(payload).length : payload.length, intact });
    }
  }
  ws.close(1000, 'deflate done');
  await until(() => closed !== null, 'close');
  return { extensions: ws.extensions, messages, close: closed! };
}

browserTest('the browser WebSocket against /echo with permessage-deflate: agreed, and text and binary of 1 KiB to 1 MiB come back intact and compressed', async (t) => {
  t.timeout(60_000);
  // The demo's socket for this connection, to count the bytes on the wire.
  let socket: Socket | undefined;
  const grab = (req: { url?: string }, s: Socket): void => {
    if (req.url === '/echo?deflate') socket = s;
  };
  server!.on('upgrade', grab);
  const { context, page } = await newPage();
  try {
    await page.goto(`${origin}/`);
    const result = await page.evaluate(deflateInBrowser, { url: `${origin.replace('http:', 'ws:')}/echo?deflate`, sizes: DEFLATE_SIZES, waitMs: WAIT_MS });
    t.regex(result.extensions, /^permessage-deflate\b/, 'Chromium offered permessage-deflate and the demo accepted it');
    t.is(result.messages.length, DEFLATE_SIZES.length * 4);
    for (const m of result.messages) t.true(m.intact, `${m.kind} of ${m.bytes} bytes came back intact`);
    for (const [i, size] of DEFLATE_SIZES.entries()) {
      const row = result.messages.slice(i * 4, i * 4 + 4);
      t.true(row.every((m) => Math.abs(m.bytes - size) <= 4), `sizes near ${size}: ${row.map((m) => m.bytes).join(', ')}`);
    }
    t.deepEqual(result.close, { code: 1000, reason: 'deflate done', wasClean: true });

    // Both directions were compressed: the compressible half crossed the wire in far fewer
    // bytes (random bytes do not shrink; random text a little).
    t.truthy(socket, 'the demo saw the upgrade');
    const total = (kinds: RegExp): number => result.messages.filter((m) => kinds.test(m.kind)).reduce((n, m) => n + m.bytes, 0);
    const bound = total(/^random/) + total(/^compressible/) / 4;
    t.true(socket!.bytesRead < bound, `${socket!.bytesRead} bytes from the browser, bound ${bound}`);
    t.true(socket!.bytesWritten < bound, `${socket!.bytesWritten} bytes to the browser, bound ${bound}`);
  } finally {
    server!.off('upgrade', grab);
    await context.close();
  }
});

/**
 * Runs in the browser: one binary message of `size` bytes whose byte i is i mod 251 (it
 * compresses about 250×), sent to `url` and compared, by SHA-256, with its echo.
 */
async function patternInBrowser(args: { url: string; size: number; waitMs: number }): Promise<{ extensions: string; sent: string; back: string; bytes: number; close: string }> {
  const payload = new Uint8Array(args.size);
  for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
  const hex = async (b: ArrayBuffer | Uint8Array): Promise<string> =>
    Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', b)), (x) => x.toString(16).padStart(2, '0')).join('');
  const ws = new WebSocket(args.url);
  ws.binaryType = 'arraybuffer';
  const result = await new Promise<{ back: ArrayBuffer | null; close: string }>((resolve) => {
    const timer = setTimeout(() => resolve({ back: null, close: 'timed out' }), args.waitMs);
    ws.onopen = () => ws.send(payload);
    ws.onmessage = (e) => {
      clearTimeout(timer);
      resolve({ back: e.data as ArrayBuffer, close: '' });
    };
    ws.onclose = (e) => {
      clearTimeout(timer);
      resolve({ back: null, close: `${e.code} ${e.reason}` });
    };
  });
  const extensions = ws.extensions;
  ws.close(1000);
  return {
    extensions,
    sent: await hex(payload),
    back: result.back === null ? '' : await hex(result.back),
    bytes: result.back?.byteLength ?? 0,
    close: result.close
  };
}

// Issue 23: a 16 MiB message that compresses 250× is valid, and a server with its defaults
// (listen with permessage-deflate on) takes it from a browser.
let patternOrigin = '';

browserTest("the browser's 16 MiB message that compresses 250× is echoed intact by a listen() server with default limits", async (t) => {
  t.timeout(90_000);
  const big = await listen({ host: '127.0.0.1', port: 0, perMessageDeflate: true }, async (ws) => {
    for await (const m of messages(ws)) await (m.opcode === Opcode.Text ? sendText(ws, m.data.toString()) : sendBinary(ws, m.data));
  });
  t.teardown(() => big.close());
  patternOrigin = `ws://127.0.0.1:${big.port}`;
  const { context, page } = await newPage();
  try {
    await page.goto(`${origin}/`);
    const r = await page.evaluate(patternInBrowser, { url: `${patternOrigin}/`, size: 16 << 20, waitMs: 60_000 });
    t.regex(r.extensions, /^permessage-deflate\b/);
    t.is(r.close, '', 'the connection stayed open');
    t.is(r.bytes, 16 << 20);
    t.is(r.back, r.sent, 'the echo has the same SHA-256');
    t.log(`16 MiB pattern from Chromium echoed intact (sha256 ${r.sent.slice(0, 16)}…)`);
  } finally {
    await context.close();
  }
});

browserTest('Chromium only reached the demo server on 127.0.0.1, and the pages threw nothing', (t) => {
  t.true(requested.length > 0);
  const origins = [origin, origin.replace('http:', 'ws:'), h2Origin, h2Origin.replace('https:', 'wss:'), ...(patternOrigin === '' ? [] : [patternOrigin])];
  t.deepEqual(
    requested.filter((url) => !origins.some((o) => url.startsWith(`${o}/`))),
    []
  );
  t.deepEqual(pageErrors, []);
});
