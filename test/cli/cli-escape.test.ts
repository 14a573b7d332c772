/**
 * Issue 11, finding 8: `wsframe connect` printed a server's text raw, so a hostile server
 * could clear the screen, move the cursor, set the window title, write the clipboard (OSC
 * 52), colour the output, and fake our own lines with CR or LF. The CLI (src/ transpiled
 * once, as test/cli/cli.test.ts does) runs against a local `ws` server; what it prints must
 * hold no control character but the newline that ends each line, with each one shown
 * escaped, unless `--raw` asks for the text as it is.
 */
import test, { ExecutionContext } from 'ava';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { within } from '../helpers/socket-pair';
import { ROOT, transpileTree } from '../helpers/transpile';
import { acceptFor } from '../helpers/upgrade';
import { listeningWsServer } from '../helpers/ws-server';

const WAIT_MS = 20_000; // bound on every wait (generous: a busy 2-core machine)
const OUT = mkdtempSync(join(tmpdir(), 'wsframe-cli-escape-'));
let CLI_JS = '';

test.before(() => {
  CLI_JS = transpileTree(OUT)(join(ROOT, 'src', 'cli.ts'));
});
test.after.always(() => rmSync(OUT, { recursive: true, force: true }));

/** What a hostile server sends, and how `connect` must show each (after "< "). */
const HOSTILE: ReadonlyArray<[sent: string, shown: string]> = [
  ['\x1b[2J\x1b[Hcleared', '\\x1b[2J\\x1b[Hcleared'], // clear screen, cursor home
  ['\x1b]0;pwned title\x07', '\\x1b]0;pwned title\\x07'], // window title
  ['\x1b]52;c;ZWNobyBwd25lZA==\x07', '\\x1b]52;c;ZWNobyBwd25lZA==\\x07'], // OSC 52: write the clipboard
  ['\x1b[31mred\x1b[0m', '\\x1b[31mred\\x1b[0m'], // colours
  ['\u009b2Jc1', '\\x9b2Jc1'], // CSI as one C1 character
  ['innocent\rOVERWRITTEN', 'innocent\\rOVERWRITTEN'], // CR overwrites the line
  ['two\nclosed by the server: 1000 fake', 'two\\nclosed by the server: 1000 fake'], // a fake line of ours
  ['tab\tdel\x7fnul\x00 back\\slash', 'tab\\tdel\\x7fnul\\x00 back\\\\slash'],
  ['bidi \u202eevil\u202c, separator\u2028', 'bidi \\u202eevil\\u202c, separator\\u2028'],
  ['héllo wörld ✓ 🌍', 'héllo wörld ✓ 🌍'] // printable text stays as it is
];
const CLOSE_REASON = 'bye\x1b]0;title\x07';
const CLOSE_REASON_SHOWN = 'bye\\x1b]0;title\\x07';

// Any control character (C0, DEL, C1) other than the newline that ends a line.
const CONTROL = /(?!\n)\p{Cc}/u;

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** Runs the CLI until it exits (bounded; stdin stays open, so the server's close must end it). */
async function runCli(t: ExecutionContext, args: string[]): Promise<Run> {
  const child: ChildProcess = spawn(process.execPath, [CLI_JS, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await within(
    new Promise<number | null>((resolve) => child.once('close', (c: number | null) => resolve(c))),
    `wsframe ${args.join(' ')} to exit`,
    WAIT_MS
  ).catch((err: Error) => {
    throw new Error(`${err.message}; stdout: ${JSON.stringify(stdout)} stderr: ${JSON.stringify(stderr)}`);
  });
  return { stdout, stderr, code };
}

/** A `ws` server that sends every hostile text, then closes with a hostile reason. */
async function hostileServer(t: ExecutionContext): Promise<string> {
  const wss = await listeningWsServer(t);
  wss.on('connection', (ws) => {
    for (const [sent] of HOSTILE) ws.send(sent);
    ws.close(1000, CLOSE_REASON);
  });
  return `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`;
}

test('connect shows a hostile server’s text and close reason with every control character escaped', async (t) => {
  const { stdout, stderr, code } = await runCli(t, ['connect', await hostileServer(t)]);
  t.is(code, 0, stderr);
  t.deepEqual(
    stdout.split('\n'),
    [...HOSTILE.map(([, shown]) => `< ${shown}`), ''],
    'one line a message, escaped'
  );
  t.false(CONTROL.test(stdout), `a control character reached stdout: ${JSON.stringify(stdout)}`);
  t.false(CONTROL.test(stderr), `a control character reached stderr: ${JSON.stringify(stderr)}`);
  t.true(stderr.endsWith(`\nclosed by the server: 1000 ${CLOSE_REASON_SHOWN}\n`), stderr);
});

test('connect --raw prints text messages as they arrive; the close reason stays escaped', async (t) => {
  const { stdout, stderr, code } = await runCli(t, ['connect', await hostileServer(t), '--raw']);
  t.is(code, 0, stderr);
  t.is(stdout, HOSTILE.map(([sent]) => `< ${sent}\n`).join(''));
  t.false(CONTROL.test(stderr), `a control character reached stderr: ${JSON.stringify(stderr)}`);
  t.true(stderr.endsWith(`closed by the server: 1000 ${CLOSE_REASON_SHOWN}\n`), stderr);
});

test('a header value quoted in an error is escaped too (a C1 CSI in Sec-WebSocket-Extensions)', async (t) => {
  // Node's HTTP parser refuses C0 controls in header values but passes bytes 0x80-0xff, as
  // latin1: 0x9b arrives as U+009B, CSI.
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1];
      if (!head.includes('\r\n\r\n') || key === undefined) return;
      const response = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\nSec-WebSocket-Extensions: x\x9b2J\x9b31mred\r\n\r\n`;
      socket.end(Buffer.from(response, 'latin1'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { stdout, stderr, code } = await runCli(t, ['connect', `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`]);
  t.is(code, 1, stderr);
  t.is(stdout, '');
  t.regex(stderr, /^wsframe: HandshakeError: .*Sec-WebSocket-Extensions.*x\\x9b2J\\x9b31mred.*\n$/);
  t.false(CONTROL.test(stderr), `a control character reached stderr: ${JSON.stringify(stderr)}`);
});
