/**
 * `npm start -- --http2` as a user runs it: demo/server.ts in a child process makes (or reuses)
 * its self-signed certificate in demo/.cert/, prints its URL and the certificate's path, and
 * serves /echo over HTTP/2 to a client that trusts that certificate; the demo logs the
 * WebSocket as one over HTTP/2.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { join } from 'node:path';
import { close, connect, readData, sendText } from '../../src';
import { within } from '../helpers/wait';

const ROOT = join(__dirname, '..', '..');

test('npm start -- --http2: the demo serves its page and /echo over HTTP/2 with its own certificate', async (t) => {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'demo/server.ts', '--http2', '--port', '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const check of waiters) check();
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const printed = (pattern: RegExp): Promise<RegExpMatchArray> =>
    within(
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const gone = (): void => reject(new Error(`the demo exited: ${out} ${err}`));
        const check = (): void => {
          const m = out.match(pattern);
          if (!m) return;
          waiters.delete(check);
          child.off('exit', gone);
          resolve(m);
        };
        waiters.add(check);
        child.once('exit', gone);
        check();
      }),
      `${pattern} from the demo`,
      90_000 // ts-node start-up, and openssl on first use, on a busy machine
    );
  const [, port] = await printed(/wsframe demo on https:\/\/localhost:(\d+)\/ over HTTP\/2 and HTTP\/1\.1/);
  const [, certPath] = await printed(/certificate: (\S+) /);
  const ws = await within(connect(`wss://localhost:${port}/echo`, { http2: true, tls: { ca: readFileSync(certPath!) }, protocols: ['chat.v1'] }), 'connect');
  t.is(ws.socket.constructor.name, 'ClientHttp2Stream');
  await sendText(ws, 'hello demo');
  t.is((await within(readData(ws), 'the echo')).data.toString(), 'hello demo');
  await printed(/WebSocket \/echo over HTTP\/2\n/);
  // A tab closed mid-conversation resets its stream: the client went away, which the demo
  // does not log as an error (over HTTP/1.1 a vanished client logs nothing either).
  const options = { http2: true, tls: { ca: readFileSync(certPath!) }, protocols: ['chat.v1'] } as const;
  const gone = await within(connect(`wss://localhost:${port}/echo`, options), 'a second connect');
  await sendText(gone, 'about to go');
  await within(readData(gone), 'its echo');
  (gone.socket as http2.ClientHttp2Stream).close(http2.constants.NGHTTP2_CANCEL);
  // Round trips on the same HTTP/2 connection after the reset: the demo has seen it by then.
  for (let i = 0; i < 3; i++) {
    await sendText(ws, `after ${i}`);
    t.is((await within(readData(ws), 'an echo after the reset')).data.toString(), `after ${i}`);
  }
  t.is((await close(ws, 4000, 'bye')).code, 4000);
  t.notRegex(err, /demo: \/echo/, `stderr: ${err}`);
});
