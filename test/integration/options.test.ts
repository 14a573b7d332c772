// Every entry point checks its options before it touches a socket (issue 25, point 2): each
// option below, given as a string (as from an environment variable or JSON), a negative number,
// NaN and a value just out of its range, is a TypeError (wrong type) or RangeError (out of
// range) that names the entry point, the option and the value. The table is written from
// README's option tables, not from src/'s rules, so an option the rules forget fails here.
import test from 'ava';
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import {
  AsyncSocket,
  WebSocketStream,
  acceptWebSocket,
  connect,
  keepalive,
  listen,
  ping,
  toDuplex,
  upgrade,
  upgradeHttp2
} from '../../src';

type Expected = typeof TypeError | typeof RangeError;
interface Case {
  option: string;
  value: unknown;
  expected: Expected;
  /** What the message must show of the value. */
  shown: RegExp;
}

/** Nested options are written 'perMessageDeflate.level'; this builds the options object. */
function optionsFor(option: string, value: unknown): Record<string, unknown> {
  const [outer, inner] = option.split('.');
  if (inner === undefined) return { [outer!]: value };
  return { [outer!]: outer === 'keepalive' ? { interval: 1000, [inner]: value } : { [inner]: value } };
}

const numeric = (option: string, outOfRange: number, negative = -1): Case[] => [
  { option, value: '1MB', expected: TypeError, shown: /the string "1MB"/ },
  { option, value: negative, expected: RangeError, shown: new RegExp(`number ${negative}`) },
  { option, value: Number.NaN, expected: RangeError, shown: /number NaN/ },
  { option, value: outOfRange, expected: RangeError, shown: new RegExp(`number ${String(outOfRange).replace('.', '\\.')}`) }
];
const wrongType = (option: string, value: unknown, shown: RegExp): Case => ({ option, value, expected: TypeError, shown });
const badEnum = (option: string, value: string): Case => ({ option, value, expected: RangeError, shown: new RegExp(`"${value}"`) });

// The connection limits every entry point that makes a connection takes.
const LIMITS: Case[] = [
  ...numeric('maxFrameSize', 1.5),
  ...numeric('maxMessageSize', 1.5),
  ...numeric('maxFragments', 0),
  ...numeric('maxInflateRatio', -Infinity),
  ...numeric('closeTimeout', 2 ** 31),
  ...numeric('idleTimeout', 2 ** 31),
  ...numeric('sendTimeout', 2 ** 31),
  ...numeric('readBufferSize', 0)
];
const DEFLATE: Case[] = [
  wrongType('perMessageDeflate', 'yes', /the string "yes"/),
  ...numeric('perMessageDeflate.threshold', 1.5),
  ...numeric('perMessageDeflate.level', 10, -2), // -1 is zlib's default level
  ...numeric('perMessageDeflate.memLevel', 0),
  ...numeric('perMessageDeflate.serverMaxWindowBits', 16),
  ...numeric('perMessageDeflate.clientMaxWindowBits', 7),
  wrongType('perMessageDeflate.serverNoContextTakeover', 'true', /the string "true"/)
];
const KEEPALIVE: Case[] = [...numeric('keepalive.interval', 0), ...numeric('keepalive.timeout', 2 ** 31)];
const UPGRADE: Case[] = [
  ...LIMITS,
  ...DEFLATE,
  ...KEEPALIVE,
  wrongType('protocols', 'chat', /the string "chat"/),
  wrongType('requireProtocol', 'yes', /the string "yes"/),
  wrongType('headers', [['x-a', 'b']], /an array/),
  wrongType('headers', { 'x-a': 1 }, /number 1/)
];
const ADMISSION: Case[] = [
  ...numeric('maxHeaderSize', 0),
  ...numeric('maxHeadersCount', 1.5),
  ...numeric('handshakeTimeout', 0),
  wrongType('verify', 'yes', /the string "yes"/),
  wrongType('path', 42, /number 42/)
];
const LISTEN: Case[] = [
  ...UPGRADE,
  ...ADMISSION,
  ...numeric('port', 65536),
  ...numeric('maxBackpressure', 1.5),
  ...numeric('broadcastWait', 2 ** 31),
  ...numeric('maxConcurrentStreams', 0),
  badEnum('backpressurePolicy', 'drop'),
  wrongType('backpressurePolicy', 1, /number 1/),
  wrongType('host', 42, /number 42/),
  wrongType('http2', 'yes', /the string "yes"/)
];
const CONNECT: Case[] = [
  ...LIMITS,
  ...DEFLATE,
  ...KEEPALIVE,
  ...numeric('timeout', 2 ** 31),
  ...numeric('maxRedirects', 1.5),
  wrongType('headers', [['x-a', 'b']], /an array/),
  wrongType('headers', { 'x-a': 1 }, /number 1/),
  wrongType('origin', 42, /number 42/),
  wrongType('followRedirects', 'yes', /the string "yes"/),
  wrongType('signal', 'abort', /the string "abort"/),
  wrongType('protocols', 42, /number 42/)
];

// A stream that records whether anything used it: the checks come first.
class Untouched extends Duplex {
  written = 0;
  responded: number | undefined;
  headersSent = false;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.written += chunk.length;
    done();
  }
  respond(headers: Record<string, unknown>): void {
    this.responded = headers[':status'] as number;
    this.headersSent = true;
  }
}

const REQUEST_HEADERS = {
  host: '127.0.0.1',
  upgrade: 'websocket',
  connection: 'Upgrade',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ=='
};
const fakeRequest = { method: 'GET', httpVersion: '1.1', headers: REQUEST_HEADERS, url: '/' } as unknown as IncomingMessage;

/** Calls an entry point; resolves to what it threw or rejected with, and what it did to the stream. */
type Entry = (options: Record<string, unknown>, stream: Untouched) => Promise<unknown> | unknown;

async function outcome(entry: Entry, options: Record<string, unknown>): Promise<{ error: unknown; stream: Untouched }> {
  const stream = new Untouched();
  try {
    await entry(options, stream);
    return { error: null, stream };
  } catch (error) {
    return { error, stream };
  }
}

// 'nothing': the stream is neither written nor read; 'writes nothing': the entry point takes
// an AsyncSocket made on the stream (which reads it), and writes nothing; 'answers 500': a
// server handshake, whose client is told at once that the server is at fault.
type Touches = 'nothing' | 'writes nothing' | 'answers 500';

function checkEntry(name: string, where: RegExp, cases: Case[], entry: Entry, touches: Touches = 'nothing'): void {
  test(`${name}: ${cases.length} wrong options, each refused with the option and value named`, async (t) => {
    for (const c of cases) {
      const { error, stream } = await outcome(entry, optionsFor(c.option, c.value));
      const label = `${name} ${c.option}: ${typeof c.value === 'string' ? JSON.stringify(c.value) : String(c.value)}`;
      t.true(error instanceof c.expected, `${label}: ${String(error)}`);
      const message = (error as Error | null)?.message ?? '';
      t.regex(message, where, label);
      t.true(message.includes(c.option.split('.').pop()!), `${label}: the option is named in "${message}"`);
      t.regex(message, c.shown, `${label}: the value is shown in "${message}"`);
      if (touches !== 'answers 500') {
        t.is(stream.written, 0, `${label}: nothing written`);
        if (touches === 'nothing') t.is(stream.listenerCount('data'), 0, `${label}: nothing read`);
      } else {
        t.true(stream.written > 0 || stream.responded === 500, `${label}: the client is answered`);
      }
    }
    t.log(`${cases.length} cases; e.g. ${String((await outcome(entry, optionsFor(cases[0]!.option, cases[0]!.value))).error)}`);
  });
}

let connections = 0;
const counting = net.createServer((socket) => {
  connections++;
  socket.destroy();
});
test.before(async () => {
  await new Promise<void>((resolve) => counting.listen(0, '127.0.0.1', resolve));
});
test.after.always(() => counting.close());
const url = (): string => `ws://127.0.0.1:${(counting.address() as net.AddressInfo).port}/`;

checkEntry('new AsyncSocket', /^new AsyncSocket\(\) options\./, LIMITS, (o, s) => new AsyncSocket(s, { role: 'server', ...o }));
checkEntry('connect', /^connect\(\) options\./, CONNECT, (o) => connect(url(), o));
checkEntry('new WebSocketStream', /^new WebSocketStream\(\) options\./, CONNECT.filter((c) => c.option !== 'protocols'), (o) => new WebSocketStream(url(), o));
checkEntry('upgrade', /^upgrade\(\) options\./, UPGRADE, (o, s) => upgrade(fakeRequest, s, Buffer.alloc(0), o), 'answers 500');
checkEntry(
  'upgradeHttp2',
  /^upgradeHttp2\(\) options\./,
  UPGRADE,
  (o, s) => upgradeHttp2(s as unknown as ServerHttp2Stream, { ':method': 'CONNECT', ':protocol': 'websocket', 'sec-websocket-version': '13' }, o),
  'answers 500'
);
checkEntry('listen', /^listen\(\) options\./, LISTEN, (o) => listen(o, async () => undefined));
checkEntry('acceptWebSocket', /^acceptWebSocket\(\) options\./, [...UPGRADE, ...ADMISSION], (o, s) => acceptWebSocket(s, o));
checkEntry('toDuplex', /^toDuplex\(\) options\./, [...numeric('readableHighWaterMark', 1.5), wrongType('objectMode', 'yes', /the string "yes"/)], (o, s) =>
  toDuplex(new AsyncSocket(s, { role: 'server' }), o), 'writes nothing'
);
checkEntry('ping', /^ping\(\) options\./, [...numeric('timeout', 2 ** 31), wrongType('token', 42, /number 42/)], (o, s) => ping(new AsyncSocket(s, { role: 'client' }), o), 'writes nothing');
checkEntry('keepalive', /^keepalive\(\) options\./, KEEPALIVE.map((c) => ({ ...c, option: c.option.replace('keepalive.', '') })), (o, s) =>
  keepalive(new AsyncSocket(s, { role: 'client' }), { interval: 1000, ...o } as { interval: number }), 'writes nothing'
);

test('no wrong option made connect() open a connection', async (t) => {
  // Runs after the connect and WebSocketStream cases in this file have settled (AVA runs a
  // file's tests concurrently, so this waits for a full round of its own).
  const { error } = await outcome((o) => connect(url(), o), { maxMessageSize: 'big' });
  t.true(error instanceof TypeError);
  t.is(connections, 0);
});

test('the documented special values are accepted: 0 and Infinity where README gives them a meaning', async (t) => {
  for (const options of [{ idleTimeout: 0 }, { sendTimeout: 0 }, { maxMessageSize: Infinity, maxFrameSize: Infinity }, { maxInflateRatio: 0 }, { maxFragments: Infinity }]) {
    const ws = new AsyncSocket(new Untouched(), { role: 'server', ...options });
    t.truthy(ws, JSON.stringify(options));
    ws.destroy();
  }
  const server = await listen({ port: 0, maxHeadersCount: 0, maxBackpressure: Infinity, broadcastWait: 0, perMessageDeflate: { threshold: 0 } }, async () => undefined);
  await server.close();
  t.pass();
});

test('the type of a required option and of the options object itself', (t) => {
  const s = new Untouched();
  t.throws(() => new AsyncSocket(s, {} as { role: 'server' }), { instanceOf: TypeError, message: /options\.role is required/ });
  t.throws(() => new AsyncSocket(s, { role: 'peer' as 'server' }), { instanceOf: RangeError, message: /role must be one of 'client', 'server', not the string "peer"/ });
  t.throws(() => acceptWebSocket(s, 'strict' as unknown as object), { instanceOf: TypeError, message: /^acceptWebSocket\(\) options must be an object, not the string "strict"/ });
  t.throws(() => keepalive(new AsyncSocket(s, { role: 'client' }), {} as { interval: number }), { instanceOf: TypeError, message: /interval is required/ });
});
