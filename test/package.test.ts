// What the package gives its users: `npm pack` ships every source its source maps name (the
// maps name ../src/*.ts, so src/ is shipped) and no test code, and the API docs build
// without a warning.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..');

test('the package ships the sources its source maps name, and no tests', async (t) => {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 60_000 });
  const files = new Set((JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
  t.false([...files].some((f) => f.startsWith('test/')), 'no test files in the package');
  const maps = [...files].filter((f) => f.endsWith('.js.map'));
  if (maps.length === 0 || !existsSync(join(ROOT, maps[0]!))) {
    // dist/ is built by `npm install` (prepare) and by CI before the tests.
    t.log('dist/ is not built here: only the file list was checked');
    t.true(files.has('src/index.ts'));
    return;
  }
  let sources = 0;
  for (const map of maps) {
    for (const source of (JSON.parse(readFileSync(join(ROOT, map), 'utf8')) as { sources: string[] }).sources) {
      const packed = normalize(join(map, '..', source));
      t.true(files.has(packed), `${map} names ${source}, which is not in the package`);
      sources++;
    }
  }
  t.log(`${maps.length} source maps, ${sources} sources, all in the package`);
});

test('the API docs build without a warning (no dead links, no internal names linked from public ones)', async (t) => {
  t.timeout(120_000);
  const typedoc = join(ROOT, 'node_modules', '.bin', 'typedoc');
  // The options of `npm run docs`, writing nothing, with every warning an error.
  const args = ['--entryPoints', 'src/index.ts', '--tsconfig', 'tsconfig.build.json', '--excludeInternal', '--disableSources', '--emit', 'none', '--treatWarningsAsErrors'];
  const { stdout, stderr } = await promisify(execFile)(typedoc, args, { cwd: ROOT, timeout: 100_000 });
  t.notRegex(stdout + stderr, /warning/i);
});
