/**
 * `maxHeadersCount` (issue 11, last paragraph): Node drops the headers beyond the count
 * without a word, so a header a proxy appends (`X-Forwarded-For`) could be lost behind a
 * client's padding while `verify` reads the client's own copy. listen() answers such a request
 * 431 instead, upgrade or plain HTTP alike; one at the count is served.
 */
import test from 'ava';
import http from 'node:http';
import { listen } from '../../src/index';
import { rawStatus, upgradeRequest } from './harness';

const MAX = 20;
// upgradeRequest() sends 5 headers of its own.
const padding = (n: number): string[] => Array.from({ length: n }, (_, i) => `X-Pad-${i}: ${i}`);

test('a request over maxHeadersCount gets 431 and never reaches verify; one at the count is served', async (t) => {
  const seen: (string | string[] | undefined)[] = [];
  const server = await listen(
    {
      maxHeadersCount: MAX,
      verify: (req: http.IncomingMessage) => {
        seen.push(req.headers['x-forwarded-for']);
        return undefined;
      }
    },
    async () => {}
  );
  t.teardown(() => server.close());
  const atLimit = upgradeRequest('/', [...padding(MAX - 6), 'X-Forwarded-For: 192.0.2.1']);
  t.is(await rawStatus(server.port, atLimit), 'HTTP/1.1 101 Switching Protocols');
  t.deepEqual(seen, ['192.0.2.1']);

  const figures: string[] = [`${MAX} headers: 101`];
  for (const extra of [1, 10, 200]) {
    const req = upgradeRequest('/', [...padding(MAX - 6 + extra), 'X-Forwarded-For: 192.0.2.1']);
    const status = await rawStatus(server.port, req);
    t.is(status, 'HTTP/1.1 431 Request Header Fields Too Large', `${MAX + extra} headers`);
    figures.push(`${MAX + extra} headers: ${status.slice(9)}`);
  }
  t.deepEqual(seen, ['192.0.2.1'], 'verify saw no request with headers dropped');

  const plain = ['GET / HTTP/1.1', 'Host: x', 'Connection: close', ...padding(MAX), '', ''].join('\r\n');
  t.is(await rawStatus(server.port, plain), 'HTTP/1.1 431 Request Header Fields Too Large');
  const plainOk = ['GET / HTTP/1.1', 'Host: x', 'Connection: close', ...padding(MAX - 2), '', ''].join('\r\n');
  t.is(await rawStatus(server.port, plainOk), 'HTTP/1.1 426 Upgrade Required');
  t.log(`maxHeadersCount ${MAX}: ${figures.join(', ')}; plain HTTP over it: 431`);
});
