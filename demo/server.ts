// The demo behind `npm start`: one node:http server that serves demo/index.html and speaks
// WebSocket (through wsframe's upgrade()) on the same port, with permessage-deflate (RFC 7692)
// accepted when the browser offers it (Chromium and Firefox offer it on every connection; the
// page shows what was agreed).
//   /chat  a chat room: each text message (JSON {from, text}) goes to everyone; binary is echoed
//   /echo  echoes every text and binary message, and the close code and reason
// Usage: npm start [-- --port 8080 --host 127.0.0.1]
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AsyncSocket, Opcode, close, messages, rejectUpgrade, sendBinary, sendText, upgrade } from '../src';

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
        if (peer.closeQueued || peer.socket.writableLength > MAX_BACKLOG) continue;
        sendText(peer, text).catch(() => undefined);
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

/** Starts the demo server (port 0 picks a free one); resolves to it once it listens. */
export async function startDemo(port: number, host = '127.0.0.1'): Promise<http.Server> {
  const room = new Set<AsyncSocket>(); // the /chat connections of this server
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
    }
  });
  server.on('upgrade', (req, socket, head) => {
    // The path as sent, up to any query (a target new URL() refuses must not throw here).
    const target = req.url ?? '/';
    const query = target.indexOf('?');
    const path = query === -1 ? target : target.slice(0, query);
    const serve = path === '/chat' ? (ws: AsyncSocket) => chat(ws, room) : path === '/echo' ? echo : null;
    if (serve === null) return rejectUpgrade(socket, 404);
    // maxMessageSize bounds messages once inflated, so a small compressed frame cannot grow past it.
    upgrade(req, socket, head, { protocols: ['chat.v1'], perMessageDeflate: true, maxMessageSize: 4 << 20, maxFrameSize: 4 << 20 })
      .then(serve)
      .catch((err: Error) => console.error(`demo: ${path}: ${err.name}: ${err.message}`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

if (require.main === module) {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: process.env.PORT ?? '8080' }, host: { type: 'string', default: '127.0.0.1' } }
  });
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    console.error(`demo: --port takes a port number (0-65535), not ${JSON.stringify(values.port)}`);
    process.exit(2);
  }
  startDemo(port, values.host).then(
    (server) => {
      const address = server.address() as { port: number };
      const host = values.host.includes(':') ? `[${values.host}]` : values.host;
      console.log(`wsframe demo on http://${host}:${address.port}/ (Ctrl-C to stop)`);
    },
    (err: Error) => {
      console.error(`demo: cannot listen on ${values.host}:${port}: ${err.message}`);
      process.exit(1);
    }
  );
}
