/**
 * Test-only, minimal HTTP/1.1 WebSocket upgrades on raw sockets, so frame-level interop
 * with `ws` can be tested before wsframe has handshakes of its own. Not an HTTP parser:
 * just enough for one request or response from a well-behaved peer on loopback.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { AsyncSocket, AsyncSocketOptions, GUID, Role } from '../../src';
import { within } from './socket-pair';

/** The Sec-WebSocket-Accept value for a key (RFC 6455 §4.2.2). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** An HTTP head (request or status line, then headers) and the bytes that came after it. */
export interface HttpHead {
  startLine: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  /** Bytes received after the blank line (already WebSocket frames). */
  head: Buffer;
}

const MAX_HEAD = 16 * 1024;

/**
 * Reads up to and including the blank line ending an HTTP head. The socket is left paused,
 * so no byte after the head is lost before an `AsyncSocket` takes over (see {@link wrap}).
 */
export function readHttpHead(socket: net.Socket): Promise<HttpHead> {
  return within(
    new Promise<HttpHead>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const cleanup = (): void => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('error', onError);
      };
      const onEnd = (): void => {
        cleanup();
        reject(new Error('connection ended before the end of the HTTP head'));
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const onData = (chunk: Buffer): void => {
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > MAX_HEAD) onError(new Error('HTTP head too large'));
          return;
        }
        socket.pause();
        cleanup();
        const [startLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        resolve({ startLine: startLine!, headers, head: buf.subarray(end + 4) });
      };
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('error', onError);
    }),
    'an HTTP head'
  );
}

/** Wraps a socket whose HTTP head was read (and which is paused) as an `AsyncSocket`. */
export function wrap(socket: net.Socket, role: Role, head: Buffer, options: Partial<AsyncSocketOptions> = {}): AsyncSocket {
  const ws = new AsyncSocket(socket, { ...options, role, head });
  socket.setNoDelay(true);
  socket.resume();
  return ws;
}

/**
 * Client side: connects to 127.0.0.1:port, sends `GET /` with a fresh 16-byte key, reads the
 * 101 response and checks Sec-WebSocket-Accept. `extraHeaders` go into the request too (e.g. an
 * extension offer). Returns the socket (paused) and the leftover bytes.
 */
export async function clientUpgrade(
  port: number,
  path = '/',
  extraHeaders: Record<string, string> = {}
): Promise<{ socket: net.Socket; response: HttpHead }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      }),
      'connect'
    );
    const key = randomBytes(16).toString('base64');
    socket.write(
      `GET ${path} HTTP/1.1\r\n` +
        `Host: 127.0.0.1:${port}\r\n` +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${key}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        Object.entries(extraHeaders)
          .map(([name, value]) => `${name}: ${value}\r\n`)
          .join('') +
        '\r\n'
    );
    const response = await readHttpHead(socket);
    if (!/^HTTP\/1\.1 101 /.test(response.startLine)) throw new Error(`unexpected response: ${response.startLine}`);
    if (response.headers['sec-websocket-accept'] !== acceptFor(key)) throw new Error('wrong Sec-WebSocket-Accept');
    if (response.headers['upgrade']?.toLowerCase() !== 'websocket') throw new Error('missing Upgrade: websocket');
    return { socket, response };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/**
 * Server side: reads a WebSocket upgrade request from an accepted socket, checks the basics
 * and writes a 101 with the right accept value. Returns the request (its leftover bytes in `head`).
 */
export async function serverAccept(socket: net.Socket): Promise<HttpHead> {
  const request = await readHttpHead(socket);
  const key = request.headers['sec-websocket-key'];
  if (!/^GET \S+ HTTP\/1\.1$/.test(request.startLine)) throw new Error(`unexpected request: ${request.startLine}`);
  if (key === undefined || !/^[+/0-9A-Za-z]{22}==$/.test(key)) throw new Error('bad Sec-WebSocket-Key');
  if (request.headers['sec-websocket-version'] !== '13') throw new Error('bad Sec-WebSocket-Version');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n` +
      '\r\n'
  );
  return request;
}
