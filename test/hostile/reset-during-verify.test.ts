/**
 * A socket between Node's 'upgrade' event and the AsyncSocket that takes it over must always
 * have an 'error' listener: a client that resets the connection while an async `verify` runs
 * must not crash the server (issue 11, finding 1). `verify` is also bounded in time by
 * `handshakeTimeout`, and a server that is closing does not upgrade a request whose verify
 * finishes after `close()` was called.
 */
import test from 'ava';
import net from 'node:net';
import { close, connect, listen, readData, sendText } from '../../src/index';
import { within } from '../helpers/socket-pair';
import { rawStatus, startChild, upgradeRequest } from './harness';

test('a reset while verify awaits does not crash the server (server in a child process)', async (t) => {
  t.timeout(30_000);
  const child = await startChild(t, { verify: 'hold' });
  const RESETS = 5;
  for (let i = 1; i <= RESETS; i++) {
    const s = net.connect(child.port, '127.0.0.1');
    s.on('error', () => {});
    s.write(upgradeRequest('/'));
    t.is(await child.next<number>('verifying', `verify ${i} to start`), i);
    s.resetAndDestroy();
    // The server sees the reset (its socket closes) and stays up; before the fix it died here.
    t.is(await child.next<number>('upgradeClosed', `the server to see reset ${i}`), i);
  }
  child.send('release'); // the verifies of the reset sockets finish now: nothing to upgrade
  child.send('ping');
  t.true(await child.next<boolean>('pong', 'the child to answer after the resets'));

  // Still serving: a real client gets through (its verify is released once it started).
  const connecting = connect(`ws://127.0.0.1:${child.port}/`);
  await child.next('verifying', 'the good client\'s verify');
  child.send('release');
  const ws = await within(connecting, 'connect after the resets');
  await sendText(ws, 'still here');
  t.is((await within(readData(ws), 'the echo')).data.toString(), 'still here');
  t.like(await within(close(ws), 'close'), { code: 1000, clean: true });
  t.is(child.exitCode(), null);
  t.is(child.stderr(), '');
  t.log(`${RESETS} resets during verify: server alive (exit code ${child.exitCode()}), stderr empty, echo after them ok`);
});

test('a verify that never settles is bounded by handshakeTimeout: 503, socket closed', async (t) => {
  const TIMEOUT = 400;
  const server = await listen({ handshakeTimeout: TIMEOUT, verify: () => new Promise<undefined>(() => {}) }, async () => {});
  t.teardown(() => server.close());
  const started = performance.now();
  const status = await rawStatus(server.port, upgradeRequest('/'));
  const ms = Math.round(performance.now() - started);
  t.is(status, 'HTTP/1.1 503 Service Unavailable');
  // The bound: handshakeTimeout, plus generous slack for a busy machine.
  t.true(ms >= TIMEOUT - 50 && ms < TIMEOUT + 3000, `answered after ${ms} ms`);
  t.is(server.clients.size, 0);
  t.log(`verify that never settles: 503 after ${ms} ms (handshakeTimeout ${TIMEOUT} ms)`);
});

test('close() while a verify is pending: that request gets 503 once verify accepts, and close() resolves', async (t) => {
  let release!: () => void;
  let started!: () => void;
  const verifying = new Promise<void>((resolve) => (started = resolve));
  const server = await listen(
    {
      verify: () =>
        new Promise<undefined>((resolve) => {
          release = () => resolve(undefined);
          started();
        })
    },
    async (ws) => {
      await readData(ws);
    }
  );
  const answer = rawStatus(server.port, upgradeRequest('/'));
  await within(verifying, 'verify to start');
  const closed = server.close();
  release();
  t.is(await answer, 'HTTP/1.1 503 Service Unavailable');
  await within(closed, 'server.close()');
  t.is(server.clients.size, 0);
});
