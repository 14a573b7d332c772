/**
 * The HTTP/2 sessions of a `listen({ http2: true })` server: closed when idle, destroyed when
 * their client does not close after a GOAWAY.
 * @module
 */
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';


/**
 * Keeps the set of a server's HTTP/2 sessions, and closes (GOAWAY) one that has had no stream
 * open for `idleMs`: from its start (a client that connects and asks nothing) and after its
 * last stream (as HTTP/1.1 keep-alive connections are closed when idle). Node then waits for
 * the client to close the connection: one that does not is destroyed a second later. The map
 * holds, for each session, what closes it that way.
 */
export function watchSession(session: http2.ServerHttp2Session, socket: Duplex, sessions: Map<http2.ServerHttp2Session, () => void>, idleMs: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  // Node ends a closed session's socket once its last stream is done, and waits for the client.
  const linger = (): void => {
    clearTimeout(timer);
    if (!socket.destroyed) timer = setTimeout(() => socket.destroy(), SESSION_LINGER_MS).unref();
  };
  const shut = (): void => {
    session.close();
    if (open === 0) linger();
  };
  const idle = (): void => {
    clearTimeout(timer);
    if (idleMs > 0) timer = setTimeout(shut, idleMs).unref();
  };
  const streamClosed = (): void => {
    if (--open > 0) return;
    if (session.closed) linger();
    else idle();
  };
  session.on('stream', (stream: http2.ServerHttp2Stream) => {
    if (open++ === 0) clearTimeout(timer);
    stream.once('close', streamClosed);
  });
  // The client's GOAWAY: Node closes the session (or destroys it, for an error code).
  session.once('goaway', () => open === 0 && linger());
  session.once('close', () => {
    clearTimeout(timer);
    sessions.delete(session);
  });
  sessions.set(session, shut);
  idle();
}

// Milliseconds a closed HTTP/2 session's client gets to close its connection before it is destroyed.
const SESSION_LINGER_MS = 1000;
