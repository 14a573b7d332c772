/**
 * WebSockets over HTTP/2 (RFC 8441): our client (`connect(url, { http2 })`) against our
 * bolt-on server (`upgradeHttp2` on a `node:http2` secure server that also serves HTTP/1.1
 * upgrades), and each against Node's raw `http2` for the handshake's error paths.
 */
import test, { ExecutionContext } from 'ava';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { AsyncSocket, close, connect, HandshakeError, Http2UpgradeOptions, IOError, Opcode, readData, sendBinary, sendFrame, sendPing, sendText, upgrade, upgradeHttp2, whenClosed } from '../../src';
import { handshakeRejectedChannel } from '../../src/connection/diagnostics';
import { selfSignedCert } from '../helpers/tls-cert';
import { until, within } from '../helpers/wait';

const MiB = 1024 * 1024;
let cert: { key: Buffer; cert: Buffer };
test.before(async () => {
  cert = await selfSignedCert();
});

interface H2Server {
  url: string;
  server: http2.Http2SecureServer;
  /** The server's end of each WebSocket, in order, with the HTTP version it came over. */
  sockets: Array<{ ws: AsyncSocket; over: 'h2' | 'h1'; session: http2.Http2Session | null; ended: Promise<unknown> }>;
  next(): Promise<AsyncSocket>;
}

/** A secure HTTP/2 server (HTTP/1.1 allowed) that echoes every WebSocket, over either version. */
async function h2Server(t: ExecutionContext, options: Http2UpgradeOptions = {}, advertise = true): Promise<H2Server> {
  const server = http2.createSecureServer({ ...cert, allowHTTP1: true, settings: { enableConnectProtocol: advertise } });
  const sockets: H2Server['sockets'] = [];
  const waiting: Array<(ws: AsyncSocket) => void> = [];
  const serve = (ws: AsyncSocket, over: 'h2' | 'h1', session: http2.Http2Session | null): void => {
    // What ended the echo loop: null for the peer's Close, else the error.
    const ended = (async () => {
      for (;;) {
        const m = await readData(ws);
        if (m.opcode === Opcode.Text) await sendText(ws, m.data.toString());
        else if (m.opcode === Opcode.Binary) await sendBinary(ws, m.data);
        else if (m.opcode === Opcode.Close) return null;
      }
    })().catch((err: unknown) => err);
    sockets.push({ ws, over, session, ended });
    waiting.shift()?.(ws);
  };
  server.on('stream', (stream, headers) => {
    upgradeHttp2(stream, headers, options).then((ws) => serve(ws, 'h2', stream.session ?? null), () => undefined);
  });
  server.on('upgrade', (req, socket, head) => {
    upgrade(req, socket, head, options as object).then((ws) => serve(ws, 'h1', null), () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.ws.destroy();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `wss://localhost:${port}/chat`,
    server,
    sockets,
    next: () => (sockets.length > waiting.length ? Promise.resolve(sockets[waiting.length]!.ws) : new Promise((r) => waiting.push(r)))
  };
}

test('text, binary, 16 MiB, ping and a close with code and reason, over one HTTP/2 stream', async (t) => {
  const srv = await h2Server(t, { protocols: ['chat.v1'] });
  const tls = { ca: cert.cert };
  const ws = await within(connect(srv.url, { http2: true, tls, protocols: ['chat.v1'] }), 'connect');
  t.teardown(() => ws.destroy());
  t.is(ws.protocol, 'chat.v1');
  t.is(srv.sockets[0]!.over, 'h2', 'the server saw an extended CONNECT, not an HTTP/1.1 upgrade');
  t.is(ws.socket.constructor.name, 'ClientHttp2Stream');
  await sendText(ws, 'héllo over h2');
  t.is((await readData(ws)).data.toString(), 'héllo over h2');
  await sendBinary(ws, Buffer.from([0, 1, 2, 255]));
  t.deepEqual([...(await readData(ws)).data], [0, 1, 2, 255]);
  const big = Buffer.alloc(16 * MiB, 7);
  big[12345] = 1;
  await sendBinary(ws, big);
  const back = await within(readData(ws), 'the 16 MiB echo', 30_000);
  t.true(back.data.equals(big));
  await within(sendPing(ws, undefined, 'are you there'), 'the pong');
  const server = srv.sockets[0]!.ws;
  await close(ws, 4000, 'done here');
  await within(whenClosed(ws), 'the client to close');
  await within(whenClosed(server), 'the server to close');
  t.deepEqual(server.peerClose, { code: 4000, reason: 'done here' });
  t.true(ws.state.clean);
  const stream = ws.socket as http2.ClientHttp2Stream;
  t.is(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'the stream ended (END_STREAM), it was not reset');
});

test('permessage-deflate over HTTP/2', async (t) => {
  const srv = await h2Server(t, { perMessageDeflate: true });
  const ws = await within(connect(srv.url, { http2: true, tls: { ca: cert.cert }, perMessageDeflate: true }), 'connect');
  t.teardown(() => ws.destroy());
  t.not(ws.deflate, null);
  const text = 'compress me '.repeat(5000);
  await sendText(ws, text);
  t.is((await readData(ws)).data.toString(), text);
  await close(ws);
});

test('100 WebSockets share one HTTP/2 session, which closes after the last of them', async (t) => {
  const srv = await h2Server(t);
  const tls = { ca: cert.cert };
  const all = await within(Promise.all(Array.from({ length: 100 }, () => connect(srv.url, { http2: true, tls }))), '100 connects', 30_000);
  t.teardown(() => all.forEach((ws) => ws.destroy()));
  await Promise.all(all.map(async (ws, i) => {
    await sendText(ws, `n${i}`);
    t.is((await readData(ws)).data.toString(), `n${i}`);
  }));
  const sessions = new Set(srv.sockets.map((s) => s.session));
  t.is(srv.sockets.length, 100);
  t.is(sessions.size, 1, 'one HTTP/2 connection');
  const session = (all[0]!.socket as http2.ClientHttp2Stream).session!;
  await Promise.all(all.slice(1).map((ws) => close(ws)));
  t.false(session.closed, 'still in use by one WebSocket');
  await close(all[0]!);
  await within(whenClosed(all[0]!), 'the last to close');
  await until(() => session.closed || session.destroyed, 'the session to close');
  t.pass();
});

test('a stream reset mid-message is an IOError on the other end; the session goes on', async (t) => {
  const srv = await h2Server(t);
  const tls = { ca: cert.cert };
  const keep = await connect(srv.url, { http2: true, tls });
  const ws = await connect(srv.url, { http2: true, tls });
  t.teardown(() => [keep, ws].forEach((w) => w.destroy()));
  await srv.next();
  await srv.next();
  const pending = srv.sockets[1]!.ended;
  // Half a message, then the client resets its stream.
  await sendFrame(ws, Opcode.Binary, Buffer.alloc(1000), { fin: false });
  (ws.socket as http2.ClientHttp2Stream).close(http2.constants.NGHTTP2_CANCEL);
  const err = await within(pending, 'the server read to fail');
  t.true(err instanceof IOError, String(err));
  // The other WebSocket on the same session is untouched.
  await sendText(keep, 'still here');
  t.is((await readData(keep)).data.toString(), 'still here');
  await close(keep);
});

test('a session that goes away fails its WebSockets with IOError', async (t) => {
  const srv = await h2Server(t);
  const ws = await connect(srv.url, { http2: true, tls: { ca: cert.cert } });
  t.teardown(() => ws.destroy());
  await srv.next();
  const reading = readData(ws).then(() => null, (e: unknown) => e);
  srv.sockets[0]!.session!.destroy();
  const err = await within(reading, 'the read to fail');
  t.true(err instanceof IOError, String(err));
});

test('a server that does not advertise extended CONNECT: a clear HandshakeError, or HTTP/1.1 with http2Fallback', async (t) => {
  const srv = await h2Server(t, {}, false);
  const tls = { ca: cert.cert };
  const err = await t.throwsAsync(connect(srv.url, { http2: true, tls }), { instanceOf: HandshakeError });
  t.regex(err!.message, /SETTINGS_ENABLE_CONNECT_PROTOCOL/);
  const ws = await within(connect(srv.url, { http2: true, http2Fallback: true, tls }), 'the fallback');
  t.teardown(() => ws.destroy());
  t.is(srv.sockets.at(-1)!.over, 'h1');
  await sendText(ws, 'over 1.1');
  t.is((await readData(ws)).data.toString(), 'over 1.1');
  await close(ws);
});

/** A raw extended CONNECT from Node's own http2 client: the status and headers answered. */
async function rawConnect(t: ExecutionContext, url: string, headers: http2.OutgoingHttpHeaders): Promise<Record<string, unknown>> {
  const u = new URL(url);
  const session = http2.connect(`https://${u.host}`, { ca: cert.cert });
  t.teardown(() => session.destroy());
  await new Promise((r) => session.once('remoteSettings', r));
  const req = session.request({ ':method': 'CONNECT', ':scheme': 'https', ':path': u.pathname, ':authority': u.host, ...headers });
  req.resume();
  return within(new Promise((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  }), 'the answer');
}

test('the server refuses a bad extended CONNECT with a real HTTP/2 status', async (t) => {
  const srv = await h2Server(t, { protocols: ['a'] });
  const other = await rawConnect(t, srv.url, { ':protocol': 'not-websocket', 'sec-websocket-version': '13' });
  t.is(other[':status'], 400);
  const version = await rawConnect(t, srv.url, { ':protocol': 'websocket', 'sec-websocket-version': '8' });
  t.is(version[':status'], 400);
  t.is(version['sec-websocket-version'], '13');
  const protocols = await rawConnect(t, srv.url, { ':protocol': 'websocket', 'sec-websocket-version': '13', 'sec-websocket-protocol': 'a, a' });
  t.is(protocols[':status'], 400);
  const ok = await rawConnect(t, srv.url, { ':protocol': 'websocket', 'sec-websocket-version': '13', 'sec-websocket-protocol': 'b, a' });
  t.is(ok[':status'], 200);
  t.is(ok['sec-websocket-protocol'], 'a');
  t.is(ok['sec-websocket-accept'], undefined, 'no accept key over HTTP/2');
});

test('our client fails clearly on a refusal or a bad answer from a raw HTTP/2 server', async (t) => {
  let answer: http2.OutgoingHttpHeaders = { ':status': 403 };
  const server = http2.createSecureServer({ ...cert, settings: { enableConnectProtocol: true } });
  server.on('stream', (stream) => {
    stream.respond(answer);
    if (Number(answer[':status']) !== 200) stream.end('no');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const url = `wss://localhost:${(server.address() as AddressInfo).port}/`;
  const tls = { ca: cert.cert };
  const published: Array<{ side: string; status?: number }> = [];
  const onRejected = (m: unknown): void => void published.push(m as { side: string; status?: number });
  handshakeRejectedChannel.subscribe(onRejected);
  t.teardown(() => handshakeRejectedChannel.unsubscribe(onRejected));
  const refused = await t.throwsAsync(connect(url, { http2: true, tls }), { instanceOf: HandshakeError });
  t.is(refused!.status, 403);
  t.true(published.some((m) => m.side === 'client' && m.status === 403), 'published on the diagnostics channel as over HTTP/1.1');
  answer = { ':status': 200, 'sec-websocket-protocol': 'x' };
  const unoffered = await t.throwsAsync(connect(url, { http2: true, tls, protocols: ['y'] }), { instanceOf: HandshakeError });
  t.regex(unoffered!.message, /not offered/);
  answer = { ':status': 200, 'sec-websocket-extensions': 'permessage-deflate' };
  await t.throwsAsync(connect(url, { http2: true, tls }), { instanceOf: HandshakeError, message: /not offered|extension/ });
});

test('a peer that stops reading over HTTP/2 is bounded as over TCP: flow control holds our send, sendTimeout drops it', async (t) => {
  const srv = await h2Server(t);
  let serverWs!: AsyncSocket;
  const got = new Promise<void>((resolve) => {
    srv.server.removeAllListeners('stream');
    srv.server.on('stream', (stream, headers) => {
      void upgradeHttp2(stream, headers, { sendTimeout: 400 }).then((ws) => {
        serverWs = ws;
        resolve();
      });
    });
  });
  const ws = await connect(srv.url, { http2: true, tls: { ca: cert.cert } });
  t.teardown(() => ws.destroy());
  await within(got, 'the server side');
  // Our client buffers up to readBufferSize (256 KiB), then stops reading: the stream's
  // window closes and the server's write cannot complete.
  const started = Date.now();
  const err = await within(sendBinary(serverWs, Buffer.alloc(16 * MiB)).then(() => null, (e: unknown) => e), 'the send to fail', 10_000);
  t.true(err instanceof IOError, String(err));
  t.is((err as IOError).reason, 'timeout');
  t.true(serverWs.destroyed);
  t.log(`16 MiB to an HTTP/2 peer that reads nothing: dropped after ${Date.now() - started} ms (sendTimeout 400 ms)`);
});
