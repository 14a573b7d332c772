// Every program in examples/ must keep running and printing what README says it prints.
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// A bound on a hung example, not on a slow one: each takes about 2 s when the machine is idle
// (1.4 s of it ts-node compiling), but five start at once, and on a busy 2-core machine that
// has taken longer than 30 s.
const HANG_MS = 120_000;

async function example(name: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['-r', 'ts-node/register/transpile-only', `examples/${name}`], {
    cwd: join(__dirname, '..'),
    timeout: HANG_MS
  });
  return stdout;
}

const EXPECTED: Record<string, RegExp[]> = {
  'frames.ts': [
    /^makeFrame: 810548656c6c6f$/m,
    /^text echo: true hello$/m,
    /^binary echo bytes: 100000$/m,
    /^pong matches ping: true$/m,
    /^raw frame: true true streamed text$/m,
    /^server: peer closed with \{ code: 1000, reason: 'bye' \}$/m,
    /^client: closed cleanly$/m
  ],
  'server-loop.ts': [
    /^client: #1: hello \/ #2: again$/m,
    /^server: client closed with \{ code: 1000, reason: 'done' \}$/m,
    /^client: server echoed \{ code: 1000, reason: 'done' \}$/m
  ],
  'http-auth.ts': [
    /^client without token: refused with status 401$/m,
    /^client with token: connected, protocol echo\.v1$/m,
    /^client: echo: hi$/m,
    /^client: closed \{ code: 1000, reason: 'bye', clean: true \}$/m
  ],
  'chat.ts': [/^bob got: \* someone joined \(2 here\)$/m, /^bob got: alice: hello bob$/m, /^chat closed, clients left: 0$/m],
  'streams.ts': [
    /^web streams: HELLO, STREAMS$/m,
    /^closed: \{ closeCode: 1000, reason: 'done' \}$/m,
    /^pipeline: 4 MiB, hashes match: true$/m
  ],
  'cluster.ts': [
    /^2 workers listening on one port: true$/m,
    /^4 clients served by 2 workers$/m,
    /^clients that got the broadcast: 4 of 4$/m,
    /^close codes the clients got: 1001$/m,
    /^workers exited$/m
  ],
  'client.ts': [
    /^text: true héllo$/m,
    /^binary: true \[ 1, 2, 3 \]$/m,
    /^ping answered: true true$/m,
    /^closed: \{ code: 1000, reason: 'bye', clean: true \}$/m
  ]
};

for (const [name, patterns] of Object.entries(EXPECTED)) {
  test(`examples/${name} runs and prints what README shows`, async (t) => {
    t.timeout(HANG_MS + 10_000);
    const stdout = await example(name);
    for (const p of patterns) t.regex(stdout, p);
  });
}
