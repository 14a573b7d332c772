/**
 * The programs under test for sections 12 and 13: `wsframe echo-server` and `echo-client`
 * with permessage-deflate, which the CLI has no flag for. Same echo loop and exit codes as
 * src/cli.ts, on wsframe's public API only (nothing from the suite):
 *
 *   deflate-peer echo-server --max-message-size N [--max-inflate-ratio R] [--http2]
 *       prints "listening on ws://127.0.0.1:PORT"; each connection's `perMessageDeflate`
 *       options come as JSON in the request's `deflate` query parameter (none: `true`).
 *       With --http2: cleartext HTTP/2 (h2c) only, WebSockets by extended CONNECT
 *       (RFC 8441) through `upgradeHttp2`, the bolt-on for a node:http2 server
 *   deflate-peer echo-client URL --max-message-size N [--max-inflate-ratio R] [--deflate JSON]
 *       exits 0 after a clean close, 1 on a failure
 *
 * The suite runs them with wsframe's defaults (no --max-inflate-ratio): section 12 tests the
 * size limit with zeros, which compress a thousandfold, and that is valid input (issue 23).
 *
 * Run through ts-node (echo-server) or transpiled together with src/ (echo-client, see
 * transpilePrograms in peers.ts), so it imports src/ by relative path.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import {
  AsyncSocket,
  DeflateOptions,
  Opcode,
  ProtocolError,
  UpgradeOptions,
  connect,
  decodeClosePayload,
  readData,
  rejectHttp2,
  sendBinary,
  sendText,
  upgrade,
  upgradeHttp2,
  whenClosed
} from '../../src/index';

// As the CLI: after a failure, give the peer a second to close TCP.
const FAILURE_LINGER_MS = 1000;

async function echo(ws: AsyncSocket): Promise<{ code: number; reason: string }> {
  for (;;) {
    const { opcode, data } = await readData(ws);
    if (opcode === Opcode.Text) await sendText(ws, data.toString('utf8'));
    else if (opcode === Opcode.Binary) await sendBinary(ws, data);
    else if (opcode === Opcode.Close) return decodeClosePayload(data);
  }
}

function deflateOption(json: string | null | undefined): true | DeflateOptions {
  if (json === null || json === undefined || json === '') return true;
  return JSON.parse(json) as DeflateOptions;
}

/** Echoes on an upgraded connection until it closes; a failed connection gets the CLI's linger. */
async function serve(ws: AsyncSocket): Promise<void> {
  try {
    await echo(ws);
  } catch {
    ws.destroyAfter(FAILURE_LINGER_MS); // the connection was failed (or broke) already
  }
  await whenClosed(ws);
}

/** The connection's options: `perMessageDeflate` from the request's `deflate` query parameter. */
function optionsFor(url: string | undefined, maxSize: number, maxInflateRatio: number | undefined): Omit<UpgradeOptions, 'selectProtocol'> {
  const query = new URL(url ?? '/', 'ws://127.0.0.1').searchParams;
  return { perMessageDeflate: deflateOption(query.get('deflate')), maxMessageSize: maxSize, maxFrameSize: maxSize, maxInflateRatio };
}

async function echoServer(maxSize: number, maxInflateRatio: number | undefined, overHttp2: boolean): Promise<void> {
  const sockets = new Set<{ destroy(): void }>();
  let server: http.Server | http2.Http2Server;
  if (!overHttp2) {
    server = http.createServer((_req, res) => res.writeHead(426).end());
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      let options: Omit<UpgradeOptions, 'selectProtocol'>;
      try {
        options = optionsFor(req.url, maxSize, maxInflateRatio);
      } catch {
        socket.destroy();
        return;
      }
      upgrade(req, socket, head, options).then(serve, () => undefined); // a refusal is answered with its HTTP status
    });
  } else {
    // As listen({ http2: true }) without TLS: the setting advertised, CONNECT served.
    server = http2.createServer({ settings: { enableConnectProtocol: true } });
    server.on('session', (session: http2.ServerHttp2Session) => {
      sockets.add(session);
      session.once('close', () => sockets.delete(session));
    });
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      let options: Omit<UpgradeOptions, 'selectProtocol'>;
      try {
        options = optionsFor(headers[':path'], maxSize, maxInflateRatio);
      } catch {
        return rejectHttp2(stream, 400);
      }
      upgradeHttp2(stream, headers, options).then(serve, () => undefined); // a refusal is answered with its status
    });
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  console.log(`deflate-peer echo-server listening on ws://127.0.0.1:${port}${overHttp2 ? ' (cleartext HTTP/2 only)' : ''}`);
  const stop = (): void => {
    for (const s of sockets) s.destroy();
    server.close(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function echoClient(url: string, maxSize: number, maxInflateRatio: number | undefined, deflate: string | undefined): Promise<void> {
  const ws = await connect(url, { perMessageDeflate: deflateOption(deflate), maxMessageSize: maxSize, maxFrameSize: maxSize, maxInflateRatio });
  let closed: { code: number; reason: string };
  try {
    closed = await echo(ws);
  } catch (err) {
    ws.destroyAfter(FAILURE_LINGER_MS);
    throw err;
  }
  await whenClosed(ws);
  console.error(`closed cleanly: ${closed.code}${closed.reason ? ` ${closed.reason}` : ''}`);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: { 'max-message-size': { type: 'string' }, 'max-inflate-ratio': { type: 'string' }, deflate: { type: 'string' }, http2: { type: 'boolean' } }
  });
  const maxSize = Number(values['max-message-size'] ?? 16 * 1024 * 1024);
  const ratio = values['max-inflate-ratio'] === undefined ? undefined : Number(values['max-inflate-ratio']);
  const [command, url] = positionals;
  try {
    if (command === 'echo-server') {
      await echoServer(maxSize, ratio, values.http2 === true);
      return -1; // keeps running
    }
    if (command === 'echo-client' && url !== undefined) {
      await echoClient(url, maxSize, ratio, values.deflate);
      return 0;
    }
    process.stderr.write('usage: deflate-peer echo-server [--http2] | echo-client URL [--deflate JSON] [--max-message-size N] [--max-inflate-ratio R]\n');
    return 2;
  } catch (err) {
    const detail = err instanceof ProtocolError ? ` (close code ${err.closeCode})` : '';
    process.stderr.write(`deflate-peer: ${(err as Error).name}: ${(err as Error).message}${detail}\n`);
    return 1;
  }
}

main().then((code) => {
  if (code >= 0) process.exitCode = code;
});
