/**
 * Node's built-in WebSocket client (undici's, global on Node 22; behind
 * `--experimental-websocket` on Node 20) against our `listen()` server, in a child process
 * (fixtures/node-websocket-client.js): subprotocol, text and binary echoes, and a close
 * with 4001 'bye' whose code and reason we echo.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { AsyncSocket, listen, whenClosed } from '../../src';
import { within } from '../helpers/socket-pair';
import { Queue, echo } from './support';

// The flag exists (and is needed) on Node 20; where it is not a known flag it is left out.
const flags = process.allowedNodeEnvironmentFlags.has('--experimental-websocket') ? ['--experimental-websocket'] : [];

test("Node's WebSocket client ↔ our listen() server", async (t) => {
  const sockets = new Queue<AsyncSocket>();
  const server = await listen({ protocols: ['np2', 'np1'] }, async (ws) => {
    sockets.push(ws);
    await echo(ws);
  });
  t.teardown(() => server.close());
  const script = path.join(__dirname, 'fixtures', 'node-websocket-client.js');
  const child = promisify(execFile)(process.execPath, [...flags, script, `ws://127.0.0.1:${server.port}/node`], { timeout: 15_000 });
  const { stdout } = await within(child, 'the child process', 20_000);
  const result = JSON.parse(stdout.trim().split('\n').pop()!);
  t.log(`node ${process.version} ${flags.join(' ')}`);
  t.is(result.error, null);
  t.true(result.hasWebSocket);
  t.is(result.protocol, 'np2');
  t.deepEqual(result.messages, [
    { binary: false, data: 'from node ✓' },
    { binary: true, data: [1, 2, 3, 250] }
  ]);
  t.deepEqual(result.close, { code: 4001, reason: 'bye', wasClean: true });
  const ws = await sockets.next();
  await within(whenClosed(ws), 'the server socket to close');
  t.deepEqual(ws.peerClose, { code: 4001, reason: 'bye' });
  t.is(ws.protocol, 'np2');
});
