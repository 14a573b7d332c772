// README's Quick start runs as shown: its code block, with 'wsframe' pointed at this
// repository's src/, type-checked and run by ts-node in a child process, prints what its
// comment says and exits by itself.
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

test('the Quick start type-checks as CommonJS, prints hello, and exits', async (t) => {
  t.timeout(150_000);
  const dir = mkdtempSync(join(tmpdir(), 'wsframe-readme-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'quick-start.ts');
  writeFileSync(file, snippet('## Quick start').replace(/from 'wsframe'/g, `from ${JSON.stringify(join(ROOT, 'src'))}`));
  // Full ts-node (not transpile-only): a type error, or a top-level await, fails the run.
  const { stdout } = await promisify(execFile)(process.execPath, ['-r', 'ts-node/register', file], {
    cwd: ROOT,
    env: { ...process.env, TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'), TS_NODE_FILES: 'false' },
    timeout: 120_000
  });
  t.is(stdout, 'hello\n');
});
