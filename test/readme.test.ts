// README's code runs as shown. Every ```ts block type-checks (full programs as CommonJS modules,
// fragments inside an async function with the context README states: `ws`, `socket`, …);
// the programs run in a child process with 'wsframe' pointed at this repository's src/: the
// ones that exit print what README says, and the servers are started and talked to.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';
import * as wsframe from '../src';
import { HandshakeError, Opcode, close, connect, readData, sendBinary, sendText } from '../src';
import { selfSignedCert } from './helpers/tls-cert';
import { typecheckSnippets } from './helpers/typecheck-snippets';
import { within } from './helpers/wait';

const ROOT = join(__dirname, '..');
const SRC = JSON.stringify(join(ROOT, 'src'));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
// ts-node start-up with full type-checking on a busy machine; a bound on a hang, not on speed
const HANG_MS = 120_000;

interface Block {
  heading: string;
  line: number;
  code: string;
}

/** Every ```ts block of README with the heading it is under and its first line's number. */
function blocks(): Block[] {
  const found: Block[] = [];
  let heading = '';
  const lines = README.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.startsWith('#')) heading = lines[i]!;
    if (lines[i] !== '```ts') continue;
    const end = lines.indexOf('```', i + 1);
    found.push({ heading, line: i + 2, code: lines.slice(i + 1, end).join('\n') + '\n' });
    i = end;
  }
  return found;
}

/** The first ts block under `heading` (a line of its own in README). */
function snippet(heading: string): string {
  const block = blocks().find((b) => b.heading === heading);
  if (block === undefined) throw new Error(`no ts block under ${heading}`);
  return block.code;
}

// What README says its fragments assume ("an AsyncSocket called ws, and an async context").
const CONTEXT = `
declare const ws: import('wsframe').AsyncSocket;
declare const socket: import('node:net').Socket;
declare const head: Buffer;
declare const header: Buffer;
declare const payload: Buffer;
declare const big: Buffer;
declare const file: import('node:fs').WriteStream;
declare const window: number;
declare const count: number;
declare const key: Buffer;
declare const cert: Buffer;
declare function serve(ws: import('wsframe').AsyncSocket): Promise<void>;
`;

test('every ts block in README type-checks', (t) => {
  t.timeout(HANG_MS);
  const snippets = blocks().map((b) => ({ file: 'README.md', line: b.line, label: `under ${b.heading}`, code: b.code }));
  t.deepEqual(typecheckSnippets(snippets, CONTEXT), []);
  t.log(`${snippets.length} blocks checked`);
});

/** Writes `code` with 'wsframe' pointed at src/ into a fresh folder; returns the file. */
function writeProgram(t: { teardown(fn: () => void): void }, code: string, files: Record<string, Buffer> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsframe-readme-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  const file = join(dir, 'program.ts');
  writeFileSync(file, code.replace(/from 'wsframe'/g, `from ${SRC}`));
  return file;
}

// Full ts-node (not transpile-only): a type error, or a top-level await, fails the run.
const TS_NODE_ENV = { ...process.env, TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'), TS_NODE_FILES: 'false' };

/** Type-checks and runs the first ts block under `heading`; resolves to what it printed. */
async function runSnippet(t: { teardown(fn: () => void): void }, heading: string): Promise<string> {
  const file = writeProgram(t, snippet(heading));
  const { stdout } = await promisify(execFile)(process.execPath, ['-r', 'ts-node/register', file], {
    cwd: ROOT,
    env: TS_NODE_ENV,
    timeout: HANG_MS
  });
  return stdout;
}

// Loaded first into a server program: says on stderr which port each server listens on, so
// the program can listen on port 0 (the only change made to it) and the test needs no sleep.
const REPORT_PORT = `
const net = require('node:net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  this.once('listening', () => process.stderr.write('listening ' + this.address().port + '\\n'));
  return listen.apply(this, args);
};
`;

/**
 * Starts the server program under `heading` (its fixed port made 0), with `files` beside it;
 * resolves to its port and a view of its output once it listens. Killed at teardown.
 */
async function startServer(
  t: { teardown(fn: () => void): void },
  heading: string,
  files: Record<string, Buffer> = {}
): Promise<{ port: number; printed: (pattern: RegExp) => Promise<void> }> {
  const code = snippet(heading).replace(/\.listen\(\d+, '127\.0\.0\.1'\)/, ".listen(0, '127.0.0.1')");
  const file = writeProgram(t, code, { ...files, 'report-port.js': Buffer.from(REPORT_PORT) });
  const child = spawn(process.execPath, ['-r', join(file, '..', 'report-port.js'), '-r', require.resolve('ts-node/register'), file], {
    cwd: join(file, '..'),
    env: TS_NODE_ENV,
    stdio: ['ignore', 'pipe', 'pipe']
  });
  t.teardown(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const listening = new Promise<number>((resolve, reject) => {
    child.stderr.on('data', () => {
      const m = /^listening (\d+)$/m.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    void once(child, 'exit').then(() => reject(new Error(`the program exited before listening:\n${stderr}`)));
  });
  const port = await within(listening, `${heading} listening`, HANG_MS);
  const printed = (pattern: RegExp): Promise<void> =>
    within(
      new Promise<void>((resolve) => {
        const check = (): void => void (pattern.test(stdout) && (child.stdout.off('data', check), resolve()));
        child.stdout.on('data', check);
        check();
      }),
      `${heading} printing ${pattern}`,
      30_000
    );
  return { port, printed };
}

/** An echo of one text and one binary message, then a clean close. */
async function echoes(t: { is(a: unknown, b: unknown): void; deepEqual(a: unknown, b: unknown): void }, ws: wsframe.AsyncSocket): Promise<void> {
  await sendText(ws, 'hi');
  t.is((await readData(ws)).data.toString(), 'hi');
  await sendBinary(ws, Buffer.from([1, 2, 3]));
  t.deepEqual([...(await readData(ws)).data], [1, 2, 3]);
  t.deepEqual(await close(ws, 1000, 'bye'), { code: 1000, reason: 'bye', clean: true });
}

const refusal = (p: Promise<unknown>): Promise<number | string> =>
  p.then(
    () => 'accepted',
    (err: unknown) => (err instanceof HandshakeError ? err.status ?? 'no status' : String(err))
  );

test('the Quick start type-checks as CommonJS, prints hello, and exits', async (t) => {
  t.timeout(HANG_MS + 30_000);
  t.is(await runSnippet(t, '## Quick start'), 'hello\n');
});

test('the node:http bolt-on refuses a wrong token with 401 and echoes with the right one', async (t) => {
  t.timeout(HANG_MS + 30_000);
  const { port } = await startServer(t, '## Adding WebSockets to a `node:http` server');
  const url = `ws://127.0.0.1:${port}/`;
  t.is(await refusal(connect(url, { protocols: ['chat.v1'] })), 401);
  const ws = await connect(url, { protocols: ['chat.v1'], headers: { authorization: 'Bearer secret' } });
  t.is(ws.protocol, 'chat.v1');
  await echoes(t, ws);
});

test('the HTTP/2 bolt-on: a WebSocket over HTTP/2 and one over HTTP/1.1 on the same port, 401 without a token', async (t) => {
  t.timeout(HANG_MS + 30_000);
  const { key, cert } = await selfSignedCert();
  const { port } = await startServer(t, '### The same over HTTP/2 (RFC 8441)', { 'key.pem': key, 'cert.pem': cert });
  const url = `wss://localhost:${port}/chat`;
  const tls = { ca: cert };
  t.is(await refusal(connect(url, { http2: true, tls, protocols: ['chat.v1'] })), 401);
  for (const http2 of [true, false]) {
    const ws = await connect(url, { http2, tls, protocols: ['chat.v1'], headers: { authorization: 'Bearer secret' } });
    t.is(ws.protocol, 'chat.v1');
    await echoes(t, ws);
  }
});

test('the own server loop: acceptWebSocket refuses (401, 400 without the subprotocol) and serve() echoes', async (t) => {
  t.timeout(HANG_MS + 30_000);
  const { port, printed } = await startServer(t, '## Your own server loop');
  const url = `ws://127.0.0.1:${port}/`;
  const authorization = 'Bearer secret';
  t.is(await refusal(connect(url, { protocols: ['chat.v1'] })), 401);
  t.is(await refusal(connect(url, { headers: { authorization } })), 400);
  const ws = await connect(url, { protocols: ['chat.v1'], headers: { authorization } });
  await echoes(t, ws);
  // a protocol violation: serve() says which Close it sent
  const bad = await connect(url, { protocols: ['chat.v1'], headers: { authorization } });
  await bad.write(Buffer.from([0x83, 0x80, 0, 0, 0, 0])); // reserved opcode 3, masked, empty
  const answer = await readData(bad);
  t.deepEqual([answer.opcode, answer.data.readUInt16BE(0)], [Opcode.Close, 1002]);
  await printed(/^sent close 1002 WS_ERR_INVALID_OPCODE$/m);
  await printed(/^HandshakeError: .*401/m);
  t.pass();
});

test('the server recipes: a refused token, a broadcast, a kick from outside the loop, a shutdown', async (t) => {
  t.timeout(HANG_MS + 30_000);
  const out = await runSnippet(t, '## Recipes for a server');
  t.is(
    out,
    [
      'a wrong token gets 401',
      'alice reads: alice joined',
      'alice reads: bob joined',
      "kicked bob: { code: 4001, reason: 'kicked', clean: true }",
      'bob got a Close with 4001',
      'alice reads a Close with 1001 and clients left: 0',
      ''
    ].join('\n')
  );
});

test('the frame-throughput loop builds and parses 20,000 frames and says how fast', async (t) => {
  t.timeout(HANG_MS + 30_000);
  const out = await runSnippet(t, '## Measuring frame throughput');
  t.regex(out, /^build: \d+ frames\/s\nparse: \d+ messages\/s, 20480000 bytes\n$/);
  t.log(out.trim().replace(/\n/g, '; '));
});

test('the WebSocketStream program prints HELLO and the clean close, and exits', async (t) => {
  t.timeout(HANG_MS + 30_000);
  t.is(await runSnippet(t, '## Streams: `WebSocketStream` and `node:stream`'), "HELLO\n{ closeCode: 1000, reason: 'done' }\n");
});

/** README's echo-window fragment as a function of its context: a connection, a window, a count, a payload. */
function echoWindowFragment(): (...context: unknown[]) => Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const fragment = blocks().filter((b) => b.heading === '## Measuring frame throughput')[1]!.code;
  const js = ts.transpileModule(fragment, { compilerOptions: { target: ts.ScriptTarget.ES2022 } }).outputText;
  const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (...values: unknown[]) => Promise<void>;
  return new AsyncFunction('ws', 'window', 'count', 'payload', 'sendBinary', 'readData', js);
}

test('the echo-window fragment: a connection lost mid-run fails its read loop, and no send goes unhandled', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): number => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  let seen = 0;
  const server = await wsframe.listen({ port: 0 }, async (ws) => {
    for await (const m of wsframe.messages(ws)) {
      if (++seen === 100) return ws.destroy(); // gone, with the client's window full
      await sendBinary(ws, m.data);
    }
  });
  t.teardown(() => server.close());
  const ws = await connect(`ws://127.0.0.1:${server.port}/`);
  const err = await within(t.throwsAsync(echoWindowFragment()(ws, 64, 10_000, Buffer.alloc(1024, 'x'), sendBinary, readData)), 'the echo loop', 60_000);
  t.true(err instanceof wsframe.IOError, String(err));
  // every failed send has settled by the time its rejection would count as unhandled
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(unhandled, []);
});

test('the echo-window fragment under Measuring frame throughput receives every echo', async (t) => {
  const run = echoWindowFragment();
  let echoed = 0;
  const server = await wsframe.listen({ port: 0 }, async (ws) => {
    for await (const m of wsframe.messages(ws)) {
      echoed++;
      await sendBinary(ws, m.data);
    }
  });
  t.teardown(() => server.close());
  const ws = await connect(`ws://127.0.0.1:${server.port}/`);
  const read = { calls: 0 };
  const counted = (socket: wsframe.AsyncSocket) => (read.calls++, readData(socket));
  await within(run(ws, 16, 2000, Buffer.alloc(1024, 'x'), sendBinary, counted), 'the echo loop', 60_000);
  t.is(read.calls, 2000);
  t.is(echoed, 2000); // the server got exactly count messages: the window never overshot
  t.deepEqual(await close(ws), { code: 1000, reason: '', clean: true });
});
