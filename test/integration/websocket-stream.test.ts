/**
 * `WebSocketStream` (WHATWG, whatwg/websockets#48) and `toWebSocketStream`: the behaviour the
 * standard's web-platform tests (websockets/stream/tentative/*.any.js) check, written here
 * against two servers that play the roles of the WPT handlers: our own (`listen`) and `ws`.
 * Paths: /echo (echoes, and echoes the Close), /protocol (sends the chosen subprotocol),
 * /remote-close?code=&reason=&abrupt=1, /passive-close-abort (drops TCP on the client's Close),
 * /delayed-passive-close (answers the Close 300 ms late), /slow-handshake, /404,
 * /send-backpressure, /receive-backpressure.
 */
import test, { ExecutionContext } from 'ava';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { type AsyncSocket, connect, listen, Opcode, readData, recvFrame, sendBinary, sendClose, sendPing, sendText, toWebSocketStream, WebSocketStream, WebSocketStreamError, WsServer } from '../../src';
import { within } from '../helpers/wait';

const MiB = 1024 * 1024;
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Peer {
  origin: string;
  /** The targets of the upgrade requests the server saw. */
  seen: string[];
}

const query = (req: IncomingMessage): URLSearchParams => new URL(req.url ?? '/', 'http://x').searchParams;
const pathOf = (req: IncomingMessage): string => new URL(req.url ?? '/', 'http://x').pathname;

/** Our server in the WPT handlers' roles. */
async function ours(): Promise<Peer & { server: WsServer }> {
  const seen: string[] = [];
  const server = await listen(
    {
      selectProtocol: (offered) => offered[0],
      verify: async (req) => {
        seen.push(req.url ?? '');
        if (pathOf(req) === '/404') return 404;
        if (pathOf(req) === '/slow-handshake') await delay(500);
        return undefined;
      }
    },
    async (ws, req) => {
      const q = query(req);
      switch (pathOf(req)) {
        case '/echo':
          for (;;) {
            const m = await readData(ws); // answers the Close with its own code and reason
            if (m.opcode === Opcode.Close) return;
            if (m.opcode === Opcode.Text) await sendText(ws, m.data.toString());
            if (m.opcode === Opcode.Binary) await sendBinary(ws, m.data);
          }
        case '/protocol':
          await sendText(ws, ws.protocol);
          await readData(ws);
          return;
        case '/remote-close':
          if (q.has('abrupt')) {
            await sendPing(ws);
            return ws.destroy();
          }
          await (q.has('code') ? sendClose(ws, Number(q.get('code')), q.get('reason') ?? '') : sendClose(ws));
          for (;;) if ((await readData(ws)).opcode === Opcode.Close) return;
        case '/passive-close-abort':
        case '/delayed-passive-close':
          for (;;) {
            const f = await recvFrame(ws); // raw frames: nothing is answered
            if (f.opcode !== Opcode.Close) continue;
            if (pathOf(req) === '/passive-close-abort') return ws.destroy();
            await delay(300);
            await sendClose(ws, f.data.length ? f.data.readUInt16BE(0) : undefined, f.data.subarray(2).toString());
            ws.socket.end(); // the server closes TCP first
            return;
          }
        case '/send-backpressure': {
          const started = Date.now();
          await sendBinary(ws, Buffer.alloc(0));
          for (let i = 0; i < 16; i++) await sendBinary(ws, Buffer.alloc(MiB, i));
          await sendText(ws, String((Date.now() - started) / 1000));
          for (;;) if ((await readData(ws)).opcode === Opcode.Close) return;
        }
        case '/receive-backpressure':
          await delay(500);
          for (;;) if ((await readData(ws)).opcode === Opcode.Close) return;
      }
    }
  );
  return { server, seen, origin: `ws://127.0.0.1:${server.port}` };
}

/** `ws` in the roles that need no raw frames (it echoes a Close's code and reason itself). */
async function wsPeer(): Promise<Peer & { wss: WebSocketServer }> {
  const seen: string[] = [];
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (protocols) => [...protocols][0] ?? false });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (socket: WebSocket, req: IncomingMessage) => {
    seen.push(req.url ?? '');
    const q = query(req);
    if (pathOf(req) === '/echo') socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    if (pathOf(req) === '/protocol') socket.send(socket.protocol);
    if (pathOf(req) === '/ping') {
      socket.once('pong', (data) => socket.send(`pong: ${String(data)}`));
      socket.ping('are you there');
    }
    if (pathOf(req) === '/remote-close') {
      if (q.has('abrupt')) {
        socket.ping();
        socket.terminate();
      } else if (q.has('code')) socket.close(Number(q.get('code')), q.get('reason') ?? '');
      else socket.close();
    }
  });
  return { wss, seen, origin: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` };
}

let peers: { wsframe: Peer; ws: Peer };
test.before(async () => {
  peers = { wsframe: await ours(), ws: await wsPeer() };
});
test.after.always(async () => {
  await (peers.wsframe as Peer & { server: WsServer }).server.close();
  (peers.ws as Peer & { wss: WebSocketServer }).wss.close();
});

/** Opens a stream to `path` on a peer; the test fails rather than hangs. */
async function open(peer: Peer, path: string, options = {}) {
  const wss = new WebSocketStream(`${peer.origin}${path}`, options);
  const info = await within(wss.opened, `${path} to open`);
  return { wss, ...info };
}

/** What `fn` throws (AVA's t.throws takes only native errors, and DOMException is none). */
function thrown(fn: () => unknown): { name?: string } {
  try {
    fn();
  } catch (err) {
    return err as { name?: string };
  }
  throw new Error('nothing was thrown');
}

async function errorOf(p: Promise<unknown>, what: string): Promise<unknown> {
  return within(
    p.then(
      () => undefined,
      (e: unknown) => e
    ),
    what
  );
}

for (const kind of ['wsframe', 'ws'] as const) {
  const peer = (): Peer => peers[kind];

  test(`${kind}: opened gives streams, the chosen protocol and '' for extensions; url is the URL`, async (t) => {
    const { wss, readable, writable, protocol, extensions } = await open(peer(), '/protocol', { protocols: ['alpha', 'beta'] });
    t.is(wss.url, `${peer().origin}/protocol`);
    t.true(readable instanceof ReadableStream);
    t.true(writable instanceof WritableStream);
    t.is(protocol, 'alpha');
    t.is(extensions, '');
    const reader = readable.getReader();
    t.is((await within(reader.read(), 'the protocol message')).value, 'alpha');
    wss.close();
    await within(wss.closed, 'closed');
  });

  test(`${kind}: text and binary echo; binary arrives as a plain Uint8Array, other values are sent as text`, async (t) => {
    const { wss, readable, writable } = await open(peer(), '/echo');
    const writer = writable.getWriter();
    const reader = readable.getReader();
    await writer.write('héllo ✓');
    t.is((await within(reader.read(), 'text')).value, 'héllo ✓');
    await writer.write(new Uint8Array([1, 2, 3, 255]));
    const binary = (await within(reader.read(), 'binary')).value as Uint8Array;
    t.is(binary.constructor, Uint8Array);
    t.deepEqual([...binary], [1, 2, 3, 255]);
    await writer.write(new Uint16Array([0x0102]).buffer);
    t.is(((await within(reader.read(), 'an ArrayBuffer')).value as Uint8Array).length, 2);
    await writer.write(123);
    t.is((await within(reader.read(), 'a number as text')).value, '123');
    wss.close({ closeCode: 3456, reason: 'pizza' });
    t.deepEqual(await within(wss.closed, 'closed'), { closeCode: 3456, reason: 'pizza' });
    t.true((await within(reader.read(), 'the end')).done);
    t.is(((await errorOf(writer.ready, 'writer.ready')) as DOMException).name, 'InvalidStateError');
  });

  test(`${kind}: close() codes: none → 1005, a reason alone → 1000; invalid codes and long reasons throw`, async (t) => {
    for (const [info, expected] of [
      [undefined, { closeCode: 1005, reason: '' }],
      [{}, { closeCode: 1005, reason: '' }],
      [{ reason: '' }, { closeCode: 1005, reason: '' }],
      [{ reason: 'non-empty' }, { closeCode: 1000, reason: 'non-empty' }]
    ] as const) {
      const { wss } = await open(peer(), '/echo');
      wss.close(info);
      t.deepEqual(await within(wss.closed, 'closed'), expected, JSON.stringify(info));
    }
    const { wss } = await open(peer(), '/echo');
    for (const closeCode of [999, 1001, 2999, 5000]) {
      t.is(thrown(() => wss.close({ closeCode })).name, 'InvalidAccessError', String(closeCode));
    }
    t.is(thrown(() => wss.close({ closeCode: 1000, reason: '.'.repeat(124) })).name, 'SyntaxError');
    t.throws(() => wss.close(true as never), { instanceOf: TypeError });
    wss.close();
    await within(wss.closed, 'closed');
  });

  test(`${kind}: writer.abort() and reader.cancel() close with a WebSocketStreamError's code and reason, and ignore look-alikes`, async (t) => {
    const cases: Array<[unknown, { closeCode: number; reason: string }]> = [
      [undefined, { closeCode: 1005, reason: '' }],
      [{ closeCode: 3333, reason: 'obsolete' }, { closeCode: 1005, reason: '' }],
      [Object.assign(new DOMException('x'), { closeCode: 3333, reason: 'y' }), { closeCode: 1005, reason: '' }],
      [new WebSocketStreamError('', { closeCode: 3333 }), { closeCode: 3333, reason: '' }],
      [new WebSocketStreamError('', { closeCode: 3456, reason: 'set' }), { closeCode: 3456, reason: 'set' }],
      [new WebSocketStreamError('', { reason: 'specified' }), { closeCode: 1000, reason: 'specified' }]
    ];
    for (const how of ['abort', 'cancel'] as const) {
      for (const [reason, expected] of cases) {
        const { wss, readable, writable } = await open(peer(), '/echo');
        if (how === 'abort') await writable.abort(reason);
        else await readable.cancel(reason);
        t.deepEqual(await within(wss.closed, 'closed'), expected, `${how}(${String(reason)})`);
      }
    }
  });

  test(`${kind}: the peer's close: code and reason pass through (UTF-8 too), an empty Close is 1005, the readable ends`, async (t) => {
    for (const [q, expected] of [
      ['?code=1000', { closeCode: 1000, reason: '' }],
      ['', { closeCode: 1005, reason: '' }],
      ['?code=4000&reason=robot', { closeCode: 4000, reason: 'robot' }],
      [`?code=4000&reason=${encodeURIComponent('ロボット')}`, { closeCode: 4000, reason: 'ロボット' }]
    ] as const) {
      const { wss, readable, writable } = await open(peer(), `/remote-close${q}`);
      const reader = readable.getReader();
      t.true((await within(reader.read(), 'the end')).done, q);
      t.deepEqual(await within(wss.closed, 'closed'), expected, q);
      t.is(((await errorOf(writable.getWriter().ready, 'ready')) as DOMException).name, 'InvalidStateError');
    }
  });

  test(`${kind}: an abrupt close rejects closed, read() and writer.ready with one WebSocketStreamError, 1006`, async (t) => {
    const { wss, readable, writable } = await open(peer(), '/remote-close?abrupt=1');
    const err = (await errorOf(wss.closed, 'closed')) as WebSocketStreamError;
    t.true(WebSocketStreamError.isError(err));
    t.is(err.name, 'WebSocketError');
    t.is(err.closeCode, 1006);
    t.is(await errorOf(readable.getReader().read(), 'read'), err);
    t.is(await errorOf(writable.getWriter().ready, 'ready'), err);
  });

  test(`${kind}: the signal: aborted before, nothing is connected; aborted after opening, nothing happens`, async (t) => {
    const controller = new AbortController();
    controller.abort();
    const wss = new WebSocketStream(`${peer().origin}/echo?aborted-before`, { signal: controller.signal });
    t.is(((await errorOf(wss.opened, 'opened')) as DOMException).name, 'AbortError');
    t.is(((await errorOf(wss.closed, 'closed')) as DOMException).name, 'AbortError');
    const late = new AbortController();
    const { wss: open2, readable, writable } = await open(peer(), '/echo?aborted-after', { signal: late.signal });
    late.abort();
    const writer = writable.getWriter();
    await writer.write('connected');
    t.is((await within(readable.getReader().read(), 'echo')).value, 'connected');
    open2.close();
    await within(open2.closed, 'closed');
    t.false(peer().seen.includes('/echo?aborted-before'), 'the aborted stream never connected');
    t.true(peer().seen.includes('/echo?aborted-after'));
  });
}

test('wsframe: a refused handshake (404) and close() during the handshake reject both promises with WebSocketStreamError', async (t) => {
  const refused = new WebSocketStream(`${peers.wsframe.origin}/404`);
  t.true(WebSocketStreamError.isError(await errorOf(refused.opened, 'opened')));
  t.true(WebSocketStreamError.isError(await errorOf(refused.closed, 'closed')));
  const early = new WebSocketStream(`${peers.wsframe.origin}/slow-handshake`);
  early.close();
  t.true(WebSocketStreamError.isError(await errorOf(early.opened, 'opened')));
  t.is(((await errorOf(early.closed, 'closed')) as WebSocketStreamError).closeCode, 1006);
});

test('wsframe: aborting during the handshake rejects both promises with the AbortError', async (t) => {
  const controller = new AbortController();
  const wss = new WebSocketStream(`${peers.wsframe.origin}/slow-handshake`, { signal: controller.signal });
  setImmediate(() => controller.abort());
  t.is(((await errorOf(wss.opened, 'opened')) as DOMException).name, 'AbortError');
  t.is(((await errorOf(wss.closed, 'closed')) as DOMException).name, 'AbortError');
});

test('wsframe: writer.close() is a clean close (1005) and resolves only after the closing handshake', async (t) => {
  const { wss, writable } = await open(peers.wsframe, '/delayed-passive-close');
  const started = Date.now();
  await within(writable.getWriter().close(), 'writer.close()');
  const ms = Date.now() - started;
  t.true(ms >= 250, `writer.close() resolved after ${ms} ms; the server answers after 300`);
  t.deepEqual(await within(wss.closed, 'closed'), { closeCode: 1005, reason: '' });
});

test('wsframe: a close the server never answers (it drops TCP) is unclean: 1006', async (t) => {
  const { wss } = await open(peers.wsframe, '/passive-close-abort');
  wss.close({ closeCode: 4000, reason: 'because' });
  const err = (await errorOf(wss.closed, 'closed')) as WebSocketStreamError;
  t.true(WebSocketStreamError.isError(err));
  t.is(err.closeCode, 1006);
});

test('the constructor checks the URL, the options and the protocols as the standard does', (t) => {
  t.is(thrown(() => new WebSocketStream('invalid:')).name, 'SyntaxError');
  t.is(thrown(() => new WebSocketStream('ws://127.0.0.1:1/#frag')).name, 'SyntaxError');
  t.is(thrown(() => new WebSocketStream('ftp://127.0.0.1/')).name, 'SyntaxError');
  t.throws(() => new WebSocketStream('ws://127.0.0.1:1/', true as never), { instanceOf: TypeError });
  t.throws(() => new WebSocketStream('ws://127.0.0.1:1/', { protocols: 'hi' as never }), { instanceOf: TypeError });
  t.is(thrown(() => new WebSocketStream('ws://127.0.0.1:1/', { protocols: ['a', 'a'] })).name, 'SyntaxError');
  const controller = new AbortController();
  controller.abort();
  t.is(new WebSocketStream('http://127.0.0.1:1/x', { signal: controller.signal }).url, 'ws://127.0.0.1:1/x');
});

test('WebSocketStreamError: defaults, the arguments, and the standard checks', (t) => {
  const plain = new WebSocketStreamError();
  t.like(plain, { code: 0, name: 'WebSocketError', message: '', closeCode: null, reason: '' });
  t.true(plain instanceof DOMException);
  t.like(new WebSocketStreamError('message', { closeCode: 3456, reason: 'reason' }), { message: 'message', closeCode: 3456, reason: 'reason', code: 0 });
  t.is(new WebSocketStreamError('', { reason: 'r' }).closeCode, 1000);
  for (const closeCode of [999, 1001, 2999, 5000]) t.is(thrown(() => new WebSocketStreamError('', { closeCode })).name, 'InvalidAccessError');
  t.is(thrown(() => new WebSocketStreamError('', { closeCode: 1000, reason: 'x'.repeat(124) })).name, 'SyntaxError');
  t.is(thrown(() => new WebSocketStreamError('', { closeCode: 1000, reason: '🔌'.repeat(32) })).name, 'SyntaxError');
});

test('writes the standard refuses reject with TypeError: a resizable ArrayBuffer, a shared buffer, a value with no string', async (t) => {
  for (const chunk of [
    new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(8, { maxByteLength: 16 }),
    new Uint8Array(new SharedArrayBuffer(8)),
    {
      toString() {
        return this;
      }
    }
  ]) {
    const { wss, writable } = await open(peers.wsframe, '/echo');
    const err = await errorOf(writable.getWriter().write(chunk), 'the write');
    t.true(err instanceof TypeError, String(err));
    wss.close();
    await errorOf(wss.closed, 'closed');
  }
});

test('a write still unsent when the peer closes rejects with InvalidStateError, and the close is unclean', async (t) => {
  const { wss, writable } = await open(peers.wsframe, '/remote-close?code=4567');
  const writer = writable.getWriter();
  const big = writer.write(new Uint8Array(64 * MiB));
  const err = (await errorOf(wss.closed, 'closed')) as WebSocketStreamError;
  t.true(WebSocketStreamError.isError(err));
  t.is(err.closeCode, 4567);
  t.is(((await errorOf(big, 'the big write')) as DOMException).name, 'InvalidStateError');
});

test('receive backpressure: a reader that stops pulling stops the socket; what waits stays bounded', async (t) => {
  const socket = await connect(`${peers.wsframe.origin}/send-backpressure`);
  const { readable } = await within(toWebSocketStream(socket).opened, 'opened');
  const reader = readable.getReader();
  t.is(((await within(reader.read(), 'the empty message')).value as Uint8Array).length, 0);
  // Read nothing for 500 ms while the server tries to send 16 MiB.
  await delay(500);
  const held = socket.unreadBytes;
  t.log(`after 500 ms without reading: ${(held / 1024).toFixed(0)} KiB buffered by the client (readBufferSize 256 KiB; one 1 MiB message may wait in the readable)`);
  t.true(held <= 2 * MiB, `${held} bytes buffered`);
  let last: unknown;
  for (let i = 0; i < 17; i++) last = (await within(reader.read(), `message ${i}`)).value;
  t.log(`the server took ${String(last)} s to send 16 MiB`);
  t.true(Number(last) >= 0.4, `the server sent everything in ${String(last)} s: the reader's pause did not hold it`);
});

test('send backpressure: a write to a peer that does not read resolves only once the kernel took it, and writer.ready waits', async (t) => {
  const { wss, writable } = await open(peers.wsframe, '/receive-backpressure');
  const writer = writable.getWriter();
  const started = Date.now();
  const write = writer.write(new Uint8Array(32 * MiB));
  t.is(writer.desiredSize, 0, 'a write in flight fills the queue');
  await within(writer.ready, 'ready');
  await within(write, 'the write');
  const ms = Date.now() - started;
  t.log(`32 MiB to a peer that reads nothing for 500 ms: the write resolved after ${ms} ms`);
  t.true(ms >= 300, `resolved after ${ms} ms`);
  wss.close();
  await within(wss.closed, 'closed');
});

test('toWebSocketStream on the server end: a handler written with web streams, a TransformStream between, a ws client', async (t: ExecutionContext) => {
  let closedOnServer: Promise<unknown> = Promise.resolve();
  const server = await listen({}, async (socket: AsyncSocket) => {
    const wss = toWebSocketStream(socket);
    closedOnServer = wss.closed;
    const { readable, writable } = await wss.opened;
    const upper = new TransformStream<string | Uint8Array, string>({ transform: (m, c) => c.enqueue(String(m).toUpperCase()) });
    await readable.pipeThrough(upper).pipeTo(writable).catch(() => undefined);
  });
  t.teardown(() => server.close());
  const client = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  const got: string[] = [];
  await within(new Promise((resolve) => client.once('open', resolve)), 'open');
  client.on('message', (data) => got.push(String(data)));
  client.send('one');
  client.send('two');
  await within(new Promise((resolve) => client.on('message', () => got.length === 2 && resolve(null))), 'two messages');
  t.deepEqual(got, ['ONE', 'TWO']);
  const closed = new Promise<number>((resolve) => client.once('close', resolve));
  client.close(4001, 'bye');
  t.is(await within(closed, 'the close'), 4001);
  t.deepEqual(await within(closedOnServer, 'closed on the server'), { closeCode: 4001, reason: 'bye' });
});

test('pings are answered and never surface in the readable', async (t) => {
  const { wss, readable } = await open(peers.ws, '/ping');
  // ws pings, and sends the payload of the Pong it got back: the first chunk read.
  t.is((await within(readable.getReader().read(), 'the first message')).value, 'pong: are you there');
  wss.close();
  await within(wss.closed, 'closed');
});
