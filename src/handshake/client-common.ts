/**
 * What the client handshakes over HTTP/1.1 (`client.ts`) and HTTP/2
 * (`client-http2.ts`) share: the one exit of a handshake (the timeout, the abort signal and
 * what was armed are released on every path, and a refusal is published on the diagnostics
 * channel), the TLS server name, and the check of the server's permessage-deflate answer.
 * @module
 */
import type { Readable } from 'node:stream';
import { HandshakeError, REFUSAL_BODY_MAX } from '../core/errors';
import { DeflateParams, checkDeflateResponse } from '../core/extensions';
import { Headers, headerValue } from '../core/handshake';
import type { DeflateOptions } from '../compression/deflate';
import { handshakeRejectedChannel } from '../connection/diagnostics';

/** The name to send as TLS SNI for `host`: none for an IP address (RFC 6066 §3). */
export function serverName(host: string): string | undefined {
  return /^[\d.]+$|:/.test(host) ? undefined : host;
}

/**
 * The server's answer to our permessage-deflate offer (RFC 7692 §7.1), from the response's
 * headers; a wrong answer is a HandshakeError with the response's status and headers.
 */
export function checkExtensions(status: number, headers: Headers, offered: DeflateOptions | null): DeflateParams | null {
  try {
    return checkDeflateResponse(headerValue(headers, 'sec-websocket-extensions'), offered);
  } catch (err) {
    throw new HandshakeError((err as Error).message, status, headers, { cause: err });
  }
}

// How long a refusal's body is waited for before the handshake fails with what came of it.
const REFUSAL_BODY_WAIT_MS = 1000;

/**
 * Reads the start of a refusal's body (at most REFUSAL_BODY_MAX bytes, for at most a second)
 * and calls `done` once with it, decoded as UTF-8 ('' for none); the rest is not read.
 */
export function refusalBody(body: Readable, done: (text: string) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let called = false;
  const finish = (): void => {
    if (called) return;
    called = true;
    clearTimeout(timer);
    body.off('data', onData);
    body.off('end', finish);
    body.off('close', finish);
    body.off('error', finish);
    const text = Buffer.concat(chunks, size).subarray(0, REFUSAL_BODY_MAX).toString('utf8');
    done(text.replace(/\uFFFD+$/, ''));
  };
  const onData = (chunk: Buffer | string): void => {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    chunks.push(b);
    size += b.length;
    if (size >= REFUSAL_BODY_MAX) finish();
  };
  const timer = setTimeout(finish, REFUSAL_BODY_WAIT_MS);
  timer.unref();
  body.on('data', onData);
  body.once('end', finish);
  body.once('close', finish);
  body.once('error', finish);
}

/** The exit of one handshake: `finish` settles it once; `settled` says whether it has. */
export interface HandshakeExit<T> {
  finish(err: Error | null, value?: T): void;
  readonly settled: boolean;
}

/**
 * Arms the handshake's timer (`timeout` ms, 0 for none) and abort listener. `cleanup` runs
 * on a failure, before the rejection (it destroys what the handshake opened). When `signal`
 * is aborted already, the exit is settled on return.
 */
export function handshakeExit<T>(
  signal: AbortSignal | undefined,
  timeout: number,
  resolve: (value: T) => void,
  reject: (err: Error) => void,
  cleanup: () => void
): HandshakeExit<T> {
  let settled = false;
  let timer: NodeJS.Timeout | null = null;
  const onAbort = (): void => exit.finish(new HandshakeError('the handshake was aborted', undefined, {}, { cause: signal?.reason }));
  const exit: HandshakeExit<T> = {
    get settled() {
      return settled;
    },
    finish(err, value) {
      if (settled) return;
      settled = true;
      if (timer !== null) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err === null) return resolve(value!);
      cleanup();
      if (err instanceof HandshakeError && handshakeRejectedChannel.hasSubscribers) {
        handshakeRejectedChannel.publish({ side: 'client', status: err.status, message: err.message, headers: err.headers });
      }
      reject(err);
    }
  };
  if (signal?.aborted) {
    onAbort();
    return exit;
  }
  signal?.addEventListener('abort', onAbort, { once: true });
  if (timeout > 0) {
    timer = setTimeout(() => exit.finish(new HandshakeError(`the handshake did not complete within ${timeout} ms`)), timeout);
  }
  return exit;
}
