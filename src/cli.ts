#!/usr/bin/env node
/**
 * The `wsframe` command: `echo-server`, `echo-client`, and `connect` and `listen` (interactive,
 * like wscat, whose -c, -l, -x, -w and -P it takes).
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { AsyncSocket } from './connection/async-socket';
import { connect } from './handshake/client';
import { whenClosed } from './connection/closing';
import { decodeClosePayload } from './core/close';
import { CloseCode, Opcode } from './core/constants';
import { ProtocolError, WebSocketError } from './core/errors';
import { PERMESSAGE_DEFLATE, describeDeflate, parseExtensions } from './core/extensions';
import { isToken } from './core/handshake';
import { maskBackend } from './core/mask';
import { listen } from './server/listen';
import type { WsRequest } from './server/options';
import { readData } from './connection/recv';
import { sendBinary, sendClose, sendText } from './connection/send';

const USAGE = `Usage:
  wsframe echo-server [--host 127.0.0.1] [--port 9001] [--max-message-size BYTES] [--protocol a,b] [--deflate]
                      [--cert FILE --key FILE] [--http2]
  wsframe echo-client URL [--protocol a,b] [--max-message-size BYTES] [--deflate] [--ca FILE] [--http2]
                      [-H 'Name: value' …]
  wsframe connect URL [--protocol a,b] [--deflate] [--raw] [--ca FILE] [--http2] [-H 'Name: value' …]
                      [-x MESSAGE … [-w SECONDS]] [-P]
  wsframe listen [--host 127.0.0.1] [--port 9001] [--protocol a,b] [--deflate] [--raw] [-P]
  wsframe --version

  As with wscat: -c URL is connect URL, -l PORT is listen --port PORT, and a URL without
  a scheme (127.0.0.1:9001/chat) is taken as ws://.

  echo-server  echoes every text and binary message with its type, answers pings, and
               echoes the close code and reason. Prints the URL it listens on (--port 0
               picks a free port); SIGINT or SIGTERM closes open connections with 1001.
               With --protocol it selects the first protocol of its list that the
               client offers.
  echo-client  connects to a ws: or wss: URL (offering the --protocol list), echoes every
               message it receives, and exits 0 after a clean close, 1 on a failure. It
               waits for the server to speak first: against echo-server, which waits too,
               nothing happens (talk to echo-server with connect).
  connect      sends each line of standard input as a text message and prints what
               arrives as "< text"; the end of input closes the connection.
  listen       a server for conversations, like wscat -l: prints what its clients send
               as "< text" and sends each line of standard input to every client
               connected; the end of input closes them (1000) and exits.

  --max-message-size  larger messages (or frames) fail the connection with 1009 (for
                      compressed messages: their size once inflated).
  --deflate           permessage-deflate (RFC 7692) with the default parameters: the
                      server accepts it when a client offers it, the clients offer it;
                      messages of 1024 bytes or more are sent compressed. The agreed
                      parameters go to stderr: echo-server one line per connection,
                      echo-client and connect one line after connecting.
  --raw               (connect, listen) prints text messages exactly as they arrive: only
                      for a peer you trust, or output piped to another program.
  -x, --execute       (connect) sends this text message once connected instead of reading
                      standard input (repeat it for more), then closes.
  -w, --wait          (connect, with -x) seconds to keep printing what arrives before
                      closing. Default 0: close right after the messages went out (what
                      arrives before the server's Close is still printed).
  -P, --show-ping-pong  (connect, listen) prints "< ping: payload" and "< pong: payload"
                      for each Ping and Pong received (Pings are answered either way).
  --cert, --key       (echo-server) PEM files: serve wss: (TLS) instead of ws:.
  -H, --header        (clients) an extra request header, 'Name: value' (repeat it for
                      more), e.g. -H 'Authorization: Bearer <token>'.
  --ca                (clients) a PEM certificate to trust for wss:, such as the
                      self-signed one an echo-server --cert uses.
  --http2             WebSockets over HTTP/2 (RFC 8441). echo-server: with --cert and
                      --key, HTTP/2 and HTTP/1.1 on one port (what browsers use);
                      without, cleartext HTTP/2 only (h2c). Clients: open the WebSocket
                      as a stream of an HTTP/2 connection (wss: with ALPN h2, ws: as h2c),
                      and fail if the server does not offer it.

  Text from a server (messages, close reasons, header values quoted in errors) is
  shown with control characters escaped, so that it can neither drive the terminal
  (clear it, move the cursor, set its title or the clipboard) nor fake a line of
  ours: \\n \\r \\t, \\\\ for a backslash, \\xHH for other C0 and C1 controls and DEL,
  \\uHHHH for line separators and bidirectional controls. A message stays on one line.

  echo-server logs each connection and its close on stderr (--quiet, -q: not).

  Exit codes: 0 success, 1 connection or protocol failure (for connect, also a server that
  closed with a code other than 1000, 1001 or none), 2 usage error.
`;

class UsageError extends Error {}

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'max-message-size': { type: 'string' },
        protocol: { type: 'string' },
        deflate: { type: 'boolean' },
        raw: { type: 'boolean' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string' },
        http2: { type: 'boolean' },
        header: { type: 'string', short: 'H', multiple: true },
        version: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
        connect: { type: 'string', short: 'c' },
        listen: { type: 'string', short: 'l' },
        execute: { type: 'string', short: 'x', multiple: true },
        wait: { type: 'string', short: 'w' },
        'show-ping-pong': { type: 'boolean', short: 'P' }
      }
    });
  } catch (err) {
    throw new UsageError(parseArgsProblem(err as Error & { code?: string }));
  }
}

// parseArgs's own messages are long, quote unevenly and give advice about '--' that does not
// apply here: say the problem in one line, naming the option as it was typed.
function parseArgsProblem(err: Error & { code?: string }): string {
  const option = /'(-{1,2}[^'\s,]+)/.exec(err.message)?.[1] ?? 'an option';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(err.message) ? `${option} needs a value` : `${option} takes no value`;
    default:
      return err.message.split('\n')[0]!;
  }
}

type Values = ReturnType<typeof parse>['values'];

// The options each command takes (--help goes with any).
const OPTIONS: Record<string, readonly string[]> = {
  'echo-server': ['host', 'port', 'max-message-size', 'protocol', 'deflate', 'cert', 'key', 'http2', 'quiet'],
  'echo-client': ['protocol', 'max-message-size', 'deflate', 'ca', 'http2', 'header'],
  connect: ['protocol', 'deflate', 'raw', 'ca', 'http2', 'header', 'execute', 'wait', 'show-ping-pong', 'connect'],
  listen: ['host', 'port', 'protocol', 'deflate', 'raw', 'show-ping-pong', 'listen']
};

function byteCount(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${name} takes a positive number of bytes, not ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function protocolList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(',').map((s) => s.trim());
  // Subprotocol names are RFC 7230 tokens (RFC 6455 §4.1).
  const bad = list.find((p) => !isToken(p));
  if (bad !== undefined) throw new UsageError(`--protocol takes a comma-separated list of names, and ${JSON.stringify(bad)} is not one`);
  return list;
}

function wsUrl(command: string, url: string): string {
  // wscat's habit: host:port (and a path) without a scheme means ws://.
  if (!url.includes('://')) url = `ws://${url}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${command}: ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new UsageError(`${command} takes a ws: or wss: URL, not ${parsed.protocol}`);
  }
  return url;
}

// What a peer's text may not put on our terminal as is: C0 controls (ESC starts every
// escape sequence; BEL ends OSC ones such as the title and OSC 52 clipboard writes; CR and
// LF could overwrite or fake our lines), DEL, C1 controls (U+009B is CSI on its own), the
// line and paragraph separators, and the bidirectional controls that reorder what is
// shown. The backslash is escaped too, so that each shown line maps back to one text.
const UNPRINTABLE = /[\\\p{Cc}\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
const NAMED_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED_ESCAPES[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/** Text from a peer as it may be shown on a terminal: one line, control characters escaped. */
function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

// What a client with --deflate prints once connected.
function clientExtensionLine(ws: AsyncSocket): string {
  return ws.deflate !== null
    ? `extensions: ${describeDeflate(ws.deflate.params)}`
    : 'extensions: none (the server did not accept permessage-deflate)';
}

// What echo-server --deflate prints for each connection.
// Who a connection is from, as the server's log names it.
function peerName(req: WsRequest): string {
  return `${req.socket.remoteAddress}:${req.socket.remotePort}${req.httpVersionMajor === 2 ? ' over HTTP/2' : ''}`;
}

function serverExtensionLine(ws: AsyncSocket, req: WsRequest): string {
  const from = peerName(req);
  if (ws.deflate !== null) return `connection from ${from}: ${describeDeflate(ws.deflate.params)}`;
  // upgrade() answered 400 to a header that does not parse, so this one parses.
  const offered = parseExtensions(req.headers['sec-websocket-extensions'] ?? '').some((e) => e.name === PERMESSAGE_DEFLATE);
  return `connection from ${from}: no extensions (${offered ? 'its permessage-deflate offer was declined' : 'permessage-deflate not offered'})`;
}

/** Echoes messages until the close handshake (answered inside readData) completes. */
async function echo(ws: AsyncSocket): Promise<{ code: number; reason: string }> {
  for (;;) {
    const { opcode, data } = await readData(ws);
    if (opcode === Opcode.Text) await sendText(ws, data.toString('utf8'));
    else if (opcode === Opcode.Binary) await sendBinary(ws, data);
    else if (opcode === Opcode.Close) return decodeClosePayload(data);
  }
}

// Reads a PEM file named by an option, as a usage error when it cannot be read.
function pemFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`--${name}: cannot read ${JSON.stringify(path)}: ${(err as Error).message}`);
  }
}

function portNumber(option: string, text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new UsageError(`${option} takes a port number (0-65535; 0 picks a free one), not ${JSON.stringify(text)}`);
  }
  return port;
}

// --wait SECONDS, as wscat takes it (a timer holds at most 2^31-1 ms).
function waitMs(text: string | undefined): number {
  if (text === undefined) return 0;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || seconds * 1000 > 2 ** 31 - 1) {
    throw new UsageError(`--wait takes a number of seconds (0 to 2147483), not ${JSON.stringify(text)}`);
  }
  return Math.round(seconds * 1000);
}

async function echoServer(values: Values): Promise<void> {
  const host = values.host ?? '127.0.0.1';
  const port = portNumber('--port', values.port ?? '9001');
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError('--cert and --key go together');
  const maxSize = byteCount('max-message-size', values['max-message-size']);
  const protocols = protocolList(values.protocol);
  const deflate = values.deflate === true;
  const tls = values.cert !== undefined ? { cert: pemFile('cert', values.cert), key: pemFile('key', values.key!) } : undefined;
  const options = {
    host,
    port,
    protocols,
    tls,
    ...(deflate ? { perMessageDeflate: true } : {}),
    ...(maxSize !== undefined ? { maxMessageSize: maxSize, maxFrameSize: maxSize } : {})
  };
  const quiet = values.quiet === true;
  const serve = async (ws: AsyncSocket, req: WsRequest): Promise<void> => {
    const from = peerName(req);
    if (!quiet) console.error(deflate ? serverExtensionLine(ws, req) : `connection from ${from}${ws.protocol ? ` (protocol ${ws.protocol})` : ''}`);
    try {
      const closed = await echo(ws);
      await whenClosed(ws);
      if (!quiet) console.error(`closed ${from}: ${describeClose(closed)}`);
    } catch (err) {
      if (!quiet) console.error(`closed ${from}: ${printable(err instanceof Error ? `${err.name}: ${err.message}` : String(err))}`);
      throw err;
    }
  };
  const server = values.http2 === true ? await listen({ ...options, http2: true }, serve) : await listen(options, serve);
  const shown = host.includes(':') ? `[${host}]` : host;
  const over = values.http2 !== true ? '' : tls ? ' (HTTP/2 and HTTP/1.1)' : ' (cleartext HTTP/2 only)';
  console.log(
    `wsframe echo-server listening on ${tls ? 'wss' : 'ws'}://${shown}:${server.port}${over}${deflate ? ' (permessage-deflate on)' : ''}`
  );
  const stop = (): void => {
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

// The connect options the client commands share: --protocol, --deflate, --ca, --http2.
function clientOptions(values: Values) {
  return {
    protocols: protocolList(values.protocol),
    ...(values.deflate === true ? { perMessageDeflate: true } : {}),
    ...(values.ca !== undefined ? { tls: { ca: pemFile('ca', values.ca) } } : {}),
    ...(values.http2 === true ? { http2: true } : {}),
    ...(values.header !== undefined ? { headers: headerOptions(values.header) } : {})
  };
}

// -H 'Name: value', as curl and wscat take it.
function headerOptions(lines: string[]): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon).trim();
    if (!isToken(name)) throw new UsageError(`--header takes 'Name: value', not ${JSON.stringify(line)}`);
    (headers[name] ??= []).push(line.slice(colon + 1).trim());
  }
  return headers;
}

// What --version prints: the package's version, Node's, and the masking code in use.
function versionLine(): string {
  const { version } = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return `wsframe ${version} (Node ${process.version}; masking: ${maskBackend()})\n`;
}

async function echoClient(url: string, values: Values): Promise<void> {
  const maxSize = byteCount('max-message-size', values['max-message-size']);
  const ws = await connect(url, {
    ...clientOptions(values),
    ...(maxSize !== undefined ? { maxMessageSize: maxSize, maxFrameSize: maxSize } : {})
  });
  if (values.deflate === true) console.error(clientExtensionLine(ws));
  let closed: { code: number; reason: string };
  try {
    closed = await echo(ws);
  } catch (err) {
    lingerAfterFailure(ws);
    throw err;
  }
  await whenClosed(ws);
  // Any clean close ends an echo well, whatever its code: echo-client is a test peer.
  console.error(`closed cleanly: ${describeClose(closed)}`);
}

// Close codes that mean all went well: normal, going away, none given.
const NORMAL_CLOSE = new Set<number>([CloseCode.Normal, CloseCode.GoingAway, CloseCode.NoStatus]);

/** The peer closed cleanly, but with a code that says something went wrong (exit 1). */
class ClosedWith extends Error {
  constructor(closed: { code: number; reason: string }) {
    super(`the server closed with ${describeClose(closed)}`);
    this.name = 'Closed';
  }
}

// After a failure the library waits up to closeTimeout (10 s) for the server to close TCP;
// a command line tool gives it a second, then exits.
const FAILURE_LINGER_MS = 1000;

function lingerAfterFailure(ws: AsyncSocket): void {
  ws.destroyAfter(Math.min(ws.closeTimeout, FAILURE_LINGER_MS));
}

// A close code and the peer's reason, escaped.
function describeClose({ code, reason }: { code: number; reason: string }): string {
  return `${code}${reason ? ` ${printable(reason)}` : ''}`;
}

// Prints a message, or a Ping or Pong with -P, as connect and listen show them.
function printFrame(opcode: number, data: Buffer, show: (text: string) => string, pingPong: boolean): void {
  if (opcode === Opcode.Text) console.log(`< ${show(data.toString('utf8'))}`);
  else if (opcode === Opcode.Binary) console.log(`< binary, ${data.length} bytes: ${data.subarray(0, 32).toString('hex')}${data.length > 32 ? '…' : ''}`);
  else if (pingPong && opcode === Opcode.Ping) console.log(`< ping: ${show(data.toString('utf8'))}`);
  else if (pingPong && opcode === Opcode.Pong) console.log(`< pong: ${show(data.toString('utf8'))}`);
}

const textShown = (values: Values): ((text: string) => string) => (values.raw === true ? (text: string) => text : printable);

async function interactive(url: string, values: Values): Promise<void> {
  const show = textShown(values);
  const execute = values.execute;
  if (values.wait !== undefined && execute === undefined) throw new UsageError('--wait goes with -x (--execute)');
  const wait = waitMs(values.wait);
  const ws = await connect(url, clientOptions(values));
  const over = values.http2 === true ? ' over HTTP/2' : '';
  const then = execute === undefined ? 'type lines to send, end with Ctrl-D' : `sending ${execute.length} message${execute.length === 1 ? '' : 's'}`;
  console.error(`connected to ${url}${over}${ws.protocol ? ` (protocol ${ws.protocol})` : ''}; ${then}`);
  if (values.deflate === true) console.error(clientExtensionLine(ws));
  // The end of input (or of -x and --wait) sends our Close; the loop below keeps reading (and
  // printing) until the server's Close answers it. Only this loop reads the socket.
  let closing = false;
  let failure: ClosedWith | null = null;
  const closeOurs = (): void => {
    if (closing) return;
    closing = true;
    if (!ws.closeQueued) sendClose(ws, CloseCode.Normal).catch(() => undefined);
    ws.destroyAfter(ws.closeTimeout);
  };
  let lines: ReturnType<typeof createInterface> | null = null;
  let timer: NodeJS.Timeout | undefined;
  if (execute === undefined) {
    const input = createInterface({ input: process.stdin });
    lines = input;
    input.on('line', (line) => void sendText(ws, line).catch(() => input.close()));
    input.on('close', closeOurs);
  } else {
    const sendAll = async (): Promise<void> => {
      for (const message of execute) await sendText(ws, message);
    };
    sendAll().then(() => (timer = setTimeout(closeOurs, wait)), closeOurs);
  }
  try {
    for (;;) {
      const { opcode, data } = await readData(ws);
      printFrame(opcode, data, show, values['show-ping-pong'] === true);
      if (opcode === Opcode.Close) {
        const closed = decodeClosePayload(data);
        console.error(`${closing ? 'closed' : 'closed by the server'}: ${describeClose(closed)}`);
        if (!closing && !NORMAL_CLOSE.has(closed.code)) failure = new ClosedWith(closed);
        break;
      }
    }
  } catch (err) {
    lingerAfterFailure(ws);
    throw err;
  } finally {
    clearTimeout(timer);
    lines?.close();
    await whenClosed(ws);
  }
  if (failure !== null) throw failure;
}

// wscat -l: a server that prints what its clients send and sends them each line of input.
async function listenCommand(values: Values, portText: string): Promise<void> {
  const host = values.host ?? '127.0.0.1';
  const port = portNumber(values.listen !== undefined ? '-l' : '--port', portText);
  const show = textShown(values);
  const pingPong = values['show-ping-pong'] === true;
  const options = { host, port, protocols: protocolList(values.protocol), ...(values.deflate === true ? { perMessageDeflate: true } : {}) };
  const server = await listen(options, async (ws, req) => {
    const from = peerName(req);
    console.error(`client connected: ${from}${ws.protocol ? ` (protocol ${ws.protocol})` : ''}`);
    try {
      for (;;) {
        const { opcode, data } = await readData(ws);
        printFrame(opcode, data, show, pingPong);
        if (opcode === Opcode.Close) {
          console.error(`client ${from} closed: ${describeClose(decodeClosePayload(data))}`);
          break;
        }
      }
      await whenClosed(ws);
    } catch (err) {
      console.error(`client ${from}: ${printable(err instanceof Error ? `${err.name}: ${err.message}` : String(err))}`);
    }
  });
  const shown = host.includes(':') ? `[${host}]` : host;
  console.error(`listening on ws://${shown}:${server.port}; type lines to send to the clients, end with Ctrl-D`);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (server.clients.size === 0) console.error('no client is connected: nothing sent');
    for (const ws of server.clients) sendText(ws, line).catch(() => undefined);
  });
  await new Promise<void>((resolve) => lines.once('close', resolve));
  await server.close(CloseCode.Normal);
}

/** Runs the CLI with these arguments; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parse(argv);
    let [command, url, ...rest] = positionals;
    // wscat's -c URL and -l PORT stand for the command.
    for (const [flag, name, value] of [['-c', 'connect', values.connect], ['-l', 'listen', values.listen]] as const) {
      if (value === undefined) continue;
      if (command !== undefined) throw new UsageError(`${flag} stands for the ${name} command: give no other (${command} was given)`);
      command = name;
      if (name === 'connect') [url, rest] = [value, []];
    }
    if (values.listen !== undefined && values.port !== undefined) throw new UsageError('-l PORT and --port do not go together');
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (values.version) {
      process.stdout.write(versionLine());
      return 0;
    }
    if (command === undefined) throw new UsageError('no command given');
    if (!Object.hasOwn(OPTIONS, command)) throw new UsageError(`unknown command ${command}`);
    const allowed = OPTIONS[command];
    const stray = Object.keys(values).find((name) => name !== 'help' && !allowed.includes(name));
    if (stray !== undefined) throw new UsageError(`${command} takes no --${stray}`);
    if (command === 'echo-server') {
      if (url !== undefined) throw new UsageError('echo-server takes no URL');
      await echoServer(values);
      return -1; // keeps running
    }
    if (command === 'listen') {
      if (url !== undefined) throw new UsageError('listen takes no URL');
      await listenCommand(values, values.listen ?? values.port ?? '9001');
      return 0;
    }
    if (url === undefined || rest.length > 0) throw new UsageError(`${command} takes one URL`);
    if (command === 'echo-client') await echoClient(wsUrl(command, url), values);
    else await interactive(wsUrl(command, url), values);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`wsframe: ${err.message}\nRun 'wsframe --help' for the usage.\n`);
      return 2;
    }
    const detail = err instanceof ProtocolError ? ` (close code ${err.closeCode})` : '';
    const name = err instanceof WebSocketError || err instanceof Error ? err.name : 'Error';
    // Messages may quote the peer (a header value, a redirect's Location).
    process.stderr.write(`wsframe: ${name}: ${printable((err as Error).message ?? String(err))}${detail}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    if (code >= 0) process.exitCode = code;
  });
}
