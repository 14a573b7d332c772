// README's runnable programs run as shown: the Quick start, the server recipes and the frame-throughput loop,
// each with 'wsframe' pointed at this repository's src/, type-checked and run by ts-node in a
// child process; each prints what README says and exits by itself.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..');

/** The first ```ts block after `heading` in README. */
function snippet(heading: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  if (at === -1 || block === null) throw new Error(`no ts block under ${heading}`);
  return block[1]!;
}

/** Type-checks and runs the first ts block under `heading`; resolves to what it printed. */
async function runSnippet(t: { teardown(fn: () => void): void }, heading: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'wsframe-readme-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'snippet.ts');
  writeFileSync(file, snippet(heading).replace(/from 'wsframe'/g, `from ${JSON.stringify(join(ROOT, 'src'))}`));
  // Full ts-node (not transpile-only): a type error, or a top-level await, fails the run.
  const { stdout } = await promisify(execFile)(process.execPath, ['-r', 'ts-node/register', file], {
    cwd: ROOT,
    env: { ...process.env, TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'), TS_NODE_FILES: 'false' },
    timeout: 120_000
  });
  return stdout;
}

test('the Quick start type-checks as CommonJS, prints hello, and exits', async (t) => {
  t.timeout(150_000);
  t.is(await runSnippet(t, '## Quick start'), 'hello\n');
});

test('the frame-throughput loop builds and parses 20,000 frames and says how fast', async (t) => {
  t.timeout(150_000);
  const out = await runSnippet(t, '## Measuring frame throughput');
  t.regex(out, /^build: \d+ frames\/s\nparse: \d+ messages\/s, 20480000 bytes\n$/);
  t.log(out.trim().replace(/\n/g, '; '));
});

test('the server recipes: a refused token, a broadcast, a kick from outside the loop, a shutdown', async (t) => {
  t.timeout(150_000);
  const out = await runSnippet(t, '## Recipes for a server');
  t.is(
    out,
    [
      'a wrong token gets 401',
      'alice reads: alice joined',
      'alice reads: bob joined',
      "kicked bob: { code: 4001, reason: 'kicked', clean: true }",
      'bob got a Close with 4001',
      'alice reads a Close with 1001 and clients left: 0',
      ''
    ].join('\n')
  );
});
