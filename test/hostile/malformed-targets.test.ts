/**
 * Request targets that Node's HTTP parser accepts but that are no URL (issue 11, finding 6):
 * with `listen({ path })` they get a quiet 400, not a 500 with a stack trace of the
 * attacker's input on stderr. The server runs in a child process whose stderr is captured.
 */
import test from 'ava';
import { rawStatus, startChild, upgradeRequest } from './harness';

const MALFORMED = ['http://[/chat', 'http://a:99999/chat', 'ws://%zz/chat', '//[/chat', 'http://[::1/chat', '*'];

test('malformed request targets get a quiet 400 (nothing on stderr), well-formed ones still work', async (t) => {
  t.timeout(30_000);
  const child = await startChild(t, { options: { path: '/chat' } });
  const ROUNDS = 3; // every request, not only the first, must stay quiet
  const statuses: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of MALFORMED) {
      const status = await rawStatus(child.port, upgradeRequest(target));
      t.is(status, 'HTTP/1.1 400 Bad Request', target);
      if (round === 0) statuses.push(`${target} → ${status}`);
    }
  }
  // The path of an origin-form target is all of it up to '?' (RFC 9112 §3.2.1): '//evil/chat'
  // is not '/chat' (new URL() would read it as host 'evil', path '/chat').
  t.is(await rawStatus(child.port, upgradeRequest('//evil/chat')), 'HTTP/1.1 404 Not Found');
  t.is(await rawStatus(child.port, upgradeRequest('/other')), 'HTTP/1.1 404 Not Found');
  t.is(await rawStatus(child.port, upgradeRequest('/chat?room=1')), 'HTTP/1.1 101 Switching Protocols');
  t.is(await rawStatus(child.port, upgradeRequest('http://127.0.0.1/chat')), 'HTTP/1.1 101 Switching Protocols');
  child.send('ping');
  t.true(await child.next<boolean>('pong', 'the child to answer'));
  t.is(child.stderr(), '', 'stderr of the server');
  t.is(child.exitCode(), null);
  t.log(`${ROUNDS} × ${MALFORMED.length} malformed targets, stderr ${child.stderr().length} bytes: ${statuses.join('; ')}`);
});
