/**
 * The suite as client over HTTP/2 (RFC 8441): each case gets its own cleartext HTTP/2
 * connection (h2c, prior knowledge) to the echo server, opens one stream with the extended
 * CONNECT, checks the `:status 200`, and hands the stream to the driver, which writes and
 * reads raw frame bytes on it exactly as on a TCP socket (a stream is a Duplex).
 *
 * How TCP maps onto the stream (RFC 8441 §5: the END_STREAM flag stands for TCP FIN, and a
 * RST_STREAM with CANCEL for TCP RST):
 *
 * - "the peer closed TCP (FIN)" (`Conn.tcpEnded`) is END_STREAM from the server ('end');
 * - "TCP closed" (`Conn.tcpClosed`) is the stream closed ('close'): END_STREAM both ways,
 *   or RST_STREAM from either side;
 * - a TCP client socket answers the server's FIN with its own at once (Node's
 *   `allowHalfOpen: false`); an HTTP/2 stream stays half-open, so the connector answers
 *   END_STREAM with END_STREAM, and the suite, as over TCP, never ends first: it waits for
 *   the server (RFC 6455 §7.1.1), then drops the stream with RST_STREAM CANCEL after the
 *   case's silence timeout;
 * - TCP chunks are DATA frames: each write of the driver is one DATA frame or more (at most
 *   16 KiB each, and as flow control lets through), never merged with the next write.
 *
 * One connection per case rather than one shared session: it is what the suite does over
 * TCP, and it lets each case check what only a connection of its own shows, that the server
 * ended the stream and not the whole connection (see {@link sessionCheck}).
 */
import http2 from 'node:http2';
import net from 'node:net';
import { DeflateCodec, checkResponse, offerOf } from './compression';
import { Conn, ExtraCheck } from './driver';
import { Breakage, CaseConnection, Connector, brokenEcho } from './peers';
import { Case } from './types';

/** How long the handshake may take (ms): a bound against a hung server, not a verdict. */
const HANDSHAKE_TIMEOUT = 30_000;

/** How long the server may take to answer a PING after the case (ms). */
const PING_TIMEOUT = 5_000;

/** Rejects with `what` unless `promise` settles within `ms`. */
function within<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
    })
  ]).finally(() => clearTimeout(timer));
}

/** What happened to one case's HTTP/2 connection, from its session's events. */
interface SessionLog {
  goaway?: number;
  error?: Error;
  closed: boolean;
}

/**
 * Opens a cleartext HTTP/2 connection to 127.0.0.1:`port` (Nagle off, as the TCP connector)
 * and waits for the server's SETTINGS, which must advertise SETTINGS_ENABLE_CONNECT_PROTOCOL
 * (RFC 8441 §3: a client may not send the extended CONNECT otherwise).
 */
async function openSession(port: number): Promise<{ session: http2.ClientHttp2Session; log: SessionLog }> {
  const session = http2.connect(`http://127.0.0.1:${port}`, {
    createConnection: () => net.connect({ host: '127.0.0.1', port, noDelay: true })
  });
  const log: SessionLog = { closed: false };
  session.on('goaway', (code: number) => (log.goaway ??= code));
  session.on('error', (err: Error) => (log.error ??= err));
  session.once('close', () => (log.closed = true));
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        session.once('remoteSettings', () => resolve());
        session.once('error', reject);
        session.once('close', () => reject(new Error('the server closed the HTTP/2 connection before its SETTINGS')));
      }),
      'the server SETTINGS',
      HANDSHAKE_TIMEOUT
    );
    if (session.remoteSettings.enableConnectProtocol !== true) throw new Error('the server does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL');
    return { session, log };
  } catch (err) {
    session.destroy();
    throw err;
  }
}

/**
 * After the case, the HTTP/2 connection must still be up: RFC 8441 maps the end of a
 * WebSocket onto its stream, and the other streams of the connection (a browser's page,
 * other WebSockets) must survive it. A PING answered proves it; a GOAWAY, or the server
 * closing the connection, fails the case. Then the suite closes the connection itself.
 */
function sessionCheck(session: http2.ClientHttp2Session, log: SessionLog): ExtraCheck {
  return async () => {
    const reasons: string[] = [];
    if (!log.closed && log.goaway === undefined) {
      try {
        await within(
          new Promise<void>((resolve, reject) => {
            session.ping((err) => (err ? reject(err) : resolve()));
          }),
          'the answer to a PING',
          PING_TIMEOUT
        );
      } catch (err) {
        reasons.push(`the HTTP/2 connection did not answer a PING after the case: ${(err as Error).message}`);
      }
    }
    // A GOAWAY sent before the PING's answer arrives before it (one TCP stream).
    if (log.goaway !== undefined) reasons.push(`the server sent GOAWAY (code ${log.goaway}): it must end the WebSocket's stream, not the HTTP/2 connection`);
    else if (log.closed) reasons.push(`the server closed the HTTP/2 connection${log.error ? ` (${log.error.message})` : ''}: it must end the WebSocket's stream, not the connection`);
    session.close();
    return { reasons };
  };
}

/**
 * Suite as client over HTTP/2: one HTTP/2 connection per case to the echo server on `port`,
 * one extended CONNECT on it. Cases that negotiate permessage-deflate go to `deflatePort`
 * (deflate-peer.ts echo-server --http2) with their offer and options, as over TCP.
 */
export function http2ClientConnector(port: number, deflatePort?: number): Connector {
  return async (c: Case): Promise<CaseConnection> => {
    let target = port;
    let path = `/case/${encodeURIComponent(c.id)}`;
    const headers: http2.OutgoingHttpHeaders = {};
    if (c.deflate !== undefined) {
      if (deflatePort === undefined) throw new Error('no echo server with permessage-deflate to run this case against');
      target = deflatePort;
      if (c.deflate.peer !== undefined) path += `?deflate=${encodeURIComponent(JSON.stringify(c.deflate.peer))}`;
      headers['sec-websocket-extensions'] = offerOf(c.deflate);
    }
    const { session, log } = await openSession(target);
    try {
      // RFC 8441 §5: no Sec-WebSocket-Key (nor Upgrade and Connection, which HTTP/2 forbids); the version stays.
      const stream = session.request({
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'http',
        ':path': path,
        ':authority': `127.0.0.1:${target}`,
        'sec-websocket-version': '13',
        ...headers
      });
      stream.on('error', () => {}); // a reset; the driver sees the 'close' (and records the error itself)
      const answer = await within(
        new Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader>((resolve, reject) => {
          stream.once('response', resolve);
          stream.once('close', () => reject(new Error(`the stream closed before an answer (RST_STREAM code ${stream.rstCode})`)));
        }),
        'the answer to the extended CONNECT',
        HANDSHAKE_TIMEOUT
      );
      if (answer[':status'] !== 200) throw new Error(`the server answered the extended CONNECT with ${answer[':status']}, not 200`);
      const extensions = answer['sec-websocket-extensions'];
      let codec: DeflateCodec | null = null;
      if (c.deflate !== undefined) codec = new DeflateCodec(checkResponse(extensions, c.deflate), 'client');
      else if (extensions !== undefined) throw new Error(`the server answered extensions nobody offered: ${extensions}`);
      // The driver listens first, so it has seen END_STREAM before the suite answers it.
      const conn = new Conn(stream, 'client', Buffer.alloc(0), codec, {
        name: 'the HTTP/2 stream',
        abort: () => stream.close(http2.constants.NGHTTP2_CANCEL)
      });
      stream.once('end', () => stream.end());
      return { conn, extra: sessionCheck(session, log) };
    } catch (err) {
      session.destroy();
      throw err;
    }
  };
}

/** What the broken HTTP/2 echo server gets wrong about ending a WebSocket over HTTP/2. */
export interface Http2Breakage {
  /** After its Close, ends the stream and closes the whole HTTP/2 connection (GOAWAY). */
  closesConnection?: boolean;
  /** Sends its Close but never ends the stream (no END_STREAM). */
  neverEndsStream?: boolean;
}

/**
 * A tiny echo server on node:http2 (h2c) for the suite's teeth over HTTP/2: the extended
 * CONNECT answered 200, then the echo loop of the broken TCP echo server (peers.ts
 * brokenEcho, with `broken` for its WebSocket bugs), and `ending` for how it ends the stream.
 */
export async function startBrokenHttp2EchoServer(broken: Breakage, ending: Http2Breakage = {}): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.on('error', () => {});
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    stream.on('error', () => {});
    if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket' || headers['sec-websocket-version'] !== '13') {
      stream.respond({ ':status': 400 });
      return void stream.end();
    }
    stream.respond({ ':status': 200 });
    brokenEcho(stream, broken, Buffer.alloc(0), (last) => {
      if (ending.neverEndsStream) return void stream.write(last);
      stream.end(last);
      if (ending.closesConnection) stream.session?.close();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
}
