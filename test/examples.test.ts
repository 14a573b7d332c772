// The README's example program must keep running and printing what README says it prints.
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

test('examples/frames.ts runs and talks to itself', async (t) => {
  const root = join(__dirname, '..');
  const { stdout } = await run(process.execPath, ['-r', 'ts-node/register/transpile-only', 'examples/frames.ts'], {
    cwd: root,
    timeout: 30_000
  });
  t.regex(stdout, /^makeFrame: 810548656c6c6f$/m);
  t.regex(stdout, /^text echo: true hello$/m);
  t.regex(stdout, /^binary echo bytes: 100000$/m);
  t.regex(stdout, /^pong matches ping: true$/m);
  t.regex(stdout, /^raw frame: true true streamed text$/m);
  t.regex(stdout, /^server: peer closed with \{ code: 1000, reason: 'bye' \}$/m);
  t.regex(stdout, /^client: closed cleanly$/m);
});
