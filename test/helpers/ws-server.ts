/**
 * A `ws` WebSocketServer on 127.0.0.1 (a free port) for interop tests: listening when the
 * promise resolves, its clients terminated and itself closed when the test ends.
 */
import type { ExecutionContext } from 'ava';
import { WebSocketServer, type ServerOptions } from 'ws';
import { within } from './socket-pair';

export async function listeningWsServer(t: ExecutionContext, options: Omit<ServerOptions, 'host' | 'port'> = {}): Promise<WebSocketServer> {
  const wss = new WebSocketServer({ ...options, host: '127.0.0.1', port: 0 });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      })
  );
  await within(new Promise<void>((resolve) => wss.once('listening', () => resolve())), 'the ws server');
  return wss;
}
