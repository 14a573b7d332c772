// The `wsframe` CLI (src/cli.ts) as a user runs it: spawned as a child process, with `ws` as
// the peer (and a raw socket for a peer that breaks the protocol). Every wait is bounded and
// every child is killed in teardown.
//
// Startup cost: `node -r ts-node/register/transpile-only src/cli.ts` spends ~1.4 s of CPU
// transpiling src/ in every child, too much for ~30 children on a small CI machine. So src/ is
// transpiled once (ts.transpileModule, as ts-node's transpile-only does) into a temporary
// directory and most children run that JavaScript, as the package's `bin` (dist/cli.js) runs;
// the shared echo-server runs through ts-node exactly as a developer would.
import test from 'ava';
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { type AsyncSocket, close, connect, listen, Opcode, readData, sendText, WsRequest } from '../../src';
import { selfSignedCert } from '../helpers/tls-cert';
import { transpileTree } from '../helpers/transpile';
import { within as boundedWait } from '../helpers/wait';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'src', 'cli.ts');
// Bound on every wait: a guard against a hung child, not a speed check. Children start in about
// 0.1 s when the machine is idle, but the whole suite shares a small machine, and with other
// work on it a child has taken more than 20 s to start and exit.
const WAIT_MS = 60_000;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const children = new Set<ChildProcess>();
const servers = new Set<{ close(): void }>();
const OUT = mkdtempSync(join(tmpdir(), 'wsframe-cli-test-'));

let CLI_JS = '';

test.before(() => {
  CLI_JS = transpileTree(OUT)(CLI);
});

test.after.always(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const server of servers) server.close();
  rmSync(OUT, { recursive: true, force: true });
});

/** The helpers' bounded wait, with this file's longer bound by default. */
function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  return boundedWait(p, what, ms);
}

interface Cli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal) once the child is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns the CLI: the transpiled copy, or with `tsNode` src/cli.ts through ts-node. */
function run(args: string[], { tsNode = false } = {}): Cli {
  const argv = tsNode ? ['-r', 'ts-node/register/transpile-only', CLI, ...args] : [CLI_JS, ...args];
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }))
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Waits until the child's stdout (or stderr) matches. */
async function waitFor(cli: Cli, pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout', ms = WAIT_MS): Promise<RegExpMatchArray> {
  const source = stream === 'stdout' ? cli.child.stdout! : cli.child.stderr!;
  const read = stream === 'stdout' ? cli.stdout : cli.stderr;
  return within(
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = (): void => {
        const m = read().match(pattern);
        if (m) {
          source.off('data', check);
          cli.child.off('exit', gone);
          resolve(m);
        }
      };
      const gone = (): void => reject(new Error(`the CLI exited before printing ${pattern}; stdout: ${cli.stdout()} stderr: ${cli.stderr()}`));
      source.on('data', check);
      cli.child.once('exit', gone);
      setImmediate(check);
    }),
    `${pattern} on ${stream}`,
    ms
  );
}

function exitOf(cli: Cli, what = 'the CLI to exit'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return within(cli.exited, what);
}

/** Starts `wsframe echo-server --port 0 …` and resolves to it and its URL once it listens. */
async function echoServer(args: string[] = [], { tsNode = false } = {}): Promise<{ cli: Cli; url: string }> {
  const cli = run(['echo-server', '--port', '0', ...args], { tsNode });
  // Startup through ts-node (1.4 s of CPU when idle) on a busy machine can take a while.
  const [, url] = await waitFor(cli, /listening on (wss?:\/\/127\.0\.0\.1:\d+)/, 'stdout', 90_000);
  return { cli, url };
}

/** A `ws` client, open. (ws offers permessage-deflate unless told not to.) */
function open(url: string, protocols?: string[], options?: WebSocket.ClientOptions): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options);
  return within(
    new Promise<WebSocket>((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    }),
    `a connection to ${url}`
  ).catch((err) => {
    ws.terminate();
    throw err;
  });
}

/** The next message on a `ws` socket. */
function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return within(
    new Promise((resolve) => ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary }))),
    'a message'
  );
}

function closeEvent(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return within(
    new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))),
    'the close'
  );
}

let shared: Promise<{ cli: Cli; url: string }> | undefined;
/** One plain echo-server for the tests that do not need options. */
function sharedEchoServer(): Promise<{ cli: Cli; url: string }> {
  shared ??= echoServer([], { tsNode: true });
  return shared;
}

// ---------------------------------------------------------------- echo-server

test('echo-server prints its URL and echoes text and binary with their types', async (t) => {
  const { url } = await sharedEchoServer();
  const ws = await open(url);
  const text = 'héllo wörld — 你好 🌍';
  ws.send(text);
  let m = await nextMessage(ws);
  t.false(m.isBinary);
  t.is(m.data.toString('utf8'), text);

  const bytes = Buffer.from([0, 1, 2, 127, 128, 255]);
  ws.send(bytes);
  m = await nextMessage(ws);
  t.true(m.isBinary);
  t.deepEqual(m.data, bytes);

  // A text message in two fragments comes back as one text message.
  ws.send('frag', { fin: false });
  ws.send('mented', { fin: true });
  m = await nextMessage(ws);
  t.false(m.isBinary);
  t.is(m.data.toString(), 'fragmented');

  const big = Buffer.alloc(200_000, 0xab);
  ws.send(big);
  m = await nextMessage(ws);
  t.true(m.isBinary);
  t.true(m.data.equals(big));

  const closed = closeEvent(ws);
  ws.close(1000);
  t.is((await closed).code, 1000);
});

test('echo-server answers pings with the same payload', async (t) => {
  const { url } = await sharedEchoServer();
  const ws = await open(url);
  const pong = within(new Promise<Buffer>((resolve) => ws.once('pong', resolve)), 'the pong');
  ws.ping('token-123');
  t.is((await pong).toString(), 'token-123');
  ws.send('after the ping');
  t.is((await nextMessage(ws)).data.toString(), 'after the ping');
  ws.terminate();
});

test("echo-server echoes the close code and reason (4001 'x')", async (t) => {
  const { url } = await sharedEchoServer();
  const ws = await open(url);
  const closed = closeEvent(ws);
  ws.close(4001, 'x');
  t.deepEqual(await closed, { code: 4001, reason: 'x' });
});

test('echo-server --protocol a,b selects the first of its list that the client offers', async (t) => {
  const { url } = await echoServer(['--protocol', 'a,b']);
  for (const [offered, chosen] of [
    [['c', 'b', 'a'], 'a'],
    [['c', 'b'], 'b'],
    [[], '']
  ] as const) {
    const ws = await open(url, [...offered]);
    t.is(ws.protocol, chosen, `offered ${offered.join(',')}`);
    ws.send('hi');
    t.is((await nextMessage(ws)).data.toString(), 'hi');
    const closed = closeEvent(ws);
    ws.close();
    await closed;
  }
});

test('echo-server --max-message-size 1000: a 1000-byte message echoes, a 2000-byte one fails with 1009', async (t) => {
  const { url } = await echoServer(['--max-message-size', '1000']);
  const ws = await open(url);
  ws.send(Buffer.alloc(1000, 1));
  t.is((await nextMessage(ws)).data.length, 1000);
  const closed = closeEvent(ws);
  let echoed = false;
  ws.on('message', () => (echoed = true));
  ws.send(Buffer.alloc(2000, 2));
  t.is((await closed).code, 1009);
  t.false(echoed, 'nothing is echoed after the violation');
});

test('echo-server exits 0 on SIGTERM, closing open connections with 1001', async (t) => {
  const { cli, url } = await echoServer();
  const ws = await open(url);
  ws.send('x');
  await nextMessage(ws);
  const closed = closeEvent(ws);
  cli.child.kill('SIGTERM');
  t.is((await closed).code, 1001);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null });
});

// ---------------------------------------------------------------- echo-client

/** A `ws` server on 127.0.0.1:0; resolves once it listens. */
async function wsServer(
  onConnection: (ws: WebSocket) => void,
  options: WebSocket.ServerOptions = {}
): Promise<{ wss: WebSocketServer; url: string }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  servers.add(wss);
  await within(new Promise((resolve) => wss.once('listening', resolve)), 'the ws server to listen');
  wss.on('connection', onConnection);
  return { wss, url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/path?q=1` };
}

test('echo-client echoes text, binary and pings back to a ws server, and exits 0 after its close', async (t) => {
  let resolveSeen: (v: unknown) => void = () => undefined;
  const seen = new Promise((resolve) => (resolveSeen = resolve));
  const { url } = await wsServer((ws) => {
    (async () => {
      ws.send('héllo ✓');
      const text = await nextMessage(ws);
      ws.send(Buffer.from([9, 8, 7, 0, 255]));
      const binary = await nextMessage(ws);
      const pong = within(new Promise<Buffer>((resolve) => ws.once('pong', resolve)), 'the pong');
      ws.ping('p1');
      const pongData = await pong;
      const closed = closeEvent(ws);
      ws.close(1000, 'done');
      resolveSeen({ text, binary, pong: pongData.toString(), close: await closed });
    })().catch(resolveSeen);
  });
  const cli = run(['echo-client', url]);
  const result = (await within(seen, 'the ws server to finish')) as Record<string, unknown>;
  t.deepEqual(result, {
    text: { data: Buffer.from('héllo ✓'), isBinary: false },
    binary: { data: Buffer.from([9, 8, 7, 0, 255]), isBinary: true },
    pong: 'p1',
    close: { code: 1000, reason: 'done' }
  });
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.regex(cli.stderr(), /closed cleanly: 1000 done/);
});

test('echo-client --protocol offers its list and --max-message-size bounds what it accepts', async (t) => {
  let offered = '';
  const { url, wss } = await wsServer((ws) => {
    ws.send('small');
    ws.once('message', () => ws.send(Buffer.alloc(600)));
  });
  wss.on('headers', (_headers, req) => (offered = String(req.headers['sec-websocket-protocol'] ?? '')));
  const cli = run(['echo-client', url, '--protocol', 'x,y', '--max-message-size', '500']);
  const { code } = await exitOf(cli);
  t.is(offered, 'x, y');
  t.is(code, 1);
  t.regex(cli.stderr(), /close code 1009/);
});

interface RawPeer {
  url: string;
  /** The frames the client sent, decoded (opcode and unmasked payload). */
  frames: Promise<Array<{ opcode: number; payload: Buffer }>>;
}

/**
 * A server on a raw socket with a hand-written handshake that then sends `frames` as they
 * are: for peers that break the protocol. It collects what the client sends until it ends.
 */
async function rawServer(frames: Buffer, { neverClose = false } = {}): Promise<RawPeer> {
  let resolveFrames: (f: Array<{ opcode: number; payload: Buffer }>) => void = () => undefined;
  const received = new Promise<Array<{ opcode: number; payload: Buffer }>>((resolve) => (resolveFrames = resolve));
  const server = net.createServer({ allowHalfOpen: neverClose }, (socket) => {
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (upgraded) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const key = /sec-websocket-key: *(\S+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? '';
      buf = buf.subarray(end + 4);
      upgraded = true;
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`
      );
      socket.write(frames);
    });
    socket.on('end', () => (neverClose ? resolveFrames(decodeMaskedFrames(buf)) : socket.end()));
    socket.on('close', () => resolveFrames(decodeMaskedFrames(buf)));
  });
  servers.add(server);
  await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 'the raw server to listen');
  return { url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, frames: within(received, 'the client to hang up') };
}

/** Decodes small masked frames (client to server). */
function decodeMaskedFrames(buf: Buffer): Array<{ opcode: number; payload: Buffer }> {
  const frames = [];
  let i = 0;
  while (i + 6 <= buf.length) {
    const opcode = buf[i] & 0x0f;
    const len = buf[i + 1] & 0x7f; // the frames here are all under 126 bytes
    const mask = buf.subarray(i + 2, i + 6);
    const payload = Buffer.from(buf.subarray(i + 6, i + 6 + len));
    for (let j = 0; j < payload.length; j++) payload[j] ^= mask[j & 3];
    frames.push({ opcode, payload });
    i += 6 + len;
  }
  return frames;
}

for (const [what, frame, closeCode] of [
  ['a masked frame from the server', Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]), 1002],
  ['invalid UTF-8 in a text message', Buffer.from([0x81, 0x02, 0xc3, 0x28]), 1007],
  ['a reserved opcode', Buffer.from([0x83, 0x00]), 1002]
] as const) {
  test(`echo-client exits non-zero with a message on stderr when the server sends ${what}`, async (t) => {
    const peer = await rawServer(frame);
    const cli = run(['echo-client', peer.url]);
    const { code } = await exitOf(cli);
    t.is(code, 1);
    t.regex(cli.stderr(), new RegExp(`^wsframe: \\w+Error: .*\\(close code ${closeCode}\\)\\n$`));
    const sent = await peer.frames;
    t.is(sent.length, 1, 'only a Close, nothing echoed');
    t.is(sent[0].opcode, 0x8);
    t.is(sent[0].payload.readUInt16BE(0), closeCode);
  });
}

test('echo-client exits within about a second after a violation even when the server never closes TCP', async (t) => {
  const peer = await rawServer(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]), { neverClose: true });
  const cli = run(['echo-client', peer.url]);
  const sent = await peer.frames; // the client's Close, then its FIN
  const start = Date.now();
  t.is((await exitOf(cli)).code, 1);
  // About a second when idle; the bound stays under the 10 s closeTimeout it must not wait for.
  t.true(Date.now() - start < 8000, `exited ${Date.now() - start} ms after its FIN`);
  t.is(sent[0].payload.readUInt16BE(0), 1002);
  t.regex(cli.stderr(), /close code 1002/);
});

test('echo-client exits 1 with a message when it cannot connect', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  const cli = run(['echo-client', `ws://127.0.0.1:${port}/`]);
  t.is((await exitOf(cli)).code, 1);
  t.regex(cli.stderr(), /^wsframe: \w+Error: .+/);
});

// ---------------------------------------------------------------- connect

test('connect sends stdin lines as text, prints what arrives as "< text", and closes cleanly at the end of stdin', async (t) => {
  const got: Array<{ text: string; isBinary: boolean }> = [];
  let resolveClose: (c: { code: number; reason: string }) => void = () => undefined;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (resolveClose = resolve));
  const { url } = await wsServer((ws) => {
    ws.send('welcome');
    ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      got.push({ text: data.toString(), isBinary });
      ws.send(`you said: ${data.toString()}`);
    });
    ws.on('close', (code, reason) => resolveClose({ code, reason: reason.toString() }));
  });
  const cli = run(['connect', url]);
  await waitFor(cli, /^< welcome\n< binary, 4 bytes: deadbeef\n/);
  cli.child.stdin!.write('hello\n');
  cli.child.stdin!.write('wörld, ünïcode ✓\n');
  await waitFor(cli, /< you said: wörld, ünïcode ✓\n/);
  t.deepEqual(got, [
    { text: 'hello', isBinary: false },
    { text: 'wörld, ünïcode ✓', isBinary: false }
  ]);
  t.is(cli.stdout(), '< welcome\n< binary, 4 bytes: deadbeef\n< you said: hello\n< you said: wörld, ünïcode ✓\n');
  t.regex(cli.stderr(), /^connected to ws:\/\/127\.0\.0\.1:\d+\/path\?q=1/);
  cli.child.stdin!.end();
  t.is((await within(closed, 'the close at the ws server')).code, 1000);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.regex(cli.stderr(), /\nclosed: 1000\n$/);
});

test('connect with piped input: every line is sent and every answer printed before the close completes', async (t) => {
  const { url } = await wsServer((ws) => ws.on('message', (data: Buffer) => ws.send(`got ${data.toString()}`)));
  const cli = run(['connect', url]);
  cli.child.stdin!.end('one\ntwo\nthree\n');
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.is(cli.stdout(), '< got one\n< got two\n< got three\n');
  t.regex(cli.stderr(), /\nclosed: 1000\n$/);
});

test('connect exits 0 when the server closes, saying so', async (t) => {
  const { url } = await wsServer((ws) => ws.on('message', () => ws.close(1000, 'bye now')));
  const cli = run(['connect', url]);
  await waitFor(cli, /connected to/, 'stderr');
  cli.child.stdin!.write('quit\n'); // stdin stays open: the server's close alone must end it
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.regex(cli.stderr(), /closed by the server: 1000 bye now/);
});

test('connect exits 1 when the server closes with a code that is not 1000, 1001 or none; echo-client, a test peer, exits 0 after any clean close', async (t) => {
  const { url } = await wsServer((ws) => ws.on('message', () => ws.close(1009, 'too big')));
  const cli = run(['connect', url]);
  await waitFor(cli, /connected to/, 'stderr');
  cli.child.stdin!.write('quit\n');
  t.deepEqual(await exitOf(cli), { code: 1, signal: null }, cli.stderr());
  t.regex(cli.stderr(), /closed by the server: 1009 too big\nwsframe: Closed: the server closed with 1009 too big\n$/);
  const { url: url2 } = await wsServer((ws) => {
    ws.send('hi');
    ws.once('message', () => ws.close(4000, 'app error'));
  });
  const echo = run(['echo-client', url2]);
  t.deepEqual(await exitOf(echo), { code: 0, signal: null }, echo.stderr());
  t.regex(echo.stderr(), /closed cleanly: 4000 app error/);
});

// ---------------------------------------------------------------- permessage-deflate (--deflate)

// Payloads for the compressed echoes: JSON-like text that compresses well, random bytes that
// do not, and sizes below and above the 1024-byte threshold.
function jsonText(size: number): string {
  let s = '[';
  for (let i = 0; s.length < size; i++) s += `{"id":${i},"name":"item ${i % 97}","tags":["a","b"],"ok":${i % 3 === 0}},`;
  return s.slice(0, size);
}
const DEFLATE_TEXTS = [jsonText(100), jsonText(64 * 1024), 'héllo wörld — 你好 🌍 '.repeat(4000)];
const DEFLATE_BINARIES = [randomBytes(10), randomBytes(64 * 1024), Buffer.from(jsonText(1 << 20))];
const COMPRESSIBLE = 256 * 1024; // bytes of JSON text sent to measure the bytes on the wire

/** Bytes received so far by a `ws` socket's TCP connection (ws keeps the socket in `_socket`). */
function bytesRead(ws: WebSocket): number {
  return (ws as unknown as { _socket: net.Socket })._socket.bytesRead;
}

/** Sends each payload and checks that it comes back intact and with its type. */
async function echoesIntact(t: import('ava').ExecutionContext, ws: WebSocket): Promise<void> {
  for (const text of DEFLATE_TEXTS) {
    ws.send(text);
    const m = await nextMessage(ws);
    t.false(m.isBinary);
    t.true(m.data.toString('utf8') === text, `a ${text.length}-character text came back intact`);
  }
  for (const bytes of DEFLATE_BINARIES) {
    ws.send(bytes);
    const m = await nextMessage(ws);
    t.true(m.isBinary);
    t.true(m.data.equals(bytes), `a ${bytes.length}-byte binary message came back intact`);
  }
}

test('echo-server --deflate agrees on permessage-deflate with a ws client, says so, and echoes compressed messages intact', async (t) => {
  const { cli, url } = await echoServer(['--deflate']);
  t.regex(cli.stdout(), /listening on ws:\/\/127\.0\.0\.1:\d+ \(permessage-deflate on\)\n/);
  const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0 } });
  const response = new Promise<string>((resolve) => ws.once('upgrade', (res) => resolve(String(res.headers['sec-websocket-extensions']))));
  await within(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 'the connection');
  t.is(ws.extensions, 'permessage-deflate');
  t.is(await response, 'permessage-deflate');
  const port = (ws as unknown as { _socket: net.Socket })._socket.localPort;
  await waitFor(cli, new RegExp(`connection from 127\\.0\\.0\\.1:${port}: permessage-deflate; server_max_window_bits=15; client_max_window_bits=15\\n`), 'stderr');

  await echoesIntact(t, ws);

  // The echo really is compressed: 256 KiB of JSON text comes back in far fewer bytes.
  const before = bytesRead(ws);
  const text = jsonText(COMPRESSIBLE);
  ws.send(text);
  t.true((await nextMessage(ws)).data.toString() === text);
  const wire = bytesRead(ws) - before;
  t.true(wire < COMPRESSIBLE / 4, `${wire} bytes on the wire for ${COMPRESSIBLE} bytes of text`);

  const closed = closeEvent(ws);
  ws.close(1000);
  t.is((await closed).code, 1000);
});

test('echo-server --deflate reports the parameters a client asks for, and a client that offers nothing gets nothing', async (t) => {
  const { cli, url } = await echoServer(['--deflate']);
  const ws = await open(url, [], { perMessageDeflate: { clientNoContextTakeover: true, serverNoContextTakeover: true, serverMaxWindowBits: 10 } });
  t.is(ws.extensions, 'permessage-deflate');
  await waitFor(
    cli,
    /: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=15\n/,
    'stderr'
  );
  await echoesIntact(t, ws);
  ws.terminate();

  // A client that does not offer it gets none, and the line says so.
  const plain = await open(url, [], { perMessageDeflate: false });
  t.is(plain.extensions, '');
  await waitFor(cli, /: no extensions \(permessage-deflate not offered\)\n/, 'stderr');
  plain.send('plain');
  t.is((await nextMessage(plain)).data.toString(), 'plain');
  plain.terminate();
});

test('echo-server without --deflate declines the permessage-deflate that ws offers, and logs the connection and its close', async (t) => {
  const { cli, url } = await sharedEchoServer();
  const ws = await open(url, [], { perMessageDeflate: { threshold: 0 } });
  const port = (ws as unknown as { _socket: net.Socket })._socket.localPort;
  t.is(ws.extensions, '');
  ws.send(jsonText(10_000));
  t.is((await nextMessage(ws)).data.toString(), jsonText(10_000));
  const closed = closeEvent(ws);
  ws.close(1000, 'see you');
  await closed;
  t.notRegex(cli.stdout(), /permessage-deflate/);
  t.notRegex(cli.stderr(), /permessage-deflate/);
  t.regex(cli.stderr(), new RegExp(`^connection from 127\\.0\\.0\\.1:${port}$`, 'm'));
  await waitFor(cli, new RegExp(`^closed 127\\.0\\.0\\.1:${port}: 1000 see you$`, 'm'), 'stderr');
});

test('echo-server --quiet logs no connections', async (t) => {
  const { cli, url } = await echoServer(['--quiet']);
  const ws = await open(url);
  ws.send('x');
  await nextMessage(ws);
  const closed = closeEvent(ws);
  ws.close(1000);
  await closed;
  cli.child.kill('SIGTERM');
  await exitOf(cli);
  t.is(cli.stderr(), '');
});

/**
 * A ws server with permessage-deflate that sends the deflate payloads to the connecting
 * echo-client, checks each echo, then closes 1000; resolves to what it saw.
 */
async function deflateWsServer(): Promise<{
  wss: WebSocketServer;
  url: string;
  result: Promise<{ extensions: string; echoed: boolean[]; wire: number }>;
}> {
  let resolveResult: (r: { extensions: string; echoed: boolean[]; wire: number }) => void = () => undefined;
  let rejectResult: (err: unknown) => void = () => undefined;
  const result = new Promise<{ extensions: string; echoed: boolean[]; wire: number }>((resolve, reject) => {
    resolveResult = resolve;
    rejectResult = reject;
  });
  const { wss, url } = await wsServer(
    (ws) => {
      (async () => {
        const echoed: boolean[] = [];
        for (const payload of [...DEFLATE_TEXTS, ...DEFLATE_BINARIES]) {
          ws.send(payload);
          const m = await nextMessage(ws);
          echoed.push(m.isBinary === Buffer.isBuffer(payload) && m.data.equals(Buffer.from(payload)));
        }
        const before = bytesRead(ws);
        ws.send(jsonText(COMPRESSIBLE));
        const m = await nextMessage(ws);
        echoed.push(m.data.toString() === jsonText(COMPRESSIBLE));
        const wire = bytesRead(ws) - before;
        const closed = closeEvent(ws);
        ws.close(1000, 'done');
        await closed;
        resolveResult({ extensions: ws.extensions, echoed, wire });
      })().catch(rejectResult);
    },
    { perMessageDeflate: { threshold: 0 } }
  );
  return { wss, url, result: within(result, 'the ws server to finish') };
}

test('echo-client --deflate agrees on permessage-deflate with a ws server, says so, and echoes compressed messages intact', async (t) => {
  const { url, result } = await deflateWsServer();
  const cli = run(['echo-client', url, '--deflate']);
  const r = await result;
  t.is(r.extensions, 'permessage-deflate');
  t.deepEqual(r.echoed, new Array(DEFLATE_TEXTS.length + DEFLATE_BINARIES.length + 1).fill(true));
  t.true(r.wire < COMPRESSIBLE / 4, `${r.wire} bytes on the wire for ${COMPRESSIBLE} bytes of text: the echo-client compressed`);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.is(
    cli.stderr(),
    'extensions: permessage-deflate; server_max_window_bits=15; client_max_window_bits=15\nclosed cleanly: 1000 done\n'
  );
});

test('echo-client without --deflate does not offer permessage-deflate, and echoes uncompressed', async (t) => {
  const { wss, url, result } = await deflateWsServer();
  const offered = new Promise<string | undefined>((resolve) => wss.once('headers', (_headers, req) => resolve(req.headers['sec-websocket-extensions'])));
  const cli = run(['echo-client', url]);
  const r = await result;
  t.is(await offered, undefined);
  t.is(r.extensions, '');
  t.true(r.echoed.every(Boolean));
  t.true(r.wire > COMPRESSIBLE, `${r.wire} bytes on the wire: uncompressed`);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.is(cli.stderr(), 'closed cleanly: 1000 done\n');
});

test('echo-client --deflate says so when the server does not accept permessage-deflate', async (t) => {
  const { url } = await wsServer((ws) => {
    ws.send('no compression here');
    ws.once('message', () => ws.close(1000));
  });
  const cli = run(['echo-client', url, '--deflate']);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.is(cli.stderr(), 'extensions: none (the server did not accept permessage-deflate)\nclosed cleanly: 1000\n');
});

test('echo-client --deflate --max-message-size bounds the inflated size: a small frame of 1 MiB of zeros fails with 1009', async (t) => {
  let wire = 0;
  const { url } = await wsServer(
    (ws) => {
      const sock = (ws as unknown as { _socket: net.Socket })._socket;
      const before = sock.bytesWritten;
      ws.send(Buffer.alloc(1 << 20), () => (wire = sock.bytesWritten - before));
    },
    { perMessageDeflate: { threshold: 0 } }
  );
  const cli = run(['echo-client', url, '--deflate', '--max-message-size', '100000']);
  t.is((await exitOf(cli)).code, 1);
  t.true(wire > 0 && wire < 100_000, `the compressed message was ${wire} bytes`);
  t.regex(cli.stderr(), /^extensions: permessage-deflate;.*\nwsframe: \w+Error: .*\(close code 1009\)\n$/);
});

test('connect --deflate prints the agreed extension and exchanges compressed lines, piped input included', async (t) => {
  let negotiated = '';
  const long = jsonText(5000);
  const { url } = await wsServer(
    (ws) => {
      negotiated = ws.extensions;
      ws.on('message', (data: Buffer) => ws.send(`got ${data.length} bytes: ${data.toString().slice(0, 20)}`));
    },
    { perMessageDeflate: { threshold: 0 } }
  );
  const cli = run(['connect', url, '--deflate']);
  // Piped input: our Close goes out before the server's compressed answers come back, and
  // they must still be inflated and printed after the server closes TCP (5cc6495).
  cli.child.stdin!.end(`short\n${long}\n`);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.is(negotiated, 'permessage-deflate');
  t.is(cli.stdout(), `< got 5 bytes: short\n< got 5000 bytes: ${long.slice(0, 20)}\n`);
  t.regex(cli.stderr(), /^connected to ws:\/\/127\.0\.0\.1:\d+\/path\?q=1; .*\nextensions: permessage-deflate; server_max_window_bits=15; client_max_window_bits=15\nclosed: 1000\n$/);
});

// ---------------------------------------------------------------- usage

for (const [what, args, message] of [
  ['no command', [], /no command given/],
  ['an unknown command', ['serve'], /unknown command serve/],
  ['echo-client without a URL', ['echo-client'], /echo-client takes one URL/],
  ['connect without a URL', ['connect'], /connect takes one URL/],
  ['echo-client with two URLs', ['echo-client', 'ws://a/', 'ws://b/'], /takes one URL/],
  ['a bad --port', ['echo-server', '--port', 'abc'], /--port/],
  ['a port out of range', ['echo-server', '--port', '70000'], /--port/],
  ['an empty --port', ['echo-server', '--port', ''], /--port/],
  ['a bad --max-message-size', ['echo-server', '--max-message-size', '1k'], /--max-message-size/],
  ['a zero --max-message-size', ['echo-client', 'ws://127.0.0.1:1/', '--max-message-size', '0'], /--max-message-size/],
  ['an unknown option', ['echo-server', '--bogus'], /bogus/],
  ['an option without its value', ['echo-server', '--port'], /--port/],
  ['a URL that is not ws: or wss:', ['echo-client', 'http://127.0.0.1:1/'], /ws: or wss:/],
  ['something that is not a URL', ['connect', 'ws://[bad'], /not a URL/],
  ['a bad --protocol', ['echo-server', '--protocol', 'a b'], /--protocol/],
  ['an option of another command', ['connect', 'ws://127.0.0.1:1/', '--port', '1'], /connect takes no --port/],
  ['a URL for echo-server', ['echo-server', 'ws://127.0.0.1:1/'], /echo-server takes no URL/],
  ['an inherited property name as command', ['constructor'], /unknown command constructor/],
  ['a value for --deflate', ['echo-server', '--deflate=yes'], /--deflate takes no value/],
  ['wscat -c without its URL', ['-c'], /^wsframe: -c needs a value\n/],
  ['wscat -c beside a command', ['connect', '-c', 'ws://127.0.0.1:1/'], /-c stands for the connect command/],
  ['an unknown short option', ['-z'], /^wsframe: unknown option -z\n/],
  ['-l with a bad port', ['-l', 'abc'], /-l takes a port number/],
  ['-l with --port', ['-l', '1', '--port', '2'], /-l PORT and --port do not go together/],
  ['--wait without -x', ['connect', 'ws://127.0.0.1:1/', '-w', '1'], /--wait goes with -x/],
  ['a bad --wait', ['connect', 'ws://127.0.0.1:1/', '-x', 'hi', '-w', 'soon'], /--wait takes a number of seconds/],
  ['-x for echo-client', ['echo-client', 'ws://127.0.0.1:1/', '-x', 'hi'], /echo-client takes no --execute/]
] as const) {
  test(`usage: ${what} exits 2 with one line and a pointer to --help on stderr`, async (t) => {
    const cli = run([...args]);
    t.deepEqual(await exitOf(cli), { code: 2, signal: null });
    t.regex(cli.stderr(), /^wsframe: [^\n]+\nRun 'wsframe --help' for the usage\.\n$/);
    if (message) t.regex(cli.stderr(), message);
    t.is(cli.stdout(), '');
  });
}

// ---------------------------------------------------------------- wscat habits

test('connect takes host:port without a scheme as ws:// (as wscat does)', async (t) => {
  const { url } = await wsServer((ws) => ws.on('message', (data: Buffer) => ws.send(`got ${data.toString()}`)));
  const bare = url.replace('ws://', '');
  const cli = run(['connect', bare]);
  cli.child.stdin!.end('one\n');
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.is(cli.stdout(), '< got one\n');
  t.regex(cli.stderr(), new RegExp(`^connected to ws://${bare.replace(/[?.]/g, '\\$&')}`));
});

test('-c URL -x MESSAGE -x MESSAGE -w SECONDS: sends the messages, prints what arrives for the wait, closes 1000 and exits 0', async (t) => {
  let resolveClose: (c: number) => void = () => undefined;
  const closed = new Promise<number>((resolve) => (resolveClose = resolve));
  const got: string[] = [];
  const { url } = await wsServer((ws) => {
    ws.on('message', (data: Buffer) => {
      got.push(data.toString());
      // An answer that comes later than the messages, within the wait.
      setTimeout(() => ws.send(`late ${data.toString()}`), 100);
    });
    ws.on('close', (code) => resolveClose(code));
  });
  const cli = run(['-c', url.replace('ws://', ''), '-x', 'one', '-x', 'two', '-w', '1']);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.deepEqual(got, ['one', 'two']);
  t.is(cli.stdout(), '< late one\n< late two\n');
  t.is(await within(closed, 'the close at the server'), 1000);
  t.regex(cli.stderr(), /sending 2 messages\n(?:.*\n)*closed: 1000\n$/);
});

test('-P shows the Pings and Pongs that arrive (and Pings are answered either way)', async (t) => {
  const pongs: string[] = [];
  const { url } = await wsServer((ws) => {
    ws.on('pong', (data: Buffer) => {
      pongs.push(data.toString());
      ws.pong('unasked');
      ws.send('done');
    });
    ws.ping('hi there');
  });
  const cli = run(['connect', url, '-P']);
  await waitFor(cli, /< done\n/);
  cli.child.stdin!.end();
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.is(cli.stdout(), '< ping: hi there\n< pong: unasked\n< done\n');
  t.deepEqual(pongs, ['hi there']);
  // Without -P the same conversation shows only the message.
  const quiet = run(['connect', url]);
  await waitFor(quiet, /< done\n/);
  quiet.child.stdin!.end();
  t.deepEqual(await exitOf(quiet), { code: 0, signal: null }, quiet.stderr());
  t.is(quiet.stdout(), '< done\n');
});

test('-l PORT listens: prints what a client sends, sends it each line of input, and closes it with 1000 at the end of input', async (t) => {
  const cli = run(['-l', '0', '-P']);
  const [, port] = await waitFor(cli, /listening on ws:\/\/127\.0\.0\.1:(\d+);/, 'stderr');
  const ws = await open(`ws://127.0.0.1:${port}/`);
  const closed = closeEvent(ws);
  await waitFor(cli, /client connected: 127\.0\.0\.1:\d+/, 'stderr');
  ws.send('hello from a client');
  ws.ping('knock');
  await waitFor(cli, /< ping: knock\n/);
  const message = nextMessage(ws);
  cli.child.stdin!.write('hello from the terminal\n');
  t.is((await message).data.toString(), 'hello from the terminal');
  cli.child.stdin!.end();
  t.is((await closed).code, 1000);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.is(cli.stdout(), '< hello from a client\n< ping: knock\n');
  t.regex(cli.stderr(), /client 127\.0\.0\.1:\d+ closed: 1000/);
});

// ---------------------------------------------------------------- over HTTP/2

/** A self-signed certificate for localhost, written to PEM files for --cert, --key and --ca. */
let pems: Promise<{ cert: string; key: string; ca: Buffer }> | undefined;
function certFiles(): Promise<{ cert: string; key: string; ca: Buffer }> {
  pems ??= selfSignedCert().then(({ key, cert }) => {
    writeFileSync(join(OUT, 'cert.pem'), cert);
    writeFileSync(join(OUT, 'key.pem'), key);
    return { cert: join(OUT, 'cert.pem'), key: join(OUT, 'key.pem'), ca: cert };
  });
  return pems;
}

test('echo-server --http2 --cert --key serves WebSockets over HTTP/2 and HTTP/1.1 on one wss: port', async (t) => {
  const { cert, key, ca } = await certFiles();
  const { cli, url } = await echoServer(['--http2', '--cert', cert, '--key', key, '--deflate']);
  t.regex(cli.stdout(), /listening on wss:\/\/127\.0\.0\.1:\d+ \(HTTP\/2 and HTTP\/1\.1\) \(permessage-deflate on\)/);
  const port = new URL(url).port;
  const h2 = await within(connect(`wss://localhost:${port}/`, { http2: true, tls: { ca }, perMessageDeflate: true }), 'connect over HTTP/2');
  t.is(h2.socket.constructor.name, 'ClientHttp2Stream');
  await sendText(h2, 'over h2');
  t.is((await within(readData(h2), 'the echo')).data.toString(), 'over h2');
  await waitFor(cli, /connection from 127\.0\.0\.1:\d+ over HTTP\/2: permessage-deflate/, 'stderr');
  const h1 = await open(`wss://localhost:${port}/`, undefined, { ca });
  const echoed = nextMessage(h1);
  h1.send('over h1');
  t.is((await echoed).data.toString(), 'over h1');
  await close(h2);
  h1.close();
  cli.child.kill('SIGTERM');
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
});

test('connect --http2 --ca and echo-client --http2 open their WebSocket as an HTTP/2 stream (wss: and cleartext ws:)', async (t) => {
  const { ca, cert, key } = await certFiles();
  const versions: string[] = [];
  const serve = async (ws: AsyncSocket, req: WsRequest): Promise<void> => {
    versions.push(req.httpVersion);
    await sendText(ws, 'welcome');
    for (;;) {
      const m = await readData(ws);
      if (m.opcode === Opcode.Close) return;
      if (m.opcode === Opcode.Text) await sendText(ws, `you said: ${m.data.toString()}`);
      if (m.data.toString() === 'welcome') return; // echo-client echoed it: done
    }
  };
  const secure = await listen({ http2: true, tls: { cert: ca, key: readFileSync(key) } }, serve);
  const plain = await listen({ http2: true }, serve);
  servers.add({ close: () => void secure.close() });
  servers.add({ close: () => void plain.close() });

  const cli = run(['connect', `wss://localhost:${secure.port}/`, '--http2', '--ca', cert]);
  await waitFor(cli, /^< welcome\n/);
  cli.child.stdin!.end('hello\n');
  await waitFor(cli, /< you said: hello\n/);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  t.regex(cli.stderr(), /^connected to wss:\/\/localhost:\d+\/ over HTTP\/2;/);

  const echoClient = run(['echo-client', `ws://127.0.0.1:${plain.port}/`, '--http2']);
  t.deepEqual(await exitOf(echoClient), { code: 0, signal: null }, echoClient.stderr());
  t.regex(echoClient.stderr(), /closed cleanly: 1000/);
  t.deepEqual(versions, ['2.0', '2.0'], 'both came over HTTP/2');

  // Without --http2, the same wss: port takes HTTP/1.1.
  const h1 = run(['connect', `wss://localhost:${secure.port}/`, '--ca', cert]);
  await waitFor(h1, /^< welcome\n/);
  h1.child.stdin!.end();
  t.deepEqual(await exitOf(h1), { code: 0, signal: null }, h1.stderr());
  t.is(versions[2], '1.1');
});

test('echo-server --cert without --key, and a --ca file that cannot be read, are usage errors', async (t) => {
  const { cert } = await certFiles();
  const half = run(['echo-server', '--port', '0', '--cert', cert]);
  t.is((await exitOf(half)).code, 2);
  t.regex(half.stderr(), /--cert and --key go together/);
  const missing = run(['echo-client', 'wss://localhost:1/', '--ca', join(OUT, 'no-such.pem')]);
  t.is((await exitOf(missing)).code, 2);
  t.regex(missing.stderr(), /--ca: cannot read/);
});

test('--version prints the version, Node and the masking code in use (bufferutil, or the built-in kernel without it)', async (t) => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const cli = run(['--version'], { tsNode: true });
  t.deepEqual(await exitOf(cli), { code: 0, signal: null });
  t.is(cli.stdout(), `wsframe ${version} (Node ${process.version}; masking: bufferutil)\n`);
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', CLI, '--version'], {
    cwd: ROOT,
    env: { ...process.env, WSFRAME_NO_BUFFERUTIL: '1' }
  });
  children.add(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await within(new Promise((resolve) => child.once('close', resolve)), 'the second --version');
  t.regex(out, /; masking: wasm-simd\)\n$/);
});

test('connect and echo-client -H send extra request headers (a token-protected endpoint); a malformed one is a usage error', async (t) => {
  const { url } = await wsServer((ws) => ws.send('welcome'), {
    verifyClient: (info: { req: { headers: Record<string, string | string[] | undefined> } }) =>
      info.req.headers.authorization === 'Bearer s3cret' && info.req.headers['x-two'] === 'a, b'
  });
  const refused = run(['connect', url]);
  t.is((await exitOf(refused)).code, 1);
  t.regex(refused.stderr(), /401/);
  const cli = run(['connect', url, '-H', 'Authorization: Bearer s3cret', '--header', 'X-Two: a', '-H', 'X-Two:b']);
  await waitFor(cli, /^< welcome\n/);
  cli.child.stdin!.end();
  t.deepEqual(await exitOf(cli), { code: 0, signal: null }, cli.stderr());
  const bad = run(['echo-client', url, '-H', 'no colon here']);
  t.is((await exitOf(bad)).code, 2);
  t.regex(bad.stderr(), /--header takes 'Name: value'/);
});

test('--help prints the usage on stdout and exits 0', async (t) => {
  const cli = run(['--help']);
  t.deepEqual(await exitOf(cli), { code: 0, signal: null });
  t.regex(cli.stdout(), /^Usage:\n {2}wsframe echo-server \[--host 127\.0\.0\.1\] \[--port 9001\]/);
  t.regex(cli.stdout(), /wsframe connect URL/);
});
