// The demo behind `npm start`: one node:http server that serves demo/index.html and speaks
// WebSocket (through wsframe's upgrade()) on the same port, with permessage-deflate (RFC 7692)
// accepted when the browser offers it (Chromium and Firefox offer it on every connection; the
// page shows what was agreed).
//   /chat  a chat room: each text message (JSON {from, text}) goes to everyone; binary is echoed
//   /echo  echoes every text and binary message, and the close code and reason
// With --http2 it serves the same over HTTPS with HTTP/2 and HTTP/1.1 on one port (node:http2
// with allowHTTP1), and advertises the extended CONNECT (RFC 8441): a browser then opens its
// WebSockets as streams of the HTTP/2 connection that loaded the page (upgradeHttp2), and an
// HTTP/1.1 client still upgrades (upgrade). Without --cert and --key it makes a self-signed
// certificate for localhost and 127.0.0.1 with openssl, in demo/.cert/, and reuses it.
// Usage: npm start [-- --port 8080 --host 127.0.0.1] [-- --http2 [--cert FILE --key FILE]]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AsyncSocket,
  IOError,
  Opcode,
  close,
  messages,
  rejectHttp2,
  rejectUpgrade,
  sendBinary,
  sendText,
  upgrade,
  upgradeHttp2
} from '../src';

const page = readFileSync(join(__dirname, 'index.html'));
// Unsent bytes a chat member may hold before it misses messages.
const MAX_BACKLOG = 1 << 20;

async function chat(ws: AsyncSocket, room: Set<AsyncSocket>): Promise<void> {
  room.add(ws);
  try {
    for await (const { opcode, data } of messages(ws)) {
      if (opcode === Opcode.Binary) {
        await sendBinary(ws, data);
        continue;
      }
      let text: string;
      try {
        const m = JSON.parse(data.toString('utf8')) as { from?: unknown; text?: unknown };
        text = JSON.stringify({ from: String(m.from ?? '?').slice(0, 40), text: String(m.text ?? '') });
      } catch {
        await close(ws, 1003, 'expected JSON');
        return;
      }
      // Nobody waits for the slowest member: a peer that does not read misses messages once
      // MAX_BACKLOG of ours is unsent to it, instead of holding up the room.
      for (const peer of room) {
        if (peer.closeQueued || peer.unsentBytes > MAX_BACKLOG) continue;
        void sendText(peer, text); // a member who left: its failure is its own loop's to see
      }
    }
  } finally {
    room.delete(ws);
  }
}

async function echo(ws: AsyncSocket): Promise<void> {
  for await (const { opcode, data } of messages(ws)) {
    if (opcode === Opcode.Text) await sendText(ws, data.toString('utf8'));
    else await sendBinary(ws, data);
  }
}

/** How the demo serves: plain HTTP/1.1, or HTTPS with HTTP/2 and HTTP/1.1 (`http2`). */
export interface DemoOptions {
  /** Serve HTTPS with HTTP/2 (and HTTP/1.1 on the same port) with this key and certificate. */
  http2?: { key: Buffer; cert: Buffer };
  /** Called for each WebSocket opened: its path and the HTTP version it came over ('1.1' or '2.0'). */
  onWebSocket?: (path: string, httpVersion: string) => void;
}

// The path as sent, up to any query (a target new URL() refuses must not throw here).
function pathOf(target: string): string {
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
}

// maxMessageSize bounds messages once inflated, so a small compressed frame cannot grow past it.
const WS_OPTIONS = { protocols: ['chat.v1'], perMessageDeflate: true, maxMessageSize: 4 << 20, maxFrameSize: 4 << 20 };

/** Starts the demo server (port 0 picks a free one); resolves to it once it listens. */
export function startDemo(port: number, host?: string, options?: DemoOptions & { http2?: undefined }): Promise<http.Server>;
export function startDemo(port: number, host: string, options: DemoOptions): Promise<http.Server | http2.Http2SecureServer>;
export async function startDemo(port: number, host = '127.0.0.1', options: DemoOptions = {}): Promise<http.Server | http2.Http2SecureServer> {
  const room = new Set<AsyncSocket>(); // the /chat connections of this server
  const handlerFor = (path: string): ((ws: AsyncSocket) => Promise<void>) | null =>
    path === '/chat' ? (ws: AsyncSocket) => chat(ws, room) : path === '/echo' ? echo : null;
  const started = (path: string, version: string) => (ws: AsyncSocket): Promise<void> => {
    options.onWebSocket?.(path, version);
    return handlerFor(path)!(ws);
  };
  // A client that goes away without a Close (a tab closed: its TCP connection or, over HTTP/2,
  // its stream is gone) is no error of the demo's; anything else is.
  const failed = (path: string) => (err: Error) => {
    if (err instanceof IOError && (err.reason === 'eof' || err.reason === 'reset')) return;
    console.error(`demo: ${path}: ${err.name}: ${err.message}`);
  };
  // The page, over HTTP/1.1 and (with --http2) HTTP/2 alike.
  const onRequest = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  };
  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = pathOf(req.url ?? '/');
    if (handlerFor(path) === null) return rejectUpgrade(socket, 404);
    upgrade(req, socket, head, WS_OPTIONS).then(started(path, '1.1')).catch(failed(path));
  };
  let server: http.Server | http2.Http2SecureServer;
  if (options.http2) {
    server = http2.createSecureServer({ ...options.http2, allowHTTP1: true, settings: { enableConnectProtocol: true } }, onRequest);
    // With a 'request' listener (node:http2's compatibility API), an HTTP/2 CONNECT comes as
    // 'connect' (request, response); an HTTP/1.1 one as node:http's (request, socket, head).
    server.on('connect', (req: http2.Http2ServerRequest | http.IncomingMessage, res: http2.Http2ServerResponse | Duplex) => {
      if (!(req instanceof http2.Http2ServerRequest)) return rejectUpgrade(res as Duplex, 405);
      const path = pathOf(req.url ?? '/');
      if (handlerFor(path) === null) return rejectHttp2(req.stream, 404);
      upgradeHttp2(req.stream, req.headers, WS_OPTIONS).then(started(path, '2.0')).catch(failed(path));
    });
  } else {
    server = http.createServer(onRequest);
  }
  server.on('upgrade', onUpgrade);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/**
 * The demo's own self-signed certificate (localhost, 127.0.0.1), made by openssl on first use
 * in demo/.cert/ and reused, so that a browser told to trust it once keeps trusting it.
 */
export function demoCertificate(dir = join(__dirname, '.cert')): { key: Buffer; cert: Buffer; certPath: string } {
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    mkdirSync(dir, { recursive: true });
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '365',
      '-subj', '/CN=wsframe demo', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'
    ], { stdio: 'ignore' });
  }
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), certPath };
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: process.env.PORT ?? '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      http2: { type: 'boolean', default: false },
      cert: { type: 'string' },
      key: { type: 'string' }
    }
  });
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    console.error(`demo: --port takes a port number (0-65535), not ${JSON.stringify(values.port)}`);
    process.exit(2);
  }
  if ((values.cert === undefined) !== (values.key === undefined) || (values.cert !== undefined && !values.http2)) {
    console.error('demo: --cert and --key go together, with --http2');
    process.exit(2);
  }
  let tls: { key: Buffer; cert: Buffer; certPath: string } | undefined;
  if (values.http2) {
    try {
      tls = values.cert !== undefined ? { key: readFileSync(values.key!), cert: readFileSync(values.cert), certPath: values.cert } : demoCertificate();
    } catch (err) {
      console.error(`demo: no certificate (${(err as Error).message}); pass --cert and --key, or install openssl`);
      process.exit(1);
    }
  }
  startDemo(port, values.host, { http2: tls, onWebSocket: (path, version) => console.log(`WebSocket ${path} over HTTP/${version === '2.0' ? '2' : '1.1'}`) }).then(
    (server) => {
      const address = server.address() as { port: number };
      const host = values.host.includes(':') ? `[${values.host}]` : values.host;
      if (tls === undefined) {
        console.log(`wsframe demo on http://${host}:${address.port}/ (Ctrl-C to stop)`);
      } else {
        console.log(`wsframe demo on https://${host === '127.0.0.1' ? 'localhost' : host}:${address.port}/ over HTTP/2 and HTTP/1.1 (Ctrl-C to stop)`);
        console.log(`certificate: ${tls.certPath} (README, "The demo over HTTP/2", says how to trust it)`);
      }
    },
    (err: Error) => {
      console.error(`demo: cannot listen on ${values.host}:${port}: ${err.message}`);
      process.exit(1);
    }
  );
}
