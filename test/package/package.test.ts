// What the package gives its users: `npm pack` ships every source its source maps name (the
// maps name ../src/*.ts, so src/ is shipped) and no test code, and the API docs build
// without a warning.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..', '..');

test('the package ships the sources its source maps name, and no tests', async (t) => {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, timeout: 60_000 });
  const files = new Set((JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
  t.false([...files].some((f) => f.startsWith('test/')), 'no test files in the package');
  const maps = [...files].filter((f) => f.endsWith('.js.map'));
  if (maps.length === 0 || !existsSync(join(ROOT, maps[0]!))) {
    // dist/ is built by `npm run build` (and `npm pack`), as CI does before the tests.
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

test('the API docs build without a warning (no dead links, no internal names linked from public ones), with every export in a group', async (t) => {
  t.timeout(120_000);
  const typedoc = join(ROOT, 'node_modules', '.bin', 'typedoc');
  const dir = mkdtempSync(join(tmpdir(), 'wsframe-docs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The options of `npm run docs`, writing the JSON model instead of HTML, every warning an error.
  const json = join(dir, 'api.json');
  const args = ['--entryPoints', 'src/index.ts', '--tsconfig', 'tsconfig.build.json', '--excludeInternal', '--disableSources', '--json', json, '--treatWarningsAsErrors'];
  const { stdout, stderr } = await promisify(execFile)(typedoc, args, { cwd: ROOT, timeout: 100_000 });
  t.notRegex(stdout + stderr, /warning/i);
  // The reference is grouped by what a reader looks for (each export's `@group` tag), not
  // TypeDoc's default grouping by kind (Functions, Classes, …).
  const model = JSON.parse(readFileSync(json, 'utf8')) as { children: Array<{ id: number; name: string }>; groups: Array<{ title: string; children: number[] }> };
  t.deepEqual(model.groups.map((g) => g.title).sort(), ['Compression', 'Connection', 'Errors', 'Frames', 'Handshakes', 'Server', 'Streams']);
  const grouped = new Set(model.groups.flatMap((g) => g.children));
  t.deepEqual(model.children.filter((c) => !grouped.has(c.id)).map((c) => c.name), []);
  t.log(model.groups.map((g) => `${g.title} ${g.children.length}`).join(', '));
});
