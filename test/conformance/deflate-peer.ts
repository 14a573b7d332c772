/**
 * The programs under test for sections 12 and 13: `wsframe echo-server` and `echo-client`
 * with permessage-deflate, which the CLI has no flag for. Same echo loop and exit codes as
 * src/cli.ts, on wsframe's public API only (nothing from the suite):
 *
 *   deflate-peer echo-server --max-message-size N [--max-inflate-ratio R]
 *       prints "listening on ws://127.0.0.1:PORT"; each connection's `perMessageDeflate`
 *       options come as JSON in the request's `deflate` query parameter (none: `true`)
 *   deflate-peer echo-client URL --max-message-size N [--max-inflate-ratio R] [--deflate JSON]
 *       exits 0 after a clean close, 1 on a failure
 *
 * The suite runs them with `--max-inflate-ratio 0`: section 12 tests the size limit with
 * zeros, which compress a thousandfold, past the default maxInflateRatio (100).
 *
 * Run through ts-node (echo-server) or transpiled together with src/ (echo-client, see
 * transpilePrograms in peers.ts), so it imports src/ by relative path.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { AsyncSocket, DeflateOptions, Opcode, ProtocolError, connect, decodeClosePayload, readData, sendBinary, sendText, upgrade, whenClosed } from '../../src/index';

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

async function echoServer(maxSize: number, maxInflateRatio: number | undefined): Promise<void> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const sockets = new Set<Duplex>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const query = new URL(req.url ?? '/', 'ws://127.0.0.1').searchParams;
    let perMessageDeflate: true | DeflateOptions;
    try {
      perMessageDeflate = deflateOption(query.get('deflate'));
    } catch {
      socket.destroy();
      return;
    }
    upgrade(req, socket, head, { perMessageDeflate, maxMessageSize: maxSize, maxFrameSize: maxSize, maxInflateRatio }).then(
      async (ws) => {
        try {
          await echo(ws);
        } catch {
          ws.destroyAfter(FAILURE_LINGER_MS); // the connection was failed (or broke) already
        }
        await whenClosed(ws);
      },
      () => undefined // answered with its HTTP status
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  console.log(`deflate-peer echo-server listening on ws://127.0.0.1:${port}`);
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
    options: { 'max-message-size': { type: 'string' }, 'max-inflate-ratio': { type: 'string' }, deflate: { type: 'string' } }
  });
  const maxSize = Number(values['max-message-size'] ?? 16 * 1024 * 1024);
  const ratio = values['max-inflate-ratio'] === undefined ? undefined : Number(values['max-inflate-ratio']);
  const [command, url] = positionals;
  try {
    if (command === 'echo-server') {
      await echoServer(maxSize, ratio);
      return -1; // keeps running
    }
    if (command === 'echo-client' && url !== undefined) {
      await echoClient(url, maxSize, ratio, values.deflate);
      return 0;
    }
    process.stderr.write('usage: deflate-peer echo-server | echo-client URL [--deflate JSON] [--max-message-size N] [--max-inflate-ratio R]\n');
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
